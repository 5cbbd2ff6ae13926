//! Validation of an intervention log against Intent's documented contract. Every problem
//! is reported, not only the first. Messages never echo free-text values (they may hold
//! tenants' personal data); only enum values and dates are quoted.

use serde_json::{Map, Value};

use crate::http_util::Detail;

pub(crate) const STATUSES: &[&str] = &["open", "pending", "hold", "closed", "denied"];

pub(crate) const WORK_TYPES: &[&str] = &["corrective", "preventive"];

/// Every status/event pair Intent knows.
pub(crate) const STATUS_EVENTS: &[(&str, &str)] = &[
    ("open", "acknowledged"),
    ("open", "requested"),
    ("open", "planned"),
    ("pending", "on_site"),
    ("pending", "start"),
    ("pending", "end"),
    ("hold", "occupant_absent"),
    ("hold", "quote_request"),
    ("closed", "done"),
    ("closed", "solved"),
    ("closed", "occupant_absent"),
    ("closed", "partial_repair"),
    ("denied", "canceled"),
];

pub(crate) const ELEMENT_TYPES: &[&str] = &[
    "intervention",
    "quotation",
    "reservation",
    "contract",
    "asset",
];

const OPTIONAL_STRINGS: &[&str] = &[
    "description",
    "equipmentWorkingOrder",
    "equipmentStatus",
    "occupantSignature",
    "origin",
    "technicalReason",
    "parentReference",
];

/// Validates an intervention log body; an empty result means it is valid.
pub(crate) fn validate_log(body: &Value) -> Vec<Detail> {
    let Some(obj) = body.as_object() else {
        return vec![Detail::new("", "the body must be a JSON object")];
    };
    let mut details = Vec::new();
    let d = &mut details;

    required_string(obj, "reference", "reference", d);
    required_string(obj, "contractReference", "contractReference", d);
    let status = required_enum(obj, "status", STATUSES, d);
    let event = required_string(obj, "event", "event", d);
    if let Some(event) = event {
        match status {
            Some(status) => {
                if !STATUS_EVENTS.contains(&(status, event)) {
                    let allowed: Vec<&str> = STATUS_EVENTS
                        .iter()
                        .filter(|(s, _)| *s == status)
                        .map(|(_, e)| *e)
                        .collect();
                    d.push(Detail::new(
                        "event",
                        format!(
                            "event `{event}` is not valid with status `{status}`; expected one of: {}",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            None => {
                if !STATUS_EVENTS.iter().any(|(_, e)| *e == event) {
                    d.push(Detail::new("event", format!("unknown event `{event}`")));
                }
            }
        }
    }
    required_date(obj, "eventDate", d);
    required_date(obj, "logDate", d);
    required_string(obj, "serviceCode", "serviceCode", d);
    match obj.get("location") {
        None => d.push(Detail::new("location", "is required")),
        Some(Value::Object(location)) => {
            required_string(location, "assetReference", "location.assetReference", d);
            match location.get("address") {
                None => {}
                Some(Value::Object(address)) => {
                    for (key, value) in address {
                        if !value.is_string() {
                            d.push(Detail::new(
                                format!("location.address.{key}"),
                                "must be a string",
                            ));
                        }
                    }
                }
                Some(_) => d.push(Detail::new("location.address", "must be an object")),
            }
        }
        Some(_) => d.push(Detail::new("location", "must be an object")),
    }
    required_enum(obj, "workType", WORK_TYPES, d);

    for field in OPTIONAL_STRINGS {
        if obj.get(*field).is_some_and(|value| !value.is_string()) {
            d.push(Detail::new(*field, "must be a string"));
        }
    }
    match obj.get("contacts") {
        None => {}
        Some(Value::Array(contacts)) => {
            for (i, contact) in contacts.iter().enumerate() {
                if !contact.is_string() {
                    d.push(Detail::new(format!("contacts[{i}]"), "must be a string"));
                }
            }
        }
        Some(_) => d.push(Detail::new("contacts", "must be an array of strings")),
    }
    if obj
        .get("criticalLevel")
        .is_some_and(|value| as_integer(value).is_none())
    {
        d.push(Detail::new("criticalLevel", "must be an integer"));
    }
    if let Some(value) = obj.get("visitAttempt") {
        match as_integer(value) {
            Some(n) if n >= 1 => {}
            Some(_) => d.push(Detail::new("visitAttempt", "must be at least 1")),
            None => d.push(Detail::new("visitAttempt", "must be an integer")),
        }
    }
    details
}

fn as_integer(value: &Value) -> Option<i128> {
    value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from))
}

/// A required, non-empty string.
fn required_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &str,
    d: &mut Vec<Detail>,
) -> Option<&'a str> {
    match obj.get(key) {
        None => {
            d.push(Detail::new(field, "is required"));
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            d.push(Detail::new(field, "must not be empty"));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            d.push(Detail::new(field, "must be a string"));
            None
        }
    }
}

fn required_enum<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    allowed: &[&str],
    d: &mut Vec<Detail>,
) -> Option<&'a str> {
    let value = required_string(obj, key, key, d)?;
    if allowed.contains(&value) {
        Some(value)
    } else {
        d.push(Detail::new(
            key,
            format!("`{value}` is not one of: {}", allowed.join(", ")),
        ));
        None
    }
}

fn required_date(obj: &Map<String, Value>, key: &str, d: &mut Vec<Detail>) {
    let Some(value) = obj.get(key) else {
        d.push(Detail::new(key, "is required"));
        return;
    };
    let Some(text) = value.as_str() else {
        d.push(Detail::new(key, "must be a string"));
        return;
    };
    if let Err(message) = check_datetime(text) {
        d.push(Detail::new(key, message));
    }
}

/// An RFC 3339 date-time with an explicit offset: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`.
pub(crate) fn check_datetime(text: &str) -> Result<(), String> {
    let shape_error = || {
        format!(
            "`{text}` is not an RFC 3339 date-time with an offset \
             (expected YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or ±hh:mm)"
        )
    };
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|s| s.len() == range.len() && s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19))
    {
        return Err(shape_error());
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(shape_error());
        }
    }
    let rest = &text[i..];
    if rest.is_empty() {
        return Err(format!(
            "`{text}` has no UTC offset: send Z or ±hh:mm (local times are ambiguous)"
        ));
    }
    let offset_ok = rest == "Z"
        || rest == "z"
        || (rest.len() == 6 && {
            let o = rest.as_bytes();
            (o[0] == b'+' || o[0] == b'-')
                && o[1].is_ascii_digit()
                && o[2].is_ascii_digit()
                && o[3] == b':'
                && o[4].is_ascii_digit()
                && o[5].is_ascii_digit()
        });
    if !offset_ok {
        return Err(shape_error());
    }
    text.parse::<jiff::Timestamp>()
        .map(|_| ())
        .map_err(|e| format!("`{text}` is not a valid date-time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid_log() -> Value {
        json!({
            "reference": "INTER-0500",
            "contractReference": "contract1",
            "status": "open",
            "event": "acknowledged",
            "eventDate": "2020-03-06T10:45:23+01:00",
            "logDate": "2020-03-06T10:45:26+01:00",
            "serviceCode": "P902",
            "location": { "assetReference": "LOGEMENT_002" },
            "workType": "corrective"
        })
    }

    fn fields(details: &[Detail]) -> Vec<&str> {
        details.iter().map(|d| d.field.as_str()).collect()
    }

    #[test]
    fn dates() {
        assert!(check_datetime("2020-03-06T10:45:23+01:00").is_ok());
        assert!(check_datetime("2020-03-06T10:45:23Z").is_ok());
        assert!(check_datetime("2020-03-06T10:45:23.123Z").is_ok());
        assert!(check_datetime("2020-03-06T10:45:23.123456789-05:30").is_ok());
        assert!(check_datetime("2020-03-06t10:45:23z").is_ok());
        let no_offset = check_datetime("2020-03-06T10:45:23").unwrap_err();
        assert!(no_offset.contains("no UTC offset"), "{no_offset}");
        assert!(check_datetime("2020-03-06T10:00:00.000").is_err());
        assert!(check_datetime("2020-03-06 10:45:23Z").is_err());
        assert!(check_datetime("2020-03-06T10:45Z").is_err());
        assert!(check_datetime("2020-03-06T10:45:23+0100").is_err());
        assert!(check_datetime("2020-03-06T10:45:23+01").is_err());
        assert!(check_datetime("2020-03-06T10:45:23+01:00[Europe/Paris]").is_err());
        assert!(check_datetime("2020-02-30T10:45:23Z").is_err());
        assert!(check_datetime("2020-13-06T10:45:23Z").is_err());
        assert!(check_datetime("2020-03-06T25:45:23Z").is_err());
        assert!(check_datetime("2020-03-06T10:45:23.Z").is_err());
        assert!(check_datetime("").is_err());
    }

    #[test]
    fn valid_log_has_no_details() {
        assert_eq!(validate_log(&valid_log()), vec![]);
    }

    #[test]
    fn every_status_event_pair_is_accepted() {
        for (status, event) in STATUS_EVENTS {
            let mut log = valid_log();
            log["status"] = json!(status);
            log["event"] = json!(event);
            assert_eq!(validate_log(&log), vec![], "{status}/{event}");
        }
    }

    #[test]
    fn reports_every_problem() {
        let log = json!({
            "reference": "",
            "status": "finished",
            "event": 3,
            "eventDate": "2020-03-06T10:45:23",
            "serviceCode": "P902",
            "location": { "address": { "zip": 59000 } },
            "workType": "curative",
            "contacts": ["ok", 1],
            "criticalLevel": "3",
            "visitAttempt": 0,
            "description": null,
            "unknownField": { "anything": true }
        });
        let details = validate_log(&log);
        assert_eq!(
            fields(&details),
            vec![
                "reference",
                "contractReference",
                "status",
                "event",
                "eventDate",
                "logDate",
                "location.assetReference",
                "location.address.zip",
                "workType",
                "description",
                "contacts[1]",
                "criticalLevel",
                "visitAttempt",
            ]
        );
    }

    #[test]
    fn wrong_pair_names_allowed_events() {
        let mut log = valid_log();
        log["status"] = json!("closed");
        log["event"] = json!("acknowledged");
        let details = validate_log(&log);
        assert_eq!(fields(&details), vec!["event"]);
        assert!(details[0].message.contains("partial_repair"));
    }

    #[test]
    fn non_object_body() {
        assert_eq!(fields(&validate_log(&json!([1, 2]))), vec![""]);
    }

    #[test]
    fn float_critical_level_rejected() {
        let mut log = valid_log();
        log["criticalLevel"] = json!(3.5);
        assert_eq!(fields(&validate_log(&log)), vec!["criticalLevel"]);
        log["criticalLevel"] = json!(0);
        assert_eq!(validate_log(&log), vec![]);
    }
}
