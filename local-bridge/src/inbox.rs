//! A watched inbox folder in place of the S3 bucket, with the same key convention:
//! `{inbox}/operator-quitus/{contractReference}/{reference}/{file}.pdf` for the operator's
//! own drops, `{inbox}/quitus/…` for partners' uploads (written by `PUT /uploads/{key}`,
//! each with its grant). Its version is its modification time and size, so a replaced
//! file is a new document.
//!
//! A file is forwarded only once it is complete. The convention for writers: write under
//! a temporary name (anything not ending in `.pdf`, such as `quitus.pdf.part`, or a name
//! starting with `.` or `~`: all ignored), then rename. For writers that do not, two checks
//! that a slow writer cannot fool together: the file's size and time have not changed for
//! a quiet period (`INBOX_SETTLE_MS`, 2 s), and a file that starts as a PDF (`%PDF-`) must
//! end with the `%%EOF` marker every complete PDF ends with. A PDF still without it after
//! ten minutes of silence is forwarded anyway (with a warning): it will not get better.

use oncall_domain::documents::{
    ByteChunks, DocumentBody, OPERATOR_PREFIX, ObjectInfo, ObjectRef, ObjectVersion, QUITUS_PREFIX,
};
use oncall_domain::ports::{ReadObject, SourceError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The bucket name objects of the inbox carry.
pub const INBOX_BUCKET: &str = "inbox";

#[derive(Clone)]
pub struct InboxObjects {
    root: PathBuf,
}

fn missing_or(error: std::io::Error) -> SourceError {
    if error.kind() == std::io::ErrorKind::NotFound {
        SourceError::Missing
    } else {
        SourceError::Unavailable(error.to_string())
    }
}

impl InboxObjects {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, object: &ObjectRef) -> PathBuf {
        self.root.join(&object.key)
    }

    /// Erases `object`'s file if it is still that version (a file replaced since is
    /// another document, left alone); one already gone is fine.
    pub async fn remove_version(&self, object: &ObjectRef) -> std::io::Result<()> {
        let path = self.path(object);
        match tokio::fs::metadata(&path).await {
            Ok(metadata) => match same_version(object, metadata) {
                Ok(_) => tokio::fs::remove_file(&path).await,
                Err(_) => Ok(()),
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Every PDF-looking file under `quitus/` and `operator-quitus/`, with its key and
    /// version.
    pub fn scan(&self) -> Vec<(ObjectRef, (u64, i128))> {
        let mut found = Vec::new();
        let mut stack = vec![
            self.root.join(QUITUS_PREFIX),
            self.root.join(OPERATOR_PREFIX),
        ];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                if metadata.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Some(key) = relative_key(&self.root, &path) else {
                    continue;
                };
                if !key.to_ascii_lowercase().ends_with(".pdf") || is_temporary(&path) {
                    continue;
                }
                let stamp = stamp_of(&metadata);
                found.push((
                    ObjectRef {
                        bucket: INBOX_BUCKET.into(),
                        key,
                        version: version_of(stamp),
                        size: Some(metadata.len()),
                    },
                    stamp,
                ));
            }
        }
        found
    }
}

/// A file's size and modification time (nanoseconds since the epoch).
fn stamp_of(metadata: &std::fs::Metadata) -> (u64, i128) {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    (metadata.len(), modified)
}

/// The version a file's stamp stands for: a replaced file is a new version.
fn version_of((size, modified): (u64, i128)) -> ObjectVersion {
    ObjectVersion::ETag(format!("{modified}-{size}"))
}

/// `metadata` when it is the version `object` names; else that version is gone (the file
/// was replaced since: its bytes are another version's), as a deleted S3 object version.
fn same_version(
    object: &ObjectRef,
    metadata: std::fs::Metadata,
) -> Result<std::fs::Metadata, SourceError> {
    if version_of(stamp_of(&metadata)) == object.version {
        Ok(metadata)
    } else {
        Err(SourceError::Missing)
    }
}

fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

/// A name writers use while a file is not finished: hidden or backup names.
fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_none_or(|name| name.starts_with('.') || name.starts_with('~'))
}

/// How long a PDF without its end marker may stay silent before it is forwarded anyway.
const GIVE_UP_WAITING_FOR_EOF: Duration = Duration::from_secs(600);

/// Remembers what each file looked like, and since when.
pub struct StabilityTracker {
    settle: Duration,
    previous: HashMap<String, ((u64, i128), Instant)>,
}

impl Default for StabilityTracker {
    fn default() -> Self {
        Self::new(Duration::from_secs(2))
    }
}

impl StabilityTracker {
    pub fn new(settle: Duration) -> Self {
        Self {
            settle,
            previous: HashMap::new(),
        }
    }

    /// The objects that look complete: unchanged for the quiet period and, for a PDF,
    /// ending with `%%EOF`.
    pub fn stable(
        &mut self,
        root: &Path,
        scanned: Vec<(ObjectRef, (u64, i128))>,
    ) -> Vec<ObjectRef> {
        let now = Instant::now();
        let mut current = HashMap::new();
        let mut stable = Vec::new();
        for (object, stamp) in scanned {
            let since = match self.previous.get(&object.key) {
                Some((seen, since)) if *seen == stamp => *since,
                _ => now,
            };
            let quiet = now.duration_since(since);
            if quiet >= self.settle {
                match pdf_completeness(&root.join(&object.key)) {
                    Completeness::Complete | Completeness::NotPdf => stable.push(object.clone()),
                    Completeness::Unfinished if quiet >= GIVE_UP_WAITING_FOR_EOF => {
                        tracing::warn!(
                            "an inbox PDF has no %%EOF after ten minutes; forwarding it as it is"
                        );
                        stable.push(object.clone());
                    }
                    Completeness::Unfinished => {}
                }
            }
            current.insert(object.key, (stamp, since));
        }
        self.previous = current;
        stable
    }
}

enum Completeness {
    Complete,
    Unfinished,
    NotPdf,
}

/// Whether a file is a PDF and, if so, whether it ends with `%%EOF` (trailing whitespace
/// allowed, as PDF writers leave it).
fn pdf_completeness(path: &Path) -> Completeness {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Completeness::Unfinished;
    };
    let mut head = [0u8; 5];
    if file.read_exact(&mut head).is_err() || &head != b"%PDF-" {
        return Completeness::NotPdf;
    }
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let tail_length = length.min(1024);
    let mut tail = vec![0u8; tail_length as usize];
    if file.seek(SeekFrom::Start(length - tail_length)).is_err()
        || file.read_exact(&mut tail).is_err()
    {
        return Completeness::Unfinished;
    }
    let trimmed = tail
        .iter()
        .rposition(|byte| !byte.is_ascii_whitespace() && *byte != 0)
        .map_or(&tail[..0], |end| &tail[..=end]);
    if trimmed.ends_with(b"%%EOF") {
        Completeness::Complete
    } else {
        Completeness::Unfinished
    }
}

impl ReadObject for InboxObjects {
    async fn object_info(&self, object: &ObjectRef) -> Result<ObjectInfo, SourceError> {
        let metadata = tokio::fs::metadata(self.path(object))
            .await
            .map_err(missing_or)?;
        let metadata = same_version(object, metadata)?;
        Ok(ObjectInfo {
            size: metadata.len(),
            title: None,
            description: None,
        })
    }

    async fn first_bytes(&self, object: &ObjectRef, count: u64) -> Result<Vec<u8>, SourceError> {
        let file = tokio::fs::File::open(self.path(object))
            .await
            .map_err(missing_or)?;
        same_version(object, file.metadata().await.map_err(missing_or)?)?;
        let mut head = Vec::with_capacity(count as usize);
        file.take(count)
            .read_to_end(&mut head)
            .await
            .map_err(missing_or)?;
        Ok(head)
    }

    async fn open(&self, object: &ObjectRef) -> Result<DocumentBody, SourceError> {
        let file = tokio::fs::File::open(self.path(object))
            .await
            .map_err(missing_or)?;
        let length = same_version(object, file.metadata().await.map_err(missing_or)?)?.len();
        // 64 KiB at a time; an I/O error ends the stream after being reported.
        let chunks: ByteChunks = Box::pin(futures_util::stream::unfold(
            Some(file),
            |state| async move {
                let mut file = state?;
                let mut buffer = vec![0u8; 64 * 1024];
                match file.read(&mut buffer).await {
                    Ok(0) => None,
                    Ok(read) => {
                        buffer.truncate(read);
                        Some((Ok(bytes::Bytes::from(buffer)), Some(file)))
                    }
                    Err(error) => Some((Err(error), None)),
                }
            },
        ));
        Ok(DocumentBody { length, chunks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file replaced since it was seen is a new version: the one seen is gone (as an S3
    /// object version deleted), never read with the new one's bytes under its identity.
    #[tokio::test]
    async fn a_replaced_file_is_not_read_as_the_version_seen_before() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("operator-quitus/contract1/INTER-0600");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("quitus.pdf");
        std::fs::write(&path, b"%PDF-1.7 first\n%%EOF\n").unwrap();
        let inbox = InboxObjects::new(root.path().to_path_buf());
        let (first, _) = inbox.scan().pop().unwrap();
        assert!(inbox.object_info(&first).await.is_ok());

        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, b"%PDF-1.7 the right one, longer\n%%EOF\n").unwrap();
        assert!(matches!(
            inbox.object_info(&first).await,
            Err(SourceError::Missing)
        ));
        assert!(matches!(
            inbox.first_bytes(&first, 5).await,
            Err(SourceError::Missing)
        ));
        assert!(matches!(
            inbox.open(&first).await,
            Err(SourceError::Missing)
        ));
        let (second, _) = inbox.scan().pop().unwrap();
        assert_ne!(second.version, first.version);
        assert_eq!(inbox.object_info(&second).await.unwrap().size, 37);
        // Erasing the version seen before leaves the file that replaced it.
        inbox.remove_version(&first).await.unwrap();
        assert!(path.exists());
        inbox.remove_version(&second).await.unwrap();
        assert!(!path.exists());
        inbox.remove_version(&second).await.unwrap();
    }
}
