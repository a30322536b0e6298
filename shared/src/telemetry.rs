//! Logging. JSON lines in Lambda (CloudWatch parses them), compact text locally.
//! `LOG_LEVEL` (or `RUST_LOG`) sets the filter; default `info`.

use tracing_subscriber::{
    Layer, filter::Targets, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

/// Targets capped at info (appended last, so they win over the configured level).
pub const QUIET: &str =
    "hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,redis=info,mongodb=info";

/// `LOG_LEVEL` as a filter: a level (`debug`), `target=level` pairs, or both, comma
/// separated; one that does not parse is `info`. (`Targets`, not `EnvFilter`: no regex
/// engine in every binary for span and field filters nobody sets.)
fn filter(configured: &str) -> Targets {
    // Whatever the level, the runtime and HTTP/SDK clients never log below info: at debug
    // and trace they print raw events and headers (Authorization, access tokens).
    format!("{configured},{QUIET}")
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

pub fn init() {
    let configured = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into());
    let json = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
        || std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json");
    let layer = if json {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time() // CloudWatch stamps every line itself
            .with_target(false)
            .boxed()
    } else {
        fmt::layer().compact().with_target(false).boxed()
    };
    // Already initialised (tests, or a host process): keep the existing subscriber.
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter(&configured)))
        .try_init();
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn the_configured_level_applies_except_to_the_quiet_clients() {
        let debug = filter("debug");
        assert!(enabled(&debug, "shared::sender", Level::DEBUG));
        assert!(!enabled(&debug, "shared::sender", Level::TRACE));
        assert!(!enabled(&debug, "mongodb::cmap", Level::DEBUG));
        assert!(enabled(&debug, "mongodb::cmap", Level::INFO));
        let mixed = filter("warn,shared=debug,reqwest=trace");
        assert!(enabled(&mixed, "shared::webhook", Level::DEBUG));
        assert!(!enabled(&mixed, "axum", Level::INFO));
        assert!(
            !enabled(&mixed, "reqwest::connect", Level::DEBUG),
            "capped at info"
        );
        let typo = filter("shared=verbose");
        assert!(enabled(&typo, "shared", Level::INFO));
        assert!(!enabled(&typo, "shared", Level::DEBUG));
    }
}
