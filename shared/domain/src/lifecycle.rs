//! The corrective flow's only legal transitions:
//!
//! ```text
//!   (none) --acknowledged--> open --done-----------> closed (done)
//!                                 --partial_repair--> closed (partial_repair)
//!                                 --canceled--------> closed (canceled)   [status denied]
//! ```
//! A closed file is terminal.

use crate::model::Event;

/// Days a closed file's data (its events hold tenants' personal data) is kept by default:
/// 13 months, a full annual follow-up cycle plus a month for disputes raised at the
/// anniversary; Intent remains the record of reference after that.
pub const CLOSED_FILE_RETENTION_DAYS: i64 = 395;

/// When data kept for `retention` from `from` expires. Arithmetic that cannot be done (a
/// retention no setting allows) keeps the data rather than erasing it at once: never a
/// silent fallback to "now".
pub fn expiry_after(from: jiff::Timestamp, retention: jiff::SignedDuration) -> jiff::Timestamp {
    from.checked_add(retention).unwrap_or_else(|_| {
        tracing::error!(
            retention_hours = retention.as_hours(),
            "a retention past the calendar; the data is kept"
        );
        jiff::Timestamp::MAX
    })
}

/// Days an open file's items are kept beyond the retention, counted from when they are
/// stored. A file is closed at the latest when its on-call period ends (days; about two
/// weeks over Christmas with company closures), so the expiry its opening gets when it is
/// stored already covers the closing's (closing time + retention): the closing need not
/// write the opening again (one item less in its transaction: a billed write, and a sixth
/// of what each of the closer's stragglers cost); the file's other items then expire with
/// the opening, at most these days after closing time + retention (DynamoDB's TTL itself
/// erases items within days of their expiry). A file closed later, or whose retention was
/// shortened since its claim, has its opening's expiry written again by its closing.
pub const OPEN_FILE_EXPIRY_MARGIN_DAYS: i64 = 14;

/// The least an open file's items are kept from when they are stored: longer than any
/// on-call period (company closures included: one range may cover up to
/// [`crate::calendar::MAX_CLOSURE_RANGE_DAYS`]), so an open file never expires before it
/// is closed, whatever the retention.
pub const OPEN_FILE_MIN_KEPT_DAYS: i64 = 400;

fn days(count: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(24 * count)
}

/// The expiry an open file's items get when they are stored at `stored_at`: the retention
/// and [`OPEN_FILE_EXPIRY_MARGIN_DAYS`] ahead, [`OPEN_FILE_MIN_KEPT_DAYS`] at least.
pub fn open_file_expiry(
    stored_at: jiff::Timestamp,
    retention: jiff::SignedDuration,
) -> jiff::Timestamp {
    expiry_after(
        stored_at,
        retention
            .saturating_add(days(OPEN_FILE_EXPIRY_MARGIN_DAYS))
            .max(days(OPEN_FILE_MIN_KEPT_DAYS)),
    )
}

/// When a quitus's record, published at `published_at`, expires: with its file (whose
/// expiry, `file_expires_at`, its opening or its closing set), never more than
/// [`OPEN_FILE_EXPIRY_MARGIN_DAYS`] after its publication + `retention`: an open file's
/// expiry, set at its claim, lies far beyond its closing's when the retention is short (400
/// days at least), and the closing does not write the records again.
pub fn document_expiry(
    file_expires_at: Option<jiff::Timestamp>,
    published_at: jiff::Timestamp,
    retention: jiff::SignedDuration,
) -> jiff::Timestamp {
    let own = expiry_after(
        published_at,
        retention.saturating_add(days(OPEN_FILE_EXPIRY_MARGIN_DAYS)),
    );
    file_expires_at.map_or(own, |file| file.min(own))
}

/// When a closed file's items expire (`at`), and whether the closing writes that on the
/// items stored before it (`earlier_items`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosingExpiry {
    pub at: jiff::Timestamp,
    pub earlier_items: bool,
}

impl ClosingExpiry {
    /// The expiry of a file closed with `retention_ends` (closing time + retention), whose
    /// items stored so far expire at `earlier_expire_at` (none: never, a file stored before
    /// they were given one). When that lies from `retention_ends` to the margin after it,
    /// the whole file expires with it and the earlier items are left as stored; otherwise
    /// (none, too early, or too late: the retention was shortened since) the file expires at
    /// `retention_ends` and the closing writes that on the earlier items too.
    pub fn new(
        retention_ends: jiff::Timestamp,
        earlier_expire_at: Option<jiff::Timestamp>,
    ) -> Self {
        let latest = retention_ends
            .checked_add(days(OPEN_FILE_EXPIRY_MARGIN_DAYS))
            .unwrap_or(jiff::Timestamp::MAX);
        match earlier_expire_at {
            Some(earlier) if (retention_ends..=latest).contains(&earlier) => Self {
                at: earlier,
                earlier_items: false,
            },
            _ => Self {
                at: retention_ends,
                earlier_items: true,
            },
        }
    }
}

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a file was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    PartialRepair,
    Canceled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::PartialRepair => "partial_repair",
            Outcome::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Outcome::Done, Outcome::PartialRepair, Outcome::Canceled]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }

    pub fn event(self) -> Event {
        match self {
            Outcome::Done => Event::Done,
            Outcome::PartialRepair => Event::PartialRepair,
            Outcome::Canceled => Event::Canceled,
        }
    }
}

/// Where a file stands in our own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", content = "outcome", rename_all = "snake_case")]
pub enum FileState {
    Open,
    Closed(Outcome),
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileState::Open => f.write_str("open"),
            FileState::Closed(outcome) => write!(f, "closed ({})", outcome.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("no file exists yet: the first event must be open/acknowledged, not {}", .attempted.pair())]
    NotOpened { attempted: Event },
    #[error("the file is already open: it cannot be acknowledged again")]
    AlreadyOpen,
    #[error("the file is {current}: a closed file is terminal and cannot receive {}", .attempted.pair())]
    AlreadyClosed {
        current: FileState,
        attempted: Event,
    },
    #[error("the file can no longer be canceled at reception: {reason}")]
    CancelTooLate { reason: &'static str },
}

/// Applies `event` to a file in `current` state (None: no file yet).
///
/// `activity_since_opening` tells what happened to an open file since it was opened (a
/// later event, a quitus received), if anything: canceling at reception is only legal
/// before that.
pub fn transition(
    current: Option<FileState>,
    event: Event,
    activity_since_opening: Option<&'static str>,
) -> Result<FileState, TransitionError> {
    match (current, event) {
        (None, Event::Acknowledged) => Ok(FileState::Open),
        (None, attempted) => Err(TransitionError::NotOpened { attempted }),
        (Some(FileState::Open), Event::Acknowledged) => Err(TransitionError::AlreadyOpen),
        (Some(FileState::Open), Event::Done) => Ok(FileState::Closed(Outcome::Done)),
        (Some(FileState::Open), Event::PartialRepair) => {
            Ok(FileState::Closed(Outcome::PartialRepair))
        }
        (Some(FileState::Open), Event::Canceled) => match activity_since_opening {
            Some(reason) => Err(TransitionError::CancelTooLate { reason }),
            None => Ok(FileState::Closed(Outcome::Canceled)),
        },
        (Some(current @ FileState::Closed(_)), attempted) => {
            Err(TransitionError::AlreadyClosed { current, attempted })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quitus's record goes with its file: the opening's expiry with the default
    /// retention, the closing's once closed; with a short retention, the margin after its
    /// own publication + retention, not the 400 days an open file is kept.
    #[test]
    fn a_quitus_record_expires_with_its_file_never_long_after_its_retention() {
        let claimed: jiff::Timestamp = "2026-11-27T22:00:00Z".parse().unwrap();
        let published = claimed + days(1);
        let default = days(CLOSED_FILE_RETENTION_DAYS);
        let opening = open_file_expiry(claimed, default);
        assert_eq!(document_expiry(Some(opening), published, default), opening);
        let closed = ClosingExpiry::new(expiry_after(claimed, default), Some(opening)).at;
        let after_closing = claimed + days(2);
        assert_eq!(
            document_expiry(Some(closed), after_closing, default),
            closed
        );

        let short = days(30);
        let opening = open_file_expiry(claimed, short);
        assert_eq!(opening, claimed + days(OPEN_FILE_MIN_KEPT_DAYS));
        assert_eq!(
            document_expiry(Some(opening), published, short),
            published + days(30 + OPEN_FILE_EXPIRY_MARGIN_DAYS)
        );
        assert_eq!(
            document_expiry(None, published, short),
            published + days(30 + OPEN_FILE_EXPIRY_MARGIN_DAYS)
        );
    }

    /// An opening is stored with the retention and the margin ahead of it: a closing
    /// within the margin leaves it as stored, and the file expires with it; a later one, a
    /// file stored without an expiry, or a retention shortened since, has it written again.
    #[test]
    fn a_closing_writes_the_earlier_items_expiry_only_when_it_falls_short() {
        let day = jiff::SignedDuration::from_hours(24);
        let retention = 395 * day;
        let stored: jiff::Timestamp = "2026-12-01T22:00:00Z".parse().unwrap();
        let opening = open_file_expiry(stored, retention);
        assert_eq!(opening, stored + retention + 14 * day);
        for (closed_after, extended) in [(day, false), (14 * day, false), (15 * day, true)] {
            let ends = expiry_after(stored + closed_after, retention);
            let expiry = ClosingExpiry::new(ends, Some(opening));
            assert_eq!(
                expiry.earlier_items, extended,
                "closed {closed_after:?} after"
            );
            let at = if extended { ends } else { opening };
            assert_eq!(expiry.at, at, "closed {closed_after:?} after");
        }
        assert_eq!(
            ClosingExpiry::new(stored + retention, None),
            ClosingExpiry {
                at: stored + retention,
                earlier_items: true
            }
        );
        // The retention was shortened since the claim: the file expires with the new one.
        let shortened = expiry_after(stored + day, 30 * day);
        assert_eq!(
            ClosingExpiry::new(shortened, Some(opening)),
            ClosingExpiry {
                at: shortened,
                earlier_items: true
            }
        );
    }

    /// However short the retention, an open file is kept longer than any on-call period.
    #[test]
    fn an_open_file_is_kept_at_least_four_hundred_days() {
        let day = jiff::SignedDuration::from_hours(24);
        let stored: jiff::Timestamp = "2026-07-30T22:00:00Z".parse().unwrap();
        assert_eq!(open_file_expiry(stored, day), stored + 400 * day);
        assert_eq!(open_file_expiry(stored, 7 * day), stored + 400 * day);
        assert_eq!(open_file_expiry(stored, 395 * day), stored + 409 * day);
    }

    #[test]
    fn a_file_opens_once_then_closes_once() {
        assert_eq!(
            transition(None, Event::Acknowledged, None),
            Ok(FileState::Open)
        );
        for (event, outcome) in [
            (Event::Done, Outcome::Done),
            (Event::PartialRepair, Outcome::PartialRepair),
            (Event::Canceled, Outcome::Canceled),
        ] {
            let closed = transition(Some(FileState::Open), event, None).unwrap();
            assert_eq!(closed, FileState::Closed(outcome));
            for next in Event::ALL {
                let error = transition(Some(closed), next, None).unwrap_err();
                assert!(
                    error.to_string().contains(&closed.to_string()),
                    "{error} names the current state"
                );
            }
        }
    }

    #[test]
    fn nothing_but_an_opening_starts_a_file() {
        for event in [Event::Done, Event::PartialRepair, Event::Canceled] {
            assert_eq!(
                transition(None, event, None),
                Err(TransitionError::NotOpened { attempted: event })
            );
        }
        assert_eq!(
            transition(Some(FileState::Open), Event::Acknowledged, None),
            Err(TransitionError::AlreadyOpen)
        );
    }

    #[test]
    fn cancel_at_reception_only_while_nothing_happened() {
        let quitus = Some("a signed quitus was received for it");
        assert_eq!(
            transition(Some(FileState::Open), Event::Canceled, quitus),
            Err(TransitionError::CancelTooLate {
                reason: "a signed quitus was received for it"
            })
        );
        assert!(transition(Some(FileState::Open), Event::Done, quitus).is_ok());
    }

    #[test]
    fn each_event_has_its_status() {
        let pairs: Vec<String> = Event::ALL.iter().map(|event| event.pair()).collect();
        assert_eq!(
            pairs,
            [
                "open/acknowledged",
                "closed/done",
                "closed/partial_repair",
                "denied/canceled"
            ]
        );
    }
}

/// How far in the future an `eventDate` may be (clock skew between a partner and us). A
/// later date is refused: a file "opened" tomorrow would escape tonight's closing.
pub const MAX_CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("eventDate {event_date} is in the future (now is {now})")]
pub struct EventInFuture {
    pub event_date: crate::datetime::IntentDateTime,
    pub now: crate::datetime::IntentDateTime,
}

/// Refuses an event dated after `now` (beyond the allowed clock skew).
pub fn check_not_in_future(
    event_date: crate::datetime::IntentDateTime,
    now: jiff::Timestamp,
) -> Result<(), EventInFuture> {
    let latest = now.checked_add(MAX_CLOCK_SKEW).unwrap_or(now);
    if event_date.timestamp() > latest {
        Err(EventInFuture {
            event_date,
            now: crate::datetime::IntentDateTime::from_timestamp(now),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn an_impossible_retention_keeps_the_data_instead_of_erasing_it_now() {
        let now: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        assert_eq!(
            expiry_after(now, jiff::SignedDuration::from_hours(24 * 395)),
            "2027-12-31T10:00:00Z".parse().unwrap()
        );
        assert_eq!(
            expiry_after(now, jiff::SignedDuration::MAX),
            jiff::Timestamp::MAX,
            "never now"
        );
    }
}
