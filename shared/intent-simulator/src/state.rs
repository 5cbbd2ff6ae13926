//! The simulator's shared state: recordings, issued tokens, queued faults and the hub's
//! interventions with their logs. One mutex, never held across an await.
//!
//! With a state file configured, every change of the hub's state (interventions, their
//! logs, documents) bumps a generation number under that mutex; a save then snapshots the
//! state under the mutex, releases it and writes the file under a separate writer lock,
//! skipping snapshots older than the last one written (so concurrent saves never put an
//! older state over a newer one).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use crate::persist::{self, HubState, StateFile};
use crate::{
    Endpoint, Fault, FaultBehaviour, HubIntervention, ReceivedDocument, RecordedRequest,
    SimulatorConfig,
};

pub(crate) struct Shared {
    pub(crate) config: SimulatorConfig,
    pub(crate) local_addr: SocketAddr,
    inner: Mutex<Inner>,
    /// The generation last written to the state file.
    writer: Mutex<u64>,
}

#[derive(Default)]
pub(crate) struct Inner {
    next_request_id: u64,
    /// (internal id, request); the id lets a late status update find its record even
    /// after a reset.
    requests: Vec<(u64, RecordedRequest)>,
    pub(crate) logs: Vec<serde_json::Value>,
    /// Each intervention's accepted logs (and seed entries), keyed like `interventions`.
    intervention_logs: BTreeMap<(String, String), Vec<serde_json::Value>>,
    pub(crate) documents: Vec<ReceivedDocument>,
    /// token → expiry instant.
    tokens: HashMap<String, Instant>,
    pub(crate) tokens_issued: usize,
    faults: Vec<Fault>,
    /// Keyed by (contractReference, reference): iteration order is the listing order.
    pub(crate) interventions: BTreeMap<(String, String), HubIntervention>,
    /// Bumped on every change of the persisted state.
    generation: u64,
    /// While set, an accepted document is answered 201 with no body (Intent's 201 body is
    /// not documented): the uploader learns no id.
    pub(crate) uploads_answered_without_id: bool,
}

impl Inner {
    /// Marks the persisted state as changed.
    fn changed(&mut self) {
        self.generation += 1;
    }
}

/// Why a bearer token was refused.
pub(crate) enum TokenProblem {
    Missing,
    Malformed,
    Unknown,
    Expired,
}

/// Outcome of the lifecycle check of one intervention log.
pub(crate) enum LogOutcome {
    Accepted,
    NotFound,
    Closed { status: String },
}

pub(crate) struct LogEvent<'a> {
    pub reference: &'a str,
    pub contract_reference: &'a str,
    pub status: &'a str,
    pub event: &'a str,
    pub event_date: &'a str,
}

impl Shared {
    pub(crate) fn new(
        config: SimulatorConfig,
        local_addr: SocketAddr,
        loaded: Option<HubState>,
    ) -> Shared {
        let HubState {
            interventions,
            intervention_logs,
            documents,
        } = loaded.unwrap_or_default();
        Shared {
            config,
            local_addr,
            inner: Mutex::new(Inner {
                interventions,
                intervention_logs,
                documents,
                ..Inner::default()
            }),
            writer: Mutex::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere; the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record_arrival(&self, request: RecordedRequest) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_request_id;
        inner.next_request_id += 1;
        inner.requests.push((id, request));
        id
    }

    pub(crate) fn record_status(&self, id: u64, status: u16) {
        let mut inner = self.lock();
        if let Some((_, request)) = inner.requests.iter_mut().rev().find(|(i, _)| *i == id) {
            request.status = status;
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    pub(crate) fn inject(&self, fault: Fault) {
        if fault.times == 0 {
            return;
        }
        self.lock().faults.push(fault);
    }

    /// Forgets the queued faults (the hub is well again), nothing else.
    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Takes one use of the first queued fault matching `endpoint`.
    pub(crate) fn take_fault(&self, endpoint: Endpoint) -> Option<FaultBehaviour> {
        let mut inner = self.lock();
        let position = inner
            .faults
            .iter()
            .position(|f| f.endpoint == Endpoint::Any || f.endpoint == endpoint)?;
        let fault = &mut inner.faults[position];
        fault.times -= 1;
        let behaviour = fault.behaviour.clone();
        if fault.times == 0 {
            inner.faults.remove(position);
        }
        Some(behaviour)
    }

    pub(crate) fn issue_token(&self) -> String {
        let token = uuid::Uuid::new_v4().to_string();
        let expiry = Instant::now() + self.config.token_ttl;
        let mut inner = self.lock();
        inner.tokens.insert(token.clone(), expiry);
        inner.tokens_issued += 1;
        token
    }

    pub(crate) fn check_token(&self, authorization: Option<&str>) -> Result<(), TokenProblem> {
        let value = authorization.ok_or(TokenProblem::Missing)?;
        let (scheme, token) = value
            .trim()
            .split_once(' ')
            .ok_or(TokenProblem::Malformed)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(TokenProblem::Malformed);
        }
        let inner = self.lock();
        let expiry = inner.tokens.get(token).ok_or(TokenProblem::Unknown)?;
        if Instant::now() >= *expiry {
            return Err(TokenProblem::Expired);
        }
        Ok(())
    }

    pub(crate) fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Applies one validated intervention log to the hub, under one lock so that concurrent
    /// events on the same intervention are serialized.
    pub(crate) fn apply_log(&self, event: LogEvent<'_>, body: serde_json::Value) -> LogOutcome {
        let strict = self.config.strict_lifecycle;
        let key = (
            event.contract_reference.to_owned(),
            event.reference.to_owned(),
        );
        let mut inner = self.lock();
        match inner.interventions.get_mut(&key) {
            Some(existing) => {
                if strict && matches!(existing.status.as_str(), "closed" | "denied") {
                    return LogOutcome::Closed {
                        status: existing.status.clone(),
                    };
                }
                existing.status = event.status.to_owned();
                existing.event = event.event.to_owned();
                existing.last_event_date = event.event_date.to_owned();
            }
            None => {
                if strict && event.status != "open" {
                    return LogOutcome::NotFound;
                }
                inner.interventions.insert(
                    key.clone(),
                    HubIntervention {
                        reference: event.reference.to_owned(),
                        contract_reference: event.contract_reference.to_owned(),
                        status: event.status.to_owned(),
                        event: event.event.to_owned(),
                        last_event_date: event.event_date.to_owned(),
                    },
                );
            }
        }
        inner.logs.push(body.clone());
        inner.intervention_logs.entry(key).or_default().push(body);
        inner.changed();
        LogOutcome::Accepted
    }

    /// Stores an accepted document.
    /// Stores an accepted document; whether its 201 carries its id.
    pub(crate) fn add_document(&self, document: ReceivedDocument) -> bool {
        let mut inner = self.lock();
        inner.documents.push(document);
        inner.changed();
        !inner.uploads_answered_without_id
    }

    pub(crate) fn answer_uploads_without_id(&self, without: bool) {
        self.lock().uploads_answered_without_id = without;
    }

    /// One intervention with its log, read under one lock.
    pub(crate) fn operation(
        &self,
        reference: &str,
        contract_reference: &str,
    ) -> Option<(HubIntervention, Vec<serde_json::Value>)> {
        let key = (contract_reference.to_owned(), reference.to_owned());
        let inner = self.lock();
        let intervention = inner.interventions.get(&key)?.clone();
        let logs = inner
            .intervention_logs
            .get(&key)
            .cloned()
            .unwrap_or_default();
        Some((intervention, logs))
    }

    pub(crate) fn operation_logs(
        &self,
        reference: &str,
        contract_reference: &str,
    ) -> Vec<serde_json::Value> {
        self.lock()
            .intervention_logs
            .get(&(contract_reference.to_owned(), reference.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn intervention(
        &self,
        reference: &str,
        contract_reference: &str,
    ) -> Option<HubIntervention> {
        self.lock()
            .interventions
            .get(&(contract_reference.to_owned(), reference.to_owned()))
            .cloned()
    }

    /// Puts an open intervention on the hub with one synthetic log entry (not saved: see
    /// [`Shared::save_blocking`]).
    pub(crate) fn seed_open_intervention(&self, reference: &str, contract_reference: &str) {
        let now = jiff::Timestamp::now().to_string();
        let key = (contract_reference.to_owned(), reference.to_owned());
        let log = serde_json::json!({
            "reference": reference,
            "contractReference": contract_reference,
            "status": "open",
            "event": "acknowledged",
            "eventDate": now,
        });
        let mut inner = self.lock();
        inner.interventions.insert(
            key.clone(),
            HubIntervention {
                reference: reference.to_owned(),
                contract_reference: contract_reference.to_owned(),
                status: "open".to_owned(),
                event: "acknowledged".to_owned(),
                last_event_date: now,
            },
        );
        inner.intervention_logs.entry(key).or_default().push(log);
        inner.changed();
    }

    /// Intent loses the intervention's last event: its log and its state go back to the
    /// event before (what it received stays in the received logs).
    pub(crate) fn lose_last_event(&self, reference: &str, contract_reference: &str) {
        let key = (contract_reference.to_owned(), reference.to_owned());
        let mut inner = self.lock();
        let Some(logs) = inner.intervention_logs.get_mut(&key) else {
            return;
        };
        logs.pop();
        let Some(last) = logs.last().cloned() else {
            inner.intervention_logs.remove(&key);
            inner.interventions.remove(&key);
            inner.changed();
            return;
        };
        let text = |name: &str| {
            last.get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        if let Some(intervention) = inner.interventions.get_mut(&key) {
            intervention.status = text("status");
            intervention.event = text("event");
            intervention.last_event_date = text("eventDate");
        }
        inner.changed();
    }

    pub(crate) fn interventions(&self) -> Vec<HubIntervention> {
        self.lock().interventions.values().cloned().collect()
    }

    /// Forgets everything but the issued tokens (not saved: see [`Shared::save_blocking`]).
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        let tokens = std::mem::take(&mut inner.tokens);
        let next_request_id = inner.next_request_id;
        let generation = inner.generation;
        *inner = Inner {
            next_request_id,
            tokens,
            generation,
            ..Inner::default()
        };
        inner.changed();
    }

    /// Saves the state file, if one is configured, from a blocking thread. Never fails: an
    /// error is logged.
    pub(crate) async fn save(self: &Arc<Self>) {
        if self.config.state_file.is_none() {
            return;
        }
        let shared = self.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || shared.save_blocking()).await {
            tracing::error!(%error, "the simulator state could not be saved");
        }
    }

    /// Saves the state file, if one is configured, on this thread. Never fails: an error is
    /// logged (with the path and the I/O error only, never the content).
    pub(crate) fn save_blocking(&self) {
        let Some(path) = self.config.state_file.as_deref() else {
            return;
        };
        let (generation, file) = {
            let inner = self.lock();
            let file = StateFile::from_state(
                &inner.interventions,
                &inner.intervention_logs,
                &inner.documents,
            );
            (inner.generation, file)
        };
        let mut written = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if generation <= *written {
            // A newer snapshot is already on disk.
            return;
        }
        match persist::encode(&file).and_then(|bytes| persist::write_atomically(path, &bytes)) {
            Ok(()) => *written = generation,
            Err(error) => log_save_error(path, &error),
        }
    }
}

fn log_save_error(path: &Path, error: &std::io::Error) {
    tracing::error!(
        path = %path.display(),
        %error,
        "the simulator state could not be saved"
    );
}
