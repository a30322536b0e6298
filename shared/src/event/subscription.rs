//! A tenant's event subscriptions: a URL, the event types it wants, and a signing secret
//! shown once and stored KMS-encrypted (context `{tenantId}`) for the forwarder to sign
//! with.

use futures::TryStreamExt;
use mongodb::bson::{Binary, DateTime, doc, oid::ObjectId, spec::BinarySubtype};
use serde::{Deserialize, Serialize};

use super::EventType;
use crate::{
    config::AppEnv,
    crypto::TokenCipher,
    error::ApiError,
    ids::{TenantId, random_hex, rfc3339},
    secret::Secret,
    store::Store,
};

pub use crate::store::{EVENT_DELIVERIES as DELIVERIES, EVENT_SUBSCRIPTIONS as SUBSCRIPTIONS};
/// Subscriptions per tenant.
pub const SUBSCRIPTIONS_MAX: u64 = 10;
const URL_MAX: usize = 2048;
/// Attempts shown by `GET …/deliveries`.
pub const DELIVERIES_SHOWN: i64 = 50;

/// `POST /tenants/{tenantId}/event-subscriptions` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionRequest {
    pub url: String,
    pub events: Vec<String>,
}

impl SubscriptionRequest {
    /// An `https` URL (plain `http` only with `APP_ENV=development`, for local receivers)
    /// and 1–5 known event types.
    pub fn parse(&self, env: AppEnv) -> Result<(String, Vec<EventType>), ApiError> {
        let url = self.url.trim();
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| ApiError::invalid("url", "must be an absolute https URL"))?;
        let scheme_ok =
            parsed.scheme() == "https" || (parsed.scheme() == "http" && env == AppEnv::Development);
        if !scheme_ok || parsed.host_str().is_none() || url.len() > URL_MAX {
            return Err(ApiError::invalid(
                "url",
                format!("must be an absolute https URL of at most {URL_MAX} characters"),
            ));
        }
        if env != AppEnv::Development && internal_host(&parsed) {
            return Err(ApiError::invalid(
                "url",
                "must be a public address (not localhost, a private or a link-local one)",
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ApiError::invalid(
                "url",
                "must not carry credentials: verify the signature instead",
            ));
        }
        if self.events.is_empty() {
            return Err(ApiError::invalid("events", "name at least one event type"));
        }
        let mut events = Vec::new();
        for (i, e) in self.events.iter().enumerate() {
            let t = EventType::parse(e.trim()).ok_or_else(|| {
                ApiError::invalid(
                    format!("events[{i}]"),
                    "must be message.received, message.status, meta_template.status, customer.opted_out or handoff.started",
                )
            })?;
            if !events.contains(&t) {
                events.push(t);
            }
        }
        Ok((url.to_owned(), events))
    }
}

/// Hosts our functions must not be made to call (their network, the metadata service):
/// localhost and loopback, private, link-local and unspecified addresses written as such.
/// (A public name that resolves to one is the receiver's DNS; the forwarder does not follow
/// redirects.)
fn internal_host(url: &reqwest::Url) -> bool {
    use std::net::IpAddr;
    let Some(host) = url.host_str() else {
        return true;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_broadcast()
        }
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost") || name.ends_with(".internal")
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tenant_id: TenantId,
    pub url: String,
    pub events: Vec<EventType>,
    pub secret_ciphertext: Binary,
    pub created_at: DateTime,
}

/// What the API shows of a subscription: never its secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub created_at: String,
}

impl From<&SubscriptionDoc> for SubscriptionView {
    fn from(d: &SubscriptionDoc) -> Self {
        Self {
            id: d.id.to_hex(),
            url: d.url.clone(),
            events: d.events.clone(),
            created_at: rfc3339(d.created_at),
        }
    }
}

/// A new subscription and its signing secret (`whsec_` + 64 hex), shown this once.
pub async fn create(
    store: &Store,
    cipher: &TokenCipher,
    tenant: &TenantId,
    url: String,
    events: Vec<EventType>,
) -> Result<(SubscriptionView, Secret), ApiError> {
    let subs = store.collection::<SubscriptionDoc>(SUBSCRIPTIONS).await?;
    if subs.count_documents(doc! { "tenantId": *tenant }).await? >= SUBSCRIPTIONS_MAX {
        return Err(ApiError::conflict(format!(
            "a tenant has at most {SUBSCRIPTIONS_MAX} event subscriptions: delete one first"
        )));
    }
    let secret = Secret::new(format!("whsec_{}", random_hex(32)));
    let doc = SubscriptionDoc {
        id: ObjectId::new(),
        tenant_id: *tenant,
        url,
        events,
        secret_ciphertext: Binary {
            subtype: BinarySubtype::Generic,
            bytes: cipher.encrypt(tenant, &secret).await?,
        },
        created_at: DateTime::now(),
    };
    subs.insert_one(&doc).await?;
    tracing::info!(tenantId = %tenant, subscriptionId = %doc.id, "event subscription created");
    Ok((SubscriptionView::from(&doc), secret))
}

/// The tenant's subscriptions, oldest first.
pub async fn list(store: &Store, tenant: &TenantId) -> Result<Vec<SubscriptionDoc>, ApiError> {
    Ok(store
        .collection::<SubscriptionDoc>(SUBSCRIPTIONS)
        .await?
        .find(doc! { "tenantId": *tenant })
        .sort(doc! { "createdAt": 1 })
        .await?
        .try_collect()
        .await?)
}

/// One subscription of this tenant (404 for another tenant's).
pub async fn get(store: &Store, tenant: &TenantId, id: &str) -> Result<SubscriptionDoc, ApiError> {
    let oid = ObjectId::parse_str(id)
        .map_err(|_| ApiError::bad_request("subscriptionId must be 24 hex digits"))?;
    store
        .collection::<SubscriptionDoc>(SUBSCRIPTIONS)
        .await?
        .find_one(doc! { "_id": oid, "tenantId": *tenant })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event subscription {id} not found")))
}

pub async fn delete(store: &Store, tenant: &TenantId, id: &str) -> Result<(), ApiError> {
    let found = get(store, tenant, id).await?;
    store
        .collection::<SubscriptionDoc>(SUBSCRIPTIONS)
        .await?
        .delete_one(doc! { "_id": found.id, "tenantId": *tenant })
        .await?;
    tracing::info!(tenantId = %tenant, subscriptionId = %found.id, "event subscription deleted");
    Ok(())
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDoc {
    pub subscription_id: ObjectId,
    pub tenant_id: TenantId,
    pub event_id: String,
    pub event_type: EventType,
    /// The SQS receive count: 1 for the first try.
    pub attempt: u32,
    /// The receiver's HTTP status; 0 when it could not be reached.
    pub status: u16,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: DateTime,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub event_id: String,
    pub event_type: EventType,
    pub attempt: u32,
    pub status: u16,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: String,
}

/// The subscription's latest attempts, newest first.
pub async fn deliveries(
    store: &Store,
    tenant: &TenantId,
    id: &str,
) -> Result<Vec<DeliveryView>, ApiError> {
    let sub = get(store, tenant, id).await?;
    let docs: Vec<DeliveryDoc> = store
        .collection::<DeliveryDoc>(DELIVERIES)
        .await?
        .find(doc! { "subscriptionId": sub.id })
        .sort(doc! { "at": -1 })
        .limit(DELIVERIES_SHOWN)
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .into_iter()
        .map(|d| DeliveryView {
            event_id: d.event_id,
            event_type: d.event_type,
            attempt: d.attempt,
            status: d.status,
            ok: d.ok,
            error: d.error,
            duration_ms: d.duration_ms,
            at: rfc3339(d.at),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, events: &[&str]) -> SubscriptionRequest {
        SubscriptionRequest {
            url: url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    fn field(r: Result<(String, Vec<EventType>), ApiError>) -> String {
        match r {
            Err(ApiError::Unprocessable { field, .. }) => field,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn internal_addresses_are_refused_outside_development() {
        for internal in [
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://10.0.0.5/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://metadata.google.internal/",
        ] {
            assert_eq!(
                field(req(internal, &["message.status"]).parse(AppEnv::Production)),
                "url",
                "{internal}"
            );
        }
        assert!(
            req("https://203.0.113.7/x", &["message.status"])
                .parse(AppEnv::Production)
                .is_ok()
        );
    }

    #[test]
    fn urls_and_event_types_are_checked() {
        let ok = req(
            "https://crm.example.com/hooks/wa",
            &["message.received", "message.received"],
        )
        .parse(AppEnv::Production)
        .expect("valid");
        assert_eq!(ok.1, [EventType::MessageReceived]);
        assert_eq!(
            field(req("http://crm.example.com", &["message.status"]).parse(AppEnv::Production)),
            "url"
        );
        assert!(
            req("http://127.0.0.1:9/x", &["message.status"])
                .parse(AppEnv::Development)
                .is_ok()
        );
        assert_eq!(
            field(
                req("https://u:p@crm.example.com", &["message.status"]).parse(AppEnv::Production)
            ),
            "url"
        );
        assert_eq!(
            field(req("not a url", &["message.status"]).parse(AppEnv::Production)),
            "url"
        );
        assert_eq!(
            field(req("https://crm.example.com", &[]).parse(AppEnv::Production)),
            "events"
        );
        assert_eq!(
            field(
                req("https://crm.example.com", &["message.status", "x"]).parse(AppEnv::Production)
            ),
            "events[1]"
        );
    }
}
