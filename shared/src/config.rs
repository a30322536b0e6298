//! Settings, read once from the environment. A `.env` file may supply defaults; a variable
//! already in the environment always wins.

use std::{env, fs, path::Path, time::Duration};

use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub port: u16,
    pub admin_token: Option<Secret>,
    pub app_secret: Option<Secret>,
    /// The Meta app's id (`META_APP_ID`): Embedded Signup exchanges codes with it and
    /// `APP_SECRET`.
    pub meta_app_id: Option<String>,
    pub verify_token: Option<Secret>,
    /// May embed credentials, hence a secret.
    pub mongo_uri: Secret,
    pub redis_url: Option<Secret>,
    pub send_queue_url: Option<String>,
    pub send_dlq_url: Option<String>,
    /// The event forwarding queue (`EVENTS_QUEUE_URL`); without it no event is forwarded.
    pub events_queue_url: Option<String>,
    pub kms_key_id: Option<String>,
    /// Where media too large for a Lambda response is copied for a presigned download
    /// (`MEDIA_BUCKET`); without it such a file is a 413.
    pub media_bucket: Option<String>,
    pub whatsapp_api_base: String,
    pub whatsapp_api_version: String,
    /// How long a warm function reuses a tenant's templates and flow (`CONFIG_CACHE_TTL_SECS`).
    pub config_cache_ttl: Duration,
    /// How long one request may hold an idempotency lock (`IDEMPOTENCY_LOCK_MS`, default
    /// 8000). Must stay below the HTTP functions' timeout (10 s in template.yaml), so a
    /// request cut off at its timeout never leaves a lock that outlives it.
    pub idempotency_lock: Duration,
    /// The sender's first retry delay; doubles per receive (`SEND_RETRY_BASE_MS`, 2000).
    pub send_retry_base: Duration,
    /// How long the sender's claim on a message lasts (`SEND_LEASE_MS`, 40000): longer than
    /// the sender's timeout (30 s), so no other attempt starts while one may still run.
    pub send_lease: Duration,
    /// The relay re-enqueues an outbound message whose enqueue failed this long ago
    /// (`RELAY_GRACE_SECS`, 60).
    pub relay_grace: Duration,
    /// ... or never attempted this long ago: its job was lost, or the request that stored
    /// it was cut off before enqueueing it and never retried (`RELAY_STALE_SECS`, 900).
    pub relay_stale: Duration,
    /// How often the local gateway runs the relay, as the SAM schedule does in AWS
    /// (`RELAY_INTERVAL_SECS`, 60; 0 turns it off).
    pub relay_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
}

/// Database used when `MONGO_URI` names none.
pub const DEFAULT_DATABASE: &str = "whatsapp";

impl Config {
    /// Reads the process environment (after `.env` defaults, see [`load_dotenv`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    /// Same as [`Config::from_env`] over any lookup, so parsing is testable without touching
    /// the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let app_env = match get("APP_ENV").as_deref() {
            None | Some("production") => AppEnv::Production,
            Some("development") | Some("dev") | Some("test") => AppEnv::Development,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "APP_ENV",
                    why: format!("expected development or production, got {other:?}"),
                });
            }
        };
        let port = match get("PORT") {
            None => 3000,
            Some(p) => p.parse().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                why: "expected a port number".into(),
            })?,
        };
        Ok(Self {
            app_env,
            port,
            admin_token: get("ADMIN_TOKEN").map(Secret::new),
            app_secret: get("APP_SECRET").map(Secret::new),
            meta_app_id: get("META_APP_ID"),
            verify_token: get("VERIFY_TOKEN").map(Secret::new),
            mongo_uri: Secret::new(get("MONGO_URI").ok_or(ConfigError::Missing("MONGO_URI"))?),
            redis_url: get("REDIS_URL").map(Secret::new),
            send_queue_url: get("SEND_QUEUE_URL"),
            send_dlq_url: get("SEND_DLQ_URL"),
            events_queue_url: get("EVENTS_QUEUE_URL"),
            kms_key_id: get("KMS_KEY_ID"),
            media_bucket: get("MEDIA_BUCKET"),
            whatsapp_api_base: get("WHATSAPP_API_BASE")
                .unwrap_or_else(|| "https://graph.facebook.com".into())
                .trim_end_matches('/')
                .to_owned(),
            whatsapp_api_version: get("WHATSAPP_API_VERSION").unwrap_or_else(|| "v20.0".into()),
            config_cache_ttl: Duration::from_secs(number(&get, "CONFIG_CACHE_TTL_SECS", 10)?),
            idempotency_lock: Duration::from_millis(number(&get, "IDEMPOTENCY_LOCK_MS", 8000)?),
            send_retry_base: Duration::from_millis(number(&get, "SEND_RETRY_BASE_MS", 2000)?),
            send_lease: Duration::from_millis(number(&get, "SEND_LEASE_MS", 40000)?),
            relay_grace: Duration::from_secs(number(&get, "RELAY_GRACE_SECS", 60)?),
            relay_stale: Duration::from_secs(number(&get, "RELAY_STALE_SECS", 900)?),
            relay_interval: Duration::from_secs(number(&get, "RELAY_INTERVAL_SECS", 60)?),
        })
    }
}

/// A whole, non-negative number setting, or its default.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
            name,
            why: "expected a whole number".into(),
        }),
    }
}

/// Sets every `KEY=VALUE` of the file that is not already in the environment. A missing
/// file is fine. Call it before any thread is spawned (it mutates the environment).
pub fn load_dotenv(path: &Path) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    for (key, value) in parse_dotenv(&text) {
        if env::var_os(&key).is_none() {
            // SAFETY: documented precondition: called at start-up, single-threaded.
            unsafe { env::set_var(key, value) };
        }
    }
}

fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_and_mongo_is_required() {
        assert!(matches!(cfg(&[]), Err(ConfigError::Missing("MONGO_URI"))));
        let c = cfg(&[("MONGO_URI", "mongodb://x/db")]).expect("valid");
        assert_eq!(c.port, 3000);
        assert_eq!(c.app_env, AppEnv::Production);
        assert_eq!(c.whatsapp_api_base, "https://graph.facebook.com");
        assert_eq!(c.whatsapp_api_version, "v20.0");
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        let e = cfg(&[("MONGO_URI", "m"), ("PORT", "http")]).unwrap_err();
        assert!(e.to_string().starts_with("PORT"));
        let e = cfg(&[("MONGO_URI", "m"), ("APP_ENV", "staging")]).unwrap_err();
        assert!(e.to_string().starts_with("APP_ENV"));
    }

    #[test]
    fn dotenv_parses_quotes_comments_and_export() {
        let parsed = parse_dotenv("# c\nexport A=1\nB=\"two words\"\nC='x=y'\n\nbad line\n");
        assert_eq!(
            parsed,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x=y".into())
            ]
        );
    }
}
