//! The on-call intervention bridge's domain: the intervention model with Intent's wire
//! names, its validation, the lifecycle of the corrective flow, and the use cases over
//! narrow ports. No AWS types, no HTTP client: adapters live in their own crates.

pub mod calendar;
pub mod closer_run;
pub mod closure;
pub mod contact;
pub mod datetime;
pub mod deadline;
pub mod delivery;
pub mod documents;
pub mod domain_events;
pub mod file;
pub mod fingerprint;
pub mod forward;
#[cfg(any(test, feature = "in-memory"))]
pub mod in_memory;
pub mod intake;
pub mod intent_examples;
pub mod lifecycle;
pub mod model;
pub mod oncall;
pub mod outbox;
pub mod ports;
pub mod redrive;
pub mod sensitive;
pub mod uploads;
pub mod validation;

pub use contact::Contact;
pub use datetime::IntentDateTime;
pub use domain_events::DomainEvent;
pub use file::{Delivery, InterventionFile, NewFile, PartnerId, RecordedEvent};
pub use lifecycle::{FileState, Outcome, TransitionError};
pub use model::{Event, FileId, InterventionLog, Location, Status, WorkType};
pub use sensitive::Sensitive;
pub use validation::{FieldError, InputError};
