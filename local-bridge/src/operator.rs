//! The operator's reads and writes (`bridge-admin --local`) on the embedded store: the
//! same contract as the DynamoDB adapter's, by iterating (a single box holds a few
//! thousand files). A child module of `store`, declared there, to read the ledger's
//! entries.

use super::{EmbeddedStore, ObjectEntry, ObjectStatus};
use oncall_domain::documents::{ObjectRef, RejectionReason, parse_quitus_key};
use oncall_domain::model::FileId;
use oncall_domain::ports::StoreError;
use oncall_domain::redrive::{LedgerDocument, OperatorStore};

fn refused_by_intent(entry: &ObjectEntry) -> bool {
    entry.status == ObjectStatus::Rejected && entry.reason == Some(RejectionReason::IntentRejected)
}

fn document(entry: ObjectEntry, since: Option<jiff::Timestamp>) -> LedgerDocument {
    let object = entry.object();
    let file = entry
        .file
        .clone()
        .or_else(|| parse_quitus_key(&object.key).ok().map(|key| key.file));
    LedgerDocument {
        object,
        file,
        attempts: entry.attempts,
        since,
        last_attempt_at: entry.last_attempt_at,
        last_error: entry.last_error,
    }
}

impl EmbeddedStore {
    /// How many documents Intent refused for good wait for a redrive (the backlog's).
    pub(super) async fn documents_refused_by_intent(&self) -> Result<usize, StoreError> {
        Ok(self
            .all_objects()
            .await?
            .iter()
            .filter(|entry| refused_by_intent(entry))
            .count())
    }
}

impl OperatorStore for EmbeddedStore {
    async fn files_with_failed_events(&self) -> Result<Vec<FileId>, StoreError> {
        Ok(self
            .all_files()
            .await?
            .into_iter()
            .filter(|file| file.events.iter().any(|event| event.delivery.is_failed()))
            .map(|file| file.id)
            .collect())
    }

    async fn waiting_documents(&self) -> Result<Vec<LedgerDocument>, StoreError> {
        Ok(self
            .all_objects()
            .await?
            .into_iter()
            .filter(|entry| {
                matches!(
                    entry.status,
                    ObjectStatus::Pending | ObjectStatus::InProgress
                ) && !entry.key.is_empty()
            })
            .map(|entry| {
                let since = entry.first_seen_at;
                document(entry, since)
            })
            .collect())
    }

    async fn failed_documents(&self) -> Result<Vec<LedgerDocument>, StoreError> {
        Ok(self
            .all_objects()
            .await?
            .into_iter()
            .filter(|entry| refused_by_intent(entry) && !entry.key.is_empty())
            .map(|entry| {
                let since = entry.at;
                let mut document = document(entry, since);
                document.last_attempt_at = since;
                document
            })
            .collect())
    }

    async fn requeue_document(&self, object: &ObjectRef) -> Result<bool, StoreError> {
        self.update_object(object.identity(), |current| match current {
            Some(mut entry) if refused_by_intent(&entry) => {
                entry.status = ObjectStatus::Pending;
                entry.reason = None;
                entry.lease_until = None;
                entry.in_doubt = false;
                (true, Some(Some(entry)))
            }
            _ => (false, None),
        })
        .await
    }
}
