//! Adapter: domain events onto an EventBridge bus, with `PutEvents` signed by hand
//! ([`aws_signing`]: no EventBridge SDK client to build at each cold start).
//!
//! `PutEvents` can succeed as a call while rejecting some entries (`FailedEntryCount` > 0,
//! an `ErrorCode` on those entries, results in request order). Those entries, and only
//! those, are sent again with jittered backoff, up to a bounded number of attempts, when
//! their code may pass another time; the publication's error names the events not taken
//! (the caller keeps those in its outbox and takes the others out).

use aws_signing::{AwsJsonService, CallFailure};
use oncall_domain::DomainEvent;
use oncall_domain::ports::{DomainEventError, PublishDomainEvents};
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;

/// PutEvents takes at most ten entries per call.
const MAX_ENTRIES_PER_CALL: usize = 10;
/// PutEvents calls in flight at once for a large batch.
const CONCURRENT_CALLS: usize = 8;
/// One call's limit: a stalled connection is given up and the call sent again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    eventbridge: AwsJsonService,
    bus_name: String,
    source: String,
    max_attempts: u32,
}

impl EventBridgePublisher {
    /// Events from `source` onto `bus_name`, through `eventbridge` (built with
    /// [`aws_signing::EVENTBRIDGE`]).
    pub fn new(
        eventbridge: AwsJsonService,
        bus_name: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            eventbridge,
            bus_name: bus_name.into(),
            source: source.into(),
            max_attempts: 4,
        }
    }

    /// One `PutEventsRequestEntry`, as EventBridge's JSON protocol spells it.
    fn entry(&self, event: &DomainEvent) -> Value {
        json!({
            "EventBusName": self.bus_name,
            "Source": self.source,
            "DetailType": event.detail_type(),
            "Detail": event.detail_json(),
        })
    }
}

impl PublishDomainEvents for EventBridgePublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), DomainEventError> {
        use futures_util::StreamExt;
        // Calls of ten entries, a few at once: ten thousand closures at the end of a
        // period are a thousand calls, not a thousand round trips in a row.
        let batches: Vec<Vec<(String, Value)>> = events
            .chunks(MAX_ENTRIES_PER_CALL)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|event| (event.event_id(), self.entry(event)))
                    .collect()
            })
            .collect();
        let outcomes: Vec<Result<(), NotPut<(String, Value)>>> =
            futures_util::stream::iter(batches)
                .map(|entries| self.put_batch(entries))
                .buffer_unordered(CONCURRENT_CALLS)
                .collect()
                .await;
        let mut not_taken = Vec::new();
        let mut problems = Vec::new();
        for outcome in outcomes {
            if let Err(not_put) = outcome {
                for ((event_id, _), why) in not_put.entries {
                    problems.push(format!("{why} (eventId {event_id})"));
                    not_taken.push(event_id);
                }
            }
        }
        if not_taken.is_empty() {
            return Ok(());
        }
        // Error codes and ids only (a detail never: nor is any personal data in one).
        const NAMED: usize = 5;
        let more = problems.len().saturating_sub(NAMED);
        problems.truncate(NAMED);
        let mut detail = problems.join(", ");
        if more > 0 {
            detail.push_str(&format!(" and {more} more"));
        }
        Err(DomainEventError { not_taken, detail })
    }
}

impl EventBridgePublisher {
    /// One `PutEvents` call (at most ten entries, each with its event's id), re-sending
    /// what it rejects for a reason that may pass.
    async fn put_batch(
        &self,
        entries: Vec<(String, Value)>,
    ) -> Result<(), NotPut<(String, Value)>> {
        put_with_retries(entries, self.max_attempts, |batch| async move {
            let entries: Vec<&Value> = batch.iter().map(|(_, entry)| entry).collect();
            let body = json!({ "Entries": entries }).to_string();
            let answer = self
                .eventbridge
                .call::<Value>("PutEvents", body, ATTEMPT_TIMEOUT)
                .await?;
            Ok(entry_results(&answer))
        })
        .await
    }
}

/// Each entry's error code (`None`: accepted), in request order, from `PutEvents`'s
/// answer. An answer without `Entries` gives none, so every entry counts as failed.
fn entry_results(answer: &Value) -> Vec<Option<String>> {
    answer["Entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    entry["ErrorCode"]
                        .as_str()
                        .filter(|code| !code.is_empty())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an entry `PutEvents` rejected with `code` may pass if sent again: the two codes
/// its reference calls retryable (and an entry it gave no result for). Any other code
/// (`InvalidArgument`, `MalformedDetail`, `AccessDeniedException`,
/// `NotAuthorizedFor…`) fails again as it is: the entry is not sent again in this call.
fn retryable_entry_code(code: &str) -> bool {
    matches!(code, "InternalFailure" | "ThrottlingException" | NO_RESULT)
}

/// The code of an entry the answer gave no result for.
const NO_RESULT: &str = "NoResult";

/// What [`put_with_retries`] could not put: each entry with the last reason it was not
/// taken (an entry's error code, or the call's failure), and the others were taken.
#[derive(Debug)]
pub struct NotPut<T> {
    pub entries: Vec<(T, String)>,
}

/// Sends `entries` with `put`, which answers one optional error code per entry sent (in
/// order) or a failure of the whole call, re-sending only what failed for a reason that
/// may pass ([`retryable_entry_code`]); a call failure that is not transient (access
/// denied, a bus that does not exist) ends the attempts. A call given up on (its answer
/// late) may have been applied: an entry can reach the bus twice, with the same `eventId`
/// in its detail for consumers to de-duplicate on, as any at-least-once publication from
/// the outbox.
pub async fn put_with_retries<T, F, Fut>(
    entries: Vec<T>,
    max_attempts: u32,
    mut put: F,
) -> Result<(), NotPut<T>>
where
    T: Clone,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<Option<String>>, CallFailure>>,
{
    let mut remaining: Vec<(T, String)> = entries
        .into_iter()
        .map(|entry| (entry, String::new()))
        .collect();
    let mut refused_for_good = Vec::new();
    for attempt in 0..max_attempts.max(1) {
        if remaining.is_empty() {
            break;
        }
        if attempt > 0 {
            let cap_ms = 50u64 << attempt.min(5);
            tokio::time::sleep(Duration::from_millis(fastrand::u64(cap_ms / 2..=cap_ms))).await;
        }
        let sent: Vec<T> = remaining.iter().map(|(entry, _)| entry.clone()).collect();
        match put(sent).await {
            Ok(results) => {
                let mut still_failing = Vec::new();
                let mut codes = Vec::new();
                for (index, (entry, _)) in remaining.into_iter().enumerate() {
                    // A missing result counts as a failure: never assume success.
                    let code = match results.get(index) {
                        Some(None) => continue,
                        Some(Some(code)) => code.clone(),
                        None => NO_RESULT.to_string(),
                    };
                    codes.push(code.clone());
                    if retryable_entry_code(&code) {
                        still_failing.push((entry, code));
                    } else {
                        refused_for_good.push((entry, code));
                    }
                }
                if !codes.is_empty() {
                    tracing::warn!(failed = codes.len(), attempt = attempt + 1, codes = ?codes, "PutEvents rejected entries; re-sending those that may pass");
                }
                remaining = still_failing;
            }
            Err(failure) => {
                tracing::warn!(attempt = attempt + 1, error = %failure, "PutEvents call failed");
                for (_, why) in &mut remaining {
                    why.clone_from(&failure.message);
                }
                if !failure.transient {
                    break;
                }
            }
        }
    }
    refused_for_good.extend(remaining);
    if refused_for_good.is_empty() {
        Ok(())
    } else {
        Err(NotPut {
            entries: refused_for_good,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn put_events_answers_give_one_result_per_entry_in_order() {
        let answer = serde_json::json!({
            "FailedEntryCount": 1,
            "Entries": [
                {"EventId": "11710aed-b79e-4468-a20b-bb3c0c3b4860"},
                {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"},
                {"EventId": "d804d26a-88db-4b66-9eaf-9a11c708ae82"}
            ]
        });
        assert_eq!(
            entry_results(&answer),
            [None, Some("InternalFailure".to_string()), None]
        );
        assert!(entry_results(&serde_json::json!({"FailedEntryCount": 0})).is_empty());
    }

    #[tokio::test]
    async fn only_the_rejected_entries_are_sent_again() {
        let calls = Mutex::new(Vec::new());
        let result = put_with_retries(vec!["a", "b", "c"], 4, |batch| {
            calls.lock().unwrap().push(batch.clone());
            async move {
                Ok(batch
                    .iter()
                    .map(|entry| {
                        // "b" is throttled the first time only.
                        (*entry == "b" && batch.len() == 3)
                            .then(|| "ThrottlingException".to_string())
                    })
                    .collect())
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(*calls.lock().unwrap(), vec![vec!["a", "b", "c"], vec!["b"]]);
    }

    fn call_failure(message: &str, transient: bool) -> CallFailure {
        CallFailure {
            error_type: None,
            message: message.to_string(),
            transient,
            answer: None,
        }
    }

    #[tokio::test]
    async fn a_failing_call_is_retried_then_reported_with_the_count() {
        let mut calls = 0;
        let result = put_with_retries(vec![1, 2], 3, |_batch| {
            calls += 1;
            async { Err::<Vec<Option<String>>, _>(call_failure("connection refused", true)) }
        })
        .await;
        assert_eq!(calls, 3);
        let error = result.unwrap_err();
        assert_eq!(error.entries.len(), 2);
        assert!(
            error
                .entries
                .iter()
                .all(|(_, why)| why.contains("connection refused"))
        );
    }

    #[tokio::test]
    async fn a_call_refused_for_good_is_not_sent_again() {
        let mut calls = 0;
        let result = put_with_retries(vec![1, 2], 4, |_batch| {
            calls += 1;
            async {
                Err::<Vec<Option<String>>, _>(call_failure(
                    "EventBridge refused PutEvents (400 Bad Request): ResourceNotFoundException: no bus",
                    false,
                ))
            }
        })
        .await;
        assert_eq!(calls, 1);
        let error = result.unwrap_err();
        assert_eq!(error.entries.len(), 2);
        assert!(error.entries[0].1.contains("ResourceNotFoundException"));
    }

    #[tokio::test]
    async fn entries_that_keep_failing_are_reported_not_dropped() {
        let result = put_with_retries(vec!["x", "y"], 2, |batch| async move {
            Ok(batch
                .iter()
                .map(|e| (*e == "y").then(|| "InternalFailure".to_string()))
                .collect())
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.entries, [("y", "InternalFailure".to_string())]);
    }

    #[tokio::test]
    async fn an_entry_refused_for_good_is_not_sent_again_and_its_batch_mates_are_taken() {
        let calls = Mutex::new(Vec::new());
        let result = put_with_retries(vec!["a", "poison", "c"], 4, |batch| {
            calls.lock().unwrap().push(batch.clone());
            async move {
                Ok(batch
                    .iter()
                    .map(|entry| match *entry {
                        "poison" => Some("InvalidArgument".to_string()),
                        // "c" is throttled the first time only.
                        "c" if batch.len() == 3 => Some("ThrottlingException".to_string()),
                        _ => None,
                    })
                    .collect())
            }
        })
        .await;
        assert_eq!(
            *calls.lock().unwrap(),
            vec![vec!["a", "poison", "c"], vec!["c"]],
            "the refused entry is not sent again; the throttled one is"
        );
        assert_eq!(
            result.unwrap_err().entries,
            [("poison", "InvalidArgument".to_string())],
            "only the refused entry is not taken"
        );
    }

    #[tokio::test]
    async fn missing_results_count_as_failures() {
        let mut calls = 0;
        let result = put_with_retries(vec!["x", "y"], 2, |_batch| {
            calls += 1;
            // First call: a result for "x" only; second call: no result at all.
            let results = if calls == 1 { vec![None] } else { vec![] };
            async move { Ok(results) }
        })
        .await;
        assert_eq!(result.unwrap_err().entries, [("y", "NoResult".to_string())]);
        assert_eq!(calls, 2);
    }
}
