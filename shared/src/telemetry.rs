//! Logging. JSON lines in Lambda (CloudWatch parses them), compact text locally.
//! `LOG_LEVEL` (or `RUST_LOG`) sets the filter; default `info`.

use tracing_subscriber::{EnvFilter, fmt};

/// Targets capped at info (appended last, so they win over the configured level).
pub const QUIET: &str = "lambda_runtime=info,lambda_runtime_api_client=info,lambda_http=info,\
hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,redis=info,mongodb=info";

pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into());
    // Whatever the level, the runtime and HTTP/SDK clients never log below info: at debug
    // and trace they print raw events and headers (Authorization, access tokens).
    let filter = format!("{filter},{QUIET}");
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = fmt().with_env_filter(filter).with_target(false);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time() // CloudWatch stamps every line itself
            .try_init()
    } else {
        builder.compact().try_init()
    };
    // Already initialised (tests, or a host process): keep the existing subscriber.
    let _ = result;
}
