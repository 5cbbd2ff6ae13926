//! The closer's reads: the sparse indexes, all shards queried in parallel and paged
//! through. Never a `Scan`.

use crate::items::{
    DOCUMENT_PREFIX, FAILED_PREFIX, INDEX_SHARDS, OPEN_FILES_INDEX, OUTBOX_PREFIX,
    PENDING_EVENTS_INDEX, PENDING_PREFIX, REJECTED_PREFIX, s, sortable_time,
};
use crate::store::{DynamoDbStore, unavailable};
use crate::wire::Item;
use crate::wire::Operation;
use jiff::Timestamp;
use oncall_domain::model::FileId;
use oncall_domain::ports::{
    Backlog, ListOpenFiles, ListPendingDocuments, ListPendingEvents, PendingDocument, ReadBacklog,
    StoreError,
};
use std::collections::BTreeSet;

impl DynamoDbStore {
    /// Every item of one index's shards named `{shard_prefix}-N`, with `projection`.
    pub(crate) async fn index_items(
        &self,
        index: &str,
        shard_attribute: &str,
        shard_prefix: &str,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let queries = (0..INDEX_SHARDS).map(|shard| async move {
            let mut request = self
                .request()
                .index_name(index)
                .key_condition_expression("#shard = :shard")
                .name("#shard", shard_attribute)
                .value(":shard", s(format!("{shard_prefix}-{shard}")));
            if let Some(projection) = projection {
                request = request.projection_expression(projection);
            }
            self.client().query_all(request).await.map_err(unavailable)
        });
        let mut all = Vec::new();
        for items in futures_util::future::join_all(queries).await {
            all.extend(items?);
        }
        Ok(all)
    }

    /// How many items the shards `{shard_prefix}-N` hold, and the smallest range key.
    async fn index_count(&self, shard_prefix: &str) -> Result<(usize, Option<String>), StoreError> {
        let queries = (0..INDEX_SHARDS).map(|shard| async move {
            let shard_query = || {
                self.request()
                    .index_name(PENDING_EVENTS_INDEX)
                    .key_condition_expression("pendingShard = :shard")
                    .value(":shard", s(format!("{shard_prefix}-{shard}")))
            };
            let count = self
                .client()
                .count_all(shard_query())
                .await
                .map_err(unavailable)? as usize;
            let oldest = if count == 0 {
                None
            } else {
                self.client()
                    .send(
                        Operation::Query,
                        shard_query().projection_expression("pendingSince").first(1),
                    )
                    .await
                    .map_err(unavailable)?
                    .items
                    .first()
                    .and_then(|item| item.get("pendingSince"))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
            };
            Ok::<_, StoreError>((count, oldest))
        });
        let mut total = 0;
        let mut oldest: Option<String> = None;
        for result in futures_util::future::join_all(queries).await {
            let (count, shard_oldest) = result?;
            total += count;
            oldest = match (oldest, shard_oldest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok((total, oldest))
    }

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
                    .request()
                    .index_name(index)
                    .name("#shard", shard_attribute)
                    .value(":shard", s(format!("{shard_prefix}-{shard}")))
                    .name("#reference", "reference")
                    .name("#contract", "contractReference")
                    .projection_expression("pk, #reference, #contract");
                if let Some((attribute, before)) = &range {
                    condition.push_str(" AND #range < :before");
                    request = request
                        .name("#range", attribute)
                        .value(":before", s(before.clone()));
                }
                self.client()
                    .query_all(request.key_condition_expression(condition))
                    .await
                    .map_err(unavailable)
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
        self.index_files(PENDING_EVENTS_INDEX, "pendingShard", PENDING_PREFIX, None)
            .await
    }
}

impl DynamoDbStore {
    /// Files with events Intent refused for good (the operator's `failed` listing).
    pub async fn files_with_failed_events(&self) -> Result<Vec<FileId>, StoreError> {
        self.index_files(PENDING_EVENTS_INDEX, "pendingShard", FAILED_PREFIX, None)
            .await
    }
}

impl ListPendingDocuments for DynamoDbStore {
    async fn pending_documents(&self) -> Result<Vec<PendingDocument>, StoreError> {
        self.index_items(PENDING_EVENTS_INDEX, "pendingShard", DOCUMENT_PREFIX, None)
            .await?
            .iter()
            .map(crate::ledger::pending_document)
            .collect()
    }
}

impl ReadBacklog for DynamoDbStore {
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let (pending, failed, documents, rejected, outbox) = futures_util::future::join5(
            self.index_count(PENDING_PREFIX),
            self.index_count(FAILED_PREFIX),
            self.index_count(DOCUMENT_PREFIX),
            self.index_count(REJECTED_PREFIX),
            self.index_count(OUTBOX_PREFIX),
        )
        .await;
        let (unpublished_events, oldest_unpublished) = outbox?;
        let (pending_events, oldest) = pending?;
        let (pending_documents, oldest_document) = documents?;
        // `pendingSince` starts with the sortable UTC time the event was recorded, the
        // document first seen, or the outbox entry written.
        let since = |since: Option<String>| {
            since.and_then(|since| since.get(..20)?.parse::<Timestamp>().ok())
        };
        Ok(Backlog {
            pending_events,
            oldest_pending_since: since(oldest),
            failed_events: failed?.0,
            pending_documents,
            oldest_pending_document_since: since(oldest_document),
            rejected_documents: rejected?.0,
            unpublished_events,
            oldest_unpublished_since: since(oldest_unpublished),
        })
    }
}
