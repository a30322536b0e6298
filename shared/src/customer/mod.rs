//! Customers (WhatsApp users talking to a tenant) and their conversation state.
//! `(tenantId, waId)` is unique; every update is a single atomic upsert.

pub mod revision;

pub use revision::{LastReply, Snapshot, Touch};

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::{
    Collection,
    bson::{DateTime, Document, doc},
    options::ReturnDocument,
};
use serde::{Deserialize, Serialize};

use crate::{
    error::ApiError,
    ids::TenantId,
    store::{CUSTOMERS, Store},
    template::TemplateKey,
};

/// Where a customer is in the tenant's conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub last_template_key: Option<TemplateKey>,
    /// Answers captured by templates with `capture` (`{{vars.<name>}}`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Invalid answers so far to the capture of the last template.
    #[serde(default)]
    pub capture_attempts: u32,
    /// A human has the conversation until then: no auto-replies.
    #[serde(default)]
    pub handoff_until: Option<DateTime>,
    /// The customer opted out (STOP): no bot replies, no API sends.
    #[serde(default)]
    pub opted_out_at: Option<DateTime>,
}

/// A state change decided by the engine or the send API; `None` / empty keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateUpdate {
    #[serde(default)]
    pub last_template_key: Option<TemplateKey>,
    #[serde(default)]
    pub state: Option<String>,
    /// Start over first: the state, the variables and a pending capture are cleared.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_until: Option<DateTime>,
    /// `true`: opted out now; `false`: opted in again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opted_out: Option<bool>,
}

impl StateUpdate {
    /// The last template sent, and nothing else.
    pub fn sent(key: TemplateKey) -> Self {
        Self {
            last_template_key: Some(key),
            ..Self::default()
        }
    }
}

async fn collection(store: &Store) -> Result<Collection<Document>, ApiError> {
    store.collection(CUSTOMERS).await
}

/// The `$set` and `$unset` of a state change (`$unset` may be empty).
fn state_change(update: &StateUpdate, now: DateTime) -> (Document, Document) {
    let mut set = doc! { "updatedAt": now };
    let mut unset = Document::new();
    if update.reset {
        for field in ["state", "vars", "captureAttempts"] {
            unset.insert(field, "");
        }
    }
    if let Some(k) = &update.last_template_key {
        set.insert("lastTemplateKey", k.as_str());
    }
    if let Some(s) = &update.state {
        unset.remove("state");
        set.insert("state", s.as_str());
    }
    for (name, value) in &update.vars {
        unset.remove("vars");
        set.insert(format!("vars.{name}"), value.as_str());
    }
    if let Some(n) = update.capture_attempts {
        unset.remove("captureAttempts");
        set.insert("captureAttempts", n as i64);
    }
    if let Some(until) = update.handoff_until {
        set.insert("handoffUntil", until);
    }
    match update.opted_out {
        Some(true) => {
            set.insert("optedOutAt", now);
        }
        Some(false) => {
            unset.insert("optedOutAt", "");
        }
        None => {}
    }
    (set, unset)
}

/// Persists a state change atomically (upsert: an API send may reach a new customer) and
/// returns the conversation it made. Every change moves the revision on, so a decision
/// taken on a remembered conversation (see [`revision`]) is never written over it.
pub async fn apply(
    store: &Store,
    tenant: &TenantId,
    wa_id: &str,
    update: &StateUpdate,
) -> Result<Snapshot, ApiError> {
    let now = DateTime::now();
    let (set, unset) = state_change(update, now);
    let mut change = doc! {
        "$set": set,
        "$setOnInsert": { "firstSeenAt": now },
        "$inc": { "rev": 1_i64 },
    };
    if !unset.is_empty() {
        change.insert("$unset", unset);
    }
    let doc = collection(store)
        .await?
        .find_one_and_update(doc! { "tenantId": *tenant, "waId": wa_id }, change)
        .upsert(true)
        .return_document(ReturnDocument::After)
        .projection(revision::PROJECTION.clone())
        .await?
        .unwrap_or_default();
    Ok(revision::read_snapshot(&doc).0)
}

pub const HANDOFF_MINUTES_DEFAULT: u32 = 24 * 60;
/// A week: a human who forgets to hand back does not silence the bot for ever.
pub const HANDOFF_MINUTES_MAX: u32 = 7 * 24 * 60;

/// `POST /tenants/{tenantId}/customers/{waId}/handoff` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffRequest {
    #[serde(default)]
    pub minutes: Option<u32>,
}

impl HandoffRequest {
    /// When the bot takes over again: `minutes` from now (default 24 h, at most a week).
    pub fn until(&self) -> Result<DateTime, ApiError> {
        let minutes = self.minutes.unwrap_or(HANDOFF_MINUTES_DEFAULT);
        if !(1..=HANDOFF_MINUTES_MAX).contains(&minutes) {
            return Err(ApiError::invalid(
                "minutes",
                format!("must be 1–{}", HANDOFF_MINUTES_MAX),
            ));
        }
        Ok(DateTime::from_millis(
            DateTime::now().timestamp_millis() + i64::from(minutes) * 60_000,
        ))
    }
}

/// Hands the conversation to a human until `until` (`None`: back to the bot now). 404 for
/// a customer who never wrote or was written to.
pub async fn set_handoff(
    store: &Store,
    tenant: &TenantId,
    wa_id: &str,
    until: Option<DateTime>,
) -> Result<CustomerView, ApiError> {
    let change = match until {
        Some(u) => doc! {
            "$set": { "handoffUntil": u, "updatedAt": DateTime::now() },
            "$inc": { "rev": 1_i64 },
        },
        None => doc! {
            "$unset": { "handoffUntil": "" },
            "$set": { "updatedAt": DateTime::now() },
            "$inc": { "rev": 1_i64 },
        },
    };
    let found = collection(store)
        .await?
        .update_one(doc! { "tenantId": *tenant, "waId": wa_id }, change)
        .await?;
    if found.matched_count == 0 {
        return Err(ApiError::not_found(format!("customer {wa_id} not found")));
    }
    get(store, tenant, wa_id).await
}

/// How long after a customer's last message free-form messages may reach them (Meta's
/// customer service window).
pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The end of the window opened by a message written at `last_inbound`.
pub fn window_open_until(last_inbound: DateTime) -> DateTime {
    DateTime::from_millis(last_inbound.timestamp_millis() + WINDOW.as_millis() as i64)
}

/// When a message written at `wa_timestamp` (Meta's clock) opened the window: Meta's own
/// time, so a delivery Meta retried hours later does not open a window the customer never
/// had; never later than now.
pub fn wrote_at(wa_timestamp: Option<DateTime>, now: DateTime) -> DateTime {
    match wa_timestamp {
        Some(t) if t < now => t,
        _ => now,
    }
}

/// Why a free-form message cannot go to this customer now, if it cannot.
pub fn window_refusal(last_inbound: Option<DateTime>, now: DateTime) -> Option<ApiError> {
    let message = match last_inbound {
        Some(at) if window_open_until(at) > now => return None,
        Some(at) => format!(
            "the customer last wrote at {}; free-form messages reach a customer only within 24 \
             hours of their last message: send an approved Meta template \
             (POST /tenants/{{tenantId}}/send/meta-template)",
            crate::ids::rfc3339(at)
        ),
        None => "the customer has never written to this number; free-form messages reach a \
                 customer only within 24 hours of their last message: send an approved Meta \
                 template (POST /tenants/{tenantId}/send/meta-template)"
            .to_owned(),
    };
    Some(ApiError::refused(
        "outside_customer_service_window",
        "to",
        message,
    ))
}

/// What an API send needs to know of the customer: when they last wrote and whether they
/// opted out. One round trip.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reach {
    pub last_inbound: Option<DateTime>,
    pub opted_out_at: Option<DateTime>,
}

pub async fn reach(store: &Store, tenant: &TenantId, wa_id: &str) -> Result<Reach, ApiError> {
    let doc = collection(store)
        .await?
        .find_one(doc! { "tenantId": *tenant, "waId": wa_id })
        .projection(doc! { "lastInboundAt": 1, "optedOutAt": 1 })
        .await?;
    Ok(doc.map_or_else(Reach::default, |d| Reach {
        last_inbound: d.get_datetime("lastInboundAt").ok().copied(),
        opted_out_at: d.get_datetime("optedOutAt").ok().copied(),
    }))
}

/// Refuses any API send to a customer who opted out (STOP) until they opt in again.
pub fn opt_out_refusal(reach: &Reach) -> Option<ApiError> {
    reach.opted_out_at.map(|at| {
        ApiError::refused(
            "customer_opted_out",
            "to",
            format!(
                "the customer opted out at {} and receives nothing until they opt in again \
                 (e.g. by writing START)",
                crate::ids::rfc3339(at)
            ),
        )
    })
}

/// A customer as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    pub wa_id: String,
    pub name: Option<String>,
    pub last_inbound_at: Option<String>,
    pub window_open_until: Option<String>,
    pub window_open: bool,
    pub state: Option<String>,
    pub last_template_key: Option<String>,
    pub vars: BTreeMap<String, String>,
    /// A human has the conversation (no auto-replies) until then.
    pub handoff_until: Option<String>,
    pub opted_out_at: Option<String>,
    pub first_seen_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerDoc {
    #[serde(rename = "_id")]
    id: mongodb::bson::oid::ObjectId,
    wa_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    last_inbound_at: Option<DateTime>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    last_template_key: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    handoff_until: Option<DateTime>,
    #[serde(default)]
    opted_out_at: Option<DateTime>,
    #[serde(default)]
    first_seen_at: Option<DateTime>,
}

impl CustomerDoc {
    fn view(&self, now: DateTime) -> CustomerView {
        let until = self.last_inbound_at.map(window_open_until);
        CustomerView {
            wa_id: self.wa_id.clone(),
            name: self.name.clone(),
            last_inbound_at: self.last_inbound_at.map(crate::ids::rfc3339),
            window_open_until: until.map(crate::ids::rfc3339),
            window_open: until.is_some_and(|u| u > now),
            state: self.state.clone(),
            last_template_key: self.last_template_key.clone(),
            vars: self.vars.clone(),
            handoff_until: self
                .handoff_until
                .filter(|u| *u > now)
                .map(crate::ids::rfc3339),
            opted_out_at: self.opted_out_at.map(crate::ids::rfc3339),
            first_seen_at: self.first_seen_at.map(crate::ids::rfc3339),
        }
    }
}

/// `GET /tenants/{tenantId}/customers/{waId}`.
pub async fn get(store: &Store, tenant: &TenantId, wa_id: &str) -> Result<CustomerView, ApiError> {
    let doc = collection(store)
        .await?
        .find_one(doc! { "tenantId": *tenant, "waId": wa_id })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("customer {wa_id} not found")))?;
    let doc: CustomerDoc = mongodb::bson::from_document(doc).map_err(|_| ApiError::Internal)?;
    Ok(doc.view(DateTime::now()))
}

pub const LIST_LIMIT_MAX: i64 = 200;

/// `GET /tenants/{tenantId}/customers` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A page of customers, newest first, and the cursor of the next page.
pub struct CustomerPage {
    pub customers: Vec<CustomerView>,
    pub next_cursor: Option<String>,
}

/// `<firstSeenAt ms>_<id>`: the position after which the next page starts.
fn parse_cursor(c: &str) -> Option<(DateTime, mongodb::bson::oid::ObjectId)> {
    let (at, id) = c.split_once('_')?;
    Some((
        DateTime::from_millis(at.parse().ok()?),
        mongodb::bson::oid::ObjectId::parse_str(id).ok()?,
    ))
}

/// Newest first (by when the customer first wrote or was written to); the cursor is
/// opaque to callers.
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    q: &CustomerQuery,
) -> Result<CustomerPage, ApiError> {
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=LIST_LIMIT_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("must be an integer from 1 to {LIST_LIMIT_MAX}"),
                ));
            }
        },
    };
    let mut filter = doc! { "tenantId": *tenant };
    if let Some(c) = q.cursor.as_deref() {
        let (at, id) = parse_cursor(c).ok_or_else(|| {
            ApiError::invalid("cursor", "must be a nextCursor from a previous page")
        })?;
        filter.insert(
            "$or",
            vec![
                doc! { "firstSeenAt": { "$lt": at } },
                doc! { "firstSeenAt": at, "_id": { "$lt": id } },
            ],
        );
    }
    let docs: Vec<Document> = collection(store)
        .await?
        .find(filter)
        .sort(doc! { "firstSeenAt": -1, "_id": -1 })
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    let now = DateTime::now();
    let docs: Vec<CustomerDoc> = docs
        .into_iter()
        .filter_map(|d| mongodb::bson::from_document(d).ok())
        .collect();
    let next_cursor = (docs.len() as i64 == limit)
        .then(|| {
            docs.last().map(|d| {
                let at = d.first_seen_at.map_or(0, |t| t.timestamp_millis());
                format!("{at}_{}", d.id.to_hex())
            })
        })
        .flatten();
    Ok(CustomerPage {
        customers: docs.iter().map(|d| d.view(now)).collect(),
        next_cursor,
    })
}
