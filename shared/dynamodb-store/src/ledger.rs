//! The documents ledger: one item per S3 object version (`OBJECT#{identity}` / `OBJECT`),
//! claimed with a lease, then marked published (with the document added to its file's
//! partition in the same transaction) or rejected.

use crate::items::{OBJECT_SK, document_item, file_pk, n, object_pk, s};
use crate::store::{DynamoDbStore, Transaction, is_condition_failure, unavailable};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use jiff::Timestamp;
use oncall_domain::documents::{DocumentRecord, ObjectRef, RejectionReason};
use oncall_domain::file::InterventionFile;
use oncall_domain::ports::{DocumentClaim, DocumentLedger, StoreError};
use std::collections::HashMap;

impl DynamoDbStore {
    fn object_key(object: &ObjectRef) -> HashMap<String, AttributeValue> {
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
    ) -> HashMap<String, AttributeValue> {
        let mut item = Self::object_key(object);
        item.extend([
            ("itemType".to_string(), s("object")),
            ("status".to_string(), s(status)),
            ("bucket".to_string(), s(&object.bucket)),
            ("objectKey".to_string(), s(&object.key)),
            ("version".to_string(), s(object.version.as_str())),
        ]);
        item.extend(extra.map(|(name, value)| (name.to_string(), value)));
        item
    }

    async fn object_status(&self, object: &ObjectRef) -> Result<Option<String>, StoreError> {
        let item = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(Self::object_key(object)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item;
        Ok(item.and_then(|item| item.get("status").and_then(|v| v.as_s().ok()).cloned()))
    }
}

impl DocumentLedger for DynamoDbStore {
    async fn claim_document(
        &self,
        object: &ObjectRef,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<DocumentClaim, StoreError> {
        let item = Self::object_item(
            object,
            "in_progress",
            [
                ("leaseUntil", n(lease_until.as_second())),
                // The claim itself expires a day after its lease if nothing else happens.
                ("expiresAt", n(lease_until.as_second() + 86_400)),
            ],
        );
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :in_progress AND leaseUntil < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .expression_attribute_values(":now", n(now.as_second()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(DocumentClaim::Claimed),
            Err(error) if is_condition_failure(&error) => {
                Ok(match self.object_status(object).await?.as_deref() {
                    Some("published") => DocumentClaim::AlreadyPublished,
                    Some("rejected") => DocumentClaim::AlreadyRejected,
                    _ => DocumentClaim::HeldElsewhere,
                })
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn release_document(&self, object: &ObjectRef) -> Result<(), StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(Self::object_key(object)))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn record_published(
        &self,
        object: &ObjectRef,
        file: &InterventionFile,
        record: &DocumentRecord,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mark = self.update(
            &object_pk(&object.identity()),
            OBJECT_SK.to_string(),
            "SET #status = :published, handledAt = :at, filePk = :file, expiresAt = :ttl REMOVE leaseUntil",
            "#status = :in_progress",
            &[("#status", "status")],
            vec![
                (":published", s("published")),
                (":in_progress", s("in_progress")),
                (":at", s(record.published_at.to_string())),
                (":file", s(file_pk(&file.id))),
                (":ttl", n(expires_at.as_second())),
            ],
        )?;
        let document = Put::builder()
            .table_name(self.table())
            .set_item(Some(document_item(&file.id, record, expires_at)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // The file records that it has documents: canceling at reception is then refused
        // by the closing transaction's condition.
        let file_mark = self.update(
            &file_pk(&file.id),
            crate::items::FILE_SK.to_string(),
            "SET hasDocuments = :yes",
            "attribute_exists(pk)",
            &[],
            vec![(":yes", AttributeValue::Bool(true))],
        )?;
        let items = vec![
            mark,
            TransactWriteItem::builder().put(document).build(),
            file_mark,
        ];
        match self.transact(items).await? {
            Transaction::Committed => Ok(()),
            Transaction::ConditionFailed => Err(StoreError::Unavailable(
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
    ) -> Result<(), StoreError> {
        let item = Self::object_item(
            object,
            "rejected",
            [
                ("reason", s(reason.as_str())),
                ("detail", s(detail)),
                ("handledAt", s(now.to_string())),
                ("expiresAt", n(expires_at.as_second())),
            ],
        );
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s("in_progress"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }
}
