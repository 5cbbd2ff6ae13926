//! Domain events as JSON lines (in place of EventBridge): one line per event, with the
//! same `detail-type`, `source` and `detail` an EventBridge rule would see.

use oncall_domain::DomainEvent;
use oncall_domain::ports::{DomainEventError, PublishDomainEvents};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct JsonLinesEvents {
    /// `None`: standard output.
    path: Option<PathBuf>,
    source: String,
    lock: Mutex<()>,
}

impl JsonLinesEvents {
    pub fn new(path: Option<PathBuf>, source: &str) -> Self {
        Self {
            path,
            source: source.to_string(),
            lock: Mutex::new(()),
        }
    }
}

impl PublishDomainEvents for JsonLinesEvents {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), DomainEventError> {
        let mut lines = String::new();
        for event in events {
            let line = serde_json::json!({
                "time": jiff::Timestamp::now().to_string(),
                "source": self.source,
                "detail-type": event.detail_type(),
                "detail": event.detail_value(),
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        let _guard = self.lock.lock().expect("not poisoned");
        let written = match &self.path {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(lines.as_bytes())),
            None => std::io::stdout().write_all(lines.as_bytes()),
        };
        written.map_err(|error| DomainEventError::none_taken(events, error.to_string()))
    }
}
