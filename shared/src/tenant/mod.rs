//! Tenants: a business with its own WhatsApp number and access token.
//!
//! Request bodies are parsed into types that can only hold valid values; everything after
//! parsing works with those.

use mongodb::bson::{self, Binary, DateTime, Document, doc, oid::ObjectId, spec::BinarySubtype};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

pub mod numbers;
mod settings;

pub use numbers::Number;
pub use settings::{SettingsPatch, bot_settings, update_settings};

use crate::{
    api_key::{ApiKey, KeyLabel},
    cache::TtlCache,
    crypto::TokenCipher,
    engine::BotSettings,
    error::ApiError,
    ids::{TenantId, TenantRef, TenantStatus, rfc3339},
    pacing::Pacing,
    secret::Secret,
    store::{Store, is_duplicate_key},
};

/// WhatsApp's id of a business phone number: digits only, 5–20 of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PhoneNumberId(String);

impl PhoneNumberId {
    pub fn parse(field: &str, s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        if (5..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ApiError::invalid(field, "must be 5–20 digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Display name, 1–100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        match s.chars().count() {
            0 => Err(ApiError::invalid("name", "must not be empty")),
            1..=100 => Ok(Self(s.to_owned())),
            _ => Err(ApiError::invalid("name", "must be at most 100 characters")),
        }
    }
}

/// WhatsApp Business Account id: optional; digits, as Meta's ids are (it goes into Graph
/// URLs, so nothing else may).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WabaId(String);

impl WabaId {
    pub fn parse(s: &str) -> Result<Option<Self>, ApiError> {
        let s = s.trim();
        match s.len() {
            0 => Ok(None),
            1..=32 if s.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(Self(s.to_owned()))),
            _ => Err(ApiError::invalid(
                "wabaId",
                "must be Meta's WhatsApp Business Account id: 1–32 digits",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's Graph API access token. Only ever in memory in plaintext.
#[derive(Debug, Clone)]
pub struct AccessToken(Secret);

pub const ACCESS_TOKEN_MAX_BYTES: usize = 4096;

impl AccessToken {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        if s.is_empty() {
            Err(ApiError::invalid("accessToken", "must not be empty"))
        } else if s.len() > ACCESS_TOKEN_MAX_BYTES {
            Err(ApiError::invalid(
                "accessToken",
                "must be at most 4096 bytes",
            ))
        } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Err(ApiError::invalid(
                "accessToken",
                "must not contain spaces or control characters",
            ))
        } else {
            Ok(Self(Secret::new(s)))
        }
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }

    /// A `mock_` token simulates delivery without calling Graph (local development only).
    pub fn is_mock(&self) -> bool {
        crate::whatsapp::is_mock_token(self.0.expose())
    }
}

/// `POST /tenants/register` body as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub name: String,
    pub phone_number_id: String,
    pub access_token: String,
    #[serde(default)]
    pub waba_id: Option<String>,
}

impl Drop for RegisterRequest {
    fn drop(&mut self) {
        // The plaintext token is overwritten before its memory is freed.
        self.access_token.zeroize();
    }
}

/// A registration that passed validation.
#[derive(Debug)]
pub struct NewTenant {
    pub name: TenantName,
    pub phone_number_id: PhoneNumberId,
    pub waba_id: Option<WabaId>,
    pub access_token: AccessToken,
}

impl RegisterRequest {
    /// Fields are checked in the order of the documented body, the first bad one is reported.
    pub fn parse(&self) -> Result<NewTenant, ApiError> {
        Ok(NewTenant {
            name: TenantName::parse(&self.name)?,
            phone_number_id: PhoneNumberId::parse("phoneNumberId", &self.phone_number_id)?,
            access_token: AccessToken::parse(&self.access_token)?,
            waba_id: match &self.waba_id {
                Some(w) => WabaId::parse(w)?,
                None => None,
            },
        })
    }
}

/// What the API shows of a tenant. Built from a projection that leaves the token ciphertext
/// and the API key hash in the database, so they cannot leak by accident.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub id: String,
    pub name: String,
    /// The first of `numbers`: where a message without `from` goes from.
    pub phone_number_id: String,
    /// Every number the tenant sends from and is reached on.
    pub numbers: Vec<Number>,
    pub waba_id: Option<String>,
    pub status: TenantStatus,
    /// Pacing and back-off settings (`PATCH /tenants/{tenantId}`).
    pub settings: Pacing,
    /// Conversation settings: reset, opt-out and opt-in keywords, start template, handoff
    /// length (`PATCH /tenants/{tenantId}`).
    pub bot: BotSettings,
    pub token_status: TokenStatusView,
    /// Set while API sends pause after Meta's spam / marketing limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marketing_paused_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Whether Graph accepts the tenant's token: `invalid` after an auth error (190, ...),
/// until `PUT /tenants/{tenantId}/access-token` replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    #[default]
    Valid,
    Invalid,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatusView {
    pub status: TokenState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<crate::message::MessageError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenStatusDoc {
    #[serde(default)]
    status: TokenState,
    #[serde(default)]
    last_error: Option<crate::message::MessageError>,
    #[serde(default)]
    since: Option<DateTime>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantPublicDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    name: String,
    phone_number_id: String,
    #[serde(default)]
    numbers: Option<Vec<Number>>,
    #[serde(default)]
    waba_id: Option<String>,
    status: TenantStatus,
    #[serde(default)]
    pacing: Option<Pacing>,
    #[serde(default)]
    bot: Option<BotSettings>,
    #[serde(default)]
    token_status: Option<TokenStatusDoc>,
    #[serde(default)]
    marketing_paused_until: Option<DateTime>,
    created_at: DateTime,
    updated_at: DateTime,
}

impl From<TenantPublicDoc> for TenantView {
    fn from(d: TenantPublicDoc) -> Self {
        Self {
            id: d.id.to_hex(),
            name: d.name,
            numbers: numbers::or_legacy(d.numbers, &d.phone_number_id),
            phone_number_id: d.phone_number_id,
            waba_id: d.waba_id,
            status: d.status,
            settings: d.pacing.unwrap_or_default(),
            bot: d.bot.unwrap_or_default(),
            token_status: token_status_view(d.token_status.unwrap_or_default()),
            marketing_paused_until: d
                .marketing_paused_until
                .filter(|u| u.timestamp_millis() > DateTime::now().timestamp_millis())
                .map(rfc3339),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

fn token_status_view(d: TokenStatusDoc) -> TokenStatusView {
    TokenStatusView {
        status: d.status,
        last_error: d.last_error,
        since: d.since.map(rfc3339),
    }
}

fn public_projection() -> Document {
    doc! {
        "name": 1, "phoneNumberId": 1, "numbers": 1, "wabaId": 1, "status": 1, "pacing": 1, "bot": 1,
        "tokenStatus": 1,
        "marketingPausedUntil": 1, "createdAt": 1, "updatedAt": 1,
    }
}

/// Result of a registration: the tenant and its API key, shown this once.
pub struct Registered {
    pub tenant: TenantView,
    pub api_key: ApiKey,
    pub key_id: String,
}

fn duplicate_number(n: &PhoneNumberId) -> ApiError {
    ApiError::conflict(format!(
        "phoneNumberId {} is already registered",
        n.as_str()
    ))
}

/// Registers a tenant: the token is encrypted with KMS (context `{tenantId}`) before anything
/// is stored; the unique index on `phoneNumberId` decides concurrent registrations. The
/// caller drops its cached route for the number.
pub async fn register(
    store: &Store,
    cipher: &TokenCipher,
    app_env: crate::config::AppEnv,
    req: &RegisterRequest,
) -> Result<Registered, ApiError> {
    let new = req.parse()?;
    if new.access_token.is_mock() && app_env != crate::config::AppEnv::Development {
        return Err(ApiError::invalid(
            "accessToken",
            "mock_ tokens simulate delivery and are accepted only with APP_ENV=development",
        ));
    }
    let tenants = store.tenants().await?;

    // Saves a KMS call for the common duplicate; the index below is the real guard.
    let existing = tenants
        .find_one(doc! { "phoneNumberId": new.phone_number_id.as_str() })
        .projection(doc! { "_id": 1 })
        .await?;
    if existing.is_some() {
        return Err(duplicate_number(&new.phone_number_id));
    }

    create(
        store,
        cipher,
        Creation {
            id: TenantId::generate(),
            name: &new.name,
            numbers: vec![Number::new(&new.phone_number_id, None)],
            waba_id: new.waba_id.as_ref().map(|w| w.0.as_str()),
            token: new.access_token.secret(),
            key_label: KeyLabel::registration(),
        },
    )
    .await
}

/// What a new tenant starts with: a registration's one number, or Embedded Signup's.
pub struct Creation<'a> {
    pub id: TenantId,
    pub name: &'a TenantName,
    /// At least one; the first is where messages without `from` go from.
    pub numbers: Vec<Number>,
    pub waba_id: Option<&'a str>,
    pub token: &'a Secret,
    pub key_label: KeyLabel,
}

/// Stores a new tenant with its token encrypted with KMS (context `{tenantId}`) and its
/// first API key. The unique indexes on its numbers decide concurrent creations (409).
pub async fn create(
    store: &Store,
    cipher: &TokenCipher,
    c: Creation<'_>,
) -> Result<Registered, ApiError> {
    let first = c.numbers.first().cloned().ok_or(ApiError::Internal)?;
    let ciphertext = cipher.encrypt(&c.id, c.token).await?;
    let api_key = ApiKey::generate();
    let now = DateTime::now();
    let key = api_key.entry(&c.key_label, now);
    let key_id = key
        .get_str("id")
        .map_err(|_| ApiError::Internal)?
        .to_owned();
    let numbers = c
        .numbers
        .iter()
        .map(Number::to_document)
        .collect::<Result<Vec<_>, _>>()?;
    let document = doc! {
        "_id": c.id,
        "name": &c.name.0,
        "phoneNumberId": &first.phone_number_id,
        "numbers": numbers,
        "wabaId": c.waba_id,
        "status": bson::to_bson(&TenantStatus::Active).map_err(|_| ApiError::Internal)?,
        "accessTokenCiphertext": Binary { subtype: BinarySubtype::Generic, bytes: ciphertext },
        "kmsKeyId": cipher.key_id(),
        "apiKeys": [key],
        "tokenVersion": 1_i64,
        "tokenStatus": { "status": "valid", "since": now },
        "createdAt": now,
        "updatedAt": now,
    };
    match store.tenants().await?.insert_one(document).await {
        Ok(_) => {}
        Err(e) if is_duplicate_key(&e) => {
            return Err(match &c.numbers[..] {
                [one] => duplicate_number(&PhoneNumberId(one.phone_number_id.clone())),
                _ => ApiError::conflict("one of these numbers is already registered"),
            });
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenantId = %c.id, phoneNumberId = %first.phone_number_id, numbers = c.numbers.len(), "tenant registered");
    Ok(Registered {
        tenant: TenantView {
            id: c.id.to_string(),
            name: c.name.0.clone(),
            phone_number_id: first.phone_number_id.clone(),
            numbers: c.numbers,
            waba_id: c.waba_id.map(str::to_owned),
            status: TenantStatus::Active,
            settings: Pacing::default(),
            bot: BotSettings::default(),
            token_status: TokenStatusView {
                status: TokenState::Valid,
                last_error: None,
                since: Some(rfc3339(now)),
            },
            marketing_paused_until: None,
            created_at: rfc3339(now),
            updated_at: rfc3339(now),
        },
        api_key,
        key_id,
    })
}

/// `PUT /tenants/{tenantId}/access-token` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub access_token: String,
}

impl Drop for TokenRequest {
    fn drop(&mut self) {
        self.access_token.zeroize();
    }
}

/// Replaces a tenant's token: encrypted with KMS, a new `tokenVersion` (so every cached
/// decryption of the old one is unused from then on) and `tokenStatus: valid`. The caller
/// then releases the messages held for the old token.
pub async fn replace_token(
    store: &Store,
    cipher: &TokenCipher,
    app_env: crate::config::AppEnv,
    id: &TenantId,
    req: &TokenRequest,
) -> Result<TenantView, ApiError> {
    let token = AccessToken::parse(&req.access_token)?;
    if token.is_mock() && app_env != crate::config::AppEnv::Development {
        return Err(ApiError::invalid(
            "accessToken",
            "mock_ tokens simulate delivery and are accepted only with APP_ENV=development",
        ));
    }
    ensure_exists(store, id).await?;
    let ciphertext = cipher.encrypt(id, token.secret()).await?;
    let now = DateTime::now();
    store
        .tenants()
        .await?
        .update_one(
            doc! { "_id": *id },
            doc! {
                "$set": {
                    "accessTokenCiphertext": Binary { subtype: BinarySubtype::Generic, bytes: ciphertext },
                    "kmsKeyId": cipher.key_id(),
                    "tokenStatus": { "status": "valid", "since": now },
                    "updatedAt": now,
                },
                "$inc": { "tokenVersion": 1_i64 },
            },
        )
        .await?;
    tracing::info!(tenantId = %id, "access token replaced");
    find(store, id).await
}

/// What the sender and the send API need of a tenant, read together and cached for
/// the cache's lifetime (4 s, `SENDING_CACHE_TTL`): a setting, a token or a token
/// status changed in any process is seen everywhere within that.
#[derive(Debug, Clone)]
pub struct Sending {
    /// Where a message without `from` goes from.
    pub phone_number_id: String,
    /// Every number of the tenant.
    pub numbers: Vec<String>,
    pub pacing: Pacing,
    /// Bumped by every token replacement (a cached decryption is keyed by it) and by
    /// re-activation: a message held on an older version is released.
    pub token_version: i64,
    pub token_state: TokenState,
    pub ciphertext: Vec<u8>,
    /// Epoch milliseconds until which API sends pause (131048 / 131049).
    pub marketing_paused_until: Option<i64>,
    /// Disabled: API sends are refused and queued messages held until it is active again.
    pub status: TenantStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendingDoc {
    phone_number_id: String,
    #[serde(default)]
    numbers: Option<Vec<Number>>,
    status: TenantStatus,
    #[serde(default)]
    pacing: Option<Pacing>,
    #[serde(default)]
    token_version: Option<i64>,
    #[serde(default)]
    token_status: Option<TokenStatusDoc>,
    access_token_ciphertext: Binary,
    #[serde(default)]
    marketing_paused_until: Option<DateTime>,
}

/// The tenant's sending profile, through the warm cache (404 when unknown).
pub async fn sending(
    store: &Store,
    cache: &TtlCache<TenantId, Sending>,
    id: &TenantId,
) -> Result<std::sync::Arc<Sending>, ApiError> {
    cache
        .get_or_load(id, async {
            let doc = store
                .tenants()
                .await?
                .clone_with_type::<SendingDoc>()
                .find_one(doc! { "_id": *id })
                .projection(doc! {
                    "phoneNumberId": 1, "numbers": 1, "pacing": 1, "tokenVersion": 1, "tokenStatus": 1,
                    "accessTokenCiphertext": 1, "marketingPausedUntil": 1, "status": 1,
                })
                .await?
                .ok_or_else(|| ApiError::not_found(format!("tenant {id} not found")))?;
            Ok::<_, ApiError>(Sending {
                numbers: numbers::or_legacy(doc.numbers, &doc.phone_number_id)
                    .into_iter()
                    .map(|n| n.phone_number_id)
                    .collect(),
                phone_number_id: doc.phone_number_id,
                pacing: doc.pacing.unwrap_or_default(),
                token_version: doc.token_version.unwrap_or(0),
                token_state: doc.token_status.unwrap_or_default().status,
                ciphertext: doc.access_token_ciphertext.bytes,
                marketing_paused_until: doc.marketing_paused_until.map(|d| d.timestamp_millis()),
                status: doc.status,
            })
        })
        .await
}

impl Sending {
    /// The number a message goes from: its `from` while that is still one of the tenant's
    /// (a number removed meanwhile is never used; it may be another tenant's by now), else
    /// the first.
    pub fn number<'a>(&'a self, from: Option<&'a str>) -> &'a str {
        match from {
            Some(f) if self.numbers.iter().any(|n| n == f) => f,
            _ => &self.phone_number_id,
        }
    }

    /// `from` checked for an API send: one of the tenant's numbers (422 naming it), or the
    /// first when left out.
    pub fn from_field(&self, from: Option<&str>) -> Result<Option<String>, ApiError> {
        match from.map(str::trim) {
            None | Some("") => Ok(None),
            Some(f) if self.numbers.iter().any(|n| n == f) => Ok(Some(f.to_owned())),
            Some(_) => Err(ApiError::invalid(
                "from",
                "must be one of the tenant's numbers (its phoneNumberId)",
            )),
        }
    }
}

/// Marks the token that failed (`version`) invalid. `false`: it was replaced meanwhile, so
/// the failure says nothing about the current token.
pub async fn mark_token_invalid(
    store: &Store,
    id: &TenantId,
    version: i64,
    error: &crate::message::MessageError,
) -> Result<bool, ApiError> {
    let now = DateTime::now();
    let error = bson::to_bson(error).map_err(|_| ApiError::Internal)?;
    let version_filter = if version == 0 {
        doc! { "$in": [0_i64, null] }
    } else {
        doc! { "$eq": version }
    };
    let r = store
        .tenants()
        .await?
        .update_one(
            doc! { "_id": *id, "tokenVersion": version_filter },
            vec![doc! { "$set": {
                "tokenStatus": {
                    "status": "invalid",
                    "lastError": { "$literal": error },
                    // The first failure's time stays while the token stays invalid.
                    "since": { "$cond": [
                        { "$eq": ["$tokenStatus.status", "invalid"] },
                        { "$ifNull": ["$tokenStatus.since", now] },
                        now,
                    ] },
                },
            } }],
        )
        .await?;
    if r.matched_count > 0 {
        tracing::warn!(tenantId = %id, "access token refused by Graph: the tenant's messages are held until it is replaced");
    }
    Ok(r.matched_count > 0)
}

/// The current token version, read now (not cached).
pub async fn token_version(store: &Store, id: &TenantId) -> Result<i64, ApiError> {
    let doc = store
        .tenants()
        .await?
        .find_one(doc! { "_id": *id })
        .projection(doc! { "tokenVersion": 1 })
        .await?;
    Ok(doc
        .and_then(|d| d.get_i64("tokenVersion").ok())
        .unwrap_or(0))
}

/// Pauses the tenant's API sends until `until` (Meta's spam / marketing limits); a later
/// pause never shortens an earlier one.
pub async fn pause_marketing(
    store: &Store,
    id: &TenantId,
    until: DateTime,
) -> Result<(), ApiError> {
    store
        .tenants()
        .await?
        .update_one(
            doc! { "_id": *id },
            vec![doc! { "$set": { "marketingPausedUntil": { "$max": [
                { "$ifNull": ["$marketingPausedUntil", until] }, until,
            ] } } }],
        )
        .await?;
    tracing::warn!(tenantId = %id, until = %until, "Meta limited sends: API sends pause");
    Ok(())
}

pub async fn find(store: &Store, id: &TenantId) -> Result<TenantView, ApiError> {
    let tenants = store.tenants().await?;
    let found = tenants
        .clone_with_type::<TenantPublicDoc>()
        .find_one(doc! { "_id": *id })
        .projection(public_projection())
        .await?;
    found
        .map(TenantView::from)
        .ok_or_else(|| ApiError::not_found(format!("tenant {id} not found")))
}

#[derive(Deserialize)]
struct TenantRefDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    status: TenantStatus,
}

/// The tenant that owns `phone_number_id` (active or disabled), through the warm cache.
pub async fn by_phone_number(
    store: &Store,
    cache: &TtlCache<String, Option<TenantRef>>,
    phone_number_id: &str,
) -> Result<Option<TenantRef>, ApiError> {
    let key = phone_number_id.to_owned();
    let found = cache
        .get_or_load(&key, async {
            let doc = store
                .tenants()
                .await?
                .clone_with_type::<TenantRefDoc>()
                .find_one(doc! { "$or": [
                    { "numbers.phoneNumberId": phone_number_id },
                    // A tenant not migrated yet (see `numbers`).
                    { "phoneNumberId": phone_number_id },
                ] })
                .projection(doc! { "_id": 1, "status": 1 })
                .await?;
            Ok::<_, ApiError>(doc.map(|d| TenantRef {
                id: d.id.into(),
                status: d.status,
            }))
        })
        .await?;
    Ok(found.as_ref().clone())
}

/// The tenants of a WhatsApp Business Account (its template webhooks concern them).
pub async fn ids_by_waba(store: &Store, waba_id: &str) -> Result<Vec<TenantId>, ApiError> {
    use futures::TryStreamExt;
    let docs: Vec<Document> = store
        .tenants()
        .await?
        .find(doc! { "wabaId": waba_id })
        .projection(doc! { "_id": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .iter()
        .filter_map(|d| d.get_object_id("_id").ok().map(TenantId::from))
        .collect())
}

/// 404 unless the tenant exists.
pub async fn ensure_exists(store: &Store, id: &TenantId) -> Result<(), ApiError> {
    let found = store
        .tenants()
        .await?
        .find_one(doc! { "_id": *id })
        .projection(doc! { "_id": 1 })
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("tenant {id} not found")))
}

/// Every tenant, oldest first.
pub async fn list(store: &Store) -> Result<Vec<TenantView>, ApiError> {
    use futures::TryStreamExt;
    let tenants = store.tenants().await?;
    let docs: Vec<TenantPublicDoc> = tenants
        .clone_with_type::<TenantPublicDoc>()
        .find(doc! {})
        .projection(public_projection())
        .sort(doc! { "createdAt": 1, "_id": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs.into_iter().map(TenantView::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, pnid: &str, token: &str) -> RegisterRequest {
        RegisterRequest {
            name: name.into(),
            phone_number_id: pnid.into(),
            access_token: token.into(),
            waba_id: None,
        }
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::Unprocessable { field, .. } => field,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_valid_registration() {
        let t = req(" Acme ", "123456789012345", "EAAtoken")
            .parse()
            .expect("valid");
        assert_eq!(t.name.0, "Acme");
        assert_eq!(t.phone_number_id.as_str(), "123456789012345");
    }

    #[test]
    fn names_the_invalid_field() {
        assert_eq!(field_of(req("", "12345", "t").parse().unwrap_err()), "name");
        assert_eq!(
            field_of(req(&"x".repeat(101), "12345", "t").parse().unwrap_err()),
            "name"
        );
        assert!(req(&"é".repeat(100), "12345", "t").parse().is_ok());
        for bad in ["1234", "123456789012345678901", "12a45", "+12345", ""] {
            assert_eq!(
                field_of(req("a", bad, "t").parse().unwrap_err()),
                "phoneNumberId"
            );
        }
        assert_eq!(
            field_of(req("a", "12345", "").parse().unwrap_err()),
            "accessToken"
        );
        assert_eq!(
            field_of(req("a", "12345", &"t".repeat(4097)).parse().unwrap_err()),
            "accessToken"
        );
        assert!(req("a", "12345", &"t".repeat(4096)).parse().is_ok());
    }

    #[test]
    fn tenant_id_parse_is_a_400() {
        assert!(TenantId::parse("65f000000000000000000000").is_ok());
        let e = TenantId::parse("nope").unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
    }
}
