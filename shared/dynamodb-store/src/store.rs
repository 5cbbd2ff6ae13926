use crate::group_commit::GroupCommit;
use crate::items::{
    CREATES_ITEM, FILE_SK, Item, OUTBOX_PREFIX, OUTBOX_SK, PENDING_EVENTS_INDEX, delivered_copy,
    delivery_attributes, event_copy, event_item, event_sk, file_from_file_item, file_from_items,
    file_item, file_pk, instant_number, n, not_expired_condition_value, outbox_item, outbox_pk,
    recorded_event, s, sortable_time, stored_event,
};
use crate::wire::{
    AttributeValue, DynamoDb, DynamoError, OldItems, Operation, Request, TransactWriteItem,
    request_token,
};
use jiff::Timestamp;
use oncall_domain::DomainEvent;
use oncall_domain::file::{Delivery, InterventionFile, NewFile, RecordedEvent};
use oncall_domain::lifecycle::{ClosingExpiry, Outcome};
use oncall_domain::model::FileId;
use oncall_domain::ports::{
    CloseFile, CloseFileResult, FinishDelivery, LeaseGrant, LoadFile, LoadFiles,
    MarkQuitusReceived, OpenFile, OpenFileResult, Outbox, QuitusMark, RecordDelivery,
    RecordUnderLease, RequeueFailedEvent, SendLease, StoreError, UnreadClosing,
    UnreadClosingResult,
};
use std::collections::HashMap;
use std::time::Duration;

/// How often a transaction that lost a race with another one is tried again.
const CONTENTION_RETRIES: u32 = 8;

/// The DynamoDB adapter. Cheap to clone (the HTTP client is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct DynamoDbStore {
    client: DynamoDb,
    table: String,
    /// Set for a process that writes many files at once (see [`DynamoDbStore::with_group_commit`]).
    group: Option<std::sync::Arc<GroupCommit>>,
    /// Closings this process wrote unread (kept on their file item) whose delivery it has
    /// not yet recorded, by file partition: that write gives each its own item.
    staged: std::sync::Arc<std::sync::Mutex<HashMap<String, StagedClosing>>>,
}

/// A closing written unread, kept on its file item (`stagedClosing`, its announcements in
/// `stagedOutbox`) until the write that records its delivery gives it its own item (or,
/// should this process die first, until the next sender's taking of the lease does).
#[derive(Debug)]
struct StagedClosing {
    event: RecordedEvent,
    /// The file's `expiresAt`, which the closing's item gets.
    expires_at: Option<AttributeValue>,
    /// Its announcements' ids: never outbox items unless the bus did not take them.
    announcements: Vec<String>,
    /// Their outbox items, for a lease given back before the outcome is known.
    outbox: Vec<Item>,
    /// The end of the lease it was written with.
    until: Timestamp,
}

/// Where the file item notes that event `seq` is delivered (`delivered_copy`): the
/// opening (1) and the closing (2), a file's only events. Set only with the event's own
/// delivered record, under the lease; taken away when a delivered event is found lost and
/// refused (delivered is otherwise final), so present, it says what the event's item says.
struct DeliveryMirror {
    attribute: &'static str,
    set: &'static str,
    placeholder: &'static str,
}

fn delivery_mirror(seq: u32) -> Option<DeliveryMirror> {
    match seq {
        1 => Some(DeliveryMirror {
            attribute: "openingDelivery",
            set: "openingDelivery = :opening_delivery",
            placeholder: ":opening_delivery",
        }),
        2 => Some(DeliveryMirror {
            attribute: "closingDelivery",
            set: "closingDelivery = :closing_delivery",
            placeholder: ":closing_delivery",
        }),
        _ => None,
    }
}

/// The file item's attributes holding a closing written unread, and its place in the
/// pending-events index until the closing has its own item.
const STAGED_ATTRIBUTES: [&str; 4] = [
    "stagedClosing",
    "stagedOutbox",
    "pendingShard",
    "pendingSince",
];

pub(crate) fn unavailable(error: DynamoError) -> StoreError {
    StoreError::Unavailable(error.message)
}

enum Cancellation {
    /// A condition failed: the item exists, or the state moved on.
    ConditionFailed(OldItems),
    /// Lost a race with another transaction on the same items.
    Conflict,
    /// The same call (same token) is still being applied, past the call's own retries.
    InProgress,
}

fn cancellation(error: &DynamoError) -> Option<Cancellation> {
    if error.is_transaction_in_progress() {
        return Some(Cancellation::InProgress);
    }
    if !error.is_transaction_cancelled() {
        return None;
    }
    let codes = &error.cancellation_reasons;
    if codes.iter().any(|code| code == "ConditionalCheckFailed") {
        Some(Cancellation::ConditionFailed(error.old_items.clone()))
    } else if codes.iter().any(|code| {
        matches!(
            code.as_str(),
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        )
    }) {
        Some(Cancellation::Conflict)
    } else {
        // A validation error or anything else: retrying will not help.
        None
    }
}

/// Full-jitter pause before retrying a transaction that lost a race.
pub(crate) async fn contention_pause(attempt: u32) {
    let cap_ms = 10u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(1 + fastrand::u64(0..cap_ms))).await;
}

impl DynamoDbStore {
    /// The store on `table`, through `dynamodb` (an [`AwsJsonService`] speaking
    /// [`aws_signing::DYNAMODB`]).
    ///
    /// [`AwsJsonService`]: aws_signing::AwsJsonService
    pub fn new(dynamodb: aws_signing::AwsJsonService, table: impl Into<String>) -> Self {
        let client = DynamoDb::new(dynamodb);
        Self {
            client,
            table: table.into(),
            group: None,
            staged: Default::default(),
        }
    }

    /// Concurrent transactions share `TransactWriteItems` calls, at most `max_in_flight`
    /// calls at once (see `group_commit`): for a process that writes many files at once
    /// (the on-call closer), not for one request at a time (nothing to share).
    pub fn with_group_commit(mut self, max_in_flight: usize) -> Self {
        self.group = Some(GroupCommit::new(max_in_flight));
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Where the table's calls go.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    pub(crate) fn client(&self) -> &DynamoDb {
        &self.client
    }

    /// A request on the table.
    pub(crate) fn request(&self) -> Request {
        Request::on(&self.table)
    }

    /// A put that creates `item`, over one whose data has expired but that TTL has not
    /// erased yet ([`CREATES_ITEM`]).
    fn creating(&self, item: Item) -> Request {
        let (now, now_value) = not_expired_condition_value(Timestamp::now());
        self.request()
            .item(item)
            .condition_expression(CREATES_ITEM)
            .value(now, now_value)
    }

    async fn query_partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        self.client
            .query_all(
                self.request()
                    .key_condition_expression("pk = :pk")
                    .value(":pk", AttributeValue::S(pk.to_string()))
                    .consistent_read(),
            )
            .await
            .map_err(unavailable)
    }
}

/// How a transaction ended.
pub(crate) enum Transaction {
    Committed,
    /// A condition failed: the item exists, or the state moved on; with the items the
    /// actions that asked for them gave back (one per action of this transaction, also
    /// when its call was shared).
    ConditionFailed(OldItems),
}

/// How one attempt at a transaction ended.
pub(crate) enum Attempt {
    Committed,
    ConditionFailed(OldItems),
    /// Lost a race with another writer: try again after a pause.
    Conflict,
    /// The same call is still being applied: ask again, with the same token, after a
    /// pause (a new token could find the call's own writes and fail their conditions).
    InProgress,
}

/// One `TransactWriteItems` call for `items`, with `token` (its idempotency token).
pub(crate) async fn send_transaction(
    client: &DynamoDb,
    items: Vec<TransactWriteItem>,
    token: String,
) -> Result<Attempt, StoreError> {
    send_kept_transaction(
        client,
        &Request::default()
            .transact_items(items)
            .client_request_token(token),
    )
    .await
}

/// [`send_transaction`] of a request (its items and token) the caller keeps, to send it
/// again as it is.
async fn send_kept_transaction(
    client: &DynamoDb,
    request: &Request,
) -> Result<Attempt, StoreError> {
    match client
        .send_kept(Operation::TransactWriteItems, request)
        .await
    {
        Ok(_) => Ok(Attempt::Committed),
        Err(error) => attempt_failed(error),
    }
}

/// What a `TransactWriteItems` call of one transaction that failed with `error` means.
pub(crate) fn attempt_failed(error: DynamoError) -> Result<Attempt, StoreError> {
    match cancellation(&error) {
        Some(Cancellation::ConditionFailed(old)) => Ok(Attempt::ConditionFailed(old)),
        Some(Cancellation::Conflict) => Ok(Attempt::Conflict),
        Some(Cancellation::InProgress) => Ok(Attempt::InProgress),
        None => Err(unavailable(error)),
    }
}

impl DynamoDbStore {
    /// Runs a transaction, trying again (with jitter) while it loses races with other
    /// transactions on the same items.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Transaction, StoreError> {
        // One token while the same call may still be applied; a new one once DynamoDB has
        // answered it (a token whose call was cancelled is not reused). Alone, the request
        // is built once and sent again as it is; shared, each attempt is submitted anew.
        // One per transaction, on the stack: boxing the request would only add an
        // allocation.
        #[allow(clippy::large_enum_variant)]
        enum Sending<'a> {
            Alone(Request),
            Shared(&'a std::sync::Arc<GroupCommit>, Vec<TransactWriteItem>),
        }
        let mut sending = match &self.group {
            Some(group) => Sending::Shared(group, items),
            None => Sending::Alone(
                Request::default()
                    .transact_items(items)
                    .client_request_token(request_token()),
            ),
        };
        for attempt in 0..=CONTENTION_RETRIES {
            let attempted = match &sending {
                Sending::Alone(request) => send_kept_transaction(&self.client, request).await?,
                Sending::Shared(group, items) => group.submit(&self.client, items.clone()).await?,
            };
            match attempted {
                Attempt::Committed => return Ok(Transaction::Committed),
                Attempt::ConditionFailed(old) => return Ok(Transaction::ConditionFailed(old)),
                Attempt::InProgress => contention_pause(attempt).await,
                Attempt::Conflict => {
                    if let Sending::Alone(request) = sending {
                        sending = Sending::Alone(request.client_request_token(request_token()));
                    }
                    contention_pause(attempt).await;
                }
            }
        }
        Err(StoreError::Contention)
    }

    pub(crate) fn update(
        &self,
        pk: &str,
        sk: String,
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: impl IntoIterator<Item = (impl Into<String>, AttributeValue)>,
    ) -> TransactWriteItem {
        let mut update = self
            .request()
            .key(pk, sk)
            .update_expression(expression)
            .condition_expression(condition);
        for (placeholder, name) in names {
            update = update.name(placeholder, name);
        }
        for (placeholder, value) in values {
            update = update.value(placeholder, value);
        }
        TransactWriteItem::Update(update)
    }
}

impl DynamoDbStore {
    /// The outbox items announcing a change, to add to its transaction (an event written
    /// twice is the same item: no condition).
    pub(crate) fn outbox_puts(
        &self,
        announce: &[DomainEvent],
        now: Timestamp,
    ) -> Vec<TransactWriteItem> {
        announce
            .iter()
            .map(|event| TransactWriteItem::Put(self.request().item(outbox_item(event, now))))
            .collect()
    }
}

impl DynamoDbStore {
    /// The closing this process wrote unread on file `pk` as its event `seq`, taken out of
    /// the process's list.
    /// `seq` `None`: whatever its event. Only under the lease it was written with (`until`):
    /// an entry left behind by a request cut off never stands for a later lease's.
    fn take_staged(&self, pk: &str, seq: Option<u32>, until: Timestamp) -> Option<StagedClosing> {
        let mut staged = self.staged.lock().unwrap_or_else(|e| e.into_inner());
        if staged.get(pk).is_some_and(|closing| {
            closing.until == until && seq.is_none_or(|seq| closing.event.seq == seq)
        }) {
            staged.remove(pk)
        } else {
            None
        }
    }

    /// The put that gives a closing written unread its own item (once: never over one
    /// whose data has not expired).
    fn staged_event_put(
        &self,
        id: &FileId,
        event: &RecordedEvent,
        expires_at: Option<AttributeValue>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = event_item(id, event)?;
        if let Some(ttl) = expires_at {
            item.insert("expiresAt".into(), ttl);
        }
        // Over an earlier file's item of that name whose data has expired, as a closing
        // transaction's put.
        Ok(TransactWriteItem::Put(self.creating(item)))
    }

    /// Gives the closing written unread that `file` (the file item, its lease just taken
    /// until `until`) still holds its own item, and its announcements theirs in the outbox:
    /// its writer died before recording its delivery. Nothing to do for a file without one.
    async fn unstage_closing(
        &self,
        id: &FileId,
        file: &Item,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(AttributeValue::M(staged)) = file.get("stagedClosing") else {
            return Ok(());
        };
        let mut event = staged.clone();
        if let Some(ttl) = file.get("expiresAt") {
            event.insert("expiresAt".into(), ttl.clone());
        }
        let mut outbox = Vec::new();
        if let Some(AttributeValue::L(entries)) = file.get("stagedOutbox") {
            for entry in entries {
                if let AttributeValue::M(entry) = entry {
                    outbox.push(entry.clone());
                }
            }
        }
        self.give_staged_their_items(id, event, outbox, until, false)
            .await
    }

    /// One transaction: a closing written unread gets its own item (`event`, pending), its
    /// announcements their outbox entries, and the file item loses them, while the lease
    /// is the one until `until` (given back too when `release`).
    async fn give_staged_their_items(
        &self,
        id: &FileId,
        event: Item,
        outbox: Vec<Item>,
        until: Timestamp,
        release: bool,
    ) -> Result<(), StoreError> {
        let mut removes = STAGED_ATTRIBUTES.to_vec();
        if release {
            removes.extend(["sendingUntil", "sendingBy"]);
        }
        // The file item keeps what the closing is (its own item keeps its delivery).
        let closing_copy = event_copy(&recorded_event(&event)?)?;
        let mut items = vec![
            TransactWriteItem::Put(self.creating(event)),
            self.update(
                &file_pk(id),
                FILE_SK.to_string(),
                &format!(
                    "SET closingCopy = :closing_copy REMOVE {}",
                    removes.join(", ")
                ),
                "sendingUntil = :until",
                &[],
                vec![
                    (":until", n(until.as_millisecond())),
                    (":closing_copy", closing_copy),
                ],
            ),
        ];
        items.extend(
            outbox
                .into_iter()
                .map(|entry| TransactWriteItem::Put(self.request().item(entry))),
        );
        match self.transact(items).await? {
            Transaction::Committed => {
                tracing::info!("a closing written unread is given its own item, still pending");
                Ok(())
            }
            Transaction::ConditionFailed(_) => {
                tracing::warn!(
                    "a closing written unread was given its item meanwhile, or its lease taken over"
                );
                Ok(())
            }
        }
    }

    /// The unread closing's write (see [`CloseFile::close_unread`]): one conditional
    /// `UpdateItem` of the file item, which gives the file back (`ALL_NEW`).
    async fn close_unread_write(
        &self,
        closing: &UnreadClosing<'_>,
        token: &str,
    ) -> Result<Result<Item, Item>, StoreError> {
        let id = closing.id;
        let event = closing.closing;
        let staged = event_item(id, event)?;
        let index_key = |name: &str| {
            staged
                .get(name)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("a pending closing has no {name}")))
        };
        let (shard, since) = (index_key("pendingShard")?, index_key("pendingSince")?);
        let outbox = closing
            .announce
            .iter()
            .map(|announcement| AttributeValue::M(outbox_item(announcement, event.recorded_at)))
            .collect();
        let latest = closing
            .retention_ends
            .checked_add(jiff::SignedDuration::from_hours(
                24 * oncall_domain::lifecycle::OPEN_FILE_EXPIRY_MARGIN_DAYS,
            ))
            .unwrap_or(Timestamp::MAX);
        let request = self
            .request()
            .key(file_pk(id), FILE_SK)
            .update_expression(
                "SET #state = :closed, outcome = :outcome, version = :two, closedAt = :now, \
                 closingToken = :token, sendingUntil = :until, sendingBy = :token, stagedClosing = :staged, \
                 stagedOutbox = :outbox, pendingShard = :shard, pendingSince = :since \
                 REMOVE openShard",
            )
            .condition_expression(
                "attribute_exists(openingCopy) AND attribute_exists(openingDelivery) \
                 AND #state = :open AND version = :one AND #owner = :owner \
                 AND attribute_not_exists(hasDocuments) AND attribute_not_exists(sendingUntil) \
                 AND openingEventAt <= :closing_at AND expiresAt BETWEEN :earliest AND :latest",
            )
            .name("#state", "state")
            .name("#owner", "owner")
            .value(":closed", s("closed"))
            .value(":open", s("open"))
            .value(":outcome", s(closing.outcome.as_str()))
            .value(":one", n(1))
            .value(":two", n(event.seq))
            .value(":now", s(event.recorded_at.to_string()))
            .value(":token", s(token))
            .value(":until", n(closing.sending_until.as_millisecond()))
            .value(":staged", AttributeValue::M(staged.clone()))
            .value(":outbox", AttributeValue::L(outbox))
            .value(":shard", shard)
            .value(":since", since)
            .value(":owner", s(&closing.owner.0))
            .value(
                ":closing_at",
                instant_number(event.log.event_date.timestamp()),
            )
            .value(":earliest", n(closing.retention_ends.as_second()))
            .value(":latest", n(latest.as_second()))
            .return_values("ALL_NEW")
            .old_item_on_condition_failure();
        match self.client.send(Operation::UpdateItem, request).await {
            Ok(output) => output
                .attributes
                .map(Ok)
                .ok_or_else(|| StoreError::Corrupt("the closing's write gave no file back".into())),
            Err(error) if error.is_condition_failure() => {
                Ok(Err(error.old_items.get(0).cloned().unwrap_or_default()))
            }
            // Refused for what it is, not for the file's state: the file item with the
            // closing beside its opening over DynamoDB's 400 KB (payloads whose numbers
            // grow when written back). Nothing written; the usual closing puts the
            // closing in its own item.
            Err(error) if error.error_type.as_deref() == Some("ValidationException") => {
                tracing::warn!(error = %error.message, "the closure cannot be written unread; it is read and written as before");
                Ok(Err(Item::default()))
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

impl OpenFile for DynamoDbStore {
    async fn open_file_sending(
        &self,
        file: &NewFile,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> Result<OpenFileResult, StoreError> {
        let id = file.id();
        let mut file_state = file_item(&id, &file.owner, &file.opening)?;
        if let Some(until) = sending_until {
            // The send lease, held by the caller from this very write.
            file_state.insert("sendingUntil".into(), n(until.as_millisecond()));
        }
        // A refused opening gives back the file and its opening as they are: a replay of a
        // file with nothing more (almost always) is answered without reading it.
        let new_item = |item: Item| {
            TransactWriteItem::Put(self.creating(item).old_item_on_condition_failure())
        };
        let mut opening = event_item(&id, &file.opening)?;
        if let Some(expires_at) = file.expires_at {
            // Its closing, within the margin, then need not write the opening again.
            let ttl = n(expires_at.as_second());
            file_state.insert("expiresAt".into(), ttl.clone());
            opening.insert("expiresAt".into(), ttl);
        }
        let mut items = vec![new_item(file_state), new_item(opening)];
        items.extend(self.outbox_puts(announce, file.opening.recorded_at));
        match self.transact(items).await? {
            Transaction::Committed => Ok(OpenFileResult::Created),
            Transaction::ConditionFailed(old) => {
                let given_back = match only_its_opening(old.get(0), old.get(1)) {
                    Some((file, opening)) => {
                        file_from_items(&id, &[file.clone(), opening.clone()], Timestamp::now())?
                    }
                    None => None,
                };
                let existing = match given_back {
                    Some(existing) => Some(existing),
                    None => self.load_file(&id).await?,
                };
                match existing {
                    Some(existing) => Ok(OpenFileResult::AlreadyExists(existing)),
                    // The item that failed the condition is gone again: only a deletion
                    // racing with us could do that; let the caller retry.
                    None => Err(StoreError::Contention),
                }
            }
        }
    }
}

impl DynamoDbStore {
    /// The closing transaction (with the send lease when `sending_until` is set).
    #[allow(clippy::too_many_arguments)]
    async fn closing_transaction(
        &self,
        id: &FileId,
        expected_version: u32,
        closing: &RecordedEvent,
        outcome: Outcome,
        expiry: ClosingExpiry,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
        closing_token: &str,
    ) -> Result<Transaction, StoreError> {
        let pk = file_pk(id);
        let ttl = || AttributeValue::N(expiry.at.as_second().to_string());
        let mut expression = "SET #state = :closed, outcome = :outcome, version = :next, closedAt = :now, expiresAt = :ttl, closingToken = :token".to_string();
        let mut condition = if outcome == Outcome::Canceled {
            "#state = :open AND version = :expected AND attribute_not_exists(hasDocuments)"
        } else {
            "#state = :open AND version = :expected"
        }
        .to_string();
        let mut values = vec![
            (":closed", s("closed")),
            (":open", s("open")),
            (":outcome", s(outcome.as_str())),
            (":next", n(closing.seq)),
            (":expected", n(expected_version)),
            (":now", s(closing.recorded_at.to_string())),
            (":ttl", ttl()),
            (":token", s(closing_token)),
        ];
        if let Some(until) = sending_until {
            // The lease comes with the write only if nobody holds it nor left it behind
            // (a lease left behind means a sender died mid-send: the usual taking reads
            // Intent first).
            expression.push_str(", sendingUntil = :until");
            condition.push_str(" AND attribute_not_exists(sendingUntil)");
            values.push((":until", n(until.as_millisecond())));
        }
        expression.push_str(" REMOVE openShard");
        // A refusal gives the file back: it tells a closing this very request applied (its
        // token) from another writer's.
        let mut items = vec![
            self.update(
                &pk,
                FILE_SK.to_string(),
                &expression,
                &condition,
                &[("#state", "state")],
                values,
            )
            .old_item_on_condition_failure(),
        ];
        let mut closing_item = event_item(id, closing)?;
        closing_item.insert("expiresAt".into(), ttl());
        items.push(TransactWriteItem::Put(self.creating(closing_item)));
        // Every earlier event expires with the file (TTL is per item): written here unless
        // the expiry it was stored with already covers the file's.
        let earlier = if expiry.earlier_items {
            expected_version
        } else {
            0
        };
        for seq in 1..=earlier {
            items.push(self.update(
                &pk,
                event_sk(seq),
                "SET expiresAt = :ttl",
                "attribute_exists(pk)",
                &[],
                vec![(":ttl", ttl())],
            ));
        }
        items.extend(self.outbox_puts(announce, closing.recorded_at));
        self.transact(items).await
    }
}

impl CloseFile for DynamoDbStore {
    /// One conditional `UpdateItem` of the file item: the closing and its announcements
    /// kept on it (until the delivery's write gives them their items), the state, the
    /// lease and the file's place in the pending-events index, returning the whole file
    /// (the file item keeps its opening). Refused, nothing is written.
    async fn close_unread(
        &self,
        closing: UnreadClosing<'_>,
    ) -> Result<UnreadClosingResult, StoreError> {
        // Marks the write as this request's: applied but its answer lost, its repetition
        // is refused and finds it.
        let token = request_token();
        let file = match self.close_unread_write(&closing, &token).await? {
            Ok(file) => file,
            Err(current)
                if current.get("closingToken").and_then(|t| t.as_s().ok()) == Some(&token) =>
            {
                tracing::info!(
                    "the closing's answer was lost after it was applied; it is this request's"
                );
                current
            }
            // Refused: the file item given back holds the whole file, or the file is read.
            Err(current) => {
                return Ok(match file_from_file_item(closing.id, &current)? {
                    Some(file) => UnreadClosingResult::Refused(file),
                    None => UnreadClosingResult::NotApplied,
                });
            }
        };
        let id = closing.id;
        // A file item alone holds the whole file unless a quitus came meanwhile (between
        // an applied write whose answer was lost and its repetition): then it is read.
        let closed = match file_from_file_item(id, &file)? {
            Some(closed) => closed,
            None => self
                .load_file(id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("file {id} closed but gone")))?,
        };
        self.staged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                file_pk(id),
                StagedClosing {
                    event: closing.closing.clone(),
                    expires_at: file.get("expiresAt").cloned(),
                    announcements: closing.announce.iter().map(DomainEvent::event_id).collect(),
                    outbox: closing
                        .announce
                        .iter()
                        .map(|event| outbox_item(event, closing.closing.recorded_at))
                        .collect(),
                    until: closing.sending_until,
                },
            );
        Ok(UnreadClosingResult::ClosedSending(closed))
    }

    async fn close_file_sending(
        &self,
        id: &FileId,
        expected_version: u32,
        closing: &RecordedEvent,
        outcome: Outcome,
        expiry: ClosingExpiry,
        announce: &[DomainEvent],
        sending_until: Option<Timestamp>,
    ) -> Result<CloseFileResult, StoreError> {
        // Marks the closing as this request's: a write applied whose answer was lost (a
        // shared call past its retries, whose members go again on their own with new
        // tokens) is then recognised when its repetition is refused, instead of being taken
        // for another writer's closing (whose lease this request would wait for).
        let closing_token = request_token();
        let close = |sending_until| {
            self.closing_transaction(
                id,
                expected_version,
                closing,
                outcome,
                expiry,
                announce,
                sending_until,
                &closing_token,
            )
        };
        let mut written = close(sending_until).await?;
        if let Some(applied) = own_closing(&written, &closing_token, sending_until) {
            return Ok(applied);
        }
        if sending_until.is_some() {
            // The lease was held (or left behind), or the state moved on: closing without
            // the lease tells which.
            written = close(None).await?;
            if let Some(applied) = own_closing(&written, &closing_token, None) {
                return Ok(applied);
            }
        }
        let current = self
            .load_file(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("file {id} vanished")))?;
        Ok(CloseFileResult::StateChanged(current))
    }
}

/// The closing's outcome when `written` was applied by this request (committed, or refused
/// because its own earlier attempt applied it: the file carries its `closing_token`), with
/// the lease if the applied write took it (`sending_until`, found on the file).
fn own_closing(
    written: &Transaction,
    closing_token: &str,
    sending_until: Option<Timestamp>,
) -> Option<CloseFileResult> {
    let took_lease = match written {
        Transaction::Committed => sending_until.is_some(),
        Transaction::ConditionFailed(old) => {
            let text = |file: &Item, name: &str| {
                file.get(name)
                    .and_then(|value| value.as_s().or_else(|_| value.as_n()).ok())
                    .cloned()
            };
            let file = old
                .get(0)
                .filter(|file| text(file, "closingToken").as_deref() == Some(closing_token))?;
            tracing::info!(
                "the closing's answer was lost after it was applied; it is this request's"
            );
            sending_until.is_some_and(|until| {
                text(file, "sendingUntil") == Some(until.as_millisecond().to_string())
            })
        }
    };
    Some(if took_lease {
        CloseFileResult::ClosedSending
    } else {
        CloseFileResult::Closed
    })
}

impl LoadFile for DynamoDbStore {
    /// One strongly consistent `Query` of the file's partition; again (a few times) when it
    /// read the file item newer than its events (a transaction committed in between).
    async fn load_file(&self, id: &FileId) -> Result<Option<InterventionFile>, StoreError> {
        let pk = file_pk(id);
        let mut attempt = 0;
        loop {
            let items = self.query_partition(&pk).await?;
            match file_from_items(id, &items, Timestamp::now()) {
                Err(StoreError::Contention) if attempt < CONTENTION_RETRIES => {
                    contention_pause(attempt).await;
                    attempt += 1;
                }
                read => return read,
            }
        }
    }
}

impl MarkQuitusReceived for DynamoDbStore {
    /// One conditional `UpdateItem` of `FILE` (`hasDocuments`, which a cancellation's
    /// closing write requires absent); refused, the item it gives back tells a canceled
    /// file from a missing one.
    async fn mark_quitus_received(&self, id: &FileId) -> Result<QuitusMark, StoreError> {
        let request = self
            .request()
            .key(file_pk(id), FILE_SK)
            .update_expression("SET hasDocuments = :yes")
            .condition_expression(
                "attribute_exists(pk) AND NOT (#state = :closed AND outcome = :canceled)",
            )
            .name("#state", "state")
            .value(":yes", AttributeValue::Bool(true))
            .value(":closed", s("closed"))
            .value(":canceled", s(Outcome::Canceled.as_str()))
            .old_item_on_condition_failure();
        match self.client().send(Operation::UpdateItem, request).await {
            Ok(_) => Ok(QuitusMark::Marked),
            Err(error) if error.is_condition_failure() => Ok(match error.old_items.get(0) {
                Some(_) => QuitusMark::FileCanceled,
                None => QuitusMark::NoFile,
            }),
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// A file item and its opening, when they are the whole file: still at version 1 (no
/// later event) and without documents.
fn only_its_opening<'a>(
    file: Option<&'a Item>,
    opening: Option<&'a Item>,
) -> Option<(&'a Item, &'a Item)> {
    let (file, opening) = (file?, opening?);
    let whole = file
        .get("version")
        .and_then(|v| v.as_n().ok())
        .is_some_and(|version| version == "1")
        && !file.contains_key("hasDocuments");
    whole.then_some((file, opening))
}

/// Keys per `BatchGetItem` call (DynamoDB takes at most 100).
const KEYS_PER_BATCH_GET: usize = 100;

impl LoadFiles for DynamoDbStore {
    /// A file still open with nothing but its opening (the on-call closer's stragglers,
    /// almost always) is two items, `FILE` and `EVENT#000001`: those of fifty files come
    /// in one strongly consistent `BatchGetItem` instead of fifty `Query`s. A file with
    /// more (a later event, a document: `version` > 1 or `hasDocuments`) is read whole by
    /// its `Query`, as [`LoadFile::load_file`] does.
    async fn load_files(
        &self,
        ids: &[FileId],
    ) -> Vec<Result<Option<InterventionFile>, StoreError>> {
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for chunk in ids.chunks(KEYS_PER_BATCH_GET / 2) {
            let keys = chunk
                .iter()
                .flat_map(|id| {
                    let pk = file_pk(id);
                    [FILE_SK.to_string(), event_sk(1)]
                        .map(|sk| HashMap::from([("pk".to_string(), s(&pk)), ("sk".into(), s(sk))]))
                })
                .collect();
            if let Err(error) = self.batch_get(keys, &mut found).await {
                return ids.iter().map(|_| Err(error.clone())).collect();
            }
        }
        let mut files = Vec::with_capacity(ids.len());
        for id in ids {
            let pk = file_pk(id);
            let Some(file) = found.get(&(pk.clone(), FILE_SK.to_string())) else {
                files.push(Ok(None));
                continue;
            };
            let opening = found.get(&(pk, event_sk(1)));
            files.push(match only_its_opening(Some(file), opening) {
                Some((file, opening)) => {
                    file_from_items(id, &[file.clone(), opening.clone()], Timestamp::now())
                }
                None => self.load_file(id).await,
            });
        }
        files
    }
}

impl DynamoDbStore {
    /// Reads `keys` (at most 100), again for those DynamoDB left unprocessed, into `found`
    /// by (`pk`, `sk`).
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        found: &mut HashMap<(String, String), Item>,
    ) -> Result<(), StoreError> {
        let mut request = serde_json::json!({ &self.table: {
            "Keys": keys,
            "ConsistentRead": true,
        }});
        for attempt in 0..=CONTENTION_RETRIES {
            let mut output = self
                .client
                .send(
                    Operation::BatchGetItem,
                    Request::default().request_items(request),
                )
                .await
                .map_err(unavailable)?;
            for item in output.responses.remove(&self.table).unwrap_or_default() {
                let key = |name: &str| match item.get(name) {
                    Some(AttributeValue::S(value)) => value.clone(),
                    _ => String::new(),
                };
                found.insert((key("pk"), key("sk")), item);
            }
            match output.unprocessed_keys.filter(|rest| {
                rest[&self.table]["Keys"]
                    .as_array()
                    .is_some_and(|keys| !keys.is_empty())
            }) {
                Some(rest) => {
                    request = rest;
                    contention_pause(attempt).await;
                }
                None => return Ok(()),
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB left keys of a BatchGetItem unprocessed after every retry".into(),
        ))
    }
}

/// Never overwrite a delivery Intent already acknowledged.
const DELIVERY_CONDITION: &str = "attribute_exists(pk) AND #delivery <> :delivered";

impl DynamoDbStore {
    /// The update expression and values that record `delivery` on event `seq`.
    fn delivery_update(
        pk: &str,
        seq: u32,
        delivery: &Delivery,
    ) -> (String, Vec<(String, AttributeValue)>) {
        let mut sets = Vec::new();
        let mut values = vec![(
            ":delivered".to_string(),
            AttributeValue::S("delivered".into()),
        )];
        for (index, (name, value)) in delivery_attributes(pk, seq, jiff::Timestamp::now(), delivery)
            .into_iter()
            .enumerate()
        {
            let placeholder = format!(":v{index}");
            if name == "pendingShard" {
                // Keep the event's place in the pending queue if it has one; give it one
                // if it comes back to pending (e.g. a failed closing re-sent by the
                // reconciliation).
                sets.push(format!("pendingShard = {placeholder}"));
            } else if name == "pendingSince" {
                sets.push(format!(
                    "pendingSince = if_not_exists(pendingSince, {placeholder})"
                ));
            } else if name == "delivery" {
                sets.push(format!("#delivery = {placeholder}"));
            } else {
                sets.push(format!("{name} = {placeholder}"));
            }
            values.push((placeholder, value));
        }
        let removes: Vec<&str> = match delivery {
            Delivery::Pending {
                in_doubt,
                last_error,
                last_attempt_at,
                ..
            } => {
                let mut removes = vec!["deliveredAt"];
                if !in_doubt {
                    removes.push("inDoubt");
                }
                // A redriven event starts afresh: no stale attempt time holds it back.
                if last_attempt_at.is_none() {
                    removes.push("lastAttemptAt");
                }
                if last_error.is_none() {
                    removes.push("lastError");
                }
                removes
            }
            Delivery::Delivered { .. } => {
                vec!["pendingShard", "pendingSince", "lastError", "inDoubt"]
            }
            // A failed event was not delivered (one recorded delivered, then found lost and
            // refused: `RecordLostEventRefused`).
            Delivery::Failed { .. } => vec!["inDoubt", "deliveredAt"],
        };
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        (expression, values)
    }

    fn delivery_item(&self, pk: &str, seq: u32, delivery: &Delivery) -> TransactWriteItem {
        let (expression, values) = Self::delivery_update(pk, seq, delivery);
        self.update(
            pk,
            event_sk(seq),
            &expression,
            DELIVERY_CONDITION,
            &[("#delivery", "delivery")],
            values,
        )
    }
}

impl RecordDelivery for DynamoDbStore {
    async fn record_delivery(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        let pk = file_pk(id);
        if !announce.is_empty() {
            // The state change and its announcement, in one transaction.
            let mut items = vec![self.delivery_item(&pk, seq, delivery)];
            items.extend(self.outbox_puts(announce, jiff::Timestamp::now()));
            return match self.transact(items).await? {
                Transaction::Committed => Ok(()),
                Transaction::ConditionFailed(_) => {
                    tracing::info!(
                        seq,
                        "event already delivered (or gone); delivery state left as is"
                    );
                    Ok(())
                }
            };
        }
        let (expression, values) = Self::delivery_update(&pk, seq, delivery);
        let mut request = self
            .request()
            .key(pk, event_sk(seq))
            .update_expression(expression)
            .condition_expression(DELIVERY_CONDITION)
            .name("#delivery", "delivery");
        for (placeholder, value) in values {
            request = request.value(placeholder, value);
        }
        match self.client.send(Operation::UpdateItem, request).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_condition_failure() => {
                tracing::info!(
                    seq,
                    "event already delivered (or gone); delivery state left as is"
                );
                Ok(())
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

impl oncall_domain::ports::RecordLostEventRefused for DynamoDbStore {
    /// One transaction: the event's delivery state, conditioned on `delivered`, with its
    /// announcement in the outbox.
    async fn record_lost_event_refused(
        &self,
        id: &FileId,
        seq: u32,
        failed: &Delivery,
        announce: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        let pk = file_pk(id);
        let (expression, values) = Self::delivery_update(&pk, seq, failed);
        let mut items = vec![self.update(
            &pk,
            event_sk(seq),
            &expression,
            "#delivery = :delivered",
            &[("#delivery", "delivery")],
            values,
        )];
        if let Some(mirror) = delivery_mirror(seq) {
            // The file item no longer says it delivered: no closure is written unread
            // behind an opening no longer delivered, no refusal answered from a closing
            // no longer delivered.
            items.push(self.update(
                &pk,
                FILE_SK.to_string(),
                &format!("REMOVE {}", mirror.attribute),
                "attribute_exists(pk)",
                &[],
                Vec::<(&str, AttributeValue)>::new(),
            ));
        }
        items.extend(self.outbox_puts(announce, jiff::Timestamp::now()));
        Ok(match self.transact(items).await? {
            Transaction::Committed => true,
            Transaction::ConditionFailed(_) => false,
        })
    }
}

/// The closer's note of the last period reconciled with Intent: one item.
const CLOSER_PK: &str = "CLOSER";
const RECONCILED_SK: &str = "RECONCILED";

impl oncall_domain::ports::PeriodReconciliations for DynamoDbStore {
    /// One strongly consistent `GetItem`.
    async fn period_reconciled(
        &self,
        period: &oncall_domain::calendar::OnCallPeriod,
    ) -> Result<bool, StoreError> {
        let item = self
            .client
            .send(
                Operation::GetItem,
                self.request()
                    .key(CLOSER_PK, RECONCILED_SK)
                    .consistent_read(),
            )
            .await
            .map_err(unavailable)?
            .item;
        Ok(item
            .as_ref()
            .and_then(|item| item.get("periodEnd"))
            .and_then(|value| value.as_n().ok())
            .and_then(|end| end.parse::<i64>().ok())
            .is_some_and(|end| end >= period.end.as_second()))
    }

    /// One conditional `PutItem`: only over an earlier period's note (refused for a late
    /// run of an earlier period, which is fine).
    async fn mark_period_reconciled(
        &self,
        period: &oncall_domain::calendar::OnCallPeriod,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("pk".to_string(), s(CLOSER_PK)),
            ("sk".to_string(), s(RECONCILED_SK)),
            ("periodId".to_string(), s(&period.id)),
            ("periodEnd".to_string(), n(period.end.as_second())),
            ("reconciledAt".to_string(), s(at.to_string())),
        ]);
        let request = self
            .request()
            .item(item)
            .condition_expression("attribute_not_exists(periodEnd) OR periodEnd <= :end")
            .value(":end", n(period.end.as_second()));
        match self.client.send(Operation::PutItem, request).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_condition_failure() => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }
}

impl RequeueFailedEvent for DynamoDbStore {
    /// One conditional `UpdateItem` of the event's item: its delivery state only while it
    /// is `failed` after the copy's attempts.
    async fn requeue_failed_event(
        &self,
        id: &FileId,
        seq: u32,
        pending: &Delivery,
    ) -> Result<bool, StoreError> {
        let pk = file_pk(id);
        let (expression, values) = Self::delivery_update(&pk, seq, pending);
        // The redrive's token: its retry after a lost answer finds its own write.
        let token = request_token();
        let expression = expression.replacen("SET ", "SET requeuedBy = :requeued_by, ", 1);
        let mut request = self
            .request()
            .key(pk, event_sk(seq))
            .update_expression(expression)
            .condition_expression("#delivery = :failed AND attempts = :copied")
            .name("#delivery", "delivery")
            .value(":failed", s("failed"))
            .value(":copied", n(pending.attempts()))
            .value(":requeued_by", s(&token))
            .old_item_on_condition_failure();
        // The update's own values (the never-over-delivered guard's is not used here).
        for (placeholder, value) in values {
            if placeholder != ":delivered" {
                request = request.value(placeholder, value);
            }
        }
        match self.client.send(Operation::UpdateItem, request).await {
            Ok(_) => Ok(true),
            Err(error) if error.is_condition_failure() => Ok(requeued_by(&error.old_items, &token)),
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// Whether the item a refused requeue gave back carries its own token: the requeue was
/// applied by its own earlier attempt, whose answer was lost.
pub(crate) fn requeued_by(old: &OldItems, token: &str) -> bool {
    old.get(0)
        .and_then(|item| item.get("requeuedBy"))
        .and_then(|value| value.as_s().ok())
        .is_some_and(|by| by == token)
}

impl DynamoDbStore {
    /// A transaction's items recording `delivery` of event `seq` (with `announce` in the
    /// outbox) only while the file's lease is the one taken until `until`: the file's
    /// update (keeping the lease, or giving it back) is conditioned on it. An opening
    /// recorded delivered is noted on the file item too (`openingDelivery`), for closures
    /// written unread. A closing this process wrote unread gets its own item here, with
    /// its outcome, and leaves the file item; the ids of its announcements, which were
    /// never outbox items, come back beside the items.
    fn outcome_under_lease(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
        until: Timestamp,
        keep_lease: bool,
    ) -> Result<(Vec<TransactWriteItem>, Vec<String>), StoreError> {
        let pk = file_pk(id);
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut values = vec![(":until", n(until.as_millisecond()))];
        if keep_lease {
            sets.push("sendingUntil = :until");
        } else {
            removes.extend(["sendingUntil", "sendingBy"]);
        }
        if let Some(mirror) = delivery_mirror(seq)
            && let Some(delivered) = delivered_copy(delivery)
        {
            sets.push(mirror.set);
            values.push((mirror.placeholder, delivered));
        }
        let (event, unstaged_announcements) = match self.take_staged(&pk, Some(seq), until) {
            Some(staged) => {
                removes.extend(STAGED_ATTRIBUTES);
                sets.push("closingCopy = :closing_copy");
                values.push((":closing_copy", event_copy(&staged.event)?));
                let written = RecordedEvent {
                    delivery: delivery.clone(),
                    ..staged.event
                };
                (
                    self.staged_event_put(id, &written, staged.expires_at)?,
                    staged.announcements,
                )
            }
            None => (self.delivery_item(&pk, seq, delivery), Vec::new()),
        };
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let mut items = vec![
            event,
            self.update(
                &pk,
                FILE_SK.to_string(),
                expression.trim_start(),
                "sendingUntil = :until",
                &[],
                values,
            ),
        ];
        items.extend(self.outbox_puts(announce, jiff::Timestamp::now()));
        Ok((items, unstaged_announcements))
    }
}

/// An outcome written under a lease whose fence failed: nothing was recorded.
fn outcome_not_recorded(seq: u32) {
    tracing::warn!(
        seq,
        "the outcome was not recorded: the event was delivered meanwhile, or the send lease was taken over"
    );
}

impl RecordUnderLease for DynamoDbStore {
    /// One transaction: the outcome, and the file's lease as a fence (an update that
    /// rewrites `sendingUntil` only if it is still `until`: its condition fails once the
    /// lease was taken over or given back).
    async fn record_under_lease(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let (items, _) = self.outcome_under_lease(id, seq, delivery, announce, until, true)?;
        match self.transact(items).await? {
            Transaction::Committed => Ok(()),
            Transaction::ConditionFailed(_) => {
                outcome_not_recorded(seq);
                Ok(())
            }
        }
    }
}

impl FinishDelivery for DynamoDbStore {
    /// One transaction: the outcome, the lease's release and the outbox's clearing. If a
    /// condition fails, the outcome is not recorded: either the event was delivered
    /// meanwhile (delivered is final), or the lease ran out and was taken over, and the
    /// taker read Intent back and records what it found (this outcome is stale, and written
    /// over the taker's it could put back to pending an event Intent refused, or take away
    /// a doubt). The lease (if still this sender's) is given back and the published events
    /// cleared, each on its own.
    async fn finish_delivery(
        &self,
        id: &FileId,
        seq: u32,
        delivery: &Delivery,
        announce: &[DomainEvent],
        until: Timestamp,
        published: &[String],
    ) -> Result<(), StoreError> {
        let (mut items, never_in_the_outbox) =
            self.outcome_under_lease(id, seq, delivery, announce, until, false)?;
        for event_id in published
            .iter()
            .filter(|event_id| !never_in_the_outbox.contains(event_id))
        {
            items.push(TransactWriteItem::Delete(
                self.request().key(outbox_pk(event_id), OUTBOX_SK),
            ));
        }
        match self.transact(items).await? {
            Transaction::Committed => Ok(()),
            Transaction::ConditionFailed(_) => {
                outcome_not_recorded(seq);
                self.release_send_lease(id, until).await?;
                if !published.is_empty() {
                    self.clear_published(published).await?;
                }
                Ok(())
            }
        }
    }
}

impl Outbox for DynamoDbStore {
    async fn unpublished_events(&self, before: Timestamp) -> Result<Vec<DomainEvent>, StoreError> {
        let mut items = self
            .index_items(PENDING_EVENTS_INDEX, "pendingShard", OUTBOX_PREFIX, None)
            .await?;
        items.retain(|item| {
            item.get("pendingSince")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|since| since.as_str() < sortable_time(before).as_str())
        });
        items.sort_by(|a, b| {
            let since = |item: &Item| {
                item.get("pendingSince")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            since(a).cmp(&since(b))
        });
        items.iter().map(stored_event).collect()
    }

    async fn clear_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        // BatchWriteItem: 25 deletes a call, each key once (DynamoDB refuses a call that
        // names a key twice, and with it every other delete of the call).
        let mut unique: Vec<&String> = Vec::with_capacity(event_ids.len());
        for id in event_ids {
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        let mut left_unprocessed = 0;
        for chunk in unique.chunks(25) {
            let requests: Vec<serde_json::Value> = chunk
                .iter()
                .map(|id| {
                    serde_json::json!({ "DeleteRequest": {
                        "Key": { "pk": s(outbox_pk(id)), "sk": s(OUTBOX_SK) }
                    }})
                })
                .collect();
            let mut pending = Some(serde_json::json!({ &self.table: requests }));
            for attempt in 0..=CONTENTION_RETRIES {
                let Some(requests) = pending.take().filter(has_requests) else {
                    break;
                };
                let output = self
                    .client
                    .send(
                        Operation::BatchWriteItem,
                        Request::default().request_items(requests),
                    )
                    .await
                    .map_err(unavailable)?;
                pending = output.unprocessed_items;
                if pending.as_ref().is_some_and(has_requests) && attempt < CONTENTION_RETRIES {
                    contention_pause(attempt).await;
                }
            }
            if let Some(left) = pending.filter(has_requests) {
                left_unprocessed += left[self.table.as_str()].as_array().map_or(0, Vec::len);
            }
        }
        // Still left after every attempt: said, not dropped (they stay in the outbox and are
        // published again later, with the same eventId).
        if left_unprocessed > 0 {
            return Err(StoreError::Unavailable(format!(
                "{left_unprocessed} outbox entr{} left unprocessed by DynamoDB after {} attempts",
                if left_unprocessed == 1 { "y" } else { "ies" },
                CONTENTION_RETRIES + 1
            )));
        }
        Ok(())
    }

    /// One `PutItem` per event (a run's summary: one).
    async fn keep(&self, events: &[DomainEvent], now: Timestamp) -> Result<(), StoreError> {
        for event in events {
            self.client()
                .send(
                    Operation::PutItem,
                    self.request().item(outbox_item(event, now)),
                )
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

impl SendLease for DynamoDbStore {
    async fn take_send_lease(
        &self,
        id: &FileId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<LeaseGrant, StoreError> {
        // Who takes it: if an attempt's answer is lost after DynamoDB applied it, the retry
        // finds the lease held, and this tells that it is held by this very taking.
        let holder = crate::wire::request_token();
        let request = self
            .request()
            .key(file_pk(id), FILE_SK)
            .update_expression("SET sendingUntil = :until, sendingBy = :holder")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(sendingUntil) OR sendingUntil < :now)",
            )
            .value(":until", n(until.as_millisecond()))
            .value(":now", n(now.as_millisecond()))
            .value(":holder", s(&holder))
            // The old item tells a lease never given back (its holder died mid-send), and a
            // closing its writer left on the file item.
            .return_values("ALL_OLD")
            .old_item_on_condition_failure();
        let result = self.client.send(Operation::UpdateItem, request).await;
        let (grant, file) = match result {
            Ok(output) => {
                let old = output.attributes.unwrap_or_default();
                let grant = if old.contains_key("sendingUntil") {
                    LeaseGrant::TakenOver
                } else {
                    LeaseGrant::Taken
                };
                (grant, old)
            }
            Err(error) if error.is_condition_failure() => {
                let current = error.old_items.get(0).cloned().unwrap_or_default();
                let taken_by_this_call = current
                    .get("sendingBy")
                    .and_then(|by| by.as_s().ok())
                    .is_some_and(|by| *by == holder);
                if !taken_by_this_call {
                    return Ok(LeaseGrant::HeldElsewhere);
                }
                // What it replaced is unknown: as after a takeover, Intent is read before
                // anything is sent.
                (LeaseGrant::TakenOver, current)
            }
            Err(error) => return Err(unavailable(error)),
        };
        self.unstage_closing(id, &file, until).await?;
        Ok(grant)
    }

    async fn release_send_lease(&self, id: &FileId, until: Timestamp) -> Result<(), StoreError> {
        if let Some(staged) = self.take_staged(&file_pk(id), None, until) {
            // A closing written unread, not sent: given back with the lease, it gets its
            // own item (pending) and its announcements their outbox entries, which the
            // caller's publication then clears (kept on the file item, they would be
            // published again by the next sender).
            let mut event = event_item(id, &staged.event)?;
            if let Some(ttl) = staged.expires_at {
                event.insert("expiresAt".into(), ttl);
            }
            return self
                .give_staged_their_items(id, event, staged.outbox, until, true)
                .await;
        }
        let request = self
            .request()
            .key(file_pk(id), FILE_SK)
            .update_expression("REMOVE sendingUntil, sendingBy")
            .condition_expression("sendingUntil = :until")
            .value(":until", n(until.as_millisecond()));
        match self.client.send(Operation::UpdateItem, request).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_condition_failure() => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// Whether a `BatchWriteItem` request (or what it left unprocessed) still holds requests.
fn has_requests(requests: &serde_json::Value) -> bool {
    requests.as_object().is_some_and(|tables| {
        tables
            .values()
            .any(|list| list.as_array().is_some_and(|l| !l.is_empty()))
    })
}
