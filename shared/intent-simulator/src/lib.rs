//! A local Intent hub for integration tests and local demo runs.
//!
//! The simulator serves the parts of Intent's API that the bridge uses (OAuth2 client
//! credentials, intervention logs, documents and their listing, operations) and checks every request
//! as strictly as Intent's documented contract, so that a client passing against it is
//! right. It records every request, keeps a small per-intervention lifecycle state and can
//! inject faults (error statuses, delays, dropped connections, answers lost or delayed after
//! the hub acted).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use intent_simulator::{IntentSimulator, SimulatorConfig};
//! let hub = IntentSimulator::start(SimulatorConfig::default()).await?;
//! println!("API base {}, token URL {}", hub.base_url(), hub.token_url());
//! # Ok(()) }
//! ```
//!
//! # HTTP surface
//! - `POST /oauth/token`: form-encoded `grant_type=client_credentials&client_id&client_secret`
//!   → 200 `{access_token, token_type, expires_in}`; OAuth errors `{error, error_description}`.
//! - `POST /api/operations/v2/interventions/logs` (Bearer, `Content-Type: application/json`
//!   with optional `charset=utf-8`, `Accept` listing `application/json+hal`) → 204, else
//!   401/415/406/400 `invalid_json`/400 `validation_error` (every problem in `details`)/
//!   404 `intervention_not_found`/409 `intervention_closed`, in that order of checks.
//!   Dates must carry an offset (`Z` or `±hh:mm`).
//! - `POST /api/documents/v1/documents` (Bearer, multipart, `Accept: application/json`;
//!   `file` as `application/pdf`, `title`, `elementType`, `elementReference`,
//!   `intent_contractReference` required) → 201 `{id}`; no body-size limit, streamed.
//! - `GET /api/documents/v1/documents?elementType=&elementReference=[&intent_contractReference=]`
//!   `[&page=&perPage=]` (Bearer, `Accept` listing `application/json`) → 200
//!   `Content-Type: application/json`
//!   `{"_embedded":{"documents":[{id, title, description, fileName, size, contentType,
//!   elementType, elementReference, intent_contractReference, createdAt}]}, total, page,
//!   perPage}`; else 401/406/400 `validation_error` (missing or empty `elementType` /
//!   `elementReference`, `elementType` not one of intervention, quotation, reservation,
//!   contract, asset, bad `page`/`perPage`; every problem in `details`).
//! - `GET /api/operations/v2/operations?status=&page=&perPage=` (HAL, 1-based pages, at most
//!   100 per page, default 100) and
//!   `GET /api/operations/v2/operations/{reference}?contractReference=` (HAL; the operation's
//!   fields, `_links.self` and `_embedded.logs`).
//! - Admin (not recorded, not faulted): `GET /_simulator/{requests,logs,documents,interventions}`,
//!   `POST /_simulator/{expire-tokens,reset}`, `POST /_simulator/faults` with a JSON object:
//!   `"endpoint"` one of `"interventionLogs"`, `"token"`, `"documents"` (the upload, POST),
//!   `"documentLookup"` (the listing, GET), `"operations"`, `"any"`; exactly one behaviour
//!   among `"status":503` (with optional `"retryAfter":"1"`, `"body":{…}`), `"delayMs":N`,
//!   `"drop":true`, `"dropAfterApply":true`, `"delayAfterApplyMs":N`; optional `"times"`
//!   (default 1). E.g. `{"endpoint":"interventionLogs","dropAfterApply":true,"times":2}`.
//!
//! # Assumptions where Intent's documentation is silent
//! On these points the simulator behaves as stated here (the real hub may differ; a
//! client must not rely on more than this).
//! - **The operation's log.** `GET …/operations/{reference}?contractReference=` embeds
//!   `"_embedded": {"logs": [ … ]}`: every intervention log the hub accepted for that
//!   (contractReference, reference), body exactly as received, in arrival order. Listing
//!   pages do not embed logs. An intervention put on the hub with
//!   [`IntentSimulator::seed_open_intervention`] starts with one synthetic entry
//!   `{reference, contractReference, status:"open", event:"acknowledged", eventDate:<now,
//!   RFC 3339>}`.
//! - **No deduplication.** An identical log sent twice to an open intervention is appended
//!   twice (both answered 204); a document POSTed twice is stored twice (two ids). Any log
//!   to a `closed`/`denied` intervention is refused 409 `intervention_closed` (strict
//!   lifecycle), duplicate or not, and is not appended.
//! - **The document listing** lists the accepted documents in arrival order, filtered on
//!   `elementType` + `elementReference` (+ `intent_contractReference` when given);
//!   `description` and `fileName` are `null` when not sent, `contentType` is the file part's
//!   content type, `size` its length in bytes, `createdAt` the time the hub accepted it
//!   (RFC 3339, UTC).
//! - **Answers lost after the hub acted.** [`FaultBehaviour::ApplyThenDrop`] handles the
//!   request normally (the log is appended, the document stored, the token issued) and then
//!   closes the TCP connection without the response; [`FaultBehaviour::ApplyThenDelay`]
//!   handles it normally and holds the response back for the given time;
//!   [`FaultBehaviour::ApplyThenStatus`] handles it and answers a gateway's 502/504. The recorded
//!   request's `status` is the status the handler produced (e.g. 204), not 0, so a test can
//!   see that the hub accepted what the client never heard about.
//! - **Persistence (local run).** With [`SimulatorConfig::state_file`] set, the
//!   interventions, their logs and the received documents' metadata (not the files' bytes)
//!   are loaded from that JSON file at start if it exists (a corrupt or unreadable file makes
//!   [`IntentSimulator::start_on`] fail with an error naming the file), and the whole state
//!   is saved after every change (accepted log, accepted document, seed, reset), atomically:
//!   a temporary file in the same directory, then a rename. A failed save is logged and does
//!   not fail the request. Requests, [`IntentSimulator::received_logs`], tokens and faults are
//!   not persisted.
//!
//! Request bodies are never logged: they hold tenants' personal data. Only method, path and
//! status are traced.

mod handlers;
mod http_util;
mod persist;
mod server;
mod state;
mod validation;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::state::Shared;

/// How the simulator behaves: the client credentials it accepts, the lifetime of the tokens
/// it issues and whether it enforces the intervention lifecycle.
#[derive(Clone)]
pub struct SimulatorConfig {
    /// The only accepted `client_id` (default `bridge-client`).
    pub client_id: String,
    /// The only accepted `client_secret` (default `bridge-secret`).
    pub client_secret: String,
    /// Lifetime of an issued token, returned as `expires_in` (default 3600 s).
    pub token_ttl: Duration,
    /// Enforce the lifecycle (default true): an intervention's first event must be `open`,
    /// nothing is accepted once it is `closed`/`denied`, and a document on an intervention
    /// needs that intervention on the hub.
    pub strict_lifecycle: bool,
    /// Where to keep the hub's state across restarts (default `None`: in memory only).
    /// When set, the interventions, their logs and the received documents' metadata are
    /// loaded from this JSON file at start (if it exists) and the whole state is saved to
    /// it, atomically, after every change. Requests, tokens and faults are not persisted.
    pub state_file: Option<PathBuf>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            client_id: "bridge-client".to_owned(),
            client_secret: "bridge-secret".to_owned(),
            token_ttl: Duration::from_secs(3600),
            strict_lifecycle: true,
            state_file: None,
        }
    }
}

impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field("strict_lifecycle", &self.strict_lifecycle)
            .field("state_file", &self.state_file)
            .finish()
    }
}

/// One HTTP request the simulator received, with the status it answered.
///
/// `status` is 0 when no HTTP response was produced (the connection was dropped by a
/// [`FaultBehaviour::DropConnection`] fault, or the client went away first). Under a
/// [`FaultBehaviour::ApplyThenDrop`] or [`FaultBehaviour::ApplyThenDelay`] fault it is the
/// status the handler produced (e.g. 204: the hub accepted the log), even though the client
/// never received it, or received it late.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// The body, for requests whose content type is JSON and whose body parses as JSON.
    pub body: Option<serde_json::Value>,
    #[serde(serialize_with = "serialize_system_time")]
    pub at: SystemTime,
}

/// A document the hub accepted (answered 201). The file's bytes are not kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedDocument {
    /// The id answered in the 201 body (`{"id": …}`).
    pub id: String,
    /// When the hub accepted it; the listing's `createdAt`.
    #[serde(
        serialize_with = "serialize_system_time",
        deserialize_with = "deserialize_system_time"
    )]
    pub received_at: SystemTime,
    /// Every non-file form field, by name.
    pub fields: BTreeMap<String, String>,
    pub file_name: Option<String>,
    pub file_content_type: Option<String>,
    pub file_size: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub file_sha256: String,
}

/// The hub's current view of one intervention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubIntervention {
    pub reference: String,
    pub contract_reference: String,
    pub status: String,
    pub event: String,
    /// The `eventDate` of the last accepted event, as sent.
    pub last_event_date: String,
}

/// Which endpoint a [`Fault`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Endpoint {
    /// `POST /oauth/token`
    Token,
    /// `POST /api/operations/v2/interventions/logs`
    InterventionLogs,
    /// `POST /api/documents/v1/documents` (every method but `GET`/`HEAD` on that path).
    Documents,
    /// `GET /api/operations/v2/operations` and `GET /api/operations/v2/operations/{reference}`
    Operations,
    /// `GET /api/documents/v1/documents` (the document listing).
    DocumentLookup,
    /// Any of the above (not the `/_simulator` admin routes).
    Any,
}

/// What a faulted request gets instead of normal handling.
#[derive(Debug, Clone)]
pub enum FaultBehaviour {
    /// Answer this status, with a `Retry-After` header if given and this JSON body if given
    /// (else a default error body in the endpoint's error format).
    Status {
        code: u16,
        retry_after: Option<String>,
        body: Option<serde_json::Value>,
    },
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Take the whole request, then close the TCP connection without applying it nor
    /// sending any HTTP response (the client has sent everything: whether the hub acted is
    /// not known to it).
    DropConnection,
    /// Handle the request normally (the hub applies it: a log is appended, a document
    /// stored), then close the TCP connection without sending the response: the answer is
    /// lost after the hub acted.
    ApplyThenDrop,
    /// Handle the request normally, then hold the response back this long before sending
    /// it (to make a client time out after the hub acted).
    ApplyThenDelay(Duration),
    /// Handle the request normally, then answer this status instead (a gateway in front
    /// of the hub answering 502/504 while the hub went on and applied the request).
    ApplyThenStatus(u16),
}

/// A queued fault: the next `times` requests to `endpoint` get `behaviour`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub endpoint: Endpoint,
    pub behaviour: FaultBehaviour,
    pub times: usize,
}

impl Fault {
    /// The next `times` requests to `endpoint` are answered `code`.
    pub fn status(endpoint: Endpoint, code: u16, times: usize) -> Fault {
        Fault {
            endpoint,
            behaviour: FaultBehaviour::Status {
                code,
                retry_after: None,
                body: None,
            },
            times,
        }
    }

    /// The next `times` requests to `endpoint` wait `delay` before normal handling.
    pub fn delay(endpoint: Endpoint, delay: Duration, times: usize) -> Fault {
        Fault {
            endpoint,
            behaviour: FaultBehaviour::Delay(delay),
            times,
        }
    }

    /// The next `times` requests to `endpoint` have their connection closed without answer.
    pub fn drop_connection(endpoint: Endpoint, times: usize) -> Fault {
        Fault {
            endpoint,
            behaviour: FaultBehaviour::DropConnection,
            times,
        }
    }

    /// The next `times` requests to `endpoint` are handled normally, then their connection
    /// is closed without the response.
    pub fn apply_then_drop(endpoint: Endpoint, times: usize) -> Fault {
        Fault {
            endpoint,
            behaviour: FaultBehaviour::ApplyThenDrop,
            times,
        }
    }

    /// The next `times` requests to `endpoint` are handled normally, then answered `code`
    /// (in the endpoint's error format) instead of the hub's response.
    pub fn apply_then_status(endpoint: Endpoint, code: u16, times: usize) -> Fault {
        Fault {
            endpoint,
            behaviour: FaultBehaviour::ApplyThenStatus(code),
            times,
        }
    }

    /// The next `times` requests to `endpoint` are handled normally, then their response is
    /// held back for `delay`.
    pub fn apply_then_delay(endpoint: Endpoint, delay: Duration, times: usize) -> Fault {
        Fault {
            endpoint,
            behaviour: FaultBehaviour::ApplyThenDelay(delay),
            times,
        }
    }
}

/// A running simulator. Cheap to clone; the server stops when the last clone is dropped.
#[derive(Clone)]
pub struct IntentSimulator {
    handle: Arc<ServerHandle>,
}

struct ServerHandle {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every open connection.
        self.task.abort();
    }
}

impl fmt::Debug for IntentSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntentSimulator")
            .field("local_addr", &self.handle.shared.local_addr)
            .field("config", &self.handle.shared.config)
            .finish()
    }
}

impl IntentSimulator {
    /// Binds 127.0.0.1 on an ephemeral port and serves in a spawned tokio task.
    pub async fn start(config: SimulatorConfig) -> std::io::Result<IntentSimulator> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Binds `addr` and serves in a spawned tokio task.
    ///
    /// With [`SimulatorConfig::state_file`] set, first loads that file if it exists; an
    /// unreadable or corrupt file is an error whose message names the file.
    pub async fn start_on(
        addr: SocketAddr,
        config: SimulatorConfig,
    ) -> std::io::Result<IntentSimulator> {
        let loaded = match &config.state_file {
            Some(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || persist::load(&path))
                    .await
                    .map_err(std::io::Error::other)??
            }
            None => None,
        };
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, local_addr, loaded));
        let router = handlers::router(shared.clone());
        let task = tokio::spawn(server::serve(listener, router));
        Ok(IntentSimulator {
            handle: Arc::new(ServerHandle { shared, task }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared().local_addr
    }

    /// The API base, like `https://api.hubintent.com/api`: `http://127.0.0.1:PORT/api`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.url_authority())
    }

    /// The OAuth2 token URL: `http://127.0.0.1:PORT/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth/token", self.url_authority())
    }

    /// `host:port` usable in a URL: an unspecified bind address (0.0.0.0 / ::) is shown as
    /// the loopback address of the same family.
    fn url_authority(&self) -> String {
        let addr = self.local_addr();
        match addr {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
                format!("{}:{}", Ipv4Addr::LOCALHOST, v4.port())
            }
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => format!("[::1]:{}", v6.port()),
            other => other.to_string(),
        }
    }

    pub fn client_id(&self) -> String {
        self.shared().config.client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.shared().config.client_secret.clone()
    }

    /// Every intervention log the hub accepted (answered 204) since this simulator started
    /// (or was reset), in arrival order, body as received. Not restored from a state file
    /// (see [`IntentSimulator::operation_logs`] for what is).
    pub fn received_logs(&self) -> Vec<serde_json::Value> {
        self.shared().lock().logs.clone()
    }

    /// The log of one intervention as `GET …/operations/{reference}` embeds it: every
    /// accepted log body, as received, in arrival order (duplicates included), after the
    /// synthetic log of [`IntentSimulator::seed_open_intervention`] if it was seeded.
    /// Empty for an unknown intervention.
    pub fn operation_logs(
        &self,
        reference: &str,
        contract_reference: &str,
    ) -> Vec<serde_json::Value> {
        self.shared().operation_logs(reference, contract_reference)
    }

    /// Every request to any endpoint (accepted or not), in arrival order. The `/_simulator`
    /// admin routes are not recorded.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().requests()
    }

    /// Documents accepted (201), in arrival order (restored from the state file if any).
    pub fn received_documents(&self) -> Vec<ReceivedDocument> {
        self.shared().lock().documents.clone()
    }

    /// Number of token requests that got a token.
    pub fn tokens_issued(&self) -> usize {
        self.shared().lock().tokens_issued
    }

    /// Queues a fault: the next `times` requests to `endpoint` get `behaviour` instead of
    /// normal handling (FIFO across queued faults that match the same request).
    pub fn inject(&self, fault: Fault) {
        self.shared().inject(fault);
    }

    /// While `without` is set, an accepted document is answered 201 with no body, as
    /// Intent may (its 201 body is not documented): the uploader learns no id. Listings
    /// still show each document's id.
    pub fn answer_uploads_without_id(&self, without: bool) {
        self.shared().answer_uploads_without_id(without);
    }

    /// Every token issued so far becomes invalid: API calls with it get 401.
    pub fn expire_tokens(&self) {
        self.shared().expire_tokens();
    }

    /// Puts an intervention on the hub as if another system had opened it:
    /// status `open`, event `acknowledged`, and appends to its log one synthetic entry
    /// `{reference, contractReference, status: "open", event: "acknowledged", eventDate: now}`
    /// (not listed by [`IntentSimulator::received_logs`]). Saves the state file, if any.
    pub fn seed_open_intervention(&self, reference: &str, contract_reference: &str) {
        self.shared()
            .seed_open_intervention(reference, contract_reference);
        self.shared().save_blocking();
    }

    /// Intent loses the intervention's last event (a closing it accepted, say): its log and
    /// its status go back to the event before; [`IntentSimulator::received_logs`] keeps
    /// it. Saves the state file, if any.
    pub fn lose_last_event(&self, reference: &str, contract_reference: &str) {
        self.shared().lose_last_event(reference, contract_reference);
        self.shared().save_blocking();
    }

    /// Current hub state per intervention, sorted by (contractReference, reference).
    pub fn interventions(&self) -> Vec<HubIntervention> {
        self.shared().interventions()
    }

    /// Forgets the queued faults, keeping everything the hub holds: Intent is well again.
    pub fn clear_faults(&self) {
        self.shared().clear_faults();
    }

    /// Forgets recordings (requests, logs, documents, the issued-token count), queued faults
    /// and the interventions with their logs. Tokens already issued stay valid (use
    /// [`IntentSimulator::expire_tokens`] to revoke them). Saves the (empty) state file, if
    /// any.
    pub fn reset(&self) {
        self.shared().reset();
        self.shared().save_blocking();
    }
}

fn serialize_system_time<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    match jiff::Timestamp::try_from(*at) {
        Ok(ts) => serializer.collect_str(&ts),
        Err(_) => serializer.serialize_none(),
    }
}

fn deserialize_system_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SystemTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    let ts: jiff::Timestamp = text.parse().map_err(serde::de::Error::custom)?;
    SystemTime::try_from(ts).map_err(serde::de::Error::custom)
}
