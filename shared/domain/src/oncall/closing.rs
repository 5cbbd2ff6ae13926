//! At the end of a period, every file still open that was opened before its end is
//! closed (by default `closed/partial_repair`: the regular maintenance provider takes
//! over), with bounded concurrency.

use super::policy::CloserPolicy;
use crate::calendar::OnCallPeriod;
use crate::closure::{CloseError, ClosedBy, close_loaded_intervention};
use crate::datetime::IntentDateTime;
use crate::delivery::Deadline;
use crate::file::Delivery;
use crate::lifecycle::{FileState, Outcome};
use crate::model::{FileId, InterventionLog};
use crate::ports::{
    Clock, CloseFile, ListOpenFiles, LoadFile, Outbox, PublishDomainEvents, PublishToIntent,
    RecordDelivery, SendLease, StoreError,
};
use crate::sensitive::Sensitive;
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use tracing::Instrument;

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
        ClosedBy::EndOfPeriod,
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
