//! The operator's view and redrive (`bridge-admin`): what waits for Intent, what Intent
//! refused for good, and sending the refused items again.
//!
//! An event Intent refused (`failed`) is only ever sent again by an operator: the redrive
//! puts it back to `pending` (its attempts and last error kept, never over a delivered
//! event), then delivers the file's events in order under the file's send lease, like
//! any other sender. If another sender holds the lease right now, the events stay
//! re-queued and the next re-send run delivers them. A document Intent refused goes back
//! to `pending` in the ledger and is forwarded again, from the bucket, by the same logic
//! as the forwarder (its file's opening first).

use crate::delivery::{Deadline, deliver_in_order};
use crate::documents::{DocumentPolicy, ObjectRef};
use crate::file::{Delivery, InterventionFile};
use crate::forward::{ForwardPorts, Forwarded, forward_document};
use crate::model::FileId;
use crate::ports::{
    Clock, DocumentLedger, FinishDelivery, ListPendingEvents, LoadFile, PublishDocument,
    PublishDomainEvents, PublishToIntent, ReadObject, RequeueFailedEvent, StoreError, UploadGrants,
};
use futures_util::StreamExt;
use jiff::Timestamp;
use std::future::Future;

/// A document of the ledger, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerDocument {
    pub object: ObjectRef,
    /// Its file, when the key names one.
    pub file: Option<FileId>,
    pub attempts: u32,
    /// Waiting: when the ledger first saw it; refused: when Intent refused it.
    pub since: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// The operator's reads and writes beyond the ports the functions use (index queries,
/// never a scan, on the table).
pub trait OperatorStore: Send + Sync {
    /// Files with at least one event Intent refused for good.
    fn files_with_failed_events(
        &self,
    ) -> impl Future<Output = Result<Vec<FileId>, StoreError>> + Send;

    /// Documents waiting in the ledger (or held by a forwarder right now).
    fn waiting_documents(
        &self,
    ) -> impl Future<Output = Result<Vec<LedgerDocument>, StoreError>> + Send;

    /// Documents Intent refused (rejected with reason `intent_rejected`): the only
    /// rejections a redrive can change (the others are about the object itself).
    fn failed_documents(
        &self,
    ) -> impl Future<Output = Result<Vec<LedgerDocument>, StoreError>> + Send;

    /// Puts a document Intent refused back to waiting, so that the next forwarding takes
    /// it. False when it is not (or no longer) a document Intent refused.
    fn requeue_document(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// One event of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub file: FileId,
    pub seq: u32,
    /// Intent's status/event pair, e.g. `open` / `acknowledged`.
    pub status: &'static str,
    pub event: &'static str,
    pub recorded_at: Timestamp,
    pub delivery: Delivery,
    /// The earlier event of the same file that it waits behind, if any.
    pub behind: Option<u32>,
}

fn lines_of(file: &InterventionFile, keep: impl Fn(&Delivery) -> bool) -> Vec<EventLine> {
    let mut first_undelivered: Option<u32> = None;
    let mut lines = Vec::new();
    for event in &file.events {
        if keep(&event.delivery) {
            lines.push(EventLine {
                file: file.id.clone(),
                seq: event.seq,
                status: event.log.status.as_str(),
                event: event.pair.as_str(),
                recorded_at: event.recorded_at,
                delivery: event.delivery.clone(),
                behind: first_undelivered,
            });
        }
        if !event.delivery.is_delivered() && first_undelivered.is_none() {
            first_undelivered = Some(event.seq);
        }
    }
    lines
}

/// Files read at once by the listings.
const LISTING_CONCURRENCY: usize = 16;

async fn lines_of_files<S: LoadFile>(
    store: &S,
    files: Vec<FileId>,
    keep: fn(&Delivery) -> bool,
) -> Result<Vec<EventLine>, StoreError> {
    let loaded: Vec<Result<Option<InterventionFile>, StoreError>> =
        futures_util::stream::iter(files)
            .map(|id| async move { store.load_file(&id).await })
            .buffer_unordered(LISTING_CONCURRENCY)
            .collect()
            .await;
    let mut lines = Vec::new();
    for file in loaded {
        // The indexes are eventually consistent: a file may have moved on meanwhile.
        if let Some(file) = file? {
            lines.extend(lines_of(&file, keep));
        }
    }
    lines.sort_by(|a, b| (a.recorded_at, &a.file, a.seq).cmp(&(b.recorded_at, &b.file, b.seq)));
    Ok(lines)
}

/// Every event Intent has not acknowledged yet, oldest first.
pub async fn pending_events<S>(store: &S) -> Result<Vec<EventLine>, StoreError>
where
    S: ListPendingEvents + LoadFile,
{
    let files = store.files_with_pending_events().await?;
    lines_of_files(store, files, Delivery::is_pending).await
}

/// Every event Intent refused for good, oldest first.
pub async fn failed_events<S>(store: &S) -> Result<Vec<EventLine>, StoreError>
where
    S: OperatorStore + LoadFile,
{
    let files = store.files_with_failed_events().await?;
    lines_of_files(store, files, Delivery::is_failed).await
}

/// Oldest first (unknown times last).
pub fn sort_documents(documents: &mut [LedgerDocument]) {
    documents.sort_by_key(|document| (document.since.is_none(), document.since));
}

/// A file as the operator's `show` prints it: the file with its log and published
/// documents, and its documents still waiting or refused by Intent.
#[derive(Debug, Clone, PartialEq)]
pub struct FileView {
    pub file: InterventionFile,
    pub waiting: Vec<LedgerDocument>,
    pub refused: Vec<LedgerDocument>,
}

/// The file and its documents; `None` for an unknown file.
pub async fn view_file<S>(store: &S, id: &FileId) -> Result<Option<FileView>, StoreError>
where
    S: LoadFile + OperatorStore,
{
    let Some(file) = store.load_file(id).await? else {
        return Ok(None);
    };
    let of_file = |documents: Vec<LedgerDocument>| {
        let mut documents: Vec<LedgerDocument> = documents
            .into_iter()
            .filter(|document| document.file.as_ref() == Some(id))
            .collect();
        sort_documents(&mut documents);
        documents
    };
    Ok(Some(FileView {
        file,
        waiting: of_file(store.waiting_documents().await?),
        refused: of_file(store.failed_documents().await?),
    }))
}

/// What a redrive did with a file's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsOutcome {
    /// Nothing failed nor pending on the file: nothing done.
    NothingToDo,
    /// Every event of the file is on Intent.
    Delivered,
    /// Intent refused this event again: it is failed again (and announced).
    RefusedAgain { seq: u32, error: String },
    /// Intent did not take this event now (unreachable, throttling, …): it stays pending
    /// and the re-send run sends it again.
    StillPending { seq: u32, error: Option<String> },
    /// Nothing was sent now: another sender holds the file's send lease (or the store
    /// could not be read under it). The events are re-queued; that sender or the next
    /// re-send run delivers them, in order.
    LeftToResendRun,
}

/// A file's redrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRedrive {
    pub file: FileId,
    /// Events that were failed and are pending again.
    pub requeued: Vec<u32>,
    /// Events Intent now has (delivered by this redrive).
    pub delivered: Vec<u32>,
    pub outcome: EventsOutcome,
}

impl FileRedrive {
    /// Everything of the file is on Intent (or there was nothing to do).
    pub fn done(&self) -> bool {
        matches!(
            self.outcome,
            EventsOutcome::NothingToDo | EventsOutcome::Delivered
        )
    }
}

/// Puts every event of the file Intent refused back to pending (attempts and last error
/// kept), then delivers the file's events in order under its send lease. `None` for an
/// unknown file.
pub async fn redrive_file<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    id: &FileId,
    deadline: Deadline,
) -> Result<Option<FileRedrive>, StoreError>
where
    S: LoadFile + FinishDelivery + RequeueFailedEvent,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let Some(mut file) = store.load_file(id).await? else {
        return Ok(None);
    };
    let mut requeued = Vec::new();
    let mut moved_on = false;
    for event in file.events.iter_mut() {
        let Delivery::Failed {
            attempts,
            last_error,
            ..
        } = &event.delivery
        else {
            continue;
        };
        let again = Delivery::Pending {
            attempts: *attempts,
            last_error: Some(last_error.clone()),
            last_attempt_at: None,
            in_doubt: false,
        };
        // Only while it is still failed (the store checks it): this copy may be older than
        // what another sender recorded since.
        if !store.requeue_failed_event(id, event.seq, &again).await? {
            tracing::info!(
                seq = event.seq,
                "the event is no longer failed; left as another sender recorded it"
            );
            moved_on = true;
            continue;
        }
        tracing::info!(
            seq = event.seq,
            "event Intent refused put back to pending by an operator"
        );
        event.delivery = again;
        requeued.push(event.seq);
    }
    if moved_on {
        // Delivered from the file as it stands now, not from the copy.
        match store.load_file(id).await? {
            Some(current) => file = current,
            None => return Ok(None),
        }
    }
    let delivered_before: Vec<u32> = delivered_seqs(&file);
    let Some(first_before) = first_undelivered(&file) else {
        return Ok(Some(FileRedrive {
            file: id.clone(),
            requeued,
            delivered: Vec::new(),
            outcome: EventsOutcome::NothingToDo,
        }));
    };
    let after = deliver_in_order(store, intent, events, clock, file, deadline).await;
    let delivered = delivered_seqs(&after)
        .into_iter()
        .filter(|seq| !delivered_before.contains(seq))
        .collect();
    let outcome = match first_undelivered(&after) {
        None => EventsOutcome::Delivered,
        // Untouched and pending: its sender (or the next re-send run) goes on. Untouched
        // and failed (refused again by another redrive since this one's copy): below.
        Some(first) if first == first_before && !first.1.is_failed() => {
            EventsOutcome::LeftToResendRun
        }
        Some((seq, Delivery::Failed { last_error, .. })) => EventsOutcome::RefusedAgain {
            seq,
            error: last_error,
        },
        Some((seq, Delivery::Pending { last_error, .. })) => EventsOutcome::StillPending {
            seq,
            error: last_error,
        },
        Some((_, Delivery::Delivered { .. })) => EventsOutcome::Delivered,
    };
    Ok(Some(FileRedrive {
        file: id.clone(),
        requeued,
        delivered,
        outcome,
    }))
}

fn delivered_seqs(file: &InterventionFile) -> Vec<u32> {
    file.events
        .iter()
        .filter(|event| event.delivery.is_delivered())
        .map(|event| event.seq)
        .collect()
}

/// The first event Intent does not have, with its delivery state.
fn first_undelivered(file: &InterventionFile) -> Option<(u32, Delivery)> {
    file.events
        .iter()
        .find(|event| !event.delivery.is_delivered())
        .map(|event| (event.seq, event.delivery.clone()))
}

/// What a redrive did with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentOutcome {
    /// Not (or no longer) a document Intent refused: nothing done.
    NotRefused,
    /// On Intent now, recorded on its file.
    Published,
    /// Waiting in the ledger again (its file's opening is not on Intent, Intent is
    /// unreachable, …): the re-send run forwards it.
    Waiting(String),
    /// Refused again, for this reason.
    RefusedAgain(String),
    /// Handled meanwhile by another forwarder.
    AlreadyHandled,
    /// Our own store failed mid-way; the re-send run takes it once its claim ends.
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRedrive {
    pub document: LedgerDocument,
    pub outcome: DocumentOutcome,
}

impl DocumentRedrive {
    pub fn done(&self) -> bool {
        matches!(
            self.outcome,
            DocumentOutcome::Published | DocumentOutcome::AlreadyHandled
        )
    }
}

/// What a redrive works with.
pub struct RedrivePorts<'a, S, I, E, R, C> {
    /// The file store, which is also the documents ledger.
    pub store: &'a S,
    pub intent: &'a I,
    pub events: &'a E,
    /// The documents bucket (or the local inbox).
    pub objects: &'a R,
    pub clock: &'a C,
    pub documents: DocumentPolicy,
}

/// What a redrive needs of the store: the files, their deliveries, the documents' ledger
/// and grants (a redriven quitus is forwarded again), and the operator's listings.
pub trait RedriveStore:
    LoadFile
    + FinishDelivery
    + RequeueFailedEvent
    + crate::ports::MarkQuitusReceived
    + DocumentLedger
    + UploadGrants
    + OperatorStore
{
}

impl<S> RedriveStore for S where
    S: LoadFile
        + FinishDelivery
        + RequeueFailedEvent
        + crate::ports::MarkQuitusReceived
        + DocumentLedger
        + UploadGrants
        + OperatorStore
{
}

/// Puts a document Intent refused back to waiting, then forwards it now.
pub async fn redrive_document<S, I, E, R, C>(
    ports: &RedrivePorts<'_, S, I, E, R, C>,
    document: LedgerDocument,
) -> DocumentRedrive
where
    S: RedriveStore,
    I: PublishToIntent + PublishDocument,
    E: PublishDomainEvents,
    R: ReadObject,
    C: Clock,
{
    let outcome = match ports.store.requeue_document(&document.object).await {
        Ok(false) => DocumentOutcome::NotRefused,
        Err(error) => DocumentOutcome::Error(error.to_string()),
        Ok(true) => {
            tracing::info!(object = %document.object.identity(), "document Intent refused put back to waiting by an operator");
            let forward = ForwardPorts {
                ledger: ports.store,
                files: ports.store,
                objects: ports.objects,
                intent: ports.intent,
                events: ports.events,
                clock: ports.clock,
            };
            match forward_document(&forward, ports.documents, &document.object).await {
                Ok(Forwarded::Published(_)) => DocumentOutcome::Published,
                Ok(Forwarded::Pending(why)) => DocumentOutcome::Waiting(why),
                Ok(Forwarded::Rejected(reason)) => {
                    DocumentOutcome::RefusedAgain(reason.as_str().to_string())
                }
                Ok(Forwarded::Duplicate) => DocumentOutcome::AlreadyHandled,
                Err(error) => DocumentOutcome::Error(error.to_string()),
            }
        }
    };
    DocumentRedrive { document, outcome }
}

/// What to redrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveScope {
    /// One file: its refused events, then its refused documents.
    File(FileId),
    /// Every refused event and document.
    AllFailed,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    pub files: Vec<FileRedrive>,
    pub documents: Vec<DocumentRedrive>,
    /// Files that could not be redriven (a store failure), with the reason.
    pub problems: Vec<(FileId, String)>,
}

impl RedriveReport {
    /// Everything asked for is on Intent now (or there was nothing to do).
    pub fn all_done(&self) -> bool {
        self.problems.is_empty()
            && self.files.iter().all(FileRedrive::done)
            && self.documents.iter().all(DocumentRedrive::done)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedriveError {
    #[error("no intervention {} under contract {}", .0.reference, .0.contract_reference)]
    UnknownFile(FileId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Files redriven at once by `--all-failed`.
const REDRIVE_CONCURRENCY: usize = 8;

/// Redrives the files' refused events, each file in order; the files that could not be
/// redriven (a store failure) are in `problems`, unknown files are left out.
pub async fn redrive_files<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    files: Vec<FileId>,
    deadline: Deadline,
    report: &mut RedriveReport,
) where
    S: LoadFile + FinishDelivery + RequeueFailedEvent,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let results: Vec<(FileId, Result<Option<FileRedrive>, StoreError>)> =
        futures_util::stream::iter(files)
            .map(|id| async move {
                let result = redrive_file(store, intent, events, clock, &id, deadline).await;
                (id, result)
            })
            .buffered(REDRIVE_CONCURRENCY)
            .collect()
            .await;
    for (id, result) in results {
        match result {
            Ok(Some(file)) => report.files.push(file),
            Ok(None) => {}
            Err(error) => report.problems.push((id, error.to_string())),
        }
    }
}

/// Redrives the refused events (file by file, each in order), then the refused
/// documents (whose files' openings are then on Intent).
pub async fn redrive<S, I, E, R, C>(
    ports: &RedrivePorts<'_, S, I, E, R, C>,
    scope: &RedriveScope,
    deadline: Deadline,
) -> Result<RedriveReport, RedriveError>
where
    S: RedriveStore,
    I: PublishToIntent + PublishDocument,
    E: PublishDomainEvents,
    R: ReadObject,
    C: Clock,
{
    let (files, mut documents) = match scope {
        RedriveScope::File(id) => {
            let documents: Vec<LedgerDocument> = ports
                .store
                .failed_documents()
                .await?
                .into_iter()
                .filter(|document| document.file.as_ref() == Some(id))
                .collect();
            if documents.is_empty() && ports.store.load_file(id).await?.is_none() {
                return Err(RedriveError::UnknownFile(id.clone()));
            }
            (vec![id.clone()], documents)
        }
        RedriveScope::AllFailed => (
            ports.store.files_with_failed_events().await?,
            ports.store.failed_documents().await?,
        ),
    };
    sort_documents(&mut documents);
    let mut report = RedriveReport::default();
    redrive_files(
        ports.store,
        ports.intent,
        ports.events,
        ports.clock,
        files,
        deadline,
        &mut report,
    )
    .await;
    for document in documents {
        report
            .documents
            .push(redrive_document(ports, document).await);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    //! The redrive, given / when / then, on the in-memory adapters.
    use super::*;
    use crate::in_memory::InMemoryStore;
    use crate::in_memory::tests_support::{
        World, at, given_closed, given_open_file, opening_log, refused as refused_at,
    };
    use crate::ports::DeliveryFailure;
    use crate::ports::SendLease;

    fn world() -> World {
        World::at(at("2026-11-28T20:00:00Z"))
    }

    fn refused() -> Delivery {
        refused_at(at("2026-11-28T19:00:00Z"))
    }

    /// What these tests do with a world: store a file in given delivery states, redrive it.
    trait Redriving {
        async fn file(
            &self,
            reference: &str,
            opening: Delivery,
            closing: Option<Delivery>,
        ) -> FileId;
        async fn redrive(&self, id: &FileId) -> FileRedrive;
    }

    impl Redriving for World {
        /// A stored file whose opening is in `opening` and, if given, a closing after it.
        async fn file(
            &self,
            reference: &str,
            opening: Delivery,
            closing: Option<Delivery>,
        ) -> FileId {
            let id = given_open_file(
                &self.store,
                &opening_log(reference),
                at("2026-11-28T18:00:00Z"),
                opening,
            )
            .await;
            if let Some(closing) = closing {
                given_closed(
                    &self.store,
                    &id,
                    crate::lifecycle::Outcome::Done,
                    at("2026-11-28T18:30:00Z"),
                    closing,
                )
                .await;
            }
            id
        }

        async fn redrive(&self, id: &FileId) -> FileRedrive {
            redrive_file(
                &self.store,
                &self.intent,
                &self.events,
                &self.clock,
                id,
                Deadline::none(),
            )
            .await
            .unwrap()
            .expect("a known file")
        }
    }

    /// The world's store as one operator's redrive sees it while another operator redrives
    /// the same file: its first read of the file gives a copy taken while the event was
    /// still failed, and just before its first write the other redrive runs whole (Intent
    /// applies the event but its answer is lost, and Intent cannot be read: the other
    /// redrive leaves the event pending in doubt).
    struct RacedByAnotherRedrive<'a> {
        world: &'a World,
        stale: std::sync::Mutex<Option<crate::file::InterventionFile>>,
        raced: std::sync::atomic::AtomicBool,
        /// The other redrive's event is refused again (else: its answer is lost).
        other_refused: bool,
    }

    impl RacedByAnotherRedrive<'_> {
        async fn before_writing(&self, id: &FileId) {
            if self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let world = self.world;
            if self.other_refused {
                world.intent.fail_next(DeliveryFailure::refused(
                    1,
                    "Intent rejected the request with HTTP 422",
                ));
            } else {
                world.intent.lose_next_answer();
                world.intent.fail_log_reads(true);
            }
            let other = redrive_file(
                &world.store,
                &world.intent,
                &world.events,
                &world.clock,
                id,
                Deadline::none(),
            )
            .await
            .unwrap()
            .unwrap();
            if self.other_refused {
                assert!(
                    matches!(other.outcome, EventsOutcome::RefusedAgain { .. }),
                    "{other:?}"
                );
            } else {
                assert!(
                    matches!(other.outcome, EventsOutcome::StillPending { .. }),
                    "{other:?}"
                );
            }
            world.intent.fail_log_reads(false);
        }
    }

    impl LoadFile for RacedByAnotherRedrive<'_> {
        async fn load_file(
            &self,
            id: &FileId,
        ) -> Result<Option<crate::file::InterventionFile>, StoreError> {
            let stale = self.stale.lock().unwrap().take();
            match stale {
                Some(stale) => Ok(Some(stale)),
                None => self.world.store.load_file(id).await,
            }
        }
    }

    impl crate::ports::RecordDelivery for RacedByAnotherRedrive<'_> {
        async fn record_delivery(
            &self,
            id: &FileId,
            seq: u32,
            delivery: &Delivery,
            announce: &[crate::DomainEvent],
        ) -> Result<(), StoreError> {
            self.before_writing(id).await;
            self.world
                .store
                .record_delivery(id, seq, delivery, announce)
                .await
        }
    }

    impl crate::ports::RequeueFailedEvent for RacedByAnotherRedrive<'_> {
        async fn requeue_failed_event(
            &self,
            id: &FileId,
            seq: u32,
            pending: &Delivery,
        ) -> Result<bool, StoreError> {
            self.before_writing(id).await;
            self.world
                .store
                .requeue_failed_event(id, seq, pending)
                .await
        }
    }

    crate::in_memory::tests_support::send_lease_of_the_worlds_store!(RacedByAnotherRedrive<'_>);

    impl crate::ports::RecordUnderLease for RacedByAnotherRedrive<'_> {
        async fn record_under_lease(
            &self,
            id: &FileId,
            seq: u32,
            delivery: &Delivery,
            announce: &[crate::DomainEvent],
            until: Timestamp,
        ) -> Result<(), StoreError> {
            self.world
                .store
                .record_under_lease(id, seq, delivery, announce, until)
                .await
        }
    }

    impl crate::ports::Outbox for RacedByAnotherRedrive<'_> {
        async fn unpublished_events(
            &self,
            before: Timestamp,
        ) -> Result<Vec<crate::DomainEvent>, StoreError> {
            self.world.store.unpublished_events(before).await
        }

        async fn clear_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
            self.world.store.clear_published(event_ids).await
        }

        async fn keep(
            &self,
            events: &[crate::DomainEvent],
            now: Timestamp,
        ) -> Result<(), StoreError> {
            self.world.store.keep(events, now).await
        }
    }

    impl FinishDelivery for RacedByAnotherRedrive<'_> {}

    /// Redrives `id` from a copy read now, while another redrive runs whole just before
    /// this one's first write (its event refused again if `other_refused`, else its
    /// answer lost and Intent unreadable).
    async fn redrive_raced(world: &World, id: &FileId, other_refused: bool) -> FileRedrive {
        let store = RacedByAnotherRedrive {
            world,
            stale: std::sync::Mutex::new(world.store.file(id)),
            raced: std::sync::atomic::AtomicBool::new(false),
            other_refused,
        };
        redrive_file(
            &store,
            &world.intent,
            &world.events,
            &world.clock,
            id,
            Deadline::none(),
        )
        .await
        .unwrap()
        .unwrap()
    }

    /// Two operators redrive the same refused opening at once. The first one's copy of the
    /// file still says failed when the other's redrive has already sent it again, Intent
    /// applying it with its answer lost and unreadable after: in doubt. Putting it back to
    /// pending from that old copy must not erase the doubt: Intent is read before the
    /// event is sent again, and has it once.
    #[tokio::test]
    async fn a_redrive_from_an_old_copy_does_not_erase_another_redrives_doubt() {
        let world = world();
        let id = world.file("R-1", refused(), None).await;

        let redrive = redrive_raced(&world, &id, false).await;

        assert_eq!(
            world.intent.accepted().len(),
            1,
            "on Intent once: {redrive:?}"
        );
        assert!(
            world.store.file(&id).unwrap().events[0]
                .delivery
                .is_delivered(),
            "read back and found"
        );
    }

    /// Two operators redrive the same refused opening at once, and Intent refuses the
    /// other's send again. This one's copy shows the earlier refusal: it does not write
    /// over the newer one (whose attempts gave its `DeliveryFailed` its id: sent again from
    /// the copy's count, a second refusal would repeat that id), sends nothing, and tells
    /// the operator the event was refused again, not left to the re-send run (which never
    /// sends a refused event).
    #[tokio::test]
    async fn a_redrive_from_an_old_copy_leaves_another_redrives_refusal_as_it_is() {
        let world = world();
        let id = world.file("R-1", refused(), None).await;

        let redrive = redrive_raced(&world, &id, true).await;

        assert!(
            matches!(redrive.outcome, EventsOutcome::RefusedAgain { seq: 1, .. }),
            "{redrive:?}"
        );
        assert!(redrive.requeued.is_empty(), "{redrive:?}");
        assert!(world.intent.accepted().is_empty());
        let failures: Vec<String> = world
            .events
            .published()
            .iter()
            .filter(|event| event.detail_type() == "DeliveryFailed")
            .map(crate::DomainEvent::event_id)
            .collect();
        assert_eq!(failures.len(), 1, "the other redrive's refusal only");
        assert_eq!(
            world.store.file(&id).unwrap().events[0].delivery.attempts(),
            refused().attempts() + 1,
            "the other redrive's attempt kept"
        );
    }

    #[tokio::test]
    async fn a_refused_opening_goes_again_then_the_closing_behind_it_in_order() {
        let world = world();
        let id = world
            .file("R-1", refused(), Some(Delivery::new_pending()))
            .await;
        let redrive = world.redrive(&id).await;
        assert_eq!(redrive.outcome, EventsOutcome::Delivered);
        assert_eq!(redrive.requeued, [1]);
        assert_eq!(redrive.delivered, [1, 2]);
        let sent: Vec<_> = world.intent.accepted().iter().map(|l| l.event).collect();
        assert_eq!(sent, [crate::Event::Acknowledged, crate::Event::Done]);
        let stored = world.store.file(&id).unwrap();
        assert!(stored.events.iter().all(|e| e.delivery.is_delivered()));
        assert_eq!(stored.events[0].delivery.attempts(), 2, "attempts kept");
        assert_eq!(world.store.lease(&id), None, "lease given back");
    }

    #[tokio::test]
    async fn refused_again_is_failed_again_and_announced() {
        let world = world();
        let id = world.file("R-1", refused(), None).await;
        world.intent.fail_next(DeliveryFailure::refused(
            1,
            "Intent rejected the request with HTTP 400",
        ));
        let redrive = world.redrive(&id).await;
        assert!(
            matches!(&redrive.outcome, EventsOutcome::RefusedAgain { seq: 1, error } if error.contains("400")),
            "{redrive:?}"
        );
        assert!(!redrive.done());
        assert_eq!(
            world.store.file(&id).unwrap().events[0].delivery.attempts(),
            2
        );
        let published = world.events.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].detail_type(), "DeliveryFailed");
    }

    #[tokio::test]
    async fn with_the_lease_held_elsewhere_the_events_are_left_requeued_for_the_resend_run() {
        let world = world();
        let id = world.file("R-1", refused(), None).await;
        let until = world.clock.0 + jiff::SignedDuration::from_mins(3);
        world
            .store
            .take_send_lease(&id, world.clock.0, until)
            .await
            .unwrap();
        let redrive = world.redrive(&id).await;
        assert_eq!(redrive.outcome, EventsOutcome::LeftToResendRun);
        assert!(world.intent.accepted().is_empty(), "nothing sent");
        assert_eq!(
            world.store.file(&id).unwrap().events[0].delivery,
            Delivery::Pending {
                attempts: 1,
                last_error: Some("Intent rejected the request with HTTP 400".into()),
                last_attempt_at: None,
                in_doubt: false,
            },
            "pending again, attempts and last error kept, due at once"
        );
    }

    /// An operator's machine whose clock runs 4 minutes ahead of the re-send run holding
    /// the file's lease (3 minutes) must not take that lease over: it would send the event
    /// the re-send run is sending. The operator's clock is allowed a skew (what AWS still
    /// signs for); a lease is taken over only once it has run out by that much more.
    #[tokio::test]
    async fn an_operator_whose_clock_runs_ahead_does_not_take_a_live_lease_over() {
        let world = world();
        let id = world.file("R-1", refused(), None).await;
        let until = world.clock.0 + jiff::SignedDuration::from_mins(3);
        world
            .store
            .take_send_lease(&id, world.clock.0, until)
            .await
            .unwrap();
        let operator = crate::in_memory::FixedOperatorClock(
            world.clock.0 + jiff::SignedDuration::from_mins(4),
        );

        let redrive = redrive_file(
            &world.store,
            &world.intent,
            &world.events,
            &operator,
            &id,
            Deadline::none(),
        )
        .await
        .unwrap()
        .expect("a file");

        assert_eq!(redrive.outcome, EventsOutcome::LeftToResendRun);
        assert!(world.intent.accepted().is_empty(), "nothing sent");
    }

    #[tokio::test]
    async fn intent_unreachable_leaves_the_event_pending() {
        let world = world();
        let id = world.file("R-1", refused(), None).await;
        world.intent.fail_next(DeliveryFailure::retryable(
            4,
            "Intent is unavailable: HTTP 503",
        ));
        let redrive = world.redrive(&id).await;
        assert!(
            matches!(&redrive.outcome, EventsOutcome::StillPending { seq: 1, .. }),
            "{redrive:?}"
        );
        assert!(
            world.store.file(&id).unwrap().events[0]
                .delivery
                .is_pending()
        );
    }

    #[tokio::test]
    async fn a_delivered_file_is_left_alone_and_an_unknown_one_is_none() {
        let world = world();
        let delivered = Delivery::Delivered {
            attempts: 1,
            delivered_at: world.clock.0,
        };
        let id = world.file("R-1", delivered, None).await;
        let redrive = world.redrive(&id).await;
        assert_eq!(redrive.outcome, EventsOutcome::NothingToDo);
        assert!(redrive.done());
        assert!(world.intent.accepted().is_empty());
        let unknown = redrive_file(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            &FileId::new("NOPE", "contract1"),
            Deadline::none(),
        )
        .await
        .unwrap();
        assert_eq!(unknown, None);
    }

    /// The in-memory store seen through the operator's listings (it knows the files the
    /// test stored).
    struct Listed<'a>(&'a InMemoryStore, Vec<FileId>);

    impl LoadFile for Listed<'_> {
        async fn load_file(&self, id: &FileId) -> Result<Option<InterventionFile>, StoreError> {
            self.0.load_file(id).await
        }
    }

    impl Listed<'_> {
        fn with(&self, keep: fn(&Delivery) -> bool) -> Vec<FileId> {
            self.1
                .iter()
                .filter(|id| {
                    self.0
                        .file(id)
                        .is_some_and(|file| file.events.iter().any(|e| keep(&e.delivery)))
                })
                .cloned()
                .collect()
        }
    }

    impl ListPendingEvents for Listed<'_> {
        async fn files_with_pending_events(&self) -> Result<Vec<FileId>, StoreError> {
            Ok(self.with(Delivery::is_pending))
        }
    }

    impl OperatorStore for Listed<'_> {
        async fn files_with_failed_events(&self) -> Result<Vec<FileId>, StoreError> {
            Ok(self.with(Delivery::is_failed))
        }
        async fn waiting_documents(&self) -> Result<Vec<LedgerDocument>, StoreError> {
            Ok(Vec::new())
        }
        async fn failed_documents(&self) -> Result<Vec<LedgerDocument>, StoreError> {
            Ok(Vec::new())
        }
        async fn requeue_document(&self, _: &ObjectRef) -> Result<bool, StoreError> {
            Ok(false)
        }
    }

    #[tokio::test]
    async fn listings_are_oldest_first_and_tell_what_an_event_waits_behind() {
        let world = world();
        let failed = world
            .file("R-2", refused(), Some(Delivery::new_pending()))
            .await;
        let pending = world.file("R-1", Delivery::new_pending(), None).await;
        let store = Listed(&world.store, vec![failed.clone(), pending]);
        let lines = pending_events(&store).await.unwrap();
        let seen: Vec<_> = lines
            .iter()
            .map(|l| (l.file.reference.as_str(), l.seq, l.behind))
            .collect();
        assert_eq!(seen, [("R-1", 1, None), ("R-2", 2, Some(1))]);
        let lines = failed_events(&store).await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!((&lines[0].file, lines[0].seq), (&failed, 1));
        assert_eq!((lines[0].status, lines[0].event), ("open", "acknowledged"));
        let view = view_file(&store, &failed).await.unwrap().unwrap();
        assert_eq!(view.file.events.len(), 2);
        assert!(
            view_file(&store, &FileId::new("NOPE", "contract1"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn redriving_several_files_reports_each_in_order() {
        let world = world();
        let a = world.file("R-1", refused(), None).await;
        let b = world
            .file("R-2", refused(), Some(Delivery::new_pending()))
            .await;
        let unknown = FileId::new("NOPE", "contract1");
        let mut report = RedriveReport::default();
        redrive_files(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            vec![a.clone(), b.clone(), unknown],
            Deadline::none(),
            &mut report,
        )
        .await;
        assert!(report.all_done(), "{report:?}");
        let files: Vec<_> = report.files.iter().map(|f| f.file.clone()).collect();
        assert_eq!(files, [a, b], "unknown files are left out");
        assert_eq!(world.intent.accepted().len(), 3);
    }
}
