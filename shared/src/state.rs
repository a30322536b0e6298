//! What a warm function keeps between invocations: settings and clients.

use std::{ops::Deref, sync::Arc, time::Duration};

use aws_config::{BehaviorVersion, SdkConfig};
use mongodb::{Client, Database, options::ClientOptions};

use crate::{
    cache::TtlCache,
    config::{Config, DEFAULT_DATABASE},
    crypto::TokenCipher,
    engine::BotConfig,
    error::ApiError,
    locks::Locks,
    queue::SendQueue,
    store::Store,
    tenant::{TenantId, TenantRef},
};

/// How long a warm sender reuses a decrypted token (a rotated token is picked up after).
const CREDENTIALS_CACHE_TTL: Duration = Duration::from_secs(300);
/// How long a warm function trusts its phone number → tenant mapping, unknown numbers
/// included: a number registered, enabled or disabled in another process is routed
/// accordingly within this (this process's own changes invalidate it at once).
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(4);

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub sqs: aws_sdk_sqs::Client,
    pub locks: Locks,
    /// phone_number_id → tenant (`None` cached too: unknown numbers are common noise).
    pub tenants_by_number: TtlCache<String, Option<TenantRef>>,
    /// Active templates + compiled flow per tenant; writes in this process invalidate it.
    pub bot_configs: TtlCache<TenantId, BotConfig>,
    /// Decrypted sending credentials per tenant (the sender's KMS calls, amortised).
    pub credentials: TtlCache<TenantId, crate::sender::Credentials>,
    cipher: Option<TokenCipher>,
    queue: Option<SendQueue>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// AWS settings from the standard chain. `AWS_ENDPOINT_URL` (local stack) is honoured by the
/// SDK itself, so the same binary talks to AWS when it is unset.
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A MongoDB database handle for the URI. Selection times out fast so an outage becomes a
/// 503 within the request rather than hanging the function until its own timeout.
pub async fn connect_database(uri: &str) -> Result<Database, mongodb::error::Error> {
    let mut options = ClientOptions::parse(uri).await?;
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

impl AppState {
    pub fn new(config: Config, aws: &SdkConfig, db: Database) -> Self {
        let cipher = config
            .kms_key_id
            .as_ref()
            .map(|key| TokenCipher::new(aws_sdk_kms::Client::new(aws), key.clone()));
        let sqs = aws_sdk_sqs::Client::new(aws);
        let queue = config
            .send_queue_url
            .as_ref()
            .map(|url| SendQueue::new(sqs.clone(), url.clone()));
        Self(Arc::new(Inner {
            store: Store::new(db),
            locks: Locks::new(config.redis_url.as_ref()),
            tenants_by_number: TtlCache::new(TENANT_CACHE_TTL),
            bot_configs: TtlCache::new(config.config_cache_ttl),
            credentials: TtlCache::new(CREDENTIALS_CACHE_TTL),
            sqs,
            cipher,
            queue,
            config,
        }))
    }

    /// Everything from the environment; what a Lambda `main` calls once per cold start.
    pub async fn from_env() -> Result<Self, BoxError> {
        let config = Config::from_env()?;
        let aws = aws_config().await;
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

    /// The outbox: the store and the send queue, for dispatching outbound messages.
    pub fn outbox(&self) -> crate::outbox::Outbox<'_> {
        crate::outbox::Outbox {
            store: &self.store,
            queue: self.queue.as_ref(),
        }
    }

    pub fn cipher(&self) -> Result<&TokenCipher, ApiError> {
        self.cipher
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("kms", "KMS_KEY_ID is not set"))
    }
}
