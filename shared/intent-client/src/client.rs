//! The Intent HTTP adapter.

use crate::config::IntentConfig;
use crate::error::IntentError;
use crate::token::TokenCache;
use backon::{ExponentialBuilder, Retryable};
use oncall_domain::InterventionLog;
use oncall_domain::documents::DocumentUpload;
use oncall_domain::ports::{
    DeliveryFailure, HubIntervention, ListOpenOnIntent, OpenDocument, PublishDocument,
    PublishToIntent, PublishedDocument, SourceError,
};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const LOGS_PATH: &str = "/operations/v2/interventions/logs";
const DOCUMENTS_PATH: &str = "/documents/v1/documents";

/// A reqwest client on rustls with the webpki (Mozilla) roots compiled in: no scan of the
/// OS certificate store at start-up, identical behaviour on every Lambda image.
pub fn build_http_client(config: &IntentConfig) -> Result<reqwest::Client, IntentError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| IntentError::Protocol(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("oncall-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| IntentError::Protocol(format!("HTTP client set-up: {e}")))
}

/// Intent's API client. Build it once per execution environment: it owns the connection
/// pool and the token cache.
pub struct IntentClient {
    http: reqwest::Client,
    config: IntentConfig,
    token: TokenCache,
}

/// Intent's API error body.
#[derive(Deserialize)]
struct ApiError {
    code: Option<serde_json::Value>,
    message: Option<String>,
}

impl IntentClient {
    pub fn new(config: IntentConfig) -> Result<Self, IntentError> {
        let http = build_http_client(&config)?;
        Ok(Self::with_http_client(config, http))
    }

    pub fn with_http_client(config: IntentConfig, http: reqwest::Client) -> Self {
        Self {
            http,
            config,
            token: TokenCache::new(),
        }
    }

    pub fn config(&self) -> &IntentConfig {
        &self.config
    }

    /// Runs `attempt` with jittered exponential backoff while it fails transiently (429,
    /// 408, 5xx, connection errors, timeouts), honouring `Retry-After` within the budget.
    /// Returns the result and the number of attempts made.
    async fn with_retries<T, F, Fut>(&self, attempt: F) -> (Result<T, IntentError>, u32)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, IntentError>>,
    {
        let attempts = AtomicU32::new(0);
        let policy = self.config.retry;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
            .with_total_delay(Some(policy.max_total_delay));
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            attempt()
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(IntentError::is_transient)
        .adjust(|error, planned| match (error.retry_after(), planned) {
            // Intent said when: wait that long, unless it is beyond our budget.
            (Some(wait), Some(_)) if wait <= policy.max_total_delay => Some(wait),
            (Some(_), Some(_)) => None,
            (None, planned) => planned,
            (_, None) => None,
        })
        .notify(|error, wait| {
            tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "Intent call failed; retrying");
        })
        .await;
        (result, attempts.load(Ordering::Relaxed))
    }

    async fn bearer(&self) -> Result<crate::token::Token, IntentError> {
        self.token
            .get(
                &self.http,
                &self.config.token_url,
                &self.config.client_id,
                &self.config.client_secret,
            )
            .await
    }

    /// Sends the request `build` makes with a bearer token; on 401, refreshes the token
    /// once and sends a new request.
    async fn send_authorized<F, Fut>(&self, build: F) -> Result<reqwest::Response, IntentError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::RequestBuilder, IntentError>>,
    {
        let mut refreshed = false;
        loop {
            let token = self.bearer().await?;
            let response = build(token.value.clone())
                .await?
                .send()
                .await
                .map_err(transport_error)?;
            if response.status() == StatusCode::UNAUTHORIZED && !refreshed {
                tracing::info!("Intent answered 401; refreshing the token once");
                self.token.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// `POST {base}/operations/v2/interventions/logs`, expecting 204, retried as
    /// `with_retries` says. Returns the number of attempts it took.
    pub async fn post_intervention_log(
        &self,
        log: &InterventionLog,
    ) -> Result<u32, (IntentError, u32)> {
        let body = serde_json::to_vec(log).map_err(|e| {
            (
                IntentError::Protocol(format!("serialising the log: {e}")),
                0,
            )
        })?;
        let url = format!("{}{}", self.config.base_url, LOGS_PATH);
        let (result, attempts) = self
            .with_retries(|| async {
                let response = self
                    .send_authorized(|token| {
                        let request = self
                            .http
                            .post(&url)
                            .bearer_auth(token)
                            .header(CONTENT_TYPE, "application/json; charset=utf-8")
                            .header(ACCEPT, "application/json+hal")
                            .body(body.clone());
                        async move { Ok(request) }
                    })
                    .await?;
                classify(response).await.map(|_| ())
            })
            .await;
        result.map(|()| attempts).map_err(|error| (error, attempts))
    }

    /// `POST {base}/documents/v1/documents` (multipart, expecting 201), the file part
    /// streamed from `body`, re-opened for every attempt. Returns Intent's document id
    /// when its answer names one, and the attempts it took.
    pub async fn post_document<O: OpenDocument>(
        &self,
        upload: &DocumentUpload,
        body: &O,
    ) -> Result<PublishedDocument, (IntentError, u32)> {
        let url = format!("{}{}", self.config.base_url, DOCUMENTS_PATH);
        let (result, attempts) = self
            .with_retries(|| async {
                let response = self
                    .send_authorized(|token| async {
                        let form = document_form(upload, body).await?;
                        Ok(self
                            .http
                            .post(&url)
                            .bearer_auth(token)
                            .header(ACCEPT, "application/json")
                            // No overall timeout for a large upload: progress is what
                            // matters, and the connect timeout still applies.
                            .timeout(Duration::from_secs(14 * 60))
                            .multipart(form))
                    })
                    .await?;
                let answer = classify(response).await?;
                Ok(answer
                    .and_then(|json| json.get("id").cloned())
                    .map(|id| match id {
                        serde_json::Value::String(id) => id,
                        other => other.to_string(),
                    }))
            })
            .await;
        result
            .map(|intent_document_id| PublishedDocument {
                attempts,
                intent_document_id,
            })
            .map_err(|error| (error, attempts))
    }
}

const OPERATIONS_PATH: &str = "/operations/v2/operations";
/// Intent's page size for listings (its maximum).
const PER_PAGE: u32 = 100;
/// A bound on the listing, so a hub that never returns an empty page cannot loop us.
const MAX_PAGES: u32 = 2_000;

impl IntentClient {
    /// `GET {base}/operations/v2/operations?status=open&page=N&perPage=100`, every page
    /// until an empty one (or one shorter than a full page).
    pub async fn list_open_operations(&self) -> Result<Vec<HubIntervention>, (IntentError, u32)> {
        let url = format!("{}{}", self.config.base_url, OPERATIONS_PATH);
        let mut all = Vec::new();
        let mut total_attempts = 0;
        for page in 1..=MAX_PAGES {
            let (result, attempts) = self
                .with_retries(|| async {
                    let response = self
                        .send_authorized(|token| {
                            let request = self
                                .http
                                .get(&url)
                                .bearer_auth(token)
                                .header(ACCEPT, "application/json+hal")
                                .query(&[
                                    ("status", "open".to_string()),
                                    ("page", page.to_string()),
                                    ("perPage", PER_PAGE.to_string()),
                                ]);
                            async move { Ok(request) }
                        })
                        .await?;
                    classify(response).await
                })
                .await;
            total_attempts += attempts;
            let body = result.map_err(|error| (error, total_attempts))?;
            let Some(operations) = body
                .as_ref()
                .and_then(|json| json.pointer("/_embedded/operations"))
                .and_then(|operations| operations.as_array())
            else {
                return Err((
                    IntentError::Protocol(format!(
                        "page {page} of the open operations has no _embedded.operations"
                    )),
                    total_attempts,
                ));
            };
            // The documented end of the listing is an empty page; `total`, when Intent
            // gives it, ends it sooner.
            if operations.is_empty() {
                return Ok(all);
            }
            for operation in operations {
                let text = |name: &str| {
                    operation
                        .get(name)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                all.push(HubIntervention {
                    reference: text("reference"),
                    contract_reference: text("contractReference"),
                    status: text("status"),
                    event: text("event"),
                });
            }
            let total = body
                .as_ref()
                .and_then(|json| json.get("total"))
                .and_then(|total| total.as_u64());
            if total.is_some_and(|total| all.len() as u64 >= total) {
                return Ok(all);
            }
        }
        Err((
            IntentError::Protocol(format!(
                "the open operations did not end within {MAX_PAGES} pages"
            )),
            total_attempts,
        ))
    }
}

impl ListOpenOnIntent for IntentClient {
    async fn list_open_interventions(&self) -> Result<Vec<HubIntervention>, DeliveryFailure> {
        self.list_open_operations()
            .await
            .map_err(|(error, attempts)| DeliveryFailure {
                retryable: error.is_retryable_later(),
                attempts,
                detail: error.to_string(),
            })
    }
}

/// Intent's multipart form for a document, the file part streamed.
async fn document_form<O: OpenDocument>(
    upload: &DocumentUpload,
    body: &O,
) -> Result<Form, IntentError> {
    let document = body
        .open_body()
        .await
        .map_err(|error| IntentError::DocumentUnreadable {
            missing: matches!(error, SourceError::Missing),
            detail: error.to_string(),
        })?;
    let file =
        Part::stream_with_length(reqwest::Body::wrap_stream(document.chunks), document.length)
            .file_name(upload.file_name.clone())
            .mime_str("application/pdf")
            .map_err(|e| IntentError::Protocol(format!("multipart: {e}")))?;
    Ok(Form::new()
        .part("file", file)
        .text("title", upload.title.clone())
        .text("elementType", "intervention")
        .text("elementReference", upload.element_reference.clone())
        .text("description", upload.description.clone())
        .text(
            "intent_contractReference",
            upload.contract_reference.clone(),
        ))
}

/// Maps a response to success (any 2xx, with its JSON body if it has one) or a typed
/// error.
async fn classify(response: reqwest::Response) -> Result<Option<serde_json::Value>, IntentError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response.json().await.ok());
    }
    let code = status.as_u16();
    if status.is_server_error() || code == 429 || code == 408 {
        return Err(IntentError::Unavailable {
            status: code,
            retry_after: retry_after(response.headers()),
        });
    }
    let error: Option<ApiError> = response.json().await.ok();
    let (api_code, message) = error
        .map(|e| {
            (
                e.code.map(|c| match c {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }),
                e.message.map(|m| m.chars().take(300).collect()),
            )
        })
        .unwrap_or_default();
    if code == 401 {
        return Err(IntentError::Authentication(format!(
            "HTTP 401 with a fresh token{}",
            api_code.map(|c| format!(" ({c})")).unwrap_or_default()
        )));
    }
    Err(IntentError::Rejected {
        status: code,
        code: api_code,
        message,
    })
}

pub(crate) fn transport_error(error: reqwest::Error) -> IntentError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL (no body, no credentials): keep the chain short.
    let mut detail = kind.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        source = cause.source();
    }
    IntentError::Transport(detail)
}

/// `Retry-After` as delay-seconds or an HTTP-date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

impl PublishToIntent for IntentClient {
    async fn publish_log(&self, log: &InterventionLog) -> Result<u32, DeliveryFailure> {
        self.post_intervention_log(log)
            .await
            .map_err(|(error, attempts)| DeliveryFailure {
                retryable: error.is_retryable_later(),
                attempts,
                detail: error.to_string(),
            })
    }
}

impl PublishDocument for IntentClient {
    async fn publish_document<O: OpenDocument>(
        &self,
        upload: &DocumentUpload,
        body: &O,
    ) -> Result<PublishedDocument, DeliveryFailure> {
        self.post_document(upload, body)
            .await
            .map_err(|(error, attempts)| DeliveryFailure {
                retryable: error.is_retryable_later(),
                attempts,
                detail: error.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a past date means now"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
