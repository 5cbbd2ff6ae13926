//! `dlq replay`: the document forwarder's dead-letter queue fed back through the
//! forwarder's own logic. Each message is a Lambda asynchronous-invocation destination
//! record (`requestPayload` is the S3 event that failed) or a bare S3 event; a message
//! the forwarder handled is deleted, one it could not handle is left in the queue (visible
//! again at the end of the run). The documents ledger makes a replay of an object already
//! handled a no-op.

use crate::render::{one_line, tidy_error};
use crate::{EXIT_CONFIG, EXIT_INCOMPLETE, EXIT_OK, fail};
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_sqs::error::DisplayErrorContext;
use document_forwarder::DocumentForwarder;
use serde_json::{Value, json};
use std::io::Write;

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub received: usize,
    /// Handled by the forwarder and deleted from the queue.
    pub replayed: usize,
    /// The forwarder failed (our store): left in the queue.
    pub failed: usize,
    /// Neither a destination record nor an S3 event: left in the queue.
    pub unreadable: usize,
    /// Handled, but the deletion failed: a later replay finds it again (harmless).
    pub not_deleted: usize,
    pub published: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Waiting in the ledger for the re-send run.
    pub waiting: usize,
}

/// The S3 event a dead-letter message carries.
pub fn s3_event_of(body: &str) -> Result<S3Event, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|_| "the message body is not JSON".to_string())?;
    let event = match value.get("requestPayload") {
        // A destination record; its payload may also come as a JSON string.
        Some(Value::String(text)) => serde_json::from_str(text)
            .map_err(|_| "the record's requestPayload is not JSON".to_string())?,
        Some(payload) => payload.clone(),
        None => value,
    };
    if event.get("Records").is_none() {
        return Err("neither a Lambda destination record nor an S3 event".into());
    }
    serde_json::from_value(event).map_err(|error| format!("not a valid S3 event: {error}"))
}

/// Messages taken at once (SQS's largest batch).
const BATCH: i32 = 10;
/// How long a received message stays invisible to others while it is replayed (the
/// forwarder's timeout: a 50 MiB upload with its retries).
const VISIBILITY_SECONDS: i32 = 900;

/// Receives and replays up to `max` messages (all by default); returns the exit code.
pub async fn replay<C: oncall_domain::ports::Clock>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: Option<usize>,
    forwarder: &DocumentForwarder<C>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut report = ReplayReport::default();
    let mut problems: Vec<String> = Vec::new();
    // Receipt handles of the messages left in the queue: visible again at the end.
    let mut left = Vec::new();
    loop {
        let wanted = match max {
            Some(max) if report.received >= max => break,
            Some(max) => (max - report.received).min(BATCH as usize) as i32,
            None => BATCH,
        };
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(wanted)
            .visibility_timeout(VISIBILITY_SECONDS)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                make_visible(sqs, queue_url, &left).await;
                return fail(
                    err,
                    EXIT_CONFIG,
                    format!(
                        "the queue {queue_url} could not be read: {}",
                        DisplayErrorContext(error)
                    ),
                );
            }
        };
        if messages.is_empty() {
            break;
        }
        for message in messages {
            report.received += 1;
            let id = message.message_id().unwrap_or("?").to_string();
            let handle = message.receipt_handle().unwrap_or_default().to_string();
            let event = match s3_event_of(message.body().unwrap_or_default()) {
                Ok(event) => event,
                Err(why) => {
                    report.unreadable += 1;
                    problems.push(format!("message {id}: {why}; left in the queue"));
                    left.push(handle);
                    continue;
                }
            };
            match document_forwarder::handle(forwarder, event).await {
                Ok(summary) => {
                    report.published += summary.published;
                    report.duplicates += summary.duplicates;
                    report.rejected += summary.rejected;
                    report.waiting += summary.pending;
                    let deleted = sqs
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(&handle)
                        .send()
                        .await;
                    match deleted {
                        Ok(_) => report.replayed += 1,
                        Err(error) => {
                            report.not_deleted += 1;
                            problems.push(format!(
                                "message {id}: replayed but not deleted ({}); a later replay skips it",
                                tidy_error(&DisplayErrorContext(error).to_string())
                            ));
                        }
                    }
                }
                Err(error) => {
                    report.failed += 1;
                    problems.push(format!(
                        "message {id}: the forwarder failed ({}); left in the queue",
                        tidy_error(&error.to_string())
                    ));
                    left.push(handle);
                }
            }
        }
    }
    make_visible(sqs, queue_url, &left).await;
    // Done when every message went through and its documents are on Intent (or were
    // already): a quitus refused, or waiting for the re-send run, is not done yet.
    let complete = report.failed == 0
        && report.unreadable == 0
        && report.not_deleted == 0
        && report.rejected == 0
        && report.waiting == 0;
    let written = if json {
        let text = serde_json::to_string_pretty(&json!({
            "received": report.received,
            "replayed": report.replayed,
            "failed": report.failed,
            "unreadable": report.unreadable,
            "notDeleted": report.not_deleted,
            "published": report.published,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "waiting": report.waiting,
            "problems": problems.iter().map(|p| one_line(p)).collect::<Vec<_>>(),
        }))
        .unwrap_or_default();
        writeln!(out, "{text}")
    } else {
        write_human(&report, &problems, out)
    };
    if let Err(error) = written {
        return fail(
            err,
            EXIT_CONFIG,
            format!("could not write the output: {error}"),
        );
    }
    if complete { EXIT_OK } else { EXIT_INCOMPLETE }
}

fn write_human(
    report: &ReplayReport,
    problems: &[String],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if report.received == 0 {
        return writeln!(out, "the queue is empty: nothing to replay");
    }
    for problem in problems {
        writeln!(out, "{}", one_line(problem))?;
    }
    writeln!(
        out,
        "{} message(s): {} replayed and deleted (documents published {}, already handled {}, rejected {}, waiting for the re-send run {}); {} left in the queue",
        report.received,
        report.replayed,
        report.published,
        report.duplicates,
        report.rejected,
        report.waiting,
        report.failed + report.unreadable,
    )
}

/// Puts messages left in the queue back in sight at once (not after the visibility
/// timeout), for the next replay.
async fn make_visible(sqs: &aws_sdk_sqs::Client, queue_url: &str, handles: &[String]) {
    for handle in handles {
        if let Err(error) = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(error = %DisplayErrorContext(error), "a message stays invisible until its timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-3","eventTime":"2026-11-28T19:03:58.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:X"},"requestParameters":{"sourceIPAddress":"192.0.2.10"},"responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},"s3":{"s3SchemaVersion":"1.0","configurationId":"q","bucket":{"name":"docs","ownerIdentity":{"principalId":"A"},"arn":"arn:aws:s3:::docs"},"object":{"key":"operator-quitus/contract1/INTER-0500/q.pdf","size":10,"eTag":"abc","versionId":"v1","sequencer":"00"}}}]}"#;

    #[test]
    fn a_destination_record_and_a_bare_event_both_give_the_s3_event() {
        let record = format!(
            r#"{{"version":"1.0","timestamp":"2026-11-28T19:05:00.000Z","requestContext":{{"requestId":"r","functionArn":"arn:aws:lambda:eu-west-3:1:function:f","condition":"RetriesExhausted","approximateInvokeCount":3}},"requestPayload":{S3_EVENT},"responseContext":{{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"}},"responsePayload":{{"errorMessage":"1 record(s) to retry"}}}}"#
        );
        for body in [record.as_str(), S3_EVENT] {
            let event = s3_event_of(body).unwrap();
            assert_eq!(event.records.len(), 1);
            assert_eq!(event.records[0].s3.bucket.name.as_deref(), Some("docs"));
        }
        let quoted = json!({ "requestPayload": S3_EVENT }).to_string();
        assert_eq!(s3_event_of(&quoted).unwrap().records.len(), 1);
    }

    #[test]
    fn anything_else_is_unreadable() {
        assert!(s3_event_of("not json").is_err());
        assert!(s3_event_of(r#"{"hello":"world"}"#).is_err());
    }
}
