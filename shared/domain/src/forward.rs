//! Use case: a quitus object landed in the documents bucket; forward it to Intent,
//! effectively once, never before its file's opening, and never lost for it.
//!
//! Order: the ledger (a duplicate S3 delivery does nothing), the key convention (else
//! rejected for good), the file (not filed yet: the document waits, and is rejected only
//! after a grace period), the size and the PDF signature (else rejected for good), the
//! file's opening (not on Intent yet: delivered first, in order, under the file's send
//! lease; still not there: the document waits), then the streamed upload.
//!
//! A document that cannot go now is kept *pending* in the ledger (never rejected for a
//! reason that time can fix) and forwarded by the re-send run, streamed from the bucket
//! again: Lambda's own retries are not relied on. After an upload whose outcome is
//! unknown (a lost answer, a forwarder that died holding the object), Intent's documents
//! of the intervention are read before uploading again.

use crate::delivery::{Deadline, deliver_in_order};
use crate::documents::{
    DEFAULT_DESCRIPTION, DEFAULT_TITLE, DocumentBody, DocumentPolicy, DocumentRecord,
    DocumentUpload, ObjectRef, PDF_MAGIC, RejectionReason, Uploader, looks_like_pdf,
    parse_quitus_key,
};
use crate::domain_events::{DocumentPublished, DocumentRejected, DomainEvent};
use crate::file::InterventionFile;
use crate::lifecycle::{FileState, Outcome};
use crate::model::FileId;
use crate::oncall::CloserPolicy;
use crate::outbox::publish_announced;
use crate::ports::{
    ClaimToken, ClaimedObject, Clock, DocumentClaim, DocumentLedger, DocumentWait, FinishDelivery,
    ListPendingDocuments, LoadFile, MarkQuitusReceived, OpenDocument, Outbox, PublishDocument,
    PublishDomainEvents, PublishToIntent, PublishedDocument, QuitusMark, ReadObject, SourceError,
    StoreError, UploadGrants,
};
use futures_util::StreamExt;
use jiff::SignedDuration;
use serde::Serialize;
use tracing::Instrument;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    Published(DocumentRecord),
    /// Already published or rejected for this object version: nothing done.
    Duplicate,
    /// Refused for good; recorded and announced.
    Rejected(RejectionReason),
    /// Kept in the ledger for the re-send run (or held by another forwarder right now).
    Pending(String),
}

/// A failure of our own store: nothing could be recorded; Lambda's retry (or, once the
/// claim's lease ends, the re-send run) takes the object again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RetryLater(pub String);

impl From<StoreError> for RetryLater {
    fn from(error: StoreError) -> Self {
        RetryLater(error.to_string())
    }
}

const CANCELED: &str = "the file was canceled at reception: there is no intervention to prove";

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

/// Past this, a forwarder delivering a file's pending opening starts no further event.
const OPENING_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Time kept in an object's claim after its upload and the read of Intent that may follow
/// it, to record the outcome.
const AFTER_THE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(60);

/// The least time an object's claim leaves its upload, whatever Intent's settings (a
/// 50 MiB scan at 200 kB/s).
const UPLOAD_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// How long an object is claimed: the policy's lease, longer when Intent's longest call
/// (its retries of slow requests, read back after an upload in doubt) would leave the
/// upload less than [`UPLOAD_WINDOW`]. A longer claim only delays the taking over of an
/// object whose forwarder died.
fn claim_lease(policy: &DocumentPolicy, longest_call: std::time::Duration) -> SignedDuration {
    let needed = longest_call + AFTER_THE_UPLOAD + UPLOAD_WINDOW;
    SignedDuration::try_from(needed).map_or(policy.lease, |needed| needed.max(policy.lease))
}

pub async fn forward_document<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &ObjectRef,
) -> Result<Forwarded, RetryLater>
where
    L: DocumentLedger + UploadGrants + Outbox,
    F: LoadFile + FinishDelivery + MarkQuitusReceived,
    R: ReadObject,
    I: PublishDocument + PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    // A clock that may be off takes over only claims run out by its allowance more, and
    // holds its own that much longer (see `Clock::skew_allowance`).
    let now = ports.clock.now();
    let skew = ports.clock.skew_allowance();
    let lease = claim_lease(&policy, ports.intent.longest_call());
    let lease_until = now.checked_add(lease.saturating_add(skew)).unwrap_or(now);
    let ran_out_before = now.checked_sub(skew).unwrap_or(now);
    let claimed = match ports
        .ledger
        .claim_document(object, ran_out_before, lease_until)
        .await?
    {
        DocumentClaim::Claimed(claimed) => claimed,
        DocumentClaim::AlreadyPublished | DocumentClaim::AlreadyRejected => {
            tracing::info!("object version already handled; duplicate delivery ignored");
            return Ok(Forwarded::Duplicate);
        }
        DocumentClaim::HeldElsewhere => {
            tracing::info!(
                "another forwarder holds this object; it (or the re-send run) finishes it"
            );
            return Ok(Forwarded::Pending(
                "another forwarder is handling this object right now".into(),
            ));
        }
    };
    let result = forward_claimed(ports, policy, object, &claimed, lease_until).await;
    if result.is_err()
        && let Err(error) = ports.ledger.release_document(object, &claimed.token).await
    {
        tracing::warn!(%error, "could not release the object; its lease will expire and the re-send run takes it");
    }
    result
}

async fn forward_claimed<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &ObjectRef,
    claimed: &ClaimedObject,
    claimed_until: jiff::Timestamp,
) -> Result<Forwarded, RetryLater>
where
    L: DocumentLedger + UploadGrants + Outbox,
    F: LoadFile + FinishDelivery + MarkQuitusReceived,
    R: ReadObject,
    I: PublishDocument + PublishToIntent,
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
                &claimed.token,
                None,
                RejectionReason::KeyConvention,
                &detail,
            )
            .await;
        }
    };
    let id = &key.file;
    let span = tracing::Span::current();
    span.record("reference", id.reference.as_str());
    span.record("contract", id.contract_reference.as_str());
    // A partner's object comes with its grant (the file, the partner, the size, and the
    // name for Intent), recorded by the upload route; an operator's is named by its key.
    let grant = match key.uploader {
        Uploader::Operator => None,
        Uploader::Partner => match ports.ledger.upload_grant(&object.key).await? {
            Some(grant) if &grant.file == id => Some(grant),
            _ => {
                let detail = "no upload grant for this key: partners upload through \
                              POST /interventions/{reference}/documents";
                return reject(
                    ports,
                    policy,
                    object,
                    &claimed.token,
                    Some(id),
                    RejectionReason::NotAuthorized,
                    detail,
                )
                .await;
            }
        },
    };
    let file_name = grant
        .as_ref()
        .map_or(key.file_name.as_str(), |grant| grant.file_name.as_str());
    let wait = Waiting {
        ports,
        policy,
        object,
        claim: &claimed.token,
        file: Some(id),
        attempts: claimed.attempts,
    };

    let upload_of = |title: &str, description: &str| DocumentUpload {
        file_name: file_name.to_string(),
        title: title.to_string(),
        description: description.to_string(),
        element_reference: id.reference.clone(),
        contract_reference: id.contract_reference.clone(),
    };

    let Some(file) = ports.files.load_file(id).await? else {
        let waited = ports.clock.now().duration_since(claimed.first_seen_at);
        if waited >= policy.unknown_file_grace {
            let detail = format!(
                "no file was opened for it within {} hours",
                policy.unknown_file_grace.as_hours()
            );
            return wait.reject(RejectionReason::UnknownFile, &detail).await;
        }
        return wait
            .keep(
                "no file with that reference yet: the quitus waits for its claim",
                claimed.in_doubt,
                0,
            )
            .await;
    };
    if let Some(grant) = &grant
        && grant.partner != file.owner
    {
        let detail = "the upload grant was given to another partner than the file's owner";
        return wait.reject(RejectionReason::NotAuthorized, detail).await;
    }
    if file.state == FileState::Closed(Outcome::Canceled) {
        return wait.reject(RejectionReason::FileCanceled, CANCELED).await;
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
            // An attempt in doubt may have uploaded it before the version was deleted:
            // Intent is read first when the size is known (S3's notification, the grant).
            let size = object.size.or(grant.as_ref().map(|grant| grant.size));
            if claimed.in_doubt
                && let Some(size) = size
            {
                // Its title and description went with the object: the defaults stand.
                let upload = upload_of(DEFAULT_TITLE, DEFAULT_DESCRIPTION);
                match ports
                    .intent
                    .find_document(&upload, size, &earlier_uploads(&file, &upload, size))
                    .await
                {
                    Ok(Some(found)) => {
                        tracing::info!(
                            "the object is gone, but an earlier upload of it is on Intent"
                        );
                        return published(
                            ports, policy, object, &file, upload, size, found, claimed,
                        )
                        .await;
                    }
                    Ok(None) => {}
                    Err(failure) => return wait.keep(&failure.detail, true, 0).await,
                }
            }
            let detail = "the object no longer exists";
            return wait.reject(RejectionReason::Missing, detail).await;
        }
        // Intent not read yet: a claim in doubt stays in doubt.
        Err(SourceError::Unavailable(detail)) => {
            return wait.keep(&detail, claimed.in_doubt, 0).await;
        }
    };
    if info.size > policy.max_bytes {
        let detail = format!(
            "{} bytes, over the {} byte limit",
            info.size, policy.max_bytes
        );
        return wait.reject(RejectionReason::TooLarge, &detail).await;
    }
    if let Some(grant) = &grant
        && grant.size != info.size
    {
        let detail = format!(
            "{} bytes where the upload grant allows exactly {}",
            info.size, grant.size
        );
        return wait.reject(RejectionReason::NotAuthorized, &detail).await;
    }
    if !looks_like_pdf(&head) {
        let detail = "the content does not start with %PDF-";
        return wait.reject(RejectionReason::NotPdf, detail).await;
    }

    // Never a document for an intervention Intent does not know: its opening first.
    let file = match opening_on_intent(ports, file).await {
        Ok(file) => file,
        Err(why) => return wait.keep(why, claimed.in_doubt, 0).await,
    };
    // Delivering the opening read the file again: a cancellation written since the check
    // above is on it (an older copy still says open, and the mark below refuses it).
    if file.state == FileState::Closed(Outcome::Canceled) {
        return wait.reject(RejectionReason::FileCanceled, CANCELED).await;
    }

    // A quitus proves the intervention: the file is marked before anything is uploaded
    // (once its opening is on Intent: a quitus that waits for it leaves the file as it
    // is), so a cancellation at reception racing this forward either was written first
    // (the mark is refused and the quitus rejected) or is refused itself.
    if file.state == FileState::Open && !file.quitus_received {
        match ports.files.mark_quitus_received(id).await? {
            QuitusMark::Marked => {}
            QuitusMark::FileCanceled => {
                return wait.reject(RejectionReason::FileCanceled, CANCELED).await;
            }
            QuitusMark::NoFile => {
                return wait
                    .keep("the file is no longer stored", claimed.in_doubt, 0)
                    .await;
            }
        }
    }

    let upload = upload_of(
        info.title.as_deref().unwrap_or(DEFAULT_TITLE),
        info.description.as_deref().unwrap_or(DEFAULT_DESCRIPTION),
    );
    if claimed.in_doubt {
        match ports
            .intent
            .find_document(
                &upload,
                info.size,
                &earlier_uploads(&file, &upload, info.size),
            )
            .await
        {
            Ok(Some(found)) => {
                tracing::info!(
                    "the document is already on Intent (an earlier answer was lost); not uploaded again"
                );
                return published(
                    ports, policy, object, &file, upload, info.size, found, claimed,
                )
                .await;
            }
            Ok(None) => {}
            Err(failure) => return wait.keep(&failure.detail, true, 0).await,
        }
    }
    let opener = ObjectOpener {
        objects: ports.objects,
        object,
    };
    // The upload ends while the claim holds, with time left to record it: past the claim,
    // another forwarder may take the object, find nothing on Intent yet and upload it too.
    // After it: reading Intent back (an upload cut off or answered 409), then the record.
    let left = claimed_until.duration_since(
        ports
            .clock
            .now()
            .checked_add(ports.clock.skew_allowance())
            .unwrap_or(jiff::Timestamp::MAX),
    );
    let within = std::time::Duration::try_from(left)
        .unwrap_or_default()
        .saturating_sub(ports.intent.longest_call() + AFTER_THE_UPLOAD);
    if within.is_zero() {
        return wait
            .keep(
                "no time left in the object's claim for the upload",
                false,
                0,
            )
            .await;
    }
    match ports
        .intent
        .publish_document(&upload, &opener, within)
        .await
    {
        // The object version was deleted since it was checked: nothing reached Intent.
        Err(failure) if failure.source_missing => {
            wait.reject(RejectionReason::Missing, &failure.detail).await
        }
        Ok(document) => {
            published(
                ports, policy, object, &file, upload, info.size, document, claimed,
            )
            .await
        }
        Err(failure) if failure.conflict || failure.outcome_unknown => {
            // The file as it is now: a quitus of the same name and size published and
            // recorded by another forwarder during the upload is an earlier upload too,
            // not this one (left out of the copy read before the upload).
            let file = match ports.files.load_file(&file.id).await {
                Ok(Some(now)) => now,
                Ok(None) => file,
                Err(error) => {
                    tracing::warn!(%error, "the file could not be read again after an upload in doubt");
                    return wait.keep(&failure.detail, true, failure.attempts).await;
                }
            };
            match ports
                .intent
                .find_document(
                    &upload,
                    info.size,
                    &earlier_uploads(&file, &upload, info.size),
                )
                .await
            {
                Ok(Some(found)) => {
                    published(
                        ports, policy, object, &file, upload, info.size, found, claimed,
                    )
                    .await
                }
                Ok(None) if failure.conflict => {
                    wait.reject(RejectionReason::IntentRejected, &failure.detail)
                        .await
                }
                _ => wait.keep(&failure.detail, true, failure.attempts).await,
            }
        }
        // Refused for now (Intent read first if the claim was in doubt): not on Intent.
        Err(failure) if failure.retryable => {
            wait.keep(&failure.detail, false, failure.attempts).await
        }
        Err(failure) => {
            wait.reject(RejectionReason::IntentRejected, &failure.detail)
                .await
        }
    }
}

/// The Intent ids (`None` where Intent gave none) of the documents recorded for `file`
/// under `upload`'s file name and size: other uploads than the one in doubt, which Intent
/// lists alike.
fn earlier_uploads<'a>(
    file: &'a InterventionFile,
    upload: &DocumentUpload,
    size: u64,
) -> Vec<Option<&'a str>> {
    file.documents
        .iter()
        .filter(|document| document.file_name == upload.file_name && document.size == size)
        .map(|document| document.intent_document_id.as_deref())
        .collect()
}

/// The file with its opening on Intent, delivering its pending events first (in order,
/// under the file's send lease); the reason to wait otherwise.
async fn opening_on_intent<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    file: InterventionFile,
) -> Result<InterventionFile, &'static str>
where
    F: LoadFile + FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let delivered = |file: &InterventionFile| {
        file.opening()
            .is_some_and(|opening| opening.delivery.is_delivered())
    };
    if delivered(&file) {
        return Ok(file);
    }
    tracing::info!("the file's opening is not on Intent yet; delivering it first");
    let file = deliver_in_order(
        ports.files,
        ports.intent,
        ports.events,
        ports.clock,
        file,
        Deadline::after(OPENING_BUDGET),
    )
    .await;
    if delivered(&file) {
        Ok(file)
    } else if file.opening().is_some_and(|o| o.delivery.is_failed()) {
        Err("the file's opening was refused by Intent: the quitus waits for an operator's redrive")
    } else {
        Err("the file's opening is not on Intent yet: the quitus waits for it")
    }
}

/// What a claimed object's outcome is written with: kept pending in the ledger, or
/// rejected.
struct Waiting<'p, 'a, L, F, R, I, E, C> {
    ports: &'p ForwardPorts<'a, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &'p ObjectRef,
    claim: &'p ClaimToken,
    file: Option<&'p FileId>,
    attempts: u32,
}

impl<L: DocumentLedger + Outbox, F, R, I, E: PublishDomainEvents, C: Clock>
    Waiting<'_, '_, L, F, R, I, E, C>
{
    /// Rejects the object for good ([`reject`], under this claim, for this file).
    async fn reject(&self, reason: RejectionReason, detail: &str) -> Result<Forwarded, RetryLater> {
        reject(
            self.ports,
            self.policy,
            self.object,
            self.claim,
            self.file,
            reason,
            detail,
        )
        .await
    }
}

impl<L: DocumentLedger, F, R, I, E, C: Clock> Waiting<'_, '_, L, F, R, I, E, C> {
    /// Records the wait; `in_doubt` when an upload may be on Intent (a claim in doubt
    /// whose Intent was not read yet, or an upload whose outcome is unknown): the next
    /// attempt reads Intent before uploading.
    async fn keep(
        &self,
        why: &str,
        in_doubt: bool,
        new_attempts: u32,
    ) -> Result<Forwarded, RetryLater> {
        tracing::warn!(reason = %why, in_doubt, "the quitus waits in the ledger; the re-send run forwards it later");
        let wait = DocumentWait {
            file: self.file.cloned(),
            attempts: self.attempts + new_attempts,
            last_error: why.to_string(),
            last_attempt_at: self.ports.clock.now(),
            in_doubt,
        };
        self.ports
            .ledger
            .record_pending(self.object, self.claim, &wait)
            .await?;
        Ok(Forwarded::Pending(why.to_string()))
    }
}

#[allow(clippy::too_many_arguments)]
async fn published<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &ObjectRef,
    file: &InterventionFile,
    upload: DocumentUpload,
    size: u64,
    document: PublishedDocument,
    claimed: &ClaimedObject,
) -> Result<Forwarded, RetryLater>
where
    L: DocumentLedger + Outbox,
    E: PublishDomainEvents,
    C: Clock,
{
    let id = &file.id;
    let record = DocumentRecord {
        object_identity: object.identity(),
        file_name: upload.file_name,
        title: upload.title,
        size,
        intent_document_id: document.intent_document_id.clone(),
        published_at: ports.clock.now(),
        attempts: claimed.attempts + document.attempts,
    };
    // The record expires with its file, not on its own: published after the closing it
    // would outlive the file, before it go first.
    let expires_at =
        crate::lifecycle::document_expiry(file.expires_at, record.published_at, policy.retention);
    let announce = [DomainEvent::DocumentPublished(DocumentPublished {
        reference: id.reference.clone(),
        contract_reference: id.contract_reference.clone(),
        object_identity: record.object_identity.clone(),
        size: record.size,
        intent_document_id: record.intent_document_id.clone(),
    })];
    tracing::info!(
        size = record.size,
        attempts = record.attempts,
        "quitus published on Intent"
    );
    match ports
        .ledger
        .record_published(object, &claimed.token, file, &record, expires_at, &announce)
        .await
    {
        Ok(()) => publish_announced(ports.ledger, ports.events, &announce).await,
        Err(error) => {
            // Intent has it; the object stays claimed until its lease ends, then the
            // re-send run takes it over in doubt and finds it on Intent instead of
            // uploading again (and records it, announcing it then).
            tracing::error!(%error, "document published but not recorded");
        }
    }
    Ok(Forwarded::Published(record))
}

/// What a pass over the waiting documents did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentsReport {
    pub published: usize,
    pub rejected: usize,
    /// Still waiting after this pass (not due yet, or waiting again).
    pub still_pending: usize,
    pub errors: usize,
    pub stopped_early: bool,
}

/// Documents forwarded at once by the re-send run (each is a stream from the bucket).
const DOCUMENT_CONCURRENCY: usize = 4;

/// Forwards the documents waiting in the ledger that are due (the same capped backoff as
/// events), counting into `report` as each is done.
pub async fn forward_pending_documents<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    backoff: &CloserPolicy,
    deadline: Deadline,
    report: &mut DocumentsReport,
) -> Result<(), StoreError>
where
    L: DocumentLedger + UploadGrants + ListPendingDocuments + Outbox,
    F: LoadFile + FinishDelivery + MarkQuitusReceived,
    R: ReadObject,
    I: PublishDocument + PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let waiting = ports.ledger.pending_documents().await?;
    let now = ports.clock.now();
    futures_util::stream::iter(waiting)
        .map(|pending| async move {
            if !backoff.attempt_is_due(pending.attempts, pending.last_attempt_at, now) {
                return Some(Ok(Forwarded::Pending("not due yet".into())));
            }
            if deadline.reached() {
                return None;
            }
            let span = tracing::info_span!(
                "pending_document",
                object = %pending.object.identity(),
                reference = tracing::field::Empty,
                contract = tracing::field::Empty,
            );
            Some(
                forward_document(ports, policy, &pending.object)
                    .instrument(span)
                    .await,
            )
        })
        .buffer_unordered(DOCUMENT_CONCURRENCY)
        .for_each(|outcome| {
            match outcome {
                None => report.stopped_early = true,
                Some(Ok(Forwarded::Published(_))) => report.published += 1,
                Some(Ok(Forwarded::Rejected(_))) => report.rejected += 1,
                Some(Ok(Forwarded::Duplicate)) => {}
                Some(Ok(Forwarded::Pending(_))) => report.still_pending += 1,
                Some(Err(error)) => {
                    tracing::error!(%error, "a waiting document could not be forwarded");
                    report.errors += 1;
                }
            }
            std::future::ready(())
        })
        .await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn reject<L, F, R, I, E, C>(
    ports: &ForwardPorts<'_, L, F, R, I, E, C>,
    policy: DocumentPolicy,
    object: &ObjectRef,
    claim: &ClaimToken,
    id: Option<&FileId>,
    reason: RejectionReason,
    detail: &str,
) -> Result<Forwarded, RetryLater>
where
    L: DocumentLedger + Outbox,
    E: PublishDomainEvents,
    C: Clock,
{
    let now = ports.clock.now();
    let expires_at = crate::lifecycle::expiry_after(now, policy.retention);
    let announce = [DomainEvent::DocumentRejected(DocumentRejected {
        reference: id.map(|id| id.reference.clone()),
        contract_reference: id.map(|id| id.contract_reference.clone()),
        bucket: object.bucket.clone(),
        object_identity: object.identity(),
        reason,
        detail: detail.to_string(),
        rejected_at: now,
    })];
    let recorded = ports
        .ledger
        .record_rejected(object, claim, reason, detail, now, expires_at, &announce)
        .await?;
    if !recorded {
        tracing::warn!(
            "the object's claim was taken over before its rejection was recorded; the claim that took it decides"
        );
        return Ok(Forwarded::Pending(
            "another forwarder took the object over".into(),
        ));
    }
    tracing::warn!(reason = reason.as_str(), %detail, "document rejected for good");
    publish_announced(ports.ledger, ports.events, &announce).await;
    Ok(Forwarded::Rejected(reason))
}

#[cfg(test)]
mod tests {
    //! Forwarding a quitus, given / when / then, on the in-memory adapters.
    use super::*;
    use crate::documents::DEFAULT_DESCRIPTION;
    use crate::in_memory::tests_support::*;
    use crate::in_memory::{
        Accepted, DocumentState, FixedClock, InMemoryObjects, InMemoryStore, ReceivedDocument,
        RecordingEvents, RecordingIntent,
    };
    use crate::model::Event;
    use crate::ports::DeliveryFailure;
    use jiff::Timestamp;

    type Ports<'a> = ForwardPorts<
        'a,
        InMemoryStore,
        InMemoryStore,
        InMemoryObjects,
        RecordingIntent,
        RecordingEvents,
        FixedClock,
    >;

    fn now() -> Timestamp {
        at("2026-11-28T20:00:00Z")
    }

    /// Intent as it is: no document for an intervention it does not know.
    fn world() -> World {
        let world = World::at(now());
        world.intent.refuse_documents_without_opening(true);
        world
    }

    fn ports<'a>(world: &'a World, clock: &'a FixedClock) -> Ports<'a> {
        ForwardPorts {
            ledger: &world.store,
            files: &world.store,
            objects: &world.objects,
            intent: &world.intent,
            events: &world.events,
            clock,
        }
    }

    async fn forward_at(world: &World, clock: &FixedClock, object: &ObjectRef) -> Forwarded {
        forward_document(&ports(world, clock), DocumentPolicy::default(), object)
            .await
            .unwrap()
    }

    async fn forward(world: &World, object: &ObjectRef) -> Forwarded {
        forward_at(world, &world.clock, object).await
    }

    /// The quitus of `reference`, dropped in the bucket: a PDF of 3000 bytes.
    fn dropped(world: &World, reference: &str) -> ObjectRef {
        let object = quitus(reference, "v1");
        world.objects.put(&object, pdf(3000));
        object
    }

    fn upload(reference: &str, title: &str) -> DocumentUpload {
        DocumentUpload {
            file_name: "quitus.pdf".into(),
            title: title.into(),
            description: DEFAULT_DESCRIPTION.into(),
            element_reference: reference.into(),
            contract_reference: "contract1".into(),
        }
    }

    /// The file a quitus belongs to, from its key.
    fn object_file(object: &ObjectRef) -> FileId {
        parse_quitus_key(&object.key).unwrap().file
    }

    /// A forwarder whose claim was taken over (its lease ran out while it worked) then
    /// finds a reason to refuse the object: nothing is recorded and nothing announced; the
    /// claim that took it over decides (it may be publishing it right now).
    #[tokio::test]
    async fn a_rejection_under_a_claim_taken_over_is_neither_recorded_nor_announced() {
        let world = world();
        let object = dropped(&world, "INTER-0510");
        let DocumentClaim::Claimed(stale) = world
            .store
            .claim_document(&object, now(), now() + jiff::SignedDuration::from_secs(1))
            .await
            .unwrap()
        else {
            panic!("a new object is claimed");
        };
        let later = now() + jiff::SignedDuration::from_mins(1);
        let taken = world
            .store
            .claim_document(&object, later, later + jiff::SignedDuration::from_mins(15))
            .await
            .unwrap();
        assert!(matches!(taken, DocumentClaim::Claimed(_)), "{taken:?}");

        let forwarded = reject(
            &ports(&world, &world.clock),
            DocumentPolicy::default(),
            &object,
            &stale.token,
            None,
            RejectionReason::NotPdf,
            "not a PDF",
        )
        .await
        .unwrap();

        assert!(matches!(forwarded, Forwarded::Pending(_)), "{forwarded:?}");
        assert_eq!(
            world.store.document_state(&object),
            Some(DocumentState::InProgress)
        );
        assert!(
            world
                .events
                .published()
                .iter()
                .all(|event| event.detail_type() != "DocumentRejected"),
            "nothing announced"
        );
    }

    /// Refused for good with `reason`: recorded, announced, nothing uploaded.
    async fn assert_rejected(
        world: &World,
        object: &ObjectRef,
        forwarded: Forwarded,
        reason: RejectionReason,
    ) {
        assert_eq!(forwarded, Forwarded::Rejected(reason));
        assert_eq!(
            world.store.document_state(object),
            Some(DocumentState::Rejected(reason))
        );
        assert!(world.intent.documents().is_empty());
        let published = world.events.published();
        let last = published.last().expect("announced");
        assert_eq!(last.detail_type(), "DocumentRejected");
        assert_eq!(last.detail_value()["reason"], reason.as_str());
    }

    /// The upload is given the time the object's claim leaves, less a minute to record it:
    /// it cannot outlast the claim (then another forwarder may upload it too), whatever
    /// runs it (a function has its own timeout, bridge-admin's replay has none).
    #[tokio::test]
    async fn the_upload_ends_within_the_objects_claim() {
        let world = world();
        world.given_open_on_intent("Q-1").await;
        let object = quitus("Q-1", "v1");
        world.objects.put(&object, pdf(3000));
        let forwarded = forward(&world, &object).await;
        assert!(
            matches!(forwarded, Forwarded::Published(_)),
            "{forwarded:?}"
        );
        let claim = std::time::Duration::try_from(DocumentPolicy::default().lease).unwrap();
        assert_eq!(
            world.intent.upload_bounds(),
            [claim - std::time::Duration::from_secs(60)]
        );
    }

    /// Intent settings whose longest call (retries of slow requests) nearly fills the
    /// usual claim still leave the upload its window: the claim is longer, not the upload
    /// refused at every try ("no time left") while the quitus waits unseen.
    #[tokio::test]
    async fn a_slow_intents_longest_call_lengthens_the_claim_rather_than_starving_the_upload() {
        let world = world();
        world.given_open_on_intent("Q-1").await;
        // INTENT_REQUEST_TIMEOUT_MS=60000, INTENT_MAX_ATTEMPTS=7: 848 s.
        let longest = std::time::Duration::from_secs(848);
        world.intent.set_longest_call(longest);
        let object = quitus("Q-1", "v1");
        world.objects.put(&object, pdf(3000));
        let forwarded = forward(&world, &object).await;
        assert!(
            matches!(forwarded, Forwarded::Published(_)),
            "{forwarded:?}"
        );
        assert_eq!(world.intent.upload_bounds(), [UPLOAD_WINDOW]);
    }

    #[tokio::test]
    async fn a_quitus_is_published_once_with_the_upload_fields() {
        let world = world();
        let id = world.given_open_on_intent("Q-1").await;
        let object = quitus("Q-1", "v1");
        world
            .objects
            .put_with_metadata(&object, pdf(3000), Some("Quitus signé"), None);

        let forwarded = forward(&world, &object).await;

        let Forwarded::Published(record) = forwarded else {
            panic!("expected a publication, got {forwarded:?}");
        };
        assert_eq!(
            world.intent.documents(),
            [ReceivedDocument {
                upload: upload("Q-1", "Quitus signé"),
                size: 3000,
                intent_document_id: "doc-1".into(),
            }]
        );
        assert_eq!(
            (record.size, record.intent_document_id.as_deref()),
            (3000, Some("doc-1"))
        );
        assert_eq!(world.store.file(&id).unwrap().documents, [record]);
        assert_eq!(
            world.store.document_state(&object),
            Some(DocumentState::Published)
        );
        assert_eq!(world.published_types(), ["DocumentPublished"]);
        assert!(world.store.outbox_ids().is_empty());
    }

    type UploadPorts<'a> = crate::uploads::UploadPorts<
        'a,
        InMemoryStore,
        crate::in_memory::UnsignedUploads,
        FixedClock,
    >;

    fn upload_ports(world: &World) -> UploadPorts<'_> {
        crate::uploads::UploadPorts {
            grants: &world.store,
            presigner: &crate::in_memory::UnsignedUploads,
            clock: &world.clock,
        }
    }

    /// A partner's upload of `size` bytes for `reference`, granted to `partner` through
    /// the upload use case, then written to the granted key.
    async fn uploaded(world: &World, reference: &str, partner: &str, size: usize) -> ObjectRef {
        let ticket = crate::uploads::grant_upload(
            &upload_ports(world),
            crate::uploads::UploadPolicy::default(),
            &crate::PartnerId(partner.into()),
            &FileId::new(reference, "contract1"),
            crate::uploads::UploadRequest {
                file_name: "quitus DUPONT.pdf".into(),
                size: size as u64,
            },
        )
        .await
        .unwrap();
        let object = ObjectRef {
            bucket: "docs".into(),
            key: ticket.key,
            version: crate::documents::ObjectVersion::VersionId("v1".into()),
            size: None,
        };
        world.objects.put(&object, pdf(size));
        object
    }

    #[tokio::test]
    async fn a_partners_upload_goes_with_its_grant_under_the_name_it_gave() {
        let world = world();
        world.given_open_on_intent("Q-20").await;
        let object = uploaded(&world, "Q-20", "partner-a", 3000).await;
        assert!(
            object.key.starts_with("quitus/contract1/Q-20/")
                && object.key.ends_with("-quitus DUPONT.pdf"),
            "{}",
            object.key
        );

        let forwarded = forward(&world, &object).await;

        assert!(
            matches!(forwarded, Forwarded::Published(_)),
            "{forwarded:?}"
        );
        let documents = world.intent.documents();
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].upload.file_name, "quitus DUPONT.pdf");
    }

    #[tokio::test]
    async fn an_object_dropped_without_a_grant_is_rejected_and_never_reaches_intent() {
        let world = world();
        world.given_open_on_intent("Q-21").await;
        let object = ObjectRef {
            key: "quitus/contract1/Q-21/quitus.pdf".into(),
            ..quitus("Q-21", "v1")
        };
        world.objects.put(&object, pdf(3000));

        let forwarded = forward(&world, &object).await;

        assert_rejected(&world, &object, forwarded, RejectionReason::NotAuthorized).await;
    }

    #[tokio::test]
    async fn a_grant_for_another_file_or_size_does_not_let_an_object_in() {
        let world = world();
        world.given_open_on_intent("Q-22").await;
        world.given_open_on_intent("Q-23").await;
        // The grant of Q-22's key, the object written under Q-23.
        let granted = uploaded(&world, "Q-22", "partner-a", 3000).await;
        let moved = ObjectRef {
            key: granted.key.replace("/Q-22/", "/Q-23/"),
            ..granted.clone()
        };
        world.objects.put(&moved, pdf(3000));
        let forwarded = forward(&world, &moved).await;
        assert_rejected(&world, &moved, forwarded, RejectionReason::NotAuthorized).await;

        // The granted key, but more bytes than granted.
        let bigger = ObjectRef {
            version: crate::documents::ObjectVersion::VersionId("v2".into()),
            ..granted
        };
        world.objects.put(&bigger, pdf(4000));
        let forwarded = forward(&world, &bigger).await;
        assert_rejected(&world, &bigger, forwarded, RejectionReason::NotAuthorized).await;
    }

    #[tokio::test]
    async fn only_the_files_owner_is_granted_an_upload() {
        let world = world();
        world.given_open_on_intent("Q-24").await;
        let grant = |partner: &str, reference: &str| {
            let world = &world;
            let partner = crate::PartnerId(partner.into());
            let id = FileId::new(reference, "contract1");
            async move {
                crate::uploads::grant_upload(
                    &upload_ports(world),
                    crate::uploads::UploadPolicy::default(),
                    &partner,
                    &id,
                    crate::uploads::UploadRequest {
                        file_name: "q.pdf".into(),
                        size: 10,
                    },
                )
                .await
            }
        };
        let ticket = grant("partner-a", "Q-24").await.unwrap();
        assert_eq!(ticket.method, "PUT");
        assert_eq!(ticket.headers["content-type"], "application/pdf");
        assert_eq!(ticket.headers["content-length"], "10");
        assert_eq!(ticket.expires_at, now() + minutes(5));
        let grant_of = world
            .store
            .upload_grant(&ticket.key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(grant_of.partner, crate::PartnerId("partner-a".into()));

        assert!(matches!(
            grant("partner-b", "Q-24").await,
            Err(crate::uploads::UploadError::NotFound(_))
        ));
        assert!(matches!(
            grant("partner-a", "Q-404").await,
            Err(crate::uploads::UploadError::NotFound(_))
        ));
        given_closed(
            &world.store,
            &FileId::new("Q-24", "contract1"),
            Outcome::Canceled,
            now(),
            crate::Delivery::new_pending(),
        )
        .await;
        assert!(matches!(
            grant("partner-a", "Q-24").await,
            Err(crate::uploads::UploadError::Canceled { .. })
        ));
    }

    #[tokio::test]
    async fn a_duplicate_delivery_does_nothing() {
        let world = world();
        world.given_open_on_intent("Q-2").await;
        let object = dropped(&world, "Q-2");
        forward(&world, &object).await;

        let again = forward(&world, &object).await;

        assert_eq!(again, Forwarded::Duplicate);
        assert_eq!(world.intent.documents().len(), 1);
        assert_eq!(world.objects.opened(), 1, "streamed once");
        assert_eq!(world.published_types(), ["DocumentPublished"]);
    }

    /// A file of `reference` claimed an hour ago whose opening is not on Intent yet, and
    /// its quitus dropped in the bucket.
    async fn opening_pending_with_its_quitus(
        world: &World,
        reference: &str,
    ) -> (FileId, ObjectRef) {
        let recorded_at = now() - minutes(60);
        let id = given_open_file(
            &world.store,
            &opening_log(reference),
            recorded_at,
            crate::Delivery::new_pending(),
        )
        .await;
        (id, dropped(world, reference))
    }

    #[tokio::test]
    async fn a_pending_opening_is_delivered_first_then_the_document() {
        let world = world();
        let (id, object) = opening_pending_with_its_quitus(&world, "Q-3").await;

        let forwarded = forward(&world, &object).await;

        assert!(
            matches!(forwarded, Forwarded::Published(_)),
            "{forwarded:?}"
        );
        assert_eq!(
            world.intent.journal(),
            [
                Accepted::Log {
                    file: id.clone(),
                    event: Event::Acknowledged
                },
                Accepted::Document {
                    file: id.clone(),
                    file_name: "quitus.pdf".into()
                },
            ]
        );
        assert!(
            world.store.file(&id).unwrap().events[0]
                .delivery
                .is_delivered()
        );
    }

    /// A quitus waiting for its file's opening to reach Intent has sent nothing: the file
    /// can still be canceled at reception meanwhile (the quitus is then rejected).
    #[tokio::test]
    async fn a_quitus_waiting_for_its_opening_leaves_the_file_cancelable() {
        let world = world();
        let (id, object) = opening_pending_with_its_quitus(&world, "Q-17").await;
        world.intent.fail_next(DeliveryFailure::retryable(
            4,
            "Intent is unavailable: HTTP 503",
        ));

        let forwarded = forward(&world, &object).await;

        assert!(matches!(forwarded, Forwarded::Pending(_)), "{forwarded:?}");
        let file = world.store.file(&id).unwrap();
        assert!(!file.quitus_received);
        assert_eq!(file.activity_since_opening(), None);
    }

    #[tokio::test]
    async fn with_intent_down_it_waits_then_the_resend_pass_publishes_it() {
        let world = world();
        world.given_open_on_intent("Q-4").await;
        let object = dropped(&world, "Q-4");
        world.intent.fail_next_document(DeliveryFailure::retryable(
            4,
            "Intent is unavailable: HTTP 503",
        ));

        let forwarded = forward(&world, &object).await;

        assert!(matches!(forwarded, Forwarded::Pending(_)), "{forwarded:?}");
        assert_eq!(
            world.store.document_state(&object),
            Some(DocumentState::Pending)
        );
        assert!(world.intent.documents().is_empty());

        // The re-send run, five minutes later (past the minute of backoff).
        let later = FixedClock(now() + minutes(5));
        let mut report = DocumentsReport::default();
        forward_pending_documents(
            &ports(&world, &later),
            DocumentPolicy::default(),
            &CloserPolicy::default(),
            Deadline::none(),
            &mut report,
        )
        .await
        .unwrap();

        assert_eq!(
            report,
            DocumentsReport {
                published: 1,
                ..DocumentsReport::default()
            }
        );
        assert_eq!(world.intent.documents().len(), 1);
        assert_eq!(
            world.store.document_state(&object),
            Some(DocumentState::Published)
        );
        assert_eq!(
            world.store.file(&object_file(&object)).unwrap().documents[0].attempts,
            5
        );
    }

    #[tokio::test]
    async fn something_else_than_a_pdf_is_rejected() {
        let world = world();
        world.given_open_on_intent("Q-5").await;
        let object = quitus("Q-5", "v1");
        world
            .objects
            .put(&object, b"PK\x03\x04 a zip archive".to_vec());

        let forwarded = forward(&world, &object).await;

        assert_rejected(&world, &object, forwarded, RejectionReason::NotPdf).await;
    }

    #[tokio::test]
    async fn a_document_over_the_limit_is_rejected() {
        let world = world();
        world.given_open_on_intent("Q-6").await;
        let object = dropped(&world, "Q-6");
        let policy = DocumentPolicy {
            max_bytes: 1000,
            ..DocumentPolicy::default()
        };

        let forwarded = forward_document(&ports(&world, &world.clock), policy, &object)
            .await
            .unwrap();

        assert_rejected(&world, &object, forwarded, RejectionReason::TooLarge).await;
    }

    #[tokio::test]
    async fn a_quitus_for_a_canceled_file_is_rejected() {
        let world = world();
        let id = world.given_open_on_intent("Q-7").await;
        given_closed(
            &world.store,
            &id,
            Outcome::Canceled,
            now() - minutes(30),
            delivered(now()),
        )
        .await;
        let object = dropped(&world, "Q-7");

        let forwarded = forward(&world, &object).await;

        assert_rejected(&world, &object, forwarded, RejectionReason::FileCanceled).await;
    }

    #[tokio::test]
    async fn without_its_file_a_quitus_waits_then_is_rejected_after_the_grace() {
        let world = world();
        let object = dropped(&world, "Q-8");

        let first = forward(&world, &object).await;

        assert!(matches!(first, Forwarded::Pending(_)), "{first:?}");
        assert_eq!(
            world.store.document_state(&object),
            Some(DocumentState::Pending)
        );
        let within = FixedClock(now() + DocumentPolicy::default().unknown_file_grace - minutes(1));
        assert!(matches!(
            forward_at(&world, &within, &object).await,
            Forwarded::Pending(_)
        ));

        let after_grace = FixedClock(now() + DocumentPolicy::default().unknown_file_grace);
        let forwarded = forward_at(&world, &after_grace, &object).await;

        assert_rejected(&world, &object, forwarded, RejectionReason::UnknownFile).await;
    }

    /// An operator's machine whose clock runs ahead of the forwarder holding a quitus's
    /// claim (the claim run out by the operator's clock, not in truth) leaves it to that
    /// forwarder: it would upload the document the forwarder is uploading.
    #[tokio::test]
    async fn an_operator_whose_clock_runs_ahead_does_not_take_a_live_claim_over() {
        let world = world();
        world.given_open_on_intent("Q-30").await;
        let object = dropped(&world, "Q-30");
        claimed_by_a_forwarder_that_died(&world, &object).await;
        let operator = crate::in_memory::FixedOperatorClock(
            now() + DocumentPolicy::default().lease + minutes(5),
        );
        let ports = ForwardPorts {
            ledger: &world.store,
            files: &world.store,
            objects: &world.objects,
            intent: &world.intent,
            events: &world.events,
            clock: &operator,
        };

        let forwarded = forward_document(&ports, DocumentPolicy::default(), &object)
            .await
            .unwrap();

        assert!(matches!(forwarded, Forwarded::Pending(_)), "{forwarded:?}");
        assert!(world.intent.documents().is_empty(), "nothing uploaded");
    }

    /// A forwarder claimed `object` and died holding it (before recording anything).
    async fn claimed_by_a_forwarder_that_died(world: &World, object: &ObjectRef) {
        let lease = DocumentPolicy::default().lease;
        world
            .store
            .claim_document(object, now(), now() + lease)
            .await
            .unwrap();
    }

    /// A forwarder claimed `object` (of `reference`), uploaded it, and died before
    /// recording anything.
    async fn uploaded_by_a_forwarder_that_died(world: &World, object: &ObjectRef, reference: &str) {
        claimed_by_a_forwarder_that_died(world, object).await;
        let opener = ObjectOpener {
            objects: &world.objects,
            object,
        };
        world
            .intent
            .publish_document(
                &upload(reference, DEFAULT_TITLE),
                &opener,
                std::time::Duration::from_secs(60),
            )
            .await
            .unwrap();
    }

    /// Once the dead forwarder's claim ran out: the next one takes the object over, in doubt.
    fn after_its_lease() -> FixedClock {
        FixedClock(now() + DocumentPolicy::default().lease + minutes(1))
    }

    #[tokio::test]
    async fn a_claim_in_doubt_finds_the_document_on_intent_and_does_not_upload_again() {
        let world = world();
        let id = world.given_open_on_intent("Q-9").await;
        let object = dropped(&world, "Q-9");
        uploaded_by_a_forwarder_that_died(&world, &object, "Q-9").await;

        let forwarded = forward_at(&world, &after_its_lease(), &object).await;

        let Forwarded::Published(record) = forwarded else {
            panic!("expected a publication, got {forwarded:?}");
        };
        assert_eq!(record.intent_document_id.as_deref(), Some("doc-1"));
        assert_eq!(world.intent.document_reads(), 1, "Intent was read first");
        assert_eq!(world.intent.documents().len(), 1, "not uploaded again");
        assert_eq!(world.objects.opened(), 1);
        assert_eq!(world.store.file(&id).unwrap().documents, [record]);
    }

    /// A forwarder uploaded the quitus and died before recording it; the object version
    /// was deleted before the next attempt. That attempt, in doubt, reads Intent before
    /// rejecting the object as missing: the upload is found and recorded as published.
    #[tokio::test]
    async fn a_claim_in_doubt_whose_object_is_gone_finds_its_upload_on_intent() {
        let world = world();
        let id = world.given_open_on_intent("Q-14").await;
        let mut object = dropped(&world, "Q-14");
        // As S3's notification names it: with its size.
        object.size = Some(3000);
        uploaded_by_a_forwarder_that_died(&world, &object, "Q-14").await;
        world.objects.remove(&object);

        let forwarded = forward_at(&world, &after_its_lease(), &object).await;

        assert!(
            matches!(forwarded, Forwarded::Published(_)),
            "{forwarded:?}"
        );
        assert_eq!(world.intent.document_reads(), 1, "Intent was read");
        assert_eq!(world.intent.documents().len(), 1, "not uploaded again");
        assert_eq!(
            world.store.document_state(&object),
            Some(DocumentState::Published)
        );
        assert_eq!(world.store.file(&id).unwrap().documents.len(), 1);
    }

    /// The same, but Intent does not have it (the forwarder died before its upload): the
    /// object is rejected as missing.
    #[tokio::test]
    async fn a_claim_in_doubt_whose_object_is_gone_and_not_on_intent_is_rejected_as_missing() {
        let world = world();
        world.given_open_on_intent("Q-15").await;
        let mut object = dropped(&world, "Q-15");
        object.size = Some(3000);
        claimed_by_a_forwarder_that_died(&world, &object).await;
        world.objects.remove(&object);

        let forwarded = forward_at(&world, &after_its_lease(), &object).await;

        assert_eq!(forwarded, Forwarded::Rejected(RejectionReason::Missing));
        assert_eq!(world.intent.document_reads(), 1, "Intent was read");
        assert!(world.intent.documents().is_empty());
    }

    /// The bucket as it is when the object version is deleted between its check and its
    /// upload: its description and first bytes read, its body no longer there.
    struct GoneBeforeUpload<'a>(&'a InMemoryObjects);

    impl ReadObject for GoneBeforeUpload<'_> {
        async fn object_info(
            &self,
            object: &ObjectRef,
        ) -> Result<crate::documents::ObjectInfo, SourceError> {
            self.0.object_info(object).await
        }

        async fn first_bytes(
            &self,
            object: &ObjectRef,
            count: u64,
        ) -> Result<Vec<u8>, SourceError> {
            self.0.first_bytes(object, count).await
        }

        async fn open(
            &self,
            _object: &ObjectRef,
        ) -> Result<crate::documents::DocumentBody, SourceError> {
            Err(SourceError::Missing)
        }
    }

    /// A quitus deleted from the bucket while being forwarded is rejected as missing (the
    /// object's fault), not as refused by Intent: nothing reached Intent, and Intent's
    /// refusals are what operators are alerted on and redrive.
    #[tokio::test]
    async fn a_quitus_gone_before_its_upload_is_rejected_as_missing() {
        let world = world();
        world.given_open_on_intent("Q-12").await;
        let object = dropped(&world, "Q-12");
        let gone = GoneBeforeUpload(&world.objects);
        let ports = ForwardPorts {
            ledger: &world.store,
            files: &world.store,
            objects: &gone,
            intent: &world.intent,
            events: &world.events,
            clock: &world.clock,
        };

        let forwarded = forward_document(&ports, DocumentPolicy::default(), &object)
            .await
            .unwrap();

        assert!(
            matches!(forwarded, Forwarded::Rejected(RejectionReason::Missing)),
            "{forwarded:?}"
        );
        assert!(world.intent.documents().is_empty());
    }

    /// An upload whose answer was lost, and Intent could not be read to settle it: the
    /// quitus waits in doubt. If the bucket cannot be read at the next attempt, it waits
    /// again, still in doubt: the attempt after reads Intent, finds the upload, and does
    /// not upload it a second time.
    #[tokio::test]
    async fn a_quitus_in_doubt_stays_in_doubt_while_the_bucket_cannot_be_read() {
        let world = world();
        world.given_open_on_intent("Q-11").await;
        let object = dropped(&world, "Q-11");
        world.intent.lose_next_document_answer();
        world.intent.fail_document_reads(true);
        let first = forward(&world, &object).await;
        assert!(matches!(first, Forwarded::Pending(_)), "{first:?}");
        world.intent.fail_document_reads(false);

        world.objects.set_unavailable(true);
        let second = forward(&world, &object).await;
        assert!(matches!(second, Forwarded::Pending(_)), "{second:?}");
        world.objects.set_unavailable(false);
        let third = forward(&world, &object).await;

        assert!(matches!(third, Forwarded::Published(_)), "{third:?}");
        assert_eq!(world.intent.documents().len(), 1, "uploaded once");
    }

    /// When a partner's cancellation of the quitus's file lands while the forwarder works.
    #[derive(Clone, Copy, PartialEq)]
    enum CancelLands {
        /// While the object's first bytes are read: after the file's state was checked.
        WhileChecked,
        /// While the object is streamed to Intent.
        WhileUploaded,
    }

    /// The bucket as it is while the file's owner cancels it at reception, at `when`; the
    /// cancellation's result is kept.
    struct CanceledMeanwhile<'a> {
        world: &'a World,
        when: CancelLands,
        canceled: std::sync::Mutex<Option<Result<CloseOutcome, String>>>,
    }

    impl CanceledMeanwhile<'_> {
        async fn cancel(&self, now: CancelLands) {
            if now != self.when || self.canceled.lock().unwrap().is_some() {
                return;
            }
            let reference = "Q-13";
            let owner = crate::file::PartnerId("partner-a".into());
            let result = crate::closure::close_intervention(
                &self.world.store,
                &self.world.intent,
                &self.world.events,
                &self.world.clock,
                crate::closure::ClosurePolicy::default(),
                crate::closure::ClosedBy::Partner(&owner),
                closing_log(reference, Outcome::Canceled),
            )
            .await
            .map(|closed| closed.outcome)
            .map_err(|error| error.to_string());
            *self.canceled.lock().unwrap() = Some(result);
        }
    }

    use crate::closure::CloseOutcome;

    impl ReadObject for CanceledMeanwhile<'_> {
        async fn object_info(
            &self,
            object: &ObjectRef,
        ) -> Result<crate::documents::ObjectInfo, SourceError> {
            self.world.objects.object_info(object).await
        }

        async fn first_bytes(
            &self,
            object: &ObjectRef,
            count: u64,
        ) -> Result<Vec<u8>, SourceError> {
            self.cancel(CancelLands::WhileChecked).await;
            self.world.objects.first_bytes(object, count).await
        }

        async fn open(
            &self,
            object: &ObjectRef,
        ) -> Result<crate::documents::DocumentBody, SourceError> {
            self.cancel(CancelLands::WhileUploaded).await;
            self.world.objects.open(object).await
        }
    }

    /// Forwards the quitus of `Q-13` (open, on Intent) while its owner cancels the file at
    /// `when`: what the forwarder did, and what the cancellation got.
    async fn forward_while_canceled(
        world: &World,
        when: CancelLands,
    ) -> (ObjectRef, Forwarded, Result<CloseOutcome, String>) {
        world.given_open_on_intent("Q-13").await;
        let object = dropped(world, "Q-13");
        forward_object_while_canceled(world, when, object).await
    }

    /// Forwards `object` (a quitus of `Q-13`) while its owner cancels the file at `when`.
    async fn forward_object_while_canceled(
        world: &World,
        when: CancelLands,
        object: ObjectRef,
    ) -> (ObjectRef, Forwarded, Result<CloseOutcome, String>) {
        let bucket = CanceledMeanwhile {
            world,
            when,
            canceled: std::sync::Mutex::new(None),
        };
        let ports = ForwardPorts {
            ledger: &world.store,
            files: &world.store,
            objects: &bucket,
            intent: &world.intent,
            events: &world.events,
            clock: &world.clock,
        };
        let forwarded = forward_document(&ports, DocumentPolicy::default(), &object)
            .await
            .unwrap();
        let canceled = bucket.canceled.lock().unwrap().take().expect("canceled");
        (object, forwarded, canceled)
    }

    /// A cancellation that lands after the forwarder checked the file's state, before the
    /// upload: the file is canceled, and its quitus never reaches Intent.
    #[tokio::test]
    async fn a_quitus_whose_file_is_canceled_while_it_is_checked_never_reaches_intent() {
        let world = world();

        let (object, forwarded, canceled) =
            forward_while_canceled(&world, CancelLands::WhileChecked).await;

        assert_eq!(canceled, Ok(CloseOutcome::Closed));
        assert_rejected(&world, &object, forwarded, RejectionReason::FileCanceled).await;
    }

    /// The same, the file's opening not on Intent yet: the forwarder delivers it first, and
    /// reads the file again under the send lease (the cancellation, sent meanwhile, is on
    /// it). The quitus never reaches Intent.
    #[tokio::test]
    async fn a_quitus_whose_file_is_canceled_while_its_opening_is_pending_never_reaches_intent() {
        let world = world();
        let (_, object) = opening_pending_with_its_quitus(&world, "Q-13").await;

        let (object, forwarded, canceled) =
            forward_object_while_canceled(&world, CancelLands::WhileChecked, object).await;

        assert_eq!(canceled, Ok(CloseOutcome::Closed));
        assert_rejected(&world, &object, forwarded, RejectionReason::FileCanceled).await;
        assert!(world.intent.documents().is_empty());
    }

    /// A cancellation that lands while the quitus is being uploaded is refused: a quitus
    /// proves the intervention took place. The file stays open, its quitus on Intent.
    #[tokio::test]
    async fn a_cancellation_during_the_quitus_upload_is_refused() {
        let world = world();

        let (object, forwarded, canceled) =
            forward_while_canceled(&world, CancelLands::WhileUploaded).await;

        let refusal = canceled.expect_err("the cancellation is refused");
        assert!(refusal.contains("quitus"), "{refusal}");
        assert!(
            matches!(forwarded, Forwarded::Published(_)),
            "{forwarded:?}"
        );
        assert_eq!(world.intent.documents().len(), 1);
        let file = world.store.file(&object_file(&object)).unwrap();
        assert_eq!(file.state, FileState::Open);
    }

    /// A second quitus under the same name and of the same size as one already published
    /// for the file (a corrected scan): its upload's answer is lost. Reading Intent back
    /// finds the first one, which is not this upload: it is not taken for it.
    #[tokio::test]
    async fn a_lost_upload_answer_is_not_settled_by_an_earlier_document_of_the_same_name_and_size()
    {
        let world = world();
        let id = world.given_open_on_intent("Q-16").await;
        let first = dropped(&world, "Q-16");
        assert!(matches!(
            forward(&world, &first).await,
            Forwarded::Published(_)
        ));
        let second = quitus("Q-16", "v2");
        world.objects.put(&second, pdf(3000));
        world.intent.lose_next_document_answer();

        let forwarded = forward(&world, &second).await;

        let Forwarded::Published(record) = forwarded else {
            panic!("expected a publication, got {forwarded:?}");
        };
        assert_eq!(world.intent.documents().len(), 2, "both on Intent");
        assert_eq!(record.intent_document_id.as_deref(), Some("doc-2"));
        let documents = world.store.file(&id).unwrap().documents;
        assert_eq!(documents.len(), 2);
        assert_ne!(
            documents[0].intent_document_id,
            documents[1].intent_document_id
        );
    }

    /// Intent for one forwarder whose upload of `own` is lost on the way while another
    /// forwarder publishes and records `other` (same file, name and size) meanwhile.
    struct LostWhileAnotherIsPublished<'a> {
        world: &'a World,
        other: ObjectRef,
    }

    impl PublishToIntent for LostWhileAnotherIsPublished<'_> {
        async fn publish_log(
            &self,
            log: &crate::model::InterventionLog,
        ) -> Result<u32, DeliveryFailure> {
            self.world.intent.publish_log(log).await
        }
        async fn log_is_on_intent(
            &self,
            log: &crate::model::InterventionLog,
        ) -> Result<bool, DeliveryFailure> {
            self.world.intent.log_is_on_intent(log).await
        }
    }

    impl PublishDocument for LostWhileAnotherIsPublished<'_> {
        async fn publish_document<O: OpenDocument>(
            &self,
            _upload: &DocumentUpload,
            _body: &O,
            _within: std::time::Duration,
        ) -> Result<PublishedDocument, DeliveryFailure> {
            let other = forward(self.world, &self.other).await;
            assert!(matches!(other, Forwarded::Published(_)), "{other:?}");
            let mut lost = DeliveryFailure::retryable(1, "connection reset before Intent read it");
            lost.outcome_unknown = true;
            Err(lost)
        }
        async fn find_document(
            &self,
            upload: &DocumentUpload,
            size: u64,
            earlier: &[Option<&str>],
        ) -> Result<Option<PublishedDocument>, DeliveryFailure> {
            self.world.intent.find_document(upload, size, earlier).await
        }
    }

    /// Two quitus of one file with the same name and size, forwarded at once: the one
    /// whose upload was lost is not taken for the other, published and recorded while it
    /// was being sent (the earlier uploads are read from the file as it is after the
    /// upload, not from the copy read before it).
    #[tokio::test]
    async fn an_upload_lost_while_another_of_the_same_name_and_size_is_published_is_sent_again() {
        let world = world();
        let id = world.given_open_on_intent("Q-20").await;
        let (first, second) = (quitus("Q-20", "v1"), quitus("Q-20", "v2"));
        world.objects.put(&first, pdf(3000));
        world.objects.put(&second, pdf(3000));
        let racing = LostWhileAnotherIsPublished {
            world: &world,
            other: second.clone(),
        };
        let ports = ForwardPorts {
            ledger: &world.store,
            files: &world.store,
            objects: &world.objects,
            intent: &racing,
            events: &world.events,
            clock: &world.clock,
        };

        let forwarded = forward_document(&ports, DocumentPolicy::default(), &first)
            .await
            .unwrap();

        assert!(
            !matches!(&forwarded, Forwarded::Published(record) if record.intent_document_id.as_deref() == Some("doc-1")),
            "the first quitus taken for the second's document: {forwarded:?}"
        );
        let recorded: Vec<_> = world
            .store
            .file(&id)
            .unwrap()
            .documents
            .into_iter()
            .map(|document| document.intent_document_id)
            .collect();
        assert_eq!(
            recorded,
            [Some("doc-1".to_string())],
            "only the second's upload"
        );
        assert_eq!(
            world.store.document_state(&first),
            Some(DocumentState::Pending)
        );
    }

    #[tokio::test]
    async fn a_lost_upload_answer_is_settled_by_reading_intent() {
        let world = world();
        world.given_open_on_intent("Q-10").await;
        let object = dropped(&world, "Q-10");
        world.intent.lose_next_document_answer();

        let forwarded = forward(&world, &object).await;

        assert!(
            matches!(forwarded, Forwarded::Published(_)),
            "{forwarded:?}"
        );
        assert_eq!(world.intent.document_reads(), 1);
        assert_eq!(world.intent.documents().len(), 1, "uploaded once");
        assert_eq!(
            world.store.document_state(&object),
            Some(DocumentState::Published)
        );
    }
}
