//! One run of the on-call closer, the same for the Lambda function and the local run:
//! close the period's stragglers (end of a period), re-send what Intent has not
//! acknowledged, forward the documents waiting in the ledger, reconcile with Intent's own
//! open list (end of a period), then read the backlog for the summary and the metrics.
//!
//! Every step keeps the deadline and counts into the run's report as it goes, so a run
//! cut short (by its deadline, or by the host's hard stop) still tells what it did; a step
//! that fails is recorded and the next steps still run.

use crate::calendar::OnCallPeriod;
use crate::delivery::Deadline;
use crate::documents::DocumentPolicy;
use crate::domain_events::{DomainEvent, OnCallPeriodClosed};
use crate::forward::{DocumentsReport, ForwardPorts, forward_pending_documents};
use crate::oncall::{
    CloserPolicy, ClosingReport, ReconcileReport, ResendReport, StragglerScope, close_stragglers,
    period_summary, reconcile, resend_pending,
};
use crate::ports::{
    Backlog, Clock, CloseFile, DocumentLedger, DomainEventError, FinishDelivery, ListOpenFiles,
    ListOpenOnIntent, ListPendingDocuments, ListPendingEvents, LoadFiles, Outbox, PublishDocument,
    PublishDomainEvents, PublishToIntent, ReadBacklog, ReadObject, RecordDelivery, StoreError,
    UploadGrants,
};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Mutex;

/// What a closer run works with.
pub struct CloserPorts<'a, S, I, E, C, R> {
    /// The file store, which is also the documents ledger.
    pub store: &'a S,
    /// Intent: events, documents and the open list.
    pub intent: &'a I,
    pub events: &'a E,
    pub clock: &'a C,
    /// The documents bucket (or the local inbox).
    pub objects: &'a R,
    pub policy: &'a CloserPolicy,
    pub documents: DocumentPolicy,
    /// The contracts whose open interventions on Intent are reconciled.
    pub contracts: &'a HashSet<String>,
    /// Closings this run stored, counted as they are stored (the caller's: a run cut off
    /// while sending them still counts the files it closed).
    pub closings_stored: &'a std::sync::atomic::AtomicUsize,
}

/// What one run did, step by step (`None`: the step did not run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// This run's own identity (random, given when the run starts): two runs' period
    /// summaries are two events even when they count the same.
    pub run_id: String,
    pub period: Option<OnCallPeriod>,
    pub closing: Option<ClosingReport>,
    pub resend: Option<ResendReport>,
    pub documents: Option<DocumentsReport>,
    pub reconcile: Option<ReconcileReport>,
    /// Domain events left in the outbox (a request that died between its write and the
    /// bus) and published by this run.
    pub outbox_published: usize,
    /// What still waits for Intent once the run is over.
    #[serde(skip)]
    pub backlog: Option<Backlog>,
    /// Steps that failed (store errors); the next tick tries again.
    pub problems: Vec<String>,
    /// Stopped by the host before the steps were done.
    pub interrupted: bool,
}

impl RunReport {
    pub fn stopped_early(&self) -> bool {
        self.interrupted
            || self.closing.as_ref().is_some_and(|r| r.stopped_early)
            || self.resend.as_ref().is_some_and(|r| r.stopped_early)
            || self.documents.as_ref().is_some_and(|r| r.stopped_early)
            || self.reconcile.as_ref().is_some_and(|r| r.stopped_early)
    }

    /// The `OnCallPeriodClosed` summary of this run, if it ran for a period.
    pub fn period_summary(&self) -> Option<OnCallPeriodClosed> {
        let period = self.period.as_ref()?;
        let mut summary = period_summary(
            period,
            &self.closing.clone().unwrap_or_default(),
            &self.resend.clone().unwrap_or_default(),
            &self.reconcile.clone().unwrap_or_default(),
            self.backlog.as_ref(),
        );
        summary.stopped_early |= self.stopped_early();
        summary.run_id = self.run_id.clone();
        Some(summary)
    }
}

/// Which work a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// A period ended: close its stragglers, re-send, forward, reconcile.
    PeriodEnd,
    /// Every few minutes: re-send and forward; finish closing the last ended period if a
    /// run had to stop early (only files the table held when it ended).
    Resend,
}

/// How long after a period's end its end's run and the retries of its tick may still run
/// (three tries of at most 15 minutes, a minute and two apart): a re-send run reconciles
/// the period only after that, so that it never notes as reconciled what an end's run
/// still closing files has not reconciled yet.
pub const END_RUNS_OVER: jiff::SignedDuration = jiff::SignedDuration::from_mins(60);

/// Reconciles with Intent for `period`, counting into `report`; once it has run to its end
/// (listed whole, every file checked, every lost closing sent again), the period is marked
/// reconciled. For the end's run, an unreadable list or store errors are problems of the
/// run (the tick is tried again, the errors alarm fires); a re-send run leaves them to the
/// next one (the end's run already failed over them: no alarm every few minutes).
async fn reconcile_period<S, I, E, C, R>(
    ports: &CloserPorts<'_, S, I, E, C, R>,
    kind: RunKind,
    period: &OnCallPeriod,
    deadline: Deadline,
    report: &mut RunReport,
) where
    S: crate::ports::LoadFile
        + RecordDelivery
        + crate::ports::RecordLostEventRefused
        + crate::ports::SendLease
        + crate::ports::PeriodReconciliations,
    I: PublishToIntent + ListOpenOnIntent,
    C: Clock,
{
    let reconciled = report.reconcile.insert(ReconcileReport::default());
    if deadline.reached() {
        // Nothing to reconcile is not stopping early.
        reconciled.stopped_early = !ports.contracts.is_empty();
    } else {
        reconcile(
            ports.store,
            ports.intent,
            ports.intent,
            ports.clock,
            ports.contracts,
            deadline,
            reconciled,
        )
        .await;
    }
    let reconciled = reconciled.clone();
    if kind == RunKind::PeriodEnd {
        if reconciled.listing_failed {
            report
                .problems
                .push("reconciling: Intent's open interventions could not be listed".into());
        }
        if reconciled.errors > 0 {
            report.problems.push(format!(
                "reconciling: {} intervention(s) open on Intent could not be checked (store errors); the others were",
                reconciled.errors
            ));
        }
    }
    // Only a re-send run an hour after the end notes the period: the end's run cannot see
    // what is closed after it (claims received in the minute after the end, closed by the
    // next re-send runs), whose closings Intent could lose as well.
    let settled =
        kind == RunKind::Resend && !ports.contracts.is_empty() && reconciled.settles_the_period();
    if settled {
        match ports
            .store
            .mark_period_reconciled(period, ports.clock.now())
            .await
        {
            Ok(()) => {
                if let Some(reconciled) = report.reconcile.as_mut() {
                    reconciled.noted = true;
                }
            }
            // A later re-send run reconciles it again: nothing lost.
            Err(error) => {
                tracing::warn!(%error, period = %period.id, "the period's reconciliation could not be noted")
            }
        }
    }
}

/// Runs the steps of `kind` (for `period`, if any), counting into `report`. Dropping the
/// future mid-way (a host's hard stop) leaves `report` with what was done so far.
pub async fn run_closer<S, I, E, C, R>(
    ports: &CloserPorts<'_, S, I, E, C, R>,
    kind: RunKind,
    period: Option<&OnCallPeriod>,
    deadline: Deadline,
    report: &mut RunReport,
) where
    S: ListOpenFiles
        + LoadFiles
        + CloseFile
        + RecordDelivery
        + FinishDelivery
        + crate::ports::MarkQuitusReceived
        + ListPendingEvents
        + DocumentLedger
        + UploadGrants
        + ListPendingDocuments
        + ReadBacklog
        + crate::ports::RecordLostEventRefused
        + crate::ports::PeriodReconciliations
        + Outbox,
    I: PublishToIntent + PublishDocument + ListOpenOnIntent,
    E: PublishDomainEvents,
    C: Clock,
    R: ReadObject,
{
    if report.run_id.is_empty() {
        report.run_id = uuid::Uuid::new_v4().to_string();
    }
    report.period = period.cloned();
    if let Some(period) = period {
        let scope = match kind {
            RunKind::PeriodEnd => StragglerScope::of_end_run(period.end, ports.clock.now()),
            RunKind::Resend => StragglerScope::recorded_before_end(period.end),
        };
        let closing = report.closing.insert(ClosingReport::default());
        if let Err(error) = close_stragglers(
            ports.store,
            ports.intent,
            ports.events,
            ports.clock,
            ports.policy,
            period,
            scope,
            deadline,
            closing,
            ports.closings_stored,
        )
        .await
        {
            report.problems.push(format!("closing: {error}"));
        } else if closing.errors > 0 {
            // Left open on Intent: the run is not a success (Lambda tries the tick again,
            // and the closer's error alarm says so).
            report.problems.push(format!(
                "closing: {} straggler(s) could not be closed (store errors); the next tick tries again",
                closing.errors
            ));
        }
    }
    let resend = report.resend.insert(ResendReport::default());
    if let Err(error) = resend_pending(
        ports.store,
        ports.intent,
        ports.events,
        ports.clock,
        ports.policy,
        deadline,
        resend,
    )
    .await
    {
        report.problems.push(format!("re-sending: {error}"));
    }
    let forward = ForwardPorts {
        ledger: ports.store,
        files: ports.store,
        objects: ports.objects,
        intent: ports.intent,
        events: ports.events,
        clock: ports.clock,
    };
    let documents = report.documents.insert(DocumentsReport::default());
    if let Err(error) =
        forward_pending_documents(&forward, ports.documents, ports.policy, deadline, documents)
            .await
    {
        report
            .problems
            .push(format!("forwarding documents: {error}"));
    }
    // The end's run reconciles its period (lost closings of the night go again at once); a
    // re-send run of that period reconciles it once more an hour after the end, once the
    // end's run, its retries and the closings of claims that raced the end are over, and
    // notes it reconciled when nothing was left to check (again at each run until then).
    let to_reconcile = match (kind, period) {
        (RunKind::PeriodEnd, Some(period)) => Some(period),
        (RunKind::Resend, Some(period))
            if !ports.contracts.is_empty()
                && !deadline.reached()
                && period
                    .end
                    .checked_add(END_RUNS_OVER)
                    .is_ok_and(|over| ports.clock.now() >= over) =>
        {
            match ports.store.period_reconciled(period).await {
                Ok(true) => None,
                Ok(false) => {
                    tracing::warn!(period = %period.id, "the period was not reconciled with Intent to its end; reconciling it now");
                    Some(period)
                }
                Err(error) => {
                    tracing::warn!(%error, "whether the period was reconciled could not be read; left for the next run");
                    None
                }
            }
        }
        _ => None,
    };
    if let Some(period) = to_reconcile {
        reconcile_period(ports, kind, period, deadline, report).await;
    }
    // Events a request left in the outbox a while ago: not those whose writer may still
    // be delivering (a sender holds a file's lease at most this long, and publishes its
    // announcement, with the delivery as it then stands, once done; published first as
    // stored, the same `eventId` would make consumers drop the later, truer copy).
    let settle =
        crate::delivery::send_lease_for(ports.intent).max(jiff::SignedDuration::from_mins(1));
    let settled = ports
        .clock
        .now()
        .checked_sub(settle)
        .unwrap_or_else(|_| ports.clock.now());
    match crate::outbox::publish_outbox(ports.store, ports.events, settled).await {
        Ok(run) => {
            report.outbox_published = run.published;
            if let Some(error) = run.clearing_error {
                report.problems.push(format!(
                    "clearing published outbox events (they go out again, same eventId): {error}"
                ));
            }
            if let Some((error, refused)) = run.publishing_error {
                report.problems.push(format!(
                    "publishing the outbox: the bus refused {refused} event(s), kept for the next run: {error}"
                ));
            }
        }
        Err(error) => report
            .problems
            .push(format!("publishing the outbox: {error}")),
    }
    match ports.store.backlog().await {
        Ok(backlog) => report.backlog = Some(backlog),
        Err(error) => report
            .problems
            .push(format!("reading the backlog: {error}")),
    }
}

/// Domain events put on the bus in batches as a run goes (ten at a time, `PutEvents`'
/// largest batch), so ten thousand closures are not ten thousand calls; [`flush`]
/// sends the rest. Each batch leaves the outbox once it is on the bus (one write per
/// batch), never when it is only queued: a run cut short, or a bus that refuses the last
/// batch, leaves those events in the outbox for the next run.
///
/// [`flush`]: BatchedEvents::flush
pub struct BatchedEvents<'a, E, O> {
    inner: &'a E,
    outbox: &'a O,
    buffer: Mutex<Vec<DomainEvent>>,
    /// The `eventId`s taken so far: an event the run queued (its own copy, newer) and the
    /// relay then reads back from the outbox (an older copy of the same change) goes once.
    taken: Mutex<std::collections::HashSet<String>>,
    /// The first clearing that failed (its events published, left in the outbox): the
    /// run's to report.
    clearing_error: Mutex<Option<StoreError>>,
}

const BATCH: usize = 10;

impl<'a, E: PublishDomainEvents, O: Outbox> BatchedEvents<'a, E, O> {
    pub fn new(inner: &'a E, outbox: &'a O) -> Self {
        Self {
            inner,
            outbox,
            buffer: Mutex::new(Vec::new()),
            taken: Mutex::new(std::collections::HashSet::new()),
            clearing_error: Mutex::new(None),
        }
    }

    /// The first clearing that failed since the last call, if any: published events left
    /// in the outbox, published again by every run until a clearing works.
    pub fn take_clearing_error(&self) -> Option<StoreError> {
        self.clearing_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Sends whatever is buffered.
    pub async fn flush(&self) -> Result<(), DomainEventError> {
        let rest = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        self.send(rest).await
    }

    async fn send(&self, batch: Vec<DomainEvent>) -> Result<(), DomainEventError> {
        if batch.is_empty() {
            return Ok(());
        }
        let published = self.inner.publish(&batch).await;
        if let Err(error) = &published {
            // Not on the bus: the relay may take them again from the outbox.
            {
                let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
                for id in &error.not_taken {
                    taken.remove(id);
                }
            }
            // As the run knows them (a closing delivered since its write stored its
            // announcement as pending), over the copies stored with the change.
            let not_taken: Vec<DomainEvent> = batch
                .iter()
                .filter(|event| error.not_taken.contains(&event.event_id()))
                .filter(|event| !matches!(event, DomainEvent::Stored(_)))
                .cloned()
                .collect();
            if !not_taken.is_empty()
                && let Err(error) = self.outbox.keep(&not_taken, jiff::Timestamp::now()).await
            {
                tracing::warn!(%error, "the outbox keeps the events as first written");
            }
        }
        let ids = DomainEventError::taken_of(&published, &batch);
        // What the bus took leaves the outbox, whatever it refused beside it.
        if !ids.is_empty()
            && let Err(error) = self.outbox.clear_published(&ids).await
        {
            tracing::warn!(%error, "domain events published but still in the outbox; they may be published again (same eventId)");
            self.clearing_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(error);
        }
        published
    }
}

impl<E: PublishDomainEvents, O: Outbox> PublishDomainEvents for BatchedEvents<'_, E, O> {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), DomainEventError> {
        let full = {
            let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
            let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            buffer.extend(
                events
                    .iter()
                    .filter(|event| taken.insert(event.event_id()))
                    .cloned(),
            );
            if buffer.len() >= BATCH {
                std::mem::take(&mut *buffer)
            } else {
                Vec::new()
            }
        };
        self.send(full).await
    }

    fn queues(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    //! A closer run, given / when / then, on the in-memory adapters.
    use super::*;
    use crate::domain_events::DeliveryFailed;
    use crate::file::PartnerId;
    use crate::in_memory::tests_support::*;
    use crate::in_memory::{FixedClock, RecordingEvents};
    use crate::intake::open_intervention;
    use crate::lifecycle::{FileState, Outcome};
    use crate::ports::{DeliveryFailure, DocumentClaim, DocumentWait};
    use jiff::Timestamp;

    fn end() -> Timestamp {
        at("2026-11-28T07:00:00Z")
    }

    async fn run(world: &World, kind: RunKind, period: Option<&OnCallPeriod>) -> RunReport {
        let contracts = HashSet::from(["contract1".to_string()]);
        let closings_stored = std::sync::atomic::AtomicUsize::new(0);
        let ports = CloserPorts {
            store: &world.store,
            intent: &world.intent,
            events: &world.events,
            clock: &world.clock,
            objects: &world.objects,
            policy: &CloserPolicy::default(),
            documents: DocumentPolicy::default(),
            contracts: &contracts,
            closings_stored: &closings_stored,
        };
        let mut report = RunReport::default();
        run_closer(&ports, kind, period, Deadline::none(), &mut report).await;
        report
    }

    /// A file closed half an hour before the end, its closing recorded delivered, that
    /// Intent still shows open (it lost the closing): only a reconciliation sends it again.
    async fn closed_here_before_the_end_open_on_intent(
        world: &World,
        reference: &str,
    ) -> crate::model::FileId {
        let id = world.given_open_on_intent(reference).await;
        let closed_at = end() - minutes(30);
        given_closed(
            &world.store,
            &id,
            Outcome::Done,
            closed_at,
            delivered(closed_at),
        )
        .await;
        id
    }

    /// The end's run could not reconcile (Intent's open list unreadable at each of its
    /// tries): the next re-send run of that period reconciles it (a closing Intent lost is
    /// sent again), once; the runs after it do not list Intent again.
    #[tokio::test]
    async fn a_period_whose_end_could_not_reconcile_is_reconciled_by_a_later_resend_run_once() {
        let world = World::at(end() + minutes(1));
        let id = closed_here_before_the_end_open_on_intent(&world, "R-1").await;
        world.intent.fail_listings(true);
        let ended = run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;
        assert!(ended.reconcile.as_ref().unwrap().listing_failed);
        assert!(!ended.problems.is_empty());
        world.intent.fail_listings(false);
        // Within the hour the end's run and its retries may still be going: not yet.
        let world = World {
            clock: FixedClock(end() + minutes(10)),
            ..world
        };
        let early = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;
        assert!(early.reconcile.is_none(), "{early:?}");

        let world = World {
            clock: FixedClock(end() + minutes(70)),
            ..world
        };
        let resent = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;

        assert_eq!(
            resent.reconcile.as_ref().map(|r| r.closing_resent),
            Some(1),
            "{resent:?}"
        );
        assert_eq!(
            world.intent.journal().last(),
            Some(&crate::in_memory::Accepted::Log {
                file: id.clone(),
                event: crate::model::Event::Done
            })
        );
        let sent = world.intent.journal().len();
        let later = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;
        assert!(later.reconcile.is_none(), "{later:?}");
        assert_eq!(world.intent.journal().len(), sent);
    }

    /// The end's run reconciles what it sees, but the period is not over with it: a claim
    /// received in the minute after the end (still the period's) is closed by a re-send
    /// run after that reconciliation, and Intent loses that closing (a 204, not applied).
    /// The reconciliation an hour after the end finds it and sends it again, instead of
    /// leaving it open on Intent until the next period's end (before, the end's run had
    /// noted the period reconciled).
    #[tokio::test]
    async fn a_closing_made_after_the_end_runs_reconciliation_and_lost_is_found_an_hour_after_the_end()
     {
        let world = World::at(end() + jiff::SignedDuration::from_secs(5));
        let ended = run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;
        assert!(ended.problems.is_empty(), "{:?}", ended.problems);
        assert!(ended.reconcile.as_ref().unwrap().ran_to_its_end());
        // Received after the end's run listed the open files, closed by the next re-send
        // run, the closing recorded delivered, and Intent still shows it open.
        let id = world.given_open_on_intent("L-1").await;
        let closed_at = end() + minutes(6);
        given_closed(
            &world.store,
            &id,
            Outcome::Done,
            closed_at,
            delivered(closed_at),
        )
        .await;

        let world = World {
            clock: FixedClock(end() + minutes(70)),
            ..world
        };
        let resent = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;

        assert_eq!(
            resent.reconcile.as_ref().map(|r| r.closing_resent),
            Some(1),
            "{resent:?}"
        );
        let later = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;
        assert!(later.reconcile.is_none(), "reconciled once: {later:?}");
    }

    /// A closing still pending when the hour's reconciliation runs (Intent down since the
    /// end) is not known to be on Intent: the period is not noted reconciled until a
    /// reconciliation finds every closing of what Intent shows open delivered and checked.
    #[tokio::test]
    async fn a_period_with_a_closing_still_pending_is_reconciled_again_once_it_is_delivered() {
        let world = World::at(end() + minutes(70));
        let id = world.given_open_on_intent("P-1").await;
        given_closed(
            &world.store,
            &id,
            Outcome::Done,
            end(),
            crate::file::Delivery::new_pending(),
        )
        .await;
        world.intent.fail_next(DeliveryFailure::retryable(1, "503"));

        let first = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;
        let reconciled = first
            .reconcile
            .clone()
            .expect("reconciled an hour after the end");
        assert_eq!(reconciled.closing_pending, 1, "{first:?}");
        assert!(
            !crate::ports::PeriodReconciliations::period_reconciled(
                &world.store,
                &period_ending(end())
            )
            .await
            .unwrap()
        );

        let world = World {
            clock: FixedClock(end() + minutes(80)),
            ..world
        };
        let second = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;
        assert!(second.reconcile.is_some(), "{second:?}");
        assert!(
            crate::ports::PeriodReconciliations::period_reconciled(
                &world.store,
                &period_ending(end())
            )
            .await
            .unwrap()
        );
    }

    /// A closing pending behind an opening Intent refused for good (Intent shows the file
    /// open all the same) waits for an operator's redrive: the hour's reconciliation notes
    /// the period all the same, instead of listing Intent again at every re-send run.
    #[tokio::test]
    async fn a_closing_waiting_behind_a_refused_opening_does_not_keep_the_period_unsettled() {
        let world = World::at(end() + minutes(70));
        let log = opening_log("B-1");
        let night = end() - minutes(120);
        let id = given_open_file(&world.store, &log, night, refused(night)).await;
        world.intent.publish_log(&log).await.unwrap();
        given_closed(
            &world.store,
            &id,
            Outcome::Done,
            end(),
            crate::file::Delivery::new_pending(),
        )
        .await;

        let first = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;
        assert!(first.reconcile.is_some(), "{first:?}");
        let world = World {
            clock: FixedClock(end() + minutes(75)),
            ..world
        };
        let second = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;
        assert!(second.reconcile.is_none(), "noted once: {second:?}");
    }

    /// A late re-send run of an earlier period (its tick held in Lambda's queue while the
    /// next period ended and was reconciled) neither reconciles it again nor takes the
    /// note back: the later period's reconciliation checked all Intent shows open.
    #[tokio::test]
    async fn a_late_resend_run_of_an_earlier_period_does_not_reconcile_it_again() {
        let world = World::at(end() + minutes(1));
        let later = OnCallPeriod {
            id: "oncall-later".into(),
            ..period_ending(end())
        };
        let ended = run(&world, RunKind::PeriodEnd, Some(&later)).await;
        assert!(ended.problems.is_empty(), "{:?}", ended.problems);
        let world = World {
            clock: FixedClock(end() + minutes(70)),
            ..world
        };
        let noted = run(&world, RunKind::Resend, Some(&later)).await;
        assert!(noted.reconcile.is_some(), "{noted:?}");
        let world = World {
            clock: FixedClock(end() + minutes(90)),
            ..world
        };
        let earlier = OnCallPeriod {
            id: "oncall-earlier".into(),
            ..period_ending(end() - jiff::SignedDuration::from_hours(24))
        };

        let late = run(&world, RunKind::Resend, Some(&earlier)).await;

        assert!(late.reconcile.is_none(), "{late:?}");
        assert!(
            crate::ports::PeriodReconciliations::period_reconciled(&world.store, &later)
                .await
                .unwrap()
        );
    }

    /// A lost closing found by the end's run but not sent again (Intent's log unreadable
    /// then) leaves the period not reconciled: a later re-send run sends it.
    #[tokio::test]
    async fn a_lost_closing_the_end_run_could_not_send_again_is_sent_by_a_later_resend_run() {
        let world = World::at(end() + minutes(1));
        let id = closed_here_before_the_end_open_on_intent(&world, "R-2").await;
        world.intent.fail_log_reads(true);
        let ended = run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;
        assert_eq!(
            ended.reconcile.as_ref().unwrap().resend_postponed,
            1,
            "{ended:?}"
        );
        world.intent.fail_log_reads(false);

        let world = World {
            clock: FixedClock(end() + minutes(70)),
            ..world
        };
        let resent = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;

        assert_eq!(
            resent.reconcile.as_ref().map(|r| r.closing_resent),
            Some(1),
            "{resent:?}"
        );
        assert!(resent.problems.is_empty(), "{:?}", resent.problems);
        assert_eq!(
            world.intent.journal().last(),
            Some(&crate::in_memory::Accepted::Log {
                file: id,
                event: crate::model::Event::Done
            })
        );
    }

    /// A straggler the store would not close (its closing write refused) stays open on
    /// Intent: the run says so as a problem (the Lambda then fails the tick, which is tried
    /// again and raises the closer's error alarm) instead of ending as a success with the
    /// failure only counted in its log line.
    #[tokio::test]
    async fn a_straggler_left_open_by_a_store_error_is_a_problem_of_the_run() {
        let now = end() + minutes(5);
        let world = World::at(now);
        let night = end() - minutes(120);
        let closed =
            given_open_file(&world.store, &opening_log("E-1"), night, delivered(night)).await;
        let refused =
            given_open_file(&world.store, &opening_log("E-2"), night, delivered(night)).await;
        world.store.refuse_closing_of(&refused);

        let report = run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;

        let closing = report.closing.clone().unwrap();
        assert_eq!((closing.closed, closing.errors), (1, 1));
        assert_eq!(
            world.store.file(&closed).unwrap().state,
            FileState::Closed(Outcome::PartialRepair)
        );
        assert_eq!(world.store.file(&refused).unwrap().state, FileState::Open);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(
            report.problems[0].contains("1 straggler(s) could not be closed"),
            "{:?}",
            report.problems
        );
    }

    /// The end's run started late (its slot held by a long re-send run, or tried again
    /// after a failure): a claim racing the end (received within a minute after it) is the
    /// period's; a call of the night that a partner filed after that, during the day, keeps
    /// its chance of a real report.
    #[tokio::test]
    async fn a_claim_racing_the_end_missed_by_an_on_time_end_run_is_closed_by_a_resend_run() {
        // The end's run, on time, lists the open files before the claim arrives.
        let world = World::at(end() + jiff::SignedDuration::from_secs(5));
        run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;
        // A call of the period's last minute, received 30 s after its end.
        let received = end() + jiff::SignedDuration::from_secs(30);
        let mut log = opening_log("L-1");
        log.event_date =
            crate::IntentDateTime::from_timestamp(end() - jiff::SignedDuration::from_secs(20));
        let racing = given_open_file(&world.store, &log, received, delivered(received)).await;

        let world = World {
            clock: crate::in_memory::FixedClock(end() + minutes(10)),
            ..world
        };
        let report = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;

        assert_eq!(
            world.store.file(&racing).unwrap().state,
            FileState::Closed(Outcome::PartialRepair),
            "a late end run would have closed it: {:?}",
            report.closing
        );
    }

    /// The end's run closes one file, a resend run closes another (a claim racing the
    /// end): their summaries count the same, and are still two events (two `eventId`s),
    /// so that a consumer de-duplicating on it adds both up.
    #[tokio::test]
    async fn two_runs_summing_a_period_up_alike_are_two_events() {
        let world = World::at(end() + jiff::SignedDuration::from_secs(5));
        let night = end() - minutes(120);
        given_open_file(&world.store, &opening_log("E-1"), night, delivered(night)).await;
        let on_time = run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;
        let received = end() + jiff::SignedDuration::from_secs(30);
        let mut log = opening_log("E-2");
        log.event_date =
            crate::IntentDateTime::from_timestamp(end() - jiff::SignedDuration::from_secs(20));
        given_open_file(&world.store, &log, received, delivered(received)).await;
        let world = World {
            clock: crate::in_memory::FixedClock(end() + minutes(10)),
            ..world
        };
        let resend = run(&world, RunKind::Resend, Some(&period_ending(end()))).await;

        let (first, second) = (
            on_time.period_summary().unwrap(),
            resend.period_summary().unwrap(),
        );
        assert_eq!((first.files_closed, second.files_closed), (1, 1));
        let without_run = |summary: &OnCallPeriodClosed| OnCallPeriodClosed {
            run_id: String::new(),
            ..summary.clone()
        };
        assert_eq!(
            without_run(&first),
            without_run(&second),
            "they count the same"
        );
        let id = |summary: OnCallPeriodClosed| DomainEvent::OnCallPeriodClosed(summary).event_id();
        assert_ne!(id(first), id(second));
    }

    #[tokio::test]
    async fn a_late_end_run_leaves_alone_a_claim_filed_after_the_end() {
        let world = World::at(end() + minutes(15));
        let racing = end() + jiff::SignedDuration::from_secs(20);
        let racing_the_end =
            given_open_file(&world.store, &opening_log("L-1"), racing, delivered(racing)).await;
        let filed_later = end() + minutes(10);
        let filed_in_the_day = given_open_file(
            &world.store,
            &opening_log("L-2"),
            filed_later,
            delivered(filed_later),
        )
        .await;

        let report = run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;

        let state = |id: &crate::model::FileId| world.store.file(id).unwrap().state;
        assert_eq!(
            state(&racing_the_end),
            FileState::Closed(Outcome::PartialRepair)
        );
        assert_eq!(state(&filed_in_the_day), FileState::Open);
        let closing = report.closing.unwrap();
        assert_eq!((closing.closed, closing.left_open), (1, 1));
    }

    /// Intent's open list cannot be read at a period's end: what Intent still shows open
    /// (a closing it lost) is not reconciled. The run says so as a problem (the tick is
    /// tried again, the errors alarm fires), as the README promises for a listing, rather
    /// than ending as a success.
    #[tokio::test]
    async fn an_open_list_intent_cannot_give_is_a_problem_of_the_run() {
        let world = World::at(end() + minutes(5));
        world.intent.fail_listings(true);

        let report = run(&world, RunKind::PeriodEnd, Some(&period_ending(end()))).await;

        assert!(report.reconcile.as_ref().unwrap().listing_failed);
        assert!(
            report
                .problems
                .iter()
                .any(|problem| problem.contains("reconciling")),
            "{:?}",
            report.problems
        );
    }

    /// Domain events the bus keeps refusing wait in the outbox (nothing is lost), and the
    /// run says so: a problem, so the tick fails and the errors alarm fires, rather than a
    /// log line nobody reads while the outbox fills.
    #[tokio::test]
    async fn outbox_events_the_bus_refuses_are_a_problem_of_the_run() {
        let now = end() + minutes(5);
        let world = World::at(now);
        world.events.set_failing(true);
        // A claim half an hour ago, whose announcement the bus refused.
        open_intervention(
            &world.store,
            &world.intent,
            &world.events,
            &FixedClock(now - minutes(30)),
            crate::closure::ClosurePolicy::default(),
            PartnerId("partner-a".into()),
            opening_log("B-1"),
        )
        .await
        .unwrap();
        assert_eq!(world.store.outbox_ids().len(), 1);

        let report = run(&world, RunKind::Resend, None).await;

        assert_eq!(world.store.outbox_ids().len(), 1, "kept for the next run");
        assert!(
            report
                .problems
                .iter()
                .any(|problem| problem.contains("publishing the outbox")),
            "{:?}",
            report.problems
        );
    }

    #[tokio::test]
    async fn a_period_end_run_summarises_closed_files_refused_closings_and_the_backlog() {
        let now = end() + minutes(5);
        let world = World::at(now);
        let night = end() - minutes(120);
        for reference in ["S-1", "S-2"] {
            given_open_file(
                &world.store,
                &opening_log(reference),
                night,
                delivered(night),
            )
            .await;
        }
        // Closed earlier; its closing waits for Intent (tried 10 s ago, not due yet).
        let waiting =
            given_open_file(&world.store, &opening_log("S-3"), night, delivered(night)).await;
        let closed_at = night + minutes(30);
        let not_due = pending_since(4, now - jiff::SignedDuration::from_secs(10), false);
        given_closed(&world.store, &waiting, Outcome::Done, closed_at, not_due).await;
        // A quitus waiting in the ledger, not due either.
        let object = quitus("S-3", "v1");
        let DocumentClaim::Claimed(claimed) = world
            .store
            .claim_document(&object, now, now + minutes(15))
            .await
            .unwrap()
        else {
            panic!("a new object is claimed");
        };
        let wait = DocumentWait {
            file: Some(waiting.clone()),
            attempts: 4,
            last_error: "Intent is unavailable: HTTP 503".into(),
            last_attempt_at: now,
            in_doubt: false,
        };
        world
            .store
            .record_pending(&object, &claimed.token, &wait)
            .await
            .unwrap();
        // Intent refuses one of the two closings of the run.
        world.intent.fail_next(DeliveryFailure::refused(
            1,
            "Intent rejected the request with HTTP 400",
        ));

        let period = period_ending(end());
        let report = run(&world, RunKind::PeriodEnd, Some(&period)).await;

        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let summary = report.period_summary().expect("a period's run");
        assert_eq!(summary.period, period);
        assert_eq!(
            (
                summary.files_closed,
                summary.closings_refused,
                summary.closings_pending
            ),
            (2, 1, 0)
        );
        assert_eq!((summary.pending_events, summary.failed_events), (1, 1));
        assert_eq!(summary.still_failing, 2);
        assert_eq!(summary.oldest_pending_since, Some(closed_at));
        assert_eq!(summary.pending_documents, 1);
        assert!(!summary.stopped_early);
    }

    #[tokio::test]
    async fn events_left_in_the_outbox_before_the_settle_time_are_published() {
        let opened_at = at("2026-11-28T12:00:00Z");
        let world = World::at(opened_at + minutes(5));
        // Two claims whose InterventionOpened the bus did not take: one long ago, one whose
        // writer may still be delivering (2 minutes ago, within its send lease of 3: its
        // request publishes it with the delivery, and a stored copy published first, with
        // the same eventId, would make consumers drop the request's).
        world.events.set_failing(true);
        for (reference, clock) in [
            ("T-1", FixedClock(opened_at)),
            ("T-2", FixedClock(opened_at + minutes(3))),
        ] {
            let partner = PartnerId("partner-a".into());
            open_intervention(
                &world.store,
                &world.intent,
                &world.events,
                &clock,
                crate::closure::ClosurePolicy::default(),
                partner,
                opening_log(reference),
            )
            .await
            .unwrap();
        }
        world.events.set_failing(false);

        let report = run(&world, RunKind::Resend, None).await;

        assert_eq!(report.outbox_published, 1);
        assert_eq!(world.published_types(), ["InterventionOpened"]);
        assert_eq!(
            world.events.published()[0].detail_value()["reference"],
            "T-1"
        );
        assert_eq!(world.store.outbox_ids().len(), 1, "the recent one is left");
        assert_eq!(report.period_summary(), None);
    }

    #[tokio::test]
    async fn queued_announcements_stay_in_the_outbox_until_their_batch_is_on_the_bus() {
        let now = end() + minutes(5);
        let world = World::at(now);
        let night = end() - minutes(120);
        for reference in ["Q-1", "Q-2", "Q-3"] {
            given_open_file(
                &world.store,
                &opening_log(reference),
                night,
                delivered(night),
            )
            .await;
        }
        // The bus refuses the run's last batch (as a bus outage or a run cut short would).
        world.events.set_failing(true);
        let batched = BatchedEvents::new(&world.events, &world.store);
        let contracts = HashSet::new();
        let closings_stored = std::sync::atomic::AtomicUsize::new(0);
        let ports = CloserPorts {
            store: &world.store,
            intent: &world.intent,
            events: &batched,
            clock: &world.clock,
            objects: &world.objects,
            policy: &CloserPolicy::default(),
            documents: DocumentPolicy::default(),
            contracts: &contracts,
            closings_stored: &closings_stored,
        };
        let mut report = RunReport::default();
        let period = period_ending(end());
        run_closer(
            &ports,
            RunKind::PeriodEnd,
            Some(&period),
            Deadline::none(),
            &mut report,
        )
        .await;
        assert!(batched.flush().await.is_err());

        assert_eq!(
            world.store.outbox_ids().len(),
            3,
            "the three InterventionClosed wait in the outbox for the next run"
        );
        // The next run, with the bus back, publishes them and empties the outbox.
        world.events.set_failing(false);
        let later = FixedClock(now + minutes(5));
        let closings_stored = std::sync::atomic::AtomicUsize::new(0);
        let ports = CloserPorts {
            store: &world.store,
            intent: &world.intent,
            events: &world.events,
            clock: &later,
            objects: &world.objects,
            policy: &CloserPolicy::default(),
            documents: DocumentPolicy::default(),
            contracts: &contracts,
            closings_stored: &closings_stored,
        };
        run_closer(
            &ports,
            RunKind::Resend,
            None,
            Deadline::none(),
            &mut RunReport::default(),
        )
        .await;
        assert!(world.store.outbox_ids().is_empty());
        assert_eq!(world.published_types(), ["InterventionClosed"; 3]);
        // As the run knew them, delivered: not as the closings' writes stored them.
        for event in world.events.published() {
            assert_eq!(event.detail_value()["delivery"], "delivered", "{event:?}");
        }
    }

    #[tokio::test]
    async fn batched_events_go_ten_at_a_time_and_flush_sends_the_rest() {
        let bus = RecordingEvents::default();
        let outbox = crate::in_memory::InMemoryStore::default();
        let batched = BatchedEvents::new(&bus, &outbox);
        for seq in 1..=23 {
            let event = DomainEvent::DeliveryFailed(DeliveryFailed {
                reference: "B-1".into(),
                contract_reference: "contract1".into(),
                seq,
                event: "acknowledged",
                attempts: 1,
            });
            batched.publish(&[event]).await.unwrap();
        }
        assert_eq!(bus.batch_sizes(), [10, 10]);

        batched.flush().await.unwrap();

        assert_eq!(bus.batch_sizes(), [10, 10, 3]);
        let seqs: Vec<u32> = bus
            .published()
            .iter()
            .map(|event| match event {
                DomainEvent::DeliveryFailed(failed) => failed.seq,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(seqs, (1..=23).collect::<Vec<_>>(), "all, in order");
        batched.flush().await.unwrap();
        assert_eq!(bus.batch_sizes().len(), 3, "nothing left to flush");
    }
}
