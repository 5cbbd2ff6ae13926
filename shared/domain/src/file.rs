//! An intervention file as we keep it: its state, its ordered event log, and for each
//! event whether Intent has it yet.

use crate::documents::DocumentRecord;
pub use crate::fingerprint::{fingerprint, fingerprint_text};
use crate::lifecycle::FileState;
use crate::model::{Event, FileId, InterventionLog};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The partner (API client) that acts on a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartnerId(pub String);

/// Where one event stands with Intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Delivery {
    /// Not yet accepted by Intent; it will be sent (again). `attempts` counts the HTTP
    /// calls made for it, failed reads of Intent included (the backoff across runs grows
    /// with them).
    #[serde(rename_all = "camelCase")]
    Pending {
        attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_attempt_at: Option<Timestamp>,
        /// An earlier attempt may have reached Intent (its answer was lost, or its sender
        /// died or could not record the outcome): Intent is read before sending again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        in_doubt: bool,
    },
    /// Intent answered 204 (or, after a lost answer, Intent's log shows the event).
    #[serde(rename_all = "camelCase")]
    Delivered {
        attempts: u32,
        delivered_at: Timestamp,
    },
    /// Intent refused its content for good (a 4xx other than 401/404/408/429). Only an
    /// operator's redrive sends it again.
    #[serde(rename_all = "camelCase")]
    Failed {
        attempts: u32,
        last_error: String,
        last_attempt_at: Timestamp,
    },
}

impl Delivery {
    /// A new event, never sent.
    pub fn new_pending() -> Self {
        Delivery::Pending {
            attempts: 0,
            last_error: None,
            last_attempt_at: None,
            in_doubt: false,
        }
    }

    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered { .. })
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, Delivery::Pending { .. })
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Delivery::Failed { .. })
    }

    /// Whether Intent must be read before this event is sent again.
    pub fn in_doubt(&self) -> bool {
        matches!(self, Delivery::Pending { in_doubt: true, .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Delivery::Pending { .. } => "pending",
            Delivery::Delivered { .. } => "delivered",
            Delivery::Failed { .. } => "failed",
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            Delivery::Pending { attempts, .. }
            | Delivery::Delivered { attempts, .. }
            | Delivery::Failed { attempts, .. } => *attempts,
        }
    }
}

/// One event of a file's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// 1 for the opening, then 2, 3, … in the order Intent must receive them.
    pub seq: u32,
    /// The status/event pair (as in the stored format: `event`).
    #[serde(rename = "event")]
    pub pair: Event,
    pub log: InterventionLog,
    pub recorded_at: Timestamp,
    /// Identifies the content, to tell an identical replay from a conflicting request.
    pub fingerprint: String,
    pub delivery: Delivery,
}

impl RecordedEvent {
    /// Event `seq` of a file: `log` as received at `recorded_at`, standing with Intent as
    /// `delivery`; its pair and fingerprint are the log's.
    pub fn new(seq: u32, log: InterventionLog, recorded_at: Timestamp, delivery: Delivery) -> Self {
        Self {
            seq,
            pair: log.event,
            fingerprint: fingerprint(&log),
            recorded_at,
            delivery,
            log,
        }
    }
}

/// A file and its whole history. Serialisable for embedded stores that keep a file as
/// one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterventionFile {
    pub id: FileId,
    pub state: FileState,
    pub owner: PartnerId,
    pub events: Vec<RecordedEvent>,
    /// Documents (quitus) published on Intent for this file, oldest first.
    pub documents: Vec<DocumentRecord>,
    /// A quitus for this file was received and passed its checks: marked before it is
    /// uploaded to Intent (so a cancellation racing the upload is refused, the mark being
    /// tested by the closing's own write), and kept whatever Intent answers: a signed
    /// quitus proves the intervention took place. Set whenever `documents` is not empty.
    #[serde(default)]
    pub quitus_received: bool,
    /// When the file's data expires: closing time + retention once closed; while open, the
    /// expiry its opening got when it was stored (none for files stored before openings got
    /// one).
    pub expires_at: Option<Timestamp>,
}

impl InterventionFile {
    /// Whether it is closed and its data has expired at `now`: a store then holds it as
    /// gone, erased or not yet (a table's TTL lags, a local purge runs now and then). An
    /// open file is the closer's to close, whatever the expiry its opening was stored with.
    pub fn has_expired(&self, now: Timestamp) -> bool {
        matches!(self.state, crate::lifecycle::FileState::Closed(_))
            && self.expires_at.is_some_and(|at| at <= now)
    }

    /// `file` unless it has expired at `now`.
    pub fn unless_expired(file: Option<Self>, now: Timestamp) -> Option<Self> {
        file.filter(|file| !file.has_expired(now))
    }

    pub fn opening(&self) -> Option<&RecordedEvent> {
        self.events.first()
    }

    pub fn last_event(&self) -> Option<&RecordedEvent> {
        self.events.last()
    }

    /// The number of the last event (the file's version for optimistic concurrency).
    pub fn version(&self) -> u32 {
        self.last_event().map_or(0, |event| event.seq)
    }

    /// What happened to the file since it was opened (a later event, a quitus), if
    /// anything: canceling at reception is then no longer possible.
    pub fn activity_since_opening(&self) -> Option<&'static str> {
        if self.events.len() > 1 {
            Some("a later event was recorded")
        } else if self.quitus_received || !self.documents.is_empty() {
            Some("a signed quitus was received for it")
        } else {
            None
        }
    }

    pub fn event(&self, seq: u32) -> Option<&RecordedEvent> {
        self.events.iter().find(|event| event.seq == seq)
    }
}

/// When a file counts as opened for the on-call calendar: its opening's `eventDate`, or
/// when the bridge received it if that was earlier (a partner's clock running ahead,
/// within the skew accepted): a claim received during a period is that period's.
pub fn opened_at(opening: &RecordedEvent) -> Timestamp {
    opening.log.event_date.timestamp().min(opening.recorded_at)
}

/// What is stored when a partner opens a file.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub owner: PartnerId,
    pub opening: RecordedEvent,
    /// When its items expire unless its closing extends it
    /// ([`crate::lifecycle::open_file_expiry`]); none: never until it is closed.
    pub expires_at: Option<Timestamp>,
}

impl NewFile {
    pub fn id(&self) -> FileId {
        self.opening.log.file_id()
    }

    /// The file as its opening makes it: open, with nothing but its opening.
    pub fn opened(&self) -> InterventionFile {
        InterventionFile {
            id: self.id(),
            state: FileState::Open,
            owner: self.owner.clone(),
            events: vec![self.opening.clone()],
            documents: Vec::new(),
            quitus_received: false,
            expires_at: self.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent_examples::SEED_OPENING;
    use crate::validation::parse_intervention_log;
    use serde_json::Value;

    /// No `Debug` of a file says what is personal in it: one `{:?}` in a log line or an
    /// error must not carry a tenant's name, a dwelling's reference or a quitus' name.
    #[test]
    fn a_files_debug_carries_no_personal_data() {
        let log = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        let mut file = NewFile {
            owner: PartnerId("partner-a".into()),
            opening: RecordedEvent::new(
                1,
                log,
                "2026-12-01T03:00:00Z".parse().unwrap(),
                Delivery::new_pending(),
            ),
            expires_at: None,
        }
        .opened();
        file.documents.push(crate::documents::DocumentRecord {
            object_identity: "0f3a".into(),
            file_name: "quitus Pierre DUPONT.pdf".into(),
            title: "Quitus de Mme Martin".into(),
            size: 48_213,
            intent_document_id: Some("doc-1".into()),
            published_at: "2026-12-01T04:00:00Z".parse().unwrap(),
            attempts: 1,
        });
        let upload = crate::documents::DocumentUpload {
            file_name: "quitus Pierre DUPONT.pdf".into(),
            title: "Quitus de Mme Martin".into(),
            description: "remis à Pierre DUPONT".into(),
            element_reference: "INTER-0500".into(),
            contract_reference: "contract1".into(),
        };
        let info = crate::documents::ObjectInfo {
            size: 1,
            title: Some("Quitus de Mme Martin".into()),
            description: Some("remis à Pierre DUPONT".into()),
        };
        let ticket = crate::uploads::UploadTicket {
            method: "PUT".into(),
            url: "https://bucket.s3/quitus/contract1/INTER-0500/u-quitus%20Pierre%20DUPONT.pdf?X-Amz-Signature=abc".into(),
            headers: Default::default(),
            key: "quitus/contract1/INTER-0500/u-quitus Pierre DUPONT.pdf".into(),
            expires_at: "2026-12-01T04:05:00Z".parse().unwrap(),
        };
        for text in [
            format!("{file:?}"),
            format!("{upload:?}"),
            format!("{info:?}"),
            format!("{ticket:?}"),
        ] {
            for personal in ["DUPONT", "Pierre", "Martin", "LOGEMENT_002", "0685874445"] {
                assert!(!text.contains(personal), "{personal} in {text}");
            }
        }
        assert!(
            format!("{file:?}").contains("INTER-0500"),
            "the identifiers stay"
        );
    }

    #[test]
    fn fingerprint_ignores_key_order_and_log_date_but_not_content() {
        let original = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(SEED_OPENING).unwrap();
        let reordered: serde_json::Map<String, Value> = value
            .as_object()
            .unwrap()
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let reordered =
            crate::validation::validate_intervention_log(&Value::Object(reordered)).unwrap();
        assert_eq!(fingerprint(&original), fingerprint(&reordered));

        value["logDate"] = "2020-03-06T10:46:00".into();
        let later_log = crate::validation::validate_intervention_log(&value).unwrap();
        assert_eq!(fingerprint(&original), fingerprint(&later_log));

        value["criticalLevel"] = 2.into();
        let changed = crate::validation::validate_intervention_log(&value).unwrap();
        assert_ne!(fingerprint(&original), fingerprint(&changed));
    }
}
