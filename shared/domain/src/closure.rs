//! Use case: a file is closed: repaired (`closed/done`), closed with the problem persisting
//! (`closed/partial_repair`), or refused at reception (`denied/canceled`).
//!
//! The state change and the closing event are one conditional write: of two different
//! closures racing for the same file, exactly one wins; the other sees the new state
//! (an identical replay, or a conflict).

use crate::datetime::IntentDateTime;
use crate::delivery::{
    Deadline, HeldLease, deliver_in_order_announcing, deliver_under_lease, send_lease_for,
};
use crate::domain_events::DomainEvent;
use crate::file::{Delivery, InterventionFile, PartnerId, RecordedEvent, fingerprint};
use crate::lifecycle::{FileState, Outcome, TransitionError, transition};
use crate::model::{Event, FileId, InterventionLog};
use crate::outbox::publish_announced;
use crate::ports::{
    Clock, CloseFile, CloseFileResult, FinishDelivery, LoadFile, PublishDomainEvents,
    PublishToIntent, StoreError, UnreadClosing, UnreadClosingResult,
};
use jiff::SignedDuration;

/// How long a closed file's data is kept in our table (it is tenants' personal data;
/// Intent remains the record of reference). See `ClosurePolicy::default`.
#[derive(Debug, Clone, Copy)]
pub struct ClosurePolicy {
    pub retention: SignedDuration,
    /// Whether a partner's closure of a file with nothing but its delivered opening is
    /// written without reading the file first (`CLOSURES_WRITTEN_UNREAD`, default true; off,
    /// every closure reads its file, as functions built before 61b7595 did: the way back
    /// to them, see README "Deploying").
    pub written_unread: bool,
}

impl ClosurePolicy {
    pub const DEFAULT_RETENTION_DAYS: i64 = crate::lifecycle::CLOSED_FILE_RETENTION_DAYS;

    pub fn with_retention_days(days: i64) -> Self {
        Self {
            retention: SignedDuration::from_hours(24 * days),
            written_unread: true,
        }
    }
}

impl Default for ClosurePolicy {
    /// 395 days (13 months): a full annual cycle of the landlord's follow-up (reports
    /// such as "plan to replace the equipment within the year", yearly contract reviews)
    /// plus a month of margin for disputes raised at the anniversary; after that the data
    /// is no longer needed by the bridge and DynamoDB's TTL erases it.
    fn default() -> Self {
        Self::with_retention_days(Self::DEFAULT_RETENTION_DAYS)
    }
}

/// Who asks for the closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy<'a> {
    /// A partner, who may only close its own files.
    Partner(&'a PartnerId),
    /// The on-call closer, at the end of a period.
    EndOfPeriod,
}

impl ClosedBy<'_> {
    fn label(self) -> &'static str {
        match self {
            ClosedBy::Partner(_) => "partner",
            ClosedBy::EndOfPeriod => "on_call_closer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    /// The same closure was already applied: nothing new was done.
    Replayed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClosedFile {
    pub outcome: CloseOutcome,
    pub file: InterventionFile,
}

#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("a closure must be closed/done, closed/partial_repair or denied/canceled, not {pair}")]
    NotAClosure { pair: String },
    #[error("no intervention file {0}")]
    NotFound(FileId),
    #[error("{error}")]
    Refused {
        error: TransitionError,
        current: Box<InterventionFile>,
    },
    #[error("the closure's eventDate {closing} is before the opening's eventDate {opening}")]
    BeforeOpening {
        opening: IntentDateTime,
        closing: IntentDateTime,
    },
    #[error(transparent)]
    InFuture(#[from] crate::lifecycle::EventInFuture),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn outcome_of(event: Event) -> Option<Outcome> {
    match event {
        Event::Done => Some(Outcome::Done),
        Event::PartialRepair => Some(Outcome::PartialRepair),
        Event::Canceled => Some(Outcome::Canceled),
        Event::Acknowledged => None,
    }
}

/// Past this, no further event is started within the request (API Gateway answers within
/// 30 s; one delivery with its retries is bounded by the Intent client's policy).
const REQUEST_BUDGET: std::time::Duration = std::time::Duration::from_secs(12);

/// How often the decision is re-made after losing a race (the loser then sees the
/// winner's state and answers replay or conflict, so one retry normally suffices).
const RACE_RETRIES: usize = 3;

/// Closes the file `log` names.
pub async fn close_intervention<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: ClosurePolicy,
    closer: ClosedBy<'_>,
    log: InterventionLog,
) -> Result<ClosedFile, CloseError>
where
    S: LoadFile + CloseFile + FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    close_loaded_intervention(
        store,
        intent,
        events,
        clock,
        policy,
        closer,
        log,
        None,
        Deadline::after(REQUEST_BUDGET),
        &|| {},
    )
    .await
}

/// [`close_intervention`], starting from a file the caller just loaded (saves a read;
/// after a lost race the file is read again); no event is started after `deadline`.
/// `on_stored` is called once the closing is stored (before it is sent: a caller cut off
/// while it is sent still knows the file closed).
#[allow(clippy::too_many_arguments)]
pub async fn close_loaded_intervention<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: ClosurePolicy,
    closer: ClosedBy<'_>,
    log: InterventionLog,
    mut loaded: Option<InterventionFile>,
    deadline: Deadline,
    on_stored: &(dyn Fn() + Sync),
) -> Result<ClosedFile, CloseError>
where
    S: LoadFile + CloseFile + FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let Some(outcome) = outcome_of(log.event) else {
        return Err(CloseError::NotAClosure {
            pair: log.event.pair(),
        });
    };
    crate::lifecycle::check_not_in_future(log.event_date, clock.now())?;
    let id = log.file_id();

    let closed_event = |file: &InterventionFile| -> Vec<DomainEvent> {
        DomainEvent::closed(file, closer.label())
            .into_iter()
            .collect()
    };
    // A partner's closure of a file with nothing but its delivered opening (almost every
    // one) is written without reading the file first: the write itself checks what the
    // decision needs and gives the file back. Otherwise nothing was written, and the file
    // is read and decided on as below.
    let mut written_unread = None;
    if loaded.is_none()
        && policy.written_unread
        && let ClosedBy::Partner(partner) = closer
    {
        match close_unread(store, intent, clock, policy, partner, &log, outcome).await? {
            (UnreadClosingResult::ClosedSending(file), until) => {
                written_unread = Some((file, until))
            }
            // The refusal gave the file back whole: decided on below without a read.
            (UnreadClosingResult::Refused(file), _) => loaded = Some(file),
            (UnreadClosingResult::NotApplied, _) => {}
        }
    }
    if let Some((file, until)) = written_unread {
        on_stored();
        tracing::info!(
            outcome = outcome.as_str(),
            "file closed and stored; delivering to Intent"
        );
        let file = deliver_under_own_lease(
            store,
            intent,
            events,
            clock,
            file,
            deadline,
            until,
            closed_event,
        )
        .await;
        return Ok(ClosedFile {
            outcome: CloseOutcome::Closed,
            file,
        });
    }

    for _ in 0..RACE_RETRIES {
        let mut file = match loaded.take().filter(|file| file.id == id) {
            Some(file) => file,
            None => store
                .load_file(&id)
                .await?
                .ok_or_else(|| CloseError::NotFound(id.clone()))?,
        };
        if let ClosedBy::Partner(partner) = closer
            && &file.owner != partner
        {
            return Err(CloseError::NotFound(id));
        }
        let log = dated_after_opening(&log, &file, clock);
        let closing_fingerprint = fingerprint(&log);
        if matches!(file.state, FileState::Closed(_))
            && file
                .last_event()
                .is_some_and(|last| last.fingerprint == closing_fingerprint)
        {
            tracing::info!("identical closure replayed; nothing sent again");
            return Ok(ClosedFile {
                outcome: CloseOutcome::Replayed,
                file,
            });
        }
        let state = match transition(Some(file.state), log.event, file.activity_since_opening()) {
            Ok(state) => state,
            Err(error) => {
                return Err(CloseError::Refused {
                    error,
                    current: Box::new(file),
                });
            }
        };
        if let Some(opening) = file.opening()
            && log.event_date < opening.log.event_date
        {
            return Err(CloseError::BeforeOpening {
                opening: opening.log.event_date,
                closing: log.event_date,
            });
        }

        let now = clock.now();
        let closing = RecordedEvent {
            seq: file.version() + 1,
            pair: log.event,
            log: log.clone(),
            recorded_at: now,
            fingerprint: closing_fingerprint.clone(),
            delivery: Delivery::new_pending(),
        };
        let expires_at = crate::lifecycle::expiry_after(now, policy.retention);
        let expiry = crate::lifecycle::ClosingExpiry::new(expires_at, file.expires_at);
        let mut closed = file.clone();
        closed.state = state;
        closed.events.push(closing.clone());
        let announce: Vec<DomainEvent> = DomainEvent::closed(&closed, closer.label())
            .into_iter()
            .collect();
        let sending_until = now.checked_add(send_lease_for(intent)).unwrap_or(now);
        let written = store
            .close_file_sending(
                &id,
                file.version(),
                &closing,
                outcome,
                expiry,
                &announce,
                Some(sending_until),
            )
            .await?;
        let sending = match written {
            CloseFileResult::StateChanged(_) => {
                tracing::info!("the file changed meanwhile; deciding again");
                continue;
            }
            CloseFileResult::ClosedSending => true,
            CloseFileResult::Closed => false,
        };
        on_stored();
        tracing::info!(
            outcome = outcome.as_str(),
            "file closed and stored; delivering to Intent"
        );
        file.state = state;
        file.events.push(closing);
        file.expires_at = Some(expiry.at);
        // An opening still pending is retried first; if that used the time budget, the
        // closure waits for the re-send run.
        let file = if sending {
            // The lease came with the closing write. The closing is as written; the events
            // before it are as read before the write, and one still pending there may have
            // been delivered, or refused for good, since by the sender that held the lease
            // then. The file is read again under the lease (nobody else sends now): its
            // record says (never sent twice, never sent again after a refusal).
            match earlier_events_as_stored(store, &file).await {
                Some(file) => {
                    deliver_under_own_lease(
                        store,
                        intent,
                        events,
                        clock,
                        file,
                        deadline,
                        sending_until,
                        closed_event,
                    )
                    .await
                }
                None => {
                    // Should that read fail, nothing is sent from the copy: read back from
                    // Intent, an event it refused meanwhile would be absent and go again.
                    // The lease is given back; the re-send run sends the file in order.
                    tracing::warn!(
                        "the closing waits for the re-send run, behind its file's earlier events"
                    );
                    if let Err(error) = store.release_send_lease(&id, sending_until).await {
                        tracing::warn!(%error, "the send lease could not be given back; it runs out on its own");
                    }
                    publish_announced(store, events, &closed_event(&file)).await;
                    file
                }
            }
        } else {
            deliver_in_order_announcing(store, intent, events, clock, file, deadline, closed_event)
                .await
        };
        return Ok(ClosedFile {
            outcome: CloseOutcome::Closed,
            file,
        });
    }
    Err(CloseError::Store(StoreError::Contention))
}

/// Delivers `file` under the send lease its closing write took until `until` (taken in
/// that write: not taken over from anyone).
#[allow(clippy::too_many_arguments)]
async fn deliver_under_own_lease<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    file: InterventionFile,
    deadline: Deadline,
    until: jiff::Timestamp,
    announce: impl Fn(&InterventionFile) -> Vec<DomainEvent>,
) -> InterventionFile
where
    S: FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    let held = HeldLease {
        until,
        taken_over: false,
    };
    deliver_under_lease(store, intent, events, clock, file, deadline, held, announce).await
}

/// The closure `log` by `partner` written without reading its file
/// ([`CloseFile::close_unread`]): what the store did, and the end of the send lease the
/// write takes when applied.
async fn close_unread<S, I, C>(
    store: &S,
    intent: &I,
    clock: &C,
    policy: ClosurePolicy,
    partner: &PartnerId,
    log: &InterventionLog,
    outcome: Outcome,
) -> Result<(UnreadClosingResult, jiff::Timestamp), StoreError>
where
    S: CloseFile,
    I: PublishToIntent,
    C: Clock,
{
    let now = clock.now();
    let closing = RecordedEvent {
        seq: 2,
        pair: log.event,
        log: log.clone(),
        recorded_at: now,
        fingerprint: fingerprint(log),
        delivery: Delivery::new_pending(),
    };
    // The announcement needs the closed file's identity, state and closing only.
    let closed = InterventionFile {
        id: log.file_id(),
        state: FileState::Closed(outcome),
        owner: partner.clone(),
        events: vec![closing.clone()],
        documents: Vec::new(),
        quitus_received: false,
        expires_at: None,
    };
    let announce: Vec<DomainEvent> =
        DomainEvent::closed(&closed, ClosedBy::Partner(partner).label())
            .into_iter()
            .collect();
    let sending_until = now.checked_add(send_lease_for(intent)).unwrap_or(now);
    let written = store
        .close_unread(UnreadClosing {
            id: &closed.id,
            owner: partner,
            closing: &closing,
            outcome,
            retention_ends: crate::lifecycle::expiry_after(now, policy.retention),
            announce: &announce,
            sending_until,
        })
        .await?;
    Ok((written, sending_until))
}

/// `log`, its date read in the autumn fold's second pass when the first is before the
/// file's opening and the second is not, nor after now (the clock skew allowed to partners
/// does not apply: before the second pass has begun, neither reading is possible): sent
/// without offset, the partner's 02:10 half an hour after an opening at 02:40 is the second
/// 02:10. Its `logDate`, in the fold too, then moves with it unless already after it.
fn dated_after_opening(
    log: &InterventionLog,
    file: &InterventionFile,
    clock: &impl Clock,
) -> InterventionLog {
    let Some(opening) = file.opening() else {
        return log.clone();
    };
    let event_date = log.event_date.not_before(opening.log.event_date);
    if event_date == log.event_date || event_date.timestamp() > clock.now() {
        return log.clone();
    }
    InterventionLog {
        event_date,
        log_date: log.log_date.not_before(event_date),
        ..log.clone()
    }
}

/// `file` (its closing just written under the send lease, its earlier events as read before
/// that write) with its earlier events as stored now, when one of them was still pending;
/// `None` when the file cannot be read again (its copy cannot tell whether such an event
/// was delivered, or refused for good, meanwhile).
async fn earlier_events_as_stored<S: LoadFile>(
    store: &S,
    file: &InterventionFile,
) -> Option<InterventionFile> {
    let earlier = &file.events[..file.events.len().saturating_sub(1)];
    if !earlier.iter().any(|event| event.delivery.is_pending()) {
        return Some(file.clone());
    }
    match store.load_file(&file.id).await {
        Ok(Some(stored)) if stored.events.len() == file.events.len() => Some(stored),
        Ok(_) => {
            tracing::warn!("the file read under the lease is not the one just closed");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "the file could not be read again under the lease");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    //! The closure written without reading its file, given / when / then, on the in-memory
    //! adapters (whose write checks what DynamoDB's condition checks).
    use super::*;
    use crate::file::NewFile;
    use crate::in_memory::tests_support::{
        World, at, closing_log, delivered, minutes, opening_log,
    };
    use crate::ports::{MarkQuitusReceived, OpenFile, SendLease};

    const PARTNER: &str = "partner-a";

    fn world() -> World {
        World::at(at("2026-11-28T20:00:00Z"))
    }

    /// A claim stored an hour ago as the intake stores one (its expiry set), its opening
    /// standing with Intent as `delivery`.
    async fn given_claim(world: &World, delivery: Delivery) -> FileId {
        let log = opening_log("INTER-0500");
        let recorded_at = world.clock.0 - jiff::SignedDuration::from_hours(1);
        let file = NewFile {
            owner: PartnerId(PARTNER.into()),
            opening: RecordedEvent::new(1, log.clone(), recorded_at, delivery.clone()),
            expires_at: Some(crate::lifecycle::open_file_expiry(
                recorded_at,
                ClosurePolicy::default().retention,
            )),
        };
        world.store.open_file(&file, &[]).await.unwrap();
        if delivery.is_delivered() {
            world.intent.publish_log(&log).await.unwrap();
        }
        file.id()
    }

    async fn close(
        world: &World,
        partner: &str,
        log: InterventionLog,
    ) -> Result<ClosedFile, CloseError> {
        close_intervention(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            ClosurePolicy::default(),
            ClosedBy::Partner(&PartnerId(partner.into())),
            log,
        )
        .await
    }

    fn done() -> InterventionLog {
        closing_log("INTER-0500", Outcome::Done)
    }

    #[tokio::test]
    async fn a_closure_of_a_delivered_opening_alone_is_decided_by_its_write_without_a_read() {
        let world = world();
        let id = given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        world.store.set_loading_fails(true);

        let closed = close(&world, PARTNER, done()).await.unwrap();

        assert_eq!(closed.outcome, CloseOutcome::Closed);
        assert_eq!(closed.file.events.len(), 2);
        assert!(closed.file.events[0].delivery.is_delivered());
        assert!(closed.file.events[1].delivery.is_delivered());
        assert_eq!(closed.file.state, FileState::Closed(Outcome::Done));
        assert_eq!(
            world.intent.accepted().len(),
            2,
            "the opening, then the closing"
        );
        assert_eq!(world.published_types(), ["InterventionClosed"]);
        assert_eq!(
            world.events.published()[0].detail_value()["delivery"],
            "delivered"
        );
        assert!(world.store.outbox_ids().is_empty());
        assert_eq!(world.store.lease(&id), None, "the lease is given back");
        world.store.set_loading_fails(false);
        assert_eq!(world.store.file(&id).unwrap(), closed.file);
    }

    /// Each case the write cannot decide alone is decided as before, on the file its
    /// refusal gives back when whole (another partner's file, a lease held), else on the
    /// file read: with the read failing, the closure then fails (nothing was written by the
    /// unread attempt).
    #[tokio::test]
    async fn a_file_not_as_the_unread_closure_assumes_is_read_and_decided_as_before() {
        // The opening still pending: it must go first, read under the lease.
        let world = world();
        let id = given_claim(&world, Delivery::new_pending()).await;
        world.store.set_loading_fails(true);
        assert!(matches!(
            close(&world, PARTNER, done()).await,
            Err(CloseError::Store(_))
        ));
        assert_eq!(world.store.file(&id).unwrap().state, FileState::Open);
        world.store.set_loading_fails(false);
        let closed = close(&world, PARTNER, done()).await.unwrap();
        assert!(closed.file.events.iter().all(|e| e.delivery.is_delivered()));
        assert_eq!(
            world.published_types(),
            ["EventDelivered", "InterventionClosed"]
        );

        // Another partner's file: not found, nothing written.
        let world = self::world();
        let id = given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        assert!(matches!(
            close(&world, "partner-b", done()).await,
            Err(CloseError::NotFound(_))
        ));
        assert_eq!(world.store.file(&id).unwrap().state, FileState::Open);
        assert_eq!(world.store.lease(&id), None);

        // A quitus received: no cancellation.
        let world = self::world();
        let id = given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        world.store.mark_quitus_received(&id).await.unwrap();
        let canceled = closing_log("INTER-0500", Outcome::Canceled);
        assert!(matches!(
            close(&world, PARTNER, canceled).await,
            Err(CloseError::Refused { .. })
        ));
        assert_eq!(world.store.file(&id).unwrap().state, FileState::Open);

        // Dated before the opening.
        let world = self::world();
        given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        let mut early = done();
        early.event_date = crate::datetime::IntentDateTime::from_timestamp(
            opening_log("INTER-0500").event_date.timestamp() - jiff::SignedDuration::from_nanos(1),
        );
        assert!(matches!(
            close(&world, PARTNER, early).await,
            Err(CloseError::BeforeOpening { .. })
        ));

        // A send lease held by another sender: closed all the same, without the lease.
        let world = self::world();
        let id = given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        let held = world.clock.0 + minutes(2);
        world
            .store
            .take_send_lease(&id, world.clock.0, held)
            .await
            .unwrap();
        let closed = close(&world, PARTNER, done()).await.unwrap();
        assert_eq!(closed.outcome, CloseOutcome::Closed);
        assert!(closed.file.events[1].delivery.is_pending());
        assert_eq!(
            world.store.lease(&id),
            Some(held),
            "the other sender's lease stands"
        );
        assert_eq!(
            world.intent.accepted().len(),
            1,
            "the closing waits for that sender"
        );
    }

    /// Replayed, the closure written unread is refused by its own write and answered from
    /// the file read: the same file, nothing sent again.
    #[tokio::test]
    async fn a_closure_written_unread_and_replayed_is_a_replay() {
        let world = world();
        given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        let first = close(&world, PARTNER, done()).await.unwrap();
        let again = close(&world, PARTNER, done()).await.unwrap();
        assert_eq!(again.outcome, CloseOutcome::Replayed);
        assert_eq!(again.file, first.file);
        assert_eq!(world.intent.accepted().len(), 2);
        let other = closing_log("INTER-0500", Outcome::PartialRepair);
        assert!(matches!(
            close(&world, PARTNER, other).await,
            Err(CloseError::Refused { .. })
        ));
    }

    /// At the boundaries of what the write decides alone: a closing dated exactly as its
    /// opening, a cancellation, are written unread; a file closed more than the margin after
    /// its claim (its opening's expiry no longer covers the closed file's) is read, and its
    /// items get the closed file's expiry.
    #[tokio::test]
    async fn the_unread_closure_stops_exactly_where_its_decision_needs_the_file() {
        let world = world();
        given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        world.store.set_loading_fails(true);
        let mut same_instant = done();
        same_instant.event_date = opening_log("INTER-0500").event_date;
        let closed = close(&world, PARTNER, same_instant).await.unwrap();
        assert_eq!(closed.outcome, CloseOutcome::Closed);

        let world = self::world();
        given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        world.store.set_loading_fails(true);
        let canceled = closing_log("INTER-0500", Outcome::Canceled);
        let closed = close(&world, PARTNER, canceled).await.unwrap();
        assert_eq!(closed.file.state, FileState::Closed(Outcome::Canceled));

        // Refused (nothing written), the write gives the file back whole: it is closed as
        // before, without a read.
        let claimed = world_at_claim_then(jiff::SignedDuration::from_hours(24 * 15)).await;
        let (world, id) = (&claimed.0, &claimed.1);
        world.store.set_loading_fails(true);
        close(world, PARTNER, done()).await.unwrap();
        assert_eq!(
            world.store.expiry(id),
            Some(crate::lifecycle::expiry_after(
                world.clock.0,
                ClosurePolicy::default().retention
            ))
        );
    }

    /// Switched off (the way back to functions that cannot read a closing kept on the
    /// file item), every closure reads its file.
    #[tokio::test]
    async fn with_unread_closures_switched_off_every_closure_reads_its_file() {
        let world = world();
        given_claim(&world, delivered(world.clock.0 - minutes(59))).await;
        world.store.set_loading_fails(true);
        let policy = ClosurePolicy {
            written_unread: false,
            ..ClosurePolicy::default()
        };
        let closed = close_intervention(
            &world.store,
            &world.intent,
            &world.events,
            &world.clock,
            policy,
            ClosedBy::Partner(&PartnerId(PARTNER.into())),
            done(),
        )
        .await;
        assert!(matches!(closed, Err(CloseError::Store(_))), "{closed:?}");
    }

    /// A world `after` its claim was stored (its opening delivered).
    async fn world_at_claim_then(after: jiff::SignedDuration) -> (World, FileId) {
        let world = World::at(at("2026-11-28T20:00:00Z") + after);
        let log = opening_log("INTER-0500");
        let recorded_at = at("2026-11-28T19:00:00Z");
        let file = NewFile {
            owner: PartnerId(PARTNER.into()),
            opening: RecordedEvent::new(1, log, recorded_at, delivered(recorded_at)),
            expires_at: Some(crate::lifecycle::open_file_expiry(
                recorded_at,
                ClosurePolicy::default().retention,
            )),
        };
        world.store.open_file(&file, &[]).await.unwrap();
        (world, file.id())
    }
}
