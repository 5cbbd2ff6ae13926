//! Sending a stored event to Intent and recording the result. The event is always stored
//! before this runs, so a failure here loses nothing: the event stays pending.

use crate::file::{Delivery, InterventionFile};
use crate::model::{FileId, InterventionLog};
use crate::ports::{Clock, LoadFile, PublishToIntent, RecordDelivery, SendLease};

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

/// How long a sender may hold a file: longer than any delivery with its retries.
pub const SEND_LEASE: jiff::SignedDuration = jiff::SignedDuration::from_mins(3);

/// Sends a file's undelivered events to Intent strictly in order: an event is only sent
/// once every earlier one is delivered, so Intent never sees a closure before the opening.
/// Stops at the first event that does not get through (it and those after it stay
/// pending). Events Intent refused for good (`failed`) block those after them too. No new
/// event is started once `deadline` is reached (it stays pending for the re-send run).
///
/// The file's send lease is taken first and the file read again under it, so a sender
/// never acts on a stale copy; if another sender holds the lease, nothing is sent here
/// (that sender, or the next re-send run, delivers). Returns the file as it stands.
pub async fn deliver_in_order<S, I, C>(
    store: &S,
    intent: &I,
    clock: &C,
    file: InterventionFile,
    deadline: Deadline,
) -> InterventionFile
where
    S: RecordDelivery + SendLease + LoadFile,
    I: PublishToIntent,
    C: Clock,
{
    if file
        .events
        .iter()
        .all(|event| !matches!(event.delivery, Delivery::Pending { .. }))
    {
        return file;
    }
    let now = clock.now();
    let until = now.checked_add(SEND_LEASE).unwrap_or(now);
    match store.take_send_lease(&file.id, now, until).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("another sender is delivering this file's events; leaving them to it");
            return file;
        }
        Err(error) => {
            tracing::warn!(%error, "could not take the send lease; events stay pending");
            return file;
        }
    }
    let id = file.id.clone();
    let mut current = match store.load_file(&id).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => file,
        Err(error) => {
            tracing::warn!(%error, "could not re-read the file; events stay pending");
            let _ = store.release_send_lease(&id, until).await;
            return file;
        }
    };
    for event in current.events.iter_mut() {
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
    if let Err(error) = store.release_send_lease(&id, until).await {
        tracing::warn!(%error, "could not release the send lease; it ends by itself");
    }
    current
}
