//! The documents ledger: one item per S3 object version (`OBJECT#{identity}` / `OBJECT`),
//! claimed with a lease, then marked published (with the document added to its file's
//! partition in the same transaction) or rejected.

use crate::items::{
    OBJECT_SK, document_item, document_shard, file_pk, n, object_pk, s, sortable_time,
};
use crate::store::{DynamoDbStore, Transaction, unavailable};
use crate::wire::{AttributeValue, Item, OldItems, Operation, Request, TransactWriteItem};
use jiff::Timestamp;
use oncall_domain::DomainEvent;
use oncall_domain::documents::{DocumentRecord, ObjectRef, ObjectVersion, RejectionReason};
use oncall_domain::file::InterventionFile;
use oncall_domain::model::FileId;
use oncall_domain::ports::{
    ClaimToken, ClaimedObject, DocumentClaim, DocumentLedger, DocumentWait, PendingDocument,
    StoreError,
};
use std::collections::HashMap;

/// An object's key and the claim a write is made under: what the claimer's later writes
/// are conditioned on.
struct Held<'a> {
    pk: String,
    claim: &'a ClaimToken,
}

impl<'a> Held<'a> {
    fn on(object: &ObjectRef, claim: &'a ClaimToken) -> Self {
        Self {
            pk: object_pk(&object.identity()),
            claim,
        }
    }

    /// `condition`, and only while this claim still holds the object.
    fn condition(&self, condition: &str) -> String {
        format!("({condition}) AND claimedBy = :holder")
    }

    /// The `:holder` value [`Held::condition`] names.
    fn value(&self) -> (&'static str, AttributeValue) {
        (":holder", s(self.claim.as_str()))
    }

    /// `request` with that value.
    fn bind(&self, request: Request) -> Request {
        let (name, value) = self.value();
        request.value(name, value)
    }

    /// Whether `old` (the ledger item as a refused write found it) is already in `status`
    /// under this claim: the write was applied by an earlier attempt whose answer was lost
    /// (a shared call's, sent again on its own with a new token).
    fn already(&self, old: &OldItems, status: &str) -> bool {
        let text = |item: &Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        old.get(0).is_some_and(|item| {
            text(item, "status").as_deref() == Some(status)
                && text(item, "claimedBy").as_deref() == Some(self.claim.as_str())
        })
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
        first_seen_at: text(item, "firstSeenAt").and_then(|at| at.parse().ok()),
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
                let old = output.attributes.unwrap_or_default();
                let in_doubt = text(&old, "status") == Some("in_progress")
                    || old
                        .get("inDoubt")
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .unwrap_or(false);
                Ok(DocumentClaim::Claimed(ClaimedObject {
                    token: ClaimToken::new(holder),
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
                        DocumentClaim::Claimed(ClaimedObject {
                            token: ClaimToken::new(holder),
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

    async fn release_document(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
    ) -> Result<(), StoreError> {
        // Back to waiting, in doubt (whatever happened before the failure may have
        // reached Intent): the re-send run takes it again. A claim taken over meanwhile is
        // the taker's to give back.
        let held = Held::on(object, claim);
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
            Ok(_) => Ok(()),
            Err(error) if error.is_condition_failure() => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn record_pending(
        &self,
        object: &ObjectRef,
        claim: &ClaimToken,
        wait: &DocumentWait,
    ) -> Result<(), StoreError> {
        let mut sets = vec![
            "#status = :pending",
            "attempts = :attempts",
            "lastError = :error",
            "lastAttemptAt = :at",
            "inDoubt = :doubt",
        ];
        let held = Held::on(object, claim);
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
        let request = request
            .update_expression(format!("SET {} REMOVE leaseUntil", sets.join(", ")))
            .old_item_on_condition_failure();
        match self.client().send(Operation::UpdateItem, request).await {
            Ok(_) => Ok(()),
            // Refused by its own earlier attempt, applied but unanswered (the claim stays
            // on the item until another claim takes it).
            Err(error)
                if error.is_condition_failure() && held.already(&error.old_items, "pending") =>
            {
                tracing::info!("the quitus's wait was recorded by an earlier attempt");
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
        claim: &ClaimToken,
        file: &InterventionFile,
        record: &DocumentRecord,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<(), StoreError> {
        let held = Held::on(object, claim);
        let mut values = vec![
            (":published", s("published")),
            (":in_progress", s("in_progress")),
            (":at", s(record.published_at.to_string())),
            (":file", s(file_pk(&file.id))),
            (":ttl", n(expires_at.as_second())),
        ];
        values.push(held.value());
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
        let mut items = vec![mark.old_item_on_condition_failure(), document, file_mark];
        items.extend(self.outbox_puts(announce, record.published_at));
        match self.transact(items).await? {
            Transaction::Committed => Ok(()),
            Transaction::ConditionFailed(old) if held.already(&old, "published") => {
                tracing::info!("the document's record was applied by an earlier attempt");
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
        claim: &ClaimToken,
        reason: RejectionReason,
        detail: &str,
        now: Timestamp,
        expires_at: Timestamp,
        announce: &[DomainEvent],
    ) -> Result<bool, StoreError> {
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
        // In progress under this claim only; the claim stays on the item, so that an
        // attempt applied whose answer was lost is recognised.
        let held = Held::on(object, claim);
        item.insert("claimedBy".into(), s(claim.as_str()));
        let rejected = held.bind(
            self.request()
                .item(item)
                .condition_expression(held.condition("#status = :in_progress"))
                .name("#status", "status")
                .value(":in_progress", s("in_progress"))
                .old_item_on_condition_failure(),
        );
        let mut items = vec![TransactWriteItem::Put(rejected)];
        items.extend(self.outbox_puts(announce, now));
        // Already published or rejected, or taken over by another claim: nothing written,
        // nothing to announce; unless it is this very rejection, applied by an earlier
        // attempt.
        Ok(match self.transact(items).await? {
            Transaction::Committed => true,
            Transaction::ConditionFailed(old) => held.already(&old, "rejected"),
        })
    }
}
