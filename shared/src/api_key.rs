//! Tenant API keys: random, prefixed, shown once, stored only as their SHA-256. A tenant has
//! several, each with a label, in its document's `apiKeys` array (one indexed look-up
//! finds the key, its tenant and the tenant's status together). Deleting one refuses it in
//! the process that deleted it at once and everywhere within the accepted-key cache's
//! lifetime (4 s).
//!
//! Migration: tenants registered before labelled keys hold their key as `apiKeyHash`; its
//! first use moves it into `apiKeys` (label "Registration key"), and the old unique index
//! is dropped when indexes are ensured.

use mongodb::bson::{self, DateTime, Document, doc, oid::ObjectId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    error::ApiError,
    ids::{TenantId, TenantStatus, rfc3339},
    secret::Secret,
    store::Store,
};

/// Prefix of tenant API keys, so a key is recognisable in a secret scanner.
pub const API_KEY_PREFIX: &str = "wak_";
/// How much of a key is kept in clear, to tell keys apart in a list.
const SHOWN_CHARS: usize = API_KEY_PREFIX.len() + 8;
pub const LABEL_MAX: usize = 60;
/// Keys per tenant: enough for one per integration, few enough to review.
pub const KEYS_MAX: usize = 20;
const REGISTRATION_LABEL: &str = "Registration key";

/// A tenant API key: shown once, stored only as its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiKey(Secret);

impl ApiKey {
    pub fn generate() -> Self {
        Self(Secret::new(format!(
            "{API_KEY_PREFIX}{}",
            crate::ids::random_hex(32)
        )))
    }

    pub fn hash(&self) -> String {
        hash_key(self.0.expose())
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    fn shown(&self) -> String {
        self.0.expose().chars().take(SHOWN_CHARS).collect()
    }

    /// The stored entry for this key.
    pub fn entry(&self, label: &KeyLabel, now: DateTime) -> Document {
        doc! {
            "id": ObjectId::new().to_hex(),
            "label": &label.0,
            "prefix": self.shown(),
            "hash": self.hash(),
            "createdAt": now,
        }
    }
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A key's label: 1–60 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLabel(String);

impl KeyLabel {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > LABEL_MAX {
            return Err(ApiError::invalid(
                "label",
                format!("must be 1–{LABEL_MAX} characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "label",
                "must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn registration() -> Self {
        Self(REGISTRATION_LABEL.into())
    }
}

/// A key's id in paths: 24 hex digits.
pub fn parse_key_id(s: &str) -> Result<String, ApiError> {
    ObjectId::parse_str(s)
        .map(|o| o.to_hex())
        .map_err(|_| ApiError::bad_request("keyId must be 24 hex digits"))
}

/// `POST /tenants/{tenantId}/api-keys` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewKeyRequest {
    #[serde(default)]
    pub label: Option<String>,
}

/// What the API shows of a key: never its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub id: String,
    pub label: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub created_at: String,
    /// Within a few seconds: a key's use is recorded when a process looks it up, not on
    /// each of the requests it then accepts from its cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyDoc {
    id: String,
    label: String,
    prefix: String,
    #[serde(default)]
    hash: String,
    created_at: DateTime,
    #[serde(default)]
    last_used_at: Option<DateTime>,
}

impl From<KeyDoc> for KeyView {
    fn from(d: KeyDoc) -> Self {
        Self {
            id: d.id,
            label: d.label,
            prefix: d.prefix,
            created_at: rfc3339(d.created_at),
            last_used_at: d.last_used_at.map(rfc3339),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeysDoc {
    #[serde(default)]
    api_keys: Vec<KeyDoc>,
}

/// The tenant's keys, oldest first (404 when the tenant does not exist).
pub async fn list(store: &Store, tenant: &TenantId) -> Result<Vec<KeyView>, ApiError> {
    let found = store
        .tenants()
        .await?
        .clone_with_type::<KeysDoc>()
        .find_one(doc! { "_id": *tenant })
        .projection(doc! { "apiKeys": 1 })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {tenant} not found")))?;
    Ok(found.api_keys.into_iter().map(KeyView::from).collect())
}

/// A new key for the tenant, shown this once.
pub async fn create(
    store: &Store,
    tenant: &TenantId,
    label: &KeyLabel,
) -> Result<(KeyView, ApiKey), ApiError> {
    let key = ApiKey::generate();
    let now = DateTime::now();
    let entry = key.entry(label, now);
    let view = KeyView {
        id: entry.get_str("id").unwrap_or_default().to_owned(),
        label: label.0.clone(),
        prefix: key.shown(),
        created_at: rfc3339(now),
        last_used_at: None,
    };
    // The count is checked in the same write, so concurrent creations cannot pass it; no
    // match is a full tenant, or none (`list` answers the 404).
    let mut filter = doc! { "_id": *tenant };
    filter.insert(
        format!("apiKeys.{}", KEYS_MAX - 1),
        doc! { "$exists": false },
    );
    let r = store
        .tenants()
        .await?
        .update_one(
            filter,
            doc! { "$push": { "apiKeys": entry }, "$set": { "updatedAt": now } },
        )
        .await?;
    if r.matched_count == 0 {
        list(store, tenant).await?;
        return Err(ApiError::conflict(format!(
            "a tenant has at most {KEYS_MAX} API keys: delete one first"
        )));
    }
    tracing::info!(tenantId = %tenant, keyId = %view.id, "API key created");
    Ok((view, key))
}

/// Deletes one key; returns its hash, for the caller's cache. 404 when the tenant has no
/// such key.
pub async fn revoke(store: &Store, tenant: &TenantId, key_id: &str) -> Result<String, ApiError> {
    let before = store
        .tenants()
        .await?
        .clone_with_type::<KeysDoc>()
        .find_one_and_update(
            doc! { "_id": *tenant, "apiKeys.id": key_id },
            doc! {
                "$pull": { "apiKeys": { "id": key_id } },
                "$set": { "updatedAt": DateTime::now() },
            },
        )
        .projection(doc! { "apiKeys": 1 })
        .await?;
    let hash = before
        .and_then(|d| d.api_keys.into_iter().find(|k| k.id == key_id))
        .map(|k| k.hash)
        .ok_or_else(|| ApiError::not_found(format!("API key {key_id} not found")))?;
    tracing::info!(tenantId = %tenant, keyId = %key_id, "API key deleted");
    Ok(hash)
}

/// The hashes of all the tenant's keys (to drop them from a cache).
pub async fn hashes(store: &Store, tenant: &TenantId) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Hash {
        hash: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Hashes {
        #[serde(default)]
        api_keys: Vec<Hash>,
    }
    let found = store
        .tenants()
        .await?
        .clone_with_type::<Hashes>()
        .find_one(doc! { "_id": *tenant })
        .projection(doc! { "apiKeys.hash": 1 })
        .await?;
    Ok(found
        .map(|d| d.api_keys.into_iter().map(|k| k.hash).collect())
        .unwrap_or_default())
}

#[derive(Deserialize)]
struct OwnerDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    status: TenantStatus,
}

/// The tenant that owns the key with this hash, and its status; the key's use is recorded
/// in the same write. `None`: no such key.
pub async fn owner(
    store: &Store,
    hash: &str,
) -> Result<Option<(TenantId, TenantStatus)>, ApiError> {
    let tenants = store.tenants().await?.clone_with_type::<OwnerDoc>();
    let now = DateTime::now();
    let found = tenants
        .find_one_and_update(
            doc! { "apiKeys.hash": hash },
            doc! { "$set": { "apiKeys.$[k].lastUsedAt": now } },
        )
        .array_filters(vec![doc! { "k.hash": hash }])
        .projection(doc! { "_id": 1, "status": 1 })
        .await?;
    if let Some(o) = found {
        return Ok(Some((o.id.into(), o.status)));
    }
    // A registration key from before labelled keys: moved into `apiKeys` on first use.
    let legacy = bson::doc! {
        "id": ObjectId::new().to_hex(),
        "label": REGISTRATION_LABEL,
        "prefix": API_KEY_PREFIX,
        "hash": hash,
        "createdAt": "$createdAt",
        "lastUsedAt": now,
    };
    let migrated = tenants
        .find_one_and_update(
            doc! { "apiKeyHash": hash },
            vec![
                doc! { "$set": { "apiKeys": { "$concatArrays": [
                    { "$ifNull": ["$apiKeys", []] }, [legacy],
                ] } } },
                doc! { "$unset": "apiKeyHash" },
            ],
        )
        .projection(doc! { "_id": 1, "status": 1 })
        .await?;
    Ok(migrated.map(|o| (o.id.into(), o.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hash_stably() {
        let (a, b) = (ApiKey::generate(), ApiKey::generate());
        assert!(a.expose().starts_with(API_KEY_PREFIX));
        assert_eq!(a.expose().len(), API_KEY_PREFIX.len() + 64);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), hash_key(a.expose()));
        assert!(!a.hash().contains(a.expose()));
        assert_eq!(a.shown().len(), SHOWN_CHARS);
        assert!(a.expose().starts_with(&a.shown()));
    }

    #[test]
    fn labels_and_ids_are_checked() {
        assert!(KeyLabel::parse(" CRM ").is_ok_and(|l| l.0 == "CRM"));
        assert!(KeyLabel::parse("").is_err());
        assert!(KeyLabel::parse(&"k".repeat(61)).is_err());
        assert!(KeyLabel::parse("a\nb").is_err());
        assert!(parse_key_id("65a1b2c3d4e5f60718293a4b").is_ok());
        assert!(parse_key_id("nope").is_err());
    }
}
