//! What a run tells operators: one log line with its counts, and the same counts (with the
//! backlog) as CloudWatch metrics in Embedded Metric Format (the functions' one EMF
//! writer, `telemetry::metrics`).

use crate::RunSummary;
use jiff::Timestamp;
use telemetry::metrics::{Metrics, Unit};

/// One structured log line with the counts, and the same counts as CloudWatch metrics
/// (Embedded Metric Format: a JSON line CloudWatch turns into metrics, no API call),
/// written as the invocation's (none outside an invocation).
pub(crate) fn log_summary(summary: &RunSummary, now: Timestamp) {
    let report = &summary.report;
    let closing = report.closing.clone().unwrap_or_default();
    let resend = report.resend.clone().unwrap_or_default();
    let documents = report.documents.clone().unwrap_or_default();
    let reconcile = report.reconcile.clone().unwrap_or_default();
    let backlog = report.backlog.clone();
    let oldest_pending_age = age(backlog.as_ref().and_then(|b| b.oldest_pending_since), now);
    let oldest_document_age = age(
        backlog
            .as_ref()
            .and_then(|b| b.oldest_pending_document_since),
        now,
    );
    tracing::info!(
        kind = ?summary.kind,
        period = report.period.as_ref().map(|p| p.id.as_str()).unwrap_or("none"),
        files_closed = closing.closed,
        closings_refused = closing.delivery_failed,
        closings_pending = closing.delivery_pending,
        already_closed = closing.already_closed,
        left_open = closing.left_open,
        close_errors = closing.errors,
        resent = resend.delivered,
        still_pending = resend.still_pending,
        marked_failed = resend.marked_failed,
        failed = resend.failed,
        documents_published = documents.published,
        documents_waiting = documents.still_pending,
        unknown_on_intent = reconcile.unknown_on_intent.len(),
        closing_resent = reconcile.closing_resent,
        closing_resend_refused = reconcile.closing_resend_refused,
        reconcile_errors = reconcile.errors,
        reconcile_lease_held = reconcile.lease_held,
        reconcile_resend_postponed = reconcile.resend_postponed,
        reconcile_closing_pending = reconcile.closing_pending,
        pending_events = backlog.as_ref().map(|b| b.pending_events),
        failed_events = backlog.as_ref().map(|b| b.failed_events),
        rejected_documents = backlog.as_ref().map(|b| b.rejected_documents),
        oldest_pending_age_seconds = oldest_pending_age,
        pending_documents = backlog.as_ref().map(|b| b.pending_documents),
        oldest_pending_document_age_seconds = oldest_document_age,
        unpublished_events = backlog.as_ref().map(|b| b.unpublished_events),
        oldest_unpublished_age_seconds = age(
            backlog.as_ref().and_then(|b| b.oldest_unpublished_since),
            now
        ),
        stopped_early = report.stopped_early(),
        "on-call closer run"
    );
    telemetry::metrics::emit(&summary_metrics(summary, now));
}

/// The run's counts and the backlog once it is over, as metrics (`Function` =
/// `oncall-closer`, no other dimension). The alarms in `template.yaml` name them.
fn summary_metrics(summary: &RunSummary, now: Timestamp) -> Metrics {
    let report = &summary.report;
    let closing = report.closing.clone().unwrap_or_default();
    let resend = report.resend.clone().unwrap_or_default();
    let documents = report.documents.clone().unwrap_or_default();
    let reconcile = report.reconcile.clone().unwrap_or_default();
    let count = |metrics: Metrics, name: &'static str, value: usize| {
        metrics.metric(name, Unit::Count, value, &[])
    };
    let mut metrics = Metrics::new().at(now.as_millisecond());
    metrics = count(metrics, "FilesClosed", closing.closed);
    metrics = count(metrics, "EventsResent", resend.delivered);
    metrics = count(metrics, "EventsStillPending", resend.still_pending);
    // Refused in this run, wherever it happened: a closing at the period's end, a re-sent
    // event, or a closing Intent lost and then refused when reconciliation sent it again
    // (the file stays open on Intent: an operator's matter, alarmed like the others).
    metrics = count(
        metrics,
        "EventsMarkedFailed",
        resend.marked_failed + closing.delivery_failed + reconcile.closing_resend_refused,
    );
    metrics = count(metrics, "DocumentsForwarded", documents.published);
    metrics = count(
        metrics,
        "UnknownOnIntent",
        reconcile.unknown_on_intent.len(),
    );
    metrics = count(
        metrics,
        "RunStoppedEarly",
        usize::from(report.stopped_early()),
    );
    if let Some(backlog) = &report.backlog {
        metrics = count(metrics, "PendingEvents", backlog.pending_events);
        metrics = metrics.metric(
            "OldestPendingEventAge",
            Unit::Seconds,
            age(backlog.oldest_pending_since, now),
            &[],
        );
        metrics = count(metrics, "FailedEvents", backlog.failed_events);
        metrics = count(metrics, "PendingDocuments", backlog.pending_documents);
        metrics = metrics.metric(
            "OldestPendingDocumentAge",
            Unit::Seconds,
            age(backlog.oldest_pending_document_since, now),
            &[],
        );
        metrics = count(metrics, "RejectedDocuments", backlog.rejected_documents);
        metrics = count(
            metrics,
            "UnpublishedDomainEvents",
            backlog.unpublished_events,
        );
        metrics = metrics.metric(
            "OldestUnpublishedDomainEventAge",
            Unit::Seconds,
            age(backlog.oldest_unpublished_since, now),
            &[],
        );
    }
    metrics
}

/// Seconds the oldest of a backlog's kind has waited since `since` (0 without one).
fn age(since: Option<Timestamp>, now: Timestamp) -> i64 {
    since.map_or(0, |since| now.duration_since(since).as_secs().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TickKind;
    use oncall_domain::closer_run::RunReport;
    use oncall_domain::forward::DocumentsReport;
    use oncall_domain::oncall::{ClosingReport, ResendReport};
    use serde_json::json;
    use telemetry::metrics::InvocationIds;

    #[test]
    fn a_runs_counts_and_backlog_are_its_metrics() {
        let now: Timestamp = "2026-11-30T07:10:00Z".parse().unwrap();
        let summary = RunSummary {
            kind: TickKind::EndOfPeriod,
            scheduled_time: now,
            report: RunReport {
                closing: Some(ClosingReport {
                    closed: 7,
                    delivery_failed: 1,
                    ..Default::default()
                }),
                resend: Some(ResendReport {
                    delivered: 4,
                    still_pending: 2,
                    marked_failed: 2,
                    ..Default::default()
                }),
                documents: Some(DocumentsReport {
                    published: 3,
                    ..Default::default()
                }),
                // A closing Intent lost and then refused when reconciliation sent it again.
                reconcile: Some(oncall_domain::oncall::ReconcileReport {
                    closing_resend_refused: 1,
                    ..Default::default()
                }),
                backlog: Some(oncall_domain::ports::Backlog {
                    pending_events: 2,
                    oldest_pending_since: Some("2026-11-30T06:10:00Z".parse().unwrap()),
                    failed_events: 5,
                    pending_documents: 1,
                    oldest_pending_document_since: Some("2026-11-30T04:10:00Z".parse().unwrap()),
                    rejected_documents: 2,
                    unpublished_events: 3,
                    oldest_unpublished_since: Some("2026-11-30T05:10:00Z".parse().unwrap()),
                }),
                interrupted: true,
                ..Default::default()
            },
        };
        let document = summary_metrics(&summary, now).document(
            "oncall-closer",
            &InvocationIds {
                request_id: "r-1".into(),
                xray_trace_id: None,
            },
        );
        let count = |name: &str| json!({"Name": name, "Unit": "Count"});
        assert_eq!(
            document["_aws"],
            json!({
                "Timestamp": now.as_millisecond(),
                "CloudWatchMetrics": [{
                    "Namespace": "OnCallBridge",
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        count("FilesClosed"), count("EventsResent"),
                        count("EventsStillPending"), count("EventsMarkedFailed"),
                        count("DocumentsForwarded"), count("UnknownOnIntent"),
                        count("RunStoppedEarly"), count("PendingEvents"),
                        {"Name": "OldestPendingEventAge", "Unit": "Seconds"},
                        count("FailedEvents"), count("PendingDocuments"),
                        {"Name": "OldestPendingDocumentAge", "Unit": "Seconds"},
                        count("RejectedDocuments"), count("UnpublishedDomainEvents"),
                        {"Name": "OldestUnpublishedDomainEventAge", "Unit": "Seconds"}
                    ]
                }]
            })
        );
        for (name, value) in [
            ("FilesClosed", 7),
            ("EventsResent", 4),
            ("EventsStillPending", 2),
            ("EventsMarkedFailed", 4),
            ("DocumentsForwarded", 3),
            ("UnknownOnIntent", 0),
            ("RunStoppedEarly", 1),
            ("PendingEvents", 2),
            ("OldestPendingEventAge", 3600),
            ("FailedEvents", 5),
            ("PendingDocuments", 1),
            ("OldestPendingDocumentAge", 3 * 3600),
            ("RejectedDocuments", 2),
            ("UnpublishedDomainEvents", 3),
            ("OldestUnpublishedDomainEventAge", 2 * 3600),
        ] {
            assert_eq!(document[name], json!(value), "{name}");
        }
        assert_eq!(document["Function"], "oncall-closer");
        assert_eq!(document["requestId"], "r-1");

        // Without a backlog (it could not be read), the run's counts only.
        let mut partial = summary.clone();
        partial.report.backlog = None;
        let document =
            summary_metrics(&partial, now).document("oncall-closer", &InvocationIds::default());
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            7
        );
        assert!(document.get("OldestPendingEventAge").is_none());
    }
}
