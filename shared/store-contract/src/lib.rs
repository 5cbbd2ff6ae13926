//! The store contract: what the domain expects of any file store, as one suite of checks
//! run against every adapter (DynamoDB against DynamoDB Local, the embedded store of the
//! local run on a temporary file). Each check uses fresh references, so one store
//! instance can serve the whole suite.

use jiff::{SignedDuration, Timestamp};
use oncall_domain::documents::{
    DocumentRecord, ObjectRef, ObjectVersion, RejectionReason, UploadGrant, upload_key,
};
use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use oncall_domain::lifecycle::{ClosingExpiry, FileState, Outcome};
use oncall_domain::ports::{
    ClaimedObject, CloseFile, CloseFileResult, DocumentClaim, DocumentLedger, DocumentWait,
    FinishDelivery, GrantRecorded, LeaseGrant, ListOpenFiles, ListPendingDocuments,
    ListPendingEvents, LoadFiles, MarkQuitusReceived, OpenFile, OpenFileResult, Outbox,
    PeriodReconciliations, QuitusMark, ReadBacklog, RecordDelivery, RecordLostEventRefused,
    RequeueFailedEvent, SendLease, UnreadClosing, UnreadClosingResult, UploadGrants,
};
use oncall_domain::validation::parse_intervention_log;
use oncall_domain::{Delivery, DomainEvent, FileId, NewFile, PartnerId, RecordedEvent};

/// Everything a complete store implements.
pub trait FullStore:
    OpenFile
    + LoadFiles
    + RecordDelivery
    + CloseFile
    + DocumentLedger
    + ListOpenFiles
    + ListPendingEvents
    + ListPendingDocuments
    + ReadBacklog
    + SendLease
    + Outbox
    + UploadGrants
    + MarkQuitusReceived
    + FinishDelivery
    + RequeueFailedEvent
    + RecordLostEventRefused
    + PeriodReconciliations
{
}

impl<T> FullStore for T where
    T: OpenFile
        + LoadFiles
        + RecordDelivery
        + CloseFile
        + DocumentLedger
        + ListOpenFiles
        + ListPendingEvents
        + ListPendingDocuments
        + ReadBacklog
        + SendLease
        + Outbox
        + UploadGrants
        + MarkQuitusReceived
        + FinishDelivery
        + RequeueFailedEvent
        + RecordLostEventRefused
        + PeriodReconciliations
{
}

fn now() -> Timestamp {
    "2026-11-28T19:00:00Z".parse().unwrap()
}

/// A closed file's expiry that has not passed yet (a store may leave out what has).
fn kept_until() -> Timestamp {
    // In seconds, as DynamoDB's `expiresAt` keeps it.
    Timestamp::from_second(Timestamp::now().as_second()).unwrap()
        + SignedDuration::from_hours(24 * 395)
}

fn reference() -> String {
    format!("C-{}", uuid::Uuid::new_v4().simple())
}

fn pending() -> Delivery {
    Delivery::new_pending()
}

/// A new file for the seed's claim under a fresh reference (contract `contract1`).
pub fn new_file(reference: &str) -> NewFile {
    let json = SEED_OPENING.replace("INTER-0500", reference);
    let log = parse_intervention_log(json.as_bytes()).unwrap();
    NewFile {
        owner: PartnerId("partner-a".into()),
        opening: RecordedEvent::new(1, log, now(), pending()),
        expires_at: None,
    }
}

fn closing(reference: &str, seq: u32) -> RecordedEvent {
    let json = SEED_CLOSURE_DONE.replace("INTER-0500", reference);
    let log = parse_intervention_log(json.as_bytes()).unwrap();
    RecordedEvent::new(seq, log, now(), pending())
}

/// Closes file `id` from version `expected` with `closing`, as `outcome`, expiring at
/// `expires_at` (no earlier expiry), announcing nothing.
async fn close<S: FullStore>(
    store: &S,
    id: &FileId,
    expected: u32,
    closing: &RecordedEvent,
    outcome: Outcome,
    expires_at: Timestamp,
) -> CloseFileResult {
    store
        .close_file(
            id,
            expected,
            closing,
            outcome,
            ClosingExpiry::new(expires_at, None),
            &[],
        )
        .await
        .unwrap()
}

/// Runs every check of the contract; panics with the failing check's message.
pub async fn check_store<S: FullStore>(store: &S) {
    opening_is_atomic_and_once(store).await;
    delivery_states_round_trip_and_delivered_is_final(store).await;
    only_a_failed_event_is_put_back_to_pending(store).await;
    a_delivered_event_intent_lost_and_refused_is_recorded_failed(store).await;
    the_last_period_reconciled_is_noted(store).await;
    closing_is_conditional_on_the_version(store).await;
    a_file_whose_data_has_expired_is_gone(store).await;
    open_and_pending_listings(store).await;
    documents_ledger_claims_once(store).await;
    a_claim_taken_over_cannot_write_over_the_claim_that_took_it(store).await;
    one_sender_at_a_time(store).await;
    a_stale_sender_does_not_write_over_the_sender_that_took_its_lease_over(store).await;
    events_wait_in_the_outbox_until_published(store).await;
    upload_grants_round_trip(store).await;
    many_files_read_at_once_are_read_as_each_alone(store).await;
    concurrent_writes_each_get_their_own_answer(store).await;
    a_quitus_and_a_cancellation_exclude_each_other(store).await;
    a_closure_written_unread_is_the_closing_it_assumes_or_nothing(store).await;
}

/// The closing of a cancellation at reception of `reference`, as event `seq`.
fn canceling(reference: &str, seq: u32) -> RecordedEvent {
    let mut event = closing(reference, seq);
    event.log.event = Outcome::Canceled.event();
    event.log.status = event.log.event.status();
    RecordedEvent::new(seq, event.log, now(), pending())
}

/// A file marked for a quitus can no longer be canceled (it can be closed otherwise); a
/// canceled file cannot be marked; the mark is kept, and marking twice is marking.
async fn a_quitus_and_a_cancellation_exclude_each_other<S: FullStore>(store: &S) {
    let expiry = ClosingExpiry::new(kept_until(), None);
    let cancel = |reference: String| async move {
        let id = FileId::new(&reference, "contract1");
        let event = canceling(&reference, 2);
        store
            .close_file(&id, 1, &event, Outcome::Canceled, expiry, &[])
            .await
            .unwrap()
    };

    let marked = reference();
    store.open_file(&new_file(&marked), &[]).await.unwrap();
    let id = FileId::new(&marked, "contract1");
    assert!(!store.load_file(&id).await.unwrap().unwrap().quitus_received);
    assert_eq!(
        store.mark_quitus_received(&id).await,
        Ok(QuitusMark::Marked)
    );
    assert_eq!(
        store.mark_quitus_received(&id).await,
        Ok(QuitusMark::Marked)
    );
    let refused = cancel(marked.clone()).await;
    assert!(
        matches!(&refused, CloseFileResult::StateChanged(file) if file.quitus_received && file.state == FileState::Open),
        "{refused:?}"
    );
    let stored = store.load_file(&id).await.unwrap().unwrap();
    assert!(stored.quitus_received);
    assert_eq!(stored.state, FileState::Open);
    let done = store
        .close_file(&id, 1, &closing(&marked, 2), Outcome::Done, expiry, &[])
        .await
        .unwrap();
    assert_eq!(done, CloseFileResult::Closed);

    let canceled = reference();
    store.open_file(&new_file(&canceled), &[]).await.unwrap();
    assert_eq!(cancel(canceled.clone()).await, CloseFileResult::Closed);
    let id = FileId::new(&canceled, "contract1");
    assert_eq!(
        store.mark_quitus_received(&id).await,
        Ok(QuitusMark::FileCanceled)
    );
    assert!(!store.load_file(&id).await.unwrap().unwrap().quitus_received);

    let missing = FileId::new(&reference(), "contract1");
    assert_eq!(
        store.mark_quitus_received(&missing).await,
        Ok(QuitusMark::NoFile)
    );
    assert_eq!(store.load_file(&missing).await.unwrap(), None);
}

/// `load_files` answers, in order, what `load_file` answers for each: a file with its
/// opening only, a closed one, one that does not exist.
async fn many_files_read_at_once_are_read_as_each_alone<S: FullStore>(store: &S) {
    let (open, closed) = given_an_open_and_a_closed_file(store, kept_until()).await;
    let missing = FileId::new(&reference(), "contract1");
    let ids = [closed.id(), missing.clone(), open.id()];
    let together = store.load_files(&ids).await;
    let mut alone = Vec::new();
    for id in &ids {
        alone.push(store.load_file(id).await);
    }
    assert_eq!(together, alone);
    assert_eq!(together[1], Ok(None));
    let file = |n: usize| together[n].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(file(0).events.len(), 2);
    assert_eq!(file(2).state, FileState::Open);
}

/// Writes made at the same moment (as the on-call closer makes thousands) each get their
/// own answer: of two openings of one file exactly one creates it, a closing at a stale
/// version changes nothing, and the writes beside them all land.
async fn concurrent_writes_each_get_their_own_answer<S: FullStore>(store: &S) {
    let references: Vec<String> = (0..12).map(|_| reference()).collect();
    let files: Vec<NewFile> = references.iter().map(|r| new_file(r)).collect();
    let openings = futures_util::future::join_all(
        files
            .iter()
            .chain(files.iter())
            .map(|file| store.open_file(file, &[])),
    )
    .await;
    for file in &files {
        let id = file.id();
        let answers: Vec<&OpenFileResult> = files
            .iter()
            .chain(files.iter())
            .zip(&openings)
            .filter(|(f, _)| f.id() == id)
            .map(|(_, answer)| answer.as_ref().unwrap())
            .collect();
        let created = answers
            .iter()
            .filter(|a| ***a == OpenFileResult::Created)
            .count();
        assert_eq!(created, 1, "{id}: {answers:?}");
    }
    // Half the closings name a stale version: they fail; the other half close.
    let expires_at = kept_until();
    let closings = futures_util::future::join_all(files.iter().zip(&references).enumerate().map(
        |(index, (file, reference))| {
            let (version, seq) = if index % 2 == 0 { (1, 2) } else { (4, 5) };
            let id = file.id();
            async move {
                store
                    .close_file(
                        &id,
                        version,
                        &closing(reference, seq),
                        Outcome::Done,
                        ClosingExpiry::new(expires_at, None),
                        &[],
                    )
                    .await
                    .unwrap()
            }
        },
    ))
    .await;
    for (index, (file, closed)) in files.iter().zip(&closings).enumerate() {
        let stored = store.load_file(&file.id()).await.unwrap().unwrap();
        if index % 2 == 0 {
            assert_eq!(*closed, CloseFileResult::Closed, "{}", file.id());
            assert_eq!(stored.state, FileState::Closed(Outcome::Done));
            assert_eq!(stored.events.len(), 2);
        } else {
            assert!(
                matches!(closed, CloseFileResult::StateChanged(f) if f.state == FileState::Open),
                "{}: {closed:?}",
                file.id()
            );
            assert_eq!(stored.state, FileState::Open);
            assert_eq!(stored.events.len(), 1);
        }
    }
}

/// A grant is recorded, for its key only, when its file is the partner's and not canceled
/// (open, or closed otherwise: that is when a quitus is signed); refused and not recorded
/// for a file that is not there, is another partner's, or was canceled.
async fn upload_grants_round_trip<S: FullStore>(store: &S) {
    let expiry = ClosingExpiry::new(kept_until(), None);
    let grant_for = |reference: &str, partner: &str| {
        let file = FileId::new(reference, "contract1");
        UploadGrant {
            key: upload_key(
                &file,
                &uuid::Uuid::new_v4().to_string(),
                "quitus signé #1%.pdf",
            ),
            file,
            partner: PartnerId(partner.into()),
            file_name: "quitus signé #1%.pdf".into(),
            size: 48_213,
            granted_at: now(),
            upload_by: now() + SignedDuration::from_mins(5),
        }
    };
    let record = |grant: UploadGrant| async move {
        let recorded = store
            .record_upload_grant(&grant, kept_until())
            .await
            .unwrap();
        let kept = store.upload_grant(&grant.key).await.unwrap();
        match recorded {
            GrantRecorded::Recorded => assert_eq!(kept, Some(grant), "kept as recorded"),
            _ => assert_eq!(kept, None, "a refused grant is not kept"),
        }
        recorded
    };

    let open = reference();
    store.open_file(&new_file(&open), &[]).await.unwrap();
    let grant = grant_for(&open, "partner-a");
    assert_eq!(
        store.upload_grant(&grant.key).await.unwrap(),
        None,
        "no grant yet"
    );
    let key = grant.key.clone();
    assert_eq!(record(grant).await, GrantRecorded::Recorded);
    assert_eq!(
        store.upload_grant(&format!("{key}x")).await.unwrap(),
        None,
        "a grant is for its key only"
    );
    // A grant whose data has expired is gone, whether or not it was erased yet.
    let expired = grant_for(&open, "partner-a");
    let gone = Timestamp::from_second(Timestamp::now().as_second()).unwrap()
        - SignedDuration::from_secs(60);
    assert_eq!(
        store.record_upload_grant(&expired, gone).await.unwrap(),
        GrantRecorded::Recorded
    );
    assert_eq!(store.upload_grant(&expired.key).await.unwrap(), None);
    assert_eq!(
        record(grant_for(&open, "partner-b")).await,
        GrantRecorded::NoFile,
        "another partner's file"
    );
    assert_eq!(
        record(grant_for(&reference(), "partner-a")).await,
        GrantRecorded::NoFile
    );

    let done = reference();
    store.open_file(&new_file(&done), &[]).await.unwrap();
    let id = FileId::new(&done, "contract1");
    store
        .close_file(&id, 1, &closing(&done, 2), Outcome::Done, expiry, &[])
        .await
        .unwrap();
    assert_eq!(
        record(grant_for(&done, "partner-a")).await,
        GrantRecorded::Recorded
    );

    let canceled = reference();
    store.open_file(&new_file(&canceled), &[]).await.unwrap();
    let id = FileId::new(&canceled, "contract1");
    let event = canceling(&canceled, 2);
    store
        .close_file(&id, 1, &event, Outcome::Canceled, expiry, &[])
        .await
        .unwrap();
    assert_eq!(
        record(grant_for(&canceled, "partner-a")).await,
        GrantRecorded::FileCanceled
    );
    assert_eq!(
        record(grant_for(&canceled, "partner-b")).await,
        GrantRecorded::NoFile,
        "another partner's canceled file is not acknowledged either"
    );
}

async fn events_wait_in_the_outbox_until_published<S: FullStore>(store: &S) {
    let file = new_file(&reference());
    let opened = DomainEvent::opened(&file.opened()).unwrap();
    store
        .open_file(&file, std::slice::from_ref(&opened))
        .await
        .unwrap();
    // Written with the opening: the re-send run finds it (as stored, same id and detail).
    let later = Timestamp::now() + SignedDuration::from_mins(1);
    let waiting = store.unpublished_events(later).await.unwrap();
    let found = waiting
        .iter()
        .find(|event| event.event_id() == opened.event_id())
        .expect("the opening's event is in the outbox");
    assert_eq!(found.detail_type(), "InterventionOpened");
    assert_eq!(found.detail_value(), opened.detail_value());
    // A second claim of the same file writes nothing, so announces nothing new.
    store
        .open_file(&file, std::slice::from_ref(&opened))
        .await
        .unwrap();
    // Named twice (a relay reading back what a run also queued): cleared once, no error.
    store
        .clear_published(&[opened.event_id(), opened.event_id()])
        .await
        .unwrap();
    assert!(
        !store
            .unpublished_events(later)
            .await
            .unwrap()
            .iter()
            .any(|event| event.event_id() == opened.event_id()),
        "cleared once published"
    );
    // A refusal recorded with its announcement: both or neither.
    let failed = DomainEvent::DeliveryFailed(oncall_domain::domain_events::DeliveryFailed {
        reference: file.id().reference,
        contract_reference: file.id().contract_reference,
        seq: 1,
        event: "acknowledged",
        attempts: 1,
    });
    store
        .record_delivery(
            &file.id(),
            1,
            &Delivery::Failed {
                attempts: 1,
                last_error: "Intent rejected the request with HTTP 400".into(),
                last_attempt_at: now(),
            },
            std::slice::from_ref(&failed),
        )
        .await
        .unwrap();
    assert!(
        store
            .unpublished_events(later)
            .await
            .unwrap()
            .iter()
            .any(|event| event.event_id() == failed.event_id())
    );
    store.clear_published(&[failed.event_id()]).await.unwrap();
    // An event tied to no state change, kept on its own (a run's summary the bus refused):
    // waiting as written, from when it was written.
    let summary = DomainEvent::DeliveryFailed(oncall_domain::domain_events::DeliveryFailed {
        reference: reference(),
        contract_reference: "contract1".into(),
        seq: 2,
        event: "done",
        attempts: 3,
    });
    let written = now();
    store
        .keep(std::slice::from_ref(&summary), written)
        .await
        .unwrap();
    let id = summary.event_id();
    let waiting_after = async |at: Timestamp| {
        store
            .unpublished_events(at)
            .await
            .unwrap()
            .iter()
            .any(|event| event.event_id() == id)
    };
    assert!(
        !waiting_after(written - SignedDuration::from_secs(1)).await,
        "not before it was written"
    );
    assert!(waiting_after(later).await, "kept in the outbox");
    // Counted in the backlog until the bus takes it, aged from when it was written.
    let backlog = store.backlog().await.unwrap();
    assert!(backlog.unpublished_events >= 1, "{backlog:?}");
    assert!(
        backlog
            .oldest_unpublished_since
            .is_some_and(|since| since <= written),
        "{backlog:?}"
    );
    store
        .clear_published(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(!waiting_after(later).await, "cleared once published");
}

async fn opening_is_atomic_and_once<S: FullStore>(store: &S) {
    let reference = reference();
    let mut file = new_file(&reference);
    // Stored with the expiry a claim gives it (whole seconds, as TTL keeps them), ahead of
    // the wall clock (a store may leave out what has expired).
    let expires_at = kept_until() + SignedDuration::from_hours(24 * 14);
    file.expires_at = Some(expires_at);
    assert_eq!(
        store.open_file(&file, &[]).await.unwrap(),
        OpenFileResult::Created,
        "a new file is created"
    );
    let loaded = store.load_file(&file.id()).await.unwrap().expect("stored");
    assert_eq!(loaded.state, FileState::Open);
    assert_eq!(loaded.owner, file.owner);
    assert_eq!(
        loaded.events,
        vec![file.opening.clone()],
        "the opening round-trips"
    );
    assert_eq!(loaded.expires_at, Some(expires_at), "with its expiry");
    match store.open_file(&file, &[]).await.unwrap() {
        OpenFileResult::AlreadyExists(existing) => assert_eq!(existing, loaded),
        other => panic!("a second opening must find the first, got {other:?}"),
    }
    assert!(
        store
            .load_file(&FileId::new(&reference, "other-contract"))
            .await
            .unwrap()
            .is_none(),
        "identity is reference + contract"
    );
}

async fn one_sender_at_a_time<S: FullStore>(store: &S) {
    let file = new_file(&reference());
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    let until = now() + SignedDuration::from_mins(3);
    assert_eq!(
        store.take_send_lease(&id, now(), until).await.unwrap(),
        LeaseGrant::Taken,
        "a free lease is taken"
    );
    assert_eq!(
        store.take_send_lease(&id, now(), until).await.unwrap(),
        LeaseGrant::HeldElsewhere,
        "a held lease is refused"
    );
    // Someone else's lease is not released by a stale holder.
    store
        .release_send_lease(&id, until + SignedDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        store.take_send_lease(&id, now(), until).await.unwrap(),
        LeaseGrant::HeldElsewhere
    );
    store.release_send_lease(&id, until).await.unwrap();
    assert_eq!(
        store.take_send_lease(&id, now(), until).await.unwrap(),
        LeaseGrant::Taken,
        "a released lease is free"
    );
    // An expired lease that was never given back is taken over, and says so: its holder
    // died mid-send.
    let later = until + SignedDuration::from_secs(1);
    assert_eq!(
        store
            .take_send_lease(&id, later, later + SignedDuration::from_mins(3))
            .await
            .unwrap(),
        LeaseGrant::TakenOver
    );
    // A file that is not there (never stored, or erased) has nothing to send: no lease.
    let missing = new_file(&reference()).id();
    assert_eq!(
        store.take_send_lease(&missing, now(), until).await.unwrap(),
        LeaseGrant::HeldElsewhere,
        "no lease on a file that is not there"
    );
}

/// A sender whose lease ran out (held up after its call to Intent) and was taken over
/// finishes late: its outcome is stale. The sender that took over read Intent back and
/// recorded what it found (here: Intent refused the event for good); the late finish
/// leaves that, and the lease the taker gave back, alone.
async fn a_stale_sender_does_not_write_over_the_sender_that_took_its_lease_over<S: FullStore>(
    store: &S,
) {
    let file = new_file(&reference());
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    let first_until = now() + SignedDuration::from_mins(3);
    assert_eq!(
        store
            .take_send_lease(&id, now(), first_until)
            .await
            .unwrap(),
        LeaseGrant::Taken
    );
    let later = first_until + SignedDuration::from_secs(1);
    let second_until = later + SignedDuration::from_mins(3);
    assert_eq!(
        store
            .take_send_lease(&id, later, second_until)
            .await
            .unwrap(),
        LeaseGrant::TakenOver
    );
    let refused = Delivery::Failed {
        attempts: 2,
        last_error: "Intent rejected the request with HTTP 400".into(),
        last_attempt_at: later,
    };
    store
        .finish_delivery(&id, 1, &refused, &[], second_until, &[])
        .await
        .unwrap();
    // The first sender, late: Intent was unavailable when it tried.
    let stale = Delivery::Pending {
        attempts: 1,
        last_error: Some("Intent is unavailable: HTTP 503".into()),
        last_attempt_at: Some(now()),
        in_doubt: false,
    };
    let _ = store
        .record_under_lease(&id, 1, &stale, &[], first_until)
        .await;
    let _ = store
        .finish_delivery(&id, 1, &stale, &[], first_until, &[])
        .await;
    let stored = store.load_file(&id).await.unwrap().unwrap();
    assert!(
        stored.events[0].delivery.is_failed(),
        "the late outcome is not written over the taker's: {:?}",
        stored.events[0].delivery
    );
    assert_eq!(
        store
            .take_send_lease(&id, later, second_until)
            .await
            .unwrap(),
        LeaseGrant::Taken,
        "the lease is free, not held by the late sender"
    );
}

async fn delivery_states_round_trip_and_delivered_is_final<S: FullStore>(store: &S) {
    let file = new_file(&reference());
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    let in_doubt = Delivery::Pending {
        attempts: 1,
        last_error: Some("Intent's answer was lost".into()),
        last_attempt_at: Some(now()),
        in_doubt: true,
    };
    store.record_delivery(&id, 1, &in_doubt, &[]).await.unwrap();
    assert_eq!(
        store.load_file(&id).await.unwrap().unwrap().events[0].delivery,
        in_doubt
    );
    let retrying = Delivery::Pending {
        attempts: 4,
        last_error: Some("Intent is unavailable: HTTP 503".into()),
        last_attempt_at: Some(now()),
        in_doubt: false,
    };
    store.record_delivery(&id, 1, &retrying, &[]).await.unwrap();
    assert_eq!(
        store.load_file(&id).await.unwrap().unwrap().events[0].delivery,
        retrying,
        "settled doubt is cleared"
    );
    let delivered = Delivery::Delivered {
        attempts: 5,
        delivered_at: now(),
    };
    store
        .record_delivery(&id, 1, &delivered, &[])
        .await
        .unwrap();
    store.record_delivery(&id, 1, &retrying, &[]).await.unwrap();
    assert_eq!(
        store.load_file(&id).await.unwrap().unwrap().events[0].delivery,
        delivered,
        "a late writer cannot undo a delivery"
    );
    // An event that is not there (a later seq, a file erased meanwhile): nothing written.
    store.record_delivery(&id, 9, &retrying, &[]).await.unwrap();
    let missing = new_file(&reference()).id();
    store
        .record_delivery(&missing, 1, &retrying, &[])
        .await
        .unwrap();
    assert!(store.load_file(&missing).await.unwrap().is_none());
    assert_eq!(store.load_file(&id).await.unwrap().unwrap().events.len(), 1);
}

/// The latest period reconciled with Intent to its end is noted: it and the periods
/// before it read reconciled (a reconciliation checks all Intent shows open), the next does
/// not; a late run of an earlier period does not take the note back.
async fn the_last_period_reconciled_is_noted<S: FullStore>(store: &S) {
    // Far in the future, apart for each run: the note is one item per table.
    let base = Timestamp::now()
        + SignedDuration::from_hours(24 * 365 * 50)
        + SignedDuration::from_secs(i64::from(uuid::Uuid::new_v4().as_u128() as u16) * 1_000);
    let period = |days: i64| oncall_domain::calendar::OnCallPeriod {
        id: format!("oncall-{days}"),
        start: base + SignedDuration::from_hours(24 * days - 14),
        end: base + SignedDuration::from_hours(24 * days),
    };
    let (earlier, noted, next) = (period(1), period(2), period(3));
    assert!(!store.period_reconciled(&noted).await.unwrap());
    store.mark_period_reconciled(&noted, now()).await.unwrap();
    assert!(store.period_reconciled(&noted).await.unwrap());
    assert!(store.period_reconciled(&earlier).await.unwrap(), "covered");
    assert!(!store.period_reconciled(&next).await.unwrap());
    store.mark_period_reconciled(&earlier, now()).await.unwrap();
    assert!(
        store.period_reconciled(&noted).await.unwrap(),
        "a late run of an earlier period does not take the note back"
    );
}

/// A closing recorded delivered that Intent lost, then refused when the reconciliation
/// sent it again: recorded failed (listed for an operator's redrive, counted in the
/// backlog) with its announcement, only while it is still recorded delivered.
async fn a_delivered_event_intent_lost_and_refused_is_recorded_failed<S: FullStore>(store: &S) {
    let file = new_file(&reference());
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    let stored = || async {
        store.load_file(&id).await.unwrap().unwrap().events[0]
            .delivery
            .clone()
    };
    let refused = Delivery::Failed {
        attempts: 3,
        last_error: "Intent rejected the request with HTTP 422".into(),
        last_attempt_at: now(),
    };
    let announce = |attempts| {
        [DomainEvent::DeliveryFailed(
            oncall_domain::domain_events::DeliveryFailed {
                reference: id.reference.clone(),
                contract_reference: id.contract_reference.clone(),
                seq: 1,
                event: "open/acknowledged",
                attempts,
            },
        )]
    };
    // Still pending: not this port's (the re-send pass records its outcomes).
    assert!(
        !store
            .record_lost_event_refused(&id, 1, &refused, &announce(3))
            .await
            .unwrap()
    );
    assert_eq!(stored().await, pending());
    let delivered = Delivery::Delivered {
        attempts: 2,
        delivered_at: now(),
    };
    store
        .record_delivery(&id, 1, &delivered, &[])
        .await
        .unwrap();
    let before = store.backlog().await.unwrap().failed_events;

    assert!(
        store
            .record_lost_event_refused(&id, 1, &refused, &announce(3))
            .await
            .unwrap()
    );

    assert_eq!(stored().await, refused);
    assert_eq!(store.backlog().await.unwrap().failed_events, before + 1);
    let later = Timestamp::now() + SignedDuration::from_mins(1);
    assert!(
        store
            .unpublished_events(later)
            .await
            .unwrap()
            .iter()
            .any(|event| event.event_id() == announce(3)[0].event_id()),
        "announced through the outbox"
    );
    // Already failed: not written again.
    let again = Delivery::Failed {
        attempts: 4,
        last_error: "Intent rejected the request with HTTP 400".into(),
        last_attempt_at: now(),
    };
    assert!(
        !store
            .record_lost_event_refused(&id, 1, &again, &announce(4))
            .await
            .unwrap()
    );
    assert_eq!(stored().await, refused);
    let missing = new_file(&reference()).id();
    assert!(
        !store
            .record_lost_event_refused(&missing, 1, &refused, &[])
            .await
            .unwrap()
    );
}

/// An operator's redrive puts an event Intent refused back to pending, and nothing else:
/// not one another sender has since left in doubt (an older copy of the file must not
/// erase the doubt), nor a delivered one, nor one that is not there.
async fn only_a_failed_event_is_put_back_to_pending<S: FullStore>(store: &S) {
    let file = new_file(&reference());
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    let stored = || async {
        store.load_file(&id).await.unwrap().unwrap().events[0]
            .delivery
            .clone()
    };
    let again = Delivery::Pending {
        attempts: 2,
        last_error: Some("Intent rejected the request with HTTP 400".into()),
        last_attempt_at: None,
        in_doubt: false,
    };
    let refused = Delivery::Failed {
        attempts: 2,
        last_error: "Intent rejected the request with HTTP 400".into(),
        last_attempt_at: now(),
    };
    store.record_delivery(&id, 1, &refused, &[]).await.unwrap();
    // Refused again since the copy `again` comes from was read (another redrive): not
    // written over (its attempts would give the next refusal an eventId already used).
    let refused_again = Delivery::Failed {
        attempts: 3,
        last_error: "Intent rejected the request with HTTP 422".into(),
        last_attempt_at: now(),
    };
    store
        .record_delivery(&id, 1, &refused_again, &[])
        .await
        .unwrap();
    assert!(!store.requeue_failed_event(&id, 1, &again).await.unwrap());
    assert_eq!(stored().await, refused_again);
    store.record_delivery(&id, 1, &refused, &[]).await.unwrap();
    assert!(store.requeue_failed_event(&id, 1, &again).await.unwrap());
    assert_eq!(stored().await, again);

    let in_doubt = Delivery::Pending {
        attempts: 3,
        last_error: Some("Intent's answer was lost".into()),
        last_attempt_at: Some(now()),
        in_doubt: true,
    };
    store.record_delivery(&id, 1, &in_doubt, &[]).await.unwrap();
    assert!(!store.requeue_failed_event(&id, 1, &again).await.unwrap());
    assert_eq!(stored().await, in_doubt, "the doubt is kept");

    let delivered = Delivery::Delivered {
        attempts: 4,
        delivered_at: now(),
    };
    store
        .record_delivery(&id, 1, &delivered, &[])
        .await
        .unwrap();
    assert!(!store.requeue_failed_event(&id, 1, &again).await.unwrap());
    assert_eq!(stored().await, delivered);

    assert!(!store.requeue_failed_event(&id, 9, &again).await.unwrap());
    let missing = new_file(&reference()).id();
    assert!(
        !store
            .requeue_failed_event(&missing, 1, &again)
            .await
            .unwrap()
    );
    assert!(store.load_file(&missing).await.unwrap().is_none());
}

/// A closed file past its retention is gone at once, whether or not its data has been
/// erased yet (DynamoDB's TTL lags, a local purge runs now and then): not read, and its
/// reference may be claimed again as a new file.
async fn a_file_whose_data_has_expired_is_gone<S: FullStore>(store: &S) {
    let reference = reference();
    let file = new_file(&reference);
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    // In seconds, as DynamoDB's `expiresAt` keeps it.
    let expired = Timestamp::from_second(Timestamp::now().as_second() - 2).unwrap();
    let closed = close(
        store,
        &id,
        1,
        &closing(&reference, 2),
        Outcome::Done,
        expired,
    )
    .await;
    assert_eq!(closed, CloseFileResult::Closed);
    assert_eq!(store.load_file(&id).await.unwrap(), None, "expired: gone");
    assert_eq!(
        store.open_file(&file, &[]).await.unwrap(),
        OpenFileResult::Created,
        "its reference is claimed again"
    );
    let again = store.load_file(&id).await.unwrap().unwrap();
    assert_eq!(again.state, FileState::Open);
    assert_eq!(again.events.len(), 1);

    // Each of its events delivered, an expired file is not given back by a refusal either.
    let reference = self::reference();
    let mut file = new_file(&reference);
    file.opening.delivery = delivered_once(now());
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    let closing = closing(&reference, 2);
    let closed = close(store, &id, 1, &closing, Outcome::Done, expired).await;
    assert_eq!(closed, CloseFileResult::Closed);
    store
        .record_delivery(&id, 2, &delivered_once(now()), &[])
        .await
        .unwrap();
    let until = Timestamp::now() + SignedDuration::from_mins(3);
    let replay = close_unread_by(store, &file, "partner-a", &closing, until).await;
    assert_eq!(replay, UnreadClosingResult::NotApplied, "expired: gone");
}

async fn closing_is_conditional_on_the_version<S: FullStore>(store: &S) {
    let reference = reference();
    let file = new_file(&reference);
    let id = file.id();
    store.open_file(&file, &[]).await.unwrap();
    let expires_at = kept_until();
    let stale = close(
        store,
        &id,
        7,
        &closing(&reference, 8),
        Outcome::Done,
        expires_at,
    )
    .await;
    assert!(
        matches!(stale, CloseFileResult::StateChanged(ref f) if f.state == FileState::Open),
        "a stale version does not close: {stale:?}"
    );
    let closed = close(
        store,
        &id,
        1,
        &closing(&reference, 2),
        Outcome::Done,
        expires_at,
    )
    .await;
    assert_eq!(closed, CloseFileResult::Closed);
    let loaded = store.load_file(&id).await.unwrap().unwrap();
    assert_eq!(loaded.state, FileState::Closed(Outcome::Done));
    assert_eq!(loaded.events.len(), 2);
    assert_eq!(loaded.expires_at, Some(expires_at));
    let again = close(
        store,
        &id,
        1,
        &closing(&reference, 2),
        Outcome::PartialRepair,
        expires_at,
    )
    .await;
    assert!(
        matches!(again, CloseFileResult::StateChanged(ref f) if f.state == FileState::Closed(Outcome::Done)),
        "a closed file stays closed: {again:?}"
    );
}

/// Two new files, the second closed (done) expiring at `expires_at`.
async fn given_an_open_and_a_closed_file<S: FullStore>(
    store: &S,
    expires_at: Timestamp,
) -> (NewFile, NewFile) {
    let open = new_file(&reference());
    let closed_reference = reference();
    let closed = new_file(&closed_reference);
    store.open_file(&open, &[]).await.unwrap();
    store.open_file(&closed, &[]).await.unwrap();
    close(
        store,
        &closed.id(),
        1,
        &closing(&closed_reference, 2),
        Outcome::Done,
        expires_at,
    )
    .await;
    (open, closed)
}

async fn open_and_pending_listings<S: FullStore>(store: &S) {
    let (open, closed) = given_an_open_and_a_closed_file(store, kept_until()).await;
    // The seed's eventDate is 2020-03-06T10:45:23 Paris.
    let before_opening: Timestamp = "2020-03-06T09:00:00Z".parse().unwrap();
    let listed = store.open_files_opened_before(now()).await.unwrap();
    assert!(listed.contains(&open.id()), "an open file is listed");
    assert!(
        !listed.contains(&closed.id()),
        "a closed file is not listed"
    );
    let early = store
        .open_files_opened_before(before_opening)
        .await
        .unwrap();
    assert!(
        !early.contains(&open.id()),
        "only files opened before the bound"
    );
    // Received before its eventDate (the partner's clock ahead): opened at its reception.
    let mut ahead = new_file(&reference());
    let received = ahead.opening.recorded_at;
    ahead.opening.log.event_date = oncall_domain::datetime::IntentDateTime::from_timestamp(
        received + SignedDuration::from_mins(10),
    );
    store.open_file(&ahead, &[]).await.unwrap();
    let listed = store
        .open_files_opened_before(received + SignedDuration::from_mins(5))
        .await
        .unwrap();
    assert!(
        listed.contains(&ahead.id()),
        "a file received before the bound is listed, whatever its eventDate"
    );

    let pending = store.files_with_pending_events().await.unwrap();
    assert!(pending.contains(&open.id()) && pending.contains(&closed.id()));
    store
        .record_delivery(
            &open.id(),
            1,
            &Delivery::Delivered {
                attempts: 1,
                delivered_at: now(),
            },
            &[],
        )
        .await
        .unwrap();
    let pending = store.files_with_pending_events().await.unwrap();
    assert!(
        !pending.contains(&open.id()),
        "delivered events leave the pending list"
    );

    // A refused event leaves the pending list for the failed count of the backlog.
    let before = store.backlog().await.unwrap();
    assert!(before.pending_events >= 2, "{before:?}");
    assert!(before.oldest_pending_since.is_some_and(|at| at <= now()));
    store
        .record_delivery(
            &closed.id(),
            1,
            &Delivery::Failed {
                attempts: 1,
                last_error: "Intent rejected the request with HTTP 400".into(),
                last_attempt_at: now(),
            },
            &[],
        )
        .await
        .unwrap();
    let after = store.backlog().await.unwrap();
    assert_eq!(after.failed_events, before.failed_events + 1);
    assert_eq!(after.pending_events, before.pending_events - 1);
}

/// A new open file, and the quitus a partner dropped for it (version `v1`, 10 bytes).
async fn given_a_file_and_its_quitus<S: FullStore>(store: &S) -> (NewFile, ObjectRef) {
    let reference = reference();
    let file = new_file(&reference);
    store.open_file(&file, &[]).await.unwrap();
    let object = ObjectRef {
        bucket: "docs".into(),
        key: format!("quitus/contract1/{reference}/q.pdf"),
        version: ObjectVersion::VersionId("v1".into()),
        size: Some(10),
    };
    (file, object)
}

/// `object` as Intent published it (document `intent_id`).
fn published_record(object: &ObjectRef, intent_id: &str, at: Timestamp) -> DocumentRecord {
    DocumentRecord {
        object_identity: object.identity(),
        file_name: "q.pdf".into(),
        title: "quitus d'intervention".into(),
        size: 10,
        intent_document_id: Some(intent_id.into()),
        published_at: at,
        attempts: 1,
    }
}

/// The claim a claim answer grants (panics on any other answer).
fn claimed(answer: DocumentClaim) -> ClaimedObject {
    match answer {
        DocumentClaim::Claimed(claimed) => claimed,
        other => panic!("expected a claim, got {other:?}"),
    }
}

/// Two forwarders of one process (the local run, one Lambda invocation's batch, the
/// re-send run beside a forwarder): the first stalls past its lease and the second takes
/// the object over. The first's later writes (a wait, a release, a rejection, a
/// publication) do not pass under the second's claim; the second's do.
async fn a_claim_taken_over_cannot_write_over_the_claim_that_took_it<S: FullStore>(store: &S) {
    let (file, object) = given_a_file_and_its_quitus(store).await;
    let stale = claimed(
        store
            .claim_document(&object, now(), now() + SignedDuration::from_secs(1))
            .await
            .unwrap(),
    );
    let later = now() + SignedDuration::from_mins(1);
    let lease = later + SignedDuration::from_mins(15);
    let taker = claimed(store.claim_document(&object, later, lease).await.unwrap());
    assert!(taker.in_doubt, "its first holder's upload is in doubt");
    assert_ne!(stale.token, taker.token, "each claim is its own");
    let still_the_takers = |what: &'static str| {
        let object = &object;
        async move {
            assert_eq!(
                store.claim_document(object, later, lease).await.unwrap(),
                DocumentClaim::HeldElsewhere,
                "after the stale holder's {what}, the object is still the taker's"
            );
        }
    };

    let wait = DocumentWait {
        file: Some(file.id()),
        attempts: 1,
        last_error: "Intent unreachable".into(),
        last_attempt_at: later,
        in_doubt: false,
    };
    let recorded = store.record_pending(&object, &stale.token, &wait).await;
    assert!(
        recorded.is_err(),
        "the stale claim's wait is refused: {recorded:?}"
    );
    still_the_takers("wait").await;
    store.release_document(&object, &stale.token).await.unwrap();
    still_the_takers("release").await;
    let stale_rejection = || {
        store.record_rejected(
            &object,
            &stale.token,
            RejectionReason::NotPdf,
            "not a PDF",
            later,
            lease,
            &[],
        )
    };
    let rejected = stale_rejection().await.unwrap();
    assert!(!rejected, "the stale claim's rejection is not recorded");
    still_the_takers("rejection").await;
    let record = published_record(&object, "doc-stale", later);
    let loaded = store.load_file(&file.id()).await.unwrap().unwrap();
    let published = store
        .record_published(&object, &stale.token, &loaded, &record, lease, &[])
        .await;
    assert!(
        published.is_err(),
        "the stale claim's publication is refused: {published:?}"
    );
    still_the_takers("publication").await;
    assert!(
        store
            .load_file(&file.id())
            .await
            .unwrap()
            .unwrap()
            .documents
            .is_empty(),
        "a refused publication adds no document"
    );

    // The taker's own writes pass.
    store
        .record_pending(&object, &taker.token, &wait)
        .await
        .unwrap();
    let rejected = stale_rejection().await.unwrap();
    assert!(
        !rejected,
        "nor does it reject the object once the taker left it waiting"
    );
    let again = claimed(store.claim_document(&object, later, lease).await.unwrap());
    store
        .record_published(&object, &again.token, &loaded, &record, lease, &[])
        .await
        .unwrap();
    assert_eq!(
        store.claim_document(&object, later, lease).await.unwrap(),
        DocumentClaim::AlreadyPublished
    );
}

async fn documents_ledger_claims_once<S: FullStore>(store: &S) {
    let (file, object) = given_a_file_and_its_quitus(store).await;
    let lease = now() + SignedDuration::from_mins(15);
    let first = claimed(store.claim_document(&object, now(), lease).await.unwrap());
    assert_eq!(
        (first.in_doubt, first.attempts, first.first_seen_at),
        (false, 0, now())
    );
    assert_eq!(
        store.claim_document(&object, now(), lease).await.unwrap(),
        DocumentClaim::HeldElsewhere
    );
    // Waiting (its file's opening is not on Intent yet): listed for the re-send run.
    let wait = DocumentWait {
        file: Some(file.id()),
        attempts: 2,
        last_error: "the file's opening is not on Intent yet".into(),
        last_attempt_at: now(),
        in_doubt: false,
    };
    store
        .record_pending(&object, &first.token, &wait)
        .await
        .unwrap();
    let waiting = store.pending_documents().await.unwrap();
    let listed = waiting
        .iter()
        .find(|pending| pending.object.identity() == object.identity())
        .expect("a waiting document is listed");
    assert_eq!(listed.object, object);
    assert_eq!(listed.attempts, 2);
    assert_eq!(listed.file, Some(file.id()));
    let backlog = store.backlog().await.unwrap();
    assert!(backlog.pending_documents >= 1);
    // Seen first at now(): the oldest waiting document waits since then at the latest.
    assert!(
        backlog
            .oldest_pending_document_since
            .is_some_and(|since| since <= now()),
        "{backlog:?}"
    );
    let later = now() + SignedDuration::from_mins(5);
    let second = claimed(store.claim_document(&object, later, lease).await.unwrap());
    assert_eq!(
        (second.in_doubt, second.attempts, second.first_seen_at),
        (false, 2, now()),
        "a waiting document is claimed again, its history kept"
    );
    // A store failure gives it back, in doubt (an upload may have gone out).
    store
        .release_document(&object, &second.token)
        .await
        .unwrap();
    let third = claimed(store.claim_document(&object, now(), lease).await.unwrap());
    assert!(third.in_doubt);
    let record = published_record(&object, "doc-1", now());
    let loaded = store.load_file(&file.id()).await.unwrap().unwrap();
    store
        .record_published(&object, &third.token, &loaded, &record, kept_until(), &[])
        .await
        .unwrap();
    assert_eq!(
        store.claim_document(&object, now(), lease).await.unwrap(),
        DocumentClaim::AlreadyPublished
    );
    assert!(
        !store
            .pending_documents()
            .await
            .unwrap()
            .iter()
            .any(|pending| pending.object.identity() == object.identity()),
        "a published document no longer waits"
    );
    assert_eq!(
        store
            .load_file(&file.id())
            .await
            .unwrap()
            .unwrap()
            .documents,
        vec![record]
    );

    let rejected = ObjectRef {
        version: ObjectVersion::VersionId("v2".into()),
        ..object.clone()
    };
    let claim = claimed(store.claim_document(&rejected, now(), lease).await.unwrap());
    let recorded = store
        .record_rejected(
            &rejected,
            &claim.token,
            RejectionReason::NotPdf,
            "not a PDF",
            now(),
            lease,
            &[],
        )
        .await
        .unwrap();
    assert!(recorded, "a rejection under the claim is recorded");
    assert_eq!(
        store.claim_document(&rejected, now(), lease).await.unwrap(),
        DocumentClaim::AlreadyRejected
    );
    // A refusal by Intent waits for an operator: the backlog counts it (a document that
    // is not a PDF does not).
    let before = store.backlog().await.unwrap().rejected_documents;
    let refused = ObjectRef {
        version: ObjectVersion::VersionId("v4".into()),
        ..object.clone()
    };
    let claim = claimed(store.claim_document(&refused, now(), lease).await.unwrap());
    assert!(
        store
            .record_rejected(
                &refused,
                &claim.token,
                RejectionReason::IntentRejected,
                "Intent answered 422",
                now(),
                lease,
                &[],
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.backlog().await.unwrap().rejected_documents,
        before + 1,
        "a document Intent refused is in the backlog"
    );
    // An expired lease can be taken over.
    let abandoned = ObjectRef {
        version: ObjectVersion::VersionId("v3".into()),
        ..object
    };
    let short = now() + SignedDuration::from_secs(1);
    store
        .claim_document(&abandoned, now(), short)
        .await
        .unwrap();
    let later = now() + SignedDuration::from_mins(1);
    assert!(
        matches!(
            store
                .claim_document(&abandoned, later, later + SignedDuration::from_mins(15))
                .await
                .unwrap(),
            DocumentClaim::Claimed(ClaimedObject { in_doubt: true, .. })
        ),
        "a forwarder that died holding it leaves its upload in doubt"
    );
    assert!(
        store
            .pending_documents()
            .await
            .unwrap()
            .iter()
            .any(|pending| pending.object.identity() == abandoned.identity()),
        "a held document is listed, so a dead holder's work is found again"
    );
}

/// Delivered at the first attempt, at `at`.
fn delivered_once(at: Timestamp) -> Delivery {
    Delivery::Delivered {
        attempts: 1,
        delivered_at: at,
    }
}

/// `file` closed unread with `closing` by partner `owner`, as `closed/done`, retained until
/// [`kept_until`], the lease asked for until `until`: what the store did.
async fn close_unread_by<S: FullStore>(
    store: &S,
    file: &NewFile,
    owner: &str,
    closing: &RecordedEvent,
    until: Timestamp,
) -> UnreadClosingResult {
    store
        .close_unread(UnreadClosing {
            id: &file.id(),
            owner: &PartnerId(owner.into()),
            closing,
            outcome: Outcome::Done,
            retention_ends: kept_until(),
            announce: &[],
            sending_until: until,
        })
        .await
        .unwrap()
}

/// A closure written unread ([`CloseFile::close_unread`]) is either applied as the closing
/// it assumes (the file it gives back is the file stored: its opening, then the closing,
/// under the lease asked for, whose outcome is then recorded as any other) or nothing at
/// all (a store may never apply it); another partner's file never gets it.
async fn a_closure_written_unread_is_the_closing_it_assumes_or_nothing<S: FullStore>(store: &S) {
    let expires_at = kept_until() + SignedDuration::from_hours(24);
    let stored = |reference: &str| {
        let mut file = new_file(reference);
        file.opening.delivery = delivered_once(now());
        file.expires_at = Some(expires_at);
        file
    };
    let until = Timestamp::now() + SignedDuration::from_mins(3);

    let other = stored("UNREAD-OTHER-1");
    store.open_file(&other, &[]).await.unwrap();
    let written = close_unread_by(
        store,
        &other,
        "partner-b",
        &closing("UNREAD-OTHER-1", 2),
        until,
    )
    .await;
    let unchanged = store.load_file(&other.id()).await.unwrap().unwrap();
    assert_eq!(
        unchanged,
        other.opened(),
        "another partner's file is left as it was"
    );
    match written {
        UnreadClosingResult::NotApplied => {}
        UnreadClosingResult::Refused(file) => {
            assert_eq!(
                file, unchanged,
                "a refusal gives the file back as it stands"
            )
        }
        UnreadClosingResult::ClosedSending(_) => panic!("closed another partner's file"),
    }

    let file = stored("UNREAD-1");
    store.open_file(&file, &[]).await.unwrap();
    let closing = closing("UNREAD-1", 2);
    match close_unread_by(store, &file, "partner-a", &closing, until).await {
        UnreadClosingResult::ClosedSending(closed) => {
            assert_eq!(closed.state, FileState::Closed(Outcome::Done));
            assert_eq!(closed.events, vec![file.opening.clone(), closing.clone()]);
            assert_eq!(closed.expires_at, Some(expires_at));
            assert_eq!(
                store.load_file(&file.id()).await.unwrap().as_ref(),
                Some(&closed),
                "the file given back is the file stored"
            );
            let later = Timestamp::now();
            assert_eq!(
                store
                    .take_send_lease(&file.id(), later, later + SignedDuration::from_mins(3))
                    .await
                    .unwrap(),
                LeaseGrant::HeldElsewhere,
                "the closure holds the lease"
            );
            store
                .finish_delivery(&file.id(), 2, &delivered_once(later), &[], until, &[])
                .await
                .unwrap();
            let finished = store.load_file(&file.id()).await.unwrap().unwrap();
            assert_eq!(finished.events[1].delivery, delivered_once(later));
            assert_eq!(
                store
                    .take_send_lease(&file.id(), later, later + SignedDuration::from_mins(3))
                    .await
                    .unwrap(),
                LeaseGrant::Taken,
                "the lease given back with the outcome"
            );
        }
        UnreadClosingResult::NotApplied | UnreadClosingResult::Refused(_) => {
            assert_eq!(
                store.load_file(&file.id()).await.unwrap().unwrap(),
                file.opened(),
                "nothing written"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    /// The unit tests' fake store keeps the contract too, so that what the domain's
    /// given/when/then tests see is what the real stores do.
    #[tokio::test]
    async fn the_in_memory_store_passes_the_store_contract() {
        super::check_store(&oncall_domain::in_memory::InMemoryStore::default()).await;
    }
}
