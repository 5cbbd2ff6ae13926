//! The intervention log event as Intent knows it (`POST operations/v2/interventions/logs`),
//! with Intent's wire names. Unknown fields are kept and forwarded, never dropped.

use crate::contact::Contact;
use crate::datetime::IntentDateTime;
use crate::sensitive::Sensitive;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Intent's intervention statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Pending,
    Hold,
    Closed,
    Denied,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::Pending,
        Status::Hold,
        Status::Closed,
        Status::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Hold => "hold",
            Status::Closed => "closed",
            Status::Denied => "denied",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// The events of the corrective on-call flow (the seed's four steps). Intent knows other
/// events; they belong to other flows and this bridge refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Acknowledged,
    Done,
    PartialRepair,
    Canceled,
}

impl Event {
    pub const ALL: [Event; 4] = [
        Event::Acknowledged,
        Event::Done,
        Event::PartialRepair,
        Event::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Acknowledged => "acknowledged",
            Event::Done => "done",
            Event::PartialRepair => "partial_repair",
            Event::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }

    /// The one status this event travels with on Intent.
    pub fn status(self) -> Status {
        match self {
            Event::Acknowledged => Status::Open,
            Event::Done | Event::PartialRepair => Status::Closed,
            Event::Canceled => Status::Denied,
        }
    }

    /// `open/acknowledged`, `closed/done`, …
    pub fn pair(self) -> String {
        format!("{}/{}", self.status().as_str(), self.as_str())
    }
}

/// Only corrective work ("intervention mère") is published by the on-call bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkType {
    Corrective,
}

impl WorkType {
    pub const ALL: [WorkType; 1] = [WorkType::Corrective];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkType::Corrective => "corrective",
        }
    }
}

/// Where the intervention takes place. The postal address is personal data.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub asset_reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Sensitive<Map<String, Value>>>,
    #[serde(flatten)]
    pub extra: Sensitive<Map<String, Value>>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Location")
            // A dwelling's reference can point at its tenant.
            .field("asset_reference", &"[redacted]")
            .field("address", &self.address.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// One event of an intervention's log, exactly as it is sent to Intent.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterventionLog {
    pub reference: String,
    pub contract_reference: String,
    pub status: Status,
    pub event: Event,
    pub event_date: IntentDateTime,
    pub log_date: IntentDateTime,
    pub service_code: String,
    pub location: Location,
    pub work_type: WorkType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Sensitive<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<Contact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equipment_working_order: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equipment_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupant_signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technical_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_reference: Option<String>,
    /// Fields this bridge does not know, forwarded as received. They may hold personal
    /// data, so they are redacted from `Debug` like the rest.
    #[serde(flatten)]
    pub extra: Sensitive<Map<String, Value>>,
}

impl InterventionLog {
    pub fn file_id(&self) -> FileId {
        FileId::new(&self.reference, &self.contract_reference)
    }

    /// The JSON body sent to Intent.
    pub fn to_wire_json(&self) -> Value {
        serde_json::to_value(self).expect("an intervention log always serialises")
    }
}

impl fmt::Debug for InterventionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterventionLog")
            .field("reference", &self.reference)
            .field("contract_reference", &self.contract_reference)
            .field("status", &self.status)
            .field("event", &self.event)
            .field("event_date", &self.event_date)
            .field("log_date", &self.log_date)
            .field("service_code", &self.service_code)
            .field("location", &self.location)
            .field("work_type", &self.work_type)
            .field("description", &self.description)
            .field("contacts", &self.contacts.as_ref().map(Vec::len))
            .field("critical_level", &self.critical_level)
            .field("visit_attempt", &self.visit_attempt)
            .field("equipment_working_order", &self.equipment_working_order)
            .field(
                "extra_fields",
                &self.extra.expose().keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// An intervention file's identity on Intent: its reference within a contract.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileId {
    pub reference: String,
    pub contract_reference: String,
}

impl FileId {
    pub fn new(reference: &str, contract_reference: &str) -> Self {
        Self {
            reference: reference.to_string(),
            contract_reference: contract_reference.to_string(),
        }
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reference, self.contract_reference)
    }
}
