//! A counting HTTP proxy (plain HTTP, loopback) in front of DynamoDB Local and moto: the
//! functions get its address as their AWS endpoint, and every call they make is counted
//! by service and operation before it is passed on unchanged.
//!
//! The service is the one the request is signed for (the SigV4 credential scope); the
//! operation is `X-Amz-Target`'s (DynamoDB, EventBridge, Secrets Manager: JSON
//! protocols), or, for S3 (REST), named from the method and the path's shape.

use crate::error::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Calls counted so far, by `service:Operation`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub calls: BTreeMap<String, u64>,
    /// Calls the emulator answered with an error status (or the proxy could not pass on),
    /// by `service:Operation status`.
    pub errors: BTreeMap<String, u64>,
}

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        let diff = |now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
            now.iter()
                .filter_map(|(name, count)| {
                    let delta = count.saturating_sub(before.get(name).copied().unwrap_or(0));
                    (delta > 0).then(|| (name.clone(), delta))
                })
                .collect()
        };
        CallCounts {
            calls: diff(&self.calls, &earlier.calls),
            errors: diff(&self.errors, &earlier.errors),
        }
    }
}

#[derive(Default)]
pub struct Counter {
    counts: Mutex<CallCounts>,
    /// How long the emulator took to answer each call passed on, by operation, since the
    /// last [`Counter::take_latencies`].
    latencies: Mutex<BTreeMap<String, Vec<Duration>>>,
}

impl Counter {
    pub fn snapshot(&self) -> CallCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The emulators' answer times recorded so far, by operation; the record starts afresh.
    pub fn take_latencies(&self) -> BTreeMap<String, Vec<Duration>> {
        self.latencies
            .lock()
            .map(|mut latencies| std::mem::take(&mut *latencies))
            .unwrap_or_default()
    }

    pub(crate) fn call(&self, operation: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.calls.entry(operation.to_string()).or_default() += 1;
        }
    }

    fn answered(&self, operation: &str, took: Duration) {
        if let Ok(mut latencies) = self.latencies.lock() {
            latencies
                .entry(operation.to_string())
                .or_default()
                .push(took);
        }
    }

    pub(crate) fn error(&self, operation: &str, status: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts
                .errors
                .entry(format!("{operation} {status}"))
                .or_default() += 1;
        }
    }
}

struct Upstream {
    base: String,
    http: reqwest::Client,
    counter: Arc<Counter>,
}

/// One listener in front of one emulator.
pub struct Proxy {
    pub url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port and passes everything on to `upstream`
    /// (`http://127.0.0.1:8000`).
    pub async fn start(upstream: &str, counter: Arc<Counter>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .context("the proxy's HTTP client")?;
        let state = Arc::new(Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            http,
            counter,
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the counting proxy on 127.0.0.1")?;
        let address = listener.local_addr().context("the proxy's address")?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("lambda-bench: the counting proxy stopped: {error}");
            }
        });
        Ok(Self {
            url: format!("http://{address}"),
            server,
        })
    }
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

async fn forward(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let operation = operation_of(&parts.method, &parts.uri, &parts.headers);
    upstream.counter.call(&operation);
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(error) => {
            upstream.counter.error(&operation, "unreadable request");
            return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = upstream
        .http
        .request(parts.method.clone(), format!("{}{path}", upstream.base));
    for (name, value) in &parts.headers {
        // The length is the body's own; Host stays what the client signed.
        if !hop_by_hop(name) && name != header::CONTENT_LENGTH && name != header::EXPECT {
            outgoing = outgoing.header(name, value);
        }
    }
    let sent = Instant::now();
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(error) => {
            upstream.counter.error(&operation, "not passed on");
            return (
                StatusCode::BAD_GATEWAY,
                format!("lambda-bench proxy: {error}"),
            )
                .into_response();
        }
    };
    let status = answer.status();
    if status.as_u16() >= 400 {
        upstream.counter.error(&operation, status.as_str());
    }
    let headers = answer.headers().clone();
    let bytes: Bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            upstream.counter.error(&operation, "answer lost");
            return (
                StatusCode::BAD_GATEWAY,
                format!("lambda-bench proxy: {error}"),
            )
                .into_response();
        }
    };
    upstream.counter.answered(&operation, sent.elapsed());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// `dynamodb:PutItem`, `events:PutEvents`, `s3:GetObject`…
pub fn operation_of(method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> String {
    let service = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(signed_service)
        .unwrap_or("unsigned");
    if let Some(target) = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
    {
        let operation = target.rsplit('.').next().unwrap_or(target);
        return format!("{service}:{operation}");
    }
    if service == "s3" {
        return format!("s3:{}", s3_operation(method, uri));
    }
    format!("{service}:{method} {}", uri.path())
}

/// The service of a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-3/dynamodb/aws4_request, …`.
fn signed_service(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(3)
}

/// S3 (path-style, as the functions address moto): the operation from the method, whether
/// the path names an object, and the query's parameter names.
fn s3_operation(method: &Method, uri: &axum::http::Uri) -> String {
    let path = uri.path().trim_start_matches('/');
    let has_key = path.split_once('/').is_some_and(|(_, key)| !key.is_empty());
    let params: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or(p))
        .collect();
    let has = |name: &str| params.contains(&name);
    let named = match (method.as_str(), has_key) {
        ("HEAD", true) => Some("HeadObject"),
        ("GET", true) if has("tagging") => Some("GetObjectTagging"),
        ("GET", true) if has("attributes") => Some("GetObjectAttributes"),
        ("GET", true) => Some("GetObject"),
        ("PUT", true) if has("partNumber") => Some("UploadPart"),
        ("PUT", true) => Some("PutObject"),
        ("DELETE", true) => Some("DeleteObject"),
        ("GET", false) if has("list-type") => Some("ListObjectsV2"),
        ("GET", false) if has("versions") => Some("ListObjectVersions"),
        ("HEAD", false) => Some("HeadBucket"),
        _ => None,
    };
    match named {
        Some(name) => name.to_string(),
        None => {
            let shape = if has_key {
                "/{bucket}/{key}"
            } else {
                "/{bucket}"
            };
            let mut label = format!("{method} {shape}");
            if !params.is_empty() {
                label.push('?');
                label.push_str(&params.join("&"));
            }
            label
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, uri: &str, headers: &[(&'static str, &str)]) -> String {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        operation_of(&method, &uri.parse().unwrap(), &map)
    }

    const DYNAMODB: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-3/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0";
    const S3: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-3/s3/aws4_request, SignedHeaders=host, Signature=0";

    #[test]
    fn json_protocols_are_named_by_their_target_and_s3_by_method_and_path() {
        assert_eq!(
            op(
                Method::POST,
                "/",
                &[
                    ("authorization", DYNAMODB),
                    ("x-amz-target", "DynamoDB_20120810.TransactWriteItems")
                ]
            ),
            "dynamodb:TransactWriteItems"
        );
        assert_eq!(
            op(
                Method::HEAD,
                "/bucket/quitus/c/r/q.pdf?versionId=3",
                &[("authorization", S3)]
            ),
            "s3:HeadObject"
        );
        assert_eq!(
            op(
                Method::GET,
                "/bucket/quitus/c/r/q.pdf",
                &[("authorization", S3)]
            ),
            "s3:GetObject"
        );
        assert_eq!(
            op(
                Method::GET,
                "/bucket?list-type=2&prefix=a",
                &[("authorization", S3)]
            ),
            "s3:ListObjectsV2"
        );
        assert_eq!(
            op(Method::POST, "/bucket?delete", &[("authorization", S3)]),
            "s3:POST /{bucket}?delete"
        );
    }

    #[test]
    fn counts_since_a_snapshot() {
        let counter = Counter::default();
        counter.call("dynamodb:Query");
        let before = counter.snapshot();
        counter.call("dynamodb:Query");
        counter.call("events:PutEvents");
        let delta = counter.snapshot().since(&before);
        assert_eq!(delta.total(), 2);
        assert_eq!(delta.calls["dynamodb:Query"], 1);
    }

    #[test]
    fn answer_times_are_kept_by_operation_until_taken() {
        let counter = Counter::default();
        counter.answered("dynamodb:Query", Duration::from_millis(3));
        counter.answered("dynamodb:Query", Duration::from_millis(5));
        counter.answered("events:PutEvents", Duration::from_millis(1));
        let taken = counter.take_latencies();
        assert_eq!(
            taken["dynamodb:Query"],
            [Duration::from_millis(3), Duration::from_millis(5)]
        );
        assert_eq!(taken["events:PutEvents"], [Duration::from_millis(1)]);
        assert!(counter.take_latencies().is_empty());
    }
}
