//! In-memory adapters for unit tests of the use cases (compiled for the domain's own tests
//! and, with the `in-memory` feature, for other crates' tests; never in a release binary).
//! The real adapters are tested against DynamoDB Local, moto and the Intent simulator.

use crate::domain_events::DomainEvent;
use crate::file::{Delivery, InterventionFile, NewFile, RecordedEvent};
use crate::lifecycle::{FileState, Outcome};
use crate::model::{FileId, InterventionLog};
use crate::ports::{
    Clock, CloseFile, CloseFileResult, DeliveryFailure, DomainEventError, LeaseGrant, LoadFile,
    OpenFile, OpenFileResult, PublishDomainEvents, PublishToIntent, RecordDelivery, SendLease,
    StoreError,
};
use jiff::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A file store in a map.
#[derive(Default)]
pub struct InMemoryStore {
    files: Mutex<HashMap<FileId, InterventionFile>>,
    leases: Mutex<HashMap<FileId, Timestamp>>,
    unavailable: Mutex<bool>,
    recording_fails: Mutex<bool>,
    /// The outbox: (written at, event), in write order.
    outbox: Mutex<Vec<(Timestamp, DomainEvent)>>,
}

impl InMemoryStore {
    pub fn set_unavailable(&self, unavailable: bool) {
        *self.unavailable.lock().unwrap() = unavailable;
    }

    /// Recording a delivery state fails (the store is lost after Intent answered).
    pub fn set_recording_fails(&self, fails: bool) {
        *self.recording_fails.lock().unwrap() = fails;
    }

    /// The send lease held on a file, if any (it ends at the returned time).
    pub fn lease(&self, id: &FileId) -> Option<Timestamp> {
        self.leases.lock().unwrap().get(id).copied()
    }

    pub fn file(&self, id: &FileId) -> Option<InterventionFile> {
        self.files.lock().unwrap().get(id).cloned()
    }

    /// When a closed file's data expires.
    pub fn expiry(&self, id: &FileId) -> Option<Timestamp> {
        self.file(id).and_then(|file| file.expires_at)
    }

    pub fn len(&self) -> usize {
        self.files.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_available(&self) -> Result<(), StoreError> {
        if *self.unavailable.lock().unwrap() {
            Err(StoreError::Unavailable(
                "in-memory store switched off".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl InMemoryStore {
    fn write_outbox(&self, announce: &[DomainEvent], at: Timestamp) {
        self.outbox
            .lock()
            .unwrap()
            .extend(announce.iter().map(|event| (at, event.clone())));
    }

    /// The ids of the events still in the outbox.
    pub fn outbox_ids(&self) -> Vec<String> {
        self.outbox
            .lock()
            .unwrap()
            .iter()
            .map(|(_, event)| event.event_id())
            .collect()
    }
}

impl crate::ports::Outbox for InMemoryStore {
    async fn unpublished_events(&self, before: Timestamp) -> Result<Vec<DomainEvent>, StoreError> {
        self.check_available()?;
        Ok(self
            .outbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at < before)
            .map(|(_, event)| DomainEvent::Stored(event.stored()))
            .collect())
    }

    async fn clear_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        self.check_available()?;
        self.outbox
            .lock()
            .unwrap()
            .retain(|(_, event)| !event_ids.contains(&event.event_id()));
        Ok(())
    }
}

impl OpenFile for InMemoryStore {
    async fn open_file(
        &self,
        file: &NewFile,
        announce: &[DomainEvent],
    ) -> Result<OpenFileResult, StoreError> {
        self.check_available()?;
        let mut files = self.files.lock().unwrap();
        let id = file.id();
        if let Some(existing) = files.get(&id) {
            return Ok(OpenFileResult::AlreadyExists(existing.clone()));
        }
        self.write_outbox(announce, file.opening.recorded_at);
        files.insert(
            id.clone(),
            InterventionFile {
                id,
                state: FileState::Open,
                owner: file.owner.clone(),
                events: vec![file.opening.clone()],
                documents: Vec::new(),
                expires_at: None,
            },
        );
        Ok(OpenFileResult::Created)
    }
}

impl CloseFile for InMemoryStore {
    async fn close_file(
        &self,
        id: &FileId,
        expected_version: u32,
        closing: &RecordedEvent,
        outcome: Outcome,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<CloseFileResult, StoreError> {
        self.check_available()?;
        let mut files = self.files.lock().unwrap();
        let file = files
            .get_mut(id)
            .ok_or_else(|| StoreError::Corrupt(format!("no file {id}")))?;
        let canceled_too_late = outcome == Outcome::Canceled && !file.documents.is_empty();
        if file.state != FileState::Open || file.version() != expected_version || canceled_too_late
        {
            return Ok(CloseFileResult::StateChanged(file.clone()));
        }
        file.state = FileState::Closed(outcome);
        file.events.push(closing.clone());
        file.expires_at = Some(expires_at);
        self.write_outbox(announce, closing.recorded_at);
        Ok(CloseFileResult::Closed)
    }
}

impl SendLease for InMemoryStore {
    async fn take_send_lease(
        &self,
        id: &FileId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError> {
        self.check_available()?;
        let mut leases = self.leases.lock().unwrap();
        let grant = match leases.get(id) {
            Some(held) if *held >= now => return Ok(LeaseGrant::HeldElsewhere),
            Some(_) => LeaseGrant::TakenOver,
            None => LeaseGrant::Taken,
        };
        leases.insert(id.clone(), until);
        Ok(grant)
    }

    async fn release_send_lease(&self, id: &FileId, until: Timestamp) -> Result<(), StoreError> {
        self.check_available()?;
        let mut leases = self.leases.lock().unwrap();
        if leases.get(id) == Some(&until) {
            leases.remove(id);
        }
        Ok(())
    }
}

impl LoadFile for InMemoryStore {
    async fn load_file(&self, id: &FileId) -> Result<Option<InterventionFile>, StoreError> {
        self.check_available()?;
        Ok(self.files.lock().unwrap().get(id).cloned())
    }
}

impl RecordDelivery for InMemoryStore {
    async fn record_delivery(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        self.check_available()?;
        if *self.recording_fails.lock().unwrap() {
            return Err(StoreError::Unavailable("recording switched off".into()));
        }
        let mut files = self.files.lock().unwrap();
        let event = files
            .get_mut(id)
            .and_then(|file| file.events.iter_mut().find(|event| event.seq == seq))
            .ok_or_else(|| StoreError::Corrupt(format!("no event {seq} on {id}")))?;
        event.delivery = delivery.clone();
        self.write_outbox(announce, Timestamp::now());
        Ok(())
    }
}

/// What the scripted Intent does with the next publication.
#[derive(Debug, Clone)]
enum Scripted {
    /// Refuses it (nothing applied).
    Fail(DeliveryFailure),
    /// Applies it, then the answer is lost: the caller gets this failure.
    ApplyThenFail(DeliveryFailure),
}

/// An Intent that records what it accepted (its log, duplicates included: it does not
/// deduplicate, like Intent as far as its documentation says) and answers from a script.
#[derive(Default)]
pub struct RecordingIntent {
    accepted: Mutex<Vec<InterventionLog>>,
    script: Mutex<VecDeque<Scripted>>,
    reads: Mutex<usize>,
}

impl RecordingIntent {
    /// The next publications fail like this, in order.
    pub fn fail_next(&self, failure: DeliveryFailure) {
        self.script
            .lock()
            .unwrap()
            .push_back(Scripted::Fail(failure));
    }

    /// The next publication is applied, but its answer is lost (a timeout).
    pub fn lose_next_answer(&self) {
        self.script
            .lock()
            .unwrap()
            .push_back(Scripted::ApplyThenFail(DeliveryFailure::outcome_unknown(
                1,
                "Intent could not be reached: timed out",
            )));
    }

    pub fn accepted(&self) -> Vec<InterventionLog> {
        self.accepted.lock().unwrap().clone()
    }

    /// How often Intent's log was read.
    pub fn reads(&self) -> usize {
        *self.reads.lock().unwrap()
    }
}

/// Same intervention, same status, event and instant.
pub fn same_log_event(a: &InterventionLog, b: &InterventionLog) -> bool {
    a.file_id() == b.file_id()
        && a.status == b.status
        && a.event == b.event
        && a.event_date.timestamp() == b.event_date.timestamp()
}

impl PublishToIntent for RecordingIntent {
    async fn publish_log(&self, log: &InterventionLog) -> Result<u32, DeliveryFailure> {
        let next = self.script.lock().unwrap().pop_front();
        match next {
            Some(Scripted::Fail(failure)) => Err(failure),
            Some(Scripted::ApplyThenFail(failure)) => {
                self.accepted.lock().unwrap().push(log.clone());
                Err(failure)
            }
            None => {
                self.accepted.lock().unwrap().push(log.clone());
                Ok(1)
            }
        }
    }

    async fn log_is_on_intent(&self, log: &InterventionLog) -> Result<bool, DeliveryFailure> {
        *self.reads.lock().unwrap() += 1;
        Ok(self
            .accepted
            .lock()
            .unwrap()
            .iter()
            .any(|held| same_log_event(held, log)))
    }
}

/// Collects domain events.
#[derive(Default)]
pub struct RecordingEvents {
    published: Mutex<Vec<DomainEvent>>,
    failing: Mutex<bool>,
}

impl RecordingEvents {
    /// The bus refuses every event (or takes them again).
    pub fn set_failing(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }

    pub fn published(&self) -> Vec<DomainEvent> {
        self.published.lock().unwrap().clone()
    }
}

impl PublishDomainEvents for RecordingEvents {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), DomainEventError> {
        if *self.failing.lock().unwrap() {
            return Err(DomainEventError {
                failed: events.len(),
                detail: "the bus is switched off".into(),
            });
        }
        self.published.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// A clock that stands still.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[cfg(test)]
mod tests {
    //! The intake use case, given / when / then, on the in-memory adapters.
    use super::*;
    use crate::file::PartnerId;
    use crate::intake::{OpenError, OpenOutcome, open_intervention};
    use crate::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
    use crate::validation::parse_intervention_log;

    struct World {
        store: InMemoryStore,
        intent: RecordingIntent,
        events: RecordingEvents,
        clock: FixedClock,
    }

    fn world() -> World {
        World {
            store: InMemoryStore::default(),
            intent: RecordingIntent::default(),
            events: RecordingEvents::default(),
            clock: FixedClock("2026-11-28T20:00:00Z".parse().unwrap()),
        }
    }

    fn partner() -> PartnerId {
        PartnerId("partner-a".into())
    }

    impl World {
        async fn open(&self, json: &str) -> Result<crate::intake::Opened, OpenError> {
            let log = parse_intervention_log(json.as_bytes()).unwrap();
            open_intervention(
                &self.store,
                &self.intent,
                &self.events,
                &self.clock,
                partner(),
                log,
            )
            .await
        }
    }

    #[tokio::test]
    async fn a_new_claim_is_stored_delivered_and_announced() {
        let world = world();
        let opened = world.open(SEED_OPENING).await.unwrap();
        assert_eq!(opened.outcome, OpenOutcome::Created);
        assert_eq!(opened.file.state, FileState::Open);
        assert_eq!(world.intent.accepted().len(), 1);
        let stored = world.store.file(&opened.file.id).unwrap();
        assert_eq!(stored.events[0].delivery.label(), "delivered");
        let published = world.events.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].detail_type(), "InterventionOpened");
        let detail = published[0].detail_json();
        assert!(detail.contains("\"delivery\":\"delivered\""), "{detail}");
        for secret in ["DUPONT", "LOGEMENT_002", "16°C"] {
            assert!(!detail.contains(secret), "{detail}");
        }
    }

    #[tokio::test]
    async fn intent_down_leaves_the_claim_stored_and_pending() {
        let world = world();
        world
            .intent
            .fail_next(DeliveryFailure::retryable(4, "Intent answered 503"));
        let opened = world.open(SEED_OPENING).await.unwrap();
        let stored = world.store.file(&opened.file.id).unwrap();
        assert_eq!(
            stored.events[0].delivery,
            Delivery::Pending {
                attempts: 4,
                last_error: Some("Intent answered 503".into()),
                last_attempt_at: Some(world.clock.0),
                in_doubt: false,
            }
        );
        assert!(world.intent.accepted().is_empty());
    }

    #[tokio::test]
    async fn a_rejection_is_recorded_as_failed() {
        let world = world();
        world.intent.fail_next(DeliveryFailure::refused(
            1,
            "Intent answered 400 validation_error",
        ));
        let opened = world.open(SEED_OPENING).await.unwrap();
        assert_eq!(opened.file.events[0].delivery.label(), "failed");
    }

    #[tokio::test]
    async fn an_identical_replay_sends_nothing_new() {
        let world = world();
        world.open(SEED_OPENING).await.unwrap();
        let replay = world.open(SEED_OPENING).await.unwrap();
        assert_eq!(replay.outcome, OpenOutcome::Replayed);
        assert_eq!(world.intent.accepted().len(), 1);
        assert_eq!(world.events.published().len(), 1);
    }

    #[tokio::test]
    async fn the_same_reference_with_other_content_conflicts() {
        let world = world();
        world.open(SEED_OPENING).await.unwrap();
        let changed = SEED_OPENING.replace("\"criticalLevel\": 3", "\"criticalLevel\": 1");
        match world.open(&changed).await {
            Err(OpenError::Conflict { existing }) => assert_eq!(existing.state, FileState::Open),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closure_is_not_a_claim() {
        let world = world();
        assert!(matches!(
            world.open(SEED_CLOSURE_DONE).await,
            Err(OpenError::NotAnOpening { .. })
        ));
        assert!(world.store.is_empty());
    }

    mod closing {
        use super::*;
        use crate::closure::{
            CloseError, CloseOutcome, ClosedBy, ClosurePolicy, close_intervention,
        };
        use crate::intent_examples::SEED_CLOSURE_PARTIAL_REPAIR;

        impl World {
            async fn close(&self, json: &str) -> Result<crate::closure::ClosedFile, CloseError> {
                let log = parse_intervention_log(json.as_bytes()).unwrap();
                close_intervention(
                    &self.store,
                    &self.intent,
                    &self.events,
                    &self.clock,
                    ClosurePolicy::default(),
                    ClosedBy::Partner(&partner()),
                    log,
                )
                .await
            }
        }

        #[tokio::test]
        async fn an_open_file_closes_once_and_intent_gets_both_events_in_order() {
            let world = world();
            world.open(SEED_OPENING).await.unwrap();
            let closed = world.close(SEED_CLOSURE_DONE).await.unwrap();
            assert_eq!(closed.outcome, CloseOutcome::Closed);
            assert_eq!(closed.file.state, FileState::Closed(Outcome::Done));
            let sent: Vec<_> = world.intent.accepted().iter().map(|l| l.event).collect();
            assert_eq!(sent, [crate::Event::Acknowledged, crate::Event::Done]);
            let expiry = world.store.expiry(&closed.file.id).unwrap();
            assert_eq!(
                expiry.duration_since(world.clock.0),
                jiff::SignedDuration::from_hours(24 * 395)
            );
            let published = world.events.published();
            assert_eq!(published[1].detail_type(), "InterventionClosed");
            assert!(published[1].detail_json().contains("\"outcome\":\"done\""));
        }

        #[tokio::test]
        async fn a_replay_changes_nothing_and_another_closure_conflicts() {
            let world = world();
            world.open(SEED_OPENING).await.unwrap();
            world.close(SEED_CLOSURE_DONE).await.unwrap();
            let replay = world.close(SEED_CLOSURE_DONE).await.unwrap();
            assert_eq!(replay.outcome, CloseOutcome::Replayed);
            match world.close(SEED_CLOSURE_PARTIAL_REPAIR).await {
                Err(CloseError::Refused { error, current }) => {
                    assert!(error.to_string().contains("closed (done)"), "{error}");
                    assert_eq!(current.state, FileState::Closed(Outcome::Done));
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
            assert_eq!(world.intent.accepted().len(), 2);
        }

        #[tokio::test]
        async fn the_closure_waits_behind_a_pending_opening() {
            let world = world();
            world
                .intent
                .fail_next(DeliveryFailure::retryable(4, "Intent answered 503"));
            world.open(SEED_OPENING).await.unwrap();
            assert!(world.intent.accepted().is_empty());
            // Intent is back: the opening goes first, then the closure.
            let closed = world.close(SEED_CLOSURE_DONE).await.unwrap();
            let sent: Vec<_> = world.intent.accepted().iter().map(|l| l.event).collect();
            assert_eq!(sent, [crate::Event::Acknowledged, crate::Event::Done]);
            assert_eq!(closed.file.events[0].delivery.attempts(), 5);
        }

        #[tokio::test]
        async fn if_the_opening_still_fails_the_closure_is_not_even_tried() {
            let world = world();
            for _ in 0..2 {
                world
                    .intent
                    .fail_next(DeliveryFailure::retryable(4, "Intent answered 503"));
            }
            world.open(SEED_OPENING).await.unwrap();
            let closed = world.close(SEED_CLOSURE_DONE).await.unwrap();
            assert!(world.intent.accepted().is_empty());
            assert_eq!(closed.file.events[1].delivery.attempts(), 0);
            assert_eq!(closed.file.events[1].delivery.label(), "pending");
        }

        #[tokio::test]
        async fn a_closure_before_the_opening_is_refused() {
            let world = world();
            world.open(SEED_OPENING).await.unwrap();
            let early = SEED_CLOSURE_DONE.replace("2020-03-06T15:35:00", "2020-03-06T09:00:00");
            assert!(matches!(
                world.close(&early).await,
                Err(CloseError::BeforeOpening { .. })
            ));
        }

        #[tokio::test]
        async fn unknown_files_and_other_partners_files_are_not_found() {
            let world = world();
            assert!(matches!(
                world.close(SEED_CLOSURE_DONE).await,
                Err(CloseError::NotFound(_))
            ));
            world.open(SEED_OPENING).await.unwrap();
            let log = parse_intervention_log(SEED_CLOSURE_DONE.as_bytes()).unwrap();
            let stranger = PartnerId("partner-z".into());
            let result = close_intervention(
                &world.store,
                &world.intent,
                &world.events,
                &world.clock,
                ClosurePolicy::default(),
                ClosedBy::Partner(&stranger),
                log,
            )
            .await;
            assert!(matches!(result, Err(CloseError::NotFound(_))));
        }
    }

    #[tokio::test]
    async fn store_down_means_nothing_reaches_intent() {
        let world = world();
        world.store.set_unavailable(true);
        assert!(matches!(
            world.open(SEED_OPENING).await,
            Err(OpenError::Store(_))
        ));
        assert!(world.intent.accepted().is_empty());
    }
}
