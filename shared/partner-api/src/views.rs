//! JSON views of a file for partners.

use oncall_domain::documents::DocumentRecord;
use oncall_domain::{Delivery, FileState, InterventionFile, RecordedEvent};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub reference: String,
    pub contract_reference: String,
    /// `open` or `closed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// For a write: where the event this request produced stands with Intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<&'static str>,
    pub events: Vec<EventView>,
    /// Documents (quitus) published on Intent for this file.
    pub documents: Vec<DocumentRecord>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub seq: u32,
    pub status: &'static str,
    pub event: &'static str,
    pub event_date: String,
    pub recorded_at: String,
    pub delivery: Delivery,
    /// The event exactly as sent (or to be sent) to Intent.
    pub log: Value,
}

fn event_view(event: &RecordedEvent) -> EventView {
    EventView {
        seq: event.seq,
        status: event.log.status.as_str(),
        event: event.pair.as_str(),
        event_date: event.log.event_date.to_intent_string(),
        recorded_at: event.recorded_at.to_string(),
        delivery: event.delivery.clone(),
        log: event.log.to_wire_json(),
    }
}

pub fn file_view(file: &InterventionFile) -> FileView {
    let (state, outcome) = match file.state {
        FileState::Open => ("open", None),
        FileState::Closed(outcome) => ("closed", Some(outcome.as_str())),
    };
    FileView {
        reference: file.id.reference.clone(),
        contract_reference: file.id.contract_reference.clone(),
        state,
        outcome,
        delivery: None,
        events: file.events.iter().map(event_view).collect(),
        documents: file.documents.clone(),
    }
}
