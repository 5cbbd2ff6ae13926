//! What Intent itself still shows open is compared with our files: a file we closed, whose
//! closing Intent accepted but no longer shows in its log, gets its closing event sent
//! again; a file we never knew is reported. And the counts of a
//! run, as the period's summary tells them.

use super::closing::ClosingReport;
use super::resend::ResendReport;
use crate::calendar::OnCallPeriod;
use crate::delivery::{Deadline, send_lease_for};
use crate::file::Delivery;
use crate::lifecycle::FileState;
use crate::model::FileId;
use crate::ports::{
    Clock, ListOpenOnIntent, LoadFile, PublishToIntent, RecordDelivery, RecordLostEventRefused,
    SendLease, StoreError,
};
use serde::Serialize;
use std::collections::HashSet;
use tracing::Instrument;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Open on Intent (for our contracts).
    pub open_on_intent: usize,
    /// Files we closed that Intent still showed open: their closing event was sent again.
    pub closing_resent: usize,
    /// Closings Intent refused for good when sent again: the file stays open on Intent
    /// (counted in the run's log line, for an operator; sending it again would be refused
    /// again).
    pub closing_resend_refused: usize,
    /// Open on Intent, unknown to us: reported, not closed (we did not open them).
    pub unknown_on_intent: Vec<FileId>,
    /// The listing could not be read (Intent down): nothing reconciled this time.
    pub listing_failed: bool,
    /// Interventions Intent lists whose file could not be checked (a store error): the
    /// others are reconciled all the same.
    pub errors: usize,
    /// Closings found lost on Intent whose file's send lease another sender held (one cut
    /// off while re-sending it, say): not re-sent this time, so the reconciliation has not
    /// run to its end.
    pub lease_held: usize,
    /// Closings found lost whose sending again was left for a later run (Intent's log
    /// unreadable, a failure that may pass): the period is not reconciled to its end.
    pub resend_postponed: usize,
    /// Files Intent shows open whose closing is still pending here (the re-send pass owns
    /// it): once delivered, Intent could lose it too, so the period is not settled yet.
    pub closing_pending: usize,
    pub stopped_early: bool,
    /// The period was noted reconciled by this run (once per period: the reconciliation
    /// an hour after its end, or a later one, that found nothing left to check).
    pub noted: bool,
}

impl ReconcileReport {
    /// Whether it ran to its end: Intent's list read whole, every file it lists checked,
    /// every lost closing sent again (or refused).
    pub fn ran_to_its_end(&self) -> bool {
        !self.listing_failed
            && !self.stopped_early
            && self.errors == 0
            && self.resend_postponed == 0
    }

    /// Whether the period it reconciled can be noted reconciled: it ran to its end, and no
    /// closing of a file Intent shows open is still pending (delivered later, it could be
    /// lost unseen).
    pub fn settles_the_period(&self) -> bool {
        self.ran_to_its_end() && self.closing_pending == 0
    }
}

/// Compares what Intent shows open with our files, counting into `report` as it goes
/// (what could not be done is counted there too: the listing, a file's store error).
pub async fn reconcile<S, I, L, C>(
    store: &S,
    intent: &I,
    listing: &L,
    clock: &C,
    contracts: &HashSet<String>,
    deadline: Deadline,
    report: &mut ReconcileReport,
) where
    S: LoadFile + RecordDelivery + RecordLostEventRefused + SendLease,
    I: PublishToIntent,
    L: ListOpenOnIntent,
    C: Clock,
{
    if contracts.is_empty() {
        return;
    }
    // Until it has run to its end: a run cut off meanwhile leaves it so.
    report.stopped_early = true;
    let open = match listing.list_open_interventions(deadline).await {
        Ok(open) => open,
        Err(failure) => {
            tracing::warn!(error = %failure, "Intent's open interventions could not be listed");
            report.listing_failed = true;
            report.stopped_early = false;
            return;
        }
    };
    let mut complete = open.complete;
    for hub in open
        .interventions
        .into_iter()
        .filter(|hub| contracts.contains(&hub.contract_reference))
    {
        if deadline.reached() {
            complete = false;
            break;
        }
        report.open_on_intent += 1;
        let id = FileId::new(&hub.reference, &hub.contract_reference);
        let (reference, contract) = (logged_reference(&id), id.contract_reference.clone());
        if let Err(error) = reconcile_one(store, intent, clock, id, report).await {
            // One file the store cannot give does not keep the others from being checked.
            tracing::error!(%error, reference, %contract, "an intervention open on Intent could not be checked");
            report.errors += 1;
        }
    }
    report.stopped_early = !complete || report.lease_held > 0;
}

/// Reconciles one intervention Intent shows open (`id`).
async fn reconcile_one<S, I, C>(
    store: &S,
    intent: &I,
    clock: &C,
    id: FileId,
    report: &mut ReconcileReport,
) -> Result<(), StoreError>
where
    S: LoadFile + RecordDelivery + RecordLostEventRefused + SendLease,
    I: PublishToIntent,
    C: Clock,
{
    match store.load_file(&id).await? {
        None => {
            let reference = logged_reference(&id);
            tracing::warn!(reference, contract = %id.contract_reference, "open on Intent but unknown to us; reported, not closed");
            report.unknown_on_intent.push(id);
        }
        Some(file) if matches!(file.state, FileState::Closed(_)) => {
            let Some(closing) = file.last_event() else {
                return Ok(());
            };
            // Our file: its reference is an identifier, named on every line below.
            let span = tracing::info_span!(
                "reconciled",
                reference = %id.reference,
                contract = %id.contract_reference
            );
            // A closing pending behind an event Intent refused for good waits for an
            // operator's redrive, as a refused closing does: nothing this reconciliation
            // or the re-send pass will change.
            let blocked = file.events[..file.events.len() - 1]
                .iter()
                .any(|event| event.delivery.is_failed());
            match resend_closing_if_lost(store, intent, clock, &id, closing)
                .instrument(span)
                .await?
            {
                Resent::Pending if blocked => {}
                Resent::Sent => report.closing_resent += 1,
                Resent::Refused => report.closing_resend_refused += 1,
                Resent::LeaseHeld => report.lease_held += 1,
                Resent::Postponed => report.resend_postponed += 1,
                Resent::Pending => report.closing_pending += 1,
                Resent::Not => {}
            }
        }
        // Open here too: opened after the period's end, or failing to close; the
        // closer's own passes handle it.
        Some(_) => {}
    }
    Ok(())
}

/// `id`'s reference as a log line may name it: only when it is an identifier (an
/// intervention opened on Intent by someone else may have free text there, naming a
/// tenant).
fn logged_reference(id: &FileId) -> String {
    if crate::validation::is_safe_reference(&id.reference) {
        id.reference.clone()
    } else {
        "(not an identifier: not logged)".to_string()
    }
}

/// What became of a closing found lost on Intent.
enum Resent {
    Not,
    /// Still pending: the re-send pass owns it.
    Pending,
    Sent,
    Refused,
    /// Another sender holds the file's send lease: left for a later run.
    LeaseHeld,
    /// Lost, but not sent again this time (Intent's log unreadable, a failure that may
    /// pass): left for a later run.
    Postponed,
}

/// A file we closed that Intent still shows open: its closing is sent again, under the
/// file's send lease, unless Intent's log already holds it (the listing lags) or it is
/// still pending (the re-send pass owns it) or refused for good (an operator's redrive).
async fn resend_closing_if_lost<S, I, C>(
    store: &S,
    intent: &I,
    clock: &C,
    id: &FileId,
    closing: &crate::file::RecordedEvent,
) -> Result<Resent, StoreError>
where
    S: SendLease + RecordLostEventRefused,
    I: PublishToIntent,
    C: Clock,
{
    match &closing.delivery {
        // Still pending: the re-send pass owns it.
        Delivery::Pending { .. } => return Ok(Resent::Pending),
        // Refused for good: only an operator's redrive sends it again.
        Delivery::Failed { .. } => {
            tracing::warn!(
                "closed here, open on Intent, which refused the closing; left to an operator's redrive"
            );
            return Ok(Resent::Not);
        }
        // Delivered, and yet open on Intent: Intent lost it, or its listing lags behind
        // its log.
        Delivery::Delivered { .. } => {}
    }
    let now = clock.now();
    let until = now.checked_add(send_lease_for(intent)).unwrap_or(now);
    if store.take_send_lease(id, now, until).await? == crate::ports::LeaseGrant::HeldElsewhere {
        return Ok(Resent::LeaseHeld);
    }
    // Sent again as any event in doubt is (`delivery::attempt_event`): Intent's log read
    // first (its listing may lag behind it), a 409 or a lost answer read back, only a
    // refusal of the content failed.
    let previous = closing.delivery.attempts();
    let delivery = crate::delivery::attempt_event(intent, clock, closing, true).await;
    let outcome = match &delivery {
        Delivery::Delivered { attempts, .. } if *attempts == previous => {
            tracing::info!(
                "open on Intent's listing, yet the closing is in its log; not sent again"
            );
            Resent::Not
        }
        Delivery::Delivered { .. } => {
            tracing::warn!("closed here but open on Intent; the closing event was sent again");
            Resent::Sent
        }
        Delivery::Pending { last_error, .. } => {
            tracing::warn!(
                error = last_error.as_deref().unwrap_or_default(),
                "the closing event could not be sent again; left for a later run"
            );
            Resent::Postponed
        }
        Delivery::Failed { last_error, .. } => {
            // Recorded refused, under the lease: listed for an operator's redrive and
            // counted in the backlog, instead of being sent (and refused) again at every
            // period's end while recorded delivered.
            let announce = crate::delivery::failure_announcement(id, closing, &delivery);
            match store
                .record_lost_event_refused(id, closing.seq, &delivery, &announce)
                .await
            {
                Ok(true) => {
                    tracing::error!(error = %last_error, "Intent refused the closing sent again; recorded refused for an operator's redrive")
                }
                Ok(false) => {
                    tracing::warn!(error = %last_error, "Intent refused the closing sent again; another sender recorded it meanwhile, left as it stands")
                }
                Err(error) => {
                    tracing::warn!(%error, refusal = %last_error, "Intent refused the closing sent again; the refusal could not be recorded, the closing is sent again at the next period's end")
                }
            }
            Resent::Refused
        }
    };
    Ok(finish(store, id, until, outcome).await)
}

/// Gives the send lease taken until `until` back; `outcome` is what became of the closing.
async fn finish<S: SendLease>(
    store: &S,
    id: &FileId,
    until: jiff::Timestamp,
    outcome: Resent,
) -> Resent {
    if let Err(error) = store.release_send_lease(id, until).await {
        tracing::warn!(%error, "could not release the send lease; it ends by itself");
    }
    outcome
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
        run_id: String::new(),
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
        rejected_documents: backlog.map_or(0, |b| b.rejected_documents),
        unknown_on_intent: reconcile.unknown_on_intent.len(),
        closing_resent_after_reconciliation: reconcile.closing_resent,
        stopped_early: closing.stopped_early || resend.stopped_early || reconcile.stopped_early,
    }
}

#[cfg(test)]
mod tests {
    //! Reconciling with what Intent shows open, given / when / then, on the in-memory
    //! adapters.
    use super::*;
    use crate::in_memory::Accepted;
    use crate::in_memory::tests_support::*;
    use crate::lifecycle::Outcome;
    use crate::model::Event;
    use jiff::Timestamp;

    fn now() -> Timestamp {
        at("2026-11-28T07:05:00Z")
    }

    async fn reconcile_contracts(
        world: &World,
        contracts: &[&str],
        deadline: Deadline,
    ) -> ReconcileReport {
        let contracts: HashSet<String> = contracts.iter().map(|c| c.to_string()).collect();
        let mut report = ReconcileReport::default();
        reconcile(
            &world.store,
            &world.intent,
            &world.intent,
            &world.clock,
            &contracts,
            deadline,
            &mut report,
        )
        .await;
        report
    }

    /// The world's store, except that `unreadable` cannot be read (a corrupt item, a
    /// throttled read).
    struct OneUnreadable<'a> {
        world: &'a World,
        unreadable: FileId,
    }

    impl LoadFile for OneUnreadable<'_> {
        async fn load_file(
            &self,
            id: &FileId,
        ) -> Result<Option<crate::file::InterventionFile>, StoreError> {
            if *id == self.unreadable {
                return Err(StoreError::Corrupt("an unreadable item".into()));
            }
            self.world.store.load_file(id).await
        }
    }

    impl RecordDelivery for OneUnreadable<'_> {
        async fn record_delivery(
            &self,
            id: &FileId,
            seq: u32,
            delivery: &Delivery,
            announce: &[crate::DomainEvent],
        ) -> Result<(), StoreError> {
            self.world
                .store
                .record_delivery(id, seq, delivery, announce)
                .await
        }
    }

    impl crate::ports::RecordLostEventRefused for OneUnreadable<'_> {
        async fn record_lost_event_refused(
            &self,
            id: &FileId,
            seq: u32,
            failed: &Delivery,
            announce: &[crate::DomainEvent],
        ) -> Result<bool, StoreError> {
            self.world
                .store
                .record_lost_event_refused(id, seq, failed, announce)
                .await
        }
    }

    crate::in_memory::tests_support::send_lease_of_the_worlds_store!(OneUnreadable<'_>);

    /// One intervention Intent lists whose file cannot be read does not keep the others
    /// from being reconciled: it is counted, and the run says so.
    #[tokio::test]
    async fn a_file_that_cannot_be_read_does_not_stop_the_others() {
        let world = World::at(now());
        let unreadable = world.given_open_on_intent("A-1").await;
        let lost =
            closed_here_open_on_intent(&world, "B-1", Outcome::PartialRepair, delivered).await;
        let store = OneUnreadable {
            world: &world,
            unreadable,
        };
        let contracts = HashSet::from(["contract1".to_string()]);
        let mut report = ReconcileReport::default();

        reconcile(
            &store,
            &world.intent,
            &world.intent,
            &world.clock,
            &contracts,
            Deadline::none(),
            &mut report,
        )
        .await;

        assert_eq!(report.closing_resent, 1, "{report:?}");
        assert_eq!(report.errors, 1, "{report:?}");
        assert_eq!(
            world.intent.journal().last(),
            Some(&Accepted::Log {
                file: lost,
                event: Event::PartialRepair
            })
        );
    }

    /// Intent holds an open intervention this bridge never stored.
    async fn open_only_on_intent(world: &World, reference: &str, contract: &str) {
        let mut log = opening_log(reference);
        log.contract_reference = contract.into();
        world.intent.publish_log(&log).await.unwrap();
    }

    #[tokio::test]
    async fn an_intervention_open_on_intent_but_unknown_here_is_reported() {
        let world = World::at(now());
        open_only_on_intent(&world, "U-1", "contract1").await;
        open_only_on_intent(&world, "U-2", "contract-of-someone-else").await;

        let report = reconcile_contracts(&world, &["contract1"], Deadline::none()).await;

        assert_eq!(
            report,
            ReconcileReport {
                open_on_intent: 1,
                unknown_on_intent: vec![FileId::new("U-1", "contract1")],
                ..ReconcileReport::default()
            }
        );
        assert!(world.store.is_empty(), "reported, not stored");
        assert_eq!(world.intent.accepted().len(), 2, "nothing sent");
    }

    /// A file closed here five minutes ago, its closing standing with Intent as
    /// `delivery(closed_at)` says, while Intent shows it open.
    async fn closed_here_open_on_intent(
        world: &World,
        reference: &str,
        outcome: Outcome,
        delivery: fn(Timestamp) -> crate::file::Delivery,
    ) -> FileId {
        let id = world.given_open_on_intent(reference).await;
        let closed_at = now() - minutes(5);
        given_closed(&world.store, &id, outcome, closed_at, delivery(closed_at)).await;
        id
    }

    #[tokio::test]
    async fn a_file_we_closed_but_intent_shows_open_gets_its_closing_sent_again() {
        let world = World::at(now());
        let id = closed_here_open_on_intent(&world, "V-1", Outcome::PartialRepair, delivered).await;

        let report = reconcile_contracts(&world, &["contract1"], Deadline::none()).await;

        assert_eq!(
            report,
            ReconcileReport {
                open_on_intent: 1,
                closing_resent: 1,
                ..ReconcileReport::default()
            }
        );
        assert_eq!(
            world.intent.journal().last(),
            Some(&Accepted::Log {
                file: id.clone(),
                event: Event::PartialRepair
            })
        );
        let again = reconcile_contracts(&world, &["contract1"], Deadline::none()).await;
        assert_eq!(again, ReconcileReport::default(), "closed on Intent now");
        assert_eq!(
            world.store.lease(&id),
            None,
            "the send lease was given back"
        );
    }

    /// Intent refused the closing for good: only an operator's redrive sends it again (it
    /// would be refused again, or delivered while recorded refused here).
    #[tokio::test]
    async fn a_closing_intent_refused_is_left_to_the_operator() {
        let world = World::at(now());
        let id = closed_here_open_on_intent(&world, "V-2", Outcome::Done, refused).await;

        let report = reconcile_contracts(&world, &["contract1"], Deadline::none()).await;

        assert_eq!(
            report,
            ReconcileReport {
                open_on_intent: 1,
                ..ReconcileReport::default()
            }
        );
        assert_eq!(world.intent.journal().len(), 1, "only the opening was sent");
        assert_eq!(world.store.lease(&id), None);
    }

    /// A closing Intent lost, then refused for good when sent again: recorded refused for
    /// an operator's redrive (listed, counted in the backlog, announced), not sent again
    /// and refused again at every period's end.
    #[tokio::test]
    async fn a_lost_closing_intent_refuses_when_sent_again_is_recorded_refused() {
        let world = World::at(now());
        let id = closed_here_open_on_intent(&world, "V-3", Outcome::Done, delivered).await;
        world
            .intent
            .fail_next(crate::ports::DeliveryFailure::refused(
                1,
                "Intent rejected the request with HTTP 422",
            ));

        let report = reconcile_contracts(&world, &["contract1"], Deadline::none()).await;

        assert_eq!(report.closing_resend_refused, 1, "{report:?}");
        let closing = world.store.file(&id).unwrap().events[1].clone();
        assert!(
            matches!(closing.delivery, Delivery::Failed { attempts: 2, .. }),
            "{:?}",
            closing.delivery
        );
        assert_eq!(
            crate::ports::ReadBacklog::backlog(&world.store)
                .await
                .unwrap()
                .failed_events,
            1
        );
        let announced = crate::DomainEvent::DeliveryFailed(crate::domain_events::DeliveryFailed {
            reference: id.reference.clone(),
            contract_reference: id.contract_reference.clone(),
            seq: 2,
            event: "closed/done",
            attempts: 2,
        });
        assert!(
            world.store.outbox_ids().contains(&announced.event_id()),
            "announced"
        );
        assert_eq!(
            world.store.lease(&id),
            None,
            "the send lease was given back"
        );
        let sent = world.intent.journal().len();
        let again = reconcile_contracts(&world, &["contract1"], Deadline::none()).await;
        assert_eq!(
            again,
            ReconcileReport {
                open_on_intent: 1,
                ..ReconcileReport::default()
            },
            "left to the operator"
        );
        assert_eq!(world.intent.journal().len(), sent, "not sent again");
    }

    /// A closing sent again that Intent answers 409 (it holds it after all: its log read
    /// lagged too) is read back, as every 409 is: delivered, not recorded refused.
    #[tokio::test]
    async fn a_lost_closing_sent_again_and_answered_409_is_read_back_not_recorded_refused() {
        let world = World::at(now());
        let id = closed_here_open_on_intent(&world, "V-4", Outcome::Done, delivered).await;
        world
            .intent
            .apply_next_then_fail(crate::ports::DeliveryFailure::conflict(
                1,
                "Intent rejected the request with HTTP 409",
            ));

        let report = reconcile_contracts(&world, &["contract1"], Deadline::none()).await;

        assert_eq!(report.closing_resend_refused, 0, "{report:?}");
        assert_eq!(report.closing_resent, 1, "{report:?}");
        assert!(
            world.store.file(&id).unwrap().events[1]
                .delivery
                .is_delivered()
        );
        assert!(world.store.outbox_ids().is_empty(), "no DeliveryFailed");
    }

    /// Intent's listing lags behind its log: the intervention still shows open though our
    /// closing is in its log. The closing is read back from Intent's log, not sent twice.
    #[tokio::test]
    async fn a_closing_already_in_intents_log_is_not_sent_again_on_a_lagging_listing() {
        use crate::ports::OpenListing;
        struct LaggingListing(OpenListing);
        impl ListOpenOnIntent for LaggingListing {
            async fn list_open_interventions(
                &self,
                _deadline: Deadline,
            ) -> Result<OpenListing, crate::ports::DeliveryFailure> {
                Ok(self.0.clone())
            }
        }
        let world = World::at(now());
        let id = closed_here_open_on_intent(&world, "V-3", Outcome::Done, delivered).await;
        // The listing as read before the closing reached Intent's log.
        let before_closing = world.intent.list_open_interventions(Deadline::none()).await;
        let closing = world.store.file(&id).unwrap().events[1].log.clone();
        world.intent.publish_log(&closing).await.unwrap();
        let reads = world.intent.reads();

        let mut report = ReconcileReport::default();
        reconcile(
            &world.store,
            &world.intent,
            &LaggingListing(before_closing.unwrap()),
            &world.clock,
            &HashSet::from(["contract1".to_string()]),
            Deadline::none(),
            &mut report,
        )
        .await;

        assert_eq!(report.closing_resent, 0, "{report:?}");
        assert_eq!(
            world.intent.accepted().len(),
            2,
            "opening and closing, once"
        );
        assert_eq!(world.intent.reads(), reads + 1, "Intent's log read once");
        assert_eq!(world.store.lease(&id), None);
    }

    #[tokio::test]
    async fn an_empty_contract_set_does_nothing() {
        let world = World::at(now());
        open_only_on_intent(&world, "W-1", "contract1").await;

        let report = reconcile_contracts(&world, &[], Deadline::none()).await;

        assert_eq!(report, ReconcileReport::default());
        assert_eq!(world.intent.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_listing_cut_short_by_the_deadline_stops_early() {
        let world = World::at(now());
        open_only_on_intent(&world, "X-1", "contract1").await;
        let reached = Deadline {
            stop_at: Some(std::time::Instant::now()),
        };

        let report = reconcile_contracts(&world, &["contract1"], reached).await;

        assert_eq!(
            report,
            ReconcileReport {
                stopped_early: true,
                ..ReconcileReport::default()
            }
        );
    }
}
