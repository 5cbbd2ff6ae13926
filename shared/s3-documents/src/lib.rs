//! Adapter: objects of the documents bucket, read from S3 with requests signed by hand
//! ([`aws_signing`]: no S3 SDK client, its endpoint rules and checksum code, in the
//! forwarder and the closer). The body is handed out as a stream of the chunks S3 sends:
//! memory stays flat whatever the document's size. The uploads partners make to the
//! bucket are signed by `aws_wiring::S3UploadSigner`.

use aws_signing::{S3Endpoint, query_value};
use backon::Retryable;
use futures_util::StreamExt;
use oncall_domain::documents::{DocumentBody, ObjectInfo, ObjectRef, ObjectVersion};
use oncall_domain::ports::{ReadObject, SourceError};
use std::time::Duration;

/// How long S3 may take to answer a request's headers (a body then streams at its pace,
/// under the HTTP client's read timeout).
const HEADERS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct S3Documents {
    http: reqwest::Client,
    s3: S3Endpoint,
}

/// One failed request: what the domain is told, and whether trying again may help.
struct ReadFailure {
    error: SourceError,
    transient: bool,
}

impl ReadFailure {
    fn missing() -> Self {
        Self {
            error: SourceError::Missing,
            transient: false,
        }
    }

    fn unavailable(message: String, transient: bool) -> Self {
        Self {
            error: SourceError::Unavailable(message),
            transient,
        }
    }
}

impl S3Documents {
    /// Reads through `s3` (its region, credentials and endpoint) on `http`, whose
    /// connection pool it shares.
    pub fn new(http: reqwest::Client, s3: S3Endpoint) -> Self {
        Self { http, s3 }
    }

    /// One signed bodiless request for `object` (at its version: the version id, or the
    /// ETag as `If-Match`), with `extra` headers; the response once S3 accepted it.
    async fn request_once(
        &self,
        method: reqwest::Method,
        object: &ObjectRef,
        extra: &[(&str, &str)],
    ) -> Result<reqwest::Response, ReadFailure> {
        let mut url = self
            .s3
            .object_url(&object.bucket, &object.key)
            .map_err(|e| ReadFailure::unavailable(e, false))?;
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        match &object.version {
            ObjectVersion::VersionId(id) => {
                url.push_str("?versionId=");
                url.push_str(&query_value(id));
            }
            // Unversioned bucket: make sure we read the very object the event announced.
            ObjectVersion::ETag(etag) => headers.push(("if-match", etag)),
        }
        let signature = self
            .s3
            .sign_bodiless(method.as_str(), &url, &headers)
            .await
            .map_err(|e| ReadFailure::unavailable(e, false))?;
        let mut request = self.http.request(method.clone(), &url);
        for (name, value) in headers.iter().copied() {
            request = request.header(name, value);
        }
        for (name, value) in &signature {
            request = request.header(name, value);
        }
        let response = tokio::time::timeout(HEADERS_TIMEOUT, request.send())
            .await
            .map_err(|_| {
                ReadFailure::unavailable(
                    format!("S3 did not answer a {method} within {HEADERS_TIMEOUT:?}"),
                    true,
                )
            })?
            // Without the URL: its key is a file name.
            .map_err(|e| {
                let transient = !e.is_builder();
                ReadFailure::unavailable(
                    format!("S3 could not be reached: {}", e.without_url()),
                    transient,
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // S3's ids of the request, for a support case.
        let request_ids = format!(
            "request id {}, host id {}",
            header(&response, "x-amz-request-id").unwrap_or("none"),
            header(&response, "x-amz-id-2").unwrap_or("none"),
        );
        // HEAD answers carry no body: the status says it all.
        let body = if method == reqwest::Method::HEAD {
            String::new()
        } else {
            response.text().await.unwrap_or_default()
        };
        let mut failure = s3_error(status, &body);
        if let SourceError::Unavailable(message) = &mut failure.error {
            message.push_str(&format!("; {request_ids}"));
        }
        Err(failure)
    }

    /// [`Self::request_once`], tried again after a transient failure (no answer, a 5xx,
    /// a throttling), as the SDK client did.
    async fn request(
        &self,
        method: reqwest::Method,
        object: &ObjectRef,
        extra: &[(&str, &str)],
    ) -> Result<reqwest::Response, SourceError> {
        (|| self.request_once(method.clone(), object, extra))
            .retry(aws_signing::retry_policy())
            .when(|failure: &ReadFailure| failure.transient)
            .await
            .map_err(|failure| failure.error)
    }
}

/// What an S3 error answer means here: the object (or its version) is gone or was
/// replaced (`NoSuchKey`, `NoSuchVersion`, a failed `If-Match`; a `HEAD`'s 404 or 412,
/// which have no body), or S3 could not serve it (a missing bucket included: the document
/// waits, it is not rejected).
fn s3_error(status: reqwest::StatusCode, body: &str) -> ReadFailure {
    let code = aws_signing::xml_error_code(body);
    let missing = match code.as_deref() {
        Some(code) => matches!(
            code,
            "NoSuchKey" | "NoSuchVersion" | "NotFound" | "PreconditionFailed"
        ),
        None => matches!(status.as_u16(), 404 | 412),
    };
    if missing {
        return ReadFailure::missing();
    }
    let transient = status.is_server_error()
        || status.as_u16() == 429
        || matches!(
            code.as_deref(),
            Some("SlowDown" | "RequestTimeout" | "ThrottlingException")
        );
    ReadFailure::unavailable(
        format!(
            "S3 answered {status}{}",
            code.map(|code| format!(" ({code})")).unwrap_or_default()
        ),
        transient,
    )
}

/// A header's value as text, if it has one.
fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name)?.to_str().ok()
}

/// The object's size: `Content-Length` of a `HEAD` or of a whole `GET`.
fn content_length(response: &reqwest::Response) -> u64 {
    header(response, "content-length")
        .and_then(|length| length.parse().ok())
        .unwrap_or_default()
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
        let head = self.request(reqwest::Method::HEAD, object, &[]).await?;
        // S3 sends non-ASCII metadata RFC 2047-encoded; an emulator may send raw UTF-8.
        let field = |name: &str| {
            head.headers()
                .get(format!("x-amz-meta-{name}"))
                .and_then(|value| std::str::from_utf8(value.as_bytes()).ok())
                .map(decode_metadata)
                .filter(|value| !value.trim().is_empty())
        };
        Ok(ObjectInfo {
            size: content_length(&head),
            title: field("title"),
            description: field("description"),
        })
    }

    async fn first_bytes(&self, object: &ObjectRef, count: u64) -> Result<Vec<u8>, SourceError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let range = format!("bytes=0-{}", count - 1);
        let response = self
            .request(reqwest::Method::GET, object, &[("range", &range)])
            .await?;
        let mut head = Vec::with_capacity(count as usize);
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| SourceError::Unavailable(format!("reading S3: {e}")))?;
            head.extend_from_slice(&chunk);
            if head.len() as u64 >= count {
                break;
            }
        }
        head.truncate(count as usize);
        Ok(head)
    }

    async fn open(&self, object: &ObjectRef) -> Result<DocumentBody, SourceError> {
        let response = self.request(reqwest::Method::GET, object, &[]).await?;
        let length = content_length(&response);
        let chunks = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| std::io::Error::other(format!("reading S3: {e}"))));
        Ok(DocumentBody {
            length,
            chunks: Box::pin(chunks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_or_replaced_object_is_missing_and_a_throttling_is_transient() {
        let missing = |status: u16, body: &str| {
            matches!(
                s3_error(reqwest::StatusCode::from_u16(status).unwrap(), body).error,
                SourceError::Missing
            )
        };
        assert!(missing(404, ""));
        assert!(missing(412, ""));
        assert!(missing(400, "<Error><Code>NoSuchVersion</Code></Error>"));
        assert!(missing(404, "<Error><Code>NoSuchKey</Code></Error>"));
        assert!(!missing(403, "<Error><Code>AccessDenied</Code></Error>"));
        // A missing bucket is a configuration fault: the document waits.
        assert!(!missing(404, "<Error><Code>NoSuchBucket</Code></Error>"));
        assert!(
            !s3_error(
                reqwest::StatusCode::FORBIDDEN,
                "<Error><Code>RequestTimeTooSkewed</Code></Error>"
            )
            .transient
        );
        let slow = s3_error(
            reqwest::StatusCode::SERVICE_UNAVAILABLE,
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        );
        assert!(slow.transient);
        assert!(
            matches!(&slow.error, SourceError::Unavailable(m) if m == "S3 answered 503 Service Unavailable (SlowDown)")
        );
        assert!(!s3_error(reqwest::StatusCode::FORBIDDEN, "").transient);
    }

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
