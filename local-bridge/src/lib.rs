//! The whole bridge on one machine: the same domain and partner API as the Lambda
//! functions, with local adapters: an embedded store (redb), an inbox folder in place of
//! S3, the on-call closer in process, domain events as JSON lines, and, when no Intent is
//! configured, the project's Intent simulator started in process.

pub mod config;
pub mod events;
pub mod inbox;
pub mod store;
pub mod uploads;

use crate::config::LocalConfig;
use crate::events::JsonLinesEvents;
use crate::inbox::{InboxObjects, StabilityTracker};
use crate::store::EmbeddedStore;
use crate::uploads::LocalUploads;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use intent_client::IntentClient;
use jiff::{SignedDuration, Timestamp};
use oncall_domain::calendar::{OnCallCalendar, OnCallPeriod};
use oncall_domain::closer_run::{CloserPorts, RunKind, RunReport, run_closer};
use oncall_domain::documents::{DocumentPolicy, OPERATOR_PREFIX, QUITUS_PREFIX};
use oncall_domain::domain_events::{DomainEvent, OnCallPeriodClosed};
use oncall_domain::forward::{ForwardPorts, forward_document};
use oncall_domain::oncall::{CloserPolicy, Deadline};
use oncall_domain::ports::{Clock, StoreError, SystemClock};
use partner_api::{IdentifyCaller, PartnerApi, Route};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub type LocalApi =
    PartnerApi<EmbeddedStore, IntentClient, JsonLinesEvents, SystemClock, LocalUploads>;

/// Everything the local bridge runs on.
pub struct LocalBridge {
    pub api: Arc<LocalApi>,
    pub objects: InboxObjects,
    pub calendar: OnCallCalendar,
    pub closer: CloserPolicy,
    pub documents: DocumentPolicy,
    pub config: LocalConfig,
    /// Intent for the closer's runs and the inbox's forwarding (the API's own client has
    /// the request path's budget).
    pub background_intent: IntentClient,
    /// Closings the local closer stored (its runs are never cut off: their reports count
    /// them whole).
    closings_stored: std::sync::atomic::AtomicUsize,
}

impl LocalBridge {
    /// The bridge on `config`: `intent` serves the partner API's requests (with
    /// [`IntentSettings::api`]'s budget), `background` the closer's runs and the inbox.
    pub fn new(
        config: LocalConfig,
        intent: IntentClient,
        background: IntentClient,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        for prefix in [QUITUS_PREFIX, OPERATOR_PREFIX] {
            std::fs::create_dir_all(config.inbox_dir.join(prefix))
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        let store = EmbeddedStore::open(&config.data_dir.join("bridge.redb"))?;
        Ok(Self {
            api: Arc::new(PartnerApi {
                store,
                intent,
                events: JsonLinesEvents::new(
                    config.events_file.clone(),
                    "oncall-bridge.interventions",
                ),
                clock: SystemClock,
                uploads: LocalUploads::new(config.listen),
                partners: config.partners.directory(),
                closure: Default::default(),
                upload_policy: Default::default(),
                request_limit: partner_api::REQUEST_LIMIT,
            }),
            objects: InboxObjects::new(config.inbox_dir.clone()),
            calendar: OnCallCalendar::new(config.calendar.clone())
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            closer: CloserPolicy::default(),
            documents: DocumentPolicy::default(),
            config,
            background_intent: background,
            closings_stored: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn is_admin(&self, headers: &HeaderMap) -> bool {
        bearer_token(headers).is_some_and(|token| token == self.config.partners.admin_token)
    }

    fn closer_ports<'a>(
        &'a self,
        contracts: &'a HashSet<String>,
    ) -> CloserPorts<'a, EmbeddedStore, IntentClient, JsonLinesEvents, SystemClock, InboxObjects>
    {
        CloserPorts {
            store: &self.api.store,
            intent: &self.background_intent,
            events: &self.api.events,
            clock: &self.api.clock,
            objects: &self.objects,
            policy: &self.closer,
            documents: self.documents,
            contracts,
            closings_stored: &self.closings_stored,
        }
    }

    /// Closes every open file opened before `period.end`, re-sends pending events and
    /// waiting documents, reconciles with Intent and publishes the period's summary: the
    /// same run as the Lambda closer's.
    pub async fn close_period(
        &self,
        period: &OnCallPeriod,
    ) -> Result<OnCallPeriodClosed, StoreError> {
        let contracts = self.config.partners.contracts();
        let mut report = RunReport::default();
        run_closer(
            &self.closer_ports(&contracts),
            RunKind::PeriodEnd,
            Some(period),
            Deadline::none(),
            &mut report,
        )
        .await;
        let summary = report
            .period_summary()
            .expect("a period-end run has a period");
        tracing::info!(period = %period.id, files_closed = summary.files_closed, resent = summary.resent, still_failing = summary.still_failing, unknown_on_intent = summary.unknown_on_intent, "on-call period closed");
        // A failed end is tried again at every pass until it succeeds: its first failure
        // and its success tell their summaries, not every try in between (as the Lambda
        // closer's two retries at most).
        let failed_before = self.api.store.meta("period_end_failed").await?;
        let tell =
            report.problems.is_empty() || failed_before.as_deref() != Some(period.id.as_str());
        let kept = if tell {
            oncall_domain::outbox::keep_and_publish(
                &self.api.store,
                &self.api.events,
                &[DomainEvent::OnCallPeriodClosed(summary.clone())],
                self.api.clock.now(),
            )
            .await
        } else {
            tracing::info!(period = %period.id, "the period's end failed again; its summary was told at its first failure");
            Ok(())
        };
        if let Err(error) = &kept {
            tracing::error!(%error, "the OnCallPeriodClosed event was neither written nor kept");
        }
        if let Some(problem) = report.problems.first() {
            self.api
                .store
                .set_meta("period_end_failed", period.id.clone())
                .await?;
            return Err(StoreError::Unavailable(problem.clone()));
        }
        kept?;
        Ok(summary)
    }

    /// One pass of the in-process closer: a period that ended since the last pass is
    /// closed (also one that ended while the process was down); otherwise pending events
    /// and waiting documents are re-sent.
    pub async fn closer_pass(&self) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let purged = self.api.store.purge_expired(now).await?;
        for object in &purged.documents {
            // As the bucket's lifecycle rule expires its objects: the version whose record
            // passed its retention (not a newer one dropped under the same name).
            if let Err(error) = self.objects.remove_version(object).await {
                tracing::warn!(%error, "an inbox file past its retention could not be erased");
            }
        }
        if purged.files > 0 || !purged.documents.is_empty() {
            tracing::info!(
                files = purged.files,
                documents = purged.documents.len(),
                "closed files and quitus past their retention erased"
            );
        }
        if let Some(period) = self.calendar.last_period_ended_by(now) {
            let handled = self.api.store.meta("last_period").await?;
            if handled.as_deref() != Some(period.id.as_str()) {
                self.close_period(&period).await?;
                self.api
                    .store
                    .set_meta("last_period", period.id.clone())
                    .await?;
                return Ok(());
            }
        }
        let contracts = HashSet::new();
        let mut report = RunReport::default();
        run_closer(
            &self.closer_ports(&contracts),
            RunKind::Resend,
            None,
            Deadline::none(),
            &mut report,
        )
        .await;
        match report.problems.first() {
            Some(problem) => Err(StoreError::Unavailable(problem.clone())),
            None => Ok(()),
        }
    }

    /// One poll of the inbox: every stable new file is forwarded.
    pub async fn inbox_pass(&self, tracker: &mut StabilityTracker, done: &mut HashSet<String>) {
        let ports = ForwardPorts {
            ledger: &self.api.store,
            files: &self.api.store,
            objects: &self.objects,
            intent: &self.background_intent,
            events: &self.api.events,
            clock: &self.api.clock,
        };
        for object in tracker.stable(self.objects.root(), self.objects.scan()) {
            let identity = object.identity();
            if done.contains(&identity) {
                continue;
            }
            match forward_document(&ports, self.documents, &object).await {
                Ok(outcome) => {
                    tracing::info!(outcome = outcome_label(&outcome), "inbox file handled");
                    done.insert(identity);
                }
                Err(error) => tracing::warn!(%error, "inbox file will be tried again"),
            }
        }
    }
}

fn outcome_label(outcome: &oncall_domain::forward::Forwarded) -> &'static str {
    match outcome {
        oncall_domain::forward::Forwarded::Published(_) => "published",
        oncall_domain::forward::Forwarded::Duplicate => "duplicate",
        oncall_domain::forward::Forwarded::Rejected(_) => "rejected",
        oncall_domain::forward::Forwarded::Pending(_) => "pending",
    }
}

/// Local callers: the static bearer tokens of `PARTNERS_FILE`.
pub struct StaticTokens(pub crate::config::PartnersConfig);

impl IdentifyCaller for StaticTokens {
    fn caller(&self, request: &Parts) -> Option<String> {
        self.0.client_of(bearer_token(&request.headers)?)
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The operator's trigger: ends the current on-call period now.
async fn end_period(State(bridge): State<Arc<LocalBridge>>, headers: HeaderMap) -> Response {
    if !bridge.is_admin(&headers) {
        // A partner's token authenticates a partner, who may not end a period (403);
        // anything else authenticates nobody (401, with how to authenticate).
        let partner = bearer_token(&headers).and_then(|t| bridge.config.partners.client_of(t));
        let error = if partner.is_some() {
            partner_api::ApiError::NotAllowed {
                action: "end an on-call period (the operator's token is needed)",
            }
        } else {
            partner_api::ApiError::Unauthenticated
        };
        let (parts, body) = error.into_response().into_parts();
        return Response::from_parts(parts, axum::body::Body::from(body));
    }
    // Whole seconds, as every other date sent to Intent.
    let now = Timestamp::from_second(Timestamp::now().as_second()).expect("a valid time");
    let period = OnCallPeriod {
        id: format!("manual-{}", now.strftime("%Y-%m-%dT%H:%M:%SZ")),
        start: now - SignedDuration::from_hours(24),
        end: now,
    };
    match bridge.close_period(&period).await {
        Ok(summary) => Json(summary).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

/// The partner API's OpenAPI 3.1 document, `openapi.yaml` at the repository root (one
/// source: embedded at build time).
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// `GET /openapi.yaml`: the partner API's description, to anyone (it holds no secret).
async fn openapi_document() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/yaml")],
        OPENAPI_YAML,
    )
        .into_response()
}

/// The partner API's router (the same one the Lambda functions serve), with the local
/// run's own routes: the operator's end of period, a health check, the uploads the
/// partner API signs (S3's part) and the API's OpenAPI document.
pub fn router(bridge: Arc<LocalBridge>) -> Router {
    let local = Router::new()
        .route("/admin/end-period", post(end_period))
        .route("/uploads/{*key}", put(uploads::put_upload))
        .route("/health", get(|| async { "ok" }))
        .route("/openapi.yaml", get(openapi_document))
        .with_state(bridge.clone());
    local.merge(partner_api::router(
        bridge.api.clone(),
        StaticTokens(bridge.config.partners.clone()),
        &Route::ALL,
    ))
}

/// The background loops: inbox polling and the on-call closer.
pub fn spawn_background(bridge: Arc<LocalBridge>) {
    let inbox = bridge.clone();
    tokio::spawn(async move {
        let mut tracker = StabilityTracker::new(inbox.config.inbox_settle);
        let mut done = HashSet::new();
        loop {
            inbox.inbox_pass(&mut tracker, &mut done).await;
            tokio::time::sleep(inbox.config.inbox_poll).await;
        }
    });
    tokio::spawn(async move {
        loop {
            if let Err(error) = bridge.closer_pass().await {
                tracing::error!(%error, "closer pass failed; trying again later");
            }
            tokio::time::sleep(bridge.config.closer_every).await;
        }
    });
}

/// A short pause used by the background loops' defaults.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// The local run's Intent clients' settings.
#[derive(Debug, Clone)]
pub struct IntentSettings {
    /// For the partner API's requests: the partner functions' budget.
    pub api: intent_client::IntentConfig,
    /// For the closer's runs: the usual one.
    pub background: intent_client::IntentConfig,
}

/// The local run's Intent settings for `hub` (the configured Intent, or the simulator's),
/// as the functions have them: `INTENT_MAX_ATTEMPTS` and `INTENT_REQUEST_TIMEOUT_MS` apply
/// (refused out of range) whichever hub; the API's requests get the partner functions'
/// budget.
pub fn intent_settings(
    settings: &settings::Settings,
    hub: intent_client::IntentConfig,
) -> Result<IntentSettings, intent_client::ConfigError> {
    let background = hub.with_attempt_settings(settings)?;
    Ok(IntentSettings {
        api: background.clone().for_partner_requests(settings),
        background,
    })
}
