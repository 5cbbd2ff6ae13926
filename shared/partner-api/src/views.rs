//! JSON views of a file for partners.

use oncall_domain::documents::DocumentRecord;
use oncall_domain::{Delivery, FileState, InterventionFile, InterventionLog, RecordedEvent};
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileView<'a> {
    pub reference: &'a str,
    pub contract_reference: &'a str,
    /// `open` or `closed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// For a write: where the event this request produced stands with Intent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<&'static str>,
    pub events: Vec<EventView<'a>>,
    /// Documents (quitus) published on Intent for this file.
    pub documents: &'a [DocumentRecord],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView<'a> {
    pub seq: u32,
    pub status: &'static str,
    pub event: &'static str,
    pub event_date: String,
    pub recorded_at: String,
    pub delivery: &'a Delivery,
    /// The event exactly as sent (or to be sent) to Intent (its wire form, written
    /// straight from the model).
    pub log: &'a InterventionLog,
}

fn event_view(event: &RecordedEvent) -> EventView<'_> {
    EventView {
        seq: event.seq,
        status: event.log.status.as_str(),
        event: event.pair.as_str(),
        event_date: event.log.event_date.to_intent_string(),
        recorded_at: event.recorded_at.to_string(),
        delivery: &event.delivery,
        log: &event.log,
    }
}

pub fn file_view(file: &InterventionFile) -> FileView<'_> {
    let (state, outcome) = match file.state {
        FileState::Open => ("open", None),
        FileState::Closed(outcome) => ("closed", Some(outcome.as_str())),
    };
    FileView {
        reference: &file.id.reference,
        contract_reference: &file.id.contract_reference,
        state,
        outcome,
        delivery: None,
        events: file.events.iter().map(event_view).collect(),
        documents: &file.documents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_domain::file::{NewFile, PartnerId};
    use oncall_domain::intent_examples::SEED_OPENING;
    use oncall_domain::validation::parse_intervention_log;

    #[test]
    fn an_event_log_is_shown_as_its_wire_form() {
        let mut value: serde_json::Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["intent_custom"] = serde_json::json!({"b": [1, 2.5], "a": "é \" \\"});
        let log = oncall_domain::validation::validate_intervention_log(&value).unwrap();
        let seed = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        for log in [log, seed] {
            let file = NewFile {
                owner: PartnerId("partner-a".into()),
                opening: RecordedEvent::new(
                    1,
                    log.clone(),
                    "2026-12-01T03:00:00Z".parse().unwrap(),
                    Delivery::new_pending(),
                ),
                expires_at: None,
            }
            .opened();
            let text = serde_json::to_string(&file_view(&file)).unwrap();
            let expected = format!(r#""log":{}}}],"documents":[]}}"#, log.to_wire_json());
            assert!(text.ends_with(&expected), "{text}");
        }
    }
}
