//! At the end of a period, every file still open that was opened before its end is
//! closed (by default `closed/partial_repair`: the regular maintenance provider takes
//! over), with bounded concurrency.

use super::policy::CloserPolicy;
use crate::calendar::OnCallPeriod;
use crate::closure::{CloseError, CloseOutcome, ClosedBy, close_loaded_intervention};
use crate::datetime::IntentDateTime;
use crate::delivery::Deadline;
use crate::file::{Delivery, InterventionFile};
use crate::lifecycle::{FileState, Outcome};
use crate::model::{FileId, InterventionLog};
use crate::ports::{
    Clock, CloseFile, FinishDelivery, ListOpenFiles, LoadFile, LoadFiles, PublishDomainEvents,
    PublishToIntent, StoreError,
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
    /// Open files this pass leaves open on purpose: filed after the period's end (a
    /// resend tick's pass), for the next period's end to close.
    #[serde(default)]
    pub left_open: usize,
    /// Files that could not be closed (store errors); the next tick tries again.
    pub errors: usize,
    /// The deadline came before every file was handled.
    pub stopped_early: bool,
}

/// Which open files a closing pass takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StragglerScope {
    /// Every file opened before the period's end ([`crate::file::opened_at`]: by its
    /// `eventDate`, or by its reception if that was earlier): the end-of-period run.
    OpenedBeforeEnd,
    /// Only those received by then ([`RACING_THE_END`] after the period's end): the
    /// end-of-period run started late ([`StragglerScope::of_end_run`]), or a re-send tick
    /// finishing a run that had to stop early or came late
    /// ([`StragglerScope::recorded_before_end`]).
    ReceivedBy(Timestamp),
}

/// How long after a period's end a claim received still counts as the period's (it was in
/// flight as the period ended), for an end-of-period run that starts late.
pub const RACING_THE_END: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

impl StragglerScope {
    /// The end-of-period run's, started at `now`: on time, every file opened before the end
    /// (none filed after it can be there yet); started later (its concurrency slot held by
    /// a long re-send run, or tried again after a failure), what it would have closed on
    /// time: the files received by [`RACING_THE_END`] after the end. A call of the night
    /// that a partner files later, during the day, keeps its chance of a real report.
    pub fn of_end_run(end: Timestamp, now: Timestamp) -> Self {
        let received_by = end.checked_add(RACING_THE_END).unwrap_or(end);
        if now <= received_by {
            StragglerScope::OpenedBeforeEnd
        } else {
            StragglerScope::ReceivedBy(received_by)
        }
    }

    /// What the end's run closes, however late it starts: the files our table held by
    /// [`RACING_THE_END`] after the period's end (a claim in flight as the period ended,
    /// which an end run on time may have listed too early to see, included), without
    /// touching a claim for a call of the night that a partner files during the day (the
    /// next period's end closes it).
    pub fn recorded_before_end(end: Timestamp) -> Self {
        StragglerScope::ReceivedBy(end.checked_add(RACING_THE_END).unwrap_or(end))
    }
}

/// Stragglers read per call to the store (`LoadFiles`): a `BatchGetItem` takes 100 keys,
/// two per file.
const LOAD_BATCH: usize = 50;

/// What became of one straggler.
#[derive(Debug)]
enum Straggler {
    /// Closed by us; where its closing event stands with Intent.
    Closed(Delivery),
    /// Closed by someone else first (or gone).
    Untouched,
    /// Still open, and out of this pass's scope: left for the next period's end.
    LeftOpen,
}

/// Closes every file still open that was opened before `period.end` (within `scope`),
/// counting into `report` as each file is done (so a run cut short still tells what it
/// did), and into `written` each closing as soon as it is stored (a run cut off while
/// sending it still knows the file closed).
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
    written: &std::sync::atomic::AtomicUsize,
) -> Result<(), StoreError>
where
    S: ListOpenFiles + LoadFiles + CloseFile + FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let stragglers = store.open_files_opened_before(period.end).await?;
    tracing::info!(count = stragglers.len(), period = %period.id, "open files to close");
    let batches: Vec<Vec<FileId>> = stragglers.chunks(LOAD_BATCH).map(<[_]>::to_vec).collect();
    loaded_stragglers(store, batches, deadline)
        .map(|(id, loaded)| async move {
            if deadline.reached() {
                return None;
            }
            let span = tracing::info_span!(
                "straggler",
                reference = %id.reference,
                contract = %id.contract_reference
            );
            Some(
                close_one(
                    store, intent, events, clock, policy, period, scope, deadline, loaded, written,
                )
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
                Some(Ok(Straggler::LeftOpen)) => report.left_open += 1,
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

/// The stragglers with their files, read a batch at a time as the closings need them.
/// (A function of its own: built inline, rustc cannot prove the stream `Send` for every
/// lifetime, rust-lang/rust#102211.)
fn loaded_stragglers<S: LoadFiles>(
    store: &S,
    batches: Vec<Vec<FileId>>,
    deadline: Deadline,
) -> impl futures_util::Stream<Item = (FileId, Result<Option<InterventionFile>, StoreError>)> + Send + '_
{
    futures_util::stream::iter(batches)
        .then(move |batch| load_batch(store, batch, deadline))
        .flat_map(futures_util::stream::iter)
}

/// Reads a batch of stragglers (none once `deadline` is reached): each with its file, or
/// the error that kept it from being read.
async fn load_batch<S: LoadFiles>(
    store: &S,
    batch: Vec<FileId>,
    deadline: Deadline,
) -> Vec<(FileId, Result<Option<InterventionFile>, StoreError>)> {
    let loaded = if deadline.reached() {
        vec![Ok(None); batch.len()]
    } else {
        store.load_files(&batch).await
    };
    batch.into_iter().zip(loaded).collect()
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
    loaded: Result<Option<InterventionFile>, StoreError>,
    written: &std::sync::atomic::AtomicUsize,
) -> Result<Straggler, CloseError>
where
    S: LoadFile + CloseFile + FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let Some(file) = loaded? else {
        return Ok(Straggler::Untouched);
    };
    if file.state != FileState::Open {
        return Ok(Straggler::Untouched);
    }
    let Some(opening) = file.opening() else {
        return Ok(Straggler::Untouched);
    };
    let received_by = match scope {
        StragglerScope::OpenedBeforeEnd => None,
        StragglerScope::ReceivedBy(at) => Some(at),
    };
    if received_by.is_some_and(|by| opening.recorded_at > by) {
        return Ok(Straggler::LeftOpen);
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
        &|| {
            written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        },
    )
    .await
    {
        // Another run (overlapping this one) closed it first, with the same closure.
        Ok(closed) if closed.outcome == CloseOutcome::Replayed => Ok(Straggler::Untouched),
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

#[cfg(test)]
mod tests {
    //! Closing the period's stragglers, given / when / then, on the in-memory adapters.
    use super::*;
    use crate::closure::{ClosurePolicy, close_intervention};
    use crate::file::PartnerId;
    use crate::in_memory::tests_support::*;
    use crate::model::Event;
    use crate::oncall::AUTOMATIC_CLOSURE_DESCRIPTION;
    use crate::ports::DeliveryFailure;

    fn end() -> Timestamp {
        at("2026-11-28T07:00:00Z")
    }

    /// During the night, before the period's end.
    fn night() -> Timestamp {
        at("2026-11-27T22:00:00Z")
    }

    async fn close(
        world: &World,
        policy: &CloserPolicy,
        scope: StragglerScope,
        deadline: Deadline,
    ) -> ClosingReport {
        let mut report = ClosingReport::default();
        close_stragglers(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            policy,
            &period_ending(end()),
            scope,
            deadline,
            &mut report,
            &std::sync::atomic::AtomicUsize::new(0),
        )
        .await
        .unwrap();
        report
    }

    async fn close_all(world: &World) -> ClosingReport {
        let policy = CloserPolicy::default();
        close(
            world,
            &policy,
            StragglerScope::OpenedBeforeEnd,
            Deadline::none(),
        )
        .await
    }

    /// A claim of the night whose opening is on Intent.
    async fn claim_of_the_night(world: &World, reference: &str) -> FileId {
        given_open_file(
            &world.store,
            &opening_log(reference),
            night(),
            delivered(night()),
        )
        .await
    }

    #[tokio::test]
    async fn files_opened_before_the_end_are_closed_with_the_configured_outcome_at_the_end() {
        let world = World::at(end() + minutes(5));
        let first = claim_of_the_night(&world, "A-1").await;
        let second = claim_of_the_night(&world, "A-2").await;
        let mut after_end = opening_log("A-3");
        after_end.event_date = IntentDateTime::from_timestamp(end() + minutes(1));
        after_end.log_date = after_end.event_date;
        let late = given_open_file(&world.store, &after_end, end(), delivered(end())).await;
        let policy = CloserPolicy {
            outcome: Outcome::Done,
            ..CloserPolicy::default()
        };

        let report = close(
            &world,
            &policy,
            StragglerScope::OpenedBeforeEnd,
            Deadline::none(),
        )
        .await;

        assert_eq!(
            report,
            ClosingReport {
                closed: 2,
                ..ClosingReport::default()
            }
        );
        for id in [&first, &second] {
            let file = world.store.file(id).unwrap();
            assert_eq!(file.state, FileState::Closed(Outcome::Done));
            let closing = file.last_event().unwrap();
            assert_eq!(closing.log.event_date.timestamp(), end());
            assert!(closing.delivery.is_delivered());
        }
        assert_eq!(world.store.file(&late).unwrap().state, FileState::Open);
        let sent = world.intent.accepted();
        assert_eq!(sent.len(), 2);
        for log in &sent {
            assert_eq!((log.status, log.event), (Event::Done.status(), Event::Done));
            assert!(
                log.contacts.is_none(),
                "the tenant's contacts are not repeated"
            );
            let description = log.description.as_ref().map(|d| d.expose().as_str());
            assert_eq!(description, Some(AUTOMATIC_CLOSURE_DESCRIPTION));
        }
        assert_eq!(
            world.published_types(),
            ["InterventionClosed", "InterventionClosed"]
        );
        let detail = world.events.published()[0].detail_value();
        assert_eq!(detail["closedBy"], "on_call_closer");
    }

    /// Two runs overlapping (an end run still closing when a re-send tick comes, the end
    /// tick delivered twice) both read a file open; the one that loses the race finds it
    /// closed by the other with the same automatic closure (a replay): closed by someone
    /// else, not closed again, or the period's summaries add up to more files than closed.
    #[tokio::test]
    async fn a_file_another_run_closed_meanwhile_is_not_counted_closed_twice() {
        let world = World::at(end() + minutes(5));
        let id = claim_of_the_night(&world, "G-1").await;
        let read_by_the_other_run = world.store.file(&id).unwrap();
        assert_eq!(close_all(&world).await.closed, 1);

        let outcome = close_one(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            &CloserPolicy::default(),
            &period_ending(end()),
            StragglerScope::OpenedBeforeEnd,
            Deadline::none(),
            Ok(Some(read_by_the_other_run)),
            &std::sync::atomic::AtomicUsize::new(0),
        )
        .await
        .unwrap();

        assert!(matches!(outcome, Straggler::Untouched), "{outcome:?}");
        assert_eq!(world.intent.accepted().len(), 1, "sent once");
    }

    #[tokio::test]
    async fn a_file_a_partner_closed_first_counts_as_already_closed() {
        let world = World::at(end() + minutes(5));
        let id = claim_of_the_night(&world, "B-1").await;
        // The open-files index still lists it when the partner's closure lands.
        world.store.set_stale_listings(true);
        close_intervention(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            ClosurePolicy::default(),
            ClosedBy::Partner(&PartnerId("partner-a".into())),
            closing_log("B-1", Outcome::Done),
        )
        .await
        .unwrap();

        let report = close_all(&world).await;

        assert_eq!(
            report,
            ClosingReport {
                already_closed: 1,
                ..ClosingReport::default()
            }
        );
        let file = world.store.file(&id).unwrap();
        assert_eq!(
            file.state,
            FileState::Closed(Outcome::Done),
            "the partner's"
        );
        assert_eq!(
            world.intent.accepted().len(),
            1,
            "only the partner's closing"
        );
    }

    #[tokio::test]
    async fn recorded_before_end_leaves_a_claim_recorded_after_the_end_alone() {
        let world = World::at(end() + minutes(300));
        let recorded_in_the_night = claim_of_the_night(&world, "C-1").await;
        // A call of the night the partner files during the day.
        let filed_later = end() + minutes(120);
        let filed_in_the_day = given_open_file(
            &world.store,
            &opening_log("C-2"),
            filed_later,
            delivered(filed_later),
        )
        .await;

        let policy = CloserPolicy::default();
        let report = close(
            &world,
            &policy,
            StragglerScope::recorded_before_end(end()),
            Deadline::none(),
        )
        .await;

        assert_eq!((report.closed, report.stopped_early), (1, false));
        let state = |id: &FileId| world.store.file(id).unwrap().state;
        assert_eq!(
            state(&recorded_in_the_night),
            FileState::Closed(Outcome::PartialRepair)
        );
        assert_eq!(state(&filed_in_the_day), FileState::Open);
        assert_eq!(world.intent.accepted().len(), 1);
    }

    /// A claim that reached us before the period's end whose `eventDate` lies a few
    /// minutes after it (the partner's clock runs ahead, within the skew accepted) was
    /// filed during the period: its end closes it, it does not stay open on Intent until
    /// the next period's end.
    #[tokio::test]
    async fn a_claim_received_before_the_end_but_dated_after_it_is_closed_at_the_end() {
        let world = World::at(end() + minutes(1));
        let mut log = opening_log("F-1");
        log.event_date = crate::datetime::IntentDateTime::from_timestamp(end() + minutes(5));
        let received = end() - minutes(5);
        let id = given_open_file(&world.store, &log, received, delivered(received)).await;

        let policy = CloserPolicy::default();
        let report = close(
            &world,
            &policy,
            StragglerScope::OpenedBeforeEnd,
            Deadline::none(),
        )
        .await;

        assert_eq!(report.closed, 1, "{report:?}");
        assert_eq!(
            world.store.file(&id).unwrap().state,
            FileState::Closed(Outcome::PartialRepair)
        );
    }

    #[tokio::test]
    async fn a_reached_deadline_stops_early_and_closes_nothing() {
        let world = World::at(end() + minutes(5));
        let id = claim_of_the_night(&world, "D-1").await;
        let reached = Deadline {
            stop_at: Some(std::time::Instant::now()),
        };

        let policy = CloserPolicy::default();
        let report = close(&world, &policy, StragglerScope::OpenedBeforeEnd, reached).await;

        assert_eq!(
            report,
            ClosingReport {
                stopped_early: true,
                ..ClosingReport::default()
            }
        );
        assert_eq!(world.store.file(&id).unwrap().state, FileState::Open);
        assert!(world.intent.accepted().is_empty());
    }

    #[tokio::test]
    async fn a_closing_intent_refuses_counts_as_delivery_failed_and_is_announced() {
        let world = World::at(end() + minutes(5));
        let id = claim_of_the_night(&world, "E-1").await;
        world.intent.fail_next(DeliveryFailure::refused(
            1,
            "Intent rejected the request with HTTP 400",
        ));

        let report = close_all(&world).await;

        assert_eq!(
            report,
            ClosingReport {
                closed: 1,
                delivery_failed: 1,
                ..ClosingReport::default()
            }
        );
        let file = world.store.file(&id).unwrap();
        assert!(file.last_event().unwrap().delivery.is_failed());
        assert_eq!(
            world.published_types(),
            ["DeliveryFailed", "InterventionClosed"]
        );
    }

    #[tokio::test]
    async fn a_closing_with_intent_down_counts_as_delivery_pending() {
        let world = World::at(end() + minutes(5));
        let id = claim_of_the_night(&world, "F-1").await;
        world.intent.fail_next(DeliveryFailure::retryable(
            4,
            "Intent is unavailable: HTTP 503",
        ));

        let report = close_all(&world).await;

        assert_eq!(
            report,
            ClosingReport {
                closed: 1,
                delivery_pending: 1,
                ..ClosingReport::default()
            }
        );
        let file = world.store.file(&id).unwrap();
        assert_eq!(file.state, FileState::Closed(Outcome::PartialRepair));
        let closing = &file.last_event().unwrap().delivery;
        assert_eq!((closing.label(), closing.attempts()), ("pending", 4));
        assert!(world.intent.accepted().is_empty());
    }
}
