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

use bridge_runtime::{CoreAdapters, CoreConfig};
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::IntentClient;
use jiff::{SignedDuration, Timestamp};
use lambda_runtime::{Error, LambdaEvent};
use oncall_domain::calendar::{CalendarConfig, OnCallCalendar, OnCallPeriod};
use oncall_domain::closure::ClosurePolicy;
use oncall_domain::domain_events::{DomainEvent, OnCallPeriodClosed};
use oncall_domain::lifecycle::Outcome;
use oncall_domain::oncall::{
    CloserPolicy, ClosingReport, Deadline, ReconcileReport, ResendReport, StragglerScope,
    close_stragglers, reconcile, resend_pending,
};
use oncall_domain::ports::{Clock, DomainEventError, PublishDomainEvents, SystemClock};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Mutex;
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

pub struct OnCallCloser<C = SystemClock> {
    pub store: DynamoDbStore,
    pub intent: IntentClient,
    pub events: EventBridgePublisher,
    pub clock: C,
    pub calendar: OnCallCalendar,
    pub policy: CloserPolicy,
    /// The contracts whose open interventions on Intent are reconciled.
    pub contracts: HashSet<String>,
    /// How late a tick may fire and still end its period.
    pub tolerance: SignedDuration,
    /// Work stops this long before the function's deadline.
    pub stop_margin: Duration,
}

pub struct CloserConfig {
    pub core: CoreConfig,
    pub calendar: CalendarConfig,
    pub policy: CloserPolicy,
    pub contracts: HashSet<String>,
    pub tolerance: SignedDuration,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_env<T: std::str::FromStr>(name: &str, what: &str) -> Result<Option<T>, Error> {
    Ok(bridge_runtime::parsed_env(name, what, |_: &T| true)?)
}

impl CloserConfig {
    /// `TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, the `INTENT_*` variables;
    /// `RECONCILE_CONTRACTS` (comma-separated); calendar: `ONCALL_TIME_ZONE`
    /// (Europe/Paris), `ONCALL_PERIOD_START` (18:00), `ONCALL_PERIOD_END` (08:00),
    /// `ONCALL_EXTRA_NON_WORKING_DAYS` (`2026-12-24,2026-12-28..2026-12-31`); closing:
    /// `AUTO_CLOSE_OUTCOME` (`partial_repair` or `done`), `AUTO_CLOSE_DESCRIPTION`,
    /// `CLOSER_CONCURRENCY` (50), `MAX_DELIVERY_ATTEMPTS` (40),
    /// `CLOSED_FILE_RETENTION_DAYS` (395), `TICK_TOLERANCE_MINUTES` (30).
    pub fn from_env() -> Result<Self, Error> {
        let calendar = CalendarConfig::from_env_values(
            env("ONCALL_TIME_ZONE").as_deref(),
            env("ONCALL_PERIOD_START").as_deref(),
            env("ONCALL_PERIOD_END").as_deref(),
            env("ONCALL_EXTRA_NON_WORKING_DAYS").as_deref(),
        )?;
        let mut policy = CloserPolicy::default();
        if let Some(outcome) = env("AUTO_CLOSE_OUTCOME") {
            policy.outcome = match Outcome::parse(outcome.trim()) {
                Some(outcome @ (Outcome::PartialRepair | Outcome::Done)) => outcome,
                _ => {
                    return Err(format!(
                        "AUTO_CLOSE_OUTCOME must be partial_repair or done, not {outcome:?}"
                    )
                    .into());
                }
            };
        }
        if let Some(description) = env("AUTO_CLOSE_DESCRIPTION") {
            policy.description = description;
        }
        if let Some(concurrency) = parse_env::<usize>("CLOSER_CONCURRENCY", "a whole number")? {
            policy.concurrency = concurrency.clamp(1, 500);
        }
        if let Some(attempts) = parse_env::<u32>("MAX_DELIVERY_ATTEMPTS", "a whole number")? {
            policy.max_attempts = attempts.max(1);
        }
        policy.closure = ClosurePolicy::with_retention_days(bridge_runtime::retention_days()?);
        let tolerance =
            parse_env::<i64>("TICK_TOLERANCE_MINUTES", "a whole number of minutes")?.unwrap_or(30);
        let core = CoreConfig::from_env()?;
        policy.attempts_per_run = core.intent.retry.max_attempts;
        Ok(Self {
            core,
            calendar,
            policy,
            contracts: env("RECONCILE_CONTRACTS")
                .unwrap_or_default()
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            tolerance: SignedDuration::from_mins(tolerance.max(0)),
        })
    }
}

impl OnCallCloser<SystemClock> {
    /// Built once per execution environment.
    pub fn new(sdk: &bridge_runtime::SdkConfig, config: CloserConfig) -> Result<Self, Error> {
        Self::with_clock(sdk, config, SystemClock)
    }
}

impl<C: Clock> OnCallCloser<C> {
    pub fn with_clock(
        sdk: &bridge_runtime::SdkConfig,
        config: CloserConfig,
        clock: C,
    ) -> Result<Self, Error> {
        let CoreAdapters {
            store,
            intent,
            events,
        } = CoreAdapters::new(sdk, config.core)?;
        Ok(Self {
            store,
            intent,
            events,
            clock,
            calendar: OnCallCalendar::new(config.calendar)?,
            policy: config.policy,
            contracts: config.contracts,
            tolerance: config.tolerance,
            stop_margin: Duration::from_secs(60),
        })
    }
}

/// Domain events gathered during a run and put on the bus in batches at its end (ten
/// thousand closures must not mean ten thousand `PutEvents` calls).
#[derive(Default)]
struct BufferedEvents(Mutex<Vec<DomainEvent>>);

impl PublishDomainEvents for BufferedEvents {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), DomainEventError> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(events);
        Ok(())
    }
}

/// What one run did.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub kind: TickKind,
    pub scheduled_time: Timestamp,
    /// The period this run closed (end-of-period) or finished closing (resend).
    pub period: Option<OnCallPeriod>,
    pub closing: Option<ClosingReport>,
    pub resend: Option<ResendReport>,
    pub reconcile: Option<ReconcileReport>,
}

/// One tick. `deadline` is when work must stop (the function's deadline minus a margin).
pub async fn run_tick<C: Clock>(
    closer: &OnCallCloser<C>,
    tick: Tick,
    deadline: Deadline,
) -> Result<RunSummary, Error> {
    let scheduled_time = tick.scheduled_time.unwrap_or_else(|| closer.clock.now());
    let period = match tick.kind {
        TickKind::EndOfPeriod => closer
            .calendar
            .period_ending_at(scheduled_time, closer.tolerance),
        TickKind::Resend => closer.calendar.last_period_ended_by(scheduled_time),
    };
    let mut summary = RunSummary {
        kind: tick.kind,
        scheduled_time,
        period: period.clone(),
        closing: None,
        resend: None,
        reconcile: None,
    };
    if tick.kind == TickKind::EndOfPeriod && period.is_none() {
        tracing::info!(%scheduled_time, "no on-call period ends at this tick; nothing to do");
        return Ok(summary);
    }
    // Domain events are gathered and put on the bus after each step, so a step that
    // fails later cannot lose those of the steps before it.
    let buffered = BufferedEvents::default();
    let mut problems = Vec::new();
    if let Some(period) = &period {
        let scope = match tick.kind {
            TickKind::EndOfPeriod => StragglerScope::OpenedBeforeEnd,
            TickKind::Resend => StragglerScope::RecordedBeforeEnd,
        };
        match close_stragglers(
            &closer.store,
            &closer.intent,
            &buffered,
            &closer.clock,
            &closer.policy,
            period,
            scope,
            deadline,
        )
        .await
        {
            Ok(report) => summary.closing = Some(report),
            Err(error) => problems.push(format!("closing: {error}")),
        }
        flush(closer, &buffered).await;
    }
    match resend_pending(
        &closer.store,
        &closer.intent,
        &buffered,
        &closer.clock,
        &closer.policy,
        deadline,
    )
    .await
    {
        Ok(report) => summary.resend = Some(report),
        Err(error) => problems.push(format!("re-sending: {error}")),
    }
    flush(closer, &buffered).await;
    if tick.kind == TickKind::EndOfPeriod && !deadline.reached() {
        match reconcile(
            &closer.store,
            &closer.intent,
            &closer.intent,
            &closer.clock,
            &closer.contracts,
            deadline,
        )
        .await
        {
            Ok(report) => summary.reconcile = Some(report),
            Err(error) => problems.push(format!("reconciling: {error}")),
        }
    }
    if tick.kind == TickKind::EndOfPeriod
        && let Some(period) = &summary.period
    {
        let event = DomainEvent::OnCallPeriodClosed(period_summary(period, &summary));
        if let Err(error) = closer.events.publish(&[event]).await {
            tracing::error!(%error, "the OnCallPeriodClosed event was not published");
        }
    }
    log_summary(&summary);
    if problems.is_empty() {
        Ok(summary)
    } else {
        // Lambda retries the tick; every step is idempotent.
        Err(problems.join("; ").into())
    }
}

/// Puts the gathered domain events on the bus (in batches of ten).
async fn flush<C>(closer: &OnCallCloser<C>, buffered: &BufferedEvents) {
    let events = std::mem::take(&mut *buffered.0.lock().expect("not poisoned"));
    if !events.is_empty()
        && let Err(error) = closer.events.publish(&events).await
    {
        tracing::error!(%error, "domain events of the run were not all published");
    }
}

fn period_summary(period: &OnCallPeriod, summary: &RunSummary) -> OnCallPeriodClosed {
    oncall_domain::oncall::period_summary(
        period,
        &summary.closing.clone().unwrap_or_default(),
        &summary.resend.clone().unwrap_or_default(),
        &summary.reconcile.clone().unwrap_or_default(),
    )
}

/// One structured log line with the counts, and the same counts as CloudWatch metrics
/// (Embedded Metric Format: a JSON line CloudWatch turns into metrics, no API call).
fn log_summary(summary: &RunSummary) {
    let closing = summary.closing.clone().unwrap_or_default();
    let resend = summary.resend.clone().unwrap_or_default();
    let reconcile = summary.reconcile.clone().unwrap_or_default();
    tracing::info!(
        kind = ?summary.kind,
        period = summary.period.as_ref().map(|p| p.id.as_str()).unwrap_or("none"),
        files_closed = closing.closed,
        already_closed = closing.already_closed,
        close_errors = closing.errors,
        resent = resend.delivered,
        still_pending = resend.still_pending,
        marked_failed = resend.marked_failed,
        failed = resend.failed,
        unknown_on_intent = reconcile.unknown_on_intent.len(),
        closing_resent = reconcile.closing_resent,
        stopped_early = closing.stopped_early || resend.stopped_early,
        "on-call closer run"
    );
    let metrics = serde_json::json!({
        "_aws": {
            "Timestamp": Timestamp::now().as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": "OnCallBridge",
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "FilesClosed", "Unit": "Count"},
                    {"Name": "EventsResent", "Unit": "Count"},
                    {"Name": "EventsStillPending", "Unit": "Count"},
                    {"Name": "EventsMarkedFailed", "Unit": "Count"},
                    {"Name": "UnknownOnIntent", "Unit": "Count"}
                ]
            }]
        },
        "Function": "oncall-closer",
        "FilesClosed": closing.closed,
        "EventsResent": resend.delivered,
        "EventsStillPending": resend.still_pending,
        "EventsMarkedFailed": resend.marked_failed,
        "UnknownOnIntent": reconcile.unknown_on_intent.len(),
    });
    println!("{metrics}");
}

/// The runtime's entry: one span per invocation; work stops a margin before the deadline.
pub async fn handle_invocation<C: Clock>(
    closer: &OnCallCloser<C>,
    event: LambdaEvent<Tick>,
) -> Result<RunSummary, Error> {
    let remaining = event
        .context
        .deadline()
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    let deadline = Deadline {
        stop_at: Some(Instant::now() + remaining.saturating_sub(closer.stop_margin)),
    };
    let span = tracing::info_span!(
        "invocation",
        request_id = %event.context.request_id,
        kind = ?event.payload.kind
    );
    run_tick(closer, event.payload, deadline)
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
