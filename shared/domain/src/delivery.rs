//! Sending a stored event to Intent and recording the result, effectively once. The event
//! is always stored before this runs, so a failure here loses nothing: the event stays
//! pending.
//!
//! Effectively once: an attempt whose outcome is unknown (a timeout or a connection lost
//! after the request left, a sender that died holding the file's send lease, an outcome
//! that could not be recorded) leaves the event pending *in doubt*; before sending it
//! again, Intent's log of the intervention is read, and an event found there is recorded
//! as delivered without being sent. A 409 from Intent is read the same way ("already
//! there" is delivered, not failed).

use crate::domain_events::{DeliveryFailed, DomainEvent, EventDelivered};
use crate::file::{Delivery, InterventionFile, RecordedEvent};
use crate::model::FileId;
use crate::outbox::publish_announced;
use crate::ports::{
    Clock, DeliveryFailure, DomainEventError, FinishDelivery, LeaseGrant, LoadFile, Outbox,
    PublishDomainEvents, PublishToIntent,
};

/// Where an event stands after Intent was read: found there means delivered.
async fn confirm_on_intent<I: PublishToIntent>(
    intent: &I,
    event: &RecordedEvent,
) -> Result<bool, DeliveryFailure> {
    let found = intent.log_is_on_intent(&event.log).await?;
    if found {
        tracing::info!(
            seq = event.seq,
            "the event is already in Intent's log (an earlier answer was lost); not sent again"
        );
    }
    Ok(found)
}

/// What Intent says of `event`: read first if an earlier attempt is in doubt (or
/// `in_doubt` says so), else sent. Nothing is recorded here.
pub(crate) async fn attempt_event<I, C>(
    intent: &I,
    clock: &C,
    event: &RecordedEvent,
    in_doubt: bool,
) -> Delivery
where
    I: PublishToIntent,
    C: Clock,
{
    let previous = event.delivery.attempts();
    let pending = |attempts: u32, error: String, in_doubt: bool| Delivery::Pending {
        attempts,
        last_error: Some(error),
        last_attempt_at: Some(clock.now()),
        in_doubt,
    };
    let delivered = |attempts: u32| Delivery::Delivered {
        attempts,
        delivered_at: clock.now(),
    };
    if in_doubt || event.delivery.in_doubt() {
        match confirm_on_intent(intent, event).await {
            Ok(true) => return delivered(previous),
            Ok(false) => {}
            Err(failure) => {
                tracing::warn!(seq = event.seq, error = %failure.detail, "Intent could not be read to settle an earlier attempt; the event stays pending");
                // The read's HTTP attempts count: the backoff across runs grows with them.
                return pending(previous + failure.attempts, failure.detail, true);
            }
        }
    }
    match intent.publish_log(&event.log).await {
        Ok(attempts) => delivered(previous + attempts),
        Err(failure) => {
            let attempts = previous + failure.attempts;
            settle_failure(
                intent,
                event,
                failure,
                attempts,
                pending,
                delivered,
                clock.now(),
            )
            .await
        }
    }
}

/// A refusal is announced (`DeliveryFailed`), through the outbox of the write that
/// records it.
pub(crate) fn failure_announcement(
    id: &FileId,
    event: &RecordedEvent,
    delivery: &Delivery,
) -> Vec<DomainEvent> {
    outcome_announcement(id, event, delivery, false)
}

/// What an attempt's outcome tells other parties: a refusal for good (`DeliveryFailed`),
/// and a delivery when it is `late` (the event was announced not on Intent yet, by the
/// request that recorded it: `EventDelivered`).
fn outcome_announcement(
    id: &FileId,
    event: &RecordedEvent,
    delivery: &Delivery,
    late: bool,
) -> Vec<DomainEvent> {
    match delivery {
        Delivery::Failed { attempts, .. } => vec![DomainEvent::DeliveryFailed(DeliveryFailed {
            reference: id.reference.clone(),
            contract_reference: id.contract_reference.clone(),
            seq: event.seq,
            event: event.pair.as_str(),
            attempts: *attempts,
        })],
        Delivery::Delivered {
            attempts,
            delivered_at,
        } if late => vec![DomainEvent::EventDelivered(EventDelivered {
            reference: id.reference.clone(),
            contract_reference: id.contract_reference.clone(),
            seq: event.seq,
            event: event.pair.as_str(),
            attempts: *attempts,
            delivered_at: *delivered_at,
        })],
        _ => Vec::new(),
    }
}

/// After the write that recorded (or failed to record) an outcome: its announcement goes
/// to the bus.
async fn after_recording<S, E>(store: &S, events: &E, announce: &[DomainEvent], recorded: bool)
where
    S: Outbox,
    E: PublishDomainEvents,
{
    if recorded {
        publish_announced(store, events, announce).await;
    } else if !announce.is_empty()
        && let Err(error) = events.publish(announce).await
    {
        tracing::error!(%error, "the delivery's domain event was not published");
    }
}

fn not_recorded(seq: u32, delivery: &Delivery, error: &crate::ports::StoreError) {
    tracing::error!(seq, state = delivery.label(), %error, "could not record the delivery state; the event will be read back from Intent before any new attempt");
}

/// What a failed attempt means for the event.
async fn settle_failure<I: PublishToIntent>(
    intent: &I,
    event: &RecordedEvent,
    failure: DeliveryFailure,
    attempts: u32,
    pending: impl Fn(u32, String, bool) -> Delivery,
    delivered: impl Fn(u32) -> Delivery,
    now: jiff::Timestamp,
) -> Delivery {
    if failure.conflict || failure.outcome_unknown {
        // Intent may hold it: read its log once now.
        let read = confirm_on_intent(intent, event).await;
        // A failed read's HTTP attempts count (the backoff across runs grows with them).
        let attempts = attempts + read.as_ref().err().map_or(0, |failed| failed.attempts);
        match read {
            Ok(true) => return delivered(attempts),
            Ok(false) if failure.conflict => {}
            Ok(false) | Err(_) if failure.outcome_unknown => {
                tracing::warn!(seq = event.seq, attempts, error = %failure.detail, "the attempt's outcome is unknown; the event stays pending and Intent is read again before the next attempt");
                return pending(attempts, failure.detail, true);
            }
            Ok(false) | Err(_) => {
                // A 409 we could not settle by reading: in doubt, never failed blindly.
                return pending(attempts, failure.detail, true);
            }
        }
    }
    if failure.retryable {
        tracing::warn!(seq = event.seq, attempts, error = %failure.detail, "Intent did not take the event; it stays pending");
        return pending(attempts, failure.detail, false);
    }
    tracing::error!(seq = event.seq, attempts, error = %failure.detail, "Intent refused the event for good");
    Delivery::Failed {
        attempts,
        last_error: failure.detail,
        last_attempt_at: now,
    }
}

pub use crate::deadline::Deadline;

/// How long a sender may hold a file: longer than any delivery with its retries.
pub const SEND_LEASE: jiff::SignedDuration = jiff::SignedDuration::from_mins(3);

/// The Intent calls one event may need under the lease: a read when its outcome is in
/// doubt, the send, a read to settle a failure whose outcome is unknown.
const CALLS_PER_EVENT: u32 = 3;

/// The longest one event's calls to `intent` can take.
fn longest_event(intent: &impl PublishToIntent) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(intent.longest_call() * CALLS_PER_EVENT)
        .unwrap_or(jiff::SignedDuration::MAX)
}

/// How long a sender takes a file's send lease for: [`SEND_LEASE`], or more when one
/// event's calls to `intent` may take longer (a slow Intent configuration), so the first
/// event always fits in it.
pub fn send_lease_for(intent: &impl PublishToIntent) -> jiff::SignedDuration {
    SEND_LEASE.max(longest_event(intent).saturating_add(jiff::SignedDuration::from_secs(30)))
}

/// The file's send lease, held by the caller until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    pub until: jiff::Timestamp,
    /// Taken over from a sender that never gave it back: every pending event is in doubt.
    pub taken_over: bool,
}

/// Sends a file's undelivered events to Intent strictly in order: an event is only sent
/// once every earlier one is delivered, so Intent never sees a closure before the opening.
/// Stops at the first event that does not get through (it and those after it stay
/// pending). Events Intent refused for good (`failed`) block those after them too (and
/// were announced when they failed). No new event is started once `deadline` is reached
/// (it stays pending for the re-send run).
///
/// The file's send lease is taken first and the file read again under it, so a sender
/// never acts on a stale copy; if another sender holds the lease, nothing is sent here
/// (that sender, or the next re-send run, delivers). A lease taken over from a sender
/// that never gave it back puts every pending event in doubt; a lease under which an
/// outcome could not be recorded is not given back (it ends by itself), for the same
/// reason, nor one taken over that is left before its pending events were read back from
/// Intent (the deadline, no room left, the file unreadable). Returns the file as it stands.
pub async fn deliver_in_order<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    file: InterventionFile,
    deadline: Deadline,
) -> InterventionFile
where
    S: FinishDelivery + LoadFile,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    deliver_in_order_announcing(store, intent, events, clock, file, deadline, |_| Vec::new()).await
}

/// [`deliver_in_order`] for a caller whose own domain events, `announce(file)`, announce
/// the file's last event with its delivery (a closure whose write did not take the lease):
/// they go on the bus with the last outcome (or as the file stands, if nothing is sent
/// here), and that last event is not announced again when delivered.
pub async fn deliver_in_order_announcing<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    file: InterventionFile,
    deadline: Deadline,
    announce: impl Fn(&InterventionFile) -> Vec<DomainEvent>,
) -> InterventionFile
where
    S: FinishDelivery + LoadFile,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let unsent = |file: InterventionFile| async {
        publish_announced(store, events, &announce(&file)).await;
        file
    };
    if !file.events.iter().any(|event| event.delivery.is_pending()) {
        return unsent(file).await;
    }
    // A clock that may be off takes over only leases run out by its allowance more, and
    // holds its own that much longer (see `Clock::skew_allowance`).
    let now = clock.now();
    let skew = clock.skew_allowance();
    let until = now
        .checked_add(send_lease_for(intent).saturating_add(skew))
        .unwrap_or(now);
    let ran_out_before = now.checked_sub(skew).unwrap_or(now);
    let taken_over = match store.take_send_lease(&file.id, ran_out_before, until).await {
        Ok(LeaseGrant::Taken) => false,
        Ok(LeaseGrant::TakenOver) => {
            tracing::warn!(
                "took over a send lease that was not given back (its holder died, or this taking's own answer was lost): pending events are read back from Intent before being sent"
            );
            true
        }
        Ok(LeaseGrant::HeldElsewhere) => {
            tracing::info!("another sender is delivering this file's events; leaving them to it");
            return unsent(file).await;
        }
        Err(error) => {
            tracing::warn!(%error, "could not take the send lease; events stay pending");
            return unsent(file).await;
        }
    };
    let id = file.id.clone();
    let current = match store.load_file(&id).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => file,
        Err(error) => {
            tracing::warn!(%error, "could not re-read the file; events stay pending");
            if taken_over {
                // Intent was not read: the next sender must take it over in turn.
                tracing::warn!(
                    "keeping the send lease taken over: nothing was read back from Intent"
                );
            } else {
                let _ = store.release_send_lease(&id, until).await;
            }
            return unsent(file).await;
        }
    };
    deliver_under_lease(
        store,
        intent,
        events,
        clock,
        current,
        deadline,
        // Read again under the lease: as current as the store is.
        HeldLease { until, taken_over },
        announce,
    )
    .await
}

/// [`deliver_in_order`]'s work once the caller holds the send lease and `file` is as
/// stored (taken in the write that stored it, for a new claim or a closure; for a
/// closure, its earlier events read again under the lease). The last
/// outcome, the lease's release and the outbox's clearing of `announce(file)` (the
/// caller's domain events, published on the bus just before, with the delivery known) are
/// one write: a claim costs its opening write and this one.
#[allow(clippy::too_many_arguments)]
pub async fn deliver_under_lease<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    mut file: InterventionFile,
    deadline: Deadline,
    lease: HeldLease,
    announce: impl Fn(&InterventionFile) -> Vec<DomainEvent>,
) -> InterventionFile
where
    S: FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let id = file.id.clone();
    let mut all_recorded = true;
    let mut finished = false;
    let count = file.events.len();
    // The caller's own event (the last, when it announces it with its delivery) is not
    // announced again when delivered; any other was announced not on Intent yet.
    let caller_announces_the_last = !announce(&file).is_empty();
    // Under a lease taken over, the events up to the first one refused are each read back
    // from Intent as they are attempted (the dead holder may have sent them, in order).
    let mut read_back = 0;
    // Announcements of earlier outcomes, in the outbox with their records: they go on the
    // bus with the last outcome's, in its call, and leave the outbox with its write.
    let mut carried: Vec<DomainEvent> = Vec::new();
    for index in 0..count {
        let event = &file.events[index];
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
            Delivery::Pending { .. } => {}
        }
        // Started only if it cannot outlast the lease: once the lease runs out, another
        // sender may take it and send the same event.
        let seen_by_others = clock
            .now()
            .checked_add(clock.skew_allowance())
            .unwrap_or(jiff::Timestamp::MAX);
        if lease.until.duration_since(seen_by_others) < longest_event(intent) {
            tracing::warn!(
                seq = event.seq,
                "the send lease has no room left for this event's calls to Intent; it stays pending for the next sender"
            );
            break;
        }
        let in_doubt = lease.taken_over;
        let delivery = attempt_event(intent, clock, event, in_doubt).await;
        read_back = index + 1;
        let late = !(caller_announces_the_last && index + 1 == count);
        let refusal = outcome_announcement(&id, event, &delivery, late);
        let seq = event.seq;
        let last = !delivery.is_delivered() || index + 1 == count;
        file.events[index].delivery = delivery.clone();
        if !last {
            let recorded = match store.record_delivery(&id, seq, &delivery, &refusal).await {
                Ok(()) => true,
                Err(error) => {
                    not_recorded(seq, &delivery, &error);
                    false
                }
            };
            all_recorded &= recorded;
            if recorded {
                carried.extend(refusal);
            } else {
                after_recording(store, events, &refusal, false).await;
            }
            continue;
        }
        // The last step: the refusal (if any) and the caller's domain events go on the bus
        // now, in one call, with the outcome; then one write records the outcome, gives
        // the lease back and takes the caller's events out of the outbox (a refusal that
        // is on the bus already needs no outbox entry; one that is not gets one).
        let announced = announce(&file);
        // What the bus took: the caller's events among them leave the outbox, a refusal
        // among them needs no entry there (queued is not on the bus: the queue clears the
        // outbox once it is).
        let mut taken = Vec::new();
        if !carried.is_empty() || !refusal.is_empty() || !announced.is_empty() {
            let batch: Vec<DomainEvent> = carried
                .iter()
                .chain(&refusal)
                .chain(&announced)
                .cloned()
                .collect();
            let published = events.publish(&batch).await;
            if !events.queues() {
                taken = DomainEventError::taken_of(&published, &batch);
            }
            if let Err(error) = published {
                tracing::warn!(%error, "domain events not published; the outbox keeps them for the re-send run");
            }
        }
        // What the bus did not take goes to the outbox with the outcome: a refusal, and
        // the caller's announcements as they stand now (written over the copies stored
        // with the change, which told the delivery as it stood then). A queue takes them
        // later from its own copies, and keeps those in the outbox if the bus refuses.
        let to_outbox: Vec<DomainEvent> = if events.queues() {
            refusal.clone()
        } else {
            refusal
                .iter()
                .chain(&announced)
                .filter(|event| !taken.contains(&event.event_id()))
                .cloned()
                .collect()
        };
        let published: Vec<String> = carried
            .iter()
            .chain(&announced)
            .map(DomainEvent::event_id)
            .filter(|id| taken.contains(id))
            .collect();
        let recorded = if all_recorded {
            store
                .finish_delivery(&id, seq, &delivery, &to_outbox, lease.until, &published)
                .await
        } else {
            // An earlier outcome is not recorded: the lease is kept (the next sender reads
            // Intent first), so only this outcome is recorded, while the lease is still
            // this sender's (held up past it and taken over, its outcome is stale).
            let recorded = store
                .record_under_lease(&id, seq, &delivery, &to_outbox, lease.until)
                .await;
            if !published.is_empty()
                && let Err(error) = store.clear_published(&published).await
            {
                tracing::warn!(%error, "domain events published but still in the outbox; they may be published again (same eventId)");
            }
            recorded
        };
        let recorded = match recorded {
            Ok(()) => true,
            Err(error) => {
                not_recorded(seq, &delivery, &error);
                false
            }
        };
        all_recorded &= recorded;
        finished = true;
        break;
    }
    // Events the dead holder may have sent that were not read back here (the deadline,
    // no room left): the lease is kept, so the next sender takes it over and reads them
    // back, instead of sending them blind.
    let left_in_doubt = lease.taken_over
        && file.events[read_back..]
            .iter()
            .take_while(|event| !event.delivery.is_failed())
            .any(|event| event.delivery.is_pending());
    if !all_recorded {
        tracing::warn!(
            "keeping the send lease: an outcome was not recorded, so the next sender reads Intent first"
        );
    } else if !finished && left_in_doubt {
        tracing::warn!(
            "keeping the send lease taken over: events its holder may have sent were not read back from Intent"
        );
    } else if !finished && let Err(error) = store.release_send_lease(&id, lease.until).await {
        tracing::warn!(%error, "could not release the send lease; it ends by itself");
    }
    if !finished {
        carried.extend(announce(&file));
        publish_announced(store, events, &carried).await;
    }
    file
}

#[cfg(test)]
mod tests {
    //! Effectively once, given / when / then, on the in-memory adapters.
    use super::*;
    use crate::in_memory::FixedClock;
    use crate::in_memory::tests_support::{
        World, at, given_open_file, minutes, opening_log, pending_since, refused,
    };
    use crate::ports::{RecordDelivery, SendLease};

    fn world() -> World {
        World::at(at("2026-11-28T20:00:00Z"))
    }

    /// What these tests do with a world: store a claim never sent, deliver a file, close
    /// it as its partner does (`closed/done`).
    trait Delivering {
        async fn stored_opening(&self) -> InterventionFile;
        async fn deliver(&self, file: InterventionFile) -> InterventionFile;
        async fn close_as_its_partner(&self);
        async fn stored_opening_with_a_lease_left_behind(&self);
    }

    impl Delivering for World {
        async fn stored_opening(&self) -> InterventionFile {
            let log = opening_log("INTER-0500");
            let id =
                given_open_file(&self.store, &log, self.clock.0, Delivery::new_pending()).await;
            self.store.file(&id).unwrap()
        }

        async fn deliver(&self, file: InterventionFile) -> InterventionFile {
            deliver_in_order(
                &self.store,
                &self.intent,
                &self.events,
                &self.clock,
                file,
                Deadline::none(),
            )
            .await
        }

        /// A claim stored, its request gone, its send lease left behind (run out since).
        async fn stored_opening_with_a_lease_left_behind(&self) {
            let now = self.clock.0;
            let opening = self.stored_opening().await;
            self.store
                .take_send_lease(&opening.id, now - minutes(10), now - minutes(7))
                .await
                .unwrap();
        }

        async fn close_as_its_partner(&self) {
            crate::closure::close_intervention(
                &self.store,
                &self.intent,
                &self.events,
                &self.clock,
                crate::closure::ClosurePolicy::default(),
                crate::closure::ClosedBy::Partner(&crate::file::PartnerId("partner-a".into())),
                crate::in_memory::tests_support::closing_log(
                    "INTER-0500",
                    crate::lifecycle::Outcome::Done,
                ),
            )
            .await
            .unwrap();
        }
    }

    /// A clock that moves on by `step` every time it is read (each Intent call takes a
    /// while).
    struct SteppingClock {
        now: std::sync::Mutex<jiff::Timestamp>,
        step: jiff::SignedDuration,
    }

    impl Clock for SteppingClock {
        fn now(&self) -> jiff::Timestamp {
            let mut now = self.now.lock().unwrap();
            let read = *now;
            *now = read + self.step;
            read
        }
    }

    /// Intent is slow (each call may take 40 s, an event's three 120 s) and the opening
    /// took its time: the lease has no room left for the closing, which is not started
    /// (it would still be in flight when the lease runs out, and the next sender, taking
    /// the lease over, could send it too). It stays pending for the next sender; the
    /// lease is given back.
    #[tokio::test]
    async fn an_event_that_could_outlast_the_send_lease_is_not_started() {
        let world = world();
        world
            .intent
            .set_longest_call(std::time::Duration::from_secs(40));
        let id = given_open_file(
            &world.store,
            &opening_log("INTER-0500"),
            world.clock.0,
            Delivery::new_pending(),
        )
        .await;
        crate::in_memory::tests_support::given_closed(
            &world.store,
            &id,
            crate::lifecycle::Outcome::Done,
            world.clock.0,
            Delivery::new_pending(),
        )
        .await;
        let file = world.store.file(&id).unwrap();
        let start = world.clock.0;
        let until = start + jiff::SignedDuration::from_secs(180);
        world
            .store
            .take_send_lease(&id, start, until)
            .await
            .unwrap();
        let clock = SteppingClock {
            now: std::sync::Mutex::new(start),
            step: jiff::SignedDuration::from_secs(50),
        };

        let file = deliver_under_lease(
            &world.store,
            &world.intent,
            &world.events,
            &clock,
            file,
            Deadline::none(),
            HeldLease {
                until,
                taken_over: false,
            },
            |_| Vec::new(),
        )
        .await;

        let sent: Vec<_> = world
            .intent
            .accepted()
            .iter()
            .map(|log| log.event)
            .collect();
        assert_eq!(
            sent,
            [crate::Event::Acknowledged],
            "the closing is not started"
        );
        assert!(file.events[0].delivery.is_delivered());
        assert!(file.events[1].delivery.is_pending());
        assert_eq!(file.events[1].delivery.attempts(), 0);
        assert_eq!(
            world
                .store
                .take_send_lease(&id, start + jiff::SignedDuration::from_secs(1), until)
                .await
                .unwrap(),
            LeaseGrant::Taken,
            "the lease was given back"
        );
    }

    /// A slow Intent configuration lengthens the lease so that one event always fits.
    #[test]
    fn the_lease_has_room_for_one_event_whatever_intents_timeouts() {
        let intent = crate::in_memory::RecordingIntent::default();
        assert_eq!(send_lease_for(&intent), SEND_LEASE);
        intent.set_longest_call(std::time::Duration::from_secs(128));
        assert_eq!(
            send_lease_for(&intent),
            jiff::SignedDuration::from_secs(3 * 128 + 30)
        );
    }

    #[tokio::test]
    async fn a_lost_answer_is_settled_by_reading_intent_not_by_sending_again() {
        let world = world();
        let file = world.stored_opening().await;
        world.intent.lose_next_answer();
        let file = world.deliver(file).await;
        assert!(
            file.events[0].delivery.is_delivered(),
            "{:?}",
            file.events[0]
        );
        assert_eq!(world.intent.accepted().len(), 1, "sent once");
        assert_eq!(world.intent.reads(), 1);
        assert!(
            world.store.file(&file.id).unwrap().events[0]
                .delivery
                .is_delivered()
        );
    }

    #[tokio::test]
    async fn a_sender_that_died_holding_the_lease_leaves_its_events_in_doubt() {
        let world = world();
        let file = world.stored_opening().await;
        // A sender took the lease, sent the opening (Intent applied it) and died before
        // recording anything or giving the lease back.
        let earlier = world.clock.0 - jiff::SignedDuration::from_mins(10);
        let expired = earlier + SEND_LEASE;
        world
            .store
            .take_send_lease(&file.id, earlier, expired)
            .await
            .unwrap();
        world.intent.publish_log(&file.events[0].log).await.unwrap();

        let file = world.deliver(file).await;
        assert!(file.events[0].delivery.is_delivered());
        assert_eq!(world.intent.accepted().len(), 1, "not sent twice");
        assert_eq!(world.intent.reads(), 1, "Intent was read first");
        assert_eq!(world.store.lease(&file.id), None, "lease given back");
    }

    /// A sender took the file's lease ten minutes ago and died holding it.
    async fn given_a_lease_its_holder_never_gave_back(world: &World, file: &InterventionFile) {
        let earlier = world.clock.0 - jiff::SignedDuration::from_mins(10);
        world
            .store
            .take_send_lease(&file.id, earlier, earlier + SEND_LEASE)
            .await
            .unwrap();
    }

    /// A sender that takes over a lease and then stops before reading Intent (its run's
    /// deadline reached) does not give the lease back: the next sender takes it over in
    /// turn and reads Intent first, instead of sending blind what the dead holder may have
    /// sent.
    #[tokio::test]
    async fn a_lease_taken_over_and_left_before_reading_intent_is_not_given_back() {
        let world = world();
        let file = world.stored_opening().await;
        given_a_lease_its_holder_never_gave_back(&world, &file).await;
        world.intent.publish_log(&file.events[0].log).await.unwrap();

        let out_of_time = Deadline {
            stop_at: Some(std::time::Instant::now()),
        };
        let file = deliver_in_order(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            file,
            out_of_time,
        )
        .await;
        assert!(file.events[0].delivery.is_pending());
        assert!(
            world.store.lease(&file.id).is_some(),
            "kept: it ends by itself"
        );

        let later = World {
            clock: FixedClock(world.clock.0 + SEND_LEASE + jiff::SignedDuration::from_secs(1)),
            ..world
        };
        let file = later.deliver(file).await;
        assert!(file.events[0].delivery.is_delivered());
        assert_eq!(later.intent.accepted().len(), 1, "not sent twice");
        assert_eq!(later.intent.reads(), 1, "Intent was read first");
    }

    /// The same when the file cannot be read again under the lease taken over.
    #[tokio::test]
    async fn a_lease_taken_over_whose_file_cannot_be_read_again_is_not_given_back() {
        let world = world();
        let file = world.stored_opening().await;
        given_a_lease_its_holder_never_gave_back(&world, &file).await;
        world.store.set_loading_fails(true);
        let file = world.deliver(file).await;
        assert!(file.events[0].delivery.is_pending());
        assert!(world.intent.accepted().is_empty());
        assert!(
            world.store.lease(&file.id).is_some(),
            "kept: it ends by itself"
        );
    }

    #[tokio::test]
    async fn an_outcome_not_recorded_keeps_the_lease_so_the_next_sender_reads_intent() {
        let world = world();
        let file = world.stored_opening().await;
        world.store.set_recording_fails(true);
        let after_first = world.deliver(file).await;
        assert_eq!(world.intent.accepted().len(), 1);
        assert!(
            world.store.lease(&after_first.id).is_some(),
            "the lease is kept: it ends by itself"
        );
        // Later, the store is back; a re-send run finds the lease expired.
        world.store.set_recording_fails(false);
        let later = World {
            clock: FixedClock(world.clock.0 + SEND_LEASE + jiff::SignedDuration::from_secs(1)),
            ..world
        };
        let stored = later.store.file(&after_first.id).unwrap();
        assert!(stored.events[0].delivery.is_pending());
        let file = later.deliver(stored).await;
        assert!(file.events[0].delivery.is_delivered());
        assert_eq!(later.intent.accepted().len(), 1, "not sent twice");
        assert_eq!(later.intent.reads(), 1);
    }

    #[tokio::test]
    async fn a_conflict_for_an_event_intent_holds_is_delivered_not_failed() {
        let world = world();
        let file = world.stored_opening().await;
        world.intent.publish_log(&file.events[0].log).await.unwrap();
        world.intent.fail_next(DeliveryFailure::conflict(
            1,
            "Intent rejected the request with HTTP 409",
        ));
        let file = world.deliver(file).await;
        assert!(file.events[0].delivery.is_delivered());
        assert_eq!(
            world.published_types(),
            ["EventDelivered"],
            "no DeliveryFailed"
        );
    }

    /// A claim stored while Intent could not be reached was announced `pending`; the
    /// sender that delivers it later says so (`EventDelivered`, once: written to the outbox
    /// with the delivery's record, taken out once on the bus).
    #[tokio::test]
    async fn an_event_delivered_after_it_was_announced_pending_is_announced_once() {
        let world = world();
        let file = world.stored_opening().await;
        let file = world.deliver(file).await;
        assert!(file.events[0].delivery.is_delivered());
        assert_eq!(world.published_types(), ["EventDelivered"]);
        let detail = world.events.published()[0].detail_value();
        assert_eq!(detail["reference"], "INTER-0500");
        assert_eq!(detail["contractReference"], "contract1");
        assert_eq!(
            (detail["seq"].clone(), detail["event"].clone()),
            (1.into(), "acknowledged".into())
        );
        assert_eq!(detail["deliveredAt"], "2026-11-28T20:00:00Z");
        assert!(world.store.outbox_ids().is_empty());

        world.deliver(file).await;
        assert_eq!(
            world.events.published().len(),
            1,
            "delivered once, announced once"
        );
    }

    /// A closure read the file with its opening pending; before its closing write, another
    /// sender's attempt was refused for good (recorded failed). The closing write takes the
    /// lease, but the file cannot be read again under it: the closure does not send the
    /// opening from its stale copy (Intent, which refused it, does not hold it: read back,
    /// it would go again), nor the closing behind it; the refusal stays for an operator.
    #[tokio::test]
    async fn a_closure_that_cannot_read_its_file_again_does_not_resend_an_opening_refused_meanwhile()
     {
        let world = world();
        let now = world.clock.0;
        let id = given_open_file(
            &world.store,
            &opening_log("R-1"),
            now - minutes(60),
            pending_since(4, now - minutes(5), false),
        )
        .await;
        let read_by_the_closure = world.store.file(&id).unwrap();
        world
            .store
            .record_delivery(&id, 1, &refused(now), &[])
            .await
            .unwrap();
        world.store.set_loading_fails(true);

        let closed = crate::closure::close_loaded_intervention(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            crate::closure::ClosurePolicy::default(),
            crate::closure::ClosedBy::Partner(&crate::file::PartnerId("partner-a".into())),
            crate::in_memory::tests_support::closing_log("R-1", crate::lifecycle::Outcome::Done),
            Some(read_by_the_closure),
            Deadline::none(),
            &|| {},
        )
        .await
        .unwrap();

        assert!(
            world.intent.accepted().is_empty(),
            "nothing sent: {:?}",
            world.intent.accepted()
        );
        world.store.set_loading_fails(false);
        let stored = world.store.file(&id).unwrap();
        assert!(
            stored.events[0].delivery.is_failed(),
            "{:?}",
            stored.events[0].delivery
        );
        assert!(stored.events[1].delivery.is_pending());
        assert!(closed.file.events[1].delivery.is_pending());
        // The lease is given back: the re-send run finds the closing behind the refusal.
        assert_eq!(
            world
                .store
                .take_send_lease(&id, now, now + minutes(1))
                .await
                .unwrap(),
            crate::ports::LeaseGrant::Taken
        );
    }

    /// A closure whose write did not take the lease (a claim's request left it behind, run
    /// out since) delivers the file in order after taking the lease over: its own closing
    /// is announced once, by its `InterventionClosed` with the delivery, not also by an
    /// `EventDelivered`.
    #[tokio::test]
    async fn a_closure_that_takes_a_lease_left_behind_announces_its_closing_once() {
        let world = world();
        world.stored_opening_with_a_lease_left_behind().await;
        world.close_as_its_partner().await;
        assert_eq!(world.intent.accepted().len(), 2);
        assert_eq!(
            world.published_types(),
            ["EventDelivered", "InterventionClosed"]
        );
        assert!(world.store.outbox_ids().is_empty());
    }

    /// The closure's own announcement, written to the outbox with the closing as
    /// `pending`, is not taken by the bus when the closing has been delivered: the copy
    /// the relay publishes later says `delivered`, not the stale `pending`.
    #[tokio::test]
    async fn an_announcement_the_bus_did_not_take_is_kept_as_delivered_not_as_first_written() {
        let world = world();
        world.stored_opening_with_a_lease_left_behind().await;
        world.events.set_failing(true);
        world.close_as_its_partner().await;
        assert_eq!(world.intent.accepted().len(), 2, "both delivered");
        world.events.set_failing(false);

        crate::outbox::publish_outbox(&world.store, &world.events, jiff::Timestamp::MAX)
            .await
            .unwrap();

        let closed: Vec<serde_json::Value> = world
            .events
            .published()
            .iter()
            .filter(|event| event.detail_type() == "InterventionClosed")
            .map(|event| event.detail_value())
            .collect();
        assert_eq!(closed.len(), 1, "{closed:?}");
        assert_eq!(closed[0]["delivery"], "delivered");
        assert!(world.store.outbox_ids().is_empty());
    }

    /// A closure whose file's opening is still pending sends the opening first: the
    /// opening's late delivery is announced, the closing only by its own
    /// `InterventionClosed` (delivered), not twice.
    #[tokio::test]
    async fn a_closure_announces_the_pending_opening_it_delivered_first_but_not_its_own_closing() {
        let world = world();
        world.stored_opening().await;
        world.close_as_its_partner().await;
        assert_eq!(
            world.published_types(),
            ["EventDelivered", "InterventionClosed"]
        );
        assert_eq!(
            world.events.batch_sizes(),
            [2],
            "one PutEvents with the closing's outcome, not one more for the opening's"
        );
        assert!(world.store.outbox_ids().is_empty());
        assert_eq!(world.events.published()[0].detail_value()["seq"], 1);
        assert_eq!(
            world.events.published()[1].detail_value()["delivery"],
            "delivered"
        );
    }

    #[tokio::test]
    async fn a_conflict_for_an_event_intent_does_not_hold_fails_and_is_announced() {
        let world = world();
        let file = world.stored_opening().await;
        world.intent.fail_next(DeliveryFailure::conflict(
            1,
            "Intent rejected the request with HTTP 409",
        ));
        let file = world.deliver(file).await;
        assert!(file.events[0].delivery.is_failed());
        let published = world.events.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].detail_type(), "DeliveryFailed");
    }

    #[tokio::test]
    async fn retryable_failures_never_turn_into_failed() {
        let world = world();
        let mut file = world.stored_opening().await;
        for _ in 0..200 {
            world.intent.fail_next(DeliveryFailure::retryable(
                4,
                "Intent is unavailable: HTTP 503",
            ));
            file = world.deliver(file).await;
        }
        assert!(file.events[0].delivery.is_pending());
        assert_eq!(file.events[0].delivery.attempts(), 800);
        file = world.deliver(file).await;
        assert!(file.events[0].delivery.is_delivered());
        assert_eq!(world.intent.accepted().len(), 1);
    }
}
