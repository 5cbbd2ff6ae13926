//! Domain events: what other parties are told happened. They carry no tenant personal
//! data (no description, contacts, address or asset).

use crate::datetime::IntentDateTime;
use crate::documents::RejectionReason;
use crate::file::InterventionFile;
use crate::lifecycle::FileState;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InterventionOpened {
    pub reference: String,
    pub contract_reference: String,
    pub service_code: String,
    pub event_date: IntentDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_level: Option<i64>,
    /// `delivered`, `pending` or `failed`: where the opening stands with Intent.
    pub delivery: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InterventionClosed {
    pub reference: String,
    pub contract_reference: String,
    /// `done`, `partial_repair` or `canceled`.
    pub outcome: &'static str,
    pub event_date: IntentDateTime,
    /// Who closed it: `partner`, or `on_call_closer` at the end of a period.
    pub closed_by: &'static str,
    /// Where the closing event stands with Intent.
    pub delivery: &'static str,
}

/// A quitus reached the file on Intent. No file name or title: they may name the tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentPublished {
    pub reference: String,
    pub contract_reference: String,
    pub object_identity: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent_document_id: Option<String>,
}

/// A dropped object was refused for good (not a PDF, too large, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentRejected {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_reference: Option<String>,
    pub bucket: String,
    pub object_identity: String,
    pub reason: RejectionReason,
    pub detail: String,
}

/// An event was given up after its attempts: it will not reach Intent without help.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFailed {
    pub reference: String,
    pub contract_reference: String,
    pub seq: u32,
    pub event: &'static str,
    pub attempts: u32,
}

/// The summary of an on-call closer run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnCallPeriodClosed {
    pub period: crate::calendar::OnCallPeriod,
    pub files_closed: usize,
    pub already_closed: usize,
    /// Closings of this run Intent refused for good.
    pub closings_refused: usize,
    /// Closings of this run not on Intent yet.
    pub closings_pending: usize,
    pub resent: usize,
    /// Events not on Intent once the run is over: pending plus refused.
    pub still_failing: usize,
    pub pending_events: usize,
    pub failed_events: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_pending_since: Option<jiff::Timestamp>,
    pub pending_documents: usize,
    pub unknown_on_intent: usize,
    pub closing_resent_after_reconciliation: usize,
    pub stopped_early: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DomainEvent {
    DeliveryFailed(DeliveryFailed),
    OnCallPeriodClosed(OnCallPeriodClosed),
    InterventionOpened(InterventionOpened),
    InterventionClosed(InterventionClosed),
    DocumentPublished(DocumentPublished),
    DocumentRejected(DocumentRejected),
}

impl DomainEvent {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            DomainEvent::InterventionOpened(_) => "InterventionOpened",
            DomainEvent::InterventionClosed(_) => "InterventionClosed",
            DomainEvent::DocumentPublished(_) => "DocumentPublished",
            DomainEvent::DocumentRejected(_) => "DocumentRejected",
            DomainEvent::DeliveryFailed(_) => "DeliveryFailed",
            DomainEvent::OnCallPeriodClosed(_) => "OnCallPeriodClosed",
        }
    }

    pub fn detail_json(&self) -> String {
        serde_json::to_string(self).expect("domain events always serialise")
    }

    pub fn opened(file: &InterventionFile) -> Option<Self> {
        let opening = file.opening()?;
        Some(DomainEvent::InterventionOpened(InterventionOpened {
            reference: file.id.reference.clone(),
            contract_reference: file.id.contract_reference.clone(),
            service_code: opening.log.service_code.clone(),
            event_date: opening.log.event_date,
            critical_level: opening.log.critical_level,
            delivery: opening.delivery.label(),
        }))
    }
}

impl DomainEvent {
    pub fn closed(file: &InterventionFile, closed_by: &'static str) -> Option<Self> {
        let FileState::Closed(outcome) = file.state else {
            return None;
        };
        let closing = file.last_event()?;
        Some(DomainEvent::InterventionClosed(InterventionClosed {
            reference: file.id.reference.clone(),
            contract_reference: file.id.contract_reference.clone(),
            outcome: outcome.as_str(),
            event_date: closing.log.event_date,
            closed_by,
            delivery: closing.delivery.label(),
        }))
    }
}
