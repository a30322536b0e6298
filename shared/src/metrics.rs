//! CloudWatch metrics as Embedded Metric Format lines: one JSON object on stdout per data
//! point, which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics (no API
//! call, no latency). Written in Lambda, or anywhere with `METRICS=emf`.

use std::{
    io::Write,
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "WhatsAppBackend";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    InboundMessage,
    ReplyQueued,
    SendOk,
    SendFailed,
    /// Sent back to the queue with a delay by pacing (dimension `Reason`).
    SendDeferred,
    /// Held until the tenant's token is replaced.
    SendHeld,
    WebhookSignatureFailure,
    DlqRedrive,
    RelayRequeued,
    /// An event that could not be put on the forwarding queue (not forwarded).
    EventEnqueueFailed,
    /// A forwarded event a receiver took (2xx), or did not.
    EventDelivered,
    EventRetried,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::InboundMessage => "InboundMessages",
            Metric::ReplyQueued => "RepliesQueued",
            Metric::SendOk => "SendsOk",
            Metric::SendFailed => "SendsFailed",
            Metric::SendDeferred => "SendsDeferred",
            Metric::SendHeld => "SendsHeld",
            Metric::WebhookSignatureFailure => "WebhookSignatureFailures",
            Metric::DlqRedrive => "DlqRedriven",
            Metric::RelayRequeued => "RelayRequeued",
            Metric::EventEnqueueFailed => "EventsNotEnqueued",
            Metric::EventDelivered => "EventsDelivered",
            Metric::EventRetried => "EventsRetried",
        }
    }
}

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
            || std::env::var("METRICS").is_ok_and(|m| m == "emf")
    })
}

/// The EMF document for one count with its dimensions (e.g. `[("ErrorClass", "retry")]`).
pub fn document(metric: Metric, dimensions: &[(&str, &str)], at_ms: u128) -> Value {
    let mut doc = Map::new();
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": at_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": [{ "Name": metric.name(), "Unit": "Count" }],
            }],
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), Value::String((*v).into()));
    }
    doc.insert(metric.name().into(), json!(1));
    Value::Object(doc)
}

/// Counts one occurrence.
pub fn count(metric: Metric, dimensions: &[(&str, &str)]) {
    if !enabled() {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = document(metric, dimensions, now).to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let d = document(
            Metric::SendFailed,
            &[("ErrorClass", "retry")],
            1_795_341_600_000,
        );
        assert_eq!(d["_aws"]["Timestamp"], 1_795_341_600_000_u64);
        let m = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], NAMESPACE);
        assert_eq!(m["Dimensions"], json!([["ErrorClass"]]));
        assert_eq!(
            m["Metrics"][0],
            json!({"Name": "SendsFailed", "Unit": "Count"})
        );
        assert_eq!(d["ErrorClass"], "retry");
        assert_eq!(d["SendsFailed"], 1);
    }
}
