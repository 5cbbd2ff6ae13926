//! From a partner's bytes to a valid [`InterventionLog`], in two steps:
//! 1. JSON syntax: a broken document is reported with its line and column;
//! 2. content: every problem is collected with its JSON path (`$.location.assetReference`)
//!    and, for enumerations, the allowed values. Error messages never echo a value that
//!    could be personal data (only enumeration values are quoted back).

use crate::contact::Contact;
use crate::datetime::IntentDateTime;
use crate::model::{Event, InterventionLog, Location, Status, WorkType};
use crate::sensitive::Sensitive;
use serde::Serialize;
use serde_json::{Map, Value};

pub const MAX_REFERENCE_CHARS: usize = 128;

/// The longest `reference` or `contractReference`.
pub const MAX_IDENTIFIER_CHARS: usize = 64;

/// What a `reference` or `contractReference` may be.
pub const REFERENCE_RULE: &str = "must be 1 to 64 characters among A-Z, a-z, 0-9, '.', '_' and '-'";

/// Whether `text` is a reference that round-trips through URLs, keys and logs unchanged:
/// 1 to 64 of `[A-Za-z0-9._-]` (no `/`, `?`, `#`, `%`, spaces, control, zero-width or
/// bidi characters).
pub fn is_safe_reference(text: &str) -> bool {
    (1..=MAX_IDENTIFIER_CHARS).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
pub const MAX_CODE_CHARS: usize = 64;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_CONTACTS: usize = 20;
pub const MAX_CONTACT_CHARS: usize = 4_000;
pub const MAX_SHORT_TEXT_CHARS: usize = 256;

/// One problem in a document, located by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
}

/// Parses bytes into JSON, reporting where the syntax breaks.
pub fn parse_json(body: &[u8]) -> Result<Value, InputError> {
    serde_json::from_slice::<StrictJson>(body)
        .map(|strict| strict.0)
        .map_err(|error| {
            let full = error.to_string();
            // serde_json appends " at line L column C"; we report them as fields instead.
            let mut message = match full.rfind(" at line ") {
                Some(cut) => full[..cut].to_string(),
                None => full,
            };
            let (mut line, mut column) = (error.line(), error.column());
            // serde_json counts bytes; partners read characters (French text: é is two
            // bytes).
            if let Some(text) = body.split(|&b| b == b'\n').nth(line.saturating_sub(1)) {
                let through = &text[..column.min(text.len())];
                column = String::from_utf8_lossy(through).chars().count();
            }
            // A line break inside a string is reported at column 0 of the next line; the
            // break really is at the end of the previous one (usually a stray or missing
            // quote there, as in Intent's own partial_repair example).
            if column == 0 && line > 1 && message.starts_with("control character") {
                let text = String::from_utf8_lossy(body);
                if let Some(previous) = text.split('\n').nth(line - 2) {
                    line -= 1;
                    column = previous.trim_end_matches('\r').chars().count() + 1;
                    message = "a string runs past the end of the line (a missing or stray quote?)"
                        .to_string();
                }
            }
            InputError::Syntax {
                line,
                column,
                message,
            }
        })
}

/// A JSON value in which no object names a key twice: `{"reference": 1, "reference": "A"}`
/// is ambiguous (parsers disagree on which one counts), so it is refused, with its place.
struct StrictJson(Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictJson(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let shown: String = key.chars().take(40).collect();
                return Err(serde::de::Error::custom(format!(
                    "the key {shown:?} appears twice in one object"
                )));
            }
            let StrictJson(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Parses and validates one intervention log event, whatever its status/event pair.
pub fn parse_intervention_log(body: &[u8]) -> Result<InterventionLog, InputError> {
    let value = parse_json(body)?;
    validate_intervention_log(&value)
}

const KNOWN_FIELDS: [&str; 19] = [
    "reference",
    "contractReference",
    "status",
    "event",
    "eventDate",
    "logDate",
    "serviceCode",
    "location",
    "workType",
    "description",
    "contacts",
    "criticalLevel",
    "visitAttempt",
    "equipmentWorkingOrder",
    "equipmentStatus",
    "occupantSignature",
    "origin",
    "technicalReason",
    "parentReference",
];

/// Events Intent knows in flows other than the on-call corrective one
/// (`hold/occupant_absent` and `closed/occupant_absent` share their event).
const OTHER_FLOW_EVENTS: [&str; 8] = [
    "requested",
    "planned",
    "on_site",
    "start",
    "end",
    "occupant_absent",
    "quote_request",
    "solved",
];

/// Validates a JSON document as an intervention log event of the corrective flow.
pub fn validate_intervention_log(value: &Value) -> Result<InterventionLog, InputError> {
    let mut errors = Errors::default();
    let Some(object) = value.as_object() else {
        errors.push(
            "$",
            format!("expected a JSON object, found {}", kind(value)),
        );
        return Err(InputError::Invalid(errors.0));
    };
    let mut fields = Fields {
        object,
        prefix: "$",
        errors: &mut errors,
    };

    let reference = fields.identifier("reference");
    let contract_reference = fields.identifier("contractReference");
    let status = fields.enumeration("status", Status::parse, &Status::ALL.map(Status::as_str));
    let event = fields.event();
    let event_date = fields.date("eventDate");
    let log_date = fields.date("logDate");
    let service_code = fields.required_text("serviceCode", MAX_CODE_CHARS);
    let work_type = fields.enumeration(
        "workType",
        |text| WorkType::ALL.into_iter().find(|w| w.as_str() == text),
        &WorkType::ALL.map(WorkType::as_str),
    );
    let description = fields.optional_text("description", MAX_DESCRIPTION_CHARS);
    let contacts = fields.contacts();
    let critical_level = fields.optional_integer("criticalLevel", 0, 99);
    let visit_attempt = fields
        .optional_integer("visitAttempt", 1, 1_000)
        .map(|n| n.map(|n| n as u32));
    let equipment_working_order = fields.optional_text("equipmentWorkingOrder", MAX_CODE_CHARS);
    let equipment_status = fields.optional_text("equipmentStatus", MAX_CODE_CHARS);
    let occupant_signature = fields.optional_text("occupantSignature", MAX_CODE_CHARS);
    let origin = fields.optional_text("origin", MAX_SHORT_TEXT_CHARS);
    let technical_reason = fields.optional_text("technicalReason", MAX_SHORT_TEXT_CHARS);
    let parent_reference = fields.optional_text("parentReference", MAX_REFERENCE_CHARS);
    let location = fields.location();

    if let (Some(status), Some(event)) = (status, event)
        && event.status() != status
    {
        errors.push_allowed(
            "$.event",
            format!(
                "{}/{} is not a status/event pair of the corrective on-call flow",
                status.as_str(),
                event.as_str()
            ),
            Event::ALL.iter().map(|e| e.pair()).collect(),
        );
    }

    let extra: Map<String, Value> = object
        .iter()
        .filter(|(key, _)| !KNOWN_FIELDS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();

    match (
        reference,
        contract_reference,
        status,
        event,
        event_date,
        log_date,
        service_code,
        work_type,
        location,
    ) {
        (
            Some(reference),
            Some(contract_reference),
            Some(status),
            Some(event),
            Some(event_date),
            Some(log_date),
            Some(service_code),
            Some(work_type),
            Some(location),
        ) if errors.0.is_empty() => Ok(InterventionLog {
            reference,
            contract_reference,
            status,
            event,
            event_date,
            log_date,
            service_code,
            location,
            work_type,
            description: description.flatten().map(Sensitive::new),
            contacts: contacts.flatten(),
            critical_level: critical_level.flatten(),
            visit_attempt: visit_attempt.flatten(),
            equipment_working_order: equipment_working_order.flatten(),
            equipment_status: equipment_status.flatten(),
            occupant_signature: occupant_signature.flatten(),
            origin: origin.flatten(),
            technical_reason: technical_reason.flatten(),
            parent_reference: parent_reference.flatten(),
            extra: Sensitive::new(extra),
        }),
        _ => Err(InputError::Invalid(errors.0)),
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.to_string(),
            message: message.into(),
            allowed: None,
        });
    }

    fn push_allowed(&mut self, path: &str, message: impl Into<String>, allowed: Vec<String>) {
        self.0.push(FieldError {
            path: path.to_string(),
            message: message.into(),
            allowed: Some(allowed),
        });
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Field accessors over one JSON object. Each returns `None` when the field is missing
/// or invalid (after recording why), `Some(None)` for an absent optional field.
struct Fields<'a, 'e> {
    object: &'a Map<String, Value>,
    prefix: &'static str,
    errors: &'e mut Errors,
}

impl Fields<'_, '_> {
    fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// The field's value; a JSON `null` counts as absent.
    fn get(&self, name: &str) -> Option<&Value> {
        self.object.get(name).filter(|value| !value.is_null())
    }

    fn required(&mut self, name: &str) -> Option<&Value> {
        let value = self.object.get(name).filter(|value| !value.is_null());
        if value.is_none() {
            let path = self.path(name);
            self.errors.push(&path, "is required");
        }
        value
    }

    fn text_of(&mut self, name: &str, value: &Value, max_chars: usize) -> Option<String> {
        let path = self.path(name);
        let Some(text) = value.as_str() else {
            self.errors
                .push(&path, format!("expected a string, found {}", kind(value)));
            return None;
        };
        if text.chars().count() > max_chars {
            self.errors
                .push(&path, format!("is longer than {max_chars} characters"));
            return None;
        }
        Some(text.to_string())
    }

    fn required_text(&mut self, name: &str, max_chars: usize) -> Option<String> {
        let value = self.required(name)?.clone();
        let text = self.text_of(name, &value, max_chars)?;
        if text.trim().is_empty() {
            let path = self.path(name);
            self.errors.push(&path, "must not be empty");
            return None;
        }
        Some(text)
    }

    fn optional_text(&mut self, name: &str, max_chars: usize) -> Option<Option<String>> {
        match self.get(name).cloned() {
            None => Some(None),
            Some(value) => self.text_of(name, &value, max_chars).map(Some),
        }
    }

    /// A file or contract reference: part of the file's identity on Intent, of its keys in
    /// our table and of the partner API's paths, so it must round-trip everywhere.
    fn identifier(&mut self, name: &str) -> Option<String> {
        // Its length is checked by the rule itself (64 characters), told whole.
        let text = self.required_text(name, usize::MAX)?;
        if !is_safe_reference(&text) {
            let path = self.path(name);
            self.errors.push(&path, REFERENCE_RULE);
            return None;
        }
        Some(text)
    }

    fn enumeration<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Option<T> {
        let path = self.path(name);
        let allowed: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        let Some(value) = self
            .object
            .get(name)
            .filter(|value| !value.is_null())
            .cloned()
        else {
            self.errors.push_allowed(&path, "is required", allowed);
            return None;
        };
        match value.as_str() {
            Some(text) => match parse(text) {
                Some(parsed) => Some(parsed),
                None => {
                    // Quoted back only when it is a token (a misspelt value), never
                    // what could be personal data put in its place.
                    let message = if is_safe_reference(text) {
                        format!("unknown value {text:?}")
                    } else {
                        "unknown value".to_string()
                    };
                    self.errors.push_allowed(&path, message, allowed);
                    None
                }
            },
            None => {
                self.errors.push_allowed(
                    &path,
                    format!("expected a string, found {}", kind(&value)),
                    allowed,
                );
                None
            }
        }
    }

    fn event(&mut self) -> Option<Event> {
        let value = self.get("event").cloned();
        if let Some(text) = value.as_ref().and_then(Value::as_str)
            && Event::parse(text).is_none()
            && OTHER_FLOW_EVENTS.contains(&text)
        {
            self.errors.push_allowed(
                "$.event",
                format!("{text:?} belongs to another Intent flow, not the on-call corrective one"),
                Event::ALL.iter().map(|e| e.as_str().to_string()).collect(),
            );
            return None;
        }
        self.enumeration("event", Event::parse, &Event::ALL.map(Event::as_str))
    }

    fn date(&mut self, name: &str) -> Option<IntentDateTime> {
        let value = self.required(name)?.clone();
        let path = self.path(name);
        let Some(text) = value.as_str() else {
            self.errors
                .push(&path, format!("expected a string, found {}", kind(&value)));
            return None;
        };
        match IntentDateTime::parse(text) {
            Ok(date) => Some(date),
            Err(error) => {
                self.errors.push(&path, error.to_string());
                None
            }
        }
    }

    /// An integer in `min..=max`; a string of digits is accepted too (Intent's own
    /// webhooks send `criticalLevel` as `"3"`), and sent on as a number.
    fn optional_integer(&mut self, name: &str, min: i64, max: i64) -> Option<Option<i64>> {
        let Some(value) = self.get(name).cloned() else {
            return Some(None);
        };
        let path = self.path(name);
        let number = match &value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match number {
            Some(n) if (min..=max).contains(&n) => Some(Some(n)),
            Some(_) => {
                self.errors
                    .push(&path, format!("must be between {min} and {max}"));
                None
            }
            None => {
                self.errors.push(
                    &path,
                    format!("expected an integer, found {}", kind(&value)),
                );
                None
            }
        }
    }

    fn contacts(&mut self) -> Option<Option<Vec<Contact>>> {
        let Some(value) = self.get("contacts").cloned() else {
            return Some(None);
        };
        let Some(items) = value.as_array() else {
            self.errors.push(
                "$.contacts",
                format!("expected an array of strings, found {}", kind(&value)),
            );
            return None;
        };
        if items.len() > MAX_CONTACTS {
            self.errors.push(
                "$.contacts",
                format!("has more than {MAX_CONTACTS} entries"),
            );
            return None;
        }
        let mut contacts = Vec::with_capacity(items.len());
        let mut valid = true;
        for (index, item) in items.iter().enumerate() {
            let path = format!("$.contacts[{index}]");
            match item.as_str() {
                Some(text) if text.chars().count() > MAX_CONTACT_CHARS => {
                    self.errors.push(
                        &path,
                        format!("is longer than {MAX_CONTACT_CHARS} characters"),
                    );
                    valid = false;
                }
                Some(text) => match Contact::parse(text) {
                    Ok(contact) => contacts.push(contact),
                    Err(error) => {
                        self.errors.push(&path, error.to_string());
                        valid = false;
                    }
                },
                None => {
                    self.errors.push(
                        &path,
                        format!("expected a vCard or name string, found {}", kind(item)),
                    );
                    valid = false;
                }
            }
        }
        valid.then_some(Some(contacts))
    }

    fn location(&mut self) -> Option<Location> {
        let value = self.required("location")?.clone();
        let Some(object) = value.as_object() else {
            self.errors.push(
                "$.location",
                format!("expected an object, found {}", kind(&value)),
            );
            return None;
        };
        let mut inner = Fields {
            object,
            prefix: "$.location",
            errors: self.errors,
        };
        let asset_reference = inner.required_text("assetReference", MAX_REFERENCE_CHARS);
        let address = match inner.get("address").cloned() {
            None => Some(None),
            Some(Value::Object(mut address)) => {
                // A null member counts as absent, as at the top level (Intent takes
                // strings only).
                address.retain(|_, field| !field.is_null());
                let mut valid = true;
                for (key, field) in &address {
                    if !field.is_string() {
                        inner.errors.push(
                            &format!("$.location.address.{key}"),
                            format!("expected a string, found {}", kind(field)),
                        );
                        valid = false;
                    }
                }
                valid.then_some(Some(Sensitive::new(address)))
            }
            Some(other) => {
                inner.errors.push(
                    "$.location.address",
                    format!("expected an object, found {}", kind(&other)),
                );
                None
            }
        };
        let extra: Map<String, Value> = object
            .iter()
            .filter(|(key, _)| !matches!(key.as_str(), "assetReference" | "address"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Some(Location {
            asset_reference: asset_reference?,
            address: address?,
            extra: Sensitive::new(extra),
        })
    }
}

#[cfg(test)]
mod strict_json_tests {
    use super::*;

    #[test]
    fn a_key_twice_in_one_object_is_refused_with_its_place() {
        match parse_json(b"{\"a\": {\"b\": 1,\n \"b\": 2}}") {
            Err(InputError::Syntax { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("\"b\" appears twice"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_json(b"{\"a\": [1, 2.5, true, null, \"x\"], \"b\": {}}").unwrap(),
            serde_json::json!({"a": [1, 2.5, true, null, "x"], "b": {}})
        );
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;

    #[test]
    fn references_are_limited_to_a_safe_alphabet() {
        for good in ["INTER-0500", "contract1", "a.b_c-d", &"x".repeat(64)] {
            assert!(is_safe_reference(good), "{good}");
        }
        for bad in [
            "",
            "INTER/1",
            "A?B",
            "A#B",
            "A%2F",
            "A B",
            "A\u{200B}B",
            "A\u{202E}B",
            "A\nB",
            "é",
            &"x".repeat(65),
        ] {
            assert!(!is_safe_reference(bad), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent_examples::{
        SEED_CLOSURE_DONE, SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED, SEED_OPENING,
    };
    use serde_json::json;

    fn invalid(value: Value) -> Vec<FieldError> {
        match validate_intervention_log(&value) {
            Err(InputError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn paths(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn the_seed_opening_is_valid_and_round_trips_with_offsets() {
        let log = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        assert_eq!(log.reference, "INTER-0500");
        assert_eq!(log.status, Status::Open);
        assert_eq!(log.event, Event::Acknowledged);
        let mut expected: Value = serde_json::from_str(SEED_OPENING).unwrap();
        expected["eventDate"] = json!("2020-03-06T10:45:23+01:00");
        expected["logDate"] = json!("2020-03-06T10:45:26+01:00");
        assert_eq!(log.to_wire_json(), expected);
    }

    #[test]
    fn the_seed_closure_is_valid() {
        let log = parse_intervention_log(SEED_CLOSURE_DONE.as_bytes()).unwrap();
        assert_eq!((log.status, log.event), (Status::Closed, Event::Done));
        assert_eq!(log.equipment_status.as_deref(), Some("ok"));
    }

    /// A reference too long is told the rule it breaks (64 characters), and a missing
    /// enumeration the values it takes.
    #[test]
    fn a_long_reference_and_a_missing_enumeration_are_told_the_rule() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["reference"] = json!("R".repeat(200));
        value.as_object_mut().unwrap().remove("workType");
        let errors = invalid(value);
        let error = |path: &str| errors.iter().find(|error| error.path == path).unwrap();
        assert_eq!(error("$.reference").message, REFERENCE_RULE);
        assert_eq!(
            error("$.workType").allowed.as_deref(),
            Some(&["corrective".to_string()][..])
        );
    }

    /// Columns count characters, not bytes: French text before the break (é, °: two bytes
    /// each) does not push the column past it.
    #[test]
    fn a_syntax_error_after_accented_text_is_placed_by_characters() {
        let body = "{\n  \"description\": \"Température 16°C\" \"x\"\n}";
        let second_line = body.split('\n').nth(1).unwrap();
        let quote = second_line.find("\"x\"").unwrap();
        let expected = second_line[..quote].chars().count() + 1;
        match parse_json(body.as_bytes()) {
            Err(InputError::Syntax { line, column, .. }) => {
                assert_eq!((line, column), (2, expected));
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn the_seed_partial_repair_example_is_malformed_and_says_where() {
        match parse_intervention_log(SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED.as_bytes()) {
            Err(InputError::Syntax {
                line,
                column,
                message,
            }) => {
                assert_eq!(line, 3, "the stray quote is on the description line");
                assert_eq!(column, 95, "the end of the description line");
                assert!(message.contains("quote"), "{message}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let errors = invalid(json!({
            "reference": "",
            "status": "opened",
            "event": 3,
            "eventDate": "tomorrow",
            "serviceCode": "P902",
            "location": {"address": []},
            "workType": "preventive",
            "contacts": ["BEGIN:VCARD\r\nFN:x"],
            "criticalLevel": "high",
            "visitAttempt": 0
        }));
        assert_eq!(
            paths(&errors),
            [
                "$.reference",
                "$.contractReference",
                "$.status",
                "$.event",
                "$.eventDate",
                "$.logDate",
                "$.workType",
                "$.contacts[0]",
                "$.criticalLevel",
                "$.visitAttempt",
                "$.location.assetReference",
                "$.location.address",
            ]
        );
        let status = &errors[2];
        assert_eq!(
            status.allowed.as_deref().unwrap(),
            ["open", "pending", "hold", "closed", "denied"]
        );
        assert_eq!(errors[6].allowed.as_deref().unwrap(), ["corrective"]);
    }

    /// A value that could be personal data put in an enumeration's place is not quoted
    /// back; a token (a misspelt value) is.
    #[test]
    fn an_unknown_enumeration_value_is_quoted_back_only_when_it_is_a_token() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["status"] = json!("Pierre DUPONT 06 85 87 44 45");
        value["workType"] = json!("corective");
        let errors = invalid(value);
        let message = |path: &str| {
            errors
                .iter()
                .find(|error| error.path == path)
                .unwrap()
                .message
                .clone()
        };
        assert!(!message("$.status").contains("DUPONT"), "{errors:?}");
        assert!(
            message("$.workType").contains("\"corective\""),
            "{errors:?}"
        );
    }

    #[test]
    fn an_illegal_pair_names_the_allowed_pairs() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["status"] = json!("closed");
        let errors = invalid(value);
        assert_eq!(paths(&errors), ["$.event"]);
        assert!(errors[0].message.contains("closed/acknowledged"));
        assert_eq!(
            errors[0].allowed.as_deref().unwrap(),
            [
                "open/acknowledged",
                "closed/done",
                "closed/partial_repair",
                "denied/canceled"
            ]
        );
    }

    #[test]
    fn events_of_other_flows_are_named_as_such() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["event"] = json!("solved");
        let errors = invalid(value);
        assert!(errors[0].message.contains("another Intent flow"));
    }

    #[test]
    fn unknown_fields_are_kept_and_forwarded() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["intent_custom"] = json!({"a": 1});
        value["location"]["floor"] = json!("2");
        let log = validate_intervention_log(&value).unwrap();
        let wire = log.to_wire_json();
        assert_eq!(wire["intent_custom"], json!({"a": 1}));
        assert_eq!(wire["location"]["floor"], json!("2"));
    }

    #[test]
    fn critical_level_as_a_string_of_digits_is_sent_as_a_number() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["criticalLevel"] = json!("3");
        let log = validate_intervention_log(&value).unwrap();
        assert_eq!(log.to_wire_json()["criticalLevel"], json!(3));
    }

    /// A null member of the address counts as absent, as a null field does at the top
    /// level: Intent takes strings only there, and would refuse the event after the
    /// partner was told it was stored.
    #[test]
    fn a_null_address_member_is_left_out() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["location"]["address"] = json!({"way": "165 Avenue de Bretagne", "complement": null});
        let log = validate_intervention_log(&value).unwrap();
        assert_eq!(
            log.to_wire_json()["location"]["address"],
            json!({"way": "165 Avenue de Bretagne"})
        );
    }

    #[test]
    fn error_messages_never_echo_personal_data() {
        let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
        value["contacts"] = json!(["BEGIN:VCARD\r\nFN:Secret Tenant\r\nTEL:0600000000"]);
        value["description"] = json!(12);
        value["location"]["address"] = json!({"way": 3});
        let shown = format!("{:?}", invalid(value));
        for secret in ["Secret Tenant", "0600000000"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn debug_of_a_valid_log_hides_personal_data() {
        let log = parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        let shown = format!("{log:?}");
        assert!(shown.contains("INTER-0500"));
        for secret in ["DUPONT", "0685874445", "16°C", "Bretagne"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn not_an_object() {
        let errors = invalid(json!([1, 2]));
        assert_eq!(paths(&errors), ["$"]);
    }
}
