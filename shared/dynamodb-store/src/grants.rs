//! Partners' upload grants: one item per granted object key (`GRANT#{fingerprint(key)}` /
//! `GRANT`), written by the upload route, read by the forwarder; they expire with the
//! documents they let in.

use crate::items::{GRANT_SK, grant_from_item, grant_item, grant_pk};
use crate::store::{DynamoDbStore, unavailable};
use crate::wire::Operation;
use jiff::Timestamp;
use oncall_domain::documents::UploadGrant;
use oncall_domain::ports::{StoreError, UploadGrants};

impl UploadGrants for DynamoDbStore {
    async fn record_upload_grant(
        &self,
        grant: &UploadGrant,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.client()
            .send(
                Operation::PutItem,
                self.request().item(grant_item(grant, expires_at)),
            )
            .await
            .map_err(unavailable)?;
        Ok(())
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
            .item;
        item.as_ref().map(grant_from_item).transpose()
    }
}
