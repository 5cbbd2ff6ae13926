//! Adapter: objects of the documents bucket, read from S3 (the body is handed out as a
//! stream of the chunks S3 sends: memory stays flat whatever the document's size), and
//! the uploads partners make to it are signed by `aws_wiring::S3UploadSigner`.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use oncall_domain::documents::{DocumentBody, ObjectInfo, ObjectRef, ObjectVersion};
use oncall_domain::ports::{ReadObject, SourceError};

#[derive(Clone, Debug)]
pub struct S3Documents {
    client: Client,
}

impl S3Documents {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn source_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> SourceError {
    let missing = match &error {
        SdkError::ServiceError(service) => {
            matches!(
                service.err().code(),
                Some("NoSuchKey" | "NoSuchVersion" | "NotFound" | "PreconditionFailed")
            )
        }
        _ => false,
    };
    if missing {
        SourceError::Missing
    } else {
        SourceError::Unavailable(DisplayErrorContext(error).to_string())
    }
}

/// Turns S3's body into the domain's chunk stream (no buffering).
fn chunks(body: ByteStream) -> oncall_domain::documents::ByteChunks {
    Box::pin(futures_util::stream::unfold(body, |mut body| async move {
        match body.next().await {
            Some(Ok(chunk)) => Some((Ok::<Bytes, std::io::Error>(chunk), body)),
            Some(Err(error)) => Some((Err(std::io::Error::other(error.to_string())), body)),
            None => None,
        }
    }))
}

macro_rules! at_version {
    ($request:expr, $object:expr) => {
        match &$object.version {
            ObjectVersion::VersionId(id) => $request.version_id(id),
            // Unversioned bucket: make sure we read the very object the event announced.
            ObjectVersion::ETag(etag) => $request.if_match(etag),
        }
    };
}

/// S3 returns user metadata that is not ASCII encoded as RFC 2047 words
/// (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`): decoded here, so Intent gets text. Decoding is
/// mail-parser's (already linked for vCards), reading the value as a mail header.
pub fn decode_metadata(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_string();
    }
    let line: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let header = format!("Subject: {line}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse(header.as_bytes())
        .and_then(|message| message.subject().map(str::to_string))
        .unwrap_or_else(|| value.to_string())
}

impl ReadObject for S3Documents {
    async fn object_info(&self, object: &ObjectRef) -> Result<ObjectInfo, SourceError> {
        let request = self
            .client
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key);
        let head = at_version!(request, object)
            .send()
            .await
            .map_err(source_error)?;
        let metadata = head.metadata();
        let field = |name: &str| {
            metadata
                .and_then(|m| m.get(name))
                .map(|value| decode_metadata(value))
                .filter(|value| !value.trim().is_empty())
        };
        Ok(ObjectInfo {
            size: head.content_length().unwrap_or_default().max(0) as u64,
            title: field("title"),
            description: field("description"),
        })
    }

    async fn first_bytes(&self, object: &ObjectRef, count: u64) -> Result<Vec<u8>, SourceError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .range(format!("bytes=0-{}", count - 1));
        let response = at_version!(request, object)
            .send()
            .await
            .map_err(source_error)?;
        let mut head = Vec::with_capacity(count as usize);
        let mut body = response.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| SourceError::Unavailable(e.to_string()))?;
            head.extend_from_slice(&chunk);
            if head.len() as u64 >= count {
                break;
            }
        }
        head.truncate(count as usize);
        Ok(head)
    }

    async fn open(&self, object: &ObjectRef) -> Result<DocumentBody, SourceError> {
        let request = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key);
        let response = at_version!(request, object)
            .send()
            .await
            .map_err(source_error)?;
        let length = response.content_length().unwrap_or_default().max(0) as u64;
        Ok(DocumentBody {
            length,
            chunks: chunks(response.body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::decode_metadata;

    #[test]
    fn rfc2047_metadata_is_decoded() {
        assert_eq!(
            decode_metadata("=?UTF-8?B?cXVpdHVzIHNpZ27DqQ==?="),
            "quitus signé"
        );
        assert_eq!(
            decode_metadata("=?UTF-8?Q?Quitus_d'intervention_=C3=A9t=C3=A9?="),
            "Quitus d'intervention été"
        );
        assert_eq!(decode_metadata("Quitus"), "Quitus");
        assert_eq!(decode_metadata("a =? b"), "a =? b");
    }
}
