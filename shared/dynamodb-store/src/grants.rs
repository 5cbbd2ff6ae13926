//! Partners' upload grants: one item per granted object key (`GRANT#{fingerprint(key)}` /
//! `GRANT`), written by the upload route with a check of its file, read by the forwarder;
//! they expire with the documents they let in.

use crate::items::{
    FILE_SK, GRANT_SK, expired, file_pk, grant_from_item, grant_item, grant_pk,
    not_expired_condition_value, s,
};
use crate::store::{DynamoDbStore, Transaction, unavailable};
use crate::wire::{Operation, TransactWriteItem};
use jiff::Timestamp;
use oncall_domain::documents::UploadGrant;
use oncall_domain::lifecycle::Outcome;
use oncall_domain::ports::{GrantRecorded, StoreError, UploadGrants};

impl UploadGrants for DynamoDbStore {
    /// One `TransactWriteItems`: a `ConditionCheck` of the file (the partner's, not
    /// canceled, its data not expired: a file TTL has not erased yet is gone, as for
    /// `load_file`; refused, it gives the file back to tell which) and the grant's `Put`.
    async fn record_upload_grant(
        &self,
        grant: &UploadGrant,
        expires_at: Timestamp,
    ) -> Result<GrantRecorded, StoreError> {
        let checked_at = Timestamp::now();
        let now = not_expired_condition_value(checked_at);
        let file_check = TransactWriteItem::ConditionCheck(
            self.request()
                .key(file_pk(&grant.file), FILE_SK)
                .condition_expression(
                    "#owner = :partner AND attribute_exists(#state) \
                     AND NOT (#state = :closed AND outcome = :canceled) \
                     AND (attribute_not_exists(expiresAt) OR expiresAt > :now)",
                )
                .name("#owner", "owner")
                .name("#state", "state")
                .value(":partner", s(&grant.partner.0))
                .value(":closed", s("closed"))
                .value(":canceled", s(Outcome::Canceled.as_str()))
                .value(now.0, now.1),
        )
        .old_item_on_condition_failure();
        let put = TransactWriteItem::Put(self.request().item(grant_item(grant, expires_at)));
        Ok(match self.transact(vec![file_check, put]).await? {
            Transaction::Committed => GrantRecorded::Recorded,
            Transaction::ConditionFailed(old) => match old.get(0) {
                None => GrantRecorded::NoFile,
                Some(file) if expired(file, checked_at) => GrantRecorded::NoFile,
                Some(file) => {
                    let text = |name: &str| file.get(name).and_then(|value| value.as_s().ok());
                    match (text("owner"), text("state")) {
                        // Another partner's file is not even acknowledged.
                        (Some(owner), Some(_)) if *owner != grant.partner.0 => {
                            GrantRecorded::NoFile
                        }
                        (Some(_), Some(_)) => GrantRecorded::FileCanceled,
                        _ => {
                            return Err(StoreError::Corrupt(format!(
                                "file {} has no owner or state",
                                grant.file
                            )));
                        }
                    }
                }
            },
        })
    }

    async fn upload_grant(&self, key: &str) -> Result<Option<UploadGrant>, StoreError> {
        let item = self
            .client()
            .send(
                Operation::GetItem,
                self.request()
                    .key(grant_pk(key), GRANT_SK)
                    .consistent_read(),
            )
            .await
            .map_err(unavailable)?
            .item
            // One whose data has expired is gone, though TTL has not erased it yet.
            .filter(|item| !crate::items::expired(item, jiff::Timestamp::now()));
        item.as_ref().map(grant_from_item).transpose()
    }
}
