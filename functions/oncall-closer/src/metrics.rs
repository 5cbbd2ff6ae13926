//! What a run tells operators: one log line with its counts, and the same counts (with the
//! backlog) as CloudWatch metrics in Embedded Metric Format.

use crate::RunSummary;
use jiff::Timestamp;

/// One structured log line with the counts, and the same counts as CloudWatch metrics
/// (Embedded Metric Format: a JSON line CloudWatch turns into metrics, no API call).
pub(crate) fn log_summary(summary: &RunSummary, now: Timestamp) {
    let report = &summary.report;
    let closing = report.closing.clone().unwrap_or_default();
    let resend = report.resend.clone().unwrap_or_default();
    let documents = report.documents.clone().unwrap_or_default();
    let reconcile = report.reconcile.clone().unwrap_or_default();
    let backlog = report.backlog.clone();
    let oldest_pending_age = backlog
        .as_ref()
        .and_then(|b| b.oldest_pending_since)
        .map_or(0, |since| now.duration_since(since).as_secs().max(0));
    tracing::info!(
        kind = ?summary.kind,
        period = report.period.as_ref().map(|p| p.id.as_str()).unwrap_or("none"),
        files_closed = closing.closed,
        closings_refused = closing.delivery_failed,
        closings_pending = closing.delivery_pending,
        already_closed = closing.already_closed,
        close_errors = closing.errors,
        resent = resend.delivered,
        still_pending = resend.still_pending,
        marked_failed = resend.marked_failed,
        failed = resend.failed,
        documents_published = documents.published,
        documents_waiting = documents.still_pending,
        unknown_on_intent = reconcile.unknown_on_intent.len(),
        closing_resent = reconcile.closing_resent,
        pending_events = backlog.as_ref().map(|b| b.pending_events),
        failed_events = backlog.as_ref().map(|b| b.failed_events),
        oldest_pending_age_seconds = oldest_pending_age,
        stopped_early = report.stopped_early(),
        "on-call closer run"
    );
    let mut metrics = serde_json::json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": "OnCallBridge",
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "FilesClosed", "Unit": "Count"},
                    {"Name": "EventsResent", "Unit": "Count"},
                    {"Name": "EventsStillPending", "Unit": "Count"},
                    {"Name": "EventsMarkedFailed", "Unit": "Count"},
                    {"Name": "DocumentsForwarded", "Unit": "Count"},
                    {"Name": "UnknownOnIntent", "Unit": "Count"},
                    {"Name": "RunStoppedEarly", "Unit": "Count"}
                ]
            }]
        },
        "Function": "oncall-closer",
        "FilesClosed": closing.closed,
        "EventsResent": resend.delivered,
        "EventsStillPending": resend.still_pending,
        // Refused in this run, wherever it happened: a closing at the period's end or a
        // re-sent event.
        "EventsMarkedFailed": resend.marked_failed + closing.delivery_failed,
        "DocumentsForwarded": documents.published,
        "UnknownOnIntent": reconcile.unknown_on_intent.len(),
        "RunStoppedEarly": u8::from(report.stopped_early()),
    });
    if let Some(backlog) = &backlog {
        metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array_mut()
            .expect("an array")
            .extend([
                serde_json::json!({"Name": "PendingEvents", "Unit": "Count"}),
                serde_json::json!({"Name": "OldestPendingEventAge", "Unit": "Seconds"}),
                serde_json::json!({"Name": "FailedEvents", "Unit": "Count"}),
                serde_json::json!({"Name": "PendingDocuments", "Unit": "Count"}),
            ]);
        metrics["PendingEvents"] = backlog.pending_events.into();
        metrics["OldestPendingEventAge"] = oldest_pending_age.into();
        metrics["FailedEvents"] = backlog.failed_events.into();
        metrics["PendingDocuments"] = backlog.pending_documents.into();
    }
    println!("{metrics}");
}
