//! Sending a stored event to Intent and recording the result. The event is always stored
//! before this runs, so a failure here loses nothing: the event stays pending.

use crate::file::{Delivery, InterventionFile};
use crate::model::{FileId, InterventionLog};
use crate::ports::{Clock, PublishToIntent, RecordDelivery};

/// Sends `log` (event `seq` of file `id`, with `previous_attempts` already made) and
/// records the outcome. Returns the delivery state as recorded (or as it would have been,
/// if recording failed: that failure is logged, and the event is then re-sent later).
pub async fn deliver_event<S, I, C>(
    store: &S,
    intent: &I,
    clock: &C,
    id: &FileId,
    seq: u32,
    log: &InterventionLog,
    previous_attempts: u32,
) -> Delivery
where
    S: RecordDelivery,
    I: PublishToIntent,
    C: Clock,
{
    let delivery = match intent.publish_log(log).await {
        Ok(attempts) => Delivery::Delivered {
            attempts: previous_attempts + attempts,
            delivered_at: clock.now(),
        },
        Err(failure) if failure.retryable => {
            tracing::warn!(seq, attempts = failure.attempts, error = %failure.detail, "Intent did not take the event; it stays pending");
            Delivery::Pending {
                attempts: previous_attempts + failure.attempts,
                last_error: Some(failure.detail),
                last_attempt_at: Some(clock.now()),
            }
        }
        Err(failure) => {
            tracing::error!(seq, attempts = failure.attempts, error = %failure.detail, "Intent rejected the event for good");
            Delivery::Failed {
                attempts: previous_attempts + failure.attempts,
                last_error: failure.detail,
                last_attempt_at: clock.now(),
            }
        }
    };
    if let Err(error) = store.record_delivery(id, seq, &delivery).await {
        tracing::error!(seq, state = delivery.label(), %error, "could not record the delivery state");
    }
    delivery
}

/// When work must stop (a Lambda's deadline, an API request's time budget).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub stop_at: Option<std::time::Instant>,
}

impl Deadline {
    pub fn none() -> Self {
        Self { stop_at: None }
    }

    pub fn after(budget: std::time::Duration) -> Self {
        Self {
            stop_at: Some(std::time::Instant::now() + budget),
        }
    }

    pub fn reached(&self) -> bool {
        self.stop_at
            .is_some_and(|at| std::time::Instant::now() >= at)
    }
}

/// Sends a file's undelivered events to Intent strictly in order: an event is only sent
/// once every earlier one is delivered, so Intent never sees a closure before the opening.
/// Stops at the first event that does not get through (it and those after it stay
/// pending). Events Intent refused for good (`failed`) block those after them too. No new
/// event is started once `deadline` is reached (it stays pending for the re-send run).
/// Returns the file with the delivery states as recorded.
pub async fn deliver_in_order<S, I, C>(
    store: &S,
    intent: &I,
    clock: &C,
    mut file: InterventionFile,
    deadline: Deadline,
) -> InterventionFile
where
    S: RecordDelivery,
    I: PublishToIntent,
    C: Clock,
{
    let id = file.id.clone();
    for event in file.events.iter_mut() {
        match &event.delivery {
            Delivery::Delivered { .. } => continue,
            Delivery::Failed { .. } => {
                tracing::warn!(
                    seq = event.seq,
                    "an event Intent refused blocks the ones after it"
                );
                break;
            }
            Delivery::Pending { .. } if deadline.reached() => break,
            Delivery::Pending { attempts, .. } => {
                event.delivery =
                    deliver_event(store, intent, clock, &id, event.seq, &event.log, *attempts)
                        .await;
                if !matches!(event.delivery, Delivery::Delivered { .. }) {
                    break;
                }
            }
        }
    }
    file
}
