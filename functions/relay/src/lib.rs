//! `relay` function: the outbox's backstop, run every minute by an EventBridge schedule
//! (locally by the gateway). Re-enqueues accepted outbound messages that never reached the
//! queue or whose job was lost, and applies kept statuses whose message is now known.

use shared::{
    ApiError, AppState,
    outbox::{self, RelayReport},
};

/// One run (what a scheduled invocation does).
pub async fn run(state: &AppState) -> Result<RelayReport, ApiError> {
    let report = outbox::relay(
        state.outbox(),
        state.config.relay_grace,
        state.config.relay_stale,
    )
    .await?;
    let statuses = shared::message::store::sweep_pending_statuses(&state.store).await?;
    if report != RelayReport::default() || statuses > 0 {
        tracing::info!(
            unenqueued = report.unenqueued,
            lost = report.lost,
            failed = report.failed,
            statuses,
            "relay run"
        );
    }
    Ok(report)
}
