//! The closer's reads: the sparse indexes, all shards queried in parallel and paged
//! through. Never a `Scan`.

use crate::items::{INDEX_SHARDS, OPEN_FILES_INDEX, PENDING_EVENTS_INDEX, s, sortable_time};
use crate::store::{DynamoDbStore, unavailable};
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use oncall_domain::model::FileId;
use oncall_domain::ports::{ListOpenFiles, ListPendingEvents, StoreError};
use std::collections::{BTreeSet, HashMap};

impl DynamoDbStore {
    /// Every item of one index (all shards), keeping only the file identities.
    async fn index_files(
        &self,
        index: &str,
        shard_attribute: &str,
        shard_prefix: &str,
        range: Option<(&str, String)>,
    ) -> Result<Vec<FileId>, StoreError> {
        let queries = (0..INDEX_SHARDS).map(|shard| {
            let range = range.clone();
            async move {
                let mut condition = "#shard = :shard".to_string();
                let mut request = self
                    .client()
                    .query()
                    .table_name(self.table())
                    .index_name(index)
                    .expression_attribute_names("#shard", shard_attribute)
                    .expression_attribute_values(":shard", s(format!("{shard_prefix}-{shard}")))
                    .expression_attribute_names("#reference", "reference")
                    .expression_attribute_names("#contract", "contractReference")
                    .projection_expression("pk, #reference, #contract");
                if let Some((attribute, before)) = &range {
                    condition.push_str(" AND #range < :before");
                    request = request
                        .expression_attribute_names("#range", *attribute)
                        .expression_attribute_values(":before", s(before.clone()));
                }
                let mut pages = request
                    .key_condition_expression(condition)
                    .into_paginator()
                    .send();
                let mut items: Vec<HashMap<String, AttributeValue>> = Vec::new();
                while let Some(page) = pages.next().await {
                    items.extend(page.map_err(unavailable)?.items.unwrap_or_default());
                }
                Ok::<_, StoreError>(items)
            }
        });
        let mut files = BTreeSet::new();
        for items in futures_util::future::join_all(queries).await {
            for item in items? {
                let field = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                match (field("reference"), field("contractReference")) {
                    (Some(reference), Some(contract)) => {
                        files.insert(FileId::new(&reference, &contract));
                    }
                    _ => {
                        return Err(StoreError::Corrupt(format!(
                            "an {index} index item lacks its file identity"
                        )));
                    }
                }
            }
        }
        Ok(files.into_iter().collect())
    }
}

impl ListOpenFiles for DynamoDbStore {
    async fn open_files_opened_before(&self, before: Timestamp) -> Result<Vec<FileId>, StoreError> {
        self.index_files(
            OPEN_FILES_INDEX,
            "openShard",
            "open",
            Some(("openedAt", sortable_time(before))),
        )
        .await
    }
}

impl ListPendingEvents for DynamoDbStore {
    async fn files_with_pending_events(&self) -> Result<Vec<FileId>, StoreError> {
        self.index_files(PENDING_EVENTS_INDEX, "pendingShard", "pending", None)
            .await
    }
}
