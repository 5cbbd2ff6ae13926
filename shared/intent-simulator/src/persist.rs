//! The optional state file ([`crate::SimulatorConfig::state_file`]): the hub's interventions,
//! their logs and the received documents' metadata, as one JSON document, written atomically
//! (a temporary file in the same directory, then a rename).
//!
//! ```json
//! {"version": 1,
//!  "interventions": [{"reference": "…", "contractReference": "…", "status": "open",
//!                     "event": "acknowledged", "lastEventDate": "…", "logs": [{…}, …]}],
//!  "documents": [{"id": "…", "receivedAt": "…", "fields": {…}, "fileName": "…",
//!                 "fileContentType": "application/pdf", "fileSize": 1234,
//!                 "fileSha256": "…"}]}
//! ```
//!
//! Error messages name the file and the position of a JSON error, never the content (it
//! holds tenants' personal data).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{HubIntervention, ReceivedDocument};

const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct StateFile {
    version: u32,
    interventions: Vec<PersistedIntervention>,
    documents: Vec<ReceivedDocument>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PersistedIntervention {
    reference: String,
    contract_reference: String,
    status: String,
    event: String,
    last_event_date: String,
    #[serde(default)]
    logs: Vec<serde_json::Value>,
}

/// The persisted part of the hub's state.
#[derive(Debug, Default)]
pub(crate) struct HubState {
    /// Keyed by (contractReference, reference).
    pub interventions: BTreeMap<(String, String), HubIntervention>,
    /// Each intervention's log, keyed like `interventions`.
    pub intervention_logs: BTreeMap<(String, String), Vec<serde_json::Value>>,
    pub documents: Vec<ReceivedDocument>,
}

impl StateFile {
    pub(crate) fn from_state(
        interventions: &BTreeMap<(String, String), HubIntervention>,
        intervention_logs: &BTreeMap<(String, String), Vec<serde_json::Value>>,
        documents: &[ReceivedDocument],
    ) -> StateFile {
        StateFile {
            version: VERSION,
            interventions: interventions
                .iter()
                .map(|(key, i)| PersistedIntervention {
                    reference: i.reference.clone(),
                    contract_reference: i.contract_reference.clone(),
                    status: i.status.clone(),
                    event: i.event.clone(),
                    last_event_date: i.last_event_date.clone(),
                    logs: intervention_logs.get(key).cloned().unwrap_or_default(),
                })
                .collect(),
            documents: documents.to_vec(),
        }
    }

    fn into_state(self) -> HubState {
        let mut state = HubState {
            documents: self.documents,
            ..HubState::default()
        };
        for i in self.interventions {
            let key = (i.contract_reference.clone(), i.reference.clone());
            state.intervention_logs.insert(key.clone(), i.logs);
            state.interventions.insert(
                key,
                HubIntervention {
                    reference: i.reference,
                    contract_reference: i.contract_reference,
                    status: i.status,
                    event: i.event,
                    last_event_date: i.last_event_date,
                },
            );
        }
        state
    }
}

/// Reads the state file: `None` when it does not exist, an error naming the file when it
/// cannot be read or is not a valid state.
pub(crate) fn load(path: &Path) -> io::Result<Option<HubState>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(io::Error::new(
                error.kind(),
                format!(
                    "cannot read the simulator state file {}: {error}",
                    path.display()
                ),
            ));
        }
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the simulator state file {} is not a valid state ({:?} JSON error at line {} \
                 column {}); fix or delete it",
                path.display(),
                error.classify(),
                error.line(),
                error.column()
            ),
        )
    })?;
    if file.version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the simulator state file {} has version {}, expected {VERSION}",
                path.display(),
                file.version
            ),
        ));
    }
    Ok(Some(file.into_state()))
}

/// Serializes a state for [`write_atomically`].
pub(crate) fn encode(file: &StateFile) -> io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(file).map_err(io::Error::other)
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`,
/// so that a reader (or a crash) sees either the old or the new state, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the state file path {} names no file", path.display()),
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "intent-simulator-persist-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ))
    }

    #[test]
    fn missing_file_is_no_state() {
        assert!(load(&temp_path("missing")).unwrap().is_none());
    }

    #[test]
    fn round_trip() {
        let path = temp_path("round-trip");
        let key = ("contract1".to_owned(), "INTER-1".to_owned());
        let mut interventions = BTreeMap::new();
        interventions.insert(
            key.clone(),
            HubIntervention {
                reference: "INTER-1".to_owned(),
                contract_reference: "contract1".to_owned(),
                status: "open".to_owned(),
                event: "acknowledged".to_owned(),
                last_event_date: "2020-03-06T10:45:23+01:00".to_owned(),
            },
        );
        let mut logs = BTreeMap::new();
        logs.insert(
            key.clone(),
            vec![serde_json::json!({"reference": "INTER-1"})],
        );
        let bytes = encode(&StateFile::from_state(&interventions, &logs, &[])).unwrap();
        write_atomically(&path, &bytes).unwrap();
        let state = load(&path).unwrap().unwrap();
        assert_eq!(state.interventions, interventions);
        assert_eq!(state.intervention_logs, logs);
        assert!(state.documents.is_empty());
        // No temporary file is left behind.
        let dir = path.parent().unwrap();
        let prefix = format!(".{}", path.file_name().unwrap().to_string_lossy());
        let leftovers = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count();
        assert_eq!(leftovers, 0);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn wrong_version_is_refused() {
        let path = temp_path("version");
        std::fs::write(&path, br#"{"version":2,"interventions":[],"documents":[]}"#).unwrap();
        let error = load(&path).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains(&path.display().to_string()));
        std::fs::remove_file(&path).unwrap();
    }
}
