//! Partners' quitus uploads on the local run, the way S3 presigned `PUT`s work: the
//! partner API hands out `http://{LISTEN_ADDR}/uploads/{key}?size=…&expires=…&signature=…`,
//! signed with a secret drawn at start (so a URL dies with the process, as an S3 URL
//! dies with its credentials), and `PUT /uploads/{key}` checks the signature, the
//! deadline, `Content-Type: application/pdf` and the exact size, then writes the body into
//! the inbox under the granted key (streamed to a temporary name, renamed once complete),
//! where the forwarder takes it with its grant.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use oncall_domain::ports::{PresignUpload, PresignedUpload};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::LocalBridge;
use tokio::io::AsyncWriteExt;

/// Signs and checks local upload URLs.
pub struct LocalUploads {
    base_url: RwLock<String>,
    secret: [u8; 32],
}

impl LocalUploads {
    pub fn new(listen: std::net::SocketAddr) -> Self {
        let mut secret = [0u8; 32];
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            base_url: RwLock::new(format!("http://{listen}")),
            secret,
        }
    }

    /// The address the server really listens on (once bound).
    pub fn set_address(&self, address: std::net::SocketAddr) {
        *self.base_url.write().expect("not poisoned") = format!("http://{address}");
    }

    fn signature(&self, key: &str, size: u64, expires: i64) -> String {
        let mut hash = Sha256::new();
        hash.update(self.secret);
        for part in [key, &size.to_string(), &expires.to_string()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(hash.finalize())
    }

    fn is_valid(&self, key: &str, size: u64, expires: i64, signature: &str) -> bool {
        // Same length, compared without early exit.
        let expected = self.signature(key, size, expires);
        expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl PresignUpload for LocalUploads {
    async fn presign_upload(
        &self,
        key: &str,
        size: u64,
        lifetime: std::time::Duration,
    ) -> Result<PresignedUpload, String> {
        let expires = jiff::Timestamp::now().as_second() + lifetime.as_secs() as i64;
        let encoded: Vec<String> = key.split('/').map(partner_api::percent_encode).collect();
        let url = format!(
            "{}/uploads/{}?size={size}&expires={expires}&signature={}",
            self.base_url.read().expect("not poisoned"),
            encoded.join("/"),
            self.signature(key, size, expires)
        );
        Ok(PresignedUpload {
            method: "PUT".into(),
            url,
            headers: vec![
                ("content-type".into(), "application/pdf".into()),
                ("content-length".into(), size.to_string()),
                // As on S3: the key is written once (a PUT sent again gets 412).
                ("if-none-match".into(), "*".into()),
            ],
        })
    }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    size: u64,
    expires: i64,
    signature: String,
}

fn refused(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "urn:oncall-bridge:problem:upload-refused",
        "title": "Upload refused",
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, partner_api::PROBLEM_JSON)],
        body.to_string(),
    )
        .into_response()
}

/// `PUT /uploads/{key}`: the partner's upload, as S3 would take it.
pub async fn put_upload(
    State(bridge): State<Arc<LocalBridge>>,
    Path(key): Path<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(Query(query)) = query else {
        return refused(StatusCode::FORBIDDEN, "the upload URL is not signed");
    };
    if !bridge
        .api
        .uploads
        .is_valid(&key, query.size, query.expires, &query.signature)
    {
        return refused(
            StatusCode::FORBIDDEN,
            "the upload URL's signature does not match (ask for a new one)",
        );
    }
    if jiff::Timestamp::now().as_second() > query.expires {
        return refused(
            StatusCode::FORBIDDEN,
            "the upload URL has expired (ask for a new one)",
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type != Some("application/pdf") {
        return refused(
            StatusCode::FORBIDDEN,
            "the upload must carry Content-Type: application/pdf, as signed",
        );
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length != Some(query.size) {
        return refused(
            StatusCode::FORBIDDEN,
            "the upload must carry Content-Length equal to the size granted, as signed",
        );
    }
    // The key was signed by this process: one of the grants' keys (safe references, a
    // checked file name). A reference made of dots only would still climb: refused.
    if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "the key has an empty, '.' or '..' segment",
        );
    }
    let path = bridge.config.inbox_dir.join(&key);
    // The key is written once, as the S3 URL's `If-None-Match: *` has it: a PUT sent
    // again (a client's retry, a double click) would be forwarded as a second quitus.
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return refused(
            StatusCode::PRECONDITION_FAILED,
            "this upload URL's key was already written (an upload is taken once)",
        );
    }
    match write_whole(&path, body, query.size).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(WriteError::Size(received)) => refused(
            StatusCode::BAD_REQUEST,
            &format!(
                "{received} bytes received where {} were announced",
                query.size
            ),
        ),
        Err(WriteError::AlreadyWritten) => refused(
            StatusCode::PRECONDITION_FAILED,
            "this upload URL's key was already written (an upload is taken once)",
        ),
        Err(WriteError::Io(error)) => {
            tracing::error!(%error, "upload not written to the inbox");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the upload could not be stored; try again",
            )
        }
    }
}

enum WriteError {
    Size(u64),
    /// Another PUT of the same key was written first.
    AlreadyWritten,
    Io(std::io::Error),
}

/// Streams the body to a temporary file of its own (`{path}.{uuid}.part`: the inbox
/// ignores names not ending in `.pdf`), then, only if exactly `size` bytes came, links it
/// under `path` unless something is there already (two PUTs of one key at once: the first
/// to finish is the upload, as S3's `If-None-Match: *` has it).
async fn write_whole(path: &std::path::Path, body: Body, size: u64) -> Result<(), WriteError> {
    let parent = path
        .parent()
        .ok_or_else(|| WriteError::Io(std::io::Error::other("the key names no folder")))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(WriteError::Io)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.part", uuid::Uuid::new_v4().simple()));
    let temporary = PathBuf::from(temporary);
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .await
        .map_err(WriteError::Io)?;
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    let outcome = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| WriteError::Io(std::io::Error::other(e)))?;
            received += chunk.len() as u64;
            if received > size {
                return Err(WriteError::Size(received));
            }
            file.write_all(&chunk).await.map_err(WriteError::Io)?;
        }
        if received != size {
            return Err(WriteError::Size(received));
        }
        file.flush().await.map_err(WriteError::Io)?;
        file.sync_all().await.map_err(WriteError::Io)
    }
    .await;
    drop(file);
    // A hard link, unlike a rename, never replaces what is there.
    let outcome = match outcome {
        Ok(()) => match tokio::fs::hard_link(&temporary, path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(WriteError::AlreadyWritten)
            }
            Err(error) => Err(WriteError::Io(error)),
        },
        Err(error) => Err(error),
    };
    let _ = tokio::fs::remove_file(&temporary).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two PUTs of the same upload URL at once (a client's retry while its first try is
    /// still streaming): one is written whole, the other refused; never one file made of
    /// both.
    #[tokio::test]
    async fn two_puts_of_one_key_at_once_leave_one_whole_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("quitus/contract1/INTER-0500/k-quitus.pdf");
        let size = 64 * 1024;
        let (slow_sender, slow_chunks) =
            tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
        let slow = Body::from_stream(tokio_stream_of(slow_chunks));
        slow_sender
            .send(Ok(bytes::Bytes::from(vec![b'b'; 1024])))
            .await
            .unwrap();
        let slow_write = tokio::spawn({
            let path = path.clone();
            async move { write_whole(&path, slow, size).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let fast = write_whole(&path, Body::from(vec![b'a'; size as usize]), size).await;
        slow_sender
            .send(Ok(bytes::Bytes::from(vec![b'b'; size as usize - 1024])))
            .await
            .unwrap();
        drop(slow_sender);
        let slow = slow_write.await.unwrap();
        assert_eq!(
            [fast.is_ok(), slow.is_ok()]
                .iter()
                .filter(|ok| **ok)
                .count(),
            1,
            "one of the two is written"
        );
        let written = std::fs::read(&path).unwrap();
        assert!(
            written.iter().all(|b| *b == b'a') || written.iter().all(|b| *b == b'b'),
            "one writer's bytes only"
        );
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }

    fn tokio_stream_of(
        mut receiver: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
    }

    #[tokio::test]
    async fn urls_are_signed_for_one_key_size_and_deadline() {
        let uploads = LocalUploads::new("127.0.0.1:3000".parse().unwrap());
        let signed = uploads
            .presign_upload(
                "quitus/c1/R-1/abc-q é.pdf",
                10,
                std::time::Duration::from_secs(300),
            )
            .await
            .unwrap();
        assert!(
            signed.url.starts_with(
                "http://127.0.0.1:3000/uploads/quitus/c1/R-1/abc-q%20%C3%A9.pdf?size=10&expires="
            ),
            "{}",
            signed.url
        );
        let expires = jiff::Timestamp::now().as_second() + 300;
        let signature = uploads.signature("quitus/c1/R-1/abc-q é.pdf", 10, expires);
        assert!(uploads.is_valid("quitus/c1/R-1/abc-q é.pdf", 10, expires, &signature));
        assert!(!uploads.is_valid("quitus/c1/R-2/abc-q é.pdf", 10, expires, &signature));
        assert!(!uploads.is_valid("quitus/c1/R-1/abc-q é.pdf", 11, expires, &signature));
        assert!(!uploads.is_valid("quitus/c1/R-1/abc-q é.pdf", 10, expires + 1, &signature));
        let other = LocalUploads::new("127.0.0.1:3000".parse().unwrap());
        assert!(!other.is_valid("quitus/c1/R-1/abc-q é.pdf", 10, expires, &signature));
    }
}
