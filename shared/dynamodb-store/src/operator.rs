//! The operator's reads and writes (`bridge-admin`): events and documents Intent refused
//! for good, documents waiting in the ledger, and putting a refused document back to
//! waiting. Index queries only (the `pending-events` index: `failed-N` for events,
//! `document-N` for waiting documents, `rejected-N` for documents Intent refused), never a
//! `Scan`.

use crate::items::{
    DOCUMENT_PREFIX, OBJECT_SK, PENDING_EVENTS_INDEX, REJECTED_PREFIX, document_shard, n,
    object_pk, rejected_shard, s, sortable_time,
};
use crate::store::{DynamoDbStore, unavailable};
use crate::wire::{AttributeValue, Item, Operation};
use jiff::Timestamp;
use oncall_domain::documents::{ObjectRef, RejectionReason, parse_quitus_key};
use oncall_domain::model::FileId;
use oncall_domain::ports::StoreError;
use oncall_domain::redrive::{LedgerDocument, OperatorStore};

/// The attributes that put a rejected ledger item in the operator's `rejected-N` index
/// partitions: only for a refusal by Intent (the only rejection a redrive can change),
/// with its file when the key names one.
pub(crate) fn rejection_index(
    object: &ObjectRef,
    reason: RejectionReason,
    now: Timestamp,
) -> Vec<(String, AttributeValue)> {
    if reason != RejectionReason::IntentRejected {
        return Vec::new();
    }
    let identity = object.identity();
    let pk = object_pk(&identity);
    let mut attributes = vec![
        ("pendingShard".to_string(), s(rejected_shard(&pk))),
        (
            "pendingSince".to_string(),
            s(format!("{}#{}", sortable_time(now), &identity[..16])),
        ),
    ];
    if let Ok(key) = parse_quitus_key(&object.key) {
        attributes.push(("reference".to_string(), s(&key.file.reference)));
        attributes.push((
            "contractReference".to_string(),
            s(&key.file.contract_reference),
        ));
    }
    if let Some(size) = object.size {
        attributes.push(("size".to_string(), n(size)));
    }
    attributes
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn time(item: &Item, name: &str) -> Option<Timestamp> {
    text(item, name).and_then(|at| at.parse().ok())
}

/// A ledger item of the index as the operator sees it.
fn ledger_document(
    item: &Item,
    since: &str,
    last_error: &str,
) -> Result<LedgerDocument, StoreError> {
    let pending = crate::ledger::pending_document(item)?;
    let file = pending.file.or_else(|| {
        parse_quitus_key(&pending.object.key)
            .ok()
            .map(|key| key.file)
    });
    Ok(LedgerDocument {
        object: pending.object,
        file,
        attempts: pending.attempts,
        since: time(item, since),
        last_attempt_at: pending.last_attempt_at,
        last_error: text(item, last_error).map(str::to_string),
    })
}

impl OperatorStore for DynamoDbStore {
    async fn files_with_failed_events(&self) -> Result<Vec<FileId>, StoreError> {
        DynamoDbStore::files_with_failed_events(self).await
    }

    async fn waiting_documents(&self) -> Result<Vec<LedgerDocument>, StoreError> {
        self.index_items(PENDING_EVENTS_INDEX, "pendingShard", DOCUMENT_PREFIX, None)
            .await?
            .iter()
            .map(|item| ledger_document(item, "firstSeenAt", "lastError"))
            .collect()
    }

    async fn failed_documents(&self) -> Result<Vec<LedgerDocument>, StoreError> {
        self.index_items(PENDING_EVENTS_INDEX, "pendingShard", REJECTED_PREFIX, None)
            .await?
            .iter()
            .filter(|item| text(item, "status") == Some("rejected"))
            .map(|item| {
                let mut document = ledger_document(item, "handledAt", "detail")?;
                document.last_attempt_at = document.since;
                Ok(document)
            })
            .collect()
    }

    async fn requeue_document(&self, object: &ObjectRef) -> Result<bool, StoreError> {
        let pk = object_pk(&object.identity());
        // The redrive's token: its retry after a lost answer finds its own write.
        let token = crate::wire::request_token();
        // Back to waiting, out of the operator's partitions into the forwarders' ones
        // (its place in the index kept); the refusal stays as the last error.
        let request = self
            .request()
            .key(&pk, OBJECT_SK)
            .update_expression(
                "SET #status = :pending, pendingShard = :shard, lastError = #detail, \
                 inDoubt = :no, attempts = if_not_exists(attempts, :zero), requeuedAt = :now, \
                 requeuedBy = :requeued_by REMOVE #reason, handledAt",
            )
            .condition_expression("#status = :rejected AND #reason = :intent_rejected")
            .name("#status", "status")
            .name("#reason", "reason")
            .name("#detail", "detail")
            .value(":pending", s("pending"))
            .value(":rejected", s("rejected"))
            .value(
                ":intent_rejected",
                s(RejectionReason::IntentRejected.as_str()),
            )
            .value(":shard", s(document_shard(&pk)))
            .value(":no", AttributeValue::Bool(false))
            .value(":zero", n(0))
            .value(":now", s(Timestamp::now().to_string()))
            .value(":requeued_by", s(&token))
            .old_item_on_condition_failure();
        match self.client().send(Operation::UpdateItem, request).await {
            Ok(_) => Ok(true),
            Err(error) if error.is_condition_failure() => {
                Ok(crate::store::requeued_by(&error.old_items, &token))
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}
