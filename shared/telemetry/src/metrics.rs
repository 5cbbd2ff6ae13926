//! CloudWatch metrics in Embedded Metric Format (EMF): a JSON line on standard output that
//! CloudWatch Logs turns into metrics, no API call and no client to build.
//!
//! Every metric is in one namespace, [`NAMESPACE`], with the [`FUNCTION`] dimension (the
//! function's name as `template.yaml` builds it: `claim-intake`, `intervention-closure`,
//! `document-forwarder`, `oncall-closer`), and at most a few more whose values are fixed
//! words of the code: dimension names and values are `&'static str`, so a file reference or
//! anything a partner sent cannot become one. The invocation's `requestId` and
//! `xrayTraceId` ride along as plain properties (searchable in the logs, not dimensions).
//!
//! A function's entry point runs each invocation within an [`Invocation`] (its function,
//! its ids, where the lines go); the code below it reports through [`emit`], which writes
//! nothing outside an invocation (the operator's command and the local run reuse that code
//! and stay silent).

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// The one namespace of the bridge's own metrics.
pub const NAMESPACE: &str = "OnCallBridge";
/// The dimension every metric has: which function emitted it.
pub const FUNCTION: &str = "Function";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

#[derive(Debug, Clone)]
struct Metric {
    name: &'static str,
    unit: Unit,
    value: Value,
    /// The dimensions besides `Function` it is aggregated by.
    by: &'static [&'static str],
}

/// One EMF document: dimension values, and metrics each aggregated by `Function` and the
/// dimensions it names.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    timestamp_ms: Option<i64>,
    dimensions: Vec<(&'static str, &'static str)>,
    metrics: Vec<Metric>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The time of the values (milliseconds since the epoch); now when not given.
    pub fn at(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// A dimension's value for this document (`Outcome` = `created`, …).
    pub fn dimension(mut self, name: &'static str, value: &'static str) -> Self {
        self.dimensions.push((name, value));
        self
    }

    /// `name` = `value` in `unit`, aggregated by `Function` and the dimensions `by` (each
    /// given a value with [`Metrics::dimension`]).
    pub fn metric(
        mut self,
        name: &'static str,
        unit: Unit,
        value: impl Into<Value>,
        by: &'static [&'static str],
    ) -> Self {
        self.metrics.push(Metric {
            name,
            unit,
            value: value.into(),
            by,
        });
        self
    }

    /// The EMF document of `function`, with the invocation's ids as properties.
    pub fn document(&self, function: &'static str, ids: &InvocationIds) -> Value {
        serde_json::to_value(self.emf(function, ids)).expect("an EMF document always serialises")
    }

    /// The document as one line of JSON, with its newline.
    fn line(&self, function: &'static str, ids: &InvocationIds) -> Vec<u8> {
        let mut line = Vec::with_capacity(512);
        serde_json::to_writer(&mut line, &self.emf(function, ids))
            .expect("an EMF document always serialises");
        line.push(b'\n');
        line
    }

    fn emf<'a>(&'a self, function: &'static str, ids: &'a InvocationIds) -> Document<'a> {
        Document {
            metrics: self,
            function,
            ids,
            timestamp_ms: self.timestamp_ms.unwrap_or_else(now_ms),
        }
    }
}

/// An EMF document, written field by field (no intermediate JSON tree: it is written on
/// every invocation): `_aws` with one directive per dimension set, in the order the
/// metrics came; `Function`; the dimension values; the metric values; the ids.
struct Document<'a> {
    metrics: &'a Metrics,
    function: &'static str,
    ids: &'a InvocationIds,
    timestamp_ms: i64,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let metrics = &self.metrics.metrics;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(
            "_aws",
            &Aws {
                metrics,
                timestamp_ms: self.timestamp_ms,
            },
        )?;
        map.serialize_entry(FUNCTION, self.function)?;
        for (name, value) in &self.metrics.dimensions {
            map.serialize_entry(name, value)?;
        }
        for metric in metrics {
            map.serialize_entry(metric.name, &metric.value)?;
        }
        if !self.ids.request_id.is_empty() {
            map.serialize_entry("requestId", &self.ids.request_id)?;
        }
        if let Some(trace) = &self.ids.xray_trace_id {
            map.serialize_entry("xrayTraceId", trace)?;
        }
        map.end()
    }
}

struct Aws<'a> {
    metrics: &'a [Metric],
    timestamp_ms: i64,
}

impl Serialize for Aws<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The dimension sets, in the order their first metric came.
        let mut sets: Vec<&'static [&'static str]> = Vec::new();
        for metric in self.metrics {
            if !sets.contains(&metric.by) {
                sets.push(metric.by);
            }
        }
        let directives: Vec<Directive<'_>> = sets
            .into_iter()
            .map(|by| Directive {
                by,
                metrics: self.metrics,
            })
            .collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("Timestamp", &self.timestamp_ms)?;
        map.serialize_entry("CloudWatchMetrics", &directives)?;
        map.end()
    }
}

/// The metrics aggregated by `Function` and `by`.
struct Directive<'a> {
    by: &'static [&'static str],
    metrics: &'a [Metric],
}

impl Serialize for Directive<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Dimensions(&'static [&'static str]);
        impl Serialize for Dimensions {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut set = serializer.serialize_seq(Some(self.0.len() + 1))?;
                set.serialize_element(FUNCTION)?;
                for name in self.0 {
                    set.serialize_element(name)?;
                }
                set.end()
            }
        }
        struct Names<'a>(&'static [&'static str], &'a [Metric]);
        impl Serialize for Names<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut names = serializer.serialize_seq(None)?;
                for metric in self.1.iter().filter(|metric| metric.by == self.0) {
                    names.serialize_element(&NameAndUnit {
                        name: metric.name,
                        unit: metric.unit.as_str(),
                    })?;
                }
                names.end()
            }
        }
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("Namespace", NAMESPACE)?;
        map.serialize_entry("Dimensions", &[Dimensions(self.by)])?;
        map.serialize_entry("Metrics", &Names(self.by, self.metrics))?;
        map.end()
    }
}

#[derive(Serialize)]
struct NameAndUnit {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Unit")]
    unit: &'static str,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Where EMF lines go: standard output in Lambda (the function's log group), any writer in
/// tests.
#[derive(Clone)]
pub struct MetricsSink(Arc<Mutex<dyn Write + Send>>);

impl MetricsSink {
    pub fn stdout() -> Self {
        Self::writer(std::io::stdout())
    }

    pub fn writer(out: impl Write + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(out)))
    }

    /// One line, written at once (never interleaved with a log line).
    fn write_line(&self, line: &[u8]) {
        let mut out = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(line);
        let _ = out.flush();
    }
}

impl Default for MetricsSink {
    fn default() -> Self {
        Self::stdout()
    }
}

impl std::fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsSink")
    }
}

/// The invocation's ids, from the Lambda context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationIds {
    pub request_id: String,
    pub xray_trace_id: Option<String>,
}

/// One invocation of a function, for its metrics: its function, its ids and where its
/// lines go.
#[derive(Debug, Clone)]
pub struct Invocation {
    function: &'static str,
    ids: InvocationIds,
    sink: MetricsSink,
}

tokio::task_local! {
    static CURRENT: Invocation;
}

impl Invocation {
    pub fn new(
        function: &'static str,
        request_id: &str,
        xray_trace_id: Option<&str>,
        sink: MetricsSink,
    ) -> Self {
        Self {
            function,
            ids: InvocationIds {
                request_id: request_id.to_string(),
                xray_trace_id: xray_trace_id.map(str::to_string),
            },
            sink,
        }
    }

    /// Runs `work` as this invocation: what it reports through [`emit`] is written as
    /// this invocation's.
    pub async fn run<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }

    /// Writes `metrics` as this invocation's.
    pub fn emit(&self, metrics: &Metrics) {
        self.sink
            .write_line(&metrics.line(self.function, &self.ids));
    }
}

/// Writes `metrics` for the invocation under way; nothing outside one.
pub fn emit(metrics: &Metrics) {
    let _ = CURRENT.try_with(|invocation| invocation.emit(metrics));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A sink keeping the lines written, for tests.
    #[derive(Clone, Default)]
    pub(crate) struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        pub(crate) fn documents(&self) -> Vec<Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect()
        }
    }

    #[test]
    fn a_document_has_one_directive_per_dimension_set() {
        let metrics = Metrics::new()
            .at(1_795_892_638_000)
            .dimension("Result", "delivered")
            .dimension("Operation", "event")
            .metric("IntentDeliveries", Unit::Count, 1, &["Result"])
            .metric("IntentLatency", Unit::Milliseconds, 12.5, &["Operation"])
            .metric("Other", Unit::Seconds, 3, &["Result"]);
        let ids = InvocationIds {
            request_id: "r-1".into(),
            xray_trace_id: Some("Root=1-abc".into()),
        };
        let document = metrics.document("claim-intake", &ids);
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_795_892_638_000_i64,
                    "CloudWatchMetrics": [
                        {"Namespace": "OnCallBridge", "Dimensions": [["Function", "Result"]],
                         "Metrics": [{"Name": "IntentDeliveries", "Unit": "Count"},
                                     {"Name": "Other", "Unit": "Seconds"}]},
                        {"Namespace": "OnCallBridge", "Dimensions": [["Function", "Operation"]],
                         "Metrics": [{"Name": "IntentLatency", "Unit": "Milliseconds"}]}
                    ]
                },
                "Function": "claim-intake",
                "Result": "delivered",
                "Operation": "event",
                "IntentDeliveries": 1,
                "IntentLatency": 12.5,
                "Other": 3,
                "requestId": "r-1",
                "xrayTraceId": "Root=1-abc"
            })
        );
        // Without ids (a test, the local run), no empty properties; the time is now.
        let bare = Metrics::new()
            .metric("Claims", Unit::Count, 1, &[])
            .document("claim-intake", &InvocationIds::default());
        assert!(bare.get("requestId").is_none() && bare.get("xrayTraceId").is_none());
        let timestamp = bare["_aws"]["Timestamp"].as_i64().unwrap();
        assert!((timestamp - now_ms()).abs() < 60_000, "{timestamp}");
        // The line written is that document, in that key order, on one line.
        let line = String::from_utf8(metrics.line("claim-intake", &ids)).unwrap();
        assert_eq!(
            line,
            format!("{}\n", metrics.document("claim-intake", &ids))
        );
        assert!(line.starts_with(r#"{"_aws":{"Timestamp":1795892638000,"CloudWatchMetrics":[{"Namespace":"OnCallBridge","Dimensions":[["Function","Result"]],"Metrics":[{"Name":"IntentDeliveries","Unit":"Count"},{"Name":"Other","Unit":"Seconds"}]}"#), "{line}");
        assert!(
            line.ends_with("\"Other\":3,\"requestId\":\"r-1\",\"xrayTraceId\":\"Root=1-abc\"}\n"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn emit_writes_within_an_invocation_only() {
        let lines = Lines::default();
        let metrics = Metrics::new().metric("Claims", Unit::Count, 1, &[]);
        emit(&metrics);
        let invocation = Invocation::new(
            "document-forwarder",
            "r-2",
            None,
            MetricsSink::writer(lines.clone()),
        );
        invocation
            .run(async {
                emit(&metrics);
                // Work the invocation awaits is in it too.
                async { emit(&metrics) }.await;
            })
            .await;
        emit(&metrics);
        let documents = lines.documents();
        assert_eq!(documents.len(), 2, "{documents:?}");
        for document in documents {
            assert_eq!(document["Function"], "document-forwarder");
            assert_eq!(document["requestId"], "r-2");
            assert_eq!(document["Claims"], 1);
        }
    }
}
