//! Partners' upload grants: one item per granted object key (`GRANT#{fingerprint(key)}` /
//! `GRANT`), written by the upload route, read by the forwarder; they expire with the
//! documents they let in.

use crate::items::{GRANT_SK, grant_from_item, grant_item, grant_pk, s};
use crate::store::{DynamoDbStore, unavailable};
use jiff::Timestamp;
use oncall_domain::documents::UploadGrant;
use oncall_domain::ports::{StoreError, UploadGrants};
use std::collections::HashMap;

impl UploadGrants for DynamoDbStore {
    async fn record_upload_grant(
        &self,
        grant: &UploadGrant,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(grant_item(grant, expires_at)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn upload_grant(&self, key: &str) -> Result<Option<UploadGrant>, StoreError> {
        let item = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(HashMap::from([
                ("pk".to_string(), s(grant_pk(key))),
                ("sk".to_string(), s(GRANT_SK)),
            ])))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item;
        item.as_ref().map(grant_from_item).transpose()
    }
}
