//! The simulator's shared state: recordings, issued tokens, queued faults and the hub's
//! interventions. One mutex, never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use tokio::time::Instant;

use crate::{
    Endpoint, Fault, FaultBehaviour, HubIntervention, ReceivedDocument, RecordedRequest,
    SimulatorConfig,
};

pub(crate) struct Shared {
    pub(crate) config: SimulatorConfig,
    pub(crate) local_addr: SocketAddr,
    inner: Mutex<Inner>,
}

#[derive(Default)]
pub(crate) struct Inner {
    next_request_id: u64,
    /// (internal id, request); the id lets a late status update find its record even
    /// after a reset.
    requests: Vec<(u64, RecordedRequest)>,
    pub(crate) logs: Vec<serde_json::Value>,
    pub(crate) documents: Vec<ReceivedDocument>,
    /// token → expiry instant.
    tokens: HashMap<String, Instant>,
    pub(crate) tokens_issued: usize,
    faults: Vec<Fault>,
    /// Keyed by (contractReference, reference): iteration order is the listing order.
    pub(crate) interventions: BTreeMap<(String, String), HubIntervention>,
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
    pub(crate) fn new(config: SimulatorConfig, local_addr: SocketAddr) -> Shared {
        Shared {
            config,
            local_addr,
            inner: Mutex::new(Inner::default()),
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
                    key,
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
        inner.logs.push(body);
        LogOutcome::Accepted
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

    pub(crate) fn seed_open_intervention(&self, reference: &str, contract_reference: &str) {
        let now = jiff::Timestamp::now().to_string();
        self.lock().interventions.insert(
            (contract_reference.to_owned(), reference.to_owned()),
            HubIntervention {
                reference: reference.to_owned(),
                contract_reference: contract_reference.to_owned(),
                status: "open".to_owned(),
                event: "acknowledged".to_owned(),
                last_event_date: now,
            },
        );
    }

    pub(crate) fn interventions(&self) -> Vec<HubIntervention> {
        self.lock().interventions.values().cloned().collect()
    }

    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        let tokens = std::mem::take(&mut inner.tokens);
        let next_request_id = inner.next_request_id;
        *inner = Inner {
            next_request_id,
            tokens,
            ..Inner::default()
        };
    }
}
