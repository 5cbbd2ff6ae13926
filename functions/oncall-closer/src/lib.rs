//! The on-call closer, driven by two EventBridge Scheduler schedules (Europe/Paris):
//!
//! - `{"kind": "end-of-period", "scheduledTime": "<aws.scheduler.scheduled-time>"}` at the
//!   end time of every day: when the calendar says a period ends at that tick, every file
//!   still open from it is closed, pending events are re-sent, Intent's own open list is
//!   reconciled, and an `OnCallPeriodClosed` summary is published. On other days (a
//!   Saturday 08:00 tick) it does nothing.
//! - `{"kind": "resend", …}` every few minutes: re-sends pending events (with backoff
//!   across runs), and finishes closing the last ended period if a previous run stopped
//!   early near its deadline.

use aws_wiring::{CoreAdapters, CoreConfig, InvocationError};
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::IntentClient;
use jiff::{SignedDuration, Timestamp};
use lambda_runtime::{Error, LambdaEvent};
use oncall_domain::calendar::{CalendarConfig, OnCallCalendar};
use oncall_domain::closer_run::{BatchedEvents, CloserPorts, RunKind, RunReport, run_closer};
use oncall_domain::closure::ClosurePolicy;
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::domain_events::DomainEvent;
use oncall_domain::lifecycle::Outcome;
use oncall_domain::oncall::{CloserPolicy, Deadline};
use oncall_domain::ports::{Clock, PublishDomainEvents, SystemClock};
use s3_documents::S3Documents;
use serde::{Deserialize, Serialize};
use settings::Settings;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tracing::Instrument;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TickKind {
    EndOfPeriod,
    Resend,
}

/// The Scheduler's input.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tick {
    pub kind: TickKind,
    /// `<aws.scheduler.scheduled-time>`; the invocation time when absent.
    #[serde(default)]
    pub scheduled_time: Option<Timestamp>,
}

pub struct CloserFunction<C = SystemClock> {
    pub store: DynamoDbStore,
    pub intent: IntentClient,
    pub events: EventBridgePublisher,
    /// The documents bucket: waiting quitus are forwarded from it again.
    pub objects: S3Documents,
    pub clock: C,
    pub calendar: OnCallCalendar,
    pub documents: DocumentPolicy,
    pub policy: CloserPolicy,
    /// The contracts whose open interventions on Intent are reconciled.
    pub contracts: HashSet<String>,
    /// How late a tick may fire and still end its period.
    pub tolerance: SignedDuration,
    /// No new work starts this long before the function's deadline.
    pub stop_margin: Duration,
    /// Work still running this long before the function's deadline is cut off, so the
    /// summary, the events and the metrics still go out.
    pub hard_stop_margin: Duration,
}

pub struct CloserConfig {
    pub core: CoreConfig,
    pub calendar: CalendarConfig,
    pub policy: CloserPolicy,
    pub documents: DocumentPolicy,
    pub contracts: HashSet<String>,
    pub tolerance: SignedDuration,
    pub s3_force_path_style: bool,
}

impl CloserConfig {
    /// `TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, the `INTENT_*` variables;
    /// `RECONCILE_CONTRACTS` (comma-separated); calendar: `ONCALL_TIME_ZONE`
    /// (Europe/Paris), `ONCALL_PERIOD_START` (18:00), `ONCALL_PERIOD_END` (08:00),
    /// `ONCALL_EXTRA_NON_WORKING_DAYS` (`2026-12-24,2026-12-28..2026-12-31`); closing:
    /// `AUTO_CLOSE_OUTCOME` (`partial_repair` or `done`), `AUTO_CLOSE_DESCRIPTION`,
    /// `CLOSER_CONCURRENCY` (1–500, default 50), `CLOSED_FILE_RETENTION_DAYS` (1–3650,
    /// default 395), `TICK_TOLERANCE_MINUTES` (0–720, default 30); waiting documents:
    /// `MAX_DOCUMENT_BYTES`, `S3_FORCE_PATH_STYLE`.
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        let calendar = CalendarConfig::from_env_values(
            settings.text("ONCALL_TIME_ZONE").as_deref(),
            settings.text("ONCALL_PERIOD_START").as_deref(),
            settings.text("ONCALL_PERIOD_END").as_deref(),
            settings.text("ONCALL_EXTRA_NON_WORKING_DAYS").as_deref(),
        )?;
        let mut policy = CloserPolicy::default();
        if let Some(outcome) =
            settings.parsed("AUTO_CLOSE_OUTCOME", "partial_repair or done", |value| {
                match Outcome::parse(value) {
                    Some(outcome @ (Outcome::PartialRepair | Outcome::Done)) => Some(outcome),
                    _ => None,
                }
            })?
        {
            policy.outcome = outcome;
        }
        if let Some(description) = settings.text("AUTO_CLOSE_DESCRIPTION") {
            policy.description = description;
        }
        policy.concurrency = settings.number("CLOSER_CONCURRENCY", 1..=500, policy.concurrency)?;
        policy.closure = ClosurePolicy::with_retention_days(aws_wiring::retention_days(settings)?);
        let tolerance = settings.number("TICK_TOLERANCE_MINUTES", 0..=720, 30)?;
        let core = CoreConfig::from_settings(settings)?;
        policy.attempts_per_run = core.intent.retry.max_attempts;
        Ok(Self {
            core,
            calendar,
            policy,
            documents: aws_wiring::document_policy(settings)?,
            s3_force_path_style: settings.flag("S3_FORCE_PATH_STYLE", false)?,
            contracts: settings
                .text("RECONCILE_CONTRACTS")
                .unwrap_or_default()
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            tolerance: SignedDuration::from_mins(tolerance),
        })
    }
}

impl CloserFunction<SystemClock> {
    /// Built once per execution environment.
    pub fn new(sdk: &aws_wiring::SdkConfig, config: CloserConfig) -> Result<Self, Error> {
        Self::with_clock(sdk, config, SystemClock)
    }
}

impl<C: Clock> CloserFunction<C> {
    pub fn with_clock(
        sdk: &aws_wiring::SdkConfig,
        config: CloserConfig,
        clock: C,
    ) -> Result<Self, Error> {
        let CoreAdapters {
            store,
            intent,
            events,
        } = CoreAdapters::new(sdk, config.core)?;
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(config.s3_force_path_style)
            .build();
        Ok(Self {
            store,
            intent,
            events,
            objects: S3Documents::new(aws_sdk_s3::Client::from_conf(s3)),
            clock,
            calendar: OnCallCalendar::new(config.calendar)?,
            documents: config.documents,
            policy: config.policy,
            contracts: config.contracts,
            tolerance: config.tolerance,
            stop_margin: Duration::from_secs(60),
            hard_stop_margin: Duration::from_secs(15),
        })
    }
}

/// What one run did.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub kind: TickKind,
    pub scheduled_time: Timestamp,
    #[serde(flatten)]
    pub report: RunReport,
}

/// One tick. `deadline` is when new work stops (the function's deadline minus a margin);
/// `hard_stop` (if any) is when work still running is cut off: the summary, the domain
/// events gathered so far and the metrics still go out after it, and the next tick
/// continues.
pub async fn run_tick<C: Clock>(
    closer: &CloserFunction<C>,
    tick: Tick,
    deadline: Deadline,
    hard_stop: Option<Instant>,
) -> Result<RunSummary, InvocationError> {
    let scheduled_time = tick.scheduled_time.unwrap_or_else(|| closer.clock.now());
    let (kind, period) = match tick.kind {
        TickKind::EndOfPeriod => (
            RunKind::PeriodEnd,
            closer
                .calendar
                .period_ending_at(scheduled_time, closer.tolerance),
        ),
        TickKind::Resend => (
            RunKind::Resend,
            closer.calendar.last_period_ended_by(scheduled_time),
        ),
    };
    let mut summary = RunSummary {
        kind: tick.kind,
        scheduled_time,
        report: RunReport::default(),
    };
    if tick.kind == TickKind::EndOfPeriod && period.is_none() {
        tracing::info!(%scheduled_time, "no on-call period ends at this tick; nothing to do");
        return Ok(summary);
    }
    // Domain events go to the bus ten at a time as the run goes; the rest at its end.
    let events = BatchedEvents::new(&closer.events);
    let ports = CloserPorts {
        store: &closer.store,
        intent: &closer.intent,
        events: &events,
        clock: &closer.clock,
        objects: &closer.objects,
        policy: &closer.policy,
        documents: closer.documents,
        contracts: &closer.contracts,
    };
    let run = run_closer(&ports, kind, period.as_ref(), deadline, &mut summary.report);
    match hard_stop {
        Some(at) => {
            let cut_off = tokio::time::timeout_at(at.into(), run).await.is_err();
            if cut_off {
                tracing::error!(
                    "the run was cut off before its steps were done; the next tick continues"
                );
                summary.report.interrupted = true;
            }
        }
        None => run.await,
    }
    if let Err(error) = events.flush().await {
        tracing::error!(%error, "domain events of the run were not all published");
    }
    if tick.kind == TickKind::EndOfPeriod
        && let Some(period_summary) = summary.report.period_summary()
        && let Err(error) = closer
            .events
            .publish(&[DomainEvent::OnCallPeriodClosed(period_summary)])
            .await
    {
        tracing::error!(%error, "the OnCallPeriodClosed event was not published");
    }
    log_summary(&summary, closer.clock.now());
    if summary.report.problems.is_empty() {
        Ok(summary)
    } else {
        // Lambda retries the tick; every step is idempotent.
        Err(InvocationError::Retryable(
            summary.report.problems.join("; "),
        ))
    }
}

/// One structured log line with the counts, and the same counts as CloudWatch metrics
/// (Embedded Metric Format: a JSON line CloudWatch turns into metrics, no API call).
fn log_summary(summary: &RunSummary, now: Timestamp) {
    let report = &summary.report;
    let closing = report.closing.clone().unwrap_or_default();
    let resend = report.resend.clone().unwrap_or_default();
    let documents = report.documents.clone().unwrap_or_default();
    let reconcile = report.reconcile.clone().unwrap_or_default();
    let backlog = report.backlog.clone();
    let oldest_pending_age = backlog
        .as_ref()
        .and_then(|b| b.oldest_pending_since)
        .map_or(0, |since| now.duration_since(since).as_secs().max(0));
    tracing::info!(
        kind = ?summary.kind,
        period = report.period.as_ref().map(|p| p.id.as_str()).unwrap_or("none"),
        files_closed = closing.closed,
        closings_refused = closing.delivery_failed,
        closings_pending = closing.delivery_pending,
        already_closed = closing.already_closed,
        close_errors = closing.errors,
        resent = resend.delivered,
        still_pending = resend.still_pending,
        marked_failed = resend.marked_failed,
        failed = resend.failed,
        documents_published = documents.published,
        documents_waiting = documents.still_pending,
        unknown_on_intent = reconcile.unknown_on_intent.len(),
        closing_resent = reconcile.closing_resent,
        pending_events = backlog.as_ref().map(|b| b.pending_events),
        failed_events = backlog.as_ref().map(|b| b.failed_events),
        oldest_pending_age_seconds = oldest_pending_age,
        stopped_early = report.stopped_early(),
        "on-call closer run"
    );
    let mut metrics = serde_json::json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": "OnCallBridge",
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "FilesClosed", "Unit": "Count"},
                    {"Name": "EventsResent", "Unit": "Count"},
                    {"Name": "EventsStillPending", "Unit": "Count"},
                    {"Name": "EventsMarkedFailed", "Unit": "Count"},
                    {"Name": "DocumentsForwarded", "Unit": "Count"},
                    {"Name": "UnknownOnIntent", "Unit": "Count"},
                    {"Name": "RunStoppedEarly", "Unit": "Count"}
                ]
            }]
        },
        "Function": "oncall-closer",
        "FilesClosed": closing.closed,
        "EventsResent": resend.delivered,
        "EventsStillPending": resend.still_pending,
        // Refused in this run, wherever it happened: a closing at the period's end or a
        // re-sent event.
        "EventsMarkedFailed": resend.marked_failed + closing.delivery_failed,
        "DocumentsForwarded": documents.published,
        "UnknownOnIntent": reconcile.unknown_on_intent.len(),
        "RunStoppedEarly": u8::from(report.stopped_early()),
    });
    if let Some(backlog) = &backlog {
        metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array_mut()
            .expect("an array")
            .extend([
                serde_json::json!({"Name": "PendingEvents", "Unit": "Count"}),
                serde_json::json!({"Name": "OldestPendingEventAge", "Unit": "Seconds"}),
                serde_json::json!({"Name": "FailedEvents", "Unit": "Count"}),
                serde_json::json!({"Name": "PendingDocuments", "Unit": "Count"}),
            ]);
        metrics["PendingEvents"] = backlog.pending_events.into();
        metrics["OldestPendingEventAge"] = oldest_pending_age.into();
        metrics["FailedEvents"] = backlog.failed_events.into();
        metrics["PendingDocuments"] = backlog.pending_documents.into();
    }
    println!("{metrics}");
}

/// The runtime's entry: one span per invocation; work stops a margin before the deadline.
pub async fn handle_invocation<C: Clock>(
    closer: &CloserFunction<C>,
    event: LambdaEvent<Tick>,
) -> Result<RunSummary, InvocationError> {
    let remaining = event
        .context
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    let now = Instant::now();
    let deadline = Deadline {
        stop_at: Some(now + remaining.saturating_sub(closer.stop_margin)),
    };
    let hard_stop = now + remaining.saturating_sub(closer.hard_stop_margin);
    let span = tracing::info_span!(
        "invocation",
        request_id = %event.context.request_id,
        kind = ?event.payload.kind
    );
    run_tick(closer, event.payload, deadline, Some(hard_stop))
        .instrument(span)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedulers_inputs_parse() {
        // As template.yaml's schedules send them, once Scheduler substituted the time.
        let end: Tick = serde_json::from_str(
            r#"{"kind":"end-of-period","scheduledTime":"2026-11-30T07:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(end.kind, TickKind::EndOfPeriod);
        assert_eq!(
            end.scheduled_time,
            Some("2026-11-30T07:00:00Z".parse().unwrap())
        );
        let resend: Tick = serde_json::from_str(r#"{"kind":"resend"}"#).unwrap();
        assert_eq!(resend.kind, TickKind::Resend);
        assert!(resend.scheduled_time.is_none());
        assert!(serde_json::from_str::<Tick>(r#"{"kind":"sometimes"}"#).is_err());
    }
}
