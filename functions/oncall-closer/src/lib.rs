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

mod config;
mod metrics;

use aws_wiring::{CoreAdapters, InvocationError};
pub use config::CloserConfig;
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::IntentClient;
use jiff::{SignedDuration, Timestamp};
use lambda_runtime::{Error, LambdaEvent};
use oncall_domain::calendar::{CalendarConfigError, OnCallCalendar};
use oncall_domain::closer_run::{BatchedEvents, CloserPorts, RunKind, RunReport, run_closer};
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::domain_events::DomainEvent;
use oncall_domain::oncall::{CloserPolicy, Deadline};
use oncall_domain::outbox::publish_kept;
use oncall_domain::ports::{Clock, Outbox, ReadBacklog, SystemClock};
use s3_documents::S3Documents;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use telemetry::metrics::{Invocation, MetricsSink};
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
    /// Refused: every tick does the rest of its work, ends no period and fails.
    pub calendar: Result<OnCallCalendar, CalendarConfigError>,
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
    /// Where each invocation's metrics go (standard output).
    pub metrics: MetricsSink,
}

/// `TransactWriteItems` calls in flight at once, each carrying the transactions of up to
/// 25 files (closings) or 33 (delivery records) submitted meanwhile.
const GROUP_COMMIT_CALLS: usize = 4;

/// The function's name in its metrics (`Function`).
pub const FUNCTION: &str = "oncall-closer";

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
        let core = CoreAdapters::new(sdk, config.core)?;
        let objects = core.documents_reader(sdk, config.s3_force_path_style)?;
        let CoreAdapters {
            store,
            intent,
            events,
            ..
        } = core;
        // The closer writes many files at once: their transactions share calls.
        let store = store.with_group_commit(GROUP_COMMIT_CALLS);
        Ok(Self {
            store,
            intent,
            events,
            objects,
            clock,
            calendar: config.calendar.and_then(OnCallCalendar::new),
            documents: config.documents,
            policy: config.policy,
            contracts: config.contracts,
            tolerance: config.tolerance,
            stop_margin: Duration::from_secs(60),
            hard_stop_margin: Duration::from_secs(15),
            metrics: MetricsSink::stdout(),
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

/// How long after a period's end a resend tick leaves its closing to the end's own run.
const END_RUN_FIRST: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

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
    let mut summary = RunSummary {
        kind: tick.kind,
        scheduled_time,
        report: RunReport::default(),
    };
    let (kind, period) = match (&closer.calendar, tick.kind) {
        // No calendar, no period: what does not need one (re-sending, waiting documents,
        // the outbox) is done, and the tick fails (the errors alarm) until it is fixed.
        (Err(error), _) => {
            summary.report.problems.push(format!(
                "the on-call calendar is refused ({error}): no period is ended until it is fixed"
            ));
            (RunKind::Resend, None)
        }
        (Ok(calendar), TickKind::EndOfPeriod) => (
            RunKind::PeriodEnd,
            calendar.period_ending_at(scheduled_time, closer.tolerance),
        ),
        // A resend tick finishes the last ended period's closing, but not in the first
        // minutes after its end: at the end both ticks fire, in either order, and the
        // end's run closes the period (its summary counts what it closed).
        (Ok(calendar), TickKind::Resend) => (
            RunKind::Resend,
            calendar
                .last_period_ended_by(scheduled_time)
                .filter(|period| {
                    period
                        .end
                        .checked_add(END_RUN_FIRST)
                        .is_ok_and(|after| scheduled_time >= after)
                }),
        ),
    };
    if tick.kind == TickKind::EndOfPeriod && kind == RunKind::PeriodEnd && period.is_none() {
        tracing::info!(%scheduled_time, "no on-call period ends at this tick; nothing to do");
        return Ok(summary);
    }
    // Domain events go to the bus ten at a time as the run goes; the rest at its end.
    let events = BatchedEvents::new(&closer.events, &closer.store);
    let closings_stored = std::sync::atomic::AtomicUsize::new(0);
    let ports = CloserPorts {
        store: &closer.store,
        intent: &closer.intent,
        events: &events,
        clock: &closer.clock,
        objects: &closer.objects,
        policy: &closer.policy,
        documents: closer.documents,
        contracts: &closer.contracts,
        closings_stored: &closings_stored,
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
                // Files whose closing was stored, cut off while it was sent: closed (no later
                // run finds them open to count them), their closing not known on Intent.
                if let Some(closing) = summary.report.closing.as_mut() {
                    let unsettled = closings_stored
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .saturating_sub(closing.closed);
                    closing.closed += unsettled;
                    closing.delivery_pending += unsettled;
                }
            }
        }
        None => run.await,
    }
    // Reconciling with Intent is the end run's alone (re-send ticks do not): one that did
    // not run to its end (the deadline reached, the run cut off) fails the tick, which is
    // tried again; its closings done, the retry reconciles.
    if kind == RunKind::PeriodEnd
        && !closer.contracts.is_empty()
        && summary
            .report
            .reconcile
            .as_ref()
            .is_none_or(|reconciled| reconciled.stopped_early)
    {
        summary.report.problems.push(
            "reconciling with Intent did not run to its end before the run's deadline; the tick is tried again"
                .into(),
        );
    }
    // Cut off before its last step, the run has not read the backlog: it is read now, for
    // the summary and the metrics (the backlog alarms watch every run; a slow Intent
    // cutting every run off is the outage they are for), within a third of the time the
    // tail has: the rest keeps and publishes the period's summary.
    if let Some(at) = hard_stop
        && summary.report.interrupted
        && summary.report.backlog.is_none()
    {
        let now = Instant::now();
        let tail_ends = at + closer.hard_stop_margin.saturating_sub(LOG_LINE_TIME);
        let until = now + tail_ends.saturating_duration_since(now) / 3;
        match tokio::time::timeout_at(until.into(), closer.store.backlog()).await {
            Ok(Ok(backlog)) => summary.report.backlog = Some(backlog),
            Ok(Err(error)) => summary
                .report
                .problems
                .push(format!("reading the backlog: {error}")),
            Err(_) => {
                tracing::error!("the backlog could not be read before the function's deadline")
            }
        }
    }
    // The end's run always sums its period up; a resend tick that closed files of the
    // period (the end's run came late, or stopped early), or whose reconciliation of it
    // sent a lost closing again, counts that in a summary of its own, so that the counts
    // add up across the period's summaries. Interventions unknown to us are a state, not
    // something a run did: told again only by the reconciliation that settles the period
    // (once: the end's run may not have listed Intent at all), not at every re-send run.
    let closed_files = summary
        .report
        .closing
        .as_ref()
        .is_some_and(|closing| closing.closed > 0);
    let reconciled_something = summary.report.reconcile.as_ref().is_some_and(|reconciled| {
        reconciled.closing_resent + reconciled.closing_resend_refused > 0
            || (reconciled.noted && !reconciled.unknown_on_intent.is_empty())
    });
    let period_summary =
        if tick.kind == TickKind::EndOfPeriod || closed_files || reconciled_something {
            summary.report.period_summary()
        } else {
            None
        };
    // The run's last domain events and its period's summary: after a hard stop, within
    // what is left of the function's time (less a moment for the log line and metrics),
    // whatever the bus does.
    let tail = publish_run_events(closer, &events, period_summary);
    let problems = match hard_stop {
        Some(at) => {
            let until = at + closer.hard_stop_margin.saturating_sub(LOG_LINE_TIME);
            tokio::time::timeout_at(until.into(), tail)
                .await
                .unwrap_or_else(|_| {
                    tracing::error!("the run's last domain events were cut off before the function's deadline");
                    vec![
                        "publishing the run's last domain events and its summary did not end before the function's deadline (the events stay in the outbox for the next run; the tick is tried again)"
                            .to_string(),
                    ]
                })
        }
        None => tail.await,
    };
    summary.report.problems.extend(problems);
    if let Some(error) = events.take_clearing_error() {
        summary.report.problems.push(format!(
            "clearing published domain events from the outbox: {error} (they go out again, same eventId, until a clearing works)"
        ));
    }
    // The log line always; the metrics as the invocation's (none when a test or a tool runs
    // a tick outside one).
    metrics::log_summary(&summary, closer.clock.now());
    if summary.report.problems.is_empty() {
        Ok(summary)
    } else {
        // Lambda retries the tick; every step is idempotent.
        Err(InvocationError::Retryable(
            summary.report.problems.join("; "),
        ))
    }
}

/// What the run keeps, after publishing its last domain events, to write its log line and
/// metrics before the function's deadline.
const LOG_LINE_TIME: Duration = Duration::from_secs(2);

/// Keeps the period's summary in the outbox, publishes the domain events the run gathered
/// and not yet published, then the summary (taken out of the outbox once on the bus); the
/// problems met. The summary is kept first: should the bus hang until the run is cut off,
/// it waits in the outbox with the run's other events.
async fn publish_run_events<C: Clock>(
    closer: &CloserFunction<C>,
    events: &BatchedEvents<'_, EventBridgePublisher, DynamoDbStore>,
    period_summary: Option<oncall_domain::domain_events::OnCallPeriodClosed>,
) -> Vec<String> {
    let summary: Vec<DomainEvent> = period_summary
        .map(DomainEvent::OnCallPeriodClosed)
        .into_iter()
        .collect();
    let kept = if summary.is_empty() {
        Ok(())
    } else {
        closer.store.keep(&summary, closer.clock.now()).await
    };
    let mut problems = Vec::new();
    if let Err(error) = events.flush().await {
        tracing::error!(%error, "domain events of the run were not all published");
        problems.push(format!(
            "publishing the run's last domain events (they stay in the outbox for the next run): {error}"
        ));
    }
    if !summary.is_empty()
        && let Err(error) = publish_kept(&closer.store, &closer.events, &summary, kept).await
    {
        tracing::error!(%error, "the OnCallPeriodClosed event was neither published nor kept");
        problems.push(format!(
            "the period's summary was neither published nor kept in the outbox: {error}"
        ));
    }
    problems
}

/// The runtime's entry: one span per invocation (inside the runtime's, which carries the
/// request and trace ids) and its metrics; work stops a margin before the deadline.
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
    let span = tracing::info_span!("invocation", kind = ?event.payload.kind);
    let invocation = Invocation::new(
        FUNCTION,
        &event.context.request_id,
        event.context.xray_trace_id.as_deref(),
        closer.metrics.clone(),
    );
    invocation
        .run(run_tick(closer, event.payload, deadline, Some(hard_stop)))
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
