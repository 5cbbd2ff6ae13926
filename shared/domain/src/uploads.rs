//! Use case: a partner asks to upload a quitus for one of its files. The answer is an
//! upload straight to the documents bucket (a presigned `PUT`), valid a few minutes, for
//! one key (`quitus/{contract}/{reference}/{uuid}-{file name}`), one size and
//! `application/pdf`. The grant is recorded first: a URL never exists without the grant
//! the forwarder checks.

use crate::documents::{UploadGrant, upload_key};
use crate::file::PartnerId;
use crate::lifecycle::{FileState, Outcome};
use crate::model::FileId;
use crate::ports::{
    Clock, GrantRecorded, PresignUpload, PresignedUpload, StoreError, UploadGrants,
};
use crate::validation::{FieldError, InputError};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

/// The longest file name a partner may give (characters).
pub const MAX_FILE_NAME_CHARS: usize = 120;

/// What the partner asks for: `{"fileName": "quitus.pdf", "size": 48213}`.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub file_name: String,
    pub size: u64,
}

impl std::fmt::Debug for UploadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadRequest")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Limits on partners' uploads.
#[derive(Debug, Clone, Copy)]
pub struct UploadPolicy {
    /// The largest document (the forwarder's limit).
    pub max_bytes: u64,
    /// How long the upload URL works.
    pub url_lifetime: SignedDuration,
    /// How long the grant is kept (the documents' retention).
    pub retention: SignedDuration,
}

impl Default for UploadPolicy {
    /// 50 MiB, 5 minutes, 395 days.
    fn default() -> Self {
        let documents = crate::documents::DocumentPolicy::default();
        Self {
            max_bytes: documents.max_bytes,
            url_lifetime: SignedDuration::from_mins(5),
            retention: documents.retention,
        }
    }
}

/// Whether a partner's file name can go into a key and to Intent unchanged: 5 to 120
/// characters ending in `.pdf`, no path separator, no control, format (zero-width, bidi)
/// or other invisible character, not starting with a dot.
pub fn is_acceptable_file_name(name: &str) -> bool {
    let count = name.chars().count();
    (5..=MAX_FILE_NAME_CHARS).contains(&count)
        && name
            .get(name.len().saturating_sub(4)..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".pdf"))
        && !name.starts_with('.')
        && name.trim() == name
        && name
            .chars()
            .all(|c| !c.is_control() && !matches!(c, '/' | '\\') && !is_invisible(c))
}

/// Zero-width, bidi controls and other format characters (Unicode category Cf, the ones
/// that matter in a name), and the replacement character.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFD}')
}

/// Reads the request body's fields (each problem with its JSON path; the name is never
/// echoed back: it may hold a tenant's name).
pub fn validate_upload_request(value: &Value, max_bytes: u64) -> Result<UploadRequest, InputError> {
    let mut errors = Vec::new();
    let problem = |path: &str, message: String| FieldError {
        path: path.to_string(),
        message,
        allowed: None,
    };
    let Some(object) = value.as_object() else {
        return Err(InputError::Invalid(vec![problem(
            "$",
            "must be an object with fileName and size".into(),
        )]));
    };
    let file_name = match object.get("fileName") {
        None | Some(Value::Null) => {
            errors.push(problem("$.fileName", "is required".into()));
            None
        }
        Some(Value::String(name)) if is_acceptable_file_name(name) => Some(name.clone()),
        Some(Value::String(_)) => {
            errors.push(problem(
                "$.fileName",
                format!(
                    "must be 5 to {MAX_FILE_NAME_CHARS} characters ending in .pdf, without '/', '\\\\', \
                     control or invisible characters, not starting with '.' nor with spaces around"
                ),
            ));
            None
        }
        Some(_) => {
            errors.push(problem("$.fileName", "must be a string".into()));
            None
        }
    };
    let size = match object.get("size") {
        None | Some(Value::Null) => {
            errors.push(problem("$.size", "is required".into()));
            None
        }
        Some(Value::Number(number)) => match number.as_u64() {
            Some(size) if (1..=max_bytes).contains(&size) => Some(size),
            _ => {
                errors.push(problem(
                    "$.size",
                    format!("must be a whole number of bytes from 1 to {max_bytes}"),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(problem("$.size", "must be a number (bytes)".into()));
            None
        }
    };
    match (file_name, size) {
        (Some(file_name), Some(size)) if errors.is_empty() => Ok(UploadRequest { file_name, size }),
        _ => Err(InputError::Invalid(errors)),
    }
}

/// The upload the partner makes next.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    pub method: String,
    pub url: String,
    /// Headers to send exactly as given.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The object key (for the partner's records and support).
    pub key: String,
    pub expires_at: Timestamp,
}

/// Its key and URL hold the partner's file name (which may name the tenant), and the URL
/// is a signed permission to write: `Debug` leaves both out.
impl std::fmt::Debug for UploadTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadTicket")
            .field("method", &self.method)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no intervention file {} under contract {}", .0.reference, .0.contract_reference)]
    NotFound(FileId),
    #[error("the file was canceled at reception: there is no intervention to prove")]
    Canceled { current: FileState },
    #[error("the upload could not be signed: {0}")]
    Signing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ports the upload use case needs.
pub struct UploadPorts<'a, G, P, C> {
    pub grants: &'a G,
    pub presigner: &'a P,
    pub clock: &'a C,
}

/// Grants `partner` the upload of one quitus for its file `id`: the file must exist, be
/// the partner's, and not be canceled (a closed file takes its quitus: that is when it is
/// signed). One table operation: the grant's write, which checks the file.
pub async fn grant_upload<G, P, C>(
    ports: &UploadPorts<'_, G, P, C>,
    policy: UploadPolicy,
    partner: &PartnerId,
    id: &FileId,
    request: UploadRequest,
) -> Result<UploadTicket, UploadError>
where
    G: UploadGrants,
    P: PresignUpload,
    C: Clock,
{
    let UploadPorts {
        grants,
        presigner,
        clock,
    } = ports;
    let now = clock.now();
    let lifetime = policy
        .url_lifetime
        .clamp(SignedDuration::from_secs(1), SignedDuration::from_hours(1));
    let grant = UploadGrant {
        key: upload_key(id, &uuid::Uuid::new_v4().to_string(), &request.file_name),
        file: id.clone(),
        partner: partner.clone(),
        file_name: request.file_name,
        size: request.size,
        granted_at: now,
        upload_by: now.checked_add(lifetime).unwrap_or(now),
    };
    match grants
        .record_upload_grant(
            &grant,
            crate::lifecycle::expiry_after(now, policy.retention),
        )
        .await?
    {
        GrantRecorded::Recorded => {}
        GrantRecorded::NoFile => return Err(UploadError::NotFound(id.clone())),
        GrantRecorded::FileCanceled => {
            return Err(UploadError::Canceled {
                current: FileState::Closed(Outcome::Canceled),
            });
        }
    }
    let lifetime = lifetime.unsigned_abs();
    let PresignedUpload {
        method,
        url,
        headers,
    } = presigner
        .presign_upload(&grant.key, grant.size, lifetime)
        .await
        .map_err(UploadError::Signing)?;
    tracing::info!(size = grant.size, "quitus upload granted");
    Ok(UploadTicket {
        method,
        url,
        headers: headers.into_iter().collect(),
        key: grant.key,
        expires_at: grant.upload_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_names() {
        for good in ["quitus.pdf", "quitus signé 1+1.PDF", "Q-2026_11.pdf"] {
            assert!(is_acceptable_file_name(good), "{good}");
        }
        for bad in [
            ".pdf",
            "q.txt",
            ".hidden.pdf",
            "a/b.pdf",
            "a\\b.pdf",
            "a\u{202E}fdp.exe.pdf",
            "zero\u{200B}width.pdf",
            "tab\t.pdf",
            " quitus.pdf",
            &format!("{}.pdf", "a".repeat(MAX_FILE_NAME_CHARS)),
        ] {
            assert!(!is_acceptable_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn requests_name_each_bad_field() {
        let ok = validate_upload_request(&json!({"fileName": "q.pdf", "size": 10}), 100).unwrap();
        assert_eq!(ok.size, 10);
        let Err(InputError::Invalid(errors)) =
            validate_upload_request(&json!({"fileName": "Dupont.txt", "size": 101}), 100)
        else {
            panic!("invalid")
        };
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["$.fileName", "$.size"]);
        assert!(!format!("{errors:?}").contains("Dupont"));
        for body in [json!([]), json!({}), json!({"fileName": 1, "size": "1"})] {
            assert!(validate_upload_request(&body, 100).is_err(), "{body}");
        }
        assert!(validate_upload_request(&json!({"fileName": "q.pdf", "size": 0}), 100).is_err());
        assert!(validate_upload_request(&json!({"fileName": "q.pdf", "size": 1.5}), 100).is_err());
    }

    use crate::in_memory::tests_support::{World, closing_log};
    use crate::ports::UploadGrants;

    /// The grants of `world`, where the file's owner cancels `Q-13` at reception just before
    /// a grant is written (after any read of the file the grant made).
    struct CanceledBeforeTheGrant<'a>(&'a World);

    impl UploadGrants for CanceledBeforeTheGrant<'_> {
        async fn record_upload_grant(
            &self,
            grant: &UploadGrant,
            expires_at: Timestamp,
        ) -> Result<GrantRecorded, StoreError> {
            let owner = PartnerId("partner-a".into());
            crate::closure::close_intervention(
                &self.0.store,
                &self.0.intent,
                &self.0.events,
                &self.0.clock,
                crate::closure::ClosurePolicy::default(),
                crate::closure::ClosedBy::Partner(&owner),
                closing_log("Q-13", Outcome::Canceled),
            )
            .await
            .expect("canceled");
            self.0.store.record_upload_grant(grant, expires_at).await
        }

        async fn upload_grant(&self, key: &str) -> Result<Option<UploadGrant>, StoreError> {
            self.0.store.upload_grant(key).await
        }
    }

    /// A cancellation written between the grant's checks and its write: no upload URL for
    /// the canceled file, and no grant kept for it.
    #[tokio::test]
    async fn a_cancellation_racing_the_grant_refuses_it() {
        let world = World::at("2026-11-28T20:00:00Z".parse().unwrap());
        let id = world.given_open_on_intent("Q-13").await;
        let grants = CanceledBeforeTheGrant(&world);
        let ports = UploadPorts {
            grants: &grants,
            presigner: &crate::in_memory::UnsignedUploads,
            clock: &world.clock,
        };
        let request = UploadRequest {
            file_name: "quitus.pdf".into(),
            size: 10,
        };
        let granted = grant_upload(
            &ports,
            UploadPolicy::default(),
            &PartnerId("partner-a".into()),
            &id,
            request,
        )
        .await;

        assert!(
            matches!(
                granted,
                Err(UploadError::Canceled {
                    current: FileState::Closed(Outcome::Canceled)
                })
            ),
            "{granted:?}"
        );
        assert!(world.store.grant_keys().is_empty(), "no grant kept");
    }
}
