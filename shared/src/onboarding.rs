//! Embedded Signup: a tenant connects its WhatsApp Business Account from Meta's dialog
//! instead of pasting a token. `POST /tenants/onboard {name, code}` exchanges the code for a
//! business token, finds the shared WABA (`debug_token`, or the `wabaId` the dialog
//! reported) and its numbers, subscribes the app to the WABA's webhooks, registers the
//! numbers not yet on the Cloud API, and creates the tenant with all of them.
//!
//! A code works once at Graph, so the attempt is recorded under the code's SHA-256: the
//! token, encrypted for the tenant id chosen up front, right after the exchange; the key
//! once the tenant exists. A retry of a request cut off midway resumes with the stored
//! token (every later step is idempotent at Graph); a retry after it finished creates
//! nothing: it answers the same tenant with a fresh key and deletes the one the lost
//! response carried, so the caller ends with exactly one.

use mongodb::bson::{Binary, DateTime, doc, spec::BinarySubtype};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroize;

use crate::{
    api_key::{self, ApiKey, KeyLabel},
    crypto::TokenCipher,
    error::ApiError,
    ids::TenantId,
    secret::Secret,
    store::{Store, is_duplicate_key},
    tenant::{self, Creation, Number, PhoneNumberId, TenantName, TenantView, WabaId},
    whatsapp::{GraphClient, GraphFailure},
};

pub const ONBOARDINGS: &str = "onboardings";
const CODE_MAX: usize = 2048;
const KEY_LABEL: &str = "Embedded Signup";

/// `POST /tenants/onboard` body as sent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OnboardRequest {
    pub name: String,
    /// The code Meta's Embedded Signup dialog returned to the browser.
    pub code: String,
    /// The WABA the dialog reported (its session info); found with `debug_token` if absent.
    #[serde(default)]
    pub waba_id: Option<String>,
    /// The two-step verification PIN for numbers that need registering (6 digits); a random
    /// one when absent (reset it in WhatsApp Manager if ever needed).
    #[serde(default)]
    pub pin: Option<String>,
}

impl Drop for OnboardRequest {
    fn drop(&mut self) {
        self.code.zeroize();
        if let Some(p) = self.pin.as_mut() {
            p.zeroize();
        }
    }
}

struct Checked {
    name: TenantName,
    waba_id: Option<WabaId>,
    pin: Secret,
}

impl OnboardRequest {
    fn check(&self) -> Result<Checked, ApiError> {
        let name = TenantName::parse(&self.name)?;
        let code = self.code.trim();
        if code.is_empty() || code.len() > CODE_MAX || code.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid(
                "code",
                format!("must be the dialog's code: 1–{CODE_MAX} characters, no spaces"),
            ));
        }
        let waba_id = match &self.waba_id {
            Some(w) => WabaId::parse(w)?,
            None => None,
        };
        let pin = match self.pin.as_deref().map(str::trim) {
            None | Some("") => {
                let n = u32::from_str_radix(&crate::ids::random_hex(4), 16).unwrap_or(0);
                format!("{:06}", n % 1_000_000)
            }
            Some(p) if p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit()) => p.to_owned(),
            Some(_) => return Err(ApiError::invalid("pin", "must be 6 digits")),
        };
        Ok(Checked {
            name,
            waba_id,
            pin: Secret::new(pin),
        })
    }
}

/// The outcome: a new tenant (201), or the same one again for a retried code (200).
pub struct Onboarded {
    pub tenant: TenantView,
    pub api_key: ApiKey,
    /// Numbers this request registered on the Cloud API.
    pub registered: Vec<String>,
    pub replayed: bool,
    /// The hash of the key a replay deleted, for the caller's cache.
    pub revoked: Option<String>,
}

/// What Graph needs from us: the client and the app's credentials (`None`: not set, a 503
/// once the request itself is valid).
pub struct MetaApp<'a> {
    pub graph: &'a GraphClient,
    pub app_id: Option<&'a str>,
    pub app_secret: Option<&'a Secret>,
}

struct Credentials<'a> {
    graph: &'a GraphClient,
    app_id: &'a str,
    app_secret: &'a Secret,
}

impl<'a> MetaApp<'a> {
    fn credentials(&self) -> Result<Credentials<'a>, ApiError> {
        let unset = |what: &str| ApiError::unavailable("meta", format!("{what} is not set"));
        Ok(Credentials {
            graph: self.graph,
            app_id: self.app_id.ok_or_else(|| unset("META_APP_ID"))?,
            app_secret: self.app_secret.ok_or_else(|| unset("APP_SECRET"))?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attempt {
    #[serde(rename = "_id")]
    code_hash: String,
    tenant_id: TenantId,
    token_ciphertext: Binary,
    #[serde(default)]
    key_id: Option<String>,
    created_at: DateTime,
    updated_at: DateTime,
}

/// A Graph failure at one step: 502 naming the step and Graph's words.
fn at(step: &'static str) -> impl Fn(GraphFailure) -> ApiError {
    move |f| {
        ApiError::BadGateway(format!(
            "{step}: Graph answered {}: {}",
            f.status, f.message
        ))
    }
}

pub async fn onboard(
    store: &Store,
    cipher: &TokenCipher,
    app: &MetaApp<'_>,
    req: &OnboardRequest,
) -> Result<Onboarded, ApiError> {
    let checked = req.check()?;
    let app = &app.credentials()?;
    let code_hash = api_key::hash_key(req.code.trim());
    let attempts = store.collection::<Attempt>(ONBOARDINGS).await?;
    let found = attempts.find_one(doc! { "_id": &code_hash }).await?;
    let (attempt, token) = match found {
        Some(a) if a.key_id.is_some() => return replay(store, &attempts, a).await,
        Some(a) => {
            let token = cipher
                .decrypt(&a.tenant_id, &a.token_ciphertext.bytes)
                .await?;
            (a, token)
        }
        None => {
            let token = app
                .graph
                .exchange_code(app.app_id, app.app_secret, req.code.trim())
                .await
                .map_err(|f| match f.status {
                    // A used, expired or made-up code is the caller's to replace.
                    400..=499 => ApiError::invalid(
                        "code",
                        format!(
                            "Meta refused the code ({}): open the signup dialog again",
                            f.message
                        ),
                    ),
                    _ => at("exchanging the code")(f),
                })?;
            let tenant_id = TenantId::generate();
            let now = DateTime::now();
            let attempt = Attempt {
                code_hash: code_hash.clone(),
                tenant_id,
                token_ciphertext: Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: cipher.encrypt(&tenant_id, &token).await?,
                },
                key_id: None,
                created_at: now,
                updated_at: now,
            };
            match attempts.insert_one(&attempt).await {
                Ok(_) => {}
                // Another request with this code got there first (a code works once).
                Err(e) if is_duplicate_key(&e) => {
                    return Err(ApiError::InProgress(
                        "this code is being onboarded by another request".into(),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            (attempt, token)
        }
    };
    let waba = match &checked.waba_id {
        Some(w) => w.as_str().to_owned(),
        None => app
            .graph
            .shared_wabas(app.app_id, app.app_secret, &token)
            .await
            .map_err(at("reading the shared WhatsApp Business Account"))?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ApiError::BadGateway(
                    "reading the shared WhatsApp Business Account: the token grants none".into(),
                )
            })?,
    };
    let listed = app
        .graph
        .phone_numbers(&waba, &token)
        .await
        .map_err(at("reading the account's numbers"))?;
    let mut numbers = Vec::new();
    let mut to_register = Vec::new();
    for n in &listed {
        let Some(id) = n["id"].as_str() else { continue };
        let Ok(id) = PhoneNumberId::parse("phoneNumberId", id) else {
            continue;
        };
        if n["platform_type"].as_str() != Some("CLOUD_API") {
            to_register.push(id.as_str().to_owned());
        }
        numbers.push(Number::new(
            &id,
            n["display_phone_number"].as_str().map(str::to_owned),
        ));
    }
    if numbers.is_empty() {
        return Err(ApiError::BadGateway(
            "reading the account's numbers: the WhatsApp Business Account has none".into(),
        ));
    }
    app.graph
        .post_json(&format!("{waba}/subscribed_apps"), &token, &json!({}))
        .await
        .map_err(at("subscribing the app to the account"))?;
    for id in &to_register {
        let body = json!({"messaging_product": "whatsapp", "pin": checked.pin.expose()});
        app.graph
            .post_json(&format!("{id}/register"), &token, &body)
            .await
            .map_err(at("registering a number"))?;
    }
    // Created by an attempt cut off before it recorded its key: answered as a replay.
    if tenant::ensure_exists(store, &attempt.tenant_id)
        .await
        .is_ok()
    {
        return replay(store, &attempts, attempt).await;
    }
    let created = tenant::create(
        store,
        cipher,
        Creation {
            id: attempt.tenant_id,
            name: &checked.name,
            numbers,
            waba_id: Some(&waba),
            token: &token,
            key_label: KeyLabel::parse(KEY_LABEL)?,
        },
    )
    .await?;
    attempts
        .update_one(
            doc! { "_id": &code_hash },
            doc! { "$set": { "keyId": &created.key_id, "updatedAt": DateTime::now() } },
        )
        .await?;
    tracing::info!(tenantId = %attempt.tenant_id, wabaId = %waba, numbers = created.tenant.numbers.len(), registered = to_register.len(), "tenant onboarded with Embedded Signup");
    Ok(Onboarded {
        tenant: created.tenant,
        api_key: created.api_key,
        registered: to_register,
        replayed: false,
        revoked: None,
    })
}

/// The same tenant again, with a fresh key replacing the one the earlier answer carried.
async fn replay(
    store: &Store,
    attempts: &mongodb::Collection<Attempt>,
    attempt: Attempt,
) -> Result<Onboarded, ApiError> {
    let tenant = attempt.tenant_id;
    let mut revoked = None;
    if let Some(old) = &attempt.key_id {
        match api_key::revoke(store, &tenant, old).await {
            Ok(hash) => revoked = Some(hash),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let (view, key) = api_key::create(store, &tenant, &KeyLabel::parse(KEY_LABEL)?).await?;
    attempts
        .update_one(
            doc! { "_id": &attempt.code_hash },
            doc! { "$set": { "keyId": &view.id, "updatedAt": DateTime::now() } },
        )
        .await?;
    tracing::info!(tenantId = %tenant, "Embedded Signup retried: the same tenant, a fresh key");
    Ok(Onboarded {
        tenant: tenant::find(store, &tenant).await?,
        api_key: key,
        registered: Vec::new(),
        replayed: true,
        revoked,
    })
}
