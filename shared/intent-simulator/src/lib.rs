//! A local Intent hub for integration tests and local demo runs.
//!
//! The simulator serves the parts of Intent's API that the bridge uses (OAuth2 client
//! credentials, intervention logs, documents, operations listing) and checks every request
//! as strictly as Intent's documented contract, so that a client passing against it is
//! right. It records every request, keeps a small per-intervention lifecycle state and can
//! inject faults (error statuses, delays, dropped connections).
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
//! - `GET /api/operations/v2/operations?status=&page=&perPage=` (HAL, 1-based pages, at most
//!   100 per page) and `GET /api/operations/v2/operations/{reference}?contractReference=`.
//! - Admin (not recorded, not faulted): `GET /_simulator/{requests,logs,documents,interventions}`,
//!   `POST /_simulator/{expire-tokens,reset}`, `POST /_simulator/faults` with
//!   `{"endpoint":"interventionLogs"|"token"|"documents"|"operations"|"any", "status":503,
//!   "retryAfter":"1", "body":{…}, "times":2}` or `{"endpoint":…,"delayMs":…}` or
//!   `{"endpoint":…,"drop":true}` (`times` defaults to 1).
//!
//! Request bodies are never logged: they hold tenants' personal data. Only method, path and
//! status are traced.

mod handlers;
mod http_util;
mod server;
mod state;
mod validation;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize, Serializer};
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
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            client_id: "bridge-client".to_owned(),
            client_secret: "bridge-secret".to_owned(),
            token_ttl: Duration::from_secs(3600),
            strict_lifecycle: true,
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
            .finish()
    }
}

/// One HTTP request the simulator received, with the status it answered.
///
/// `status` is 0 when no HTTP response was sent (the connection was dropped by a
/// [`FaultBehaviour::DropConnection`] fault, or the client went away first).
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

/// A document the hub accepted (answered 201).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedDocument {
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
    /// `POST /api/documents/v1/documents`
    Documents,
    /// `GET /api/operations/v2/operations` and `GET /api/operations/v2/operations/{reference}`
    Operations,
    /// Any of the four above (not the `/_simulator` admin routes).
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
    /// Close the TCP connection without any HTTP response.
    DropConnection,
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
    pub async fn start_on(
        addr: SocketAddr,
        config: SimulatorConfig,
    ) -> std::io::Result<IntentSimulator> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, local_addr));
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

    /// Every intervention log the hub accepted (answered 204), in arrival order, body as
    /// received.
    pub fn received_logs(&self) -> Vec<serde_json::Value> {
        self.shared().lock().logs.clone()
    }

    /// Every request to any endpoint (accepted or not), in arrival order. The `/_simulator`
    /// admin routes are not recorded.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().requests()
    }

    /// Documents accepted (201).
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

    /// Every token issued so far becomes invalid: API calls with it get 401.
    pub fn expire_tokens(&self) {
        self.shared().expire_tokens();
    }

    /// Puts an intervention on the hub as if another system had opened it:
    /// status `open`, event `acknowledged`.
    pub fn seed_open_intervention(&self, reference: &str, contract_reference: &str) {
        self.shared()
            .seed_open_intervention(reference, contract_reference);
    }

    /// Current hub state per intervention, sorted by (contractReference, reference).
    pub fn interventions(&self) -> Vec<HubIntervention> {
        self.shared().interventions()
    }

    /// Forgets recordings (requests, logs, documents, the issued-token count), queued faults
    /// and the interventions. Tokens already issued stay valid (use
    /// [`IntentSimulator::expire_tokens`] to revoke them).
    pub fn reset(&self) {
        self.shared().reset();
    }
}

fn serialize_system_time<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    match jiff::Timestamp::try_from(*at) {
        Ok(ts) => serializer.collect_str(&ts),
        Err(_) => serializer.serialize_none(),
    }
}
