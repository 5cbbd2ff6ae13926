//! The Intent HTTP adapter.

use crate::config::IntentConfig;
use crate::error::{IntentError, retry_after, transport_error};
use crate::token::TokenCache;
use backon::{ExponentialBuilder, Retryable};
use oncall_domain::InterventionLog;
use oncall_domain::delivery::Deadline;
use oncall_domain::documents::DocumentUpload;
use oncall_domain::ports::{
    DeliveryFailure, HubIntervention, ListOpenOnIntent, OpenDocument, OpenListing, PublishDocument,
    PublishToIntent, PublishedDocument, SourceError,
};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const LOGS_PATH: &str = "/operations/v2/interventions/logs";
const DOCUMENTS_PATH: &str = "/documents/v1/documents";

/// The TLS configuration of every HTTPS client of a function (Intent's, and the AWS
/// SDK's): rustls with the webpki (Mozilla) roots compiled in, so no scan of the OS
/// certificate store at start-up and identical behaviour on every Lambda image.
pub fn tls_client_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only: reqwest and hyper are built without HTTP/2, and a server choosing
    // `h2` from the offer would make hyper-util panic on the connection.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// Intent's reqwest client, on [`tls_client_config`].
pub fn build_http_client(config: &IntentConfig) -> Result<reqwest::Client, IntentError> {
    let tls = tls_client_config().map_err(IntentError::Protocol)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // Never follow a redirect: it would carry the client secret (token request) or a
        // bearer token to whatever host it names. A 3xx is an unexpected answer.
        .redirect(reqwest::redirect::Policy::none())
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
    /// Where the client secret lives when it is not in the configuration (AWS Secrets
    /// Manager), and the value read from it: read once, and again when the token endpoint
    /// says `invalid_client` (the secret was rotated).
    secret_source: Option<Arc<dyn ClientSecretSource>>,
    secret: tokio::sync::Mutex<Option<String>>,
}

/// A place the client secret is read from (AWS Secrets Manager in the functions), so that
/// no secret sits in a function's configuration and a rotation needs no redeploy.
pub trait ClientSecretSource: Send + Sync + 'static {
    fn read_secret(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>;
}

/// The body of an Intent API error (`{code, message, details}`).
#[derive(Deserialize)]
struct IntentErrorBody {
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
            secret_source: None,
            secret: tokio::sync::Mutex::new(None),
        }
    }

    /// The client with its secret read from `source` (once per execution environment,
    /// and again after an `invalid_client`), not from the configuration.
    pub fn with_secret_source(
        config: IntentConfig,
        source: Arc<dyn ClientSecretSource>,
    ) -> Result<Self, IntentError> {
        let mut client = Self::new(config)?;
        client.secret_source = Some(source);
        Ok(client)
    }

    /// The client secret: the configured one, or the source's (cached). With `refused`
    /// (the secret Intent just refused), the source is read again unless another caller
    /// already replaced that secret: callers refused together share one new read.
    async fn client_secret(&self, refused: Option<&str>) -> Result<String, IntentError> {
        let Some(source) = &self.secret_source else {
            return Ok(self.config.client_secret.clone());
        };
        let mut cached = self.secret.lock().await;
        if let Some(secret) = cached
            .as_ref()
            .filter(|secret| refused.is_none_or(|refused| refused != secret.as_str()))
        {
            return Ok(secret.clone());
        }
        let secret = source.read_secret().await.map_err(|detail| {
            IntentError::Authentication(format!("the client secret could not be read: {detail}"))
        })?;
        *cached = Some(secret.clone());
        Ok(secret)
    }

    pub fn config(&self) -> &IntentConfig {
        &self.config
    }

    /// Runs `attempt` with jittered exponential backoff while it fails transiently (429,
    /// 408, 5xx, connections that could not be made), honouring `Retry-After` within the
    /// budget. A lost answer (a timeout or a connection dropped after the request left)
    /// is retried only for a read (`idempotent`): a write may have been applied, and is
    /// settled by reading Intent instead. The call ends within `bound` (`longest_call()`
    /// for publications and reads), whatever its path (a 401's renewal, a wait for the
    /// token): cut off then, a write may have been applied (`AnswerLost`: read back before
    /// it is sent again). Returns the result and the attempts made.
    async fn with_retries<T, F, Fut>(
        &self,
        idempotent: bool,
        bound: Duration,
        attempt: F,
    ) -> (Result<T, IntentError>, u32)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, IntentError>>,
    {
        let attempts = AtomicU32::new(0);
        let policy = self.config.retry;
        // The pauses as actually waited (Intent's Retry-After included), within the budget
        // `longest_call()` counts on.
        let mut waited = Duration::ZERO;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
            .with_total_delay(Some(policy.max_total_delay));
        let retried = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            attempt()
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|error| error.is_transient() || (idempotent && error.outcome_unknown()))
        .adjust(|error, planned| {
            // Intent said when: wait that long, unless it is beyond our budget.
            let wait = match (error.retry_after(), planned) {
                (_, None) => return None,
                (Some(wait), Some(_)) => wait,
                (None, Some(planned)) => planned,
            };
            if waited + wait > policy.max_total_delay {
                return None;
            }
            waited += wait;
            Some(wait)
        })
        .notify(|error, wait| {
            tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "Intent call failed; retrying");
        });
        let result = match tokio::time::timeout(bound, retried).await {
            Ok(result) => result,
            Err(_) if idempotent => Err(IntentError::Transport(
                "the call ran past its time bound".into(),
            )),
            Err(_) => Err(IntentError::AnswerLost(
                "the call ran past its time bound; Intent may have applied it".into(),
            )),
        };
        (result, attempts.load(Ordering::Relaxed))
    }

    async fn bearer(&self) -> Result<crate::token::Token, IntentError> {
        let secret = self.client_secret(None).await?;
        let token = self
            .token
            .get(
                &self.http,
                &self.config.token_url,
                &self.config.client_id,
                &secret,
            )
            .await;
        match token {
            // The secret was rotated since it was read: read it again, once.
            Err(IntentError::Authentication(detail))
                if self.secret_source.is_some() && detail.contains("invalid_client") =>
            {
                tracing::warn!("Intent refused the client secret; reading it again");
                let secret = self.client_secret(Some(&secret)).await?;
                self.token
                    .get(
                        &self.http,
                        &self.config.token_url,
                        &self.config.client_id,
                        &secret,
                    )
                    .await
            }
            other => other,
        }
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
            .with_retries(false, self.config.longest_call(), || async {
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
    /// streamed from `body`, re-opened for every attempt, every attempt ended within
    /// `within` (see [`PublishDocument::publish_document`]). Returns Intent's document id
    /// when its answer names one, and the attempts it took.
    pub async fn post_document<O: OpenDocument>(
        &self,
        upload: &DocumentUpload,
        body: &O,
        within: Duration,
    ) -> Result<PublishedDocument, (IntentError, u32)> {
        let url = format!("{}{}", self.config.base_url, DOCUMENTS_PATH);
        let (result, attempts) = self
            // Within the time its object's claim leaves, not `longest_call()`: an upload
            // takes as long as its size needs.
            .with_retries(false, within, || async {
                let response = self
                    .send_authorized(|token| async {
                        let form = document_form(upload, body).await?;
                        Ok(self
                            .http
                            .post(&url)
                            .bearer_auth(token)
                            .header(ACCEPT, "application/json")
                            // A large upload gets longer than the per-request timeout
                            // (the function's own timeout is 15 minutes).
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
    /// An authorized GET with retries (a read: a lost answer is simply asked again).
    /// `Ok(None)` for a 404.
    async fn get_json(
        &self,
        url: &reqwest::Url,
        accept: &'static str,
    ) -> (Result<Option<serde_json::Value>, IntentError>, u32) {
        self.with_retries(true, self.config.longest_call(), || async {
            let response = self
                .send_authorized(|token| {
                    let request = self
                        .http
                        .get(url.clone())
                        .bearer_auth(token)
                        .header(ACCEPT, accept);
                    async move { Ok(request) }
                })
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                // Intent's own 404 (its JSON error, or nothing): not there. A page that is
                // not Intent's (a proxy's, a wrong path's) says nothing of what Intent holds.
                return match json_body(response).await {
                    Ok(_) => Ok(None),
                    Err(IntentError::Protocol(_)) => Err(IntentError::Protocol(
                        "a 404 that is not Intent's answer".into(),
                    )),
                    Err(error) => Err(error),
                };
            }
            if !response.status().is_success() {
                return classify(response).await.map(|_| None);
            }
            // A read's answer must be whole: a body that breaks off (tried again) or is not
            // JSON (a proxy's page) is not an empty answer.
            json_body(response)
                .await
                .map(|body| Some(body.unwrap_or(serde_json::Value::Null)))
        })
        .await
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, IntentError> {
        reqwest::Url::parse(&format!("{}{}", self.config.base_url, path))
            .map_err(|e| IntentError::Protocol(format!("Intent URL: {e}")))
    }

    /// `GET {base}/operations/v2/operations?status=open&page=N&perPage=100`, every page
    /// until an empty one (the documented end; `total`, whose meaning is not documented,
    /// does not end it), stopping early once `deadline` is reached.
    pub async fn list_open_operations(
        &self,
        deadline: Deadline,
    ) -> Result<OpenListing, (IntentError, u32)> {
        let mut listing = OpenListing::default();
        let mut total_attempts = 0;
        let mut previous: Option<Vec<serde_json::Value>> = None;
        for page in 1..=MAX_PAGES {
            if deadline.reached() {
                tracing::warn!(
                    page,
                    "the deadline came before the end of Intent's open list"
                );
                return Ok(listing);
            }
            let mut url = self.url(OPERATIONS_PATH).map_err(|e| (e, total_attempts))?;
            url.query_pairs_mut()
                .append_pair("status", "open")
                .append_pair("page", &page.to_string())
                .append_pair("perPage", &PER_PAGE.to_string());
            let (result, attempts) = self.get_json(&url, HAL).await;
            total_attempts += attempts;
            let body = result.map_err(|error| (error, total_attempts))?;
            // An empty HAL page may leave `_embedded` out altogether.
            let no_embedded = body
                .as_ref()
                .is_some_and(|json| json.is_object() && json.get("_embedded").is_none());
            let empty = Vec::new();
            let Some(operations) = body
                .as_ref()
                .and_then(|json| json.pointer("/_embedded/operations"))
                .and_then(|operations| operations.as_array())
                .or(no_embedded.then_some(&empty))
            else {
                return Err((
                    IntentError::Protocol(format!(
                        "page {page} of the open operations has no _embedded.operations"
                    )),
                    total_attempts,
                ));
            };
            // The documented end of the listing is an empty page; a page given again (a
            // hub that ignores `page`) ends it too, counted once.
            if operations.is_empty() || previous.as_ref() == Some(operations) {
                listing.complete = true;
                return Ok(listing);
            }
            previous = Some(operations.clone());
            for operation in operations {
                let text = |name: &str| {
                    operation
                        .get(name)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                listing.interventions.push(HubIntervention {
                    reference: text("reference"),
                    contract_reference: text("contractReference"),
                    status: text("status"),
                    event: text("event"),
                });
            }
        }
        Err((
            IntentError::Protocol(format!(
                "the open operations did not end within {MAX_PAGES} pages"
            )),
            total_attempts,
        ))
    }

    /// `GET {base}/operations/v2/operations/{reference}?contractReference=…`: the
    /// operation with its log, `None` when Intent does not know it.
    pub async fn operation(
        &self,
        reference: &str,
        contract_reference: &str,
    ) -> Result<Option<serde_json::Value>, (IntentError, u32)> {
        let mut url = self.url(OPERATIONS_PATH).map_err(|e| (e, 0))?;
        url.path_segments_mut()
            .map_err(|()| {
                (
                    IntentError::Protocol("Intent URL cannot have a path".into()),
                    0,
                )
            })?
            .push(reference);
        url.query_pairs_mut()
            .append_pair("contractReference", contract_reference);
        let (result, attempts) = self.get_json(&url, HAL).await;
        result.map_err(|error| (error, attempts))
    }

    /// Whether the operation's log on Intent holds `log` (same status, event and instant
    /// of eventDate). Intent's documentation shows the operation, not the shape of its
    /// log: the log is read from `_embedded.logs` (or `logs`); an operation without a log
    /// is compared on its own current status, event and eventDate.
    pub async fn log_on_intent(&self, log: &InterventionLog) -> Result<bool, (IntentError, u32)> {
        let Some(operation) = self
            .operation(&log.reference, &log.contract_reference)
            .await?
        else {
            return Ok(false);
        };
        operation_holds(&operation, log).map_err(|error| (error, 0))
    }

    /// `GET {base}/documents/v1/documents?elementType=intervention&elementReference=…`:
    /// the document of the intervention with the upload's file name and size (and its
    /// contract, when Intent says it), page by page.
    pub async fn find_uploaded_document(
        &self,
        upload: &DocumentUpload,
        size: u64,
        earlier: &[Option<&str>],
    ) -> Result<Option<PublishedDocument>, (IntentError, u32)> {
        let mut total_attempts = 0;
        // The ids of every listed document matching the upload, in listing order: which
        // one is this upload depends on how many earlier uploads they hold.
        let mut matching: Vec<Option<String>> = Vec::new();
        let mut previous: Option<Vec<serde_json::Value>> = None;
        for page in 1..=MAX_PAGES {
            let mut url = self.url(DOCUMENTS_PATH).map_err(|e| (e, total_attempts))?;
            url.query_pairs_mut()
                .append_pair("elementType", "intervention")
                .append_pair("elementReference", &upload.element_reference)
                .append_pair("intent_contractReference", &upload.contract_reference)
                .append_pair("page", &page.to_string())
                .append_pair("perPage", &PER_PAGE.to_string());
            let (result, attempts) = self.get_json(&url, "application/json").await;
            total_attempts += attempts;
            // No listing (a 404: an intervention Intent does not know; a 2xx without a
            // body): nothing (more) on Intent.
            let Some(body) = result.map_err(|error| (error, total_attempts))? else {
                break;
            };
            let Some(documents) = listed_documents(&body) else {
                return Err((
                    IntentError::Protocol(format!(
                        "page {page} of the document listing holds documents where they are not looked for"
                    )),
                    total_attempts,
                ));
            };
            // The end is the empty page: Intent may give fewer than asked per page (a cap
            // of its own). A hub that ignores `page` gives the same page again: the end
            // too, that page counted once (an id-less document is not told from itself).
            if documents.is_empty() || previous.as_ref() == Some(&documents) {
                break;
            }
            // A listed document without a file name and a size cannot be matched: it may
            // be this upload under names not known here.
            if let Some(unreadable) = documents.iter().position(|document| {
                document
                    .get("fileName")
                    .is_none_or(|name| !name.is_string())
                    || document.get("size").is_none()
            }) {
                return Err((
                    IntentError::Protocol(format!(
                        "page {page} of the document listing has a document (#{}) without fileName and size",
                        unreadable + 1
                    )),
                    total_attempts,
                ));
            }
            for document in documents
                .iter()
                .filter(|document| document_matches(document, upload, size))
            {
                let id = document.get("id").map(|id| match id {
                    serde_json::Value::String(id) => id.clone(),
                    other => other.to_string(),
                });
                // A document added while the pages are read shifts the next page: one
                // already seen (by its id) is not counted twice.
                if id.is_none() || !matching.contains(&id) {
                    matching.push(id);
                }
            }
            previous = Some(documents);
        }
        Ok(
            oncall_domain::documents::upload_among(&matching, earlier).map(|at| {
                PublishedDocument {
                    attempts: 0,
                    intent_document_id: matching[at].clone(),
                }
            }),
        )
    }
}

const HAL: &str = "application/json+hal";

/// Same status, event and instant (dates compared as instants: Intent may render them
/// with another offset, and to a coarser precision: see [`same_instant`]).
fn same_event(entry: &serde_json::Value, log: &InterventionLog) -> bool {
    let text = |name: &str| entry.get(name).and_then(|v| v.as_str());
    let same_date =
        text("eventDate").is_some_and(|date| same_instant(date, log.event_date.timestamp()));
    text("status") == Some(log.status.as_str())
        && text("event") == Some(log.event.as_str())
        && same_date
}

/// Whether `rendered` (a date Intent gave back) is the instant `sent`, written to the
/// precision `rendered` has: Intent keeps dates to the millisecond at most, and an event
/// sent with microseconds comes back truncated or rounded. Two events of the same status
/// and event a fraction of that precision apart are one.
fn same_instant(rendered: &str, sent: jiff::Timestamp) -> bool {
    let Ok(date) = oncall_domain::IntentDateTime::parse(rendered) else {
        return false;
    };
    let unit = 10_i128.pow(9 - fraction_digits(rendered).min(9));
    let sent = sent.as_nanosecond();
    let truncated = sent.div_euclid(unit) * unit;
    let rounded = (sent + unit / 2).div_euclid(unit) * unit;
    // Rendered without offset in the autumn fold, it may be either pass.
    date.occurrences().any(|got| {
        let got = got.as_nanosecond();
        got == truncated || got == rounded
    })
}

/// The significant digits of a date's fraction of a second (`…T10:45:23.123+01:00` and
/// `….123000+01:00`: 3; trailing zeros may be padding of a coarser precision).
fn fraction_digits(date: &str) -> u32 {
    let Some(time) = date.split_once('T').map(|(_, time)| time) else {
        return 0;
    };
    match time.split_once('.') {
        Some((_, fraction)) => {
            let digits: &str = &fraction[..fraction.bytes().take_while(u8::is_ascii_digit).count()];
            digits.trim_end_matches('0').len() as u32
        }
        None => 0,
    }
}

/// An operation that has neither a log nor its own status and event cannot tell whether
/// it holds `log`: an error (the event stays in doubt), never "not there" (it would be
/// sent a second time).
fn operation_holds(
    operation: &serde_json::Value,
    log: &InterventionLog,
) -> Result<bool, IntentError> {
    let entries = operation
        .pointer("/_embedded/logs")
        .or_else(|| operation.get("logs"))
        .and_then(|logs| logs.as_array());
    let has = |name: &str| {
        operation
            .get(name)
            .is_some_and(serde_json::Value::is_string)
    };
    match entries {
        Some(entries) => Ok(entries.iter().any(|entry| same_event(entry, log))),
        None if has("status") && has("event") => Ok(same_event(operation, log)),
        None => Err(IntentError::Protocol(
            "an operation with neither a log nor a status and event".into(),
        )),
    }
}

/// The documents of a listing page. Its shape is not documented: `_embedded.documents`,
/// `documents` or a bare array (a single document given as an object there, or as the
/// whole page, is a list of one); a page with no document at all (no body, an empty HAL
/// page without `_embedded`, its links included) lists none. A page holding a document
/// elsewhere is not read as "none" (`None`): the upload stays in doubt rather than being
/// sent again.
fn listed_documents(body: &serde_json::Value) -> Option<Vec<serde_json::Value>> {
    fn is_document(value: &serde_json::Value) -> bool {
        value.get("fileName").is_some()
    }
    fn holds_a_document(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::Object(members) => {
                is_document(value) || members.values().any(holds_a_document)
            }
            serde_json::Value::Array(items) => items.iter().any(holds_a_document),
            _ => false,
        }
    }
    let listed = body
        .pointer("/_embedded/documents")
        .or_else(|| body.get("documents"))
        .unwrap_or(body);
    match listed {
        serde_json::Value::Array(documents) => Some(documents.clone()),
        document if is_document(document) => Some(vec![document.clone()]),
        _ if holds_a_document(body) => None,
        _ => Some(Vec::new()),
    }
}

fn document_matches(document: &serde_json::Value, upload: &DocumentUpload, size: u64) -> bool {
    let text = |name: &str| document.get(name).and_then(|v| v.as_str());
    let contract_ok = text("intent_contractReference")
        .or_else(|| text("contractReference"))
        .is_none_or(|contract| contract == upload.contract_reference);
    let size_ok = document.get("size").and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    }) == Some(size);
    contract_ok && size_ok && text("fileName") == Some(upload.file_name.as_str())
}

impl ListOpenOnIntent for IntentClient {
    async fn list_open_interventions(
        &self,
        deadline: Deadline,
    ) -> Result<OpenListing, DeliveryFailure> {
        self.list_open_operations(deadline)
            .await
            .map_err(|(error, attempts)| error.into_failure(attempts))
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

/// Intent's error `code`, kept (it goes into messages that are logged and announced)
/// only when it is an identifier such as `validation_error`: anything else could echo
/// what was refused.
fn error_code(code: serde_json::Value) -> Option<String> {
    match code {
        serde_json::Value::String(code) if oncall_domain::validation::is_safe_reference(&code) => {
            Some(code)
        }
        _ => None,
    }
}

/// A 2xx answer's JSON body: none when it is empty; an error when it breaks off (a
/// transport failure) or is not JSON (a protocol error).
async fn json_body(response: reqwest::Response) -> Result<Option<serde_json::Value>, IntentError> {
    let body = response.bytes().await.map_err(|error| {
        IntentError::Transport(format!("the answer broke off: {}", error.without_url()))
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|_| IntentError::Protocol("an answer that is not JSON".into()))
}

/// Maps a response to success (any 2xx, with its JSON body if it has one) or a typed
/// error.
async fn classify(response: reqwest::Response) -> Result<Option<serde_json::Value>, IntentError> {
    let status = response.status();
    if status.is_success() {
        // A write's success stands whatever its JSON body says (what can be read of it,
        // if anything; one that breaks off after the status came is still a success). A
        // body that is not JSON is not Intent's answer (a proxy's page where 204 or 201
        // is documented): whether Intent got the request is not known.
        return match json_body(response).await {
            Ok(body) => Ok(body),
            Err(IntentError::Protocol(_)) => Err(IntentError::AnswerLost(format!(
                "HTTP {} with a body that is not Intent's",
                status.as_u16()
            ))),
            Err(_) => Ok(None),
        };
    }
    let code = status.as_u16();
    if status.is_redirection() {
        return Err(IntentError::Redirected { status: code });
    }
    if code == 503 || code == 429 || code == 408 {
        return Err(IntentError::Unavailable {
            status: code,
            retry_after: retry_after(response.headers()),
        });
    }
    if status.is_server_error() {
        return Err(IntentError::ServerFailed { status: code });
    }
    let error: Option<IntentErrorBody> = response.json().await.ok();
    let (api_code, message) = error
        .map(|e| {
            (
                e.code.and_then(error_code),
                e.message.map(|m| m.chars().take(300).collect()),
            )
        })
        .unwrap_or_default();
    if code == 404 {
        return Err(IntentError::UnknownIntervention {
            status: code,
            code: api_code,
        });
    }
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

impl PublishToIntent for IntentClient {
    async fn publish_log(&self, log: &InterventionLog) -> Result<u32, DeliveryFailure> {
        self.post_intervention_log(log)
            .await
            .map_err(|(error, attempts)| error.into_failure(attempts))
    }

    async fn log_is_on_intent(&self, log: &InterventionLog) -> Result<bool, DeliveryFailure> {
        self.log_on_intent(log)
            .await
            .map_err(|(error, attempts)| error.into_failure(attempts))
    }

    fn longest_call(&self) -> std::time::Duration {
        self.config.longest_call()
    }
}

impl PublishDocument for IntentClient {
    async fn publish_document<O: OpenDocument>(
        &self,
        upload: &DocumentUpload,
        body: &O,
        within: Duration,
    ) -> Result<PublishedDocument, DeliveryFailure> {
        self.post_document(upload, body, within)
            .await
            .map_err(|(error, attempts)| error.into_failure(attempts))
    }

    async fn find_document(
        &self,
        upload: &DocumentUpload,
        size: u64,
        earlier: &[Option<&str>],
    ) -> Result<Option<PublishedDocument>, DeliveryFailure> {
        self.find_uploaded_document(upload, size, earlier)
            .await
            .map_err(|(error, attempts)| error.into_failure(attempts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_domain::intent_examples::SEED_OPENING;
    use oncall_domain::validation::parse_intervention_log;
    use serde_json::json;

    fn opening_dated(event_date: &str) -> InterventionLog {
        let body = SEED_OPENING.replace("2020-03-06T10:45:23", event_date);
        parse_intervention_log(body.as_bytes()).expect("a valid opening")
    }

    fn entry(event_date: &str) -> serde_json::Value {
        json!({"status": "open", "event": "acknowledged", "eventDate": event_date})
    }

    /// Intent keeps dates to the millisecond at most (its own examples: `…T10:45:23`,
    /// `…T10:00:00.000`): an event sent with microseconds is read back rounded, and is the
    /// same event; one a second or more away is another.
    #[test]
    fn an_event_read_back_at_intents_precision_is_the_same_event() {
        let sent = opening_dated("2026-11-28T22:04:00.123456+01:00");
        for (rendered, same) in [
            ("2026-11-28T22:04:00.123456+01:00", true),
            ("2026-11-28T22:04:00.123+01:00", true),
            // Kept to the millisecond, written with six digits.
            ("2026-11-28T22:04:00.123000+01:00", true),
            ("2026-11-28T22:04:00.124000+01:00", false),
            ("2026-11-28T21:04:00.123Z", true),
            ("2026-11-28T22:04:00+01:00", true),
            ("2026-11-28T22:04:01.123+01:00", false),
            ("2026-11-28T22:03:59.123+01:00", false),
            ("2026-11-28T22:05:00+01:00", false),
        ] {
            assert_eq!(
                operation_holds(&entry(rendered), &sent).unwrap(),
                same,
                "{rendered} read back for 22:04:00.123456+01:00"
            );
        }
        let whole = opening_dated("2026-11-28T22:04:00+01:00");
        assert!(operation_holds(&entry("2026-11-28T22:04:00.000+01:00"), &whole).unwrap());
        assert!(!operation_holds(&entry("2026-11-28T22:04:01+01:00"), &whole).unwrap());
    }

    /// reqwest and hyper are built without HTTP/2 (`Cargo.toml`): a server that chose `h2`
    /// from our offer would make hyper-util panic on the connection ("http2 feature is not
    /// enabled"), every call to that host with it. Only HTTP/1.1 is offered.
    #[test]
    fn tls_offers_only_what_the_http_stack_speaks() {
        let tls = super::tls_client_config().unwrap();
        assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    /// A closure moved to the autumn fold's second pass (sent `02:10:00+01:00`) is the one
    /// Intent gives back without offset (`02:10:00`, which reads as the first pass).
    #[test]
    fn an_event_read_back_without_offset_in_the_fold_matches_either_pass() {
        for sent in ["2026-10-25T02:10:00+01:00", "2026-10-25T02:10:00+02:00"] {
            assert!(
                operation_holds(&entry("2026-10-25T02:10:00"), &opening_dated(sent)).unwrap(),
                "{sent}"
            );
        }
        assert!(
            !operation_holds(
                &entry("2026-10-25T02:10:00"),
                &opening_dated("2026-10-25T03:10:00+01:00")
            )
            .unwrap()
        );
    }
}
