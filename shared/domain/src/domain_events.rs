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
    /// When it was refused: an object refused again after an operator's redrive is
    /// another refusal, with another `eventId`.
    pub rejected_at: jiff::Timestamp,
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

/// An event announced as not on Intent yet (the claim's or the closure's delivery
/// `pending`, or refused and then redriven by an operator) reached Intent later: sent by a
/// re-send run, after a redrive, before a quitus of its file, or before the closing that
/// followed it. An event delivered by the request that announced it is not announced again.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDelivered {
    pub reference: String,
    pub contract_reference: String,
    pub seq: u32,
    pub event: &'static str,
    pub attempts: u32,
    pub delivered_at: jiff::Timestamp,
}

/// The summary of an on-call closer run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnCallPeriodClosed {
    pub period: crate::calendar::OnCallPeriod,
    /// The run that summed the period up: each run's summary is its own event (its own
    /// `eventId`), even when two count the same.
    pub run_id: String,
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
    /// Documents Intent refused for good, waiting for an operator's redrive.
    pub rejected_documents: usize,
    pub unknown_on_intent: usize,
    pub closing_resent_after_reconciliation: usize,
    pub stopped_early: bool,
}

/// A domain event as the outbox keeps it, to be published again as it was written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct StoredEvent {
    #[serde(skip)]
    pub id: String,
    #[serde(skip)]
    pub detail_type: String,
    /// The `detail` as first written (with its `eventId`).
    pub detail: serde_json::Value,
}

/// What other parties are told. Every event carries an `eventId` in its detail, derived
/// from the change it announces: the same change published twice (the outbox guarantees
/// at least once) has the same id, for consumers to de-duplicate on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DomainEvent {
    DeliveryFailed(DeliveryFailed),
    EventDelivered(EventDelivered),
    OnCallPeriodClosed(OnCallPeriodClosed),
    InterventionOpened(InterventionOpened),
    InterventionClosed(InterventionClosed),
    DocumentPublished(DocumentPublished),
    DocumentRejected(DocumentRejected),
    /// Read back from the outbox.
    Stored(StoredEvent),
}

impl DomainEvent {
    /// The EventBridge `detail-type`.
    pub fn detail_type(&self) -> &str {
        match self {
            DomainEvent::Stored(stored) => &stored.detail_type,
            DomainEvent::InterventionOpened(_) => "InterventionOpened",
            DomainEvent::InterventionClosed(_) => "InterventionClosed",
            DomainEvent::DocumentPublished(_) => "DocumentPublished",
            DomainEvent::DocumentRejected(_) => "DocumentRejected",
            DomainEvent::DeliveryFailed(_) => "DeliveryFailed",
            DomainEvent::EventDelivered(_) => "EventDelivered",
            DomainEvent::OnCallPeriodClosed(_) => "OnCallPeriodClosed",
        }
    }

    /// The event's identity: the same change, the same id.
    pub fn event_id(&self) -> String {
        let parts: Vec<String> = match self {
            DomainEvent::Stored(stored) => return stored.id.clone(),
            DomainEvent::InterventionOpened(e) => vec![
                e.contract_reference.clone(),
                e.reference.clone(),
                e.event_date.to_intent_string(),
            ],
            DomainEvent::InterventionClosed(e) => vec![
                e.contract_reference.clone(),
                e.reference.clone(),
                e.event_date.to_intent_string(),
            ],
            DomainEvent::DeliveryFailed(e) => vec![
                e.contract_reference.clone(),
                e.reference.clone(),
                e.seq.to_string(),
                e.attempts.to_string(),
            ],
            // An event reaches Intent once.
            DomainEvent::EventDelivered(e) => vec![
                e.contract_reference.clone(),
                e.reference.clone(),
                e.seq.to_string(),
            ],
            DomainEvent::DocumentPublished(e) => vec![e.object_identity.clone()],
            DomainEvent::DocumentRejected(e) => {
                vec![e.object_identity.clone(), e.rejected_at.to_string()]
            }
            DomainEvent::OnCallPeriodClosed(e) => {
                vec![serde_json::to_string(e).expect("domain events always serialise")]
            }
        };
        let mut all: Vec<&str> = vec![self.detail_type()];
        all.extend(parts.iter().map(String::as_str));
        crate::fingerprint::fingerprint_text(&all)[..32].to_string()
    }

    /// The `detail`: the event's fields and its `eventId`.
    pub fn detail_value(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("domain events always serialise");
        if let serde_json::Value::Object(map) = &mut value {
            map.entry("eventId")
                .or_insert_with(|| serde_json::Value::String(self.event_id()));
        }
        value
    }

    /// [`DomainEvent::detail_value`] as text, written without the intermediate tree (once
    /// per event in the outbox and once on the bus): the same text.
    pub fn detail_json(&self) -> String {
        #[derive(Serialize)]
        struct WithId<'a> {
            #[serde(flatten)]
            event: &'a DomainEvent,
            #[serde(rename = "eventId")]
            event_id: String,
        }
        match self {
            DomainEvent::Stored(stored) if stored.detail.get("eventId").is_some() => {
                stored.detail.to_string()
            }
            // Kept without its id (not written by this code): given it, as before.
            DomainEvent::Stored(_) => self.detail_value().to_string(),
            event => serde_json::to_string(&WithId {
                event,
                event_id: event.event_id(),
            })
            .expect("domain events always serialise"),
        }
    }

    /// As the outbox keeps it.
    pub fn stored(&self) -> StoredEvent {
        StoredEvent {
            id: self.event_id(),
            detail_type: self.detail_type().to_string(),
            detail: self.detail_value(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator's redrive puts a document Intent refused back to waiting; refused again
    /// (by Intent, or because its file was canceled meanwhile), that is another change:
    /// consumers de-duplicating on `eventId` must not drop it, nor its outbox entry
    /// overwrite the first one's.
    #[test]
    fn two_refusals_of_one_document_are_two_events() {
        let refusal = |reason, at: &str| {
            DomainEvent::DocumentRejected(DocumentRejected {
                reference: Some("INTER-0500".into()),
                contract_reference: Some("contract1".into()),
                bucket: "quitus".into(),
                object_identity: "quitus/contract1/INTER-0500/q.pdf#v1".into(),
                reason,
                detail: "refused".into(),
                rejected_at: at.parse().unwrap(),
            })
        };
        let first = refusal(RejectionReason::IntentRejected, "2026-12-01T03:00:00Z");
        for again in [
            refusal(RejectionReason::FileCanceled, "2026-12-01T09:00:00Z"),
            refusal(RejectionReason::IntentRejected, "2026-12-01T09:00:00Z"),
        ] {
            assert_ne!(first.event_id(), again.event_id());
        }
        assert_eq!(
            first.event_id(),
            first.clone().event_id(),
            "the same change, the same id"
        );
    }

    #[test]
    fn the_detail_text_is_the_detail_value_written_out() {
        let date =
            IntentDateTime::from_timestamp(jiff::Timestamp::from_second(1_795_892_638).unwrap());
        let opened = DomainEvent::InterventionOpened(InterventionOpened {
            reference: "INTER-0500".into(),
            contract_reference: "contract \"1\"".into(),
            service_code: "CHAUFFAGE".into(),
            event_date: date,
            critical_level: Some(2),
            delivery: "delivered",
        });
        let closed = DomainEvent::InterventionClosed(InterventionClosed {
            reference: "INTER-0500".into(),
            contract_reference: "contract1".into(),
            outcome: "done",
            event_date: date,
            closed_by: "partner",
            delivery: "pending",
        });
        let failed = DomainEvent::DeliveryFailed(DeliveryFailed {
            reference: "INTER-0500".into(),
            contract_reference: "contract1".into(),
            seq: 2,
            event: "closed/done",
            attempts: 5,
        });
        let published = DomainEvent::DocumentPublished(DocumentPublished {
            reference: "INTER-0500".into(),
            contract_reference: "contract1".into(),
            object_identity: "abc".into(),
            size: 42,
            intent_document_id: None,
        });
        let stored = DomainEvent::Stored(opened.stored());
        let without_id = DomainEvent::Stored(StoredEvent {
            id: "0123".into(),
            detail_type: "InterventionOpened".into(),
            detail: serde_json::json!({"reference": "INTER-0500"}),
        });
        assert_eq!(
            without_id.detail_json(),
            r#"{"reference":"INTER-0500","eventId":"0123"}"#
        );
        for event in [&opened, &closed, &failed, &published, &stored, &without_id] {
            assert_eq!(event.detail_json(), event.detail_value().to_string());
        }
        assert!(
            opened
                .detail_json()
                .ends_with(&format!(",\"eventId\":\"{}\"}}", opened.event_id())),
            "{}",
            opened.detail_json()
        );
    }
}
