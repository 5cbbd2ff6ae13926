//! Use case: a quitus object landed in the documents bucket; forward it to Intent, once.
//!
//! Order of checks: the key convention (else rejected for good), the ledger (a duplicate
//! S3 delivery does nothing; an object another forwarder holds is retried later), the
//! file (unknown yet: retryable, the PDF may have arrived before the claim), the size and
//! the PDF signature (else rejected for good), then the streamed upload. A retryable
//! failure gives the object back, so Lambda's next delivery takes it from the start.

use crate::documents::{
    DEFAULT_DESCRIPTION, DEFAULT_TITLE, DocumentBody, DocumentPolicy, DocumentRecord,
    DocumentUpload, ObjectRef, PDF_MAGIC, RejectionReason, looks_like_pdf, parse_quitus_key,
};
use crate::domain_events::{DocumentPublished, DocumentRejected, DomainEvent};
use crate::lifecycle::{FileState, Outcome};
use crate::model::FileId;
use crate::ports::{
    Clock, DocumentClaim, DocumentLedger, LoadFile, OpenDocument, PublishDocument,
    PublishDomainEvents, ReadObject, SourceError, StoreError,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    Published(DocumentRecord),
    /// Already published or rejected for this object version: nothing done.
    Duplicate,
    /// Refused for good; recorded and announced.
    Rejected(RejectionReason),
}

/// A failure worth retrying later (Lambda's asynchronous retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RetryLater(pub String);

impl From<StoreError> for RetryLater {
    fn from(error: StoreError) -> Self {
        RetryLater(error.to_string())
    }
}

/// The ports the forwarder needs.
pub struct ForwardPorts<'a, L, F, R, I, E, C> {
    pub ledger: &'a L,
    pub files: &'a F,
    pub objects: &'a R,
    pub intent: &'a I,
    pub events: &'a E,
    pub clock: &'a C,
}

struct ObjectOpener<'a, R> {
    objects: &'a R,
    object: &'a ObjectRef,
}

impl<R: ReadObject> OpenDocument for ObjectOpener<'_, R> {
    async fn open_body(&self) -> Result<DocumentBody, SourceError> {
        self.objects.open(self.object).await
    }
}

pub async fn forward_document<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &ObjectRef,
) -> Result<Forwarded, RetryLater>
where
    L: DocumentLedger,
    F: LoadFile,
    R: ReadObject,
    I: PublishDocument,
    E: PublishDomainEvents,
    C: Clock,
{
    let now = ports.clock.now();
    let lease_until = now.checked_add(policy.lease).unwrap_or(now);
    match ports
        .ledger
        .claim_document(object, now, lease_until)
        .await?
    {
        DocumentClaim::Claimed => {}
        DocumentClaim::AlreadyPublished | DocumentClaim::AlreadyRejected => {
            tracing::info!("object version already handled; duplicate delivery ignored");
            return Ok(Forwarded::Duplicate);
        }
        DocumentClaim::HeldElsewhere => {
            return Err(RetryLater(
                "another forwarder is handling this object right now".into(),
            ));
        }
    }

    let result = forward_claimed(ports, policy, object).await;
    if result.is_err()
        && let Err(error) = ports.ledger.release_document(object).await
    {
        tracing::warn!(%error, "could not release the object; its lease will expire");
    }
    result
}

async fn forward_claimed<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &ObjectRef,
) -> Result<Forwarded, RetryLater>
where
    L: DocumentLedger,
    F: LoadFile,
    R: ReadObject,
    I: PublishDocument,
    E: PublishDomainEvents,
    C: Clock,
{
    let key = match parse_quitus_key(&object.key) {
        Ok(key) => key,
        Err(error) => {
            let detail = error.to_string();
            return reject(
                ports,
                policy,
                object,
                None,
                RejectionReason::KeyConvention,
                &detail,
            )
            .await;
        }
    };
    let (id, file_name) = (&key.file, key.file_name.as_str());
    let span = tracing::Span::current();
    span.record("reference", id.reference.as_str());
    span.record("contract", id.contract_reference.as_str());

    let Some(file) = ports.files.load_file(id).await? else {
        return Err(RetryLater(format!(
            "no file {id} yet: the quitus may have arrived before the claim"
        )));
    };
    if file.state == FileState::Closed(Outcome::Canceled) {
        let detail = "the file was canceled at reception: there is no intervention to prove";
        return reject(
            ports,
            policy,
            object,
            Some(id),
            RejectionReason::FileCanceled,
            detail,
        )
        .await;
    }

    // What S3 says of the object, and its first bytes for the PDF signature (an object
    // shorter than the signature is not read: a ranged read of it would fail).
    let read = async {
        let info = ports.objects.object_info(object).await?;
        let head = if info.size < PDF_MAGIC.len() as u64 {
            Vec::new()
        } else {
            ports
                .objects
                .first_bytes(object, PDF_MAGIC.len() as u64)
                .await?
        };
        Ok::<_, SourceError>((info, head))
    };
    let (info, head) = match read.await {
        Ok(read) => read,
        Err(SourceError::Missing) => {
            let detail = "the object no longer exists";
            return reject(
                ports,
                policy,
                object,
                Some(id),
                RejectionReason::Missing,
                detail,
            )
            .await;
        }
        Err(SourceError::Unavailable(detail)) => return Err(RetryLater(detail)),
    };
    if info.size > policy.max_bytes {
        let detail = format!(
            "{} bytes, over the {} byte limit",
            info.size, policy.max_bytes
        );
        return reject(
            ports,
            policy,
            object,
            Some(id),
            RejectionReason::TooLarge,
            &detail,
        )
        .await;
    }
    if !looks_like_pdf(&head) {
        let detail = "the content does not start with %PDF-";
        return reject(
            ports,
            policy,
            object,
            Some(id),
            RejectionReason::NotPdf,
            detail,
        )
        .await;
    }

    let upload = DocumentUpload {
        file_name: file_name.to_string(),
        title: info
            .title
            .clone()
            .unwrap_or_else(|| DEFAULT_TITLE.to_string()),
        description: info
            .description
            .clone()
            .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string()),
        element_reference: id.reference.clone(),
        contract_reference: id.contract_reference.clone(),
    };
    let opener = ObjectOpener {
        objects: ports.objects,
        object,
    };
    let published = match ports.intent.publish_document(&upload, &opener).await {
        Ok(published) => published,
        Err(failure) if failure.retryable => return Err(RetryLater(failure.to_string())),
        Err(failure) => {
            return reject(
                ports,
                policy,
                object,
                Some(id),
                RejectionReason::IntentRejected,
                &failure.detail,
            )
            .await;
        }
    };
    let record = DocumentRecord {
        object_identity: object.identity(),
        file_name: upload.file_name,
        title: upload.title,
        size: info.size,
        intent_document_id: published.intent_document_id.clone(),
        published_at: ports.clock.now(),
        attempts: published.attempts,
    };
    let expires_at = record
        .published_at
        .checked_add(policy.retention)
        .unwrap_or(record.published_at);
    if let Err(error) = ports
        .ledger
        .record_published(object, &file, &record, expires_at)
        .await
    {
        // Intent has it; the object stays claimed until its lease ends, so a redelivery
        // within the lease cannot send it twice.
        tracing::error!(%error, "document published but not recorded");
    }
    tracing::info!(
        size = record.size,
        attempts = record.attempts,
        "quitus published on Intent"
    );
    let event = DomainEvent::DocumentPublished(DocumentPublished {
        reference: id.reference.clone(),
        contract_reference: id.contract_reference.clone(),
        object_identity: record.object_identity.clone(),
        size: record.size,
        intent_document_id: record.intent_document_id.clone(),
    });
    if let Err(error) = ports.events.publish(&[event]).await {
        tracing::error!(%error, "the DocumentPublished domain event was not published");
    }
    Ok(Forwarded::Published(record))
}

async fn reject<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &ObjectRef,
    id: Option<&FileId>,
    reason: RejectionReason,
    detail: &str,
) -> Result<Forwarded, RetryLater>
where
    L: DocumentLedger,
    E: PublishDomainEvents,
    C: Clock,
{
    tracing::warn!(reason = reason.as_str(), %detail, "document rejected for good");
    let now = ports.clock.now();
    let expires_at = now.checked_add(policy.retention).unwrap_or(now);
    ports
        .ledger
        .record_rejected(object, reason, detail, now, expires_at)
        .await?;
    let event = DomainEvent::DocumentRejected(DocumentRejected {
        reference: id.map(|id| id.reference.clone()),
        contract_reference: id.map(|id| id.contract_reference.clone()),
        bucket: object.bucket.clone(),
        object_identity: object.identity(),
        reason,
        detail: detail.to_string(),
    });
    if let Err(error) = ports.events.publish(&[event]).await {
        tracing::error!(%error, "the DocumentRejected domain event was not published");
    }
    Ok(Forwarded::Rejected(reason))
}
