//! Use cases of the on-call closer: at the end of each on-call period, nothing stays open
//! on Intent ("Aucune intervention ne doit rester ouverte sur Intent").
//!
//! - [`close_stragglers`]: every file still open that was opened before the period's end
//!   is closed (by default `closed/partial_repair`: the regular maintenance provider takes
//!   over), with bounded concurrency. A partner closing the same file at the same moment
//!   wins or loses cleanly (the closure is one conditional write); running the same
//!   period twice finds nothing left to close.
//! - [`resend_pending`]: every event Intent has not acknowledged is sent again, in order
//!   per file, with a capped backoff across runs, for as long as it takes (an outage of
//!   a weekend is waited out); only Intent's refusal of the content fails an event, and
//!   that is reported where it happens.
//! - [`reconcile`]: what Intent itself still shows open is compared with our files: a file
//!   we closed gets its closing event sent again; a file we never knew is reported.
//!
//! Each stops scheduling new work when the deadline is near; the next tick continues.
//! One module per use case; [`crate::closer_run`] runs them in sequence.

mod closing;
mod policy;
mod reconcile;
mod resend;

pub use crate::delivery::Deadline;
pub use closing::{ClosingReport, StragglerScope, automatic_closure, close_stragglers};
pub use policy::{AUTOMATIC_CLOSURE_DESCRIPTION, CloserPolicy};
pub use reconcile::{ReconcileReport, period_summary, reconcile};
pub use resend::{ResendReport, resend_pending};
