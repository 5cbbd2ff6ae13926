//! Quitus documents: a signed intervention receipt dropped in the documents bucket is
//! streamed to Intent's documents API, once per object version, and recorded on its file.
//!
//! Two ways in, told apart by the key (S3 event notifications carry keys URL-encoded, `+`
//! for a space, `%C3%A9` for é: they are decoded before anything else):
//! - `quitus/{contractReference}/{reference}/{uuid}-{file name}.pdf`: a partner's upload
//!   through `POST /interventions/{reference}/documents`, which records an
//!   [`UploadGrant`] for exactly that key before handing out the upload URL. An object
//!   there without its grant (anyone else who could write to the bucket) is rejected
//!   (`not_authorized`) and never reaches Intent.
//! - `operator-quitus/{contractReference}/{reference}/{file name}.pdf`: the company's own
//!   operators; only their role may write under that prefix (the bucket policy).

use crate::fingerprint::fingerprint_text;
use crate::model::FileId;
use bytes::Bytes;
use futures_core::Stream;
use jiff::Timestamp;
use serde::Serialize;
use std::fmt;
use std::pin::Pin;

/// The object's version: S3's version id in a versioned bucket, else its ETag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectVersion {
    VersionId(String),
    ETag(String),
}

impl ObjectVersion {
    pub fn as_str(&self) -> &str {
        match self {
            ObjectVersion::VersionId(id) => id,
            ObjectVersion::ETag(etag) => etag,
        }
    }
}

/// One version of one object in the documents bucket. The key is decoded.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub version: ObjectVersion,
    /// The size S3 announced in the event, if any.
    pub size: Option<u64>,
}

impl ObjectRef {
    /// Stable identity for idempotency: bucket + decoded key + version (S3 delivers at
    /// least once; a new version of the same key is a new document).
    pub fn identity(&self) -> String {
        fingerprint_text(&[
            &self.bucket,
            &self.key,
            match self.version {
                ObjectVersion::VersionId(_) => "version",
                ObjectVersion::ETag(_) => "etag",
            },
            self.version.as_str(),
        ])
    }
}

/// The key may hold a tenant's name in the file name: `Debug` shows only the identity.
impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRef")
            .field("bucket", &self.bucket)
            .field("identity", &self.identity())
            .finish_non_exhaustive()
    }
}

/// Decodes a key as S3 event notifications carry it (`application/x-www-form-urlencoded`
/// style: `+` is a space, `%XX` a UTF-8 byte).
pub fn decode_event_key(raw: &str) -> Result<String, KeyError> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| KeyError::NotUtf8)
}

/// Who may have written an object, from its key's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploader {
    /// Under `quitus/`: forwarded only with the upload grant of its key.
    Partner,
    /// Under `operator-quitus/`: the company's operators (the bucket policy lets no one
    /// else write there).
    Operator,
}

/// Where a quitus belongs, from its key.
#[derive(Clone, PartialEq, Eq)]
pub struct QuitusKey {
    pub file: FileId,
    /// The key's last segment (for a partner's upload, `{uuid}-{file name}`).
    pub file_name: String,
    pub uploader: Uploader,
}

impl fmt::Debug for QuitusKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuitusKey")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not valid UTF-8 once decoded")]
    NotUtf8,
    #[error(
        "the key does not follow quitus/{{contractReference}}/{{reference}}/{{file name}}.pdf \
         (partners' uploads) or operator-quitus/{{contractReference}}/{{reference}}/{{file name}}.pdf (operators)"
    )]
    Convention,
}

/// Partners' uploads, each with its grant.
pub const QUITUS_PREFIX: &str = "quitus/";
/// The company's operators' drops.
pub const OPERATOR_PREFIX: &str = "operator-quitus/";

pub fn parse_quitus_key(key: &str) -> Result<QuitusKey, KeyError> {
    let (uploader, rest) = if let Some(rest) = key.strip_prefix(QUITUS_PREFIX) {
        (Uploader::Partner, rest)
    } else if let Some(rest) = key.strip_prefix(OPERATOR_PREFIX) {
        (Uploader::Operator, rest)
    } else {
        return Err(KeyError::Convention);
    };
    let mut parts = rest.splitn(3, '/');
    let (Some(contract), Some(reference), Some(file_name)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyError::Convention);
    };
    let valid_name = file_name.len() > 4
        && !file_name.contains('/')
        && file_name
            .get(file_name.len() - 4..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".pdf"));
    // A reference no file can have (`A%2FB`, spaces, …) can never be forwarded: refused
    // at once rather than waited for.
    if !crate::validation::is_safe_reference(contract)
        || !crate::validation::is_safe_reference(reference)
        || !valid_name
    {
        return Err(KeyError::Convention);
    }
    Ok(QuitusKey {
        file: FileId::new(reference, contract),
        file_name: file_name.to_string(),
        uploader,
    })
}

/// A partner's leave to upload one quitus, under one key, for one of its files: recorded
/// before the upload URL is handed out, checked by the forwarder.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadGrant {
    /// The object key the URL lets the partner write (decoded).
    pub key: String,
    pub file: FileId,
    pub partner: crate::file::PartnerId,
    /// The name the partner gave, sent to Intent as the document's file name.
    pub file_name: String,
    /// The exact size the URL allows.
    pub size: u64,
    pub granted_at: Timestamp,
    /// When the upload URL stops working.
    pub upload_by: Timestamp,
}

/// The file name may hold a tenant's name: `Debug` leaves it out.
impl fmt::Debug for UploadGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadGrant")
            .field("file", &self.file)
            .field("partner", &self.partner)
            .field("size", &self.size)
            .field("upload_by", &self.upload_by)
            .finish_non_exhaustive()
    }
}

/// The key of a partner's upload: a fresh `uuid` before the name, so two uploads never
/// share a key and a key cannot be guessed.
pub fn upload_key(file: &FileId, uuid: &str, file_name: &str) -> String {
    format!(
        "{QUITUS_PREFIX}{}/{}/{uuid}-{file_name}",
        file.contract_reference, file.reference
    )
}

/// What S3 says of the object before we read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// Object metadata `title`, overriding the default title.
    pub title: Option<String>,
    /// Object metadata `description`, overriding the default description.
    pub description: Option<String>,
}

/// Its title and description may name the tenant: `Debug` leaves them out.
impl fmt::Debug for ObjectInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectInfo")
            .field("size", &self.size)
            .field("title", &self.title.as_ref().map(|_| "[redacted]"))
            .field(
                "description",
                &self.description.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

pub const DEFAULT_TITLE: &str = "quitus d'intervention";
pub const DEFAULT_DESCRIPTION: &str = "Quitus";

/// Limits on forwarded documents.
#[derive(Debug, Clone, Copy)]
pub struct DocumentPolicy {
    pub max_bytes: u64,
    /// How long a forwarder holds an object before another may take it over (at least
    /// the function's timeout).
    pub lease: jiff::SignedDuration,
    /// How long the document's record (and the object's ledger entry) is kept: the same
    /// retention as a closed file's data.
    pub retention: jiff::SignedDuration,
    /// How long a quitus waits for a claim that was never filed before it is rejected
    /// (`unknown_file`).
    pub unknown_file_grace: jiff::SignedDuration,
}

impl Default for DocumentPolicy {
    /// 50 MiB (a signed quitus is a few hundred kilobytes; a scan of several pages a few
    /// megabytes), a 15-minute lease (the function's timeout), 395 days' retention, and a
    /// week for a late claim (a partner's back office down over a long weekend).
    fn default() -> Self {
        Self {
            max_bytes: 50 * 1024 * 1024,
            lease: jiff::SignedDuration::from_mins(15),
            retention: jiff::SignedDuration::from_hours(
                24 * crate::lifecycle::CLOSED_FILE_RETENTION_DAYS,
            ),
            unknown_file_grace: jiff::SignedDuration::from_hours(24 * 7),
        }
    }
}

/// A document's bytes, as a stream of chunks: never held whole in memory.
pub type ByteChunks = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

pub struct DocumentBody {
    pub length: u64,
    pub chunks: ByteChunks,
}

/// What is sent to Intent with the file (Intent's form field names in comments).
#[derive(Clone, PartialEq, Eq)]
pub struct DocumentUpload {
    /// `file` part's file name.
    pub file_name: String,
    /// `title`
    pub title: String,
    /// `description`
    pub description: String,
    /// `elementReference` (with `elementType=intervention`)
    pub element_reference: String,
    /// `intent_contractReference`
    pub contract_reference: String,
}

/// The file name, title and description may name the tenant: `Debug` leaves them out.
impl fmt::Debug for DocumentUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentUpload")
            .field("element_reference", &self.element_reference)
            .field("contract_reference", &self.contract_reference)
            .finish_non_exhaustive()
    }
}

/// Of the documents Intent lists that match an upload in doubt (same contract, file name
/// and size; `listed`: their Intent ids, `None` where the listing gives none, in listing
/// order), the position of the one that is this upload, if it is there. The file's
/// documents already recorded under that name and size (`earlier`: their Intent ids,
/// `None` where Intent's answer gave none) are other uploads that Intent lists alike: those
/// found under their id are left out, and every other one (no id, or one the listing does
/// not show: listed without it, or under another) is taken to be among the rest. This
/// upload is there only if more are left (the last listed: which of several identical
/// ones it is changes no later count). An earlier upload no longer on Intent makes this one
/// go again (a copy), never be taken for published while absent (a quitus lost).
pub fn upload_among<S: AsRef<str>>(
    listed: &[Option<S>],
    earlier: &[Option<&str>],
) -> Option<usize> {
    let earlier_ids: Vec<&str> = earlier.iter().flatten().copied().collect();
    let mut found: Vec<&str> = Vec::new();
    let mut others = Vec::new();
    for (at, id) in listed.iter().enumerate() {
        match id.as_ref().map(AsRef::as_ref) {
            Some(id) if earlier_ids.contains(&id) => {
                if !found.contains(&id) {
                    found.push(id);
                }
            }
            _ => others.push(at),
        }
    }
    let unaccounted = earlier.len() - found.len();
    (others.len() > unaccounted).then(|| others[others.len() - 1])
}

/// A document Intent accepted, as recorded on its file.
#[derive(Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentRecord {
    /// Identity of the S3 object version it came from.
    pub object_identity: String,
    pub file_name: String,
    pub title: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent_document_id: Option<String>,
    pub published_at: Timestamp,
    pub attempts: u32,
}

/// The file name and title may name the tenant: `Debug` leaves them out.
impl fmt::Debug for DocumentRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentRecord")
            .field("object_identity", &self.object_identity)
            .field("size", &self.size)
            .field("intent_document_id", &self.intent_document_id)
            .field("published_at", &self.published_at)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Why a document was refused for good (it is not retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    KeyConvention,
    NotPdf,
    TooLarge,
    Missing,
    IntentRejected,
    FileCanceled,
    /// No file with that reference was opened within the grace period.
    UnknownFile,
    /// Not written through a partner's upload grant nor under the operators' prefix.
    NotAuthorized,
}

impl RejectionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::KeyConvention => "key_convention",
            RejectionReason::NotPdf => "not_pdf",
            RejectionReason::TooLarge => "too_large",
            RejectionReason::Missing => "missing",
            RejectionReason::IntentRejected => "intent_rejected",
            RejectionReason::FileCanceled => "file_canceled",
            RejectionReason::UnknownFile => "unknown_file",
            RejectionReason::NotAuthorized => "not_authorized",
        }
    }
}

/// The PDF signature every PDF starts with.
pub const PDF_MAGIC: &[u8] = b"%PDF-";

pub fn looks_like_pdf(head: &[u8]) -> bool {
    head.starts_with(PDF_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Earlier uploads under the same name and size account for listed documents by id,
    /// and those recorded without one by count.
    #[test]
    fn an_upload_in_doubt_is_found_only_beyond_the_earlier_ones() {
        let some = |id: &'static str| Some(id);
        for (listed, earlier, found) in [
            (vec![], vec![], None),
            (vec![some("a")], vec![], Some(0)),
            (vec![some("a")], vec![some("a")], None),
            (vec![some("a"), some("b")], vec![some("a")], Some(1)),
            (vec![some("b"), some("a")], vec![some("a")], Some(0)),
            // An earlier upload Intent gave no id for: one listed document is its.
            (vec![some("a")], vec![None], None),
            (vec![some("a"), some("b")], vec![None], Some(1)),
            (vec![None, None], vec![None], Some(1)),
            (vec![None], vec![None], None),
            (
                vec![some("a"), some("b"), some("c")],
                vec![some("b"), None],
                Some(2),
            ),
            (vec![some("a"), some("b")], vec![some("b"), None], None),
            // An earlier upload the listing does not show by its id may be listed without
            // it, or under another: one listed document is taken for it.
            (vec![None], vec![some("a")], None),
            (vec![some("x")], vec![some("a")], None),
            (vec![None, None], vec![some("a")], Some(1)),
            (vec![some("a"), None], vec![some("a"), some("b")], None),
            // Nor is an earlier upload no longer on Intent: this one goes again (a copy).
            (vec![], vec![some("z")], None),
        ] {
            assert_eq!(
                upload_among(&listed, &earlier),
                found,
                "listed {listed:?}, earlier {earlier:?}"
            );
        }
    }

    #[test]
    fn event_keys_are_decoded() {
        assert_eq!(
            decode_event_key("quitus/contract1/INTER-0500/quitus+sign%C3%A9+1%2B1.pdf").unwrap(),
            "quitus/contract1/INTER-0500/quitus signé 1+1.pdf"
        );
        assert_eq!(decode_event_key("a%FFb"), Err(KeyError::NotUtf8));
    }

    #[test]
    fn the_key_convention() {
        let key = parse_quitus_key("quitus/contract1/INTER-0500/quitus signé.PDF").unwrap();
        assert_eq!(key.file, FileId::new("INTER-0500", "contract1"));
        assert_eq!(key.file_name, "quitus signé.PDF");
        assert_eq!(key.uploader, Uploader::Partner);
        let key = parse_quitus_key("operator-quitus/contract1/INTER-0500/q.pdf").unwrap();
        assert_eq!(key.file, FileId::new("INTER-0500", "contract1"));
        assert_eq!(key.uploader, Uploader::Operator);
        let file = FileId::new("INTER-0500", "contract1");
        let key = upload_key(&file, "0b0e", "q.pdf");
        assert_eq!(key, "quitus/contract1/INTER-0500/0b0e-q.pdf");
        assert_eq!(parse_quitus_key(&key).unwrap().file, file);
        for bad in [
            "other/contract1/INTER-0500/q.pdf",
            "operator-quitus/contract1/q.pdf",
            "Quitus/contract1/INTER-0500/q.pdf",
            "quitus/contract1/q.pdf",
            "quitus//INTER-0500/q.pdf",
            "quitus/contract1/INTER-0500/q.txt",
            "quitus/contract1/INTER-0500/sub/q.pdf",
            "quitus/contract1/INTER-0500/.pdf",
            "quitus/contract1/A%2FB-1/q.pdf",
            "quitus/contract 1/INTER-0500/q.pdf",
        ] {
            assert_eq!(parse_quitus_key(bad), Err(KeyError::Convention), "{bad}");
        }
    }

    #[test]
    fn identity_depends_on_key_and_version() {
        let object = |key: &str, version: &str| ObjectRef {
            bucket: "docs".into(),
            key: key.into(),
            version: ObjectVersion::VersionId(version.into()),
            size: None,
        };
        assert_eq!(object("k", "1").identity(), object("k", "1").identity());
        assert_ne!(object("k", "1").identity(), object("k", "2").identity());
        assert_ne!(object("k", "1").identity(), object("k2", "1").identity());
        assert!(!format!("{:?}", object("quitus/c/r/Dupont.pdf", "1")).contains("Dupont"));
    }

    #[test]
    fn pdf_magic() {
        assert!(looks_like_pdf(b"%PDF-1.7\n"));
        assert!(!looks_like_pdf(b"PK\x03\x04"));
        assert!(!looks_like_pdf(b""));
    }
}
