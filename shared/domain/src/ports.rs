//! The ports: one narrow trait per operation, so each use case names exactly what it
//! needs. Adapters (DynamoDB, Intent's HTTP API, EventBridge, in-memory fakes) implement
//! them; futures are `Send` so handlers can run on a multi-threaded runtime.

use crate::documents::{
    DocumentBody, DocumentRecord, DocumentUpload, ObjectInfo, ObjectRef, RejectionReason,
    UploadGrant,
};
use crate::domain_events::DomainEvent;
use crate::file::{Delivery, InterventionFile, NewFile, RecordedEvent};
use crate::lifecycle::{ClosingExpiry, Outcome};
use crate::model::{FileId, InterventionLog};

use jiff::Timestamp;
use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the request. Nothing was written, unless
    /// the store applied a write whose answer was lost past the retries: the same write
    /// again is then refused by its own conditions (a replay), never applied twice.
    #[error("the file store is unavailable: {0}")]
    Unavailable(String),
    /// Too many concurrent writers on the same file; retrying later will do.
    #[error("the file is being changed concurrently; try again")]
    Contention,
    /// A stored item could not be read back into the domain model.
    #[error("a stored file is unreadable: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum OpenFileResult {
    Created,
    /// A file with this identity is already stored; here it is, as it stands.
    AlreadyExists(InterventionFile),
}

/// Stores a new file with its opening event, atomically, unless one with the same identity
/// exists. `announce` goes to the outbox in the same write.
pub trait OpenFile: Send + Sync {
    /// With `sending_until`, the file's send lease is taken in the same write, held by the
    /// caller until then (a new file has no other sender): its opening is delivered next
    /// without another round trip to take the lease and read the file again.
    fn open_file_sending(
        &self,
        file: &NewFile,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> impl Future<Output = Result<OpenFileResult, StoreError>> + Send;

    fn open_file(
        &self,
        file: &NewFile,
        announce: &[DomainEvent],
    ) -> impl Future<Output = Result<OpenFileResult, StoreError>> + Send {
        self.open_file_sending(file, announce, None)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CloseFileResult {
    Closed,
    /// Closed, and the file's send lease taken in the same write until the time asked
    /// (nobody held it, nor ever left it behind).
    ClosedSending,
    /// The file was no longer at the expected version (another writer won); here it is,
    /// as it now stands.
    StateChanged(InterventionFile),
}

/// Closes an open file: appends the closing event and moves the state, atomically, only if
/// the file is still open at `expected_version` (and, for a cancellation, has received no
/// quitus: [`MarkQuitusReceived`] may have marked it since it was read). Every item of the file gets its expiry;
/// `announce` goes to the outbox in the same write.
pub trait CloseFile: Send + Sync {
    /// With `sending_until`, the send lease is also taken in the same write if no sender
    /// holds it and none left it behind (`ClosedSending`); otherwise the file is closed
    /// all the same (`Closed`) and the lease is left to the usual taking. The file's items
    /// expire as `expiry` says (the closing and the file always; the earlier events when
    /// `expiry.earlier_items`).
    #[allow(clippy::too_many_arguments)]
    fn close_file_sending(
        &self,
        id: &FileId,
        expected_version: u32,
        closing: &RecordedEvent,
        outcome: Outcome,
        expiry: ClosingExpiry,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> impl Future<Output = Result<CloseFileResult, StoreError>> + Send;

    /// A partner's closure written without reading the file first (see
    /// [`UnreadClosing`]): applied only to the file it assumes, else nothing is written and
    /// the caller reads the file and decides as usual. A store that cannot tell the file's
    /// state from the write alone keeps this default, which never applies.
    fn close_unread(
        &self,
        closing: UnreadClosing<'_>,
    ) -> impl Future<Output = Result<UnreadClosingResult, StoreError>> + Send {
        let _ = closing;
        std::future::ready(Ok(UnreadClosingResult::NotApplied))
    }

    fn close_file(
        &self,
        id: &FileId,
        expected_version: u32,
        closing: &RecordedEvent,
        outcome: Outcome,
        expiry: ClosingExpiry,
        announce: &[DomainEvent],
    ) -> impl Future<Output = Result<CloseFileResult, StoreError>> + Send {
        self.close_file_sending(
            id,
            expected_version,
            closing,
            outcome,
            expiry,
            announce,
            None,
        )
    }
}

/// A partner's closure decided without reading its file: it holds only for a file still
/// open, the partner's, with nothing but its opening, that opening delivered to Intent and
/// dated no later than the closing, no quitus received, no send lease held or left behind,
/// and whose items already expire from `retention_ends` to the margin after it (so the
/// closing need not write the opening again). Such a file gets `closing` as its event 2,
/// `announce` in its outbox, and the send lease until `sending_until`, in one write.
#[derive(Debug, Clone, Copy)]
pub struct UnreadClosing<'a> {
    pub id: &'a FileId,
    pub owner: &'a crate::file::PartnerId,
    /// Event 2: what the file's closing is when the file is as assumed.
    pub closing: &'a RecordedEvent,
    pub outcome: Outcome,
    /// Closing time + the retention.
    pub retention_ends: Timestamp,
    pub announce: &'a [DomainEvent],
    pub sending_until: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UnreadClosingResult {
    /// Closed, the send lease held until the time asked: the file as it now stands (its
    /// opening delivered, the closing pending).
    ClosedSending(InterventionFile),
    /// Nothing written: the file is not as assumed (or the store does not close unread).
    NotApplied,
    /// Nothing written: the file is not as assumed, and here it is as it stands, whole (the
    /// store's refusal gave it back): the caller decides on it without reading it.
    Refused(InterventionFile),
}

/// What marking a file for a quitus found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitusMark {
    /// Marked (or marked already): a cancellation at reception can no longer win.
    Marked,
    /// The file was canceled at reception first.
    FileCanceled,
    /// No such file (any more).
    NoFile,
}

/// Marks a file as having received a quitus (`quitus_received`), before the quitus is
/// uploaded, in one conditional write unless the file was canceled: the closing write of
/// a cancellation refuses a marked file, so of a cancellation and a quitus racing, exactly
/// one wins, and a canceled file never gets a quitus on Intent.
pub trait MarkQuitusReceived: Send + Sync {
    fn mark_quitus_received(
        &self,
        id: &FileId,
    ) -> impl Future<Output = Result<QuitusMark, StoreError>> + Send;
}

/// Reads a file and its whole event log.
pub trait LoadFile: Send + Sync {
    fn load_file(
        &self,
        id: &FileId,
    ) -> impl Future<Output = Result<Option<InterventionFile>, StoreError>> + Send;
}

/// Reads several files at once (a batch of the on-call closer's stragglers), each as
/// [`LoadFile::load_file`] reads it, in the order asked, each with its own outcome (one
/// unreadable file does not keep the others from being read). A store that reads many
/// items per call overrides it; the default reads them one by one.
pub trait LoadFiles: LoadFile {
    fn load_files(
        &self,
        ids: &[FileId],
    ) -> impl Future<Output = Vec<Result<Option<InterventionFile>, StoreError>>> + Send {
        futures_util::future::join_all(ids.iter().map(|id| self.load_file(id)))
    }
}

/// Records where one event stands with Intent (never over a delivered one); `announce`
/// goes to the outbox in the same write.
pub trait RecordDelivery: Send + Sync {
    fn record_delivery(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// An operator's redrive of an event Intent refused for good: puts event `seq` back to
/// `pending` (built from the operator's copy: its attempts kept), only while it is still
/// the failure that copy shows: failed, after as many attempts. A copy of the file read
/// earlier must not write over what a sender recorded since (another redrive's attempt in
/// doubt, a delivery, a new refusal whose attempts give its `DeliveryFailed` its id).
/// Whether it was put back.
pub trait RequeueFailedEvent: Send + Sync {
    fn requeue_failed_event(
        &self,
        id: &FileId,
        seq: u32,
        pending: &Delivery,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// An event recorded delivered that Intent no longer holds (a closing its listing still
/// shows open) and refused for good when the reconciliation sent it again: recorded
/// `failed` (listed for an operator's redrive, counted in the backlog, not sent again at
/// every period's end), with `announce` in the outbox, only while it is still recorded
/// delivered. Whether it was recorded.
pub trait RecordLostEventRefused: Send + Sync {
    fn record_lost_event_refused(
        &self,
        id: &FileId,
        seq: u32,
        failed: &Delivery,
        announce: &[DomainEvent],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The latest on-call period whose reconciliation with Intent ran to its end: a period's
/// end that could not reconcile (Intent's open list unreadable, its run cut off at each of
/// its tries) is reconciled by a later re-send run of that period, once. A reconciliation
/// checks all that Intent shows open, so a later period's covers the earlier ones; the
/// note only moves forward (a late run of an earlier period does not take it back).
pub trait PeriodReconciliations: Send + Sync {
    /// Whether `period`, or a later one, was reconciled to its end.
    fn period_reconciled(
        &self,
        period: &crate::calendar::OnCallPeriod,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes `period` reconciled, unless a later one is noted already.
    fn mark_period_reconciled(
        &self,
        period: &crate::calendar::OnCallPeriod,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Domain events written with the state changes that cause them (the outbox), until they
/// are on the bus: published by the request that made the change, then by the re-send
/// run for any left behind (a crash between the write and the publication).
pub trait Outbox: Send + Sync {
    /// Events written before `before` and not yet known to be published, oldest first.
    fn unpublished_events(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<Vec<DomainEvent>, StoreError>> + Send;

    /// These events (by `event_id`) are on the bus.
    fn clear_published(
        &self,
        event_ids: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes `events` into the outbox on their own, as written at `now`: events tied to
    /// no state change (a run's summary) that the bus did not take, for the re-send run to
    /// publish.
    fn keep(
        &self,
        events: &[DomainEvent],
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The end of a delivery under the send lease: the last outcome recorded, the lease given
/// back, and the domain events already on the bus taken out of the outbox, in one write
/// where the store can (DynamoDB: one transaction); otherwise one after the other.
pub trait FinishDelivery: RecordUnderLease + Outbox {
    /// Records `delivery` of event `seq` (with `announce` in the outbox), gives back the
    /// lease held until `until` and clears `published` from the outbox. An error means the
    /// outcome was not recorded (the lease is then kept: it ends by itself).
    ///
    /// A lease taken over meanwhile (it ran out while this sender was held up after its
    /// call): the taker read Intent back and records what it found, so this sender's
    /// outcome is stale and is not written over the taker's; only `published` is cleared.
    #[allow(clippy::too_many_arguments)]
    fn finish_delivery(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
        until: Timestamp,
        published: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            self.record_under_lease(id, seq, delivery, announce, until)
                .await?;
            if let Err(error) = self.release_send_lease(id, until).await {
                tracing::warn!(%error, "could not release the send lease; it ends by itself");
            }
            if !published.is_empty()
                && let Err(error) = self.clear_published(published).await
            {
                tracing::warn!(%error, "published domain events left in the outbox; they will be published again");
            }
            Ok(())
        }
    }
}

/// [`RecordDelivery::record_delivery`] by the holder of the lease taken until `until`:
/// recorded only while that lease is still the file's (run out or not, but not taken
/// over); else the taker's outcome stands and nothing is written (`Ok`).
pub trait RecordUnderLease: RecordDelivery + SendLease {
    fn record_under_lease(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
        until: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What taking the send lease gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseGrant {
    /// Taken; nobody held it.
    Taken,
    /// Taken over from a holder whose lease ran out without being given back: that sender
    /// died or lost the store mid-delivery, so what it sent is in doubt (Intent is read
    /// before anything pending is sent again).
    TakenOver,
    /// Another sender holds it right now.
    HeldElsewhere,
}

/// The right to send a file's events to Intent: one sender at a time per file, so two
/// senders (an API request and a re-send run) cannot send the same event twice or out of
/// order. A lease ends by itself at `until` if its holder dies.
pub trait SendLease: Send + Sync {
    /// Takes the lease until `until`.
    fn take_send_lease(
        &self,
        id: &FileId,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<LeaseGrant, StoreError>> + Send;

    /// Gives back the lease taken until `until` (another holder's is left alone).
    fn release_send_lease(
        &self,
        id: &FileId,
        until: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why Intent does not have an event (or a document).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} (after {attempts} attempt(s))")]
pub struct DeliveryFailure {
    /// True when sending again later may succeed (Intent down, throttling, timeouts, an
    /// intervention Intent does not know yet, credentials refused): only a refusal of the
    /// content itself is final.
    pub retryable: bool,
    /// The request may have reached Intent and been applied (a timeout or a connection
    /// lost after it was sent): Intent must be read before sending it again.
    pub outcome_unknown: bool,
    /// Intent refused it as conflicting with what it holds (HTTP 409): it may already be
    /// there, which a read of Intent tells.
    pub conflict: bool,
    /// A document whose body was gone when the upload opened it (its object version
    /// deleted since it was checked): nothing reached Intent, and it is the object's fault,
    /// not a refusal by Intent.
    pub source_missing: bool,
    pub attempts: u32,
    /// What went wrong, without personal data.
    pub detail: String,
}

impl DeliveryFailure {
    /// Worth another try later; nothing reached Intent.
    pub fn retryable(attempts: u32, detail: impl Into<String>) -> Self {
        Self {
            retryable: true,
            outcome_unknown: false,
            conflict: false,
            source_missing: false,
            attempts,
            detail: detail.into(),
        }
    }

    /// Worth another try later, but Intent may have applied it: read before re-sending.
    pub fn outcome_unknown(attempts: u32, detail: impl Into<String>) -> Self {
        Self {
            outcome_unknown: true,
            ..Self::retryable(attempts, detail)
        }
    }

    /// Intent refused the content for good.
    pub fn refused(attempts: u32, detail: impl Into<String>) -> Self {
        Self {
            retryable: false,
            ..Self::retryable(attempts, detail)
        }
    }

    /// The document's body was gone when the upload opened it.
    pub fn source_missing(attempts: u32, detail: impl Into<String>) -> Self {
        Self {
            source_missing: true,
            ..Self::refused(attempts, detail)
        }
    }

    /// Intent refused it as a conflict (409): it may hold it already.
    pub fn conflict(attempts: u32, detail: impl Into<String>) -> Self {
        Self {
            conflict: true,
            ..Self::refused(attempts, detail)
        }
    }
}

/// Publishes the events of an intervention's log to Intent, effectively once: after an
/// attempt whose outcome is unknown, Intent is read before sending again.
pub trait PublishToIntent: Send + Sync {
    /// Sends one event. On success, returns the number of HTTP attempts it took.
    fn publish_log(
        &self,
        log: &InterventionLog,
    ) -> impl Future<Output = Result<u32, DeliveryFailure>> + Send;

    /// Whether Intent's log of the intervention holds this event (same status, event and
    /// eventDate): `GET operations/v2/operations/{reference}?contractReference=`.
    /// An intervention Intent does not know holds nothing (`Ok(false)`).
    fn log_is_on_intent(
        &self,
        log: &InterventionLog,
    ) -> impl Future<Output = Result<bool, DeliveryFailure>> + Send;

    /// The longest one of these calls can take, its retries, their pauses and a token
    /// renewal included: a sender holding a file's send lease starts an event only while
    /// the lease has room for that event's calls, so no event is still in flight when the
    /// lease runs out (another sender could then send it too). Fakes answer at once.
    fn longest_call(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Events the bus did not take. It took every other event of the publication: those
/// leave the outbox, these stay there for the next run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} domain event(s) could not be published: {detail}", not_taken.len())]
pub struct DomainEventError {
    /// The `eventId`s of the events not taken.
    pub not_taken: Vec<String>,
    /// Why (error codes and `eventId`s: never an event's detail).
    pub detail: String,
}

impl DomainEventError {
    /// None of `events` was taken (the whole publication failed).
    pub fn none_taken(events: &[crate::DomainEvent], detail: impl Into<String>) -> Self {
        Self {
            not_taken: events.iter().map(crate::DomainEvent::event_id).collect(),
            detail: detail.into(),
        }
    }

    /// How many events were not taken.
    pub fn failed(&self) -> usize {
        self.not_taken.len()
    }

    /// The `eventId`s of `events` the bus took, after a publication of them ended as
    /// `published`: all of them, or all but those its error names.
    pub fn taken_of(
        published: &Result<(), DomainEventError>,
        events: &[crate::DomainEvent],
    ) -> Vec<String> {
        let not_taken: &[String] = match published {
            Ok(()) => &[],
            Err(error) => &error.not_taken,
        };
        events
            .iter()
            .map(crate::DomainEvent::event_id)
            .filter(|id| !not_taken.contains(id))
            .collect()
    }
}

/// Tells other parties what happened.
pub trait PublishDomainEvents: Send + Sync {
    fn publish(
        &self,
        events: &[DomainEvent],
    ) -> impl Future<Output = Result<(), DomainEventError>> + Send;

    /// True when `publish` only queues the events: they are on the bus when the queue is
    /// sent, and it is the queue that takes them out of the outbox then (never the caller
    /// on `publish`'s return).
    fn queues(&self) -> bool {
        false
    }
}

/// Why the documents bucket could not give an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The object (or that version of it) does not exist any more.
    #[error("the object no longer exists")]
    Missing,
    #[error("the documents bucket is unavailable: {0}")]
    Unavailable(String),
}

/// Reads objects of the documents bucket.
pub trait ReadObject: Send + Sync {
    fn object_info(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<ObjectInfo, SourceError>> + Send;

    /// The first `count` bytes (a ranged read), to check the file's signature.
    fn first_bytes(
        &self,
        object: &ObjectRef,
        count: u64,
    ) -> impl Future<Output = Result<Vec<u8>, SourceError>> + Send;

    /// The whole object as a stream of chunks, read afresh on every call.
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<DocumentBody, SourceError>> + Send;
}

/// Opens a document's body again for each upload attempt.
pub trait OpenDocument: Send + Sync {
    fn open_body(&self) -> impl Future<Output = Result<DocumentBody, SourceError>> + Send;
}

/// Intent's answer to an accepted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDocument {
    pub attempts: u32,
    pub intent_document_id: Option<String>,
}

/// Publishes a document to Intent (multipart upload, streamed), effectively once.
pub trait PublishDocument: Send + Sync {
    /// Uploads `body`, its attempts ending within `within` (the time the object's claim
    /// leaves: past it, another forwarder may take the object and upload it again). Cut
    /// off then, the upload may have reached Intent (`outcome_unknown`).
    fn publish_document<O: OpenDocument>(
        &self,
        upload: &DocumentUpload,
        body: &O,
        within: std::time::Duration,
    ) -> impl Future<Output = Result<PublishedDocument, DeliveryFailure>> + Send;

    /// The document Intent already holds for this upload, if any: read after an upload
    /// whose outcome is unknown, before uploading again. Intent's documents of the
    /// intervention matched on contract, file name and size may also be the file's
    /// documents already recorded under that name and size (`earlier`: their Intent ids,
    /// `None` where Intent's answer gave none), which are other uploads: those listed under
    /// an id of `earlier` are not this one, and of the others, as many as `earlier` has
    /// `None`s are taken for those. This one is there only if more are left.
    fn find_document(
        &self,
        upload: &DocumentUpload,
        size: u64,
        earlier: &[Option<&str>],
    ) -> impl Future<Output = Result<Option<PublishedDocument>, DeliveryFailure>> + Send;
}

/// One claim on an object version, made by the ledger when it grants the claim: every
/// later write of the claimer names it, and passes only while that very claim holds the
/// object. A claimer whose lease ran out and was taken over (by another process, or by
/// another task of the same one) cannot write over the claim that took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(String);

impl ClaimToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ledger's rule for a write under this claim, the same in every adapter: the
    /// object is in progress, claimed by this very token.
    pub fn holds(&self, in_progress: bool, claimed_by: Option<&ClaimToken>) -> bool {
        in_progress && claimed_by == Some(self)
    }
}

/// The ledger's word on an object version this forwarder now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedObject {
    /// This claim: the ledger writes that follow name it.
    pub token: ClaimToken,
    /// An earlier upload of it may have reached Intent (a forwarder died holding it, or
    /// lost the answer): Intent's documents are read before uploading again.
    pub in_doubt: bool,
    /// Upload attempts made so far.
    pub attempts: u32,
    /// When the ledger first saw it.
    pub first_seen_at: Timestamp,
}

/// What the ledger knows of an object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentClaim {
    /// This forwarder now holds the object (until the lease ends).
    Claimed(ClaimedObject),
    AlreadyPublished,
    AlreadyRejected,
    /// Another forwarder holds it right now.
    HeldElsewhere,
}

/// Where an object version stands in a documents ledger, as an adapter reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerStatus {
    /// Held by a forwarder until `lease_until`.
    InProgress {
        lease_until: Option<Timestamp>,
    },
    /// Waiting for the re-send run; `in_doubt` if an upload may have gone out.
    Pending {
        in_doubt: bool,
    },
    Published,
    Rejected,
}

impl DocumentClaim {
    /// The ledger's rule for a claim at `now`, the same in every adapter: `Ok(in_doubt)`
    /// when the object may be claimed (in doubt if a holder's lease ran out mid-upload,
    /// or it waits in doubt), else the answer to give.
    pub fn decide(current: Option<LedgerStatus>, now: Timestamp) -> Result<bool, DocumentClaim> {
        match current {
            None => Ok(false),
            Some(LedgerStatus::Published) => Err(DocumentClaim::AlreadyPublished),
            Some(LedgerStatus::Rejected) => Err(DocumentClaim::AlreadyRejected),
            Some(LedgerStatus::InProgress { lease_until })
                if lease_until.is_some_and(|held| held >= now) =>
            {
                Err(DocumentClaim::HeldElsewhere)
            }
            Some(LedgerStatus::InProgress { .. }) => Ok(true),
            Some(LedgerStatus::Pending { in_doubt }) => Ok(in_doubt),
        }
    }
}

/// Why a document is waiting, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentWait {
    pub file: Option<FileId>,
    pub attempts: u32,
    pub last_error: String,
    pub last_attempt_at: Timestamp,
    pub in_doubt: bool,
}

/// Records, once per object version, what became of a document.
pub trait DocumentLedger: Send + Sync {
    fn claim_document(
        &self,
        object: &ObjectRef,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> impl Future<Output = Result<DocumentClaim, StoreError>> + Send;

    /// Gives a claimed object back (a store failure: the next delivery takes it); nothing
    /// to do if `claim` no longer holds it.
    fn release_document(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Keeps the object pending (its file's opening is not on Intent yet, or Intent is
    /// unreachable): the re-send run forwards it later, from the bucket again. An error
    /// if `claim` no longer holds it.
    fn record_pending(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        wait: &DocumentWait,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the object published and adds the document to its file's history,
    /// atomically (with `announce` in the outbox); both expire at `expires_at`. An error,
    /// and nothing written, if `claim` no longer holds the object.
    #[allow(clippy::too_many_arguments)]
    fn record_published(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        file: &InterventionFile,
        record: &DocumentRecord,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the object rejected for good (with `announce` in the outbox), only while
    /// `claim` holds it: `true` when recorded; `false` and nothing written (nothing to
    /// announce) when it no longer does (another claim took it over; or it was published
    /// or rejected meanwhile).
    #[allow(clippy::too_many_arguments)]
    fn record_rejected(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        reason: RejectionReason,
        detail: &str,
        now: Timestamp,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What recording an upload grant came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRecorded {
    Recorded,
    /// No such file, or not the grant's partner's: nothing recorded.
    NoFile,
    /// The file was canceled at reception: nothing recorded.
    FileCanceled,
}

/// Partners' upload grants: written by the upload route before it hands out a URL, read
/// by the forwarder before it forwards a partner's object.
pub trait UploadGrants: Send + Sync {
    /// Records the grant (kept until `expires_at`, like the documents it lets in) if its
    /// file exists, is the grant's partner's and is not canceled, checked by the same
    /// atomic write: a cancellation racing the grant is either written first (the grant is
    /// refused) or after it.
    fn record_upload_grant(
        &self,
        grant: &UploadGrant,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<GrantRecorded, StoreError>> + Send;

    /// The grant recorded for this object key, if any.
    fn upload_grant(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<UploadGrant>, StoreError>> + Send;
}

/// An upload the partner makes itself, straight to the documents bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUpload {
    pub method: String,
    pub url: String,
    /// Headers the upload must carry exactly as given (they are part of the signature).
    pub headers: Vec<(String, String)>,
}

/// Signs an upload of exactly `size` bytes of `application/pdf` to `key`, valid for
/// `lifetime`. Local work (no request): the storage checks the signature on upload.
pub trait PresignUpload: Send + Sync {
    fn presign_upload(
        &self,
        key: &str,
        size: u64,
        lifetime: std::time::Duration,
    ) -> impl Future<Output = Result<PresignedUpload, String>> + Send;
}

/// A document waiting in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDocument {
    pub object: ObjectRef,
    pub file: Option<FileId>,
    /// When the ledger first saw it.
    pub first_seen_at: Option<Timestamp>,
    pub attempts: u32,
    pub last_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// Documents waiting to be forwarded (an index query, never a scan).
pub trait ListPendingDocuments: Send + Sync {
    fn pending_documents(
        &self,
    ) -> impl Future<Output = Result<Vec<PendingDocument>, StoreError>> + Send;
}

/// How much is waiting for Intent, for the metrics and the period's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Events Intent has not acknowledged yet.
    pub pending_events: usize,
    /// When the oldest of them was recorded.
    pub oldest_pending_since: Option<Timestamp>,
    /// Events Intent refused for good, waiting for an operator.
    pub failed_events: usize,
    /// Documents waiting to be forwarded.
    pub pending_documents: usize,
    /// When the oldest of them was first seen (dropped in the bucket, or its S3 event
    /// first handled).
    pub oldest_pending_document_since: Option<Timestamp>,
    /// Documents Intent refused for good, waiting for an operator's redrive.
    pub rejected_documents: usize,
    /// Domain events in the outbox, not on the bus yet (those of the last minute, being
    /// published by their requests, included).
    pub unpublished_events: usize,
    /// When the oldest of them was written.
    pub oldest_unpublished_since: Option<Timestamp>,
}

impl Backlog {
    /// Counts the waiting documents (for stores that list them).
    pub fn count_documents<'a>(&mut self, waiting: impl IntoIterator<Item = &'a PendingDocument>) {
        for document in waiting {
            self.pending_documents += 1;
            if let Some(seen) = document.first_seen_at {
                self.oldest_pending_document_since = Some(
                    self.oldest_pending_document_since
                        .map_or(seen, |oldest| oldest.min(seen)),
                );
            }
        }
    }

    /// Counts the outbox's entries, given when each was written (for stores that read
    /// them all).
    pub fn count_unpublished(&mut self, written_at: impl IntoIterator<Item = Timestamp>) {
        for at in written_at {
            self.unpublished_events += 1;
            self.oldest_unpublished_since = Some(
                self.oldest_unpublished_since
                    .map_or(at, |oldest| oldest.min(at)),
            );
        }
    }

    /// Counts the events' delivery states (for stores that read every event).
    pub fn count_events<'a>(&mut self, events: impl IntoIterator<Item = &'a RecordedEvent>) {
        for event in events {
            match event.delivery {
                Delivery::Pending { .. } => {
                    self.pending_events += 1;
                    self.oldest_pending_since = Some(
                        self.oldest_pending_since
                            .map_or(event.recorded_at, |oldest| oldest.min(event.recorded_at)),
                    );
                }
                Delivery::Failed { .. } => self.failed_events += 1,
                Delivery::Delivered { .. } => {}
            }
        }
    }
}

pub trait ReadBacklog: Send + Sync {
    fn backlog(&self) -> impl Future<Output = Result<Backlog, StoreError>> + Send;
}

/// Files still open, for the on-call closer (an index query, never a scan).
pub trait ListOpenFiles: Send + Sync {
    /// Every open file whose opening `eventDate` is before `before`.
    fn open_files_opened_before(
        &self,
        before: Timestamp,
    ) -> impl Future<Output = Result<Vec<FileId>, StoreError>> + Send;
}

/// Files with events Intent has not acknowledged yet (an index query, never a scan).
pub trait ListPendingEvents: Send + Sync {
    fn files_with_pending_events(
        &self,
    ) -> impl Future<Output = Result<Vec<FileId>, StoreError>> + Send;
}

/// One intervention as Intent lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubIntervention {
    pub reference: String,
    pub contract_reference: String,
    pub status: String,
    pub event: String,
}

/// Intent's open interventions, as far as they could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenListing {
    pub interventions: Vec<HubIntervention>,
    /// False when the deadline came before the last page.
    pub complete: bool,
}

/// Reads what Intent itself shows as still open.
pub trait ListOpenOnIntent: Send + Sync {
    /// Page after page, stopping early (incomplete) once `deadline` is reached.
    fn list_open_interventions(
        &self,
        deadline: crate::deadline::Deadline,
    ) -> impl Future<Output = Result<OpenListing, DeliveryFailure>> + Send;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// How far this clock may be off the clocks of the other processes sharing the send
    /// leases and document claims (the functions run on AWS's synchronised clocks: none).
    /// A process with an allowance takes a lease or a claim over only once it has run out
    /// by that much more, and holds its own that much longer, so that one sender at a time
    /// holds while its clock is off by less.
    fn skew_allowance(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::ZERO
    }
}

/// The skew an operator's machine is allowed ([`Clock::skew_allowance`]): what AWS still
/// signs requests for (SigV4 refuses a request dated more than 15 minutes off), so any
/// clock AWS answers is covered.
pub const OPERATOR_SKEW_ALLOWANCE: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);

/// The wall clock of a machine whose clock may be off (an operator's): see
/// [`OPERATOR_SKEW_ALLOWANCE`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OperatorClock;

impl Clock for OperatorClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn skew_allowance(&self) -> jiff::SignedDuration {
        OPERATOR_SKEW_ALLOWANCE
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still (a run driven through a chosen instant: tests, and the
/// benchmark's harness, which is built without the in-memory adapters).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
