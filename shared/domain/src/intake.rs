//! Use case: a partner reports a claim; the file opens (open/acknowledged).
//!
//! Store first, then Intent: once `open_file` succeeded the claim is safe, whatever
//! happens to Intent or to the domain event.

use crate::delivery::{Deadline, HeldLease, deliver_under_lease, send_lease_for};
use crate::domain_events::DomainEvent;
use crate::file::{Delivery, InterventionFile, NewFile, PartnerId, RecordedEvent};
use crate::lifecycle::{FileState, transition};
use crate::model::{Event, InterventionLog};
use crate::ports::{
    Clock, FinishDelivery, OpenFile, OpenFileResult, PublishDomainEvents, PublishToIntent,
    StoreError,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenOutcome {
    /// The file was created by this request.
    Created,
    /// The same claim was already stored: nothing new was done.
    Replayed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub outcome: OpenOutcome,
    pub file: InterventionFile,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "a claim must be open/acknowledged, not {pair}; closures go to /interventions/{{reference}}/closure"
    )]
    NotAnOpening { pair: String },
    #[error("file {} already exists with different content; it is {}", .existing.id, .existing.state)]
    Conflict { existing: Box<InterventionFile> },
    #[error(transparent)]
    InFuture(#[from] crate::lifecycle::EventInFuture),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the file for `log` on behalf of `owner`: two writes for a new claim (the file,
/// its opening, its outbox entry and the send lease; then the delivery's outcome, the
/// lease's release and the outbox's clearing), and one `PutEvents`; a replay is one read.
/// The file's items are stored with an expiry that covers their retention once the file is
/// closed within [`crate::lifecycle::OPEN_FILE_EXPIRY_MARGIN_DAYS`] (`policy`).
pub async fn open_intervention<S, I, E, C>(
    store: &S,
    intent: &I,
    events: &E,
    clock: &C,
    policy: crate::closure::ClosurePolicy,
    owner: PartnerId,
    log: InterventionLog,
) -> Result<Opened, OpenError>
where
    S: OpenFile + FinishDelivery,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
{
    if log.event != Event::Acknowledged {
        return Err(OpenError::NotAnOpening {
            pair: log.event.pair(),
        });
    }
    crate::lifecycle::check_not_in_future(log.event_date, clock.now())?;
    let state = transition(None, log.event, None).expect("acknowledged opens a file");
    debug_assert_eq!(state, FileState::Open);

    let now = clock.now();
    let opening = RecordedEvent::new(1, log, now, Delivery::new_pending());
    let new_file = NewFile {
        owner,
        opening,
        expires_at: Some(crate::lifecycle::open_file_expiry(now, policy.retention)),
    };
    let file = new_file.opened();
    let announce: Vec<DomainEvent> = DomainEvent::opened(&file).into_iter().collect();

    let sending_until = now.checked_add(send_lease_for(intent)).unwrap_or(now);
    match store
        .open_file_sending(&new_file, &announce, Some(sending_until))
        .await?
    {
        OpenFileResult::AlreadyExists(existing) => {
            let same_claim = existing.owner == new_file.owner
                && existing
                    .opening()
                    .is_some_and(|opening| opening.fingerprint == new_file.opening.fingerprint);
            if same_claim {
                tracing::info!("identical claim replayed; nothing sent again");
                Ok(Opened {
                    outcome: OpenOutcome::Replayed,
                    file: existing,
                })
            } else {
                Err(OpenError::Conflict {
                    existing: Box::new(existing),
                })
            }
        }
        OpenFileResult::Created => {
            tracing::info!("file opened and stored; delivering to Intent");
            // The outbox holds the announcement since the opening's write; it goes on the
            // bus with the delivery as it stands (same eventId).
            let file = deliver_under_lease(
                store,
                intent,
                events,
                clock,
                file,
                Deadline::none(),
                HeldLease {
                    until: sending_until,
                    taken_over: false,
                },
                |file| DomainEvent::opened(file).into_iter().collect(),
            )
            .await;
            Ok(Opened {
                outcome: OpenOutcome::Created,
                file,
            })
        }
    }
}
