//! Intent's calls measured: a decorator of the Intent ports that reports, for every call
//! made within an invocation, how long it took and, for a delivery, how it ended. The
//! domain and the Intent client are unchanged; a function wires its client inside it.
//!
//! | metric | unit | dimensions | per |
//! | --- | --- | --- | --- |
//! | `IntentDeliveries` | Count | `Function`, `Result` (`delivered`, `pending`, `conflict`, `failed`, `source_missing`) | event or document sent |
//! | `IntentLatency` | Milliseconds | `Function`, `Operation` (`event`, `event_lookup`, `document`, `document_lookup`) | call, retries and token included |
//!
//! `source_missing` (documents): nothing sent, the object version was deleted from the
//! bucket meanwhile (the document is rejected `missing`; Intent refused nothing).
//! `pending`: not taken now, sent again later (Intent unreachable, 5xx, 429, a timeout, an
//! intervention it does not know yet); `conflict`: Intent answered 409, read back before
//! anything else; `failed`: Intent refused the content for good (the event or document is
//! recorded failed and needs an operator), or the read-back after a 409 did not find it
//! (counted on that read, `event_lookup` or `document_lookup`: the 409 ends in a refusal).

use crate::metrics::{Metrics, Unit, emit};
use oncall_domain::documents::DocumentUpload;
use oncall_domain::model::InterventionLog;
use oncall_domain::ports::{
    DeliveryFailure, OpenDocument, PublishDocument, PublishToIntent, PublishedDocument,
};
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

pub const INTENT_DELIVERIES: &str = "IntentDeliveries";
pub const INTENT_LATENCY: &str = "IntentLatency";
/// How a delivery ended.
pub const RESULT: &str = "Result";
/// Which call.
pub const OPERATION: &str = "Operation";

/// The Intent adapter `I`, its calls measured.
#[derive(Debug)]
pub struct MeteredIntent<I> {
    inner: I,
    /// What Intent answered 409 for, not read back yet: the read-back that does not find
    /// it settles a refusal (counted `failed`).
    conflicts: Mutex<HashSet<String>>,
}

/// More conflicts waiting for their read-back than this is a caller that never reads back:
/// they are forgotten rather than kept for the execution environment's life.
const CONFLICTS_REMEMBERED: usize = 1024;

impl<I> MeteredIntent<I> {
    pub fn new(inner: I) -> Self {
        Self {
            inner,
            conflicts: Mutex::new(HashSet::new()),
        }
    }

    fn remember_conflict(&self, what: String) {
        let mut conflicts = self
            .conflicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if conflicts.len() >= CONFLICTS_REMEMBERED {
            conflicts.clear();
        }
        conflicts.insert(what);
    }

    /// Whether `what` was answered 409 and not read back since (forgotten now).
    fn take_conflict(&self, what: &str) -> bool {
        self.conflicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(what)
    }

    pub fn inner(&self) -> &I {
        &self.inner
    }
}

/// The `Result` of a delivery.
pub fn delivery_result(outcome: Result<(), &DeliveryFailure>) -> &'static str {
    match outcome {
        Ok(()) => "delivered",
        // Nothing reached Intent: the document's object version was deleted meanwhile.
        Err(failure) if failure.source_missing => "source_missing",
        Err(failure) if failure.conflict => "conflict",
        Err(failure) if failure.retryable => "pending",
        Err(_) => "failed",
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    // Whole microseconds, in milliseconds.
    started.elapsed().as_micros() as f64 / 1000.0
}

fn report_delivery(
    operation: &'static str,
    started: Instant,
    outcome: Result<(), &DeliveryFailure>,
) {
    report_result(operation, started, delivery_result(outcome));
}

/// One delivery counted as `result`, with the call's latency.
fn report_result(operation: &'static str, started: Instant, result: &'static str) {
    emit(
        &Metrics::new()
            .dimension(RESULT, result)
            .dimension(OPERATION, operation)
            .metric(INTENT_DELIVERIES, Unit::Count, 1, &[RESULT])
            .metric(
                INTENT_LATENCY,
                Unit::Milliseconds,
                elapsed_ms(started),
                &[OPERATION],
            ),
    );
}

/// A read of Intent; `refusal_settled`: it read back, and did not find, what Intent
/// answered 409 for (the delivery ends refused: counted `failed`).
fn report_lookup(operation: &'static str, started: Instant, refusal_settled: bool) {
    if refusal_settled {
        report_result(operation, started, "failed");
        return;
    }
    emit(&Metrics::new().dimension(OPERATION, operation).metric(
        INTENT_LATENCY,
        Unit::Milliseconds,
        elapsed_ms(started),
        &[OPERATION],
    ));
}

/// What an event is to Intent (the conflict it may meet is the same event's).
fn event_identity(log: &InterventionLog) -> String {
    oncall_domain::fingerprint::fingerprint_text(&[
        "event",
        &log.contract_reference,
        &log.reference,
        &log.event.pair(),
    ])
}

/// What a document upload is to Intent.
fn document_identity(upload: &DocumentUpload) -> String {
    oncall_domain::fingerprint::fingerprint_text(&[
        "document",
        &upload.contract_reference,
        &upload.element_reference,
        &upload.file_name,
        &upload.title,
        &upload.description,
    ])
}

impl<I: PublishToIntent> PublishToIntent for MeteredIntent<I> {
    async fn publish_log(&self, log: &InterventionLog) -> Result<u32, DeliveryFailure> {
        let started = Instant::now();
        let sent = self.inner.publish_log(log).await;
        report_delivery("event", started, sent.as_ref().map(|_| ()));
        if sent.as_ref().is_err_and(|failure| failure.conflict) {
            self.remember_conflict(event_identity(log));
        }
        sent
    }

    async fn log_is_on_intent(&self, log: &InterventionLog) -> Result<bool, DeliveryFailure> {
        let started = Instant::now();
        // Taken before the read: a read dropped mid-way (a request's time limit) settles
        // nothing, and the next read of the event does not follow its 409.
        let after_conflict = self.take_conflict(&event_identity(log));
        let found = self.inner.log_is_on_intent(log).await;
        report_lookup(
            "event_lookup",
            started,
            after_conflict && matches!(found, Ok(false)),
        );
        found
    }

    fn longest_call(&self) -> std::time::Duration {
        self.inner.longest_call()
    }
}

impl<I: PublishDocument> PublishDocument for MeteredIntent<I> {
    async fn publish_document<O: OpenDocument>(
        &self,
        upload: &DocumentUpload,
        body: &O,
        within: std::time::Duration,
    ) -> Result<PublishedDocument, DeliveryFailure> {
        let started = Instant::now();
        let sent = self.inner.publish_document(upload, body, within).await;
        report_delivery("document", started, sent.as_ref().map(|_| ()));
        if sent.as_ref().is_err_and(|failure| failure.conflict) {
            self.remember_conflict(document_identity(upload));
        }
        sent
    }

    async fn find_document(
        &self,
        upload: &DocumentUpload,
        size: u64,
        earlier: &[Option<&str>],
    ) -> Result<Option<PublishedDocument>, DeliveryFailure> {
        let started = Instant::now();
        let after_conflict = self.take_conflict(&document_identity(upload));
        let found = self.inner.find_document(upload, size, earlier).await;
        report_lookup(
            "document_lookup",
            started,
            after_conflict && matches!(found, Ok(None)),
        );
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::Lines;
    use crate::metrics::{Invocation, MetricsSink};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A document whose S3 object version was deleted before the upload opened it never
    /// reached Intent: Intent refused nothing, and the alarm on refused deliveries (which
    /// asks an operator for a redrive) must not take it for a refusal.
    #[test]
    fn a_document_gone_from_its_bucket_is_not_a_refusal_by_intent() {
        let gone = DeliveryFailure::source_missing(1, "the object version is gone");
        assert_eq!(delivery_result(Err(&gone)), "source_missing");
        let refused = DeliveryFailure::refused(1, "Intent rejected the request with HTTP 400");
        assert_eq!(delivery_result(Err(&refused)), "failed");
    }

    /// Intent answering 409 to every event; its first read-back never answers, the later
    /// ones do not find the event.
    #[derive(Default)]
    struct ConflictThenLookups {
        lookups: AtomicUsize,
    }

    impl PublishToIntent for ConflictThenLookups {
        async fn publish_log(&self, _log: &InterventionLog) -> Result<u32, DeliveryFailure> {
            Err(DeliveryFailure::conflict(1, "HTTP 409"))
        }

        async fn log_is_on_intent(&self, _log: &InterventionLog) -> Result<bool, DeliveryFailure> {
            if self.lookups.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            Ok(false)
        }
    }

    /// The read-back after a 409 that is dropped (the request's time limit) settles
    /// nothing: a later read of the same event (a sender taking the lease over, checking
    /// Intent before sending) is not counted `failed`; one that follows its own 409 is.
    #[tokio::test]
    async fn only_the_read_back_that_follows_a_409_counts_its_refusal() {
        let log = oncall_domain::validation::parse_intervention_log(
            oncall_domain::intent_examples::SEED_OPENING.as_bytes(),
        )
        .unwrap();
        let intent = MeteredIntent::new(ConflictThenLookups::default());
        let lines = Lines::default();
        let invocation = Invocation::new(
            "claim-intake",
            "r-1",
            None,
            MetricsSink::writer(lines.clone()),
        );
        invocation
            .run(async {
                assert!(intent.publish_log(&log).await.is_err());
                let cut = tokio::time::timeout(
                    std::time::Duration::from_millis(20),
                    intent.log_is_on_intent(&log),
                )
                .await;
                assert!(cut.is_err(), "the first read-back hangs");
                assert_eq!(intent.log_is_on_intent(&log).await, Ok(false));
                // A 409 read back in full: a refusal.
                assert!(intent.publish_log(&log).await.is_err());
                assert_eq!(intent.log_is_on_intent(&log).await, Ok(false));
            })
            .await;
        let results: Vec<String> = lines
            .documents()
            .iter()
            .filter(|document| document.get("IntentDeliveries").is_some())
            .map(|document| document["Result"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(results, ["conflict", "conflict", "failed"]);
    }

    #[test]
    fn a_delivery_ends_in_one_of_four_results() {
        assert_eq!(delivery_result(Ok(())), "delivered");
        assert_eq!(
            delivery_result(Err(&DeliveryFailure::retryable(3, "HTTP 503"))),
            "pending"
        );
        assert_eq!(
            delivery_result(Err(&DeliveryFailure::outcome_unknown(1, "timeout"))),
            "pending"
        );
        assert_eq!(
            delivery_result(Err(&DeliveryFailure::conflict(1, "HTTP 409"))),
            "conflict"
        );
        assert_eq!(
            delivery_result(Err(&DeliveryFailure::refused(1, "HTTP 400"))),
            "failed"
        );
    }
}
