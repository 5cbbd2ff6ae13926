//! The documents ledger: one item per S3 object version (`OBJECT#{identity}` / `OBJECT`),
//! claimed with a lease, then marked published (with the document added to its file's
//! partition in the same transaction) or rejected.

use crate::items::{
    OBJECT_SK, document_item, document_shard, file_pk, n, object_pk, s, sortable_time,
};
use crate::store::{DynamoDbStore, Transaction, unavailable};
use crate::wire::{AttributeValue, Item, Operation, Request, TransactWriteItem};
use jiff::Timestamp;
use oncall_domain::DomainEvent;
use oncall_domain::documents::{DocumentRecord, ObjectRef, ObjectVersion, RejectionReason};
use oncall_domain::file::InterventionFile;
use oncall_domain::model::FileId;
use oncall_domain::ports::{
    ClaimedObject, DocumentClaim, DocumentLedger, DocumentWait, PendingDocument, StoreError,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The claims a store holds, by object `pk`: the token each claim wrote in `claimedBy`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimTokens(Arc<Mutex<HashMap<String, String>>>);

impl ClaimTokens {
    fn hold(&self, pk: &str, holder: &str) {
        if let Ok(mut claims) = self.0.lock() {
            claims.insert(pk.to_string(), holder.to_string());
        }
    }

    /// This process's claim on `object`, if it holds one.
    fn on(&self, object: &ObjectRef) -> Held {
        let pk = object_pk(&object.identity());
        let holder = self
            .0
            .lock()
            .ok()
            .and_then(|claims| claims.get(&pk).cloned());
        Held { pk, holder }
    }

    /// Forgets the claim once a write under it passed (it ended the claim). A write
    /// refused because the claim was taken over keeps it: every later write of the
    /// stale holder stays conditioned on a claim it no longer has.
    fn end(&self, pk: &str) {
        if let Ok(mut claims) = self.0.lock() {
            claims.remove(pk);
        }
    }
}

/// An object's key, and the token of this process's claim on it if it holds one: what the
/// claimer's later writes are conditioned on.
struct Held {
    pk: String,
    holder: Option<String>,
}

impl Held {
    /// `condition`, and while this process holds the object's claim, only if it still does.
    fn condition(&self, condition: &str) -> String {
        match self.holder {
            Some(_) => format!("({condition}) AND claimedBy = :holder"),
            None => condition.to_string(),
        }
    }

    /// The `:holder` value [`Held::condition`] names, when it names one.
    fn value(&self) -> Option<(&'static str, AttributeValue)> {
        self.holder.as_ref().map(|holder| (":holder", s(holder)))
    }

    /// `request` with that value.
    fn bind(&self, request: Request) -> Request {
        match self.value() {
            Some((name, value)) => request.value(name, value),
            None => request,
        }
    }
}

impl DynamoDbStore {
    fn object_key(object: &ObjectRef) -> Item {
        HashMap::from([
            ("pk".to_string(), s(object_pk(&object.identity()))),
            ("sk".to_string(), s(OBJECT_SK)),
        ])
    }

    /// The ledger item of an object version in `status`, plus `extra` attributes.
    fn object_item<const N: usize>(
        object: &ObjectRef,
        status: &str,
        extra: [(&str, AttributeValue); N],
    ) -> Item {
        let mut item = Self::object_key(object);
        item.extend([
            ("itemType".to_string(), s("object")),
            ("status".to_string(), s(status)),
            ("bucket".to_string(), s(&object.bucket)),
            ("objectKey".to_string(), s(&object.key)),
            ("version".to_string(), s(object.version.as_str())),
            ("versionKind".to_string(), s(version_kind(&object.version))),
        ]);
        item.extend(extra.map(|(name, value)| (name.to_string(), value)));
        item
    }

    async fn object_status(&self, object: &ObjectRef) -> Result<Option<String>, StoreError> {
        let item = self
            .client()
            .send(
                Operation::GetItem,
                self.request()
                    .set_key(Self::object_key(object))
                    .consistent_read(),
            )
            .await
            .map_err(unavailable)?
            .item;
        Ok(item.and_then(|item| item.get("status").and_then(|v| v.as_s().ok()).cloned()))
    }
}

fn version_kind(version: &ObjectVersion) -> &'static str {
    match version {
        ObjectVersion::VersionId(_) => "versionId",
        ObjectVersion::ETag(_) => "etag",
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A waiting document as the index returns it.
pub(crate) fn pending_document(item: &Item) -> Result<PendingDocument, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("a ledger item lacks {what}"));
    let version = text(item, "version").ok_or_else(|| corrupt("version"))?;
    let object = ObjectRef {
        bucket: text(item, "bucket")
            .ok_or_else(|| corrupt("bucket"))?
            .to_string(),
        key: text(item, "objectKey")
            .ok_or_else(|| corrupt("objectKey"))?
            .to_string(),
        version: match text(item, "versionKind") {
            Some("etag") => ObjectVersion::ETag(version.to_string()),
            _ => ObjectVersion::VersionId(version.to_string()),
        },
        size: number(item, "size").and_then(|size| u64::try_from(size).ok()),
    };
    let file = match (text(item, "reference"), text(item, "contractReference")) {
        (Some(reference), Some(contract)) => Some(FileId::new(reference, contract)),
        _ => None,
    };
    Ok(PendingDocument {
        object,
        file,
        attempts: number(item, "attempts").unwrap_or(0) as u32,
        last_attempt_at: text(item, "lastAttemptAt").and_then(|at| at.parse().ok()),
        last_error: text(item, "lastError").map(str::to_string),
    })
}

impl DocumentLedger for DynamoDbStore {
    async fn claim_document(
        &self,
        object: &ObjectRef,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<DocumentClaim, StoreError> {
        let pk = object_pk(&object.identity());
        // One update creates or takes the item; the old image says whether an earlier
        // holder's upload is in doubt (its lease ran out, or it recorded a lost answer).
        // Refused, it gives the item back as it is: published, rejected, held by another
        // claim, or by this very claim (an attempt applied whose answer was lost).
        let holder = crate::wire::request_token();
        let mut request = self
            .request()
            .set_key(Self::object_key(object))
            .update_expression(format!(
                "SET itemType = :object, #status = :in_progress, leaseUntil = :until, #bucket = :bucket, \
                 objectKey = :key, #version = :version, versionKind = :kind, \
                 pendingShard = :shard, pendingSince = if_not_exists(pendingSince, :since), \
                 firstSeenAt = if_not_exists(firstSeenAt, :now_text), \
                 attempts = if_not_exists(attempts, :zero), expiresAt = :ttl, claimedBy = :holder{}",
                if object.size.is_some() { ", #size = :size" } else { "" }
            ))
            .condition_expression(
                "attribute_not_exists(pk) OR #status = :pending OR (#status = :in_progress AND leaseUntil < :now)",
            )
            .name("#status", "status")
            .name("#bucket", "bucket")
            .name("#version", "version")
            .value(":object", s("object"))
            .value(":in_progress", s("in_progress"))
            .value(":pending", s("pending"))
            .value(":until", n(lease_until.as_second()))
            .value(":bucket", s(&object.bucket))
            .value(":key", s(&object.key))
            .value(":version", s(object.version.as_str()))
            .value(":kind", s(version_kind(&object.version)))
            .value(":shard", s(document_shard(&pk)))
            .value(
                ":since",
                s(format!("{}#{}", sortable_time(now), &pk[7..23.min(pk.len())])),
            )
            .value(":now_text", s(now.to_string()))
            .value(":zero", n(0))
            .value(":now", n(now.as_second()))
            // A waiting document is kept as long as a closed file's data at most; the
            // claim itself is renewed by every attempt.
            .value(":ttl", n(lease_until.as_second() + 400 * 86_400))
            .value(":holder", s(&holder))
            .return_values("ALL_OLD")
            .old_item_on_condition_failure();
        if let Some(size) = object.size {
            request = request.name("#size", "size").value(":size", n(size));
        }
        match self.client().send(Operation::UpdateItem, request).await {
            Ok(output) => {
                self.document_claims.hold(&pk, &holder);
                let old = output.attributes.unwrap_or_default();
                let in_doubt = text(&old, "status") == Some("in_progress")
                    || old
                        .get("inDoubt")
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .unwrap_or(false);
                Ok(DocumentClaim::Claimed(ClaimedObject {
                    in_doubt,
                    attempts: number(&old, "attempts").unwrap_or(0) as u32,
                    first_seen_at: text(&old, "firstSeenAt")
                        .and_then(|at| at.parse().ok())
                        .unwrap_or(now),
                }))
            }
            Err(error) if error.is_condition_failure() => {
                let Some(current) = error.old_items.get(0) else {
                    return Ok(match self.object_status(object).await?.as_deref() {
                        Some("published") => DocumentClaim::AlreadyPublished,
                        Some("rejected") => DocumentClaim::AlreadyRejected,
                        _ => DocumentClaim::HeldElsewhere,
                    });
                };
                Ok(match text(current, "status") {
                    Some("published") => DocumentClaim::AlreadyPublished,
                    Some("rejected") => DocumentClaim::AlreadyRejected,
                    Some("in_progress") if text(current, "claimedBy") == Some(holder.as_str()) => {
                        // Claimed by this call's own earlier attempt: what it replaced is
                        // unknown, so Intent is read before anything is uploaded.
                        self.document_claims.hold(&pk, &holder);
                        DocumentClaim::Claimed(ClaimedObject {
                            in_doubt: true,
                            attempts: number(current, "attempts").unwrap_or(0) as u32,
                            first_seen_at: text(current, "firstSeenAt")
                                .and_then(|at| at.parse().ok())
                                .unwrap_or(now),
                        })
                    }
                    _ => DocumentClaim::HeldElsewhere,
                })
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn release_document(&self, object: &ObjectRef) -> Result<(), StoreError> {
        // Back to waiting, in doubt (whatever happened before the failure may have
        // reached Intent): the re-send run takes it again. A claim taken over meanwhile is
        // the taker's to give back.
        let held = self.document_claims.on(object);
        let request = held.bind(
            self.request()
                .set_key(Self::object_key(object))
                .update_expression("SET #status = :pending, inDoubt = :yes REMOVE leaseUntil")
                .condition_expression(held.condition("#status = :in_progress"))
                .name("#status", "status")
                .value(":in_progress", s("in_progress"))
                .value(":pending", s("pending"))
                .value(":yes", AttributeValue::Bool(true)),
        );
        match self.client().send(Operation::UpdateItem, request).await {
            Ok(_) => {
                self.document_claims.end(&held.pk);
                Ok(())
            }
            Err(error) if error.is_condition_failure() => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn record_pending(
        &self,
        object: &ObjectRef,
        wait: &DocumentWait,
    ) -> Result<(), StoreError> {
        let mut sets = vec![
            "#status = :pending",
            "attempts = :attempts",
            "lastError = :error",
            "lastAttemptAt = :at",
            "inDoubt = :doubt",
        ];
        let held = self.document_claims.on(object);
        let mut request = held.bind(
            self.request()
                .set_key(Self::object_key(object))
                .condition_expression(held.condition("#status = :in_progress"))
                .name("#status", "status")
                .value(":in_progress", s("in_progress"))
                .value(":pending", s("pending"))
                .value(":attempts", n(wait.attempts))
                .value(":error", s(&wait.last_error))
                .value(":at", s(wait.last_attempt_at.to_string()))
                .value(":doubt", AttributeValue::Bool(wait.in_doubt)),
        );
        if let Some(file) = &wait.file {
            sets.extend(["#reference = :reference", "contractReference = :contract"]);
            request = request
                .name("#reference", "reference")
                .value(":reference", s(&file.reference))
                .value(":contract", s(&file.contract_reference));
        }
        let request =
            request.update_expression(format!("SET {} REMOVE leaseUntil", sets.join(", ")));
        match self.client().send(Operation::UpdateItem, request).await {
            Ok(_) => {
                self.document_claims.end(&held.pk);
                Ok(())
            }
            Err(error) if error.is_condition_failure() => Err(StoreError::Unavailable(
                "the object's claim was lost before its wait was recorded".into(),
            )),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn record_published(
        &self,
        object: &ObjectRef,
        file: &InterventionFile,
        record: &DocumentRecord,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        let held = self.document_claims.on(object);
        let mut values = vec![
            (":published", s("published")),
            (":in_progress", s("in_progress")),
            (":at", s(record.published_at.to_string())),
            (":file", s(file_pk(&file.id))),
            (":ttl", n(expires_at.as_second())),
        ];
        values.extend(held.value());
        let mark = self.update(
            &held.pk,
            OBJECT_SK.to_string(),
            "SET #status = :published, handledAt = :at, filePk = :file, expiresAt = :ttl \
             REMOVE leaseUntil, pendingShard, pendingSince, inDoubt",
            &held.condition("#status = :in_progress"),
            &[("#status", "status")],
            values,
        );
        let document = TransactWriteItem::Put(
            self.request()
                .item(document_item(&file.id, record, expires_at))
                .condition_expression("attribute_not_exists(pk)"),
        );
        // The file records that it has documents: canceling at reception is then refused
        // by the closing transaction's condition.
        let file_mark = self.update(
            &file_pk(&file.id),
            crate::items::FILE_SK.to_string(),
            "SET hasDocuments = :yes",
            "attribute_exists(pk)",
            &[],
            vec![(":yes", AttributeValue::Bool(true))],
        );
        let mut items = vec![mark, document, file_mark];
        items.extend(self.outbox_puts(announce, record.published_at));
        match self.transact(items).await? {
            Transaction::Committed => {
                self.document_claims.end(&held.pk);
                Ok(())
            }
            Transaction::ConditionFailed(_) => Err(StoreError::Unavailable(
                "the object's claim was lost before the document was recorded".into(),
            )),
        }
    }

    async fn record_rejected(
        &self,
        object: &ObjectRef,
        reason: RejectionReason,
        detail: &str,
        now: Timestamp,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        let mut item = Self::object_item(
            object,
            "rejected",
            [
                ("reason", s(reason.as_str())),
                ("detail", s(detail)),
                ("handledAt", s(now.to_string())),
                ("expiresAt", n(expires_at.as_second())),
            ],
        );
        // A refusal by Intent waits for an operator's redrive: indexed (`rejected-N`).
        item.extend(crate::operator::rejection_index(object, reason, now));
        // In progress: only under this process's claim, when it holds one.
        let held = self.document_claims.on(object);
        let in_progress = held.condition("#status = :in_progress");
        let rejected = held.bind(
            self.request()
                .item(item)
                .condition_expression(format!(
                    "attribute_not_exists(pk) OR #status = :pending OR ({in_progress})"
                ))
                .name("#status", "status")
                .value(":in_progress", s("in_progress"))
                .value(":pending", s("pending")),
        );
        let mut items = vec![TransactWriteItem::Put(rejected)];
        items.extend(self.outbox_puts(announce, now));
        // Already published or rejected (or held by a claim that took this one over):
        // nothing to change, nothing to announce.
        if let Transaction::Committed = self.transact(items).await? {
            self.document_claims.end(&held.pk);
        }
        Ok(())
    }
}
