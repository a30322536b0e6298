//! What a warm function keeps between invocations: settings and clients.

use std::{ops::Deref, sync::Arc, time::Duration};

use mongodb::{Client, Database, options::ClientOptions};

use crate::{
    cache::TtlCache,
    config::{Config, DEFAULT_DATABASE},
    crypto::TokenCipher,
    engine::BotConfig,
    error::ApiError,
    ids::{TenantId, TenantRef},
    locks::Locks,
    queue::SendQueue,
    store::Store,
};

/// How long a warm function trusts a tenant's sending profile (number, pacing settings,
/// token version and status): a change made in any process is in force everywhere within it.
pub const SENDING_CACHE_TTL: Duration = Duration::from_secs(4);
/// How long a decrypted token is reused; keyed by the token's version, so a replaced token
/// is never used after the profile above shows the new version.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(300);
/// How long a warm function trusts its phone number → tenant mapping, unknown numbers
/// included: a number registered, enabled or disabled in another process is routed
/// accordingly within this (this process's own changes invalidate it at once).
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(4);

/// How long a refused API key is refused without a lookup (a tenant enabled again is
/// reachable with its key after this).
const REJECTED_KEY_TTL: Duration = Duration::from_secs(30);
/// A key accepted this recently is accepted without a lookup: a key that stops being valid
/// (its tenant disabled) is refused everywhere within this time.
pub const ACCEPTED_KEY_TTL: Duration = Duration::from_secs(4);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Srv(#[from] crate::srv::SrvError),
    #[error(transparent)]
    Driver(#[from] mongodb::error::Error),
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub sqs: crate::aws::Sqs,
    pub locks: Locks,
    /// phone_number_id → tenant (`None` cached too: unknown numbers are common noise).
    pub tenants_by_number: TtlCache<String, Option<TenantRef>>,
    /// Active templates + compiled flow per tenant; writes in this process invalidate it.
    pub bot_configs: TtlCache<TenantId, BotConfig>,
    /// Hashes of API keys refused recently (see `auth`).
    pub rejected_keys: TtlCache<String, ()>,
    /// Hashes of API keys accepted recently, with their tenant (see `auth`).
    pub accepted_keys: TtlCache<String, TenantId>,
    /// Each tenant's sending profile (sender and send API).
    pub sending: TtlCache<TenantId, crate::tenant::Sending>,
    /// Decrypted tokens by (tenant, token version): the sender's KMS calls, amortised.
    pub tokens: TtlCache<(TenantId, i64), crate::secret::Secret>,
    /// Graph calls made for an API request (template sync, media); the sender has its own.
    pub graph: crate::whatsapp::GraphClient,
    /// Each tenant's event subscriptions, for emitting (see `event`).
    pub subscribers: TtlCache<TenantId, crate::event::Subscribers>,
    /// Where large media is copied for download (`MEDIA_BUCKET`).
    pub media_bucket: Option<crate::media::MediaBucket>,
    cipher: Option<TokenCipher>,
    queue: Option<SendQueue>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// A MongoDB database handle for the URI. Selection times out fast so an outage becomes a
/// 503 within the request rather than hanging the function until its own timeout.
pub async fn connect_database(uri: &str) -> Result<Database, DatabaseError> {
    let uri = crate::srv::expand(uri).await?;
    let mut options = ClientOptions::parse(uri.as_ref()).await?;
    options
        .app_name
        .get_or_insert_with(|| "whatsapp-backend".into());
    options
        .server_selection_timeout
        .get_or_insert(Duration::from_secs(5));
    options
        .connect_timeout
        .get_or_insert(Duration::from_secs(5));
    let db_name = options
        .default_database
        .clone()
        .unwrap_or_else(|| DEFAULT_DATABASE.into());
    Ok(Client::with_options(options)?.database(&db_name))
}

/// Settings that hold secrets and may come from Secrets Manager.
const SECRET_SETTINGS: [&str; 5] = [
    "MONGO_URI",
    "REDIS_URL",
    "ADMIN_TOKEN",
    "APP_SECRET",
    "VERIFY_TOKEN",
];

/// Each secret setting unset in the environment whose `<NAME>_SECRET_ID` is set, read from
/// Secrets Manager (concurrently: one round trip of cold start).
async fn secret_settings(
    aws: &crate::aws::Aws,
) -> Result<std::collections::HashMap<String, crate::secret::Secret>, BoxError> {
    let wanted: Vec<(&str, String)> = SECRET_SETTINGS
        .iter()
        .filter(|name| std::env::var_os(name).is_none())
        .filter_map(|name| {
            let id = std::env::var(format!("{name}_SECRET_ID")).ok()?;
            Some((*name, id))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Default::default());
    }
    let reads = wanted.iter().map(|(name, id)| async move {
        let value = crate::aws::secrets::get(aws, id)
            .await
            .map_err(|e| format!("{name}_SECRET_ID: {e}"))?;
        Ok::<_, String>((name.to_string(), value))
    });
    let values = futures::future::try_join_all(reads).await?;
    Ok(values.into_iter().collect())
}

impl AppState {
    pub fn new(config: Config, aws: &crate::aws::Aws, db: Database) -> Self {
        let cipher = config
            .kms_key_id
            .as_ref()
            .map(|key| TokenCipher::new(aws, key.clone()));
        let sqs = aws.sqs();
        let queue = config
            .send_queue_url
            .as_ref()
            .map(|url| SendQueue::new(sqs.clone(), url.clone()));
        Self(Arc::new(Inner {
            store: Store::new(db),
            locks: Locks::new(config.redis_url.as_ref()),
            tenants_by_number: TtlCache::new(TENANT_CACHE_TTL),
            bot_configs: TtlCache::new(config.config_cache_ttl),
            sending: TtlCache::new(SENDING_CACHE_TTL),
            tokens: TtlCache::new(TOKEN_CACHE_TTL),
            rejected_keys: TtlCache::new(REJECTED_KEY_TTL),
            accepted_keys: TtlCache::new(ACCEPTED_KEY_TTL),
            subscribers: TtlCache::new(crate::event::SUBSCRIBERS_TTL),
            sqs,
            graph: crate::whatsapp::GraphClient::new(
                &config.whatsapp_api_base,
                &config.whatsapp_api_version,
            ),
            media_bucket: config
                .media_bucket
                .as_deref()
                .map(|b| crate::media::MediaBucket::new(aws, b)),
            cipher,
            queue,
            config,
        }))
    }

    /// Everything from the environment; what a Lambda `main` calls once per cold start.
    /// A secret setting `X` may instead name a Secrets Manager secret in `X_SECRET_ID`
    /// (how template.yaml configures the functions): read once here and kept in memory
    /// only, never in the function's environment.
    pub async fn from_env() -> Result<Self, BoxError> {
        let aws = crate::aws::Aws::from_env();
        let secrets = secret_settings(&aws).await?;
        let config = Config::from_lookup(|k| {
            std::env::var(k)
                .ok()
                .or_else(|| secrets.get(k).map(|s| s.expose().to_owned()))
        })?;
        let db = connect_database(config.mongo_uri.expose()).await?;
        if config.kms_key_id.is_none() {
            tracing::warn!("KMS_KEY_ID is not set: tenant registration will answer 503");
        }
        Ok(Self::new(config, &aws, db))
    }

    pub fn queue(&self) -> Result<&SendQueue, ApiError> {
        self.queue
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("queue", "SEND_QUEUE_URL is not set"))
    }

    /// The send DLQ and the queue its jobs go back to (503 when either URL is not set).
    pub fn dead_letter_queue(&self) -> Result<crate::dead_letter::DeadLetterQueue<'_>, ApiError> {
        let dlq_url = self
            .config
            .send_dlq_url
            .as_deref()
            .ok_or_else(|| ApiError::unavailable("queue", "SEND_DLQ_URL is not set"))?;
        Ok(crate::dead_letter::DeadLetterQueue {
            sqs: &self.sqs,
            dlq_url,
            queue_url: self.queue()?.url(),
        })
    }

    /// Where events go (see `event::emit`).
    pub fn emitter(&self) -> crate::event::Emitter<'_> {
        crate::event::Emitter {
            store: &self.store,
            sqs: &self.sqs,
            url: self.config.events_queue_url.as_deref(),
            subscribers: &self.subscribers,
        }
    }

    /// The outbox: the store and the send queue, for dispatching outbound messages.
    pub fn outbox(&self) -> crate::outbox::Outbox<'_> {
        crate::outbox::Outbox {
            store: &self.store,
            queue: self.queue.as_ref(),
        }
    }

    /// The active tenant's sending profile and its token, decrypted once per token version
    /// (shared with the sender's cache).
    pub async fn credentials(
        &self,
        tenant: &crate::ids::TenantId,
    ) -> Result<(Arc<crate::tenant::Sending>, Arc<crate::secret::Secret>), ApiError> {
        let profile = crate::tenant::sending(&self.store, &self.sending, tenant).await?;
        let token = self.token(tenant, &profile).await?;
        Ok((profile, token))
    }

    /// The token of this sending profile in plaintext, decrypted once per token version.
    pub async fn token(
        &self,
        tenant: &crate::ids::TenantId,
        profile: &crate::tenant::Sending,
    ) -> Result<Arc<crate::secret::Secret>, ApiError> {
        self.tokens
            .get_or_load(&(*tenant, profile.token_version), async {
                self.cipher()?.decrypt(tenant, &profile.ciphertext).await
            })
            .await
    }

    pub fn cipher(&self) -> Result<&TokenCipher, ApiError> {
        self.cipher
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("kms", "KMS_KEY_ID is not set"))
    }
}
