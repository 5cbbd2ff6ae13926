//! Every event Intent has not acknowledged is sent again, in order per file, with the
//! capped backoff across runs, for as long as it takes.

use super::policy::CloserPolicy;
use crate::delivery::{Deadline, deliver_in_order};
use crate::file::InterventionFile;
use crate::model::FileId;
use crate::ports::{
    Clock, ListPendingEvents, LoadFile, Outbox, PublishDomainEvents, PublishToIntent,
    RecordDelivery, SendLease, StoreError,
};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashSet;
use tracing::Instrument;

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
