//! In-memory adapters for unit tests of the use cases (compiled for the domain's own tests
//! and, with the `in-memory` feature, for other crates' tests; never in a release binary):
//! a file store that is also the documents ledger and the outbox ([`InMemoryStore`]), a
//! documents bucket ([`InMemoryObjects`]), a scripted Intent for events, documents and its
//! open list ([`RecordingIntent`]), a bus ([`RecordingEvents`]) and a clock
//! ([`FixedClock`]). The real adapters are tested against DynamoDB Local, moto and the
//! Intent simulator.

use crate::deadline::Deadline;
use crate::documents::{
    ByteChunks, DocumentBody, DocumentRecord, DocumentUpload, ObjectInfo, ObjectRef,
    RejectionReason, UploadGrant,
};
use crate::domain_events::DomainEvent;
use crate::file::{Delivery, InterventionFile, NewFile, RecordedEvent};
use crate::lifecycle::{FileState, Outcome};
use crate::model::{Event, FileId, InterventionLog, Status};
use crate::ports::{
    Backlog, ClaimToken, ClaimedObject, CloseFile, CloseFileResult, DeliveryFailure, DocumentClaim,
    DocumentLedger, DocumentWait, DomainEventError, FinishDelivery, HubIntervention, LeaseGrant,
    LedgerStatus, ListOpenFiles, ListOpenOnIntent, ListPendingDocuments, ListPendingEvents,
    LoadFile, OpenDocument, OpenFile, OpenFileResult, OpenListing, PendingDocument, PresignUpload,
    PresignedUpload, PublishDocument, PublishDomainEvents, PublishToIntent, PublishedDocument,
    ReadBacklog, ReadObject, RecordDelivery, SendLease, SourceError, StoreError, UploadGrants,
};
use bytes::Bytes;
use futures_util::StreamExt;
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
    loading_fails: Mutex<bool>,
    /// The outbox: (written at, event), in write order.
    outbox: Mutex<Vec<(Timestamp, DomainEvent)>>,
    /// The documents ledger, by object identity.
    ledger: Mutex<HashMap<String, LedgerEntry>>,
    /// While set, the listings answer from these files (an index lagging behind).
    stale_listings: Mutex<Option<Vec<InterventionFile>>>,
    /// Partners' upload grants, by object key.
    /// Each grant with its expiry.
    grants: Mutex<HashMap<String, (UploadGrant, Timestamp)>>,
    /// Files whose closing write the store refuses (unavailable for them).
    closings_refused: Mutex<Vec<FileId>>,
    /// The end of the latest period reconciled with Intent to its end.
    reconciled_period: Mutex<Option<Timestamp>>,
}

/// Where an object version stands in the in-memory documents ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentState {
    /// Held by a forwarder until its lease ends.
    InProgress,
    /// Waiting for the re-send run.
    Pending,
    Published,
    Rejected(RejectionReason),
}

/// One object version in the documents ledger.
#[derive(Debug, Clone)]
struct LedgerEntry {
    object: ObjectRef,
    state: DocumentState,
    lease_until: Option<Timestamp>,
    file: Option<FileId>,
    attempts: u32,
    last_error: Option<String>,
    last_attempt_at: Option<Timestamp>,
    in_doubt: bool,
    first_seen_at: Timestamp,
    /// The claim that last took it (the writes under a claim check it still holds).
    claimed_by: Option<ClaimToken>,
}

impl LedgerEntry {
    fn first_seen(object: &ObjectRef, now: Timestamp) -> Self {
        Self {
            object: object.clone(),
            state: DocumentState::Pending,
            lease_until: None,
            file: None,
            attempts: 0,
            last_error: None,
            last_attempt_at: None,
            in_doubt: false,
            first_seen_at: now,
            claimed_by: None,
        }
    }

    /// Still in progress under `claim`.
    fn held_by(&self, claim: &ClaimToken) -> bool {
        claim.holds(
            self.state == DocumentState::InProgress,
            self.claimed_by.as_ref(),
        )
    }
}

impl InMemoryStore {
    pub fn set_unavailable(&self, unavailable: bool) {
        *self.unavailable.lock().unwrap() = unavailable;
    }

    /// Closing this file fails: the store is unavailable for that write.
    pub fn refuse_closing_of(&self, id: &FileId) {
        self.closings_refused.lock().unwrap().push(id.clone());
    }

    /// Recording a delivery state fails (the store is lost after Intent answered).
    pub fn set_recording_fails(&self, fails: bool) {
        *self.recording_fails.lock().unwrap() = fails;
    }

    /// Reading a file fails (the store lost for reads only).
    pub fn set_loading_fails(&self, fails: bool) {
        *self.loading_fails.lock().unwrap() = fails;
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

    /// Where an object version stands in the documents ledger (`None`: never seen).
    pub fn document_state(&self, object: &ObjectRef) -> Option<DocumentState> {
        self.ledger
            .lock()
            .unwrap()
            .get(&object.identity())
            .map(|entry| entry.state)
    }

    /// While `stale` is set, the listings (open files, files with pending events) answer
    /// from the files as they stand now, like an eventually consistent index lagging
    /// behind the table: a file closed meanwhile is still listed open.
    pub fn set_stale_listings(&self, stale: bool) {
        let snapshot = stale.then(|| self.files.lock().unwrap().values().cloned().collect());
        *self.stale_listings.lock().unwrap() = snapshot;
    }

    /// The files as the listings see them, in identity order.
    fn listed_files(&self) -> Vec<InterventionFile> {
        let mut files = match &*self.stale_listings.lock().unwrap() {
            Some(snapshot) => snapshot.clone(),
            None => self.files.lock().unwrap().values().cloned().collect(),
        };
        files.sort_by(|a, b| a.id.cmp(&b.id));
        files
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
    /// Writes each event in the outbox; one already there under its id is written over
    /// (as the real stores' items, keyed by `eventId`), in its place and with its time.
    fn write_outbox(&self, announce: &[DomainEvent], at: Timestamp) {
        let mut outbox = self.outbox.lock().unwrap();
        for event in announce {
            let id = event.event_id();
            match outbox.iter_mut().find(|(_, kept)| kept.event_id() == id) {
                Some((_, kept)) => *kept = event.clone(),
                None => outbox.push((at, event.clone())),
            }
        }
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

    /// The object keys upload grants were recorded for.
    pub fn grant_keys(&self) -> Vec<String> {
        self.grants.lock().unwrap().keys().cloned().collect()
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

    async fn keep(&self, events: &[DomainEvent], now: Timestamp) -> Result<(), StoreError> {
        self.check_available()?;
        self.write_outbox(events, now);
        Ok(())
    }
}

/// Event `seq` of file `id`, if both are there.
fn event_mut<'a>(
    files: &'a mut HashMap<FileId, InterventionFile>,
    id: &FileId,
    seq: u32,
) -> Option<&'a mut RecordedEvent> {
    files
        .get_mut(id)
        .and_then(|file| file.events.iter_mut().find(|event| event.seq == seq))
}

impl OpenFile for InMemoryStore {
    async fn open_file_sending(
        &self,
        file: &NewFile,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> Result<OpenFileResult, StoreError> {
        self.check_available()?;
        let mut files = self.files.lock().unwrap();
        let id = file.id();
        if let Some(existing) = files.get(&id).filter(|f| !f.has_expired(Timestamp::now())) {
            return Ok(OpenFileResult::AlreadyExists(existing.clone()));
        }
        self.write_outbox(announce, file.opening.recorded_at);
        if let Some(until) = sending_until {
            self.leases.lock().unwrap().insert(id.clone(), until);
        }
        files.insert(id, file.opened());
        Ok(OpenFileResult::Created)
    }
}

impl CloseFile for InMemoryStore {
    async fn close_file_sending(
        &self,
        id: &FileId,
        expected_version: u32,
        closing: &RecordedEvent,
        outcome: Outcome,
        expiry: crate::lifecycle::ClosingExpiry,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> Result<CloseFileResult, StoreError> {
        self.check_available()?;
        if self.closings_refused.lock().unwrap().contains(id) {
            return Err(StoreError::Unavailable(format!(
                "the closing of {id} was refused"
            )));
        }
        let mut files = self.files.lock().unwrap();
        let file = files
            .get_mut(id)
            .ok_or_else(|| StoreError::Corrupt(format!("no file {id}")))?;
        let canceled_too_late =
            outcome == Outcome::Canceled && file.activity_since_opening().is_some();
        if file.state != FileState::Open || file.version() != expected_version || canceled_too_late
        {
            return Ok(CloseFileResult::StateChanged(file.clone()));
        }
        file.state = FileState::Closed(outcome);
        file.events.push(closing.clone());
        file.expires_at = Some(expiry.at);
        self.write_outbox(announce, closing.recorded_at);
        // The lease comes with the write only if no sender holds it nor left it behind.
        let mut leases = self.leases.lock().unwrap();
        match sending_until {
            Some(until) if !leases.contains_key(id) => {
                leases.insert(id.clone(), until);
                Ok(CloseFileResult::ClosedSending)
            }
            _ => Ok(CloseFileResult::Closed),
        }
    }

    /// As DynamoDB's single conditional write: the file checked as the closing assumes it,
    /// then closed with the lease, atomically (under the files' lock).
    async fn close_unread(
        &self,
        closing: crate::ports::UnreadClosing<'_>,
    ) -> Result<crate::ports::UnreadClosingResult, StoreError> {
        use crate::ports::UnreadClosingResult::{ClosedSending, NotApplied, Refused};
        self.check_available()?;
        let id = closing.id;
        if self.closings_refused.lock().unwrap().contains(id) {
            return Err(StoreError::Unavailable(format!(
                "the closing of {id} was refused"
            )));
        }
        let mut files = self.files.lock().unwrap();
        // An expired file is gone, as for a read.
        let Some(file) = files
            .get_mut(id)
            .filter(|file| !file.has_expired(Timestamp::now()))
        else {
            return Ok(NotApplied);
        };
        let mut leases = self.leases.lock().unwrap();
        let latest = closing
            .retention_ends
            .checked_add(jiff::SignedDuration::from_hours(
                24 * crate::lifecycle::OPEN_FILE_EXPIRY_MARGIN_DAYS,
            ))
            .unwrap_or(Timestamp::MAX);
        let as_assumed = file.state == FileState::Open
            && file.version() == 1
            && &file.owner == closing.owner
            && !file.quitus_received
            && file.documents.is_empty()
            && !leases.contains_key(id)
            && file.opening().is_some_and(|opening| {
                opening.delivery.is_delivered()
                    && opening.log.event_date.timestamp()
                        <= closing.closing.log.event_date.timestamp()
            })
            && file
                .expires_at
                .is_some_and(|at| (closing.retention_ends..=latest).contains(&at));
        if !as_assumed {
            // As DynamoDB's refusal, whose file item holds the whole file only when each of
            // its events is delivered and it has no document.
            let whole = file
                .events
                .iter()
                .all(|event| event.delivery.is_delivered())
                && !file.quitus_received
                && file.documents.is_empty();
            return Ok(if whole {
                Refused(file.clone())
            } else {
                NotApplied
            });
        }
        file.state = FileState::Closed(closing.outcome);
        file.events.push(closing.closing.clone());
        self.write_outbox(closing.announce, closing.closing.recorded_at);
        leases.insert(id.clone(), closing.sending_until);
        Ok(ClosedSending(file.clone()))
    }
}

impl crate::ports::RecordUnderLease for InMemoryStore {
    /// The lease checked, then the outcome recorded (a test adapter: not atomic).
    async fn record_under_lease(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.check_available()?;
        if self.leases.lock().unwrap().get(id) != Some(&until) {
            tracing::warn!(
                seq,
                "the send lease was taken over before this outcome was recorded; the taker's stands"
            );
            return Ok(());
        }
        self.record_delivery(id, seq, delivery, announce).await
    }
}

impl FinishDelivery for InMemoryStore {}

impl SendLease for InMemoryStore {
    async fn take_send_lease(
        &self,
        id: &FileId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError> {
        self.check_available()?;
        // No file, nothing to send: no lease (as DynamoDB's condition on the file item).
        if !self.files.lock().unwrap().contains_key(id) {
            return Ok(LeaseGrant::HeldElsewhere);
        }
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

impl crate::ports::RequeueFailedEvent for InMemoryStore {
    async fn requeue_failed_event(
        &self,
        id: &FileId,
        seq: u32,
        pending: &Delivery,
    ) -> Result<bool, StoreError> {
        self.check_available()?;
        let mut files = self.files.lock().unwrap();
        let Some(event) = event_mut(&mut files, id, seq) else {
            return Ok(false);
        };
        if !matches!(&event.delivery, Delivery::Failed { attempts, .. } if *attempts == pending.attempts())
        {
            return Ok(false);
        }
        event.delivery = pending.clone();
        Ok(true)
    }
}

impl crate::ports::RecordLostEventRefused for InMemoryStore {
    async fn record_lost_event_refused(
        &self,
        id: &FileId,
        seq: u32,
        failed: &Delivery,
        announce: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        self.check_available()?;
        let mut files = self.files.lock().unwrap();
        let Some(event) = event_mut(&mut files, id, seq) else {
            return Ok(false);
        };
        if !event.delivery.is_delivered() {
            return Ok(false);
        }
        event.delivery = failed.clone();
        self.write_outbox(announce, Timestamp::now());
        Ok(true)
    }
}

impl crate::ports::LoadFiles for InMemoryStore {}

impl crate::ports::PeriodReconciliations for InMemoryStore {
    async fn period_reconciled(
        &self,
        period: &crate::calendar::OnCallPeriod,
    ) -> Result<bool, StoreError> {
        self.check_available()?;
        Ok(self
            .reconciled_period
            .lock()
            .unwrap()
            .is_some_and(|end| end >= period.end))
    }

    async fn mark_period_reconciled(
        &self,
        period: &crate::calendar::OnCallPeriod,
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        self.check_available()?;
        let mut noted = self.reconciled_period.lock().unwrap();
        *noted = Some(noted.map_or(period.end, |end| end.max(period.end)));
        Ok(())
    }
}

impl crate::ports::MarkQuitusReceived for InMemoryStore {
    async fn mark_quitus_received(
        &self,
        id: &FileId,
    ) -> Result<crate::ports::QuitusMark, StoreError> {
        self.check_available()?;
        let mut files = self.files.lock().unwrap();
        Ok(match files.get_mut(id) {
            None => crate::ports::QuitusMark::NoFile,
            Some(file) if file.state == FileState::Closed(Outcome::Canceled) => {
                crate::ports::QuitusMark::FileCanceled
            }
            Some(file) => {
                file.quitus_received = true;
                crate::ports::QuitusMark::Marked
            }
        })
    }
}

impl LoadFile for InMemoryStore {
    async fn load_file(&self, id: &FileId) -> Result<Option<InterventionFile>, StoreError> {
        self.check_available()?;
        if *self.loading_fails.lock().unwrap() {
            return Err(StoreError::Unavailable("reads fail".into()));
        }
        Ok(InterventionFile::unless_expired(
            self.files.lock().unwrap().get(id).cloned(),
            Timestamp::now(),
        ))
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
        // An event that is not there (its file erased) or already delivered: nothing is
        // written, as the other stores' conditions have it.
        let Some(event) = event_mut(&mut files, id, seq) else {
            return Ok(());
        };
        if event.delivery.is_delivered() {
            return Ok(());
        }
        event.delivery = delivery.clone();
        self.write_outbox(announce, Timestamp::now());
        Ok(())
    }
}

impl ListOpenFiles for InMemoryStore {
    async fn open_files_opened_before(&self, before: Timestamp) -> Result<Vec<FileId>, StoreError> {
        self.check_available()?;
        Ok(self
            .listed_files()
            .into_iter()
            .filter(|file| file.state == FileState::Open)
            .filter(|file| {
                file.opening()
                    .is_some_and(|opening| crate::file::opened_at(opening) < before)
            })
            .map(|file| file.id)
            .collect())
    }
}

impl ListPendingEvents for InMemoryStore {
    async fn files_with_pending_events(&self) -> Result<Vec<FileId>, StoreError> {
        self.check_available()?;
        Ok(self
            .listed_files()
            .into_iter()
            .filter(|file| file.events.iter().any(|event| event.delivery.is_pending()))
            .map(|file| file.id)
            .collect())
    }
}

impl ReadBacklog for InMemoryStore {
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        self.check_available()?;
        let mut backlog = Backlog::default();
        backlog.count_events(
            self.files
                .lock()
                .unwrap()
                .values()
                .flat_map(|file| file.events.iter()),
        );
        backlog.count_documents(&self.pending_documents().await?);
        backlog.rejected_documents = self
            .ledger
            .lock()
            .unwrap()
            .values()
            .filter(|entry| entry.state == DocumentState::Rejected(RejectionReason::IntentRejected))
            .count();
        let outbox: Vec<Timestamp> = self
            .outbox
            .lock()
            .unwrap()
            .iter()
            .map(|(at, _)| *at)
            .collect();
        backlog.count_unpublished(outbox);
        Ok(backlog)
    }
}

impl UploadGrants for InMemoryStore {
    async fn record_upload_grant(
        &self,
        grant: &UploadGrant,
        expires_at: Timestamp,
    ) -> Result<crate::ports::GrantRecorded, StoreError> {
        use crate::ports::GrantRecorded;
        self.check_available()?;
        // The file is checked and the grant written under the files' lock, as one write.
        let files = self.files.lock().unwrap();
        Ok(match files.get(&grant.file) {
            Some(file) if file.owner != grant.partner => GrantRecorded::NoFile,
            None => GrantRecorded::NoFile,
            Some(file) if file.state == FileState::Closed(Outcome::Canceled) => {
                GrantRecorded::FileCanceled
            }
            Some(_) => {
                self.grants
                    .lock()
                    .unwrap()
                    .insert(grant.key.clone(), (grant.clone(), expires_at));
                GrantRecorded::Recorded
            }
        })
    }

    async fn upload_grant(&self, key: &str) -> Result<Option<UploadGrant>, StoreError> {
        self.check_available()?;
        // One whose data has expired is gone, as in the real stores.
        Ok(self
            .grants
            .lock()
            .unwrap()
            .get(key)
            .filter(|(_, expires_at)| *expires_at > Timestamp::now())
            .map(|(grant, _)| grant.clone()))
    }
}

/// Signs uploads with nothing: `memory://{key}?size={size}`.
#[derive(Debug, Default)]
pub struct UnsignedUploads;

impl PresignUpload for UnsignedUploads {
    async fn presign_upload(
        &self,
        key: &str,
        size: u64,
        _lifetime: std::time::Duration,
    ) -> Result<PresignedUpload, String> {
        Ok(PresignedUpload {
            method: "PUT".into(),
            url: format!("memory://{key}?size={size}"),
            headers: vec![
                ("content-type".into(), "application/pdf".into()),
                ("content-length".into(), size.to_string()),
            ],
        })
    }
}

impl DocumentLedger for InMemoryStore {
    async fn claim_document(
        &self,
        object: &ObjectRef,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<DocumentClaim, StoreError> {
        self.check_available()?;
        let mut ledger = self.ledger.lock().unwrap();
        let identity = object.identity();
        let status = ledger.get(&identity).map(|entry| match entry.state {
            DocumentState::Published => LedgerStatus::Published,
            DocumentState::Rejected(_) => LedgerStatus::Rejected,
            DocumentState::InProgress => LedgerStatus::InProgress {
                lease_until: entry.lease_until,
            },
            DocumentState::Pending => LedgerStatus::Pending {
                in_doubt: entry.in_doubt,
            },
        });
        let in_doubt = match DocumentClaim::decide(status, now) {
            Ok(in_doubt) => in_doubt,
            Err(answer) => return Ok(answer),
        };
        let entry = ledger
            .entry(identity)
            .or_insert_with(|| LedgerEntry::first_seen(object, now));
        let token = ClaimToken::new(uuid::Uuid::new_v4().to_string());
        entry.state = DocumentState::InProgress;
        entry.lease_until = Some(lease_until);
        entry.claimed_by = Some(token.clone());
        Ok(DocumentClaim::Claimed(ClaimedObject {
            token,
            in_doubt,
            attempts: entry.attempts,
            first_seen_at: entry.first_seen_at,
        }))
    }

    async fn release_document(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
    ) -> Result<(), StoreError> {
        self.check_available()?;
        if let Some(entry) = self.ledger.lock().unwrap().get_mut(&object.identity())
            && entry.held_by(claim)
        {
            // An upload may have gone out before the failure.
            entry.state = DocumentState::Pending;
            entry.lease_until = None;
            entry.in_doubt = true;
        }
        Ok(())
    }

    async fn record_pending(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        wait: &DocumentWait,
    ) -> Result<(), StoreError> {
        self.check_available()?;
        let mut ledger = self.ledger.lock().unwrap();
        let Some(entry) = ledger
            .get_mut(&object.identity())
            .filter(|entry| entry.held_by(claim))
        else {
            return Err(StoreError::Unavailable(
                "the object's claim was lost before its wait was recorded".into(),
            ));
        };
        entry.state = DocumentState::Pending;
        entry.lease_until = None;
        entry.attempts = wait.attempts;
        entry.last_error = Some(wait.last_error.clone());
        entry.last_attempt_at = Some(wait.last_attempt_at);
        entry.in_doubt = wait.in_doubt;
        if wait.file.is_some() {
            entry.file = wait.file.clone();
        }
        Ok(())
    }

    async fn record_published(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        file: &InterventionFile,
        record: &DocumentRecord,
        _expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        self.check_available()?;
        let identity = object.identity();
        let mut ledger = self.ledger.lock().unwrap();
        let Some(entry) = ledger
            .get_mut(&identity)
            .filter(|entry| entry.held_by(claim))
        else {
            return Err(StoreError::Unavailable(
                "the object's claim was lost before the document was recorded".into(),
            ));
        };
        // The ledger's lock is held throughout: the claim cannot be taken over between
        // its check and the document's recording (the file's lock is taken inside it,
        // as nowhere the other way round).
        if let Some(stored) = self.files.lock().unwrap().get_mut(&file.id)
            && !stored
                .documents
                .iter()
                .any(|document| document.object_identity == record.object_identity)
        {
            stored.documents.push(record.clone());
            stored.quitus_received = true;
        }
        entry.state = DocumentState::Published;
        entry.lease_until = None;
        entry.in_doubt = false;
        entry.file = Some(file.id.clone());
        self.write_outbox(announce, record.published_at);
        Ok(())
    }

    async fn record_rejected(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        reason: RejectionReason,
        detail: &str,
        now: Timestamp,
        _expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        self.check_available()?;
        let mut ledger = self.ledger.lock().unwrap();
        // Under this claim only; otherwise already handled, or taken over by another
        // claim (which decides for itself).
        let Some(entry) = ledger
            .get_mut(&object.identity())
            .filter(|entry| entry.held_by(claim))
        else {
            return Ok(false);
        };
        entry.state = DocumentState::Rejected(reason);
        entry.lease_until = None;
        entry.last_error = Some(detail.to_string());
        entry.last_attempt_at = Some(now);
        self.write_outbox(announce, now);
        Ok(true)
    }
}

impl ListPendingDocuments for InMemoryStore {
    async fn pending_documents(&self) -> Result<Vec<PendingDocument>, StoreError> {
        self.check_available()?;
        let ledger = self.ledger.lock().unwrap();
        let mut waiting: Vec<&LedgerEntry> = ledger
            .values()
            .filter(|entry| {
                matches!(
                    entry.state,
                    DocumentState::Pending | DocumentState::InProgress
                )
            })
            .collect();
        waiting.sort_by_key(|entry| (entry.first_seen_at, entry.object.identity()));
        Ok(waiting
            .into_iter()
            .map(|entry| PendingDocument {
                object: entry.object.clone(),
                file: entry.file.clone(),
                first_seen_at: Some(entry.first_seen_at),
                attempts: entry.attempts,
                last_attempt_at: entry.last_attempt_at,
                last_error: entry.last_error.clone(),
            })
            .collect())
    }
}

/// One object of the in-memory documents bucket.
#[derive(Debug, Clone)]
struct StoredObject {
    bytes: Bytes,
    title: Option<String>,
    description: Option<String>,
}

/// A documents bucket in a map, by object version identity.
#[derive(Default)]
pub struct InMemoryObjects {
    objects: Mutex<HashMap<String, StoredObject>>,
    unavailable: Mutex<bool>,
    opened: Mutex<usize>,
}

impl InMemoryObjects {
    /// The size of the chunks a body is streamed in.
    pub const CHUNK: usize = 1024;

    /// Puts an object version, without metadata.
    pub fn put(&self, object: &ObjectRef, bytes: impl Into<Vec<u8>>) {
        self.put_with_metadata(object, bytes, None, None);
    }

    /// Puts an object version with its `title` and `description` metadata.
    pub fn put_with_metadata(
        &self,
        object: &ObjectRef,
        bytes: impl Into<Vec<u8>>,
        title: Option<&str>,
        description: Option<&str>,
    ) {
        self.objects.lock().unwrap().insert(
            object.identity(),
            StoredObject {
                bytes: Bytes::from(bytes.into()),
                title: title.map(str::to_string),
                description: description.map(str::to_string),
            },
        );
    }

    /// Deletes an object version.
    pub fn remove(&self, object: &ObjectRef) {
        self.objects.lock().unwrap().remove(&object.identity());
    }

    /// Every read fails (the bucket cannot be reached).
    pub fn set_unavailable(&self, unavailable: bool) {
        *self.unavailable.lock().unwrap() = unavailable;
    }

    /// How often a body was opened for streaming.
    pub fn opened(&self) -> usize {
        *self.opened.lock().unwrap()
    }

    fn get(&self, object: &ObjectRef) -> Result<StoredObject, SourceError> {
        if *self.unavailable.lock().unwrap() {
            return Err(SourceError::Unavailable(
                "in-memory bucket switched off".into(),
            ));
        }
        self.objects
            .lock()
            .unwrap()
            .get(&object.identity())
            .cloned()
            .ok_or(SourceError::Missing)
    }
}

impl ReadObject for InMemoryObjects {
    async fn object_info(&self, object: &ObjectRef) -> Result<ObjectInfo, SourceError> {
        let stored = self.get(object)?;
        Ok(ObjectInfo {
            size: stored.bytes.len() as u64,
            title: stored.title,
            description: stored.description,
        })
    }

    async fn first_bytes(&self, object: &ObjectRef, count: u64) -> Result<Vec<u8>, SourceError> {
        let stored = self.get(object)?;
        let end = usize::try_from(count)
            .map_or(stored.bytes.len(), |count| count.min(stored.bytes.len()));
        Ok(stored.bytes[..end].to_vec())
    }

    async fn open(&self, object: &ObjectRef) -> Result<DocumentBody, SourceError> {
        let bytes = self.get(object)?.bytes;
        *self.opened.lock().unwrap() += 1;
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..bytes.len())
            .step_by(Self::CHUNK)
            .map(|start| Ok(bytes.slice(start..(start + Self::CHUNK).min(bytes.len()))))
            .collect();
        let chunks: ByteChunks = Box::pin(futures_util::stream::iter(chunks));
        Ok(DocumentBody {
            length: bytes.len() as u64,
            chunks,
        })
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

/// The answer of an upload whose outcome is unknown (a timeout after the request left).
fn lost_answer() -> DeliveryFailure {
    DeliveryFailure::outcome_unknown(1, "Intent could not be reached: timed out")
}

/// What the recording Intent accepted, in the order it accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// An event of an intervention's log.
    Log { file: FileId, event: Event },
    /// A document attached to an intervention.
    Document { file: FileId, file_name: String },
}

/// A document the recording Intent accepted: the upload's fields and the size it read
/// from the streamed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedDocument {
    pub upload: DocumentUpload,
    pub size: u64,
    pub intent_document_id: String,
}

/// The open list answers a page of this many interventions at a time.
const OPEN_LIST_PAGE: usize = 50;

/// An Intent that records what it accepted (its log, duplicates included: it does not
/// deduplicate, like Intent as far as its documentation says) and answers from a script.
#[derive(Default)]
pub struct RecordingIntent {
    accepted: Mutex<Vec<InterventionLog>>,
    script: Mutex<VecDeque<Scripted>>,
    reads: Mutex<usize>,
    /// Logs and documents, in the order they were accepted.
    journal: Mutex<Vec<Accepted>>,
    documents: Mutex<Vec<ReceivedDocument>>,
    document_script: Mutex<VecDeque<Scripted>>,
    /// The time each upload was given (`within`).
    upload_bounds: Mutex<Vec<std::time::Duration>>,
    document_reads: Mutex<usize>,
    /// While set, reading Intent's documents fails (Intent unreachable).
    document_reads_fail: Mutex<bool>,
    /// While set, reading Intent's log fails (Intent unreachable).
    log_reads_fail: Mutex<bool>,
    /// While set, listing Intent's open interventions fails (Intent unreachable).
    listings_fail: Mutex<bool>,
    documents_need_opening: Mutex<bool>,
    /// What [`PublishToIntent::longest_call`] answers (zero unless set).
    longest_call: Mutex<std::time::Duration>,
}

impl RecordingIntent {
    /// Says its calls may take up to `longest` each (a slow Intent configuration).
    pub fn set_longest_call(&self, longest: std::time::Duration) {
        *self.longest_call.lock().unwrap() = longest;
    }

    /// The next publications fail like this, in order.
    pub fn fail_next(&self, failure: DeliveryFailure) {
        self.script
            .lock()
            .unwrap()
            .push_back(Scripted::Fail(failure));
    }

    /// The next publication is applied, then answered with `failure` (a 409 for what
    /// Intent already holds, a gateway's 502).
    pub fn apply_next_then_fail(&self, failure: DeliveryFailure) {
        self.script
            .lock()
            .unwrap()
            .push_back(Scripted::ApplyThenFail(failure));
    }

    /// The next publication is applied, but its answer is lost (a timeout).
    pub fn lose_next_answer(&self) {
        self.script
            .lock()
            .unwrap()
            .push_back(Scripted::ApplyThenFail(lost_answer()));
    }

    /// The next document uploads fail like this, in order.
    pub fn fail_next_document(&self, failure: DeliveryFailure) {
        self.document_script
            .lock()
            .unwrap()
            .push_back(Scripted::Fail(failure));
    }

    /// The next document upload is stored, but its answer is lost (a timeout).
    pub fn lose_next_document_answer(&self) {
        self.document_script
            .lock()
            .unwrap()
            .push_back(Scripted::ApplyThenFail(lost_answer()));
    }

    /// While `failing` is set, reading Intent's documents fails like an Intent that cannot
    /// be reached.
    pub fn fail_document_reads(&self, failing: bool) {
        *self.document_reads_fail.lock().unwrap() = failing;
    }

    /// While `refuse` is set, a document for an intervention whose opening this Intent
    /// never accepted is refused like Intent does (404, retryable).
    pub fn refuse_documents_without_opening(&self, refuse: bool) {
        *self.documents_need_opening.lock().unwrap() = refuse;
    }

    pub fn accepted(&self) -> Vec<InterventionLog> {
        self.accepted.lock().unwrap().clone()
    }

    /// While `failing` is set, reading Intent's log fails like an Intent that cannot be
    /// reached (after four HTTP attempts, as the client's reads retry).
    pub fn fail_log_reads(&self, failing: bool) {
        *self.log_reads_fail.lock().unwrap() = failing;
    }

    /// While `failing` is set, listing Intent's open interventions fails.
    pub fn fail_listings(&self, failing: bool) {
        *self.listings_fail.lock().unwrap() = failing;
    }

    /// How often Intent's log was read.
    pub fn reads(&self) -> usize {
        *self.reads.lock().unwrap()
    }

    /// The documents accepted (duplicates included), oldest first.
    pub fn documents(&self) -> Vec<ReceivedDocument> {
        self.documents.lock().unwrap().clone()
    }

    /// How often Intent's documents were read (`find_document`).
    /// The time each upload was given to end in.
    pub fn upload_bounds(&self) -> Vec<std::time::Duration> {
        self.upload_bounds.lock().unwrap().clone()
    }

    pub fn document_reads(&self) -> usize {
        *self.document_reads.lock().unwrap()
    }

    /// Logs and documents, in the order they were accepted.
    pub fn journal(&self) -> Vec<Accepted> {
        self.journal.lock().unwrap().clone()
    }

    fn accept_log(&self, log: &InterventionLog) {
        self.accepted.lock().unwrap().push(log.clone());
        self.journal.lock().unwrap().push(Accepted::Log {
            file: log.file_id(),
            event: log.event,
        });
    }

    fn accept_document(&self, upload: &DocumentUpload, size: u64) -> String {
        let mut documents = self.documents.lock().unwrap();
        let intent_document_id = format!("doc-{}", documents.len() + 1);
        documents.push(ReceivedDocument {
            upload: upload.clone(),
            size,
            intent_document_id: intent_document_id.clone(),
        });
        self.journal.lock().unwrap().push(Accepted::Document {
            file: FileId::new(&upload.element_reference, &upload.contract_reference),
            file_name: upload.file_name.clone(),
        });
        intent_document_id
    }

    /// Whether an opening of `file` was accepted.
    fn knows(&self, file: &FileId) -> bool {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .any(|log| log.event == Event::Acknowledged && &log.file_id() == file)
    }

    /// Its interventions whose last accepted event leaves them open, by first appearance.
    fn open_interventions(&self) -> Vec<HubIntervention> {
        let accepted = self.accepted.lock().unwrap();
        let mut last: Vec<&InterventionLog> = Vec::new();
        for log in accepted.iter() {
            match last.iter_mut().find(|held| held.file_id() == log.file_id()) {
                Some(held) => *held = log,
                None => last.push(log),
            }
        }
        last.into_iter()
            .filter(|log| log.status == Status::Open)
            .map(|log| HubIntervention {
                reference: log.reference.clone(),
                contract_reference: log.contract_reference.clone(),
                status: log.status.as_str().to_string(),
                event: log.event.as_str().to_string(),
            })
            .collect()
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
                self.accept_log(log);
                Err(failure)
            }
            None => {
                self.accept_log(log);
                Ok(1)
            }
        }
    }

    fn longest_call(&self) -> std::time::Duration {
        *self.longest_call.lock().unwrap()
    }

    async fn log_is_on_intent(&self, log: &InterventionLog) -> Result<bool, DeliveryFailure> {
        *self.reads.lock().unwrap() += 1;
        if *self.log_reads_fail.lock().unwrap() {
            return Err(DeliveryFailure::retryable(4, "Intent could not be reached"));
        }
        Ok(self
            .accepted
            .lock()
            .unwrap()
            .iter()
            .any(|held| same_log_event(held, log)))
    }
}

/// Reads a document's body to its end, as an upload streams it; returns its size.
async fn read_body<O: OpenDocument>(body: &O) -> Result<u64, DeliveryFailure> {
    let unreadable =
        |error: &dyn std::fmt::Display| format!("the document could not be read: {error}");
    let document = body.open_body().await.map_err(|error| match error {
        SourceError::Missing => DeliveryFailure::source_missing(1, unreadable(&error)),
        SourceError::Unavailable(_) => DeliveryFailure::retryable(1, unreadable(&error)),
    })?;
    let mut chunks = document.chunks;
    let mut size = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| DeliveryFailure::retryable(1, unreadable(&error)))?;
        size += chunk.len() as u64;
    }
    if size != document.length {
        return Err(DeliveryFailure::retryable(
            1,
            format!(
                "the body ended after {size} of its {} bytes",
                document.length
            ),
        ));
    }
    Ok(size)
}

impl PublishDocument for RecordingIntent {
    async fn publish_document<O: OpenDocument>(
        &self,
        upload: &DocumentUpload,
        body: &O,
        within: std::time::Duration,
    ) -> Result<PublishedDocument, DeliveryFailure> {
        self.upload_bounds.lock().unwrap().push(within);
        let next = self.document_script.lock().unwrap().pop_front();
        if let Some(Scripted::Fail(failure)) = next {
            return Err(failure);
        }
        let file = FileId::new(&upload.element_reference, &upload.contract_reference);
        let need_opening = *self.documents_need_opening.lock().unwrap();
        if need_opening && !self.knows(&file) {
            return Err(DeliveryFailure::retryable(
                1,
                "Intent answered 404: no such intervention",
            ));
        }
        let size = read_body(body).await?;
        let intent_document_id = self.accept_document(upload, size);
        match next {
            Some(Scripted::ApplyThenFail(failure)) => Err(failure),
            _ => Ok(PublishedDocument {
                attempts: 1,
                intent_document_id: Some(intent_document_id),
            }),
        }
    }

    async fn find_document(
        &self,
        upload: &DocumentUpload,
        size: u64,
        earlier: &[Option<&str>],
    ) -> Result<Option<PublishedDocument>, DeliveryFailure> {
        *self.document_reads.lock().unwrap() += 1;
        if *self.document_reads_fail.lock().unwrap() {
            return Err(DeliveryFailure::retryable(
                1,
                "Intent's documents could not be read",
            ));
        }
        let listed: Vec<Option<String>> = self
            .documents
            .lock()
            .unwrap()
            .iter()
            .filter(|held| {
                held.upload.contract_reference == upload.contract_reference
                    && held.upload.element_reference == upload.element_reference
                    && held.upload.file_name == upload.file_name
                    && held.size == size
            })
            .map(|held| Some(held.intent_document_id.clone()))
            .collect();
        Ok(
            crate::documents::upload_among(&listed, earlier).map(|at| PublishedDocument {
                attempts: 0,
                intent_document_id: listed[at].clone(),
            }),
        )
    }
}

impl ListOpenOnIntent for RecordingIntent {
    /// Its own open interventions, page after page; once `deadline` is reached, what was
    /// read so far (incomplete).
    async fn list_open_interventions(
        &self,
        deadline: Deadline,
    ) -> Result<OpenListing, DeliveryFailure> {
        if *self.listings_fail.lock().unwrap() {
            return Err(DeliveryFailure::retryable(
                4,
                "Intent's open interventions could not be listed: HTTP 503",
            ));
        }
        let open = self.open_interventions();
        let mut listing = OpenListing::default();
        // The last page is an empty one, as Intent ends its listing.
        for page in open.chunks(OPEN_LIST_PAGE).chain([&[][..]]) {
            if deadline.reached() {
                return Ok(listing);
            }
            if page.is_empty() {
                listing.complete = true;
                break;
            }
            listing.interventions.extend_from_slice(page);
        }
        Ok(listing)
    }
}

/// Collects domain events.
#[derive(Default)]
pub struct RecordingEvents {
    published: Mutex<Vec<DomainEvent>>,
    failing: Mutex<bool>,
    batches: Mutex<Vec<usize>>,
    /// Events the bus refuses for good (their `eventId`s), taking the others beside them.
    refused: Mutex<std::collections::HashSet<String>>,
}

impl RecordingEvents {
    /// The bus refuses every event (or takes them again).
    pub fn set_failing(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }

    /// The bus refuses the event `event_id` whenever it comes (as `PutEvents` refuses one
    /// entry with an error code), and takes the others of its publication.
    pub fn refuse(&self, event_id: &str) {
        self.refused.lock().unwrap().insert(event_id.to_string());
    }

    pub fn published(&self) -> Vec<DomainEvent> {
        self.published.lock().unwrap().clone()
    }

    /// The size of each publication the bus took, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

impl PublishDomainEvents for RecordingEvents {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), DomainEventError> {
        if *self.failing.lock().unwrap() {
            return Err(DomainEventError::none_taken(
                events,
                "the bus is switched off",
            ));
        }
        let refused = self.refused.lock().unwrap().clone();
        let (not_taken, taken): (Vec<&DomainEvent>, Vec<&DomainEvent>) = events
            .iter()
            .partition(|event| refused.contains(&event.event_id()));
        self.published
            .lock()
            .unwrap()
            .extend(taken.iter().map(|event| (*event).clone()));
        self.batches.lock().unwrap().push(taken.len());
        if not_taken.is_empty() {
            return Ok(());
        }
        Err(DomainEventError {
            not_taken: not_taken.iter().map(|event| event.event_id()).collect(),
            detail: "InvalidArgument".into(),
        })
    }
}

pub use crate::ports::FixedClock;

/// A clock that stands still on a machine whose clock may be off (an operator's: it is
/// allowed [`crate::ports::OPERATOR_SKEW_ALLOWANCE`]).
#[derive(Debug, Clone, Copy)]
pub struct FixedOperatorClock(pub Timestamp);

impl crate::ports::Clock for FixedOperatorClock {
    fn now(&self) -> Timestamp {
        self.0
    }

    fn skew_allowance(&self) -> jiff::SignedDuration {
        crate::ports::OPERATOR_SKEW_ALLOWANCE
    }
}

/// Small helpers shared by the use cases' unit tests: a world of in-memory adapters, the
/// seed's claim under other references, files stored with chosen delivery states.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// `impl SendLease` for a test wrapper (`$wrapper`, with a `world: &World` field) whose
    /// world's store holds the leases.
    macro_rules! send_lease_of_the_worlds_store {
        ($wrapper:ty) => {
            impl $crate::ports::SendLease for $wrapper {
                async fn take_send_lease(
                    &self,
                    id: &$crate::model::FileId,
                    now: jiff::Timestamp,
                    until: jiff::Timestamp,
                ) -> Result<$crate::ports::LeaseGrant, $crate::ports::StoreError> {
                    self.world.store.take_send_lease(id, now, until).await
                }

                async fn release_send_lease(
                    &self,
                    id: &$crate::model::FileId,
                    until: jiff::Timestamp,
                ) -> Result<(), $crate::ports::StoreError> {
                    self.world.store.release_send_lease(id, until).await
                }
            }
        };
    }
    use crate::calendar::OnCallPeriod;
    use crate::documents::ObjectVersion;
    use crate::file::PartnerId;
    use crate::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
    use crate::validation::parse_intervention_log;
    pub(crate) use send_lease_of_the_worlds_store;

    pub fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    pub fn minutes(count: i64) -> jiff::SignedDuration {
        jiff::SignedDuration::from_mins(count)
    }

    /// Every adapter a use case needs, the clock standing at one instant.
    pub struct World {
        pub store: InMemoryStore,
        pub intent: RecordingIntent,
        pub events: RecordingEvents,
        pub objects: InMemoryObjects,
        pub clock: FixedClock,
    }

    impl World {
        pub fn at(now: Timestamp) -> Self {
            Self {
                store: InMemoryStore::default(),
                intent: RecordingIntent::default(),
                events: RecordingEvents::default(),
                objects: InMemoryObjects::default(),
                clock: FixedClock(now),
            }
        }

        /// A claim stored an hour ago whose opening Intent accepted.
        pub async fn given_open_on_intent(&self, reference: &str) -> FileId {
            let log = opening_log(reference);
            let recorded_at = self.clock.0 - jiff::SignedDuration::from_hours(1);
            let id = given_open_file(&self.store, &log, recorded_at, delivered(recorded_at)).await;
            self.intent.publish_log(&log).await.unwrap();
            id
        }

        /// The `detail-type` of every domain event on the bus, in order.
        pub fn published_types(&self) -> Vec<String> {
            self.events
                .published()
                .iter()
                .map(|event| event.detail_type().to_string())
                .collect()
        }
    }

    /// The seed's claim (opened 2020-03-06T10:45:23 Paris, contract1, with the tenant's
    /// contact) under `reference`.
    pub fn opening_log(reference: &str) -> InterventionLog {
        parse_intervention_log(SEED_OPENING.replace("INTER-0500", reference).as_bytes()).unwrap()
    }

    /// The seed's closure (2020-03-06T15:35:00 Paris) under `reference`, with `outcome`.
    pub fn closing_log(reference: &str, outcome: Outcome) -> InterventionLog {
        let json = SEED_CLOSURE_DONE.replace("INTER-0500", reference);
        let mut log = parse_intervention_log(json.as_bytes()).unwrap();
        log.event = outcome.event();
        log.status = log.event.status();
        log
    }

    pub fn delivered(at: Timestamp) -> Delivery {
        Delivery::Delivered {
            attempts: 1,
            delivered_at: at,
        }
    }

    /// Pending after `attempts` attempts, the last one at `last_attempt_at`.
    pub fn pending_since(attempts: u32, last_attempt_at: Timestamp, in_doubt: bool) -> Delivery {
        Delivery::Pending {
            attempts,
            last_error: Some("Intent is unavailable: HTTP 503".into()),
            last_attempt_at: Some(last_attempt_at),
            in_doubt,
        }
    }

    pub fn refused(at: Timestamp) -> Delivery {
        Delivery::Failed {
            attempts: 1,
            last_error: "Intent rejected the request with HTTP 400".into(),
            last_attempt_at: at,
        }
    }

    fn recorded(
        log: &InterventionLog,
        seq: u32,
        at: Timestamp,
        delivery: Delivery,
    ) -> RecordedEvent {
        RecordedEvent::new(seq, log.clone(), at, delivery)
    }

    /// Stores a file opened by `log` (owner `partner-a`), recorded at `recorded_at`, its
    /// opening standing with Intent as `delivery`.
    pub async fn given_open_file(
        store: &InMemoryStore,
        log: &InterventionLog,
        recorded_at: Timestamp,
        delivery: Delivery,
    ) -> FileId {
        let new = NewFile {
            owner: PartnerId("partner-a".into()),
            opening: recorded(log, 1, recorded_at, delivery),
            expires_at: None,
        };
        store.open_file(&new, &[]).await.unwrap();
        new.id()
    }

    /// Closes a stored open file with `outcome`, recorded at `recorded_at`, its closing
    /// standing with Intent as `delivery`.
    pub async fn given_closed(
        store: &InMemoryStore,
        id: &FileId,
        outcome: Outcome,
        recorded_at: Timestamp,
        delivery: Delivery,
    ) {
        let log = closing_log(&id.reference, outcome);
        let closing = recorded(&log, 2, recorded_at, delivery);
        let closed = store
            .close_file(
                id,
                1,
                &closing,
                outcome,
                // Kept for the usual retention from its closing.
                crate::lifecycle::ClosingExpiry::new(
                    recorded_at
                        + jiff::SignedDuration::from_hours(
                            24 * crate::lifecycle::CLOSED_FILE_RETENTION_DAYS,
                        ),
                    None,
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(closed, CloseFileResult::Closed);
    }

    /// A night's on-call period ending at `end`.
    pub fn period_ending(end: Timestamp) -> OnCallPeriod {
        OnCallPeriod {
            id: "oncall-test".into(),
            start: end - jiff::SignedDuration::from_hours(14),
            end,
        }
    }

    /// A quitus an operator dropped for `reference` (contract1), version `version`.
    pub fn quitus(reference: &str, version: &str) -> ObjectRef {
        ObjectRef {
            bucket: "docs".into(),
            key: format!("operator-quitus/contract1/{reference}/quitus.pdf"),
            version: ObjectVersion::VersionId(version.into()),
            size: None,
        }
    }

    /// `size` bytes starting with the PDF signature.
    pub fn pdf(size: usize) -> Vec<u8> {
        let mut bytes = b"%PDF-1.7\n".to_vec();
        bytes.resize(size.max(bytes.len()), b'x');
        bytes
    }
}

#[cfg(test)]
mod tests {
    //! The intake use case, given / when / then, on the in-memory adapters.
    use super::*;
    use crate::file::PartnerId;
    use crate::intake::{OpenError, OpenOutcome, open_intervention};
    use crate::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
    use crate::ports::Clock;
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
                crate::closure::ClosurePolicy::default(),
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
        assert_eq!(
            stored.expires_at,
            Some(crate::lifecycle::open_file_expiry(
                world.clock.now(),
                crate::closure::ClosurePolicy::default().retention
            )),
            "stored with an expiry its closing need not write again"
        );
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

    /// The refusal and the opening's announcement go to the bus in one call; the bus takes
    /// the refusal and refuses the announcement: the refusal needs no outbox entry (it
    /// would go out twice), the announcement stays there alone.
    #[tokio::test]
    async fn a_refusal_the_bus_took_beside_an_announcement_it_refused_is_not_kept_twice() {
        let dry_run = world();
        dry_run.events.set_failing(true);
        dry_run.open(SEED_OPENING).await.unwrap();
        let opened_id = dry_run.store.outbox_ids().remove(0);

        let world = world();
        world.events.refuse(&opened_id);
        world.intent.fail_next(DeliveryFailure::refused(
            1,
            "Intent answered 400 validation_error",
        ));
        world.open(SEED_OPENING).await.unwrap();

        let published: Vec<String> = world
            .events
            .published()
            .iter()
            .map(|event| event.detail_type().to_string())
            .collect();
        assert_eq!(published, ["DeliveryFailed"]);
        assert_eq!(world.store.outbox_ids(), [opened_id]);
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
            // Closed at once: the file expires with its opening, stored with the retention
            // and the margin ahead.
            let expiry = world.store.expiry(&closed.file.id).unwrap();
            assert_eq!(
                expiry.duration_since(world.clock.0),
                jiff::SignedDuration::from_hours(24 * (395 + 14))
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

        /// A copy of a file just claimed, read while its opening is pending (Intent
        /// answered 503), as a closure or the on-call closer may hold it.
        async fn a_copy_with_its_opening_pending(world: &World) -> InterventionFile {
            world
                .intent
                .fail_next(DeliveryFailure::retryable(4, "Intent answered 503"));
            let opened = world.open(SEED_OPENING).await.unwrap();
            let copy = world.store.file(&opened.file.id).unwrap();
            assert!(copy.events[0].delivery.is_pending());
            copy
        }

        /// Another sender (the re-send run, a forwarder) tries the file's pending events.
        async fn another_sender_tries(world: &World, copy: &InterventionFile) {
            crate::delivery::deliver_in_order(
                &world.store,
                &world.intent,
                &world.events,
                &world.clock,
                copy.clone(),
                crate::delivery::Deadline::none(),
            )
            .await;
        }

        /// The seed's closure by its partner, decided on `copy`.
        async fn closed_from(world: &World, copy: InterventionFile) -> crate::closure::ClosedFile {
            let log = parse_intervention_log(SEED_CLOSURE_DONE.as_bytes()).unwrap();
            crate::closure::close_loaded_intervention(
                &world.store,
                &world.intent,
                &world.events,
                &world.clock,
                ClosurePolicy::default(),
                ClosedBy::Partner(&partner()),
                log,
                Some(copy),
                crate::delivery::Deadline::none(),
                &|| {},
            )
            .await
            .unwrap()
        }

        /// A closing decided on a copy read while another sender was delivering the
        /// opening: that sender delivered it and gave the lease back before the closing
        /// was written, so the closing write took the lease with a copy whose opening still
        /// looks pending (the on-call closer reads its stragglers in batches, then closes).
        /// The file is read again under the lease: the opening is not sent a second time.
        #[tokio::test]
        async fn a_closing_decided_on_a_copy_read_before_its_opening_was_delivered_does_not_send_the_opening_again()
         {
            let world = world();
            let stale = a_copy_with_its_opening_pending(&world).await;
            another_sender_tries(&world, &stale).await;
            assert_eq!(world.intent.accepted().len(), 1);

            let closed = closed_from(&world, stale).await;

            let sent: Vec<_> = world.intent.accepted().iter().map(|l| l.event).collect();
            assert_eq!(sent, [crate::Event::Acknowledged, crate::Event::Done]);
            assert!(closed.file.events.iter().all(|e| e.delivery.is_delivered()));
        }

        /// The same window, but the other sender's opening was refused by Intent for good
        /// (recorded failed, announced once): the closure does not send that opening again
        /// from its stale copy, nor announce its failure a second time.
        #[tokio::test]
        async fn a_closing_decided_on_a_copy_read_before_its_opening_was_refused_does_not_send_the_opening_again()
         {
            let world = world();
            let stale = a_copy_with_its_opening_pending(&world).await;
            world
                .intent
                .fail_next(DeliveryFailure::refused(1, "Intent answered 422"));
            another_sender_tries(&world, &stale).await;
            let failed = |world: &World| {
                world
                    .events
                    .published()
                    .iter()
                    .filter(|event| matches!(event, DomainEvent::DeliveryFailed(_)))
                    .count()
            };
            assert_eq!(failed(&world), 1);

            let closed = closed_from(&world, stale).await;

            assert!(
                world.intent.accepted().is_empty(),
                "the refused opening was sent again: {:?}",
                world.intent.accepted()
            );
            assert_eq!(failed(&world), 1, "{:?}", world.events.published());
            assert_eq!(closed.file.events[0].delivery.label(), "failed");
            assert_eq!(closed.file.events[1].delivery.label(), "pending");
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

        /// The night clocks go back (2026-10-25, 03:00 summer time becomes 02:00 winter
        /// time): a file opened at 02:40 summer time and closed half an hour later, at
        /// 02:10 winter time, sent without offset. Read as the first 02:10 it would be
        /// before the opening; it is the second, the one not before the opening.
        #[tokio::test]
        async fn a_closure_in_the_repeated_hour_after_its_opening_is_the_second_pass() {
            let world = World {
                clock: FixedClock("2026-10-25T01:20:00Z".parse().unwrap()),
                ..world()
            };
            let opening = SEED_OPENING.replace("2020-03-06T10:45:23", "2026-10-25T02:40:00+02:00");
            world.open(&opening).await.unwrap();
            let closure = SEED_CLOSURE_DONE
                .replace("2020-03-06T15:35:00", "2026-10-25T02:10:00")
                .replace("2020-03-06T15:35:26", "2026-10-25T02:12:00");

            let closed = world.close(&closure).await.unwrap();

            assert_eq!(closed.outcome, CloseOutcome::Closed);
            let sent = world.intent.accepted();
            assert_eq!(
                sent[1].event_date.to_intent_string(),
                "2026-10-25T02:10:00+01:00"
            );
            // Written two minutes after, in the same second pass.
            assert_eq!(
                sent[1].log_date.to_intent_string(),
                "2026-10-25T02:12:00+01:00"
            );
            // The partner sends it again: the same closure, replayed.
            assert_eq!(
                world.close(&closure).await.unwrap().outcome,
                CloseOutcome::Replayed
            );
            // Both passes before the opening (itself in the second pass): still refused.
            let late_opening =
                SEED_OPENING.replace("2020-03-06T10:45:23", "2026-10-25T02:40:00+01:00");
            let early = SEED_CLOSURE_DONE.replace("2020-03-06T15:35:00", "2026-10-25T02:10:00");
            let world = World {
                clock: FixedClock("2026-10-25T01:50:00Z".parse().unwrap()),
                ..super::world()
            };
            world.open(&late_opening).await.unwrap();
            assert!(matches!(
                world.close(&early).await,
                Err(CloseError::BeforeOpening { .. })
            ));
        }

        /// A closure in the repeated hour whose second pass would be in the future is not
        /// moved there, not even within the clock skew allowed to partners' clocks (the
        /// second pass has not begun: neither reading is possible).
        #[tokio::test]
        async fn a_closure_in_the_repeated_hour_is_not_moved_into_the_future() {
            for now in ["2026-10-25T00:50:00Z", "2026-10-25T00:58:00Z"] {
                let world = World {
                    clock: FixedClock(now.parse().unwrap()),
                    ..world()
                };
                let opening =
                    SEED_OPENING.replace("2020-03-06T10:45:23", "2026-10-25T02:40:00+02:00");
                world.open(&opening).await.unwrap();
                let closure =
                    SEED_CLOSURE_DONE.replace("2020-03-06T15:35:00", "2026-10-25T02:10:00");
                let closed = world.close(&closure).await;
                assert!(
                    matches!(closed, Err(CloseError::BeforeOpening { .. })),
                    "at {now}: {closed:?}"
                );
            }
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
