//! The embedded store: redb (a maintained, pure-Rust, ACID key-value store) in one file.
//! A file and its whole history are one JSON document under `contract \0 reference`;
//! every change is a read-modify-write inside one write transaction (redb serialises
//! writers), which gives the same guarantees as the DynamoDB adapter's conditional
//! transactions. Listings iterate the table: a single box holds a few thousand files.

use jiff::Timestamp;
use oncall_domain::DomainEvent;
use oncall_domain::documents::{
    DocumentRecord, ObjectRef, ObjectVersion, RejectionReason, UploadGrant,
};
use oncall_domain::domain_events::StoredEvent;
use oncall_domain::file::{Delivery, InterventionFile, NewFile, RecordedEvent};
use oncall_domain::lifecycle::{FileState, Outcome};
use oncall_domain::model::FileId;
use oncall_domain::ports::{
    Backlog, ClaimToken, ClaimedObject, CloseFile, CloseFileResult, DocumentClaim, DocumentLedger,
    DocumentWait, FinishDelivery, GrantRecorded, LeaseGrant, LedgerStatus, ListOpenFiles,
    ListPendingDocuments, ListPendingEvents, LoadFile, OpenFile, OpenFileResult, Outbox,
    PendingDocument, ReadBacklog, RecordDelivery, RecordUnderLease, RequeueFailedEvent, SendLease,
    StoreError, UploadGrants,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

// The operator's reads and writes (`bridge-admin --local`), in their own file; a child
// module so that it reads the ledger's entries without widening them.
#[path = "operator.rs"]
mod operator;

const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// The outbox: event id → the event as stored (JSON).
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("outbox");
/// Send leases: file key → lease end (milliseconds since the epoch).
const LEASES: TableDefinition<&str, i64> = TableDefinition::new("leases");
/// Partners' upload grants: object key → [`GrantEntry`] (JSON).
const GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("grants");

/// An upload grant as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrantEntry {
    file: FileId,
    partner: String,
    file_name: String,
    size: u64,
    granted_at: Timestamp,
    upload_by: Timestamp,
    expires_at: Timestamp,
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

/// Where an object version stands in the documents ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ObjectStatus {
    InProgress,
    Pending,
    Published,
    Rejected,
}

/// What the documents ledger keeps per object version.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectEntry {
    status: ObjectStatus,
    #[serde(default)]
    lease_until: Option<Timestamp>,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    etag: bool,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    file: Option<FileId>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    last_attempt_at: Option<Timestamp>,
    #[serde(default)]
    in_doubt: bool,
    #[serde(default)]
    first_seen_at: Option<Timestamp>,
    #[serde(default)]
    reason: Option<RejectionReason>,
    #[serde(default)]
    at: Option<Timestamp>,
    /// The claim that last took it (the writes under a claim check it still holds).
    #[serde(default)]
    claimed_by: Option<String>,
    /// When its record's retention ends (published or rejected): then it is erased.
    #[serde(default)]
    expires_at: Option<Timestamp>,
}

impl ObjectEntry {
    fn new(object: &ObjectRef, now: Timestamp) -> Self {
        Self {
            status: ObjectStatus::Pending,
            lease_until: None,
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version: object.version.as_str().to_string(),
            etag: matches!(object.version, ObjectVersion::ETag(_)),
            size: object.size,
            file: None,
            attempts: 0,
            last_error: None,
            last_attempt_at: None,
            in_doubt: false,
            first_seen_at: Some(now),
            reason: None,
            at: None,
            claimed_by: None,
            expires_at: None,
        }
    }

    /// Still in progress under `claim`.
    fn held_by(&self, claim: &ClaimToken) -> bool {
        claim.holds(
            self.status == ObjectStatus::InProgress,
            self.claimed_by.as_deref().map(ClaimToken::new).as_ref(),
        )
    }

    fn object(&self) -> ObjectRef {
        ObjectRef {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version: if self.etag {
                ObjectVersion::ETag(self.version.clone())
            } else {
                ObjectVersion::VersionId(self.version.clone())
            },
            size: self.size,
        }
    }
}

/// An outbox entry as the embedded store keeps it.
#[derive(Serialize, Deserialize)]
struct OutboxEntry {
    written_at: Timestamp,
    detail_type: String,
    detail: serde_json::Value,
}

fn outbox_entries(announce: &[DomainEvent]) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    outbox_entries_at(announce, Timestamp::now())
}

fn outbox_entries_at(
    announce: &[DomainEvent],
    written_at: Timestamp,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    announce
        .iter()
        .map(|event| {
            let entry = OutboxEntry {
                written_at,
                detail_type: event.detail_type().to_string(),
                detail: event.detail_value(),
            };
            Ok((event.event_id(), encode(&entry)?))
        })
        .collect()
}

/// Sets event `seq`'s delivery, unless Intent already acknowledged it (delivered is
/// final); whether it was set.
fn set_delivery(file: &mut InterventionFile, seq: u32, delivery: Delivery) -> bool {
    match file.events.iter_mut().find(|event| event.seq == seq) {
        Some(event) if !matches!(event.delivery, Delivery::Delivered { .. }) => {
            event.delivery = delivery;
            true
        }
        _ => false,
    }
}

fn key(id: &FileId) -> String {
    format!("{}\0{}", id.contract_reference, id.reference)
}

fn failure(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A value that cannot be (de)serialised, told without quoting it: serde's own message
/// quotes the value it refuses, which may be a tenant's name or phone number.
fn undecodable(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!(
        "a stored value that cannot be decoded ({:?} error at line {}, column {})",
        error.classify(),
        error.line(),
        error.column()
    ))
}

/// The file identity a key names (`contract\0reference`, both identifiers), for a log
/// line.
fn key_identity(key: &str) -> (&str, &str) {
    key.split_once('\0').unwrap_or((key, ""))
}

fn decode(bytes: &[u8]) -> Result<InterventionFile, StoreError> {
    serde_json::from_slice(bytes).map_err(undecodable)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(undecodable)
}

/// The JSON value stored under `key` in `table`, if any.
fn read_entry<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    table
        .get(key)
        .map_err(failure)?
        .map(|bytes| serde_json::from_slice(bytes.value()).map_err(undecodable))
        .transpose()
}

/// Writes announcements (from [`outbox_entries`]) to the outbox, inside `txn`.
fn put_outbox(
    txn: &redb::WriteTransaction,
    outbox: &[(String, Vec<u8>)],
) -> Result<(), StoreError> {
    let mut entries = txn.open_table(OUTBOX).map_err(failure)?;
    for (event_id, entry) in outbox {
        entries
            .insert(event_id.as_str(), entry.as_slice())
            .map_err(failure)?;
    }
    Ok(())
}

/// What [`EmbeddedStore::purge_expired`] erased.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Closed files past their retention.
    pub files: usize,
    /// Objects whose ledger entry (published or rejected) passed its retention.
    pub documents: Vec<ObjectRef>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(failure)?;
        let txn = db.begin_write().map_err(failure)?;
        txn.open_table(FILES).map_err(failure)?;
        txn.open_table(OBJECTS).map_err(failure)?;
        txn.open_table(META).map_err(failure)?;
        txn.open_table(LEASES).map_err(failure)?;
        txn.open_table(OUTBOX).map_err(failure)?;
        txn.open_table(GRANTS).map_err(failure)?;
        txn.commit().map_err(failure)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs blocking store work off the async threads.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(failure)?
    }

    /// Changes one file inside a write transaction, writing `announce` to the outbox in
    /// the same transaction when the file is written; `change` returns what to answer and
    /// whether to write the file back.
    async fn update_file_announcing<T, F>(
        &self,
        id: &FileId,
        announce: &[DomainEvent],
        change: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Option<InterventionFile>) -> Result<(T, Option<InterventionFile>), StoreError>
            + Send
            + 'static,
    {
        Ok(self
            .update_file_sending(id, announce, None, change)
            .await?
            .0)
    }

    /// [`Self::update_file_announcing`], also taking the file's send lease until
    /// `sending_until` when the file is written and no sender holds the lease nor left it
    /// behind. Returns whether it was taken.
    async fn update_file_sending<T, F>(
        &self,
        id: &FileId,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
        change: F,
    ) -> Result<(T, bool), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Option<InterventionFile>) -> Result<(T, Option<InterventionFile>), StoreError>
            + Send
            + 'static,
    {
        let key = key(id);
        let outbox = outbox_entries(announce)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            let answer = {
                let mut table = txn.open_table(FILES).map_err(failure)?;
                // A file whose data has expired is gone, purged or not yet.
                let current = InterventionFile::unless_expired(
                    read_entry(&table, key.as_str())?,
                    Timestamp::now(),
                );
                let (answer, write) = change(current)?;
                let mut sending = false;
                if let Some(file) = write {
                    table
                        .insert(key.as_str(), encode(&file)?.as_slice())
                        .map_err(failure)?;
                    put_outbox(&txn, &outbox)?;
                    if let Some(until) = sending_until {
                        let mut leases = txn.open_table(LEASES).map_err(failure)?;
                        if leases.get(key.as_str()).map_err(failure)?.is_none() {
                            leases
                                .insert(key.as_str(), until.as_millisecond())
                                .map_err(failure)?;
                            sending = true;
                        }
                    }
                }
                (answer, sending)
            };
            txn.commit().map_err(failure)?;
            Ok(answer)
        })
        .await
    }

    async fn all_files(&self) -> Result<Vec<InterventionFile>, StoreError> {
        Ok(self.all_files_and_undecodable().await?.0)
    }

    /// Every file not expired, and the identities of those that cannot be decoded: one
    /// file that cannot be read does not hide the others, and the listings still name it
    /// (as DynamoDB's index listings name each file, read on its own), so that the closer
    /// tries it and counts its error instead of passing over it.
    async fn all_files_and_undecodable(
        &self,
    ) -> Result<(Vec<InterventionFile>, Vec<FileId>), StoreError> {
        self.run(|db| {
            let txn = db.begin_read().map_err(failure)?;
            let table = txn.open_table(FILES).map_err(failure)?;
            let mut files = Vec::new();
            let mut undecodable = Vec::new();
            for entry in table.iter().map_err(failure)? {
                let (key, value) = entry.map_err(failure)?;
                match decode(value.value()) {
                    Ok(file) => files.push(file),
                    Err(error) => {
                        let (contract, reference) = key_identity(key.value());
                        tracing::error!(%error, contract, reference, "a stored file cannot be decoded");
                        undecodable.push(FileId::new(reference, contract));
                    }
                }
            }
            let now = Timestamp::now();
            files.retain(|file: &InterventionFile| !file.has_expired(now));
            Ok((files, undecodable))
        })
        .await
    }

    /// Ends every send lease a previous process left: the local run is one process, so a
    /// lease found at start belongs to a process that died mid-send. The leases are kept,
    /// expired, so that the next sender takes them over in doubt and reads Intent first.
    pub async fn expire_leases_of_dead_processes(&self) -> Result<usize, StoreError> {
        self.run(|db| {
            let txn = db.begin_write().map_err(failure)?;
            let count = {
                let mut leases = txn.open_table(LEASES).map_err(failure)?;
                let keys: Vec<String> = leases
                    .iter()
                    .map_err(failure)?
                    .filter_map(|entry| entry.ok().map(|(key, _)| key.value().to_string()))
                    .collect();
                for key in &keys {
                    leases.insert(key.as_str(), 0).map_err(failure)?;
                }
                keys.len()
            };
            txn.commit().map_err(failure)?;
            Ok(count)
        })
        .await
    }

    /// Erases the files whose retention ended (as DynamoDB's TTL does): their events hold
    /// tenants' personal data; and the quitus' ledger entries whose record's retention
    /// ended (their keys name the files). Says what went.
    pub async fn purge_expired(&self, now: Timestamp) -> Result<Purged, StoreError> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            let purged = {
                let mut files = txn.open_table(FILES).map_err(failure)?;
                let mut expired = Vec::new();
                for entry in files.iter().map_err(failure)? {
                    let (key, value) = entry.map_err(failure)?;
                    // Closed files only: an open file's expiry is its opening's, and
                    // it is erased once closed.
                    let file = match decode(value.value()) {
                        Ok(file) => file,
                        Err(error) => {
                            let (contract, reference) = key_identity(key.value());
                            tracing::error!(%error, contract, reference, "a stored file cannot be decoded; left in place");
                            continue;
                        }
                    };
                    if file.state != FileState::Open && file.expires_at.is_some_and(|at| at <= now)
                    {
                        expired.push(key.value().to_string());
                    }
                }
                let mut leases = txn.open_table(LEASES).map_err(failure)?;
                for key in &expired {
                    files.remove(key.as_str()).map_err(failure)?;
                    leases.remove(key.as_str()).map_err(failure)?;
                }
                let mut grants = txn.open_table(GRANTS).map_err(failure)?;
                let mut expired_grants = Vec::new();
                for entry in grants.iter().map_err(failure)? {
                    let (key, value) = entry.map_err(failure)?;
                    let grant: GrantEntry = serde_json::from_slice(value.value())
                        .map_err(undecodable)?;
                    if grant.expires_at <= now {
                        expired_grants.push(key.value().to_string());
                    }
                }
                for key in &expired_grants {
                    grants.remove(key.as_str()).map_err(failure)?;
                }
                let mut objects = txn.open_table(OBJECTS).map_err(failure)?;
                let mut expired_objects = Vec::new();
                for entry in objects.iter().map_err(failure)? {
                    let (key, value) = entry.map_err(failure)?;
                    let object: ObjectEntry = serde_json::from_slice(value.value())
                        .map_err(undecodable)?;
                    if object.expires_at.is_some_and(|at| at <= now) {
                        expired_objects.push((key.value().to_string(), object.object()));
                    }
                }
                for (key, _) in &expired_objects {
                    objects.remove(key.as_str()).map_err(failure)?;
                }
                Purged {
                    files: expired.len(),
                    documents: expired_objects
                        .into_iter()
                        .map(|(_, object)| object)
                        .collect(),
                }
            };
            txn.commit().map_err(failure)?;
            Ok(purged)
        })
        .await
    }

    /// A small key-value note (e.g. the last on-call period handled).
    pub async fn meta(&self, name: &'static str) -> Result<Option<String>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(failure)?;
            let table = txn.open_table(META).map_err(failure)?;
            Ok(table
                .get(name)
                .map_err(failure)?
                .map(|value| value.value().to_string()))
        })
        .await
    }

    pub async fn set_meta(&self, name: &'static str, value: String) -> Result<(), StoreError> {
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            txn.open_table(META)
                .map_err(failure)?
                .insert(name, value.as_str())
                .map_err(failure)?;
            txn.commit().map_err(failure)
        })
        .await
    }

    async fn update_object<T, F>(&self, identity: String, change: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Option<ObjectEntry>) -> (T, Option<Option<ObjectEntry>>) + Send + 'static,
    {
        self.update_object_announcing(identity, &[], change).await
    }

    /// [`Self::update_object`], writing `announce` to the outbox in the same transaction
    /// when the entry is written.
    async fn update_object_announcing<T, F>(
        &self,
        identity: String,
        announce: &[DomainEvent],
        change: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Option<ObjectEntry>) -> (T, Option<Option<ObjectEntry>>) + Send + 'static,
    {
        let outbox = outbox_entries(announce)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            let answer = {
                let mut table = txn.open_table(OBJECTS).map_err(failure)?;
                let current: Option<ObjectEntry> = read_entry(&table, identity.as_str())?;
                let (answer, write) = change(current);
                if matches!(write, Some(Some(_))) {
                    put_outbox(&txn, &outbox)?;
                }
                match write {
                    Some(Some(entry)) => {
                        table
                            .insert(identity.as_str(), encode(&entry)?.as_slice())
                            .map_err(failure)?;
                    }
                    Some(None) => {
                        table.remove(identity.as_str()).map_err(failure)?;
                    }
                    None => {}
                }
                answer
            };
            txn.commit().map_err(failure)?;
            Ok(answer)
        })
        .await
    }
}

impl OpenFile for EmbeddedStore {
    async fn open_file_sending(
        &self,
        file: &NewFile,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> Result<OpenFileResult, StoreError> {
        let new = file.opened();
        let (result, _) =
            self.update_file_sending(&file.id(), announce, sending_until, move |current| {
                match current {
                    Some(existing) => Ok((OpenFileResult::AlreadyExists(existing), None)),
                    None => Ok((OpenFileResult::Created, Some(new))),
                }
            })
            .await?;
        Ok(result)
    }
}

/// One by one: an embedded database reads each file without a round trip.
impl oncall_domain::ports::LoadFiles for EmbeddedStore {}

impl LoadFile for EmbeddedStore {
    async fn load_file(&self, id: &FileId) -> Result<Option<InterventionFile>, StoreError> {
        let key = key(id);
        self.run(move |db| {
            let txn = db.begin_read().map_err(failure)?;
            let table = txn.open_table(FILES).map_err(failure)?;
            let file = match table.get(key.as_str()).map_err(failure)? {
                Some(bytes) => Some(decode(bytes.value())?),
                None => None,
            };
            Ok(InterventionFile::unless_expired(file, Timestamp::now()))
        })
        .await
    }
}

impl oncall_domain::ports::MarkQuitusReceived for EmbeddedStore {
    async fn mark_quitus_received(
        &self,
        id: &FileId,
    ) -> Result<oncall_domain::ports::QuitusMark, StoreError> {
        use oncall_domain::ports::QuitusMark;
        self.update_file_announcing(id, &[], |current| {
            Ok(match current {
                None => (QuitusMark::NoFile, None),
                Some(file) if file.state == FileState::Closed(Outcome::Canceled) => {
                    (QuitusMark::FileCanceled, None)
                }
                Some(mut file) => {
                    file.quitus_received = true;
                    (QuitusMark::Marked, Some(file))
                }
            })
        })
        .await
    }
}

impl RequeueFailedEvent for EmbeddedStore {
    async fn requeue_failed_event(
        &self,
        id: &FileId,
        seq: u32,
        pending: &Delivery,
    ) -> Result<bool, StoreError> {
        let pending = pending.clone();
        self.update_file_announcing(id, &[], move |current| {
            let Some(mut file) = current else {
                return Ok((false, None));
            };
            match file.events.iter_mut().find(|event| event.seq == seq) {
                Some(event)
                    if matches!(&event.delivery, Delivery::Failed { attempts, .. } if *attempts == pending.attempts()) =>
                {
                    event.delivery = pending;
                    Ok((true, Some(file)))
                }
                _ => Ok((false, None)),
            }
        })
        .await
    }
}

impl oncall_domain::ports::RecordLostEventRefused for EmbeddedStore {
    async fn record_lost_event_refused(
        &self,
        id: &FileId,
        seq: u32,
        failed: &Delivery,
        announce: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        let failed = failed.clone();
        self.update_file_announcing(id, announce, move |current| {
            let Some(mut file) = current else {
                return Ok((false, None));
            };
            match file.events.iter_mut().find(|event| event.seq == seq) {
                Some(event) if event.delivery.is_delivered() => {
                    event.delivery = failed;
                    Ok((true, Some(file)))
                }
                _ => Ok((false, None)),
            }
        })
        .await
    }
}

impl EmbeddedStore {
    /// The end (epoch seconds) of the latest period reconciled to its end, if any.
    async fn reconciled_period_end(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .meta("period_reconciled_end")
            .await?
            .and_then(|end| end.parse().ok()))
    }
}

impl oncall_domain::ports::PeriodReconciliations for EmbeddedStore {
    async fn period_reconciled(
        &self,
        period: &oncall_domain::calendar::OnCallPeriod,
    ) -> Result<bool, StoreError> {
        Ok(self.reconciled_period_end().await? >= Some(period.end.as_second()))
    }

    async fn mark_period_reconciled(
        &self,
        period: &oncall_domain::calendar::OnCallPeriod,
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        if self.reconciled_period_end().await? >= Some(period.end.as_second()) {
            return Ok(());
        }
        self.set_meta("period_reconciled_end", period.end.as_second().to_string())
            .await
    }
}

impl RecordDelivery for EmbeddedStore {
    async fn record_delivery(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        let delivery = delivery.clone();
        self.update_file_announcing(id, announce, move |current| {
            let Some(mut file) = current else {
                return Ok(((), None));
            };
            let written = set_delivery(&mut file, seq, delivery);
            Ok(((), written.then_some(file)))
        })
        .await
    }
}

impl CloseFile for EmbeddedStore {
    async fn close_file_sending(
        &self,
        id: &FileId,
        expected_version: u32,
        closing: &RecordedEvent,
        outcome: Outcome,
        expiry: oncall_domain::lifecycle::ClosingExpiry,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> Result<CloseFileResult, StoreError> {
        let closing = closing.clone();
        let missing = id.clone();
        let (result, sending) = self
            .update_file_sending(id, announce, sending_until, move |current| {
                let mut file =
                    current.ok_or_else(|| StoreError::Corrupt(format!("no file {missing}")))?;
                let canceled_too_late =
                    outcome == Outcome::Canceled && file.activity_since_opening().is_some();
                if file.state != FileState::Open
                    || file.version() != expected_version
                    || canceled_too_late
                {
                    return Ok((CloseFileResult::StateChanged(file), None));
                }
                file.state = FileState::Closed(outcome);
                file.events.push(closing);
                file.expires_at = Some(expiry.at);
                Ok((CloseFileResult::Closed, Some(file)))
            })
            .await?;
        Ok(match result {
            CloseFileResult::Closed if sending => CloseFileResult::ClosedSending,
            other => other,
        })
    }
}

impl RecordUnderLease for EmbeddedStore {
    /// One write transaction: the lease checked and the outcome written together (a
    /// takeover cannot land between them).
    async fn record_under_lease(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let key = key(id);
        let delivery = delivery.clone();
        let outbox = outbox_entries(announce)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            {
                let leases = txn.open_table(LEASES).map_err(failure)?;
                let held = leases
                    .get(key.as_str())
                    .map_err(failure)?
                    .is_some_and(|held| held.value() == until.as_millisecond());
                if !held {
                    tracing::warn!(
                        seq,
                        "the send lease was taken over before this outcome was recorded; the taker's stands"
                    );
                    return Ok(());
                }
                let mut table = txn.open_table(FILES).map_err(failure)?;
                let Some(mut file) = read_entry::<InterventionFile>(&table, key.as_str())? else {
                    return Ok(());
                };
                if !set_delivery(&mut file, seq, delivery) {
                    return Ok(());
                }
                table
                    .insert(key.as_str(), encode(&file)?.as_slice())
                    .map_err(failure)?;
                put_outbox(&txn, &outbox)?;
            }
            txn.commit().map_err(failure)
        })
        .await
    }
}

impl FinishDelivery for EmbeddedStore {}

impl DocumentLedger for EmbeddedStore {
    async fn claim_document(
        &self,
        object: &ObjectRef,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<DocumentClaim, StoreError> {
        let fresh = ObjectEntry::new(object, now);
        self.update_object(object.identity(), move |current| {
            let status = current.as_ref().map(|entry| match entry.status {
                ObjectStatus::Published => LedgerStatus::Published,
                ObjectStatus::Rejected => LedgerStatus::Rejected,
                ObjectStatus::InProgress => LedgerStatus::InProgress {
                    lease_until: entry.lease_until,
                },
                ObjectStatus::Pending => LedgerStatus::Pending {
                    in_doubt: entry.in_doubt,
                },
            });
            let in_doubt = match DocumentClaim::decide(status, now) {
                Ok(in_doubt) => in_doubt,
                Err(answer) => return (answer, None),
            };
            let mut entry = current.unwrap_or(fresh);
            let token = uuid::Uuid::new_v4().to_string();
            entry.status = ObjectStatus::InProgress;
            entry.lease_until = Some(lease_until);
            entry.claimed_by = Some(token.clone());
            let claim = DocumentClaim::Claimed(ClaimedObject {
                token: ClaimToken::new(token),
                in_doubt,
                attempts: entry.attempts,
                first_seen_at: entry.first_seen_at.unwrap_or(now),
            });
            (claim, Some(Some(entry)))
        })
        .await
    }

    async fn release_document(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
    ) -> Result<(), StoreError> {
        let claim = claim.clone();
        self.update_object(object.identity(), move |current| match current {
            Some(mut entry) if entry.held_by(&claim) => {
                entry.status = ObjectStatus::Pending;
                entry.lease_until = None;
                entry.in_doubt = true;
                ((), Some(Some(entry)))
            }
            _ => ((), None),
        })
        .await
    }

    async fn record_pending(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        wait: &DocumentWait,
    ) -> Result<(), StoreError> {
        let wait = wait.clone();
        let claim = claim.clone();
        self.update_object(object.identity(), move |current| match current {
            Some(mut entry) if entry.held_by(&claim) => {
                entry.status = ObjectStatus::Pending;
                entry.lease_until = None;
                entry.attempts = wait.attempts;
                entry.last_error = Some(wait.last_error);
                entry.last_attempt_at = Some(wait.last_attempt_at);
                entry.in_doubt = wait.in_doubt;
                if wait.file.is_some() {
                    entry.file = wait.file;
                }
                (Ok(()), Some(Some(entry)))
            }
            _ => (
                Err(StoreError::Unavailable(
                    "the object's claim was lost before its wait was recorded".into(),
                )),
                None,
            ),
        })
        .await?
    }

    async fn record_published(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        file: &InterventionFile,
        record: &DocumentRecord,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        // One write transaction: the ledger under this claim, the document on its file
        // (once per object identity), the announcement; nothing if the claim is lost.
        let identity = object.identity();
        let file_key = key(&file.id);
        let outbox = outbox_entries(announce)?;
        let claim = claim.clone();
        let record = record.clone();
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            {
                let mut objects = txn.open_table(OBJECTS).map_err(failure)?;
                let current: Option<ObjectEntry> = read_entry(&objects, identity.as_str())?;
                let Some(mut entry) = current.filter(|entry| entry.held_by(&claim)) else {
                    // Dropped uncommitted: nothing written.
                    return Err(StoreError::Unavailable(
                        "the object's claim was lost before the document was recorded".into(),
                    ));
                };
                entry.status = ObjectStatus::Published;
                entry.lease_until = None;
                entry.in_doubt = false;
                entry.at = Some(record.published_at);
                entry.expires_at = Some(expires_at);
                objects
                    .insert(identity.as_str(), encode(&entry)?.as_slice())
                    .map_err(failure)?;
            }
            {
                let mut files = txn.open_table(FILES).map_err(failure)?;
                let stored: Option<InterventionFile> = read_entry(&files, file_key.as_str())?;
                if let Some(mut stored) = stored
                    && !stored
                        .documents
                        .iter()
                        .any(|d| d.object_identity == record.object_identity)
                {
                    stored.documents.push(record);
                    stored.quitus_received = true;
                    files
                        .insert(file_key.as_str(), encode(&stored)?.as_slice())
                        .map_err(failure)?;
                }
            }
            put_outbox(&txn, &outbox)?;
            txn.commit().map_err(failure)
        })
        .await
    }

    async fn record_rejected(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        reason: RejectionReason,
        detail: &str,
        now: Timestamp,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        let detail = detail.to_string();
        let claim = claim.clone();
        self.update_object_announcing(object.identity(), announce, move |current| {
            // Under this claim only; otherwise already handled, or taken over by another
            // claim (which decides for itself).
            let Some(mut entry) = current.filter(|entry| entry.held_by(&claim)) else {
                return (false, None);
            };
            entry.status = ObjectStatus::Rejected;
            entry.lease_until = None;
            entry.reason = Some(reason);
            entry.last_error = Some(detail);
            entry.at = Some(now);
            entry.expires_at = Some(expires_at);
            (true, Some(Some(entry)))
        })
        .await
    }
}

impl EmbeddedStore {
    async fn all_objects(&self) -> Result<Vec<ObjectEntry>, StoreError> {
        self.run(|db| {
            let txn = db.begin_read().map_err(failure)?;
            let table = txn.open_table(OBJECTS).map_err(failure)?;
            let mut entries = Vec::new();
            for entry in table.iter().map_err(failure)? {
                let (_, value) = entry.map_err(failure)?;
                entries.push(
                    serde_json::from_slice::<ObjectEntry>(value.value()).map_err(undecodable)?,
                );
            }
            Ok(entries)
        })
        .await
    }
}

impl ListPendingDocuments for EmbeddedStore {
    async fn pending_documents(&self) -> Result<Vec<PendingDocument>, StoreError> {
        Ok(self
            .all_objects()
            .await?
            .into_iter()
            .filter(|entry| {
                matches!(
                    entry.status,
                    ObjectStatus::Pending | ObjectStatus::InProgress
                ) && !entry.key.is_empty()
            })
            .map(|entry| PendingDocument {
                object: entry.object(),
                file: entry.file.clone(),
                first_seen_at: entry.first_seen_at,
                attempts: entry.attempts,
                last_attempt_at: entry.last_attempt_at,
                last_error: entry.last_error.clone(),
            })
            .collect())
    }
}

impl ReadBacklog for EmbeddedStore {
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let files = self.all_files().await?;
        let mut backlog = Backlog::default();
        backlog.count_events(files.iter().flat_map(|file| file.events.iter()));
        backlog.count_documents(&self.pending_documents().await?);
        backlog.rejected_documents = self.documents_refused_by_intent().await?;
        backlog.count_unpublished(self.outbox_written_at().await?);
        Ok(backlog)
    }
}

impl EmbeddedStore {
    /// When each entry of the outbox was written (an undecodable one counts as written
    /// now: it is there, and its age unknown).
    async fn outbox_written_at(&self) -> Result<Vec<Timestamp>, StoreError> {
        self.run(|db| {
            let txn = db.begin_read().map_err(failure)?;
            let table = txn.open_table(OUTBOX).map_err(failure)?;
            let mut written = Vec::new();
            for entry in table.iter().map_err(failure)? {
                let (_, value) = entry.map_err(failure)?;
                written.push(
                    serde_json::from_slice::<OutboxEntry>(value.value())
                        .map_or_else(|_| Timestamp::now(), |stored| stored.written_at),
                );
            }
            Ok(written)
        })
        .await
    }
}

impl UploadGrants for EmbeddedStore {
    async fn record_upload_grant(
        &self,
        grant: &UploadGrant,
        expires_at: Timestamp,
    ) -> Result<GrantRecorded, StoreError> {
        let key = grant.key.clone();
        let entry = serde_json::to_vec(&GrantEntry {
            file: grant.file.clone(),
            partner: grant.partner.0.clone(),
            file_name: grant.file_name.clone(),
            size: grant.size,
            granted_at: grant.granted_at,
            upload_by: grant.upload_by,
            expires_at,
        })
        .map_err(undecodable)?;
        let (file_key, partner) = (self::key(&grant.file), grant.partner.clone());
        self.run(move |db| {
            // The file is checked in the grant's own write transaction.
            let txn = db.begin_write().map_err(failure)?;
            let file: Option<InterventionFile> =
                read_entry(&txn.open_table(FILES).map_err(failure)?, &file_key)?;
            let recorded = match file {
                Some(file) if file.owner != partner => GrantRecorded::NoFile,
                None => GrantRecorded::NoFile,
                Some(file) if file.state == FileState::Closed(Outcome::Canceled) => {
                    GrantRecorded::FileCanceled
                }
                Some(_) => {
                    txn.open_table(GRANTS)
                        .map_err(failure)?
                        .insert(key.as_str(), entry.as_slice())
                        .map_err(failure)?;
                    GrantRecorded::Recorded
                }
            };
            txn.commit().map_err(failure)?;
            Ok(recorded)
        })
        .await
    }

    async fn upload_grant(&self, key: &str) -> Result<Option<UploadGrant>, StoreError> {
        let key = key.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(failure)?;
            let table = txn.open_table(GRANTS).map_err(failure)?;
            let Some(value) = table.get(key.as_str()).map_err(failure)? else {
                return Ok(None);
            };
            let entry: GrantEntry = serde_json::from_slice(value.value()).map_err(undecodable)?;
            // One whose data has expired is gone, though the purge has not erased it yet.
            if entry.expires_at <= Timestamp::now() {
                return Ok(None);
            }
            Ok(Some(UploadGrant {
                key,
                file: entry.file,
                partner: oncall_domain::PartnerId(entry.partner),
                file_name: entry.file_name,
                size: entry.size,
                granted_at: entry.granted_at,
                upload_by: entry.upload_by,
            }))
        })
        .await
    }
}

impl Outbox for EmbeddedStore {
    async fn unpublished_events(&self, before: Timestamp) -> Result<Vec<DomainEvent>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(failure)?;
            let table = txn.open_table(OUTBOX).map_err(failure)?;
            let mut events = Vec::new();
            for entry in table.iter().map_err(failure)? {
                let (id, value) = entry.map_err(failure)?;
                let stored: OutboxEntry =
                    serde_json::from_slice(value.value()).map_err(undecodable)?;
                if stored.written_at < before {
                    events.push((
                        stored.written_at,
                        DomainEvent::Stored(StoredEvent {
                            id: id.value().to_string(),
                            detail_type: stored.detail_type,
                            detail: stored.detail,
                        }),
                    ));
                }
            }
            events.sort_by_key(|(at, _)| *at);
            Ok(events.into_iter().map(|(_, event)| event).collect())
        })
        .await
    }

    async fn clear_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        let ids = event_ids.to_vec();
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            {
                let mut table = txn.open_table(OUTBOX).map_err(failure)?;
                for id in &ids {
                    table.remove(id.as_str()).map_err(failure)?;
                }
            }
            txn.commit().map_err(failure)
        })
        .await
    }

    async fn keep(&self, events: &[DomainEvent], now: Timestamp) -> Result<(), StoreError> {
        let entries = outbox_entries_at(events, now)?;
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            put_outbox(&txn, &entries)?;
            txn.commit().map_err(failure)
        })
        .await
    }
}

impl ListOpenFiles for EmbeddedStore {
    /// A file that cannot be decoded is listed too (whether it is open cannot be told):
    /// its closing then fails on it and is counted, never silently skipped.
    async fn open_files_opened_before(&self, before: Timestamp) -> Result<Vec<FileId>, StoreError> {
        let (files, undecodable) = self.all_files_and_undecodable().await?;
        Ok(files
            .into_iter()
            .filter(|file| file.state == FileState::Open)
            .filter(|file| {
                file.opening()
                    .is_some_and(|opening| oncall_domain::file::opened_at(opening) < before)
            })
            .map(|file| file.id)
            .chain(undecodable)
            .collect())
    }
}

impl ListPendingEvents for EmbeddedStore {
    /// A file that cannot be decoded is listed too (see [`ListOpenFiles`]).
    async fn files_with_pending_events(&self) -> Result<Vec<FileId>, StoreError> {
        let (files, undecodable) = self.all_files_and_undecodable().await?;
        Ok(files
            .into_iter()
            .filter(|file| {
                file.events
                    .iter()
                    .any(|event| matches!(event.delivery, Delivery::Pending { .. }))
            })
            .map(|file| file.id)
            .chain(undecodable)
            .collect())
    }
}

impl SendLease for EmbeddedStore {
    async fn take_send_lease(
        &self,
        id: &FileId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError> {
        let key = key(id);
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            // No file, nothing to send: no lease (as DynamoDB's condition on the file item).
            if txn
                .open_table(FILES)
                .map_err(failure)?
                .get(key.as_str())
                .map_err(failure)?
                .is_none()
            {
                return Ok(LeaseGrant::HeldElsewhere);
            }
            let taken = {
                let mut leases = txn.open_table(LEASES).map_err(failure)?;
                let held = leases
                    .get(key.as_str())
                    .map_err(failure)?
                    .map(|until| until.value());
                match held {
                    Some(held) if held >= now.as_millisecond() => LeaseGrant::HeldElsewhere,
                    held => {
                        leases
                            .insert(key.as_str(), until.as_millisecond())
                            .map_err(failure)?;
                        // A lease never given back: its holder died mid-send.
                        if held.is_some() {
                            LeaseGrant::TakenOver
                        } else {
                            LeaseGrant::Taken
                        }
                    }
                }
            };
            txn.commit().map_err(failure)?;
            Ok(taken)
        })
        .await
    }

    async fn release_send_lease(&self, id: &FileId, until: Timestamp) -> Result<(), StoreError> {
        let key = key(id);
        self.run(move |db| {
            let txn = db.begin_write().map_err(failure)?;
            {
                let mut leases = txn.open_table(LEASES).map_err(failure)?;
                let mine = leases
                    .get(key.as_str())
                    .map_err(failure)?
                    .is_some_and(|held| held.value() == until.as_millisecond());
                if mine {
                    leases.remove(key.as_str()).map_err(failure)?;
                }
            }
            txn.commit().map_err(failure)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_domain::ports::{ListPendingEvents, LoadFile, OpenFile};

    /// One stored file that cannot be decoded (written by another version, damaged) does
    /// not stop the others from being listed, purged and re-sent, and the error it gives
    /// does not quote what it holds (a tenant's name, a phone number).
    #[tokio::test]
    async fn an_undecodable_file_stops_nothing_else_and_is_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
        let (good, bad) = (
            store_contract::new_file("GOOD-1"),
            store_contract::new_file("BAD-1"),
        );
        for file in [&good, &bad] {
            store.open_file(file, &[]).await.unwrap();
        }
        let bad_key = key(&bad.id());
        store
            .run(move |db| {
                let txn = db.begin_write().map_err(failure)?;
                {
                    let mut files = txn.open_table(FILES).map_err(failure)?;
                    let mut value: serde_json::Value = serde_json::from_slice(
                        files
                            .get(bad_key.as_str())
                            .map_err(failure)?
                            .unwrap()
                            .value(),
                    )
                    .unwrap();
                    value["events"] = serde_json::json!("Pierre DUPONT 0685874445");
                    let bytes = serde_json::to_vec(&value).unwrap();
                    files
                        .insert(bad_key.as_str(), bytes.as_slice())
                        .map_err(failure)?;
                }
                txn.commit().map_err(failure)
            })
            .await
            .unwrap();

        // Both listed: the good one to be re-sent, the bad one to fail where it is read
        // (counted by the closer), not passed over.
        let mut pending = store.files_with_pending_events().await.unwrap();
        pending.sort_by(|a, b| a.reference.cmp(&b.reference));
        assert_eq!(pending, vec![bad.id(), good.id()]);
        let mut open = store
            .open_files_opened_before(Timestamp::now())
            .await
            .unwrap();
        open.sort_by(|a, b| a.reference.cmp(&b.reference));
        assert_eq!(open, vec![bad.id(), good.id()]);
        store.purge_expired(Timestamp::now()).await.unwrap();
        let error = store.load_file(&bad.id()).await.unwrap_err().to_string();
        assert!(!error.contains("DUPONT"), "{error}");
        assert!(store.load_file(&good.id()).await.unwrap().is_some());
    }
}
