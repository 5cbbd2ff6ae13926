//! What the commands print: aligned tables for people, one JSON document with `--json`.
//! Never a description, contact, address, document file name or title: event pairs,
//! dates, delivery states, errors, object identities and sizes.

use jiff::Timestamp;
use oncall_domain::file::Delivery;
use oncall_domain::lifecycle::FileState;
use oncall_domain::model::FileId;
use oncall_domain::redrive::{
    DocumentOutcome, EventLine, EventsOutcome, FileView, LedgerDocument, RedriveReport,
};
use serde_json::{Value, json};
use std::io::{self, Write};

/// Longest error text printed (an SDK error can be a long chain).
const MAX_LINE: usize = 300;

/// One line: no line breaks, at most `MAX_LINE` characters.
pub fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_LINE {
        flat
    } else {
        let mut cut: String = flat.chars().take(MAX_LINE - 1).collect();
        cut.push('…');
        cut
    }
}

/// The readable part of an error: an AWS SDK error's text ends with a debug dump of the
/// error (`Error { code: …, message: … }`, `DispatchFailure(…)`); a service error keeps
/// its code and message, any other its readable chain.
pub fn tidy_error(text: &str) -> String {
    let readable = &text[..debug_dump_start(text).unwrap_or(text.len())];
    let quoted = |after: &str| {
        let start = text.find(after)? + after.len();
        let rest = &text[start..];
        rest.find('"').map(|end| rest[..end].to_string())
    };
    let code = quoted("code: \"").or_else(|| quoted("code: Some(\""));
    let message = quoted("message: \"").or_else(|| quoted("message: Some(\""));
    let text = match (code, message) {
        (Some(code), Some(message)) if !readable.contains(&message) => {
            let head = readable.split("service error").next().unwrap_or_default();
            format!("{}: {code}: {message}", head.trim_end_matches([' ', ':']))
        }
        _ => readable.to_string(),
    };
    // The SDK repeats the service error's code and message along its chain.
    let mut seen: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        let part = part.trim_end_matches([' ', ':']);
        if !part.is_empty() && !seen.contains(&part) {
            seen.push(part);
        }
    }
    one_line(&seen.join(": "))
}

/// Where a Rust debug dump starts: ` (Name(` or ` Name {`.
fn debug_dump_start(text: &str) -> Option<usize> {
    text.char_indices().map(|(at, _)| at).find(|&at| {
        let rest = &text[at..];
        let name_then = |skip: usize, open: char| {
            let name: String = rest[skip..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            name.starts_with(|c: char| c.is_ascii_uppercase())
                && rest[skip + name.len()..].starts_with(open)
        };
        (rest.starts_with(" (") && name_then(2, '('))
            || (rest.starts_with(' ') && name_then(1, ' ') && {
                let name_len = rest[1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .count();
                rest[1 + name_len..].starts_with(" {")
            })
    })
}

fn age_seconds(now: Timestamp, since: Timestamp) -> i64 {
    now.duration_since(since).as_secs().max(0)
}

/// `40s`, `12m`, `3h05m`, `2d04h`.
fn age(now: Timestamp, since: Option<Timestamp>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let seconds = age_seconds(now, since);
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// A short form of an object identity (a SHA-256) for tables.
fn short(identity: &str) -> String {
    identity.chars().take(16).collect()
}

/// Writes rows with aligned columns (the last one as is).
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (index, cell) in cells.into_iter().enumerate() {
            if index == last {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn state_of(delivery: &Delivery) -> String {
    if delivery.in_doubt() {
        "pending (in doubt)".into()
    } else {
        delivery.label().into()
    }
}

fn error_of(delivery: &Delivery) -> Option<&str> {
    match delivery {
        Delivery::Pending { last_error, .. } => last_error.as_deref(),
        Delivery::Failed { last_error, .. } => Some(last_error),
        Delivery::Delivered { .. } => None,
    }
}

fn event_note(line: &EventLine) -> String {
    match (error_of(&line.delivery), line.behind) {
        (Some(error), _) => one_line(error),
        (None, Some(seq)) => format!("waits behind event {seq}"),
        (None, None) => String::new(),
    }
}

fn delivery_json(delivery: &Delivery) -> Value {
    serde_json::to_value(delivery).unwrap_or(Value::Null)
}

fn file_json(id: &FileId) -> (Value, Value) {
    (json!(id.reference), json!(id.contract_reference))
}

fn document_json(document: &LedgerDocument, state: &str, now: Timestamp) -> Value {
    let (reference, contract) = document
        .file
        .as_ref()
        .map(file_json)
        .unwrap_or((Value::Null, Value::Null));
    json!({
        "objectIdentity": document.object.identity(),
        "reference": reference,
        "contractReference": contract,
        "size": document.object.size,
        "state": state,
        "attempts": document.attempts,
        "since": document.since.map(|t| t.to_string()),
        "ageSeconds": document.since.map(|t| age_seconds(now, t)),
        "lastAttemptAt": document.last_attempt_at.map(|t| t.to_string()),
        "lastError": document.last_error.as_deref().map(one_line),
    })
}

fn size_text(size: Option<u64>) -> String {
    size.map_or_else(|| "-".into(), |size| size.to_string())
}

fn write_json(out: &mut dyn Write, value: &Value) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    writeln!(out, "{text}")
}

/// `show REF --contract C`.
pub fn show(view: &FileView, now: Timestamp, json: bool, out: &mut dyn Write) -> io::Result<()> {
    let file = &view.file;
    let (state, outcome) = match file.state {
        FileState::Open => ("open", None),
        FileState::Closed(outcome) => ("closed", Some(outcome.as_str())),
    };
    if json {
        let events: Vec<Value> = file
            .events
            .iter()
            .map(|event| {
                json!({
                    "seq": event.seq,
                    "status": event.log.status.as_str(),
                    "event": event.pair.as_str(),
                    "eventDate": event.log.event_date.to_intent_string(),
                    "recordedAt": event.recorded_at.to_string(),
                    "ageSeconds": age_seconds(now, event.recorded_at),
                    "delivery": delivery_json(&event.delivery),
                })
            })
            .collect();
        let mut documents: Vec<Value> = file
            .documents
            .iter()
            .map(|document| {
                json!({
                    "objectIdentity": document.object_identity,
                    "size": document.size,
                    "state": "published",
                    "attempts": document.attempts,
                    "publishedAt": document.published_at.to_string(),
                    "ageSeconds": age_seconds(now, document.published_at),
                    "intentDocumentId": document.intent_document_id,
                })
            })
            .collect();
        documents.extend(
            view.waiting
                .iter()
                .map(|d| document_json(d, "waiting", now)),
        );
        documents.extend(
            view.refused
                .iter()
                .map(|d| document_json(d, "refused", now)),
        );
        return write_json(
            out,
            &json!({
                "reference": file.id.reference,
                "contractReference": file.id.contract_reference,
                "state": state,
                "outcome": outcome,
                "events": events,
                "documents": documents,
            }),
        );
    }
    writeln!(
        out,
        "{} under contract {}: {}",
        file.id.reference, file.id.contract_reference, file.state
    )?;
    let rows: Vec<Vec<String>> = file
        .events
        .iter()
        .map(|event| {
            vec![
                event.seq.to_string(),
                format!("{}/{}", event.log.status.as_str(), event.pair.as_str()),
                event.log.event_date.to_intent_string(),
                state_of(&event.delivery),
                event.delivery.attempts().to_string(),
                age(now, Some(event.recorded_at)),
                error_of(&event.delivery).map(one_line).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "SEQ",
            "EVENT",
            "EVENT DATE",
            "STATE",
            "ATTEMPTS",
            "AGE",
            "LAST ERROR",
        ],
        &rows,
    )?;
    let mut rows: Vec<Vec<String>> = file
        .documents
        .iter()
        .map(|document| {
            vec![
                short(&document.object_identity),
                document.size.to_string(),
                "published".into(),
                document.attempts.to_string(),
                age(now, Some(document.published_at)),
                String::new(),
            ]
        })
        .collect();
    for (documents, state) in [(&view.waiting, "waiting"), (&view.refused, "refused")] {
        rows.extend(documents.iter().map(|document| {
            vec![
                short(&document.object.identity()),
                size_text(document.object.size),
                state.into(),
                document.attempts.to_string(),
                age(now, document.since),
                document
                    .last_error
                    .as_deref()
                    .map(one_line)
                    .unwrap_or_default(),
            ]
        }));
    }
    writeln!(out)?;
    if rows.is_empty() {
        writeln!(out, "no documents")
    } else {
        table(
            out,
            &["DOCUMENT", "SIZE", "STATE", "ATTEMPTS", "AGE", "LAST ERROR"],
            &rows,
        )
    }
}

/// `pending` and `failed`: events, then documents, oldest first.
pub fn listing(
    kind: &str,
    events: &[EventLine],
    documents: &[LedgerDocument],
    now: Timestamp,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let document_state = if kind == "failed" {
        "refused"
    } else {
        "waiting"
    };
    if json {
        let events: Vec<Value> = events
            .iter()
            .map(|line| {
                json!({
                    "reference": line.file.reference,
                    "contractReference": line.file.contract_reference,
                    "seq": line.seq,
                    "status": line.status,
                    "event": line.event,
                    "recordedAt": line.recorded_at.to_string(),
                    "ageSeconds": age_seconds(now, line.recorded_at),
                    "delivery": delivery_json(&line.delivery),
                    "behind": line.behind,
                })
            })
            .collect();
        let documents: Vec<Value> = documents
            .iter()
            .map(|document| document_json(document, document_state, now))
            .collect();
        return write_json(out, &json!({ "events": events, "documents": documents }));
    }
    if events.is_empty() && documents.is_empty() {
        return writeln!(out, "nothing {kind}");
    }
    if events.is_empty() {
        writeln!(out, "no {kind} events")?;
    } else {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|line| {
                vec![
                    line.file.reference.clone(),
                    line.file.contract_reference.clone(),
                    line.seq.to_string(),
                    format!("{}/{}", line.status, line.event),
                    state_of(&line.delivery),
                    line.delivery.attempts().to_string(),
                    age(now, Some(line.recorded_at)),
                    event_note(line),
                ]
            })
            .collect();
        table(
            out,
            &[
                "REFERENCE",
                "CONTRACT",
                "SEQ",
                "EVENT",
                "STATE",
                "ATTEMPTS",
                "AGE",
                "LAST ERROR",
            ],
            &rows,
        )?;
    }
    writeln!(out)?;
    if documents.is_empty() {
        return writeln!(out, "no {kind} documents");
    }
    let rows: Vec<Vec<String>> = documents
        .iter()
        .map(|document| {
            let (reference, contract) = document.file.as_ref().map_or_else(
                || ("-".to_string(), "-".to_string()),
                |id| (id.reference.clone(), id.contract_reference.clone()),
            );
            vec![
                reference,
                contract,
                short(&document.object.identity()),
                size_text(document.object.size),
                document_state.into(),
                document.attempts.to_string(),
                age(now, document.since),
                document
                    .last_error
                    .as_deref()
                    .map(one_line)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "REFERENCE",
            "CONTRACT",
            "DOCUMENT",
            "SIZE",
            "STATE",
            "ATTEMPTS",
            "AGE",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn seqs(seqs: &[u32]) -> String {
    seqs.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn events_result(outcome: &EventsOutcome) -> (&'static str, Option<u32>, Option<String>) {
    match outcome {
        EventsOutcome::NothingToDo => ("nothingToDo", None, None),
        EventsOutcome::Delivered => ("delivered", None, None),
        EventsOutcome::RefusedAgain { seq, error } => {
            ("refusedAgain", Some(*seq), Some(one_line(error)))
        }
        EventsOutcome::StillPending { seq, error } => {
            ("stillPending", Some(*seq), error.as_deref().map(one_line))
        }
        EventsOutcome::LeftToResendRun => ("leftToResendRun", None, None),
    }
}

fn document_result(outcome: &DocumentOutcome) -> (&'static str, Option<String>) {
    match outcome {
        DocumentOutcome::NotRefused => ("notRefused", None),
        DocumentOutcome::Published => ("published", None),
        DocumentOutcome::Waiting(why) => ("waiting", Some(one_line(why))),
        DocumentOutcome::RefusedAgain(reason) => ("refusedAgain", Some(one_line(reason))),
        DocumentOutcome::AlreadyHandled => ("alreadyHandled", None),
        DocumentOutcome::Error(error) => ("error", Some(one_line(error))),
    }
}

/// `redrive`.
pub fn redrive(report: &RedriveReport, json: bool, out: &mut dyn Write) -> io::Result<()> {
    if json {
        let files: Vec<Value> = report
            .files
            .iter()
            .map(|file| {
                let (result, seq, error) = events_result(&file.outcome);
                json!({
                    "reference": file.file.reference,
                    "contractReference": file.file.contract_reference,
                    "requeued": file.requeued,
                    "delivered": file.delivered,
                    "result": result,
                    "seq": seq,
                    "error": error,
                })
            })
            .collect();
        let documents: Vec<Value> = report
            .documents
            .iter()
            .map(|redrive| {
                let (result, detail) = document_result(&redrive.outcome);
                let (reference, contract) = redrive
                    .document
                    .file
                    .as_ref()
                    .map(file_json)
                    .unwrap_or((Value::Null, Value::Null));
                json!({
                    "objectIdentity": redrive.document.object.identity(),
                    "reference": reference,
                    "contractReference": contract,
                    "size": redrive.document.object.size,
                    "result": result,
                    "detail": detail,
                })
            })
            .collect();
        let problems: Vec<Value> = report
            .problems
            .iter()
            .map(|(id, error)| {
                json!({
                    "reference": id.reference,
                    "contractReference": id.contract_reference,
                    "error": one_line(error),
                })
            })
            .collect();
        return write_json(
            out,
            &json!({
                "files": files,
                "documents": documents,
                "problems": problems,
                "allDone": report.all_done(),
            }),
        );
    }
    if report.files.is_empty() && report.documents.is_empty() && report.problems.is_empty() {
        return writeln!(out, "nothing failed: nothing to redrive");
    }
    for file in &report.files {
        let name = format!("{} ({})", file.file.reference, file.file.contract_reference);
        let requeued = if file.requeued.is_empty() {
            String::new()
        } else {
            format!("event(s) {} re-queued; ", seqs(&file.requeued))
        };
        let delivered = if file.delivered.is_empty() {
            String::new()
        } else {
            format!("delivered event(s) {}; ", seqs(&file.delivered))
        };
        let result = match &file.outcome {
            EventsOutcome::NothingToDo => "nothing failed or pending".to_string(),
            EventsOutcome::Delivered => "every event is on Intent".to_string(),
            EventsOutcome::RefusedAgain { seq, error } => {
                format!("Intent refused event {seq} again: {}", one_line(error))
            }
            EventsOutcome::StillPending { seq, error } => format!(
                "event {seq} is still pending ({}); the re-send run sends it again",
                error.as_deref().map(one_line).unwrap_or_default()
            ),
            EventsOutcome::LeftToResendRun => "not sent now: another sender holds the file's send lease (or the store failed under it); the events stay re-queued for that sender or the next re-send run".to_string(),
        };
        writeln!(out, "{name}: {requeued}{delivered}{result}")?;
    }
    for (id, error) in &report.problems {
        writeln!(
            out,
            "{} ({}): not redriven: {}",
            id.reference,
            id.contract_reference,
            one_line(error)
        )?;
    }
    for redrive in &report.documents {
        let document = &redrive.document;
        let file = document
            .file
            .as_ref()
            .map(|id| format!(" ({}, {})", id.reference, id.contract_reference))
            .unwrap_or_default();
        let result = match &redrive.outcome {
            DocumentOutcome::NotRefused => "no longer refused: nothing done".to_string(),
            DocumentOutcome::Published => "published on Intent".to_string(),
            DocumentOutcome::Waiting(why) => {
                format!(
                    "waiting again ({}); the re-send run forwards it",
                    one_line(why)
                )
            }
            DocumentOutcome::RefusedAgain(reason) => format!("refused again: {reason}"),
            DocumentOutcome::AlreadyHandled => "already handled".to_string(),
            DocumentOutcome::Error(error) => format!("not redriven: {}", one_line(error)),
        };
        writeln!(
            out,
            "document {}{file}: {result}",
            short(&document.object.identity())
        )?;
    }
    writeln!(
        out,
        "{} file(s), {} document(s): {}",
        report.files.len() + report.problems.len(),
        report.documents.len(),
        if report.all_done() {
            "all on Intent"
        } else {
            "not all on Intent"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        let now: Timestamp = "2026-11-28T20:00:00Z".parse().unwrap();
        let ago = |s: i64| Some(now - jiff::SignedDuration::from_secs(s));
        assert_eq!(age(now, ago(40)), "40s");
        assert_eq!(age(now, ago(12 * 60 + 5)), "12m");
        assert_eq!(age(now, ago(3 * 3600 + 5 * 60)), "3h05m");
        assert_eq!(age(now, ago(2 * 86_400 + 4 * 3600)), "2d04h");
        assert_eq!(age(now, ago(-5)), "0s");
        assert_eq!(age(now, None), "-");
    }

    /// An error text with accents (a French message, a file name) is tidied, not a panic
    /// (which would print the whole text).
    #[test]
    fn an_error_with_accents_is_tidied() {
        assert_eq!(
            tidy_error("le fichier é est illisible"),
            "le fichier é est illisible"
        );
        assert_eq!(
            tidy_error("échec réseau: dispatch failure (DispatchFailure(ConnectorError { é }))"),
            "échec réseau: dispatch failure"
        );
    }

    #[test]
    fn errors_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), MAX_LINE);
    }

    #[test]
    fn sdk_errors_lose_their_debug_dump() {
        assert_eq!(
            tidy_error(
                "the file store is unavailable: service error: unhandled error (ResourceNotFoundException): Error { code: \"ResourceNotFoundException\", message: \"Cannot do operations on a non-existent table\", aws_request_id: \"x\" }"
            ),
            "the file store is unavailable: ResourceNotFoundException: Cannot do operations on a non-existent table"
        );
        assert_eq!(
            tidy_error(
                "the file store is unavailable: dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111) (DispatchFailure(DispatchFailure { source: ConnectorError { kind: Io } }))"
            ),
            "the file store is unavailable: dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(
            tidy_error(
                "the file store is unavailable: service error: ResourceNotFoundException: Cannot do operations on a non-existent table: ResourceNotFoundException: Cannot do operations on a non-existent table (ServiceError(ServiceError { source: ResourceNotFoundException(ResourceNotFoundException { message: Some(\"Cannot do operations on a non-existent table\"), meta: ErrorMetadata { code: Some(\"ResourceNotFoundException\") } }) }))"
            ),
            "the file store is unavailable: service error: ResourceNotFoundException: Cannot do operations on a non-existent table"
        );
        assert_eq!(tidy_error("no intervention X"), "no intervention X");
    }

    #[test]
    fn tables_align_every_column_but_the_last() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["A", "BB", "C"],
            &[vec!["xxx".into(), "y".into(), "last one".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A    BB  C\nxxx  y   last one\n"
        );
    }
}
