//! Every event Intent has not acknowledged is sent again, in order per file, with the
//! capped backoff across runs, for as long as it takes.

use super::policy::CloserPolicy;
use crate::delivery::{Deadline, deliver_in_order};
use crate::file::InterventionFile;
use crate::model::FileId;
use crate::ports::{
    Clock, FinishDelivery, ListPendingEvents, LoadFile, PublishDomainEvents, PublishToIntent,
    StoreError,
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
    S: ListPendingEvents + LoadFile + FinishDelivery,
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
    S: LoadFile + FinishDelivery,
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

#[cfg(test)]
mod tests {
    //! Re-sending what Intent has not acknowledged, given / when / then, on the in-memory
    //! adapters.
    use super::*;
    use crate::in_memory::tests_support::*;
    use crate::lifecycle::Outcome;
    use jiff::Timestamp;

    fn now() -> Timestamp {
        at("2026-11-28T20:00:00Z")
    }

    async fn resend(world: &World) -> ResendReport {
        let mut report = ResendReport::default();
        resend_pending(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            &CloserPolicy::default(),
            Deadline::none(),
            &mut report,
        )
        .await
        .unwrap();
        report
    }

    /// A file whose opening is in `opening`.
    async fn given(world: &World, reference: &str, opening: crate::Delivery) -> FileId {
        let recorded_at = now() - minutes(60);
        given_open_file(&world.store, &opening_log(reference), recorded_at, opening).await
    }

    #[tokio::test]
    async fn a_pending_event_not_due_yet_is_not_sent() {
        let world = World::at(now());
        // A run failed 30 s ago: the next try waits a minute.
        given(
            &world,
            "R-1",
            pending_since(4, now() - jiff::SignedDuration::from_secs(30), false),
        )
        .await;

        let report = resend(&world).await;

        assert_eq!(
            report,
            ResendReport {
                still_pending: 1,
                ..ResendReport::default()
            }
        );
        assert!(world.intent.accepted().is_empty());
    }

    /// An event in doubt whose read of Intent keeps failing (Intent unreachable) backs off
    /// like any failed run: the read's HTTP attempts count, so the wait doubles, instead of
    /// the event being read again at every tick of a long outage.
    #[tokio::test]
    async fn an_event_whose_intent_cannot_be_read_backs_off_like_any_failed_run() {
        let world = World::at(now());
        let id = given(&world, "R-9", pending_since(4, now() - minutes(5), true)).await;
        world.intent.fail_log_reads(true);

        let report = resend(&world).await;

        assert_eq!(report.still_pending, 1, "{report:?}");
        let after = world.store.file(&id).unwrap().events[0].delivery.clone();
        assert_eq!(after.attempts(), 8, "the failed read's four attempts count");
        let policy = CloserPolicy::default();
        let seconds = jiff::SignedDuration::from_secs;
        assert!(
            !policy.is_due(&after, now() + seconds(90)),
            "a second failed run waits 2 min"
        );
        assert!(policy.is_due(&after, now() + seconds(120)));
    }

    #[tokio::test]
    async fn a_due_event_is_delivered_once() {
        let world = World::at(now());
        let id = given(&world, "R-2", pending_since(4, now() - minutes(5), false)).await;

        let first = resend(&world).await;
        let second = resend(&world).await;

        assert_eq!(
            first,
            ResendReport {
                delivered: 1,
                ..ResendReport::default()
            }
        );
        assert_eq!(second, ResendReport::default(), "nothing left to send");
        let opening = &world.store.file(&id).unwrap().events[0].delivery;
        assert_eq!((opening.label(), opening.attempts()), ("delivered", 5));
        assert_eq!(world.intent.accepted().len(), 1);
    }

    #[tokio::test]
    async fn events_behind_a_refused_one_are_not_sent_and_are_counted() {
        let world = World::at(now());
        let id = given(&world, "R-3", refused(now() - minutes(60))).await;
        given_closed(
            &world.store,
            &id,
            Outcome::Done,
            now() - minutes(30),
            crate::Delivery::new_pending(),
        )
        .await;

        let report = resend(&world).await;

        assert_eq!(
            report,
            ResendReport {
                still_pending: 1,
                failed: 1,
                ..ResendReport::default()
            }
        );
        assert!(world.intent.accepted().is_empty());
        let closing = &world.store.file(&id).unwrap().events[1].delivery;
        assert_eq!((closing.label(), closing.attempts()), ("pending", 0));
    }

    #[tokio::test]
    async fn an_event_in_doubt_is_read_back_from_intent_and_not_sent_twice() {
        let world = World::at(now());
        // An earlier attempt reached Intent but its answer was lost.
        let id = given(&world, "R-4", pending_since(1, now() - minutes(5), true)).await;
        world.intent.publish_log(&opening_log("R-4")).await.unwrap();

        let report = resend(&world).await;

        assert_eq!(report.delivered, 1);
        assert_eq!(world.intent.reads(), 1, "Intent was read first");
        assert_eq!(world.intent.accepted().len(), 1, "not sent twice");
        assert!(
            world.store.file(&id).unwrap().events[0]
                .delivery
                .is_delivered()
        );
    }
}
