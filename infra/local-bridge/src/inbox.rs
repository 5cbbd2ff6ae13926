//! A watched inbox folder in place of the S3 bucket, with the same key convention:
//! `{inbox}/quitus/{contractReference}/{reference}/{file}.pdf`. A file is forwarded once
//! its size and modification time are stable across two polls (no half-written PDFs);
//! its version is its modification time and size, so a replaced file is a new document.

use oncall_domain::documents::{
    ByteChunks, DocumentBody, ObjectInfo, ObjectRef, ObjectVersion, QUITUS_PREFIX,
};
use oncall_domain::ports::{ReadObject, SourceError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

    fn path(&self, object: &ObjectRef) -> PathBuf {
        self.root.join(&object.key)
    }

    /// Every PDF-looking file under `quitus/`, with its key and version.
    pub fn scan(&self) -> Vec<(ObjectRef, (u64, i128))> {
        let mut found = Vec::new();
        let quitus = self.root.join(QUITUS_PREFIX);
        let mut stack = vec![quitus];
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
                if !key.to_ascii_lowercase().ends_with(".pdf") {
                    continue;
                }
                let modified = metadata
                    .modified()
                    .ok()
                    .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i128);
                let stamp = (metadata.len(), modified);
                found.push((
                    ObjectRef {
                        bucket: INBOX_BUCKET.into(),
                        key,
                        version: ObjectVersion::ETag(format!("{modified}-{}", metadata.len())),
                        size: Some(metadata.len()),
                    },
                    stamp,
                ));
            }
        }
        found
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

/// Remembers what each file looked like at the previous poll.
#[derive(Default)]
pub struct StabilityTracker {
    previous: HashMap<String, (u64, i128)>,
}

impl StabilityTracker {
    /// The objects whose size and time did not change since the last poll.
    pub fn stable(&mut self, scanned: Vec<(ObjectRef, (u64, i128))>) -> Vec<ObjectRef> {
        let mut current = HashMap::new();
        let mut stable = Vec::new();
        for (object, stamp) in scanned {
            if self.previous.get(&object.key) == Some(&stamp) {
                stable.push(object.clone());
            }
            current.insert(object.key, stamp);
        }
        self.previous = current;
        stable
    }
}

impl ReadObject for InboxObjects {
    async fn object_info(&self, object: &ObjectRef) -> Result<ObjectInfo, SourceError> {
        let metadata = tokio::fs::metadata(self.path(object))
            .await
            .map_err(missing_or)?;
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
        let length = file.metadata().await.map_err(missing_or)?.len();
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
