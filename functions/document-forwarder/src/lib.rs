//! Document forwarding on S3 `ObjectCreated`: each record of the event is forwarded on
//! its own. A document that cannot go now (its file's opening not on Intent yet, Intent
//! unreachable) waits in the ledger and the on-call closer's re-send run forwards it: the
//! invocation succeeds. Only a failure of our own store fails the invocation, so that
//! Lambda's asynchronous retries (then the on-failure destination) take over; records
//! that succeeded are recorded (a redelivery skips them).

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_wiring::{CoreAdapters, CoreConfig, InvocationError};
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::IntentClient;
use lambda_runtime::{Error, LambdaEvent};
use oncall_domain::documents::{DocumentPolicy, ObjectRef, ObjectVersion, decode_event_key};
use oncall_domain::forward::{ForwardPorts, Forwarded, forward_document};
use oncall_domain::ports::{Clock, SystemClock};
use s3_documents::S3Documents;
use serde::Serialize;
use settings::Settings;
use telemetry::intent::{MeteredIntent, RESULT};
use telemetry::metrics::{Invocation, Metrics, MetricsSink, Unit};
use tracing::Instrument;

/// The function's name in its metrics (`Function`).
pub const FUNCTION: &str = "document-forwarder";
/// Documents (S3 object versions) by `Result`: `published`, `duplicate`, `rejected`,
/// `pending` (waiting in the ledger for the re-send run), `retry_later` (the invocation
/// fails for Lambda to retry).
pub const DOCUMENTS: &str = "Documents";

pub struct DocumentForwarder<C = SystemClock> {
    pub store: DynamoDbStore,
    pub objects: S3Documents,
    pub intent: MeteredIntent<IntentClient>,
    pub events: EventBridgePublisher,
    /// The function's: AWS's synchronised clock. An operator's command replaying dead
    /// letters runs it with its own machine's (`with_clock`).
    pub clock: C,
    pub policy: DocumentPolicy,
    /// Where each invocation's metrics go (standard output).
    pub metrics: MetricsSink,
}

pub struct ForwarderConfig {
    pub core: CoreConfig,
    pub policy: DocumentPolicy,
    /// Path-style S3 addressing (local emulators); virtual-hosted on AWS.
    pub s3_force_path_style: bool,
}

impl ForwarderConfig {
    /// `TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, the `INTENT_*` variables,
    /// `MAX_DOCUMENT_BYTES` (default 52428800 = 50 MiB), `CLOSED_FILE_RETENTION_DAYS`
    /// (default 395) and `S3_FORCE_PATH_STYLE` (default false).
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        Ok(Self {
            core: CoreConfig::from_settings(settings)?,
            policy: aws_wiring::document_policy(settings)?,
            s3_force_path_style: settings.flag("S3_FORCE_PATH_STYLE", false)?,
        })
    }
}

impl DocumentForwarder {
    /// Built once per execution environment.
    pub fn new(sdk: &aws_wiring::SdkConfig, config: ForwarderConfig) -> Result<Self, Error> {
        let core = CoreAdapters::new(sdk, config.core)?;
        let objects = core.documents_reader(sdk, config.s3_force_path_style)?;
        let CoreAdapters {
            store,
            intent,
            events,
            ..
        } = core;
        Ok(Self {
            store,
            objects,
            intent: MeteredIntent::new(intent),
            events,
            clock: SystemClock,
            policy: config.policy,
            metrics: MetricsSink::stdout(),
        })
    }

    /// The same forwarder on another clock.
    pub fn with_clock<D: Clock>(self, clock: D) -> DocumentForwarder<D> {
        DocumentForwarder {
            store: self.store,
            objects: self.objects,
            intent: self.intent,
            events: self.events,
            clock,
            policy: self.policy,
            metrics: self.metrics,
        }
    }
}

/// What became of each record, for the log line, the metrics and the tests.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub published: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Waiting in the ledger for the re-send run.
    pub pending: usize,
    pub retry_later: usize,
}

impl Summary {
    /// `Documents` by `Result`, one document per result that occurred (within an
    /// invocation; nothing otherwise, as when the operator's command replays events).
    fn emit_metrics(&self) {
        for (result, count) in [
            ("published", self.published),
            ("duplicate", self.duplicates),
            ("rejected", self.rejected),
            ("pending", self.pending),
            ("retry_later", self.retry_later),
        ] {
            if count > 0 {
                telemetry::metrics::emit(&Metrics::new().dimension(RESULT, result).metric(
                    DOCUMENTS,
                    Unit::Count,
                    count,
                    &[RESULT],
                ));
            }
        }
    }
}

fn object_of(record: &S3EventRecord) -> Result<ObjectRef, String> {
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .ok_or("record without bucket")?;
    let raw_key = record
        .s3
        .object
        .key
        .as_deref()
        .ok_or("record without key")?;
    let key = decode_event_key(raw_key).map_err(|e| e.to_string())?;
    let version = match (&record.s3.object.version_id, &record.s3.object.e_tag) {
        (Some(id), _) if !id.is_empty() && id != "null" => ObjectVersion::VersionId(id.clone()),
        (_, Some(etag)) if !etag.is_empty() => ObjectVersion::ETag(etag.clone()),
        _ => return Err("record without version id nor ETag".into()),
    };
    Ok(ObjectRef {
        bucket,
        key,
        version,
        size: record
            .s3
            .object
            .size
            .and_then(|size| u64::try_from(size).ok()),
    })
}

/// Forwards every record; fails (for Lambda to retry) if any record must be retried.
pub async fn handle<C: Clock>(
    forwarder: &DocumentForwarder<C>,
    event: S3Event,
) -> Result<Summary, InvocationError> {
    let ports = ForwardPorts {
        ledger: &forwarder.store,
        files: &forwarder.store,
        objects: &forwarder.objects,
        intent: &forwarder.intent,
        events: &forwarder.events,
        clock: &forwarder.clock,
    };
    let mut summary = Summary::default();
    let mut failures = Vec::new();
    for (index, record) in event.records.iter().enumerate() {
        let span = tracing::info_span!(
            "record",
            index,
            object = tracing::field::Empty,
            reference = tracing::field::Empty,
            contract = tracing::field::Empty,
        );
        let outcome = async {
            let object = match object_of(record) {
                Ok(object) => object,
                Err(problem) => {
                    // Not an object we can name: nothing to record or retry.
                    tracing::error!(%problem, "unusable S3 event record skipped");
                    return Ok(Forwarded::Duplicate);
                }
            };
            tracing::Span::current().record("object", object.identity().as_str());
            forward_document(&ports, forwarder.policy, &object).await
        }
        .instrument(span)
        .await;
        match outcome {
            Ok(Forwarded::Published(_)) => summary.published += 1,
            Ok(Forwarded::Duplicate) => summary.duplicates += 1,
            Ok(Forwarded::Rejected(_)) => summary.rejected += 1,
            Ok(Forwarded::Pending(_)) => summary.pending += 1,
            Err(error) => {
                summary.retry_later += 1;
                failures.push(format!("record {index}: {error}"));
            }
        }
    }
    tracing::info!(
        published = summary.published,
        duplicates = summary.duplicates,
        rejected = summary.rejected,
        pending = summary.pending,
        retry_later = summary.retry_later,
        "S3 event handled"
    );
    summary.emit_metrics();
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(InvocationError::Retryable(format!(
            "{} record(s) to retry: {}",
            failures.len(),
            failures.join("; ")
        )))
    }
}

/// The runtime's entry: one span per invocation (inside the runtime's, which carries the
/// request and trace ids), and the invocation's metrics.
pub async fn handle_invocation(
    forwarder: &DocumentForwarder,
    event: LambdaEvent<S3Event>,
) -> Result<Summary, InvocationError> {
    let span = tracing::info_span!("invocation", records = event.payload.records.len());
    let invocation = Invocation::new(
        FUNCTION,
        &event.context.request_id,
        event.context.xray_trace_id.as_deref(),
        forwarder.metrics.clone(),
    );
    invocation
        .run(handle(forwarder, event.payload))
        .instrument(span)
        .await
}
