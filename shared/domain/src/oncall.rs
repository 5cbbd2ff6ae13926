//! Use cases of the on-call closer: at the end of each on-call period, nothing stays open
//! on Intent ("Aucune intervention ne doit rester ouverte sur Intent").
//!
//! - [`close_stragglers`]: every file still open that was opened before the period's end
//!   is closed (by default `closed/partial_repair`: the regular maintenance provider takes
//!   over), with bounded concurrency. A partner closing the same file at the same moment
//!   wins or loses cleanly (the closure is one conditional write); running the same
//!   period twice finds nothing left to close.
//! - [`resend_pending`]: every event Intent has not acknowledged is sent again, in order
//!   per file, with a capped backoff across runs, for as long as it takes (an outage of
//!   a weekend is waited out); only Intent's refusal of the content fails an event, and
//!   that is reported where it happens.
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
    Clock, CloseFile, ListOpenFiles, ListOpenOnIntent, ListPendingEvents, LoadFile, Outbox,
    PublishDomainEvents, PublishToIntent, RecordDelivery, SendLease, StoreError,
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
            base_backoff: SignedDuration::from_mins(1),
            max_backoff: SignedDuration::from_mins(15),
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
        self.attempt_is_due(*attempts, *last_attempt_at, now)
    }

    /// Whether something attempted `attempts` times, last at `last_attempt_at`, is due at
    /// `now`: the wait doubles with every run that failed, up to `max_backoff`.
    pub fn attempt_is_due(
        &self,
        attempts: u32,
        last_attempt_at: Option<Timestamp>,
        now: Timestamp,
    ) -> bool {
        let Some(last) = last_attempt_at else {
            return true;
        };
        let runs = attempts.div_ceil(self.attempts_per_run.max(1)).max(1);
        let factor = 1i32 << (runs - 1).min(20);
        let wait = self
            .base_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        last.checked_add(wait).ok().is_none_or(|due| due <= now)
    }
}

pub use crate::delivery::Deadline;

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
    /// Of those, closings Intent refused for good (announced with `DeliveryFailed`).
    pub delivery_failed: usize,
    /// Of those, closings not on Intent yet (Intent unreachable, or an opening still
    /// pending before them): the re-send run keeps trying.
    pub delivery_pending: usize,
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

/// What became of one straggler.
enum Straggler {
    /// Closed by us; where its closing event stands with Intent.
    Closed(Delivery),
    /// Closed by someone else first, or out of scope.
    Untouched,
}

/// Closes every file still open that was opened before `period.end` (within `scope`),
/// counting into `report` as each file is done (so a run cut short still tells what it
/// did).
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
    report: &mut ClosingReport,
) -> Result<(), StoreError>
where
    S: ListOpenFiles + LoadFile + CloseFile + RecordDelivery + SendLease + Outbox,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let stragglers = store.open_files_opened_before(period.end).await?;
    tracing::info!(count = stragglers.len(), period = %period.id, "open files to close");
    futures_util::stream::iter(stragglers)
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
                close_one(store, intent, events, clock, policy, period, scope, deadline, &id)
                    .instrument(span)
                    .await,
            )
        })
        .buffer_unordered(policy.concurrency.max(1))
        .for_each(|outcome| {
            match outcome {
                None => report.stopped_early = true,
                Some(Ok(Straggler::Closed(delivery))) => {
                    report.closed += 1;
                    match delivery {
                        Delivery::Failed { .. } => report.delivery_failed += 1,
                        Delivery::Pending { .. } => report.delivery_pending += 1,
                        Delivery::Delivered { .. } => {}
                    }
                }
                Some(Ok(Straggler::Untouched)) => report.already_closed += 1,
                Some(Err(error)) => {
                    tracing::error!(%error, "a straggler could not be closed; the next tick retries");
                    report.errors += 1;
                }
            }
            std::future::ready(())
        })
        .await;
    if report.delivery_failed + report.delivery_pending > 0 {
        tracing::error!(
            refused = report.delivery_failed,
            pending = report.delivery_pending,
            "closings of this period are not all on Intent"
        );
    }
    Ok(())
}

/// Closes one file.
#[allow(clippy::too_many_arguments)]
async fn close_one<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: &CloserPolicy,
    period: &OnCallPeriod,
    scope: StragglerScope,
    deadline: Deadline,
    id: &FileId,
) -> Result<Straggler, CloseError>
where
    S: LoadFile + CloseFile + RecordDelivery + SendLease + Outbox,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let Some(file) = store.load_file(id).await? else {
        return Ok(Straggler::Untouched);
    };
    if file.state != FileState::Open {
        return Ok(Straggler::Untouched);
    }
    let Some(opening) = file.opening() else {
        return Ok(Straggler::Untouched);
    };
    if scope == StragglerScope::RecordedBeforeEnd && opening.recorded_at > period.end {
        return Ok(Straggler::Untouched);
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
        deadline,
    )
    .await
    {
        Ok(closed) => Ok(Straggler::Closed(
            closed
                .file
                .last_event()
                .map(|closing| closing.delivery.clone())
                .unwrap_or_else(Delivery::new_pending),
        )),
        // A partner's closure won the race: the file is closed, which is all we want.
        Err(CloseError::Refused { .. }) => Ok(Straggler::Untouched),
        Err(error) => Err(error),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResendReport {
    /// Events Intent accepted in this run (or found already in its log).
    pub delivered: usize,
    /// Events still pending after this run (not due yet, or failing again).
    pub still_pending: usize,
    /// Events Intent refused for good in this run (announced with `DeliveryFailed`).
    pub marked_failed: usize,
    /// Events refused earlier, waiting for an operator's redrive (with those blocked
    /// behind them, counted in `still_pending`).
    pub failed: usize,
    pub stopped_early: bool,
}

/// Sends again every event Intent has not acknowledged, in order per file, counting into
/// `report` as each file is done.
pub async fn resend_pending<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: &CloserPolicy,
    deadline: Deadline,
    report: &mut ResendReport,
) -> Result<(), StoreError>
where
    S: ListPendingEvents + LoadFile + RecordDelivery + SendLease + Outbox,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let files = store.files_with_pending_events().await?;
    futures_util::stream::iter(files)
        .map(|id| async move {
            if deadline.reached() {
                return None;
            }
            let span = tracing::info_span!(
                "resend",
                reference = %id.reference,
                contract = %id.contract_reference
            );
            Some(
                resend_file(store, intent, events, clock, policy, deadline, &id)
                    .instrument(span)
                    .await,
            )
        })
        .buffer_unordered(policy.concurrency.max(1))
        .for_each(|result| {
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
            std::future::ready(())
        })
        .await;
    Ok(())
}

async fn resend_file<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: &CloserPolicy,
    deadline: Deadline,
    id: &FileId,
) -> Result<ResendReport, StoreError>
where
    S: LoadFile + RecordDelivery + SendLease + Outbox,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let mut report = ResendReport::default();
    let Some(mut file) = store.load_file(id).await? else {
        return Ok(report);
    };
    // The first undelivered event decides: later ones wait behind it.
    let Some(first) = file
        .events
        .iter()
        .find(|event| !event.delivery.is_delivered())
    else {
        return Ok(report);
    };
    if first.delivery.is_failed() {
        tracing::warn!(
            seq = first.seq,
            "events wait behind one Intent refused; an operator's redrive is needed"
        );
    }
    if first.delivery.is_failed() || !policy.is_due(&first.delivery, clock.now()) {
        report.still_pending += pending_count(&file);
        report.failed += failed_count(&file);
        return Ok(report);
    }
    let before: HashSet<u32> = delivered_seqs(&file);
    let failed_before = failed_count(&file);
    file = deliver_in_order(store, intent, events, clock, file, deadline).await;
    report.delivered += delivered_seqs(&file).difference(&before).count();
    report.marked_failed += failed_count(&file).saturating_sub(failed_before);
    report.still_pending += pending_count(&file);
    report.failed += failed_before;
    Ok(report)
}

fn delivered_seqs(file: &InterventionFile) -> HashSet<u32> {
    file.events
        .iter()
        .filter(|e| e.delivery.is_delivered())
        .map(|e| e.seq)
        .collect()
}

fn pending_count(file: &InterventionFile) -> usize {
    file.events
        .iter()
        .filter(|e| e.delivery.is_pending())
        .count()
}

fn failed_count(file: &InterventionFile) -> usize {
    file.events
        .iter()
        .filter(|e| e.delivery.is_failed())
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

/// Compares what Intent shows open with our files, counting into `report` as it goes.
pub async fn reconcile<S, I, L, C>(
    store: &S,
    intent: &I,
    listing: &L,
    clock: &C,
    contracts: &HashSet<String>,
    deadline: Deadline,
    report: &mut ReconcileReport,
) -> Result<(), StoreError>
where
    S: LoadFile + RecordDelivery + SendLease,
    I: PublishToIntent,
    L: ListOpenOnIntent,
    C: Clock,
{
    if contracts.is_empty() {
        return Ok(());
    }
    let open = match listing.list_open_interventions(deadline).await {
        Ok(open) => open,
        Err(failure) => {
            tracing::warn!(error = %failure, "Intent's open interventions could not be listed");
            report.listing_failed = true;
            return Ok(());
        }
    };
    if !open.complete {
        report.stopped_early = true;
    }
    for hub in open
        .interventions
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
                if closing.delivery.is_pending() {
                    continue;
                }
                let now = clock.now();
                let until = now.checked_add(crate::delivery::SEND_LEASE).unwrap_or(now);
                if store.take_send_lease(&id, now, until).await?
                    == crate::ports::LeaseGrant::HeldElsewhere
                {
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
    Ok(())
}

/// The counts of a run, as the `OnCallPeriodClosed` domain event tells them. `backlog` is
/// what is still waiting for Intent once the run is over (read from the store's indexes);
/// without it, the run's own counts stand in.
pub fn period_summary(
    period: &OnCallPeriod,
    closing: &ClosingReport,
    resend: &ResendReport,
    reconcile: &ReconcileReport,
    backlog: Option<&crate::ports::Backlog>,
) -> crate::domain_events::OnCallPeriodClosed {
    let (pending, failed) = match backlog {
        Some(backlog) => (backlog.pending_events, backlog.failed_events),
        None => (
            resend.still_pending.max(closing.delivery_pending),
            resend.failed + resend.marked_failed + closing.delivery_failed,
        ),
    };
    crate::domain_events::OnCallPeriodClosed {
        period: period.clone(),
        files_closed: closing.closed,
        already_closed: closing.already_closed,
        closings_refused: closing.delivery_failed,
        closings_pending: closing.delivery_pending,
        resent: resend.delivered,
        still_failing: pending + failed,
        pending_events: pending,
        failed_events: failed,
        oldest_pending_since: backlog.and_then(|b| b.oldest_pending_since),
        pending_documents: backlog.map_or(0, |b| b.pending_documents),
        unknown_on_intent: reconcile.unknown_on_intent.len(),
        closing_resent_after_reconciliation: reconcile.closing_resent,
        stopped_early: closing.stopped_early || resend.stopped_early || reconcile.stopped_early,
    }
}
