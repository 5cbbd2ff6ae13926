//! The outbox: every domain event is written with the state change that causes it (same
//! store transaction), then put on the bus; what could not be put there stays in the
//! outbox and the re-send run publishes it. At least once: consumers de-duplicate on the
//! `eventId` every event carries.

use crate::domain_events::DomainEvent;
use crate::ports::{DomainEventError, Outbox, PublishDomainEvents, StoreError};
use jiff::Timestamp;

/// Puts events the store just wrote to its outbox on the bus, then clears them there.
/// A failure is logged: the events stay in the outbox for the re-send run.
pub async fn publish_announced<S, E>(store: &S, events: &E, announced: &[DomainEvent])
where
    S: Outbox,
    E: PublishDomainEvents,
{
    if announced.is_empty() {
        return;
    }
    let published = events.publish(announced).await;
    if let Err(error) = &published {
        tracing::error!(%error, "domain events not published now; the outbox keeps them for the re-send run");
    }
    // Out of the outbox once on the bus; a queue does it once it is (never on return).
    if !events.queues()
        && let Err(error) = clear_taken(store, announced, &published).await
    {
        tracing::warn!(%error, "domain events published but still in the outbox; they may be published again (same eventId)");
    }
}

/// Takes out of the outbox the events of `events` the bus took (`published`: all of them,
/// or all but those its error names); the number taken.
async fn clear_taken<S: Outbox>(
    store: &S,
    events: &[DomainEvent],
    published: &Result<(), DomainEventError>,
) -> Result<usize, StoreError> {
    let ids = DomainEventError::taken_of(published, events);
    if ids.is_empty() {
        return Ok(0);
    }
    store.clear_published(&ids).await?;
    Ok(ids.len())
}

/// Announces `announced`, events tied to no state change (a run's summary, which no
/// transaction wrote into the outbox), as every event is: stored in the outbox first (a
/// crash or a timeout during the publication loses nothing), then published, then taken
/// out of the outbox; what the bus does not take waits there for the re-send run. An
/// error: neither published nor kept.
pub async fn keep_and_publish<S, E>(
    store: &S,
    events: &E,
    announced: &[DomainEvent],
    now: Timestamp,
) -> Result<(), StoreError>
where
    S: Outbox,
    E: PublishDomainEvents,
{
    let kept = store.keep(announced, now).await;
    publish_kept(store, events, announced, kept).await
}

/// The second half of [`keep_and_publish`], for a caller with other work between the two
/// (the closer keeps its period's summary before flushing the run's events to a bus that
/// may hang): publishes `announced`, whose keeping in the outbox ended as `kept`, and
/// takes them out of the outbox once on the bus. An error: neither published nor kept.
pub async fn publish_kept<S, E>(
    store: &S,
    events: &E,
    announced: &[DomainEvent],
    kept: Result<(), StoreError>,
) -> Result<(), StoreError>
where
    S: Outbox,
    E: PublishDomainEvents,
{
    if let Err(error) = &kept {
        tracing::warn!(%error, "domain events not kept in the outbox; published without it");
    }
    let published = events.publish(announced).await;
    if kept.is_ok()
        && !events.queues()
        && let Err(error) = clear_taken(store, announced, &published).await
    {
        tracing::warn!(%error, "domain events published but still in the outbox; they may be published again (same eventId)");
    }
    match published {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::warn!(%error, "domain events the bus did not take; the outbox keeps them for the re-send run");
            kept
        }
    }
}

/// What a pass over the outbox did.
#[derive(Debug, Default)]
pub struct OutboxRun {
    /// Events put on the bus (or in its queue, which sends them and clears them).
    pub published: usize,
    /// The first clearing that failed: those events are on the bus but still in the
    /// outbox, and go out again (same `eventId`) on the next run. The batches after it were
    /// still published and cleared.
    pub clearing_error: Option<StoreError>,
    /// The first batch the bus refused some of, and how many events it refused in all:
    /// they stay in the outbox for the next run (the others of their batches leave it).
    pub publishing_error: Option<(DomainEventError, usize)>,
}

/// Publishes what the outbox still holds from before `before` (events whose request
/// died or whose bus call failed), ten at a time; a batch the bus refuses, or whose
/// clearing fails, does not hold back the ones after it.
pub async fn publish_outbox<S, E>(
    store: &S,
    events: &E,
    before: Timestamp,
) -> Result<OutboxRun, StoreError>
where
    S: Outbox,
    E: PublishDomainEvents,
{
    let left = store.unpublished_events(before).await?;
    let mut run = OutboxRun::default();
    for batch in left.chunks(10) {
        let published = events.publish(batch).await;
        let not_taken = published.as_ref().err().map_or(0, DomainEventError::failed);
        run.published += batch.len() - not_taken.min(batch.len());
        // Only queued is not on the bus: the queue clears the outbox once it is.
        if !events.queues()
            && let Err(error) = clear_taken(store, batch, &published).await
        {
            tracing::warn!(%error, "outbox events published but not cleared; the next run publishes them again (same eventId)");
            run.clearing_error.get_or_insert(error);
        }
        if let Err(error) = published {
            tracing::error!(%error, "outbox events could not be published; the next run tries again");
            let (_, refused) = run.publishing_error.get_or_insert((error, 0));
            *refused += not_taken;
        }
    }
    if run.published > 0 {
        tracing::warn!(
            published = run.published,
            "domain events left in the outbox were published"
        );
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_memory::{FixedClock, InMemoryStore, RecordingEvents, RecordingIntent};
    use crate::intake::open_intervention;
    use crate::intent_examples::SEED_OPENING;
    use crate::validation::parse_intervention_log;

    #[tokio::test]
    async fn an_event_the_bus_did_not_take_is_published_later_with_the_same_id() {
        let store = InMemoryStore::default();
        let intent = RecordingIntent::default();
        let events = RecordingEvents::default();
        let clock = FixedClock("2026-11-28T20:00:00Z".parse().unwrap());
        events.set_failing(true);
        let log = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        open_intervention(
            &store,
            &intent,
            &events,
            &clock,
            crate::closure::ClosurePolicy::default(),
            crate::PartnerId("p".into()),
            log,
        )
        .await
        .unwrap();
        assert!(events.published().is_empty());
        let kept = store.outbox_ids();
        assert_eq!(kept.len(), 1, "written with the opening, kept");

        events.set_failing(false);
        let later = clock.0 + jiff::SignedDuration::from_mins(5);
        assert_eq!(
            publish_outbox(&store, &events, later)
                .await
                .unwrap()
                .published,
            1
        );
        let published = events.published();
        assert_eq!(published[0].detail_type(), "InterventionOpened");
        assert_eq!(published[0].event_id(), kept[0]);
        let detail: serde_json::Value = serde_json::from_str(&published[0].detail_json()).unwrap();
        assert_eq!(detail["eventId"], kept[0].as_str());
        assert_eq!(detail["reference"], "INTER-0500");
        assert!(store.outbox_ids().is_empty(), "cleared once on the bus");
        assert_eq!(
            publish_outbox(&store, &events, later)
                .await
                .unwrap()
                .published,
            0
        );
    }

    /// The seed's claim, stored in `store` at 20:00, its announcement put on `bus`.
    async fn claimed(store: &InMemoryStore, bus: &RecordingEvents) {
        let log = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        open_intervention(
            store,
            &RecordingIntent::default(),
            bus,
            &FixedClock("2026-11-28T20:00:00Z".parse().unwrap()),
            crate::closure::ClosurePolicy::default(),
            crate::PartnerId("p".into()),
            log,
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_published_event_leaves_the_outbox_at_once() {
        let store = InMemoryStore::default();
        let events = RecordingEvents::default();
        claimed(&store, &events).await;
        assert_eq!(events.published().len(), 1);
        assert!(store.outbox_ids().is_empty());
    }

    /// The closer's relay publishes through its queue (`BatchedEvents`, ten to a call):
    /// an entry only queued is not on the bus, so it stays in the outbox until the queue's
    /// call succeeds (a bus that refuses the flush, or a run that dies first, loses nothing).
    #[tokio::test]
    async fn the_relay_through_a_queue_clears_entries_only_once_they_are_on_the_bus() {
        let store = InMemoryStore::default();
        let bus = RecordingEvents::default();
        bus.set_failing(true);
        claimed(&store, &bus).await;
        assert_eq!(store.outbox_ids().len(), 1, "left by the request");
        let later: Timestamp = "2026-11-28T21:00:00Z".parse().unwrap();

        let queue = crate::closer_run::BatchedEvents::new(&bus, &store);
        publish_outbox(&store, &queue, later).await.unwrap();
        assert!(queue.flush().await.is_err(), "the bus is still down");
        assert_eq!(store.outbox_ids().len(), 1, "still waiting for the bus");

        bus.set_failing(false);
        publish_outbox(&store, &queue, later).await.unwrap();
        queue.flush().await.unwrap();
        assert!(store.outbox_ids().is_empty());
        assert_eq!(bus.published().len(), 1);
    }

    /// An event the run queued (its own typed copy, not sent yet: fewer than ten queued)
    /// is also still in the outbox, and the relay reads it back there once it is older
    /// than the settle time: it goes to the bus once, as the run queued it, and its
    /// clearing names it once (DynamoDB refuses a `BatchWriteItem` naming a key twice).
    #[tokio::test]
    async fn an_event_the_run_queued_and_the_relay_reads_back_goes_out_once() {
        let store = InMemoryStore::default();
        let bus = RecordingEvents::default();
        bus.set_failing(true);
        claimed(&store, &bus).await;
        bus.set_failing(false);
        let later: Timestamp = "2026-11-28T21:00:00Z".parse().unwrap();
        let queue = crate::closer_run::BatchedEvents::new(&bus, &store);
        let left = store.unpublished_events(later).await.unwrap();
        assert_eq!(left.len(), 1);
        queue.publish(&left).await.unwrap();

        publish_outbox(&store, &queue, later).await.unwrap();
        queue.flush().await.unwrap();

        assert_eq!(bus.published().len(), 1, "once on the bus");
        assert!(store.outbox_ids().is_empty());
        assert!(queue.take_clearing_error().is_none());
    }

    /// The queue's clearings are the run's to report: an entry published but left in the
    /// outbox goes out again at every run until its clearing works.
    #[tokio::test]
    async fn a_clearing_the_queue_could_not_make_is_kept_for_the_run_to_report() {
        let inner = InMemoryStore::default();
        let bus = RecordingEvents::default();
        bus.set_failing(true);
        claimed(&inner, &bus).await;
        bus.set_failing(false);
        let store = FirstClearingFails {
            inner,
            failed: std::sync::atomic::AtomicBool::new(false),
        };
        let later: Timestamp = "2026-11-28T21:00:00Z".parse().unwrap();
        let queue = crate::closer_run::BatchedEvents::new(&bus, &store);

        publish_outbox(&store, &queue, later).await.unwrap();
        queue.flush().await.unwrap();

        assert_eq!(bus.published().len(), 1);
        assert!(queue.take_clearing_error().is_some());
        assert!(queue.take_clearing_error().is_none(), "taken once");
    }

    /// An outbox whose first clearing fails (DynamoDB left the entries unprocessed).
    struct FirstClearingFails {
        inner: InMemoryStore,
        failed: std::sync::atomic::AtomicBool,
    }

    impl Outbox for FirstClearingFails {
        async fn unpublished_events(
            &self,
            before: Timestamp,
        ) -> Result<Vec<DomainEvent>, StoreError> {
            self.inner.unpublished_events(before).await
        }

        async fn clear_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
            if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Unavailable("entries left unprocessed".into()));
            }
            self.inner.clear_published(event_ids).await
        }

        async fn keep(&self, events: &[DomainEvent], now: Timestamp) -> Result<(), StoreError> {
            self.inner.keep(events, now).await
        }
    }

    #[tokio::test]
    async fn a_batch_that_cannot_be_cleared_does_not_hold_back_the_batches_after_it() {
        let inner = InMemoryStore::default();
        let events = RecordingEvents::default();
        let clock = FixedClock("2026-11-28T20:00:00Z".parse().unwrap());
        events.set_failing(true);
        for n in 0..25 {
            let json = SEED_OPENING.replace("INTER-0500", &format!("INTER-{n:04}"));
            open_intervention(
                &inner,
                &RecordingIntent::default(),
                &events,
                &clock,
                crate::closure::ClosurePolicy::default(),
                crate::PartnerId("p".into()),
                parse_intervention_log(json.as_bytes()).unwrap(),
            )
            .await
            .unwrap();
        }
        events.set_failing(false);
        let store = FirstClearingFails {
            inner,
            failed: Default::default(),
        };
        let later = clock.0 + jiff::SignedDuration::from_mins(5);
        let run = publish_outbox(&store, &events, later).await.unwrap();
        assert_eq!(events.published().len(), 25, "every batch went out");
        assert_eq!(run.published, 25);
        assert!(
            run.clearing_error
                .as_ref()
                .is_some_and(|error| error.to_string().contains("unprocessed")),
            "{:?}",
            run.clearing_error
        );
        assert_eq!(
            store.inner.outbox_ids().len(),
            10,
            "only the batch whose clearing failed stays, to be published again"
        );
    }

    /// Ten events kept in the outbox at `at`, ids `e0` … `e9`.
    async fn ten_kept(store: &InMemoryStore, at: Timestamp) -> Vec<DomainEvent> {
        let events: Vec<DomainEvent> = (0..10)
            .map(|n| {
                DomainEvent::Stored(crate::domain_events::StoredEvent {
                    id: format!("e{n}"),
                    detail_type: "InterventionOpened".into(),
                    detail: serde_json::json!({"eventId": format!("e{n}")}),
                })
            })
            .collect();
        store.keep(&events, at).await.unwrap();
        events
    }

    #[tokio::test]
    async fn an_event_the_bus_refuses_for_good_stays_alone_in_the_outbox_and_is_named() {
        let store = InMemoryStore::default();
        let events = RecordingEvents::default();
        let at: Timestamp = "2026-11-28T20:00:00Z".parse().unwrap();
        ten_kept(&store, at).await;
        events.refuse("e3");
        let later = at + jiff::SignedDuration::from_mins(5);

        let run = publish_outbox(&store, &events, later).await.unwrap();
        assert_eq!(run.published, 9);
        assert_eq!(
            store.outbox_ids(),
            ["e3"],
            "its batch-mates left the outbox"
        );
        let (error, refused) = run.publishing_error.expect("the refusal is the run's");
        assert_eq!(
            (error.not_taken.clone(), refused),
            (vec!["e3".to_string()], 1)
        );

        // The next run offers only the refused event again: the others went out once.
        let run = publish_outbox(&store, &events, later).await.unwrap();
        assert_eq!(run.published, 0);
        assert_eq!(events.published().len(), 9);
        assert!(run.publishing_error.is_some(), "still refused, still said");
    }

    #[tokio::test]
    async fn a_requests_events_the_bus_took_leave_the_outbox_beside_one_it_refused() {
        let store = InMemoryStore::default();
        let events = RecordingEvents::default();
        let at: Timestamp = "2026-11-28T20:00:00Z".parse().unwrap();
        let announced = ten_kept(&store, at).await;
        events.refuse("e7");
        publish_announced(&store, &events, &announced).await;
        assert_eq!(store.outbox_ids(), ["e7"]);

        let kept = ten_kept(&store, at).await;
        publish_kept(&store, &events, &kept, Ok(())).await.unwrap();
        assert_eq!(store.outbox_ids(), ["e7"]);
    }

    #[tokio::test]
    async fn the_queue_takes_out_of_the_outbox_what_the_bus_took_beside_a_refused_event() {
        let store = InMemoryStore::default();
        let bus = RecordingEvents::default();
        let at: Timestamp = "2026-11-28T20:00:00Z".parse().unwrap();
        ten_kept(&store, at).await;
        bus.refuse("e5");
        let queue = crate::closer_run::BatchedEvents::new(&bus, &store);
        let later = at + jiff::SignedDuration::from_mins(5);
        let run = publish_outbox(&store, &queue, later).await.unwrap();
        queue.flush().await.unwrap();
        assert_eq!(run.published, 9);
        assert_eq!(store.outbox_ids(), ["e5"]);
        assert!(queue.take_clearing_error().is_none());
    }
}
