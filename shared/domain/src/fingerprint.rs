//! Content identities: what tells an identical replay from a conflicting request, and
//! the identities of objects and domain events.

use crate::model::InterventionLog;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A stable fingerprint of an event's content: SHA-256 of its wire JSON with object keys
/// sorted, so that the same content in another key order is the same request. `logDate`
/// is left out: a partner's retry may stamp a new one.
pub fn fingerprint(log: &InterventionLog) -> String {
    let mut value = log.to_wire_json();
    if let Value::Object(map) = &mut value {
        map.remove("logDate");
    }
    let mut hasher = Sha256::new();
    write_canonical(&value, &mut hasher);
    hex::encode(hasher.finalize())
}

/// SHA-256 (hex) of text parts separated by NUL: an identity that no separator inside a
/// part can forge.
pub fn fingerprint_text(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The canonical form, written straight into the hash: objects with their keys sorted,
/// strings and scalars as serde_json writes them (the form every stored fingerprint was
/// computed on).
fn write_canonical(value: &Value, out: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.update(b"{");
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.update(b",");
                }
                write_json(key, out);
                out.update(b":");
                write_canonical(item, out);
            }
            out.update(b"}");
        }
        Value::Array(items) => {
            out.update(b"[");
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.update(b",");
                }
                write_canonical(item, out);
            }
            out.update(b"]");
        }
        scalar => write_json(scalar, out),
    }
}

/// `value` as compact JSON, into the hash.
fn write_json(value: &(impl serde::Serialize + ?Sized), out: &mut Sha256) {
    struct Hashing<'a>(&'a mut Sha256);
    impl std::io::Write for Hashing<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Hashing(out), value).expect("JSON values always serialise");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
    use crate::validation::{parse_intervention_log, validate_intervention_log};

    /// Fingerprints are stored with every event and compared with later requests' (an
    /// identical replay), so their canonical form may never change: these were computed
    /// by the first implementation and must stay as they are.
    #[test]
    fn fingerprints_are_those_already_stored() {
        let opening = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        let closing = parse_intervention_log(SEED_CLOSURE_DONE.as_bytes()).unwrap();
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["intent_custom"] = serde_json::json!({
            "z": [1, -2.5, 1e21, true, null, "quote \" backslash \\ tab \t é \u{1F600} \u{7}"],
            "a": {"nested": {"b": 0, "a": ""}, "list": []},
            "éclair": "ünïcode key"
        });
        value["location"]["floor"] = "2".into();
        let extra = validate_intervention_log(&value).unwrap();
        assert_eq!(
            [
                fingerprint(&opening),
                fingerprint(&closing),
                fingerprint(&extra)
            ],
            [
                "c91f974fd9e45829b494fca98c2fa7059cf169a20f41cb2b5ea91cab30def5b6",
                "8eb89d64bd4dd2755fefc909e796bc59db6ab2f765af1dc4b9b889c137557d9a",
                "73e5e5b672105cdbe3de960a3943d389c91fc34e2d804776c8ae22defb6797d4"
            ]
        );
    }
}
