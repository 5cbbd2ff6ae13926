//! Mapping between domain records and DynamoDB items.

pub use crate::wire::{AttributeValue, Item};
use jiff::Timestamp;
use oncall_domain::documents::DocumentRecord;
use oncall_domain::file::{Delivery, InterventionFile, PartnerId, RecordedEvent};
use oncall_domain::lifecycle::{FileState, Outcome};
use oncall_domain::model::{Event, FileId, InterventionLog};
use oncall_domain::ports::StoreError;
use std::collections::HashMap;

pub const OPEN_FILES_INDEX: &str = "open-files";
pub const PENDING_EVENTS_INDEX: &str = "pending-events";
/// Index partitions per sparse index (spreads writes and lets readers fan out).
pub const INDEX_SHARDS: u32 = 8;

pub const FILE_SK: &str = "FILE";

fn escape(component: &str) -> String {
    component.replace('%', "%25").replace('#', "%23")
}

pub fn file_pk(id: &FileId) -> String {
    format!(
        "FILE#{}#{}",
        escape(&id.contract_reference),
        escape(&id.reference)
    )
}

pub fn event_sk(seq: u32) -> String {
    format!("EVENT#{seq:06}")
}

/// FNV-1a of the partition key, so a file always lands in the same shard.
fn shard_of(pk: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in pk.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % INDEX_SHARDS
}

pub fn open_shard(pk: &str) -> String {
    format!("open-{}", shard_of(pk))
}

pub fn pending_shard(pk: &str) -> String {
    format!("pending-{}", shard_of(pk))
}

/// Events Intent refused for good sit in the same index under `failed-N`, so that the
/// operator's `failed` listing and the backlog metrics are queries too.
pub fn failed_shard(pk: &str) -> String {
    format!("failed-{}", shard_of(pk))
}

/// Documents waiting to be forwarded (or held by a forwarder right now) sit in the same
/// index under `document-N`.
pub fn document_shard(pk: &str) -> String {
    format!("document-{}", shard_of(pk))
}

/// Documents Intent refused (reason `intent_rejected`), waiting for an operator's redrive,
/// sit in the same index under `rejected-N`.
pub fn rejected_shard(pk: &str) -> String {
    format!("rejected-{}", shard_of(pk))
}

/// Domain events not yet on the bus (the outbox) sit in the same index under `outbox-N`.
pub fn outbox_shard(pk: &str) -> String {
    format!("outbox-{}", shard_of(pk))
}

pub const OUTBOX_SK: &str = "OUTBOX";

pub fn outbox_pk(event_id: &str) -> String {
    format!("OUTBOX#{event_id}")
}

/// One domain event in the outbox, written in the same transaction as its state change.
/// It has no expiry: it leaves the outbox once EventBridge took it, never before (a TTL
/// would erase, unseen, an event the bus refused for days; the backlog's
/// `OldestUnpublishedDomainEventAge` alarms instead).
pub fn outbox_item(event: &oncall_domain::DomainEvent, now: Timestamp) -> Item {
    let id = event.event_id();
    let pk = outbox_pk(&id);
    HashMap::from([
        ("sk".to_string(), s(OUTBOX_SK)),
        ("itemType".to_string(), s("outbox")),
        ("eventId".to_string(), s(&id)),
        ("detailType".to_string(), s(event.detail_type())),
        ("detail".to_string(), s(event.detail_json())),
        ("writtenAt".to_string(), s(now.to_string())),
        ("pendingShard".to_string(), s(outbox_shard(&pk))),
        (
            "pendingSince".to_string(),
            s(format!("{}#{id}", sortable_time(now))),
        ),
        ("pk".to_string(), s(pk)),
    ])
}

/// A domain event read back from the outbox.
pub fn stored_event(item: &Item) -> Result<oncall_domain::DomainEvent, StoreError> {
    let what = "outbox item";
    let detail = get_s(item, "detail", what)?;
    Ok(oncall_domain::DomainEvent::Stored(
        oncall_domain::domain_events::StoredEvent {
            id: get_s(item, "eventId", what)?.to_string(),
            detail_type: get_s(item, "detailType", what)?.to_string(),
            detail: serde_json::from_str(detail).map_err(|_| corrupt(what, "detail"))?,
        },
    ))
}

/// The shard-name prefixes of the `pending-events` index.
pub const PENDING_PREFIX: &str = "pending";
pub const FAILED_PREFIX: &str = "failed";
pub const DOCUMENT_PREFIX: &str = "document";
pub const REJECTED_PREFIX: &str = "rejected";
pub const OUTBOX_PREFIX: &str = "outbox";

/// A UTC time that sorts as text (fixed width, whole seconds): the sort keys of the
/// sparse indexes.
pub fn sortable_time(timestamp: Timestamp) -> String {
    timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The attributes of an event that never change (what it is and carries), as one map: the
/// file item keeps its opening's, and a closing written unread, until its own item is
/// written.
pub fn event_copy(event: &RecordedEvent) -> Result<AttributeValue, StoreError> {
    event_attributes(event).map(AttributeValue::M)
}

fn event_attributes(event: &RecordedEvent) -> Result<Item, StoreError> {
    let payload = serde_json::to_string(&event.log)
        .map_err(|e| StoreError::Corrupt(format!("serialising event {}: {e}", event.seq)))?;
    Ok(HashMap::from([
        ("seq".to_string(), n(event.seq)),
        ("event".to_string(), s(event.pair.as_str())),
        ("status".to_string(), s(event.log.status.as_str())),
        ("payload".to_string(), s(payload)),
        ("fingerprint".to_string(), s(&event.fingerprint)),
        ("recordedAt".to_string(), s(event.recorded_at.to_string())),
    ]))
}

/// The delivery attributes of an event delivered, as one map (the file item's
/// `openingDelivery`: its opening is delivered, as its own item says).
pub fn delivered_copy(delivery: &Delivery) -> Option<AttributeValue> {
    delivery.is_delivered().then(|| {
        AttributeValue::M(
            delivery_attributes("", 1, Timestamp::UNIX_EPOCH, delivery)
                .into_iter()
                .collect(),
        )
    })
}

/// An event's instant as a number of nanoseconds, which a condition compares.
pub fn instant_number(at: Timestamp) -> AttributeValue {
    n(at.as_nanosecond())
}

pub fn file_item(
    id: &FileId,
    owner: &PartnerId,
    opening: &RecordedEvent,
) -> Result<Item, StoreError> {
    let pk = file_pk(id);
    Ok(HashMap::from([
        // The opening as stored (its own item stays the record of its delivery): a closure
        // written without reading the file gets the whole file back from its write.
        ("openingCopy".to_string(), event_copy(opening)?),
        (
            "openingEventAt".to_string(),
            instant_number(opening.log.event_date.timestamp()),
        ),
        ("sk".to_string(), s(FILE_SK)),
        ("itemType".to_string(), s("file")),
        ("reference".to_string(), s(&id.reference)),
        ("contractReference".to_string(), s(&id.contract_reference)),
        ("owner".to_string(), s(&owner.0)),
        ("state".to_string(), s("open")),
        ("version".to_string(), n(opening.seq)),
        (
            "openedAt".to_string(),
            s(sortable_time(oncall_domain::file::opened_at(opening))),
        ),
        ("createdAt".to_string(), s(opening.recorded_at.to_string())),
        ("openShard".to_string(), s(open_shard(&pk))),
        ("pk".to_string(), s(pk)),
    ]))
    .map(|mut item| {
        if let Some(delivered) = delivered_copy(&opening.delivery) {
            item.insert("openingDelivery".into(), delivered);
        }
        item
    })
}

pub fn event_item(id: &FileId, event: &RecordedEvent) -> Result<Item, StoreError> {
    let pk = file_pk(id);
    let mut item = event_attributes(event)?;
    item.extend([
        ("sk".to_string(), s(event_sk(event.seq))),
        ("itemType".to_string(), s("event")),
        ("reference".to_string(), s(&id.reference)),
        ("contractReference".to_string(), s(&id.contract_reference)),
    ]);
    item.extend(delivery_attributes(
        &pk,
        event.seq,
        event.recorded_at,
        &event.delivery,
    ));
    item.insert("pk".to_string(), s(pk));
    Ok(item)
}

/// The attributes describing a delivery state (the pending index keys only while pending).
pub fn delivery_attributes(
    pk: &str,
    seq: u32,
    recorded_at: Timestamp,
    delivery: &Delivery,
) -> Vec<(String, AttributeValue)> {
    let mut attributes = vec![
        ("delivery".to_string(), s(delivery.label())),
        ("attempts".to_string(), n(delivery.attempts())),
    ];
    match delivery {
        Delivery::Pending {
            last_error,
            last_attempt_at,
            in_doubt,
            ..
        } => {
            attributes.push(("pendingShard".into(), s(pending_shard(pk))));
            attributes.push((
                "pendingSince".into(),
                s(format!("{}#{seq:06}", sortable_time(recorded_at))),
            ));
            if let Some(error) = last_error {
                attributes.push(("lastError".into(), s(error)));
            }
            if let Some(at) = last_attempt_at {
                attributes.push(("lastAttemptAt".into(), s(at.to_string())));
            }
            if *in_doubt {
                attributes.push(("inDoubt".into(), AttributeValue::Bool(true)));
            }
        }
        Delivery::Delivered { delivered_at, .. } => {
            attributes.push(("deliveredAt".into(), s(delivered_at.to_string())));
        }
        Delivery::Failed {
            last_error,
            last_attempt_at,
            ..
        } => {
            attributes.push(("pendingShard".into(), s(failed_shard(pk))));
            attributes.push((
                "pendingSince".into(),
                s(format!("{}#{seq:06}", sortable_time(recorded_at))),
            ));
            attributes.push(("lastError".into(), s(last_error)));
            attributes.push(("lastAttemptAt".into(), s(last_attempt_at.to_string())));
        }
    }
    attributes
}

// ---- reading back -------------------------------------------------------------------

fn corrupt(what: &str, key: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} has no valid {key}"))
}

fn get_s<'a>(item: &'a Item, key: &str, what: &str) -> Result<&'a str, StoreError> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(what, key))
}

fn opt_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, key: &str, what: &str) -> Result<T, StoreError> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(what, key))
}

fn get_time(item: &Item, key: &str, what: &str) -> Result<Timestamp, StoreError> {
    get_s(item, key, what)?
        .parse()
        .map_err(|_| corrupt(what, key))
}

fn opt_time(item: &Item, key: &str) -> Option<Timestamp> {
    opt_s(item, key).and_then(|v| v.parse().ok())
}

pub fn file_state(item: &Item) -> Result<FileState, StoreError> {
    match get_s(item, "state", "file")? {
        "open" => Ok(FileState::Open),
        "closed" => {
            let outcome = get_s(item, "outcome", "closed file")?;
            Outcome::parse(outcome)
                .map(FileState::Closed)
                .ok_or_else(|| corrupt("closed file", "outcome"))
        }
        _ => Err(corrupt("file", "state")),
    }
}

pub fn recorded_event(item: &Item) -> Result<RecordedEvent, StoreError> {
    let seq: u32 = get_n(item, "seq", "event")?;
    let what = &format!("event {seq}");
    let event = Event::parse(get_s(item, "event", what)?).ok_or_else(|| corrupt(what, "event"))?;
    let log: InterventionLog = serde_json::from_str(get_s(item, "payload", what)?)
        .map_err(|_| corrupt(what, "payload"))?;
    let attempts: u32 = get_n(item, "attempts", what)?;
    let delivery = match get_s(item, "delivery", what)? {
        "pending" => Delivery::Pending {
            attempts,
            last_error: opt_s(item, "lastError").map(str::to_string),
            last_attempt_at: opt_time(item, "lastAttemptAt"),
            in_doubt: item
                .get("inDoubt")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        },
        "delivered" => Delivery::Delivered {
            attempts,
            delivered_at: get_time(item, "deliveredAt", what)?,
        },
        "failed" => Delivery::Failed {
            attempts,
            last_error: get_s(item, "lastError", what)?.to_string(),
            last_attempt_at: get_time(item, "lastAttemptAt", what)?,
        },
        _ => return Err(corrupt(what, "delivery")),
    };
    Ok(RecordedEvent {
        seq,
        pair: event,
        log,
        recorded_at: get_time(item, "recordedAt", what)?,
        fingerprint: get_s(item, "fingerprint", what)?.to_string(),
        delivery,
    })
}

pub fn object_pk(identity: &str) -> String {
    format!("OBJECT#{identity}")
}

pub const OBJECT_SK: &str = "OBJECT";

/// Documents sort by publication time within the file's partition.
pub fn document_sk(record: &DocumentRecord) -> String {
    format!(
        "DOC#{}#{}",
        record.published_at,
        &record.object_identity[..16.min(record.object_identity.len())]
    )
}

pub fn document_item(id: &FileId, record: &DocumentRecord, expires_at: Timestamp) -> Item {
    let mut item = HashMap::from([
        ("pk".to_string(), s(file_pk(id))),
        ("sk".to_string(), s(document_sk(record))),
        ("itemType".to_string(), s("document")),
        ("objectIdentity".to_string(), s(&record.object_identity)),
        ("fileName".to_string(), s(&record.file_name)),
        ("title".to_string(), s(&record.title)),
        ("size".to_string(), n(record.size)),
        (
            "publishedAt".to_string(),
            s(record.published_at.to_string()),
        ),
        ("attempts".to_string(), n(record.attempts)),
        ("expiresAt".to_string(), n(expires_at.as_second())),
    ]);
    if let Some(id) = &record.intent_document_id {
        item.insert("intentDocumentId".to_string(), s(id));
    }
    item
}

pub fn document_record(item: &Item) -> Result<DocumentRecord, StoreError> {
    let what = "document";
    Ok(DocumentRecord {
        object_identity: get_s(item, "objectIdentity", what)?.to_string(),
        file_name: get_s(item, "fileName", what)?.to_string(),
        title: get_s(item, "title", what)?.to_string(),
        size: get_n(item, "size", what)?,
        intent_document_id: opt_s(item, "intentDocumentId").map(str::to_string),
        published_at: get_time(item, "publishedAt", what)?,
        attempts: get_n(item, "attempts", what)?,
    })
}

/// Whether `item`'s data has expired at `now` (`expiresAt` passed): DynamoDB's TTL erases
/// such items lazily, item by item, typically within days; until then they are read and
/// written as if they were not there.
pub fn expired(item: &Item, now: Timestamp) -> bool {
    item.get("expiresAt")
        .and_then(|at| at.as_n().ok())
        .and_then(|at| at.parse::<i64>().ok())
        .is_some_and(|at| at <= now.as_second())
}

/// The condition of a put that creates an item, over one whose data has expired (`:now`,
/// in seconds, bound by [`not_expired_condition_value`]) but TTL has not erased yet.
pub const CREATES_ITEM: &str = "attribute_not_exists(pk) OR expiresAt <= :now";

/// The `:now` of [`CREATES_ITEM`].
pub fn not_expired_condition_value(now: Timestamp) -> (&'static str, AttributeValue) {
    (":now", n(now.as_second()))
}

/// Rebuilds a file from the items of its partition (file item first, events in order),
/// leaving out items expired at `now` (a file whose data has expired is not there, even
/// while TTL has erased only some of its items; a new file of the same reference is
/// written over them).
pub fn file_from_items(
    id: &FileId,
    items: &[Item],
    now: Timestamp,
) -> Result<Option<InterventionFile>, StoreError> {
    let items = || items.iter().filter(|item| !expired(item, now));
    let Some(file_item) = items().find(|item| opt_s(item, "sk") == Some(FILE_SK)) else {
        return Ok(None);
    };
    let mut events = items()
        .filter(|item| opt_s(item, "sk").is_some_and(|sk| sk.starts_with("EVENT#")))
        .map(recorded_event)
        .collect::<Result<Vec<_>, _>>()?;
    // A closing written unread is kept on the file item until its own item is written.
    if let Some(AttributeValue::M(staged)) = file_item.get("stagedClosing") {
        let staged = recorded_event(staged)?;
        if !events.iter().any(|event| event.seq == staged.seq) {
            events.push(staged);
        }
    }
    events.sort_by_key(|event| event.seq);
    // A `Query` reads each item as committed when it reads it, not the partition at one
    // instant: a transaction committed between the events' read and the file item's (read
    // last: `EVENT#` sorts before `FILE`) shows the file newer than its log (closed, its
    // closing missing). Such a read is not a file: the caller reads again.
    let version = file_item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if let Some(version) = version
        && events.last().map_or(0, |last| last.seq) < version
    {
        return Err(StoreError::Contention);
    }
    // A record published before the file was created is an earlier file's of the same
    // reference (records may outlive their file by a margin: `document_expiry`).
    let created_at = opt_s(file_item, "createdAt").and_then(|at| at.parse::<Timestamp>().ok());
    let documents = items()
        .filter(|item| opt_s(item, "sk").is_some_and(|sk| sk.starts_with("DOC#")))
        .map(document_record)
        .filter(|record| {
            record.as_ref().map_or(true, |record| {
                created_at.is_none_or(|created| record.published_at >= created)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expires_at = file_item
        .get("expiresAt")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|seconds| Timestamp::from_second(seconds).ok());
    Ok(Some(InterventionFile {
        id: id.clone(),
        state: file_state(file_item)?,
        owner: PartnerId(get_s(file_item, "owner", "file")?.to_string()),
        events,
        documents,
        // Set by the mark a quitus gets before its upload, and by its publication.
        quitus_received: file_item.contains_key("hasDocuments"),
        expires_at,
    }))
}

/// The file a file item alone holds, when it is the whole file: its opening kept on it
/// and delivered (`openingCopy`, `openingDelivery`), no document; its closing, if closed,
/// kept on it until it has its own item (`stagedClosing`) or copied there and delivered
/// (`closingCopy`, `closingDelivery`). `None` for a file item without them (or expired).
pub fn file_from_file_item(
    id: &FileId,
    file_item: &Item,
) -> Result<Option<InterventionFile>, StoreError> {
    let (Some(AttributeValue::M(copy)), Some(AttributeValue::M(delivery))) = (
        file_item.get("openingCopy"),
        file_item.get("openingDelivery"),
    ) else {
        return Ok(None);
    };
    if file_item.contains_key("hasDocuments") {
        return Ok(None);
    }
    let mut opening: Item = copy.clone();
    opening.extend(delivery.clone());
    opening.insert("sk".into(), s(event_sk(1)));
    let mut items = vec![file_item.clone(), opening];
    // A closed file's closing: kept on the file item until it has its own item
    // (`stagedClosing`, pending), or copied there and delivered.
    if file_state(file_item)? != FileState::Open && !file_item.contains_key("stagedClosing") {
        let (Some(AttributeValue::M(copy)), Some(AttributeValue::M(delivery))) = (
            file_item.get("closingCopy"),
            file_item.get("closingDelivery"),
        ) else {
            return Ok(None);
        };
        let mut closing: Item = copy.clone();
        closing.extend(delivery.clone());
        closing.insert("sk".into(), s(event_sk(2)));
        items.push(closing);
    }
    file_from_items(id, &items, Timestamp::now())
}

// ---- upload grants ----------------------------------------------------------------------

pub const GRANT_SK: &str = "GRANT";

/// A partner's upload grant is keyed by the object key's fingerprint (a key may be long
/// and hold any character).
pub fn grant_pk(key: &str) -> String {
    format!(
        "GRANT#{}",
        oncall_domain::fingerprint::fingerprint_text(&[key])
    )
}

pub fn grant_item(grant: &oncall_domain::documents::UploadGrant, expires_at: Timestamp) -> Item {
    HashMap::from([
        ("pk".to_string(), s(grant_pk(&grant.key))),
        ("sk".to_string(), s(GRANT_SK)),
        ("itemType".to_string(), s("grant")),
        ("objectKey".to_string(), s(&grant.key)),
        ("reference".to_string(), s(&grant.file.reference)),
        (
            "contractReference".to_string(),
            s(&grant.file.contract_reference),
        ),
        ("partner".to_string(), s(&grant.partner.0)),
        ("fileName".to_string(), s(&grant.file_name)),
        ("size".to_string(), n(grant.size)),
        ("grantedAt".to_string(), s(grant.granted_at.to_string())),
        ("uploadBy".to_string(), s(grant.upload_by.to_string())),
        ("expiresAt".to_string(), n(expires_at.as_second())),
    ])
}

pub fn grant_from_item(item: &Item) -> Result<oncall_domain::documents::UploadGrant, StoreError> {
    let what = "upload grant";
    let time = |key: &str| -> Result<Timestamp, StoreError> {
        get_s(item, key, what)?
            .parse()
            .map_err(|_| corrupt(what, key))
    };
    Ok(oncall_domain::documents::UploadGrant {
        key: get_s(item, "objectKey", what)?.to_string(),
        file: FileId::new(
            get_s(item, "reference", what)?,
            get_s(item, "contractReference", what)?,
        ),
        partner: PartnerId(get_s(item, "partner", what)?.to_string()),
        file_name: get_s(item, "fileName", what)?.to_string(),
        size: get_n(item, "size", what)?,
        granted_at: time("grantedAt")?,
        upload_by: time("uploadBy")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous_whatever_the_references_hold() {
        let a = file_pk(&FileId::new("b#c", "a"));
        let b = file_pk(&FileId::new("c", "a#b"));
        assert_ne!(a, b);
        assert_eq!(a, "FILE#a#b%23c");
        assert_eq!(file_pk(&FileId::new("x%23", "y")), "FILE#y#x%2523");
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        let pk = file_pk(&FileId::new("INTER-0500", "contract1"));
        assert_eq!(open_shard(&pk), open_shard(&pk));
        let shards: std::collections::HashSet<String> = (0..200)
            .map(|i| open_shard(&file_pk(&FileId::new(&format!("R-{i}"), "c"))))
            .collect();
        assert_eq!(shards.len(), INDEX_SHARDS as usize, "{shards:?}");
    }

    #[test]
    fn event_keys_sort_in_sequence_order() {
        assert!(event_sk(9) < event_sk(10));
        assert!(event_sk(99_999) < event_sk(100_000));
    }

    /// An outbox entry leaves the table only once the bus took it: DynamoDB's TTL would
    /// erase, unseen, an event EventBridge kept refusing.
    #[test]
    fn an_outbox_entry_never_expires() {
        let event = oncall_domain::DomainEvent::Stored(oncall_domain::domain_events::StoredEvent {
            id: "e1".into(),
            detail_type: "InterventionOpened".into(),
            detail: serde_json::json!({"eventId": "e1"}),
        });
        let item = outbox_item(&event, "2026-11-28T20:00:00Z".parse().unwrap());
        assert_eq!(item["pk"].as_s().unwrap(), "OUTBOX#e1");
        assert!(!item.contains_key("expiresAt"), "{item:?}");
    }

    /// The file item read after a transaction that closed it committed, its events before:
    /// closed, version 2, its closing missing. Not a file: read again.
    #[test]
    fn a_file_read_newer_than_its_log_is_not_taken_for_the_file() {
        let id = FileId::new("TORN-1", "contract1");
        let log = oncall_domain::intent_examples::SEED_OPENING.replace("INTER-0500", "TORN-1");
        let opening = oncall_domain::RecordedEvent::new(
            1,
            oncall_domain::validation::parse_intervention_log(log.as_bytes()).unwrap(),
            "2026-11-28T20:00:00Z".parse().unwrap(),
            oncall_domain::Delivery::new_pending(),
        );
        let mut file = file_item(&id, &PartnerId("partner-a".into()), &opening).unwrap();
        let event = event_item(&id, &opening).unwrap();
        let now: Timestamp = "2026-11-28T21:00:00Z".parse().unwrap();
        assert!(matches!(
            file_from_items(&id, &[event.clone(), file.clone()], now),
            Ok(Some(_))
        ));
        file.insert("version".into(), n(2));
        file.insert("state".into(), s("closed"));
        file.insert("outcome".into(), s("done"));
        assert!(matches!(
            file_from_items(&id, &[event, file], now),
            Err(StoreError::Contention)
        ));
    }
}
