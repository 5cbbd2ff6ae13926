//! Use cases of the on-call closer: at the end of each on-call period, nothing stays open
//! on Intent ("Aucune intervention ne doit rester ouverte sur Intent").
//!
//! - [`close_stragglers`]: every file still open that was opened before the period's end
//!   is closed (by default `closed/partial_repair`: the regular maintenance provider takes
//!   over), with bounded concurrency. A partner closing the same file at the same moment
//!   wins or loses cleanly (the closure is one conditional write); running the same
//!   period twice finds nothing left to close.
//! - [`resend_pending`]: every event Intent has not acknowledged is sent again, in order
//!   per file, with a backoff across runs; after a bounded number of attempts it is
//!   marked failed and reported, never silently dropped.
//! - [`reconcile`]: what Intent itself still shows open is compared with our files: a file
//!   we closed gets its closing event sent again; a file we never knew is reported.
//!
//! Each stops scheduling new work when the deadline is near; the next tick continues.

use crate::calendar::OnCallPeriod;
use crate::closure::{CloseError, Closer, ClosurePolicy, close_loaded_intervention};
use crate::datetime::IntentDateTime;
use crate::delivery::deliver_in_order;
use crate::file::{Delivery, InterventionFile};
use crate::lifecycle::{FileState, Outcome};
use crate::model::{FileId, InterventionLog};
use crate::ports::{
    Clock, CloseFile, HubIntervention, ListOpenFiles, ListOpenOnIntent, ListPendingEvents,
    LoadFile, PublishDomainEvents, PublishToIntent, RecordDelivery, SendLease, StoreError,
};
use crate::sensitive::Sensitive;
use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::collections::HashSet;
use tracing::Instrument;

/// How the closer closes and re-sends.
#[derive(Debug, Clone)]
pub struct CloserPolicy {
    pub outcome: Outcome,
    pub description: String,
    /// Files handled at once (each costs a few DynamoDB calls and one Intent call).
    pub concurrency: usize,
    pub closure: ClosurePolicy,
    /// HTTP attempts after which an event is marked failed.
    pub max_attempts: u32,
    /// Backoff across runs: the wait after a run's failure doubles from `base_backoff`
    /// with every run that failed, up to `max_backoff`.
    pub base_backoff: SignedDuration,
    pub max_backoff: SignedDuration,
    /// HTTP attempts one delivery makes within a run (to count runs from attempts).
    pub attempts_per_run: u32,
}

pub const AUTOMATIC_CLOSURE_DESCRIPTION: &str = "Clôture automatique en fin de période d'astreinte : le prestataire de maintenance habituel prend le relais.";

impl Default for CloserPolicy {
    fn default() -> Self {
        Self {
            outcome: Outcome::PartialRepair,
            description: AUTOMATIC_CLOSURE_DESCRIPTION.to_string(),
            concurrency: 50,
            closure: ClosurePolicy::default(),
            max_attempts: 40,
            base_backoff: SignedDuration::from_mins(1),
            max_backoff: SignedDuration::from_hours(1),
            attempts_per_run: 4,
        }
    }
}

impl CloserPolicy {
    /// Whether a pending event is due for another try at `now`.
    pub fn is_due(&self, delivery: &Delivery, now: Timestamp) -> bool {
        let Delivery::Pending {
            attempts,
            last_attempt_at,
            ..
        } = delivery
        else {
            return false;
        };
        let Some(last) = last_attempt_at else {
            return true;
        };
        let runs = attempts.div_ceil(self.attempts_per_run.max(1)).max(1);
        let factor = 1i64 << (runs - 1).min(20);
        let wait = self
            .base_backoff
            .checked_mul(factor as i32)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        last.checked_add(wait).ok().is_none_or(|due| due <= now)
    }
}

pub use crate::delivery::Deadline;

/// Runs `work` on every file, at most `limit` at once. Work not yet started when the
/// deadline is reached is skipped (`None`): the next tick picks it up.
async fn for_each_bounded<F, Fut, R>(
    files: Vec<FileId>,
    limit: usize,
    deadline: Deadline,
    work: F,
) -> Vec<Option<R>>
where
    F: Fn(FileId) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    futures_util::stream::iter(files)
        .map(|id| {
            // Called as a slot frees up, i.e. when the work would start.
            let started = (!deadline.reached()).then(|| work(id));
            async move {
                match started {
                    Some(work) => Some(work.await),
                    None => None,
                }
            }
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await
}

/// The closing event the closer sends for a straggler: the opening's identity and
/// location, the configured outcome and description, dated at the period's end. The
/// tenant's contacts are not repeated.
pub fn automatic_closure(
    opening: &InterventionLog,
    outcome: Outcome,
    description: &str,
    period_end: Timestamp,
    now: Timestamp,
) -> InterventionLog {
    let event = outcome.event();
    let event_date = IntentDateTime::from_timestamp(period_end.max(opening.event_date.timestamp()));
    InterventionLog {
        status: event.status(),
        event,
        event_date,
        log_date: IntentDateTime::from_timestamp(now.max(event_date.timestamp())),
        description: Some(Sensitive::new(description.to_string())),
        contacts: None,
        equipment_working_order: None,
        equipment_status: None,
        occupant_signature: None,
        extra: Sensitive::default(),
        ..opening.clone()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClosingReport {
    /// Files we closed in this run.
    pub closed: usize,
    /// Files someone else closed first (a partner at the same moment).
    pub already_closed: usize,
    /// Files that could not be closed (store errors); the next tick tries again.
    pub errors: usize,
    /// The deadline came before every file was handled.
    pub stopped_early: bool,
}

/// Which open files a closing pass takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StragglerScope {
    /// Every file opened (by its `eventDate`) before the period's end: the end-of-period
    /// run.
    OpenedBeforeEnd,
    /// Only those our table already held at the period's end: finishing a run that had
    /// to stop early, without touching a claim for a call of the night that a partner
    /// files during the day (the next period's end closes it).
    RecordedBeforeEnd,
}

/// Closes every file still open that was opened before `period.end` (within `scope`).
#[allow(clippy::too_many_arguments)]
pub async fn close_stragglers<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: &CloserPolicy,
    period: &OnCallPeriod,
    scope: StragglerScope,
    deadline: Deadline,
) -> Result<ClosingReport, StoreError>
where
    S: ListOpenFiles + LoadFile + CloseFile + RecordDelivery + SendLease,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let stragglers = store.open_files_opened_before(period.end).await?;
    tracing::info!(count = stragglers.len(), period = %period.id, "open files to close");
    let mut report = ClosingReport::default();
    let outcomes: Vec<Option<Result<bool, CloseError>>> = futures_util::stream::iter(stragglers)
        .map(|id| async move {
            if deadline.reached() {
                return None;
            }
            let span = tracing::info_span!(
                "straggler",
                reference = %id.reference,
                contract = %id.contract_reference
            );
            Some(
                close_one(store, intent, events, clock, policy, period, scope, &id)
                    .instrument(span)
                    .await,
            )
        })
        .buffer_unordered(policy.concurrency.max(1))
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            None => report.stopped_early = true,
            Some(Ok(true)) => report.closed += 1,
            Some(Ok(false)) => report.already_closed += 1,
            Some(Err(error)) => {
                tracing::error!(%error, "a straggler could not be closed; the next tick retries");
                report.errors += 1;
            }
        }
    }
    Ok(report)
}

/// Closes one file; `Ok(false)` when someone else closed it first (or it is out of
/// `scope`).
#[allow(clippy::too_many_arguments)]
async fn close_one<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: &CloserPolicy,
    period: &OnCallPeriod,
    scope: StragglerScope,
    id: &FileId,
) -> Result<bool, CloseError>
where
    S: LoadFile + CloseFile + RecordDelivery + SendLease,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let Some(file) = store.load_file(id).await? else {
        return Ok(false);
    };
    if file.state != FileState::Open {
        return Ok(false);
    }
    let Some(opening) = file.opening() else {
        return Ok(false);
    };
    if scope == StragglerScope::RecordedBeforeEnd && opening.recorded_at > period.end {
        return Ok(false);
    }
    let log = automatic_closure(
        &opening.log,
        policy.outcome,
        &policy.description,
        period.end,
        clock.now(),
    );
    match close_loaded_intervention(
        store,
        intent,
        events,
        clock,
        policy.closure,
        Closer::OnCallCloser,
        log,
        Some(file),
    )
    .await
    {
        Ok(_) => Ok(true),
        // A partner's closure won the race: the file is closed, which is all we want.
        Err(CloseError::Refused { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResendReport {
    /// Events Intent accepted in this run.
    pub delivered: usize,
    /// Events still pending after this run (not due yet, or failing again).
    pub still_pending: usize,
    /// Events marked failed in this run (attempts exhausted).
    pub marked_failed: usize,
    /// Events already failed (Intent refused them, or attempts exhausted earlier).
    pub failed: usize,
    pub stopped_early: bool,
}

/// Sends again every event Intent has not acknowledged, in order per file.
pub async fn resend_pending<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: &CloserPolicy,
    deadline: Deadline,
) -> Result<ResendReport, StoreError>
where
    S: ListPendingEvents + LoadFile + RecordDelivery + SendLease,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let files = store.files_with_pending_events().await?;
    let mut report = ResendReport::default();
    let results = for_each_bounded(files, policy.concurrency, deadline, |id| async move {
        let span = tracing::info_span!(
            "resend",
            reference = %id.reference,
            contract = %id.contract_reference
        );
        resend_file(store, intent, events, clock, policy, &id)
            .instrument(span)
            .await
    })
    .await;
    for result in results {
        match result {
            None => report.stopped_early = true,
            Some(Ok(part)) => {
                report.delivered += part.delivered;
                report.still_pending += part.still_pending;
                report.marked_failed += part.marked_failed;
                report.failed += part.failed;
            }
            Some(Err(error)) => {
                tracing::error!(%error, "a file's pending events could not be re-sent");
                report.still_pending += 1;
            }
        }
    }
    Ok(report)
}

async fn resend_file<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: &CloserPolicy,
    id: &FileId,
) -> Result<ResendReport, StoreError>
where
    S: LoadFile + RecordDelivery + SendLease,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let mut report = ResendReport::default();
    let Some(mut file) = store.load_file(id).await? else {
        return Ok(report);
    };
    let now = clock.now();
    // The first undelivered event decides: later ones wait behind it.
    let Some(first) = file
        .events
        .iter()
        .find(|event| !matches!(event.delivery, Delivery::Delivered { .. }))
    else {
        return Ok(report);
    };
    if first.delivery.attempts() >= policy.max_attempts
        && let Delivery::Pending { last_error, .. } = &first.delivery
    {
        let failed = Delivery::Failed {
            attempts: first.delivery.attempts(),
            last_error: last_error
                .clone()
                .unwrap_or_else(|| "attempts exhausted".to_string()),
            last_attempt_at: now,
        };
        tracing::error!(
            seq = first.seq,
            attempts = first.delivery.attempts(),
            "event given up after its attempts; marked failed"
        );
        store.record_delivery(id, first.seq, &failed).await?;
        let event = crate::domain_events::DomainEvent::DeliveryFailed(
            crate::domain_events::DeliveryFailed {
                reference: id.reference.clone(),
                contract_reference: id.contract_reference.clone(),
                seq: first.seq,
                event: first.event.as_str(),
                attempts: first.delivery.attempts(),
            },
        );
        if let Err(error) = events.publish(&[event]).await {
            tracing::error!(%error, "the DeliveryFailed domain event was not published");
        }
        report.marked_failed += 1;
        report.failed += file.events.iter().filter(|e| e.seq > first.seq).count();
        return Ok(report);
    }
    if !policy.is_due(&first.delivery, now) {
        report.still_pending += pending_count(&file);
        report.failed += failed_count(&file);
        return Ok(report);
    }
    let before: HashSet<u32> = delivered_seqs(&file);
    let failed_before: HashSet<u32> = failed_seqs(&file);
    file = deliver_in_order(store, intent, clock, file, Deadline::none()).await;
    report.delivered += delivered_seqs(&file).difference(&before).count();
    // Intent refused an event for good during this run: report it like exhausted ones.
    for event in file.events.iter().filter(|e| {
        matches!(e.delivery, Delivery::Failed { .. }) && !failed_before.contains(&e.seq)
    }) {
        report.marked_failed += 1;
        report_failed(
            events,
            id,
            event.seq,
            event.event.as_str(),
            event.delivery.attempts(),
        )
        .await;
    }
    report.still_pending += pending_count(&file);
    report.failed += failed_count(&file);
    Ok(report)
}

async fn report_failed<E: PublishDomainEvents>(
    events: &E,
    id: &FileId,
    seq: u32,
    event: &'static str,
    attempts: u32,
) {
    let failed =
        crate::domain_events::DomainEvent::DeliveryFailed(crate::domain_events::DeliveryFailed {
            reference: id.reference.clone(),
            contract_reference: id.contract_reference.clone(),
            seq,
            event,
            attempts,
        });
    if let Err(error) = events.publish(&[failed]).await {
        tracing::error!(%error, "the DeliveryFailed domain event was not published");
    }
}

fn failed_seqs(file: &InterventionFile) -> HashSet<u32> {
    file.events
        .iter()
        .filter(|e| matches!(e.delivery, Delivery::Failed { .. }))
        .map(|e| e.seq)
        .collect()
}

fn delivered_seqs(file: &InterventionFile) -> HashSet<u32> {
    file.events
        .iter()
        .filter(|e| matches!(e.delivery, Delivery::Delivered { .. }))
        .map(|e| e.seq)
        .collect()
}

fn pending_count(file: &InterventionFile) -> usize {
    file.events
        .iter()
        .filter(|e| matches!(e.delivery, Delivery::Pending { .. }))
        .count()
}

fn failed_count(file: &InterventionFile) -> usize {
    file.events
        .iter()
        .filter(|e| matches!(e.delivery, Delivery::Failed { .. }))
        .count()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Open on Intent (for our contracts).
    pub open_on_intent: usize,
    /// Files we closed that Intent still showed open: their closing event was sent again.
    pub closing_resent: usize,
    /// Open on Intent, unknown to us: reported, not closed (we did not open them).
    pub unknown_on_intent: Vec<FileId>,
    /// The listing could not be read (Intent down): nothing reconciled this time.
    pub listing_failed: bool,
    pub stopped_early: bool,
}

/// Compares what Intent shows open with our files.
pub async fn reconcile<S, I, L, C>(
    store: &S,
    intent: &I,
    listing: &L,
    clock: &C,
    contracts: &HashSet<String>,
    deadline: Deadline,
) -> Result<ReconcileReport, StoreError>
where
    S: LoadFile + RecordDelivery + SendLease,
    I: PublishToIntent,
    L: ListOpenOnIntent,
    C: Clock,
{
    let mut report = ReconcileReport::default();
    if contracts.is_empty() {
        return Ok(report);
    }
    let open: Vec<HubIntervention> = match listing.list_open_interventions().await {
        Ok(open) => open,
        Err(failure) => {
            tracing::warn!(error = %failure, "Intent's open interventions could not be listed");
            report.listing_failed = true;
            return Ok(report);
        }
    };
    for hub in open
        .into_iter()
        .filter(|hub| contracts.contains(&hub.contract_reference))
    {
        if deadline.reached() {
            report.stopped_early = true;
            break;
        }
        report.open_on_intent += 1;
        let id = FileId::new(&hub.reference, &hub.contract_reference);
        match store.load_file(&id).await? {
            None => {
                tracing::warn!(reference = %id.reference, contract = %id.contract_reference, "open on Intent but unknown to us; reported, not closed");
                report.unknown_on_intent.push(id);
            }
            Some(file) if matches!(file.state, FileState::Closed(_)) => {
                let Some(closing) = file.last_event() else {
                    continue;
                };
                // Still pending: the re-send pass owns it. Delivered (or refused) and
                // yet open on Intent: Intent lost it; send it again, under the lease.
                if matches!(closing.delivery, Delivery::Pending { .. }) {
                    continue;
                }
                let now = clock.now();
                let until = now.checked_add(crate::delivery::SEND_LEASE).unwrap_or(now);
                if !store.take_send_lease(&id, now, until).await? {
                    continue;
                }
                tracing::warn!(reference = %id.reference, "closed here but open on Intent; sending the closing event again");
                let resent = intent.publish_log(&closing.log).await;
                if let Err(error) = store.release_send_lease(&id, until).await {
                    tracing::warn!(%error, "could not release the send lease; it ends by itself");
                }
                match resent {
                    Ok(_) => report.closing_resent += 1,
                    Err(failure) => {
                        tracing::warn!(error = %failure, "the closing event could not be sent again")
                    }
                }
            }
            // Open here too: opened after the period's end, or failing to close; the
            // closer's own passes handle it.
            Some(_) => {}
        }
    }
    Ok(report)
}

/// The counts of a run, as the `OnCallPeriodClosed` domain event tells them.
pub fn period_summary(
    period: &OnCallPeriod,
    closing: &ClosingReport,
    resend: &ResendReport,
    reconcile: &ReconcileReport,
) -> crate::domain_events::OnCallPeriodClosed {
    crate::domain_events::OnCallPeriodClosed {
        period: period.clone(),
        files_closed: closing.closed,
        already_closed: closing.already_closed,
        resent: resend.delivered,
        still_failing: resend.still_pending + resend.failed,
        unknown_on_intent: reconcile.unknown_on_intent.len(),
        closing_resent_after_reconciliation: reconcile.closing_resent,
        stopped_early: closing.stopped_early || resend.stopped_early || reconcile.stopped_early,
    }
}
