//! How the closer closes and re-sends: the outcome and report of an automatic closure,
//! the concurrency, and the capped backoff across runs.

use crate::closure::ClosurePolicy;
use crate::file::Delivery;
use crate::lifecycle::Outcome;
use jiff::{SignedDuration, Timestamp};

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
