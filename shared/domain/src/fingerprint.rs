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
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
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

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
