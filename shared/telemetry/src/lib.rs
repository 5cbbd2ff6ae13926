//! What the functions tell operators, the same for every function, the local run and the
//! operator's command: JSON log lines through `tracing` ([`logs`]: the invocation's
//! `requestId` and `xrayTraceId` on every line), and CloudWatch metrics in Embedded Metric
//! Format ([`metrics`], with the Intent calls measured by [`intent::MeteredIntent`]). No AWS
//! crate: the local run links it without the SDK.

pub mod intent;
mod logs;
pub mod metrics;

pub use logs::INVOCATION_FIELDS;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

/// JSON log lines on stdout (CloudWatch picks them up), level from `RUST_LOG` (default
/// `info`). No time stamps (Lambda stamps each line); the invocation's ids and the fields
/// of the spans the line is in (the file reference) on every line.
pub fn init_tracing() {
    let filter = log_filter(&std::env::var("RUST_LOG").unwrap_or_default());
    let _ = tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout));
}

/// Where lambda_runtime opens its span around each invocation, with the invocation's
/// `requestId` and `xrayTraceId` (`lambda_runtime::layers::trace::request_span`). Always
/// enabled, whatever `RUST_LOG` says of the runtime: it holds no request contents, and it
/// is what puts the ids on every line of an invocation.
pub const INVOCATION_SPAN_TARGET: &str = "lambda_runtime::layers::trace";

/// Libraries whose debug and trace output carries request contents (S3 object keys with
/// file names, request bodies — the SigV4 signer traces what it signs —, raw Lambda events): whatever `RUST_LOG` asks, they log at
/// `warn` at most, so tenants' personal data never reaches a log line through them.
const CAPPED_TARGETS: [&str; 13] = [
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "aws_sdk_dynamodb",
    "aws_sdk_eventbridge",
    "aws_sdk_s3",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "lambda_runtime",
    "lambda_http",
    "reqwest",
    "hyper_util",
    "h2",
];

/// The filter for a `RUST_LOG` value: `info`, `debug`, `warn,oncall_domain=debug`, … (a
/// level, and `target=level` directives; an unreadable value means `info`), with the
/// capped libraries at `warn` at most. Parsed without regular expressions (`Targets`,
/// not `EnvFilter`): a smaller binary and a faster start.
pub fn log_filter(spec: &str) -> Targets {
    let parsed: Targets = spec
        .trim()
        .parse()
        .ok()
        .filter(|_| !spec.trim().is_empty())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let default = parsed.default_level().unwrap_or(LevelFilter::OFF);
    let cap = |level: LevelFilter| level.min(LevelFilter::WARN);
    let mut filter = Targets::new().with_default(default);
    for (target, level) in parsed.iter() {
        let capped = CAPPED_TARGETS
            .iter()
            .any(|capped| target == *capped || target.starts_with(&format!("{capped}::")));
        filter = filter.with_target(target, if capped { cap(level) } else { level });
    }
    for target in CAPPED_TARGETS {
        if !parsed.iter().any(|(named, _)| named == target) {
            filter = filter.with_target(target, cap(default));
        }
    }
    // More specific than `lambda_runtime` (the runtime's events stay capped), and set last:
    // it replaces whatever `RUST_LOG` said of that target.
    filter.with_target(INVOCATION_SPAN_TARGET, LevelFilter::INFO)
}

/// The JSON subscriber every function uses, writing to `writer` (tests capture it to
/// check what reaches a log line).
pub fn json_subscriber<W>(filter: Targets, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(logs::JsonLines::new(writer))
        .with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn rust_log_levels_with_the_chatty_libraries_capped() {
        let info = log_filter("");
        assert!(enabled(&info, "oncall_domain::intake", Level::INFO));
        assert!(!enabled(&info, "oncall_domain::intake", Level::DEBUG));
        assert!(enabled(&info, "aws_sdk_s3", Level::WARN));
        assert!(!enabled(&info, "aws_sdk_s3::operation", Level::INFO));

        let debug = log_filter("debug,aws_sdk_s3=trace,reqwest::connect=debug");
        assert!(enabled(&debug, "oncall_domain", Level::DEBUG));
        assert!(!enabled(&debug, "aws_sdk_s3", Level::DEBUG), "capped");
        assert!(!enabled(&debug, "reqwest::connect", Level::DEBUG), "capped");
        assert!(!enabled(&debug, "lambda_runtime", Level::INFO), "capped");
        assert!(enabled(&debug, "lambda_runtime", Level::WARN));

        // The SigV4 signer traces the request it signs (its URI: S3 keys are file names;
        // its body: a DynamoDB transaction holds the tenant's contacts).
        let trace = log_filter("trace");
        assert!(enabled(&trace, "oncall_domain", Level::TRACE));
        assert!(
            !enabled(&trace, "aws_sigv4::http_request::sign", Level::TRACE),
            "capped"
        );

        let garbage = log_filter("=!?");
        assert!(enabled(&garbage, "oncall_domain", Level::INFO));
        assert!(!enabled(&garbage, "oncall_domain", Level::DEBUG));
        let quiet = log_filter("error");
        assert!(!enabled(&quiet, "oncall_domain", Level::WARN));
    }

    #[test]
    fn the_runtimes_invocation_span_is_on_whatever_rust_log_says() {
        for spec in [
            "",
            "info",
            "error",
            "off",
            "warn,lambda_runtime=error",
            "debug,lambda_runtime::layers::trace=off",
        ] {
            let filter = log_filter(spec);
            assert!(
                enabled(&filter, INVOCATION_SPAN_TARGET, Level::INFO),
                "{spec}"
            );
            // The runtime's own events stay capped.
            assert!(
                !enabled(&filter, "lambda_runtime::runtime", Level::INFO),
                "{spec}"
            );
        }
    }

    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The text `work` logs through the functions' subscriber at `level`.
    fn logged_text(level: &str, work: impl FnOnce()) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = json_subscriber(log_filter(level), move || writer.clone());
        tracing::subscriber::with_default(subscriber, work);
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    /// The JSON lines `work` logs through the functions' subscriber at `level`.
    fn logged(level: &str, work: impl FnOnce()) -> Vec<serde_json::Value> {
        logged_text(level, work)
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }

    /// The span lambda_runtime opens around an invocation (same target, name and fields).
    fn runtime_span(request_id: &str, trace_id: &str) -> tracing::Span {
        tracing::info_span!(
            target: "lambda_runtime::layers::trace",
            "Lambda runtime invoke",
            requestId = request_id,
            xrayTraceId = trace_id
        )
    }

    #[test]
    fn every_line_of_an_invocation_carries_its_request_and_trace_ids() {
        let trace = "Root=1-67a1b2c3-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1";
        let lines = logged("info", || {
            tracing::info!("at start");
            runtime_span("req-1", trace).in_scope(|| {
                tracing::info!("before the handler's span");
                let span = tracing::info_span!(
                    "invocation",
                    method = "POST",
                    reference = tracing::field::Empty
                );
                span.in_scope(|| {
                    tracing::Span::current().record("reference", "INTER-0500");
                    tracing::info_span!("record", index = 0_u64, reference = "INTER-0501")
                        .in_scope(|| {
                            tracing::warn!(attempt = 2_u64, "Intent call failed; retrying")
                        });
                    tracing::info!(status = 201_u64, "answered");
                });
            });
            runtime_span("req-2", "Root=1-2").in_scope(|| tracing::error!("second invocation"));
            tracing::info!("between invocations");
        });
        let messages: Vec<&str> = lines
            .iter()
            .map(|line| line["fields"]["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            messages,
            [
                "at start",
                "before the handler's span",
                "Intent call failed; retrying",
                "answered",
                "second invocation",
                "between invocations"
            ]
        );
        for line in &lines[1..4] {
            assert_eq!(line["requestId"], "req-1", "{line}");
            assert_eq!(line["xrayTraceId"], trace, "{line}");
        }
        assert_eq!(lines[4]["requestId"], "req-2");
        assert_eq!(lines[4]["xrayTraceId"], "Root=1-2");
        for line in [&lines[0], &lines[5]] {
            assert!(
                line.get("requestId").is_none() && line.get("span").is_none(),
                "{line}"
            );
        }
        // The spans' fields, merged outermost first, the innermost named; the event's own.
        assert_eq!(
            lines[2],
            serde_json::json!({
                "level": "WARN",
                "requestId": "req-1",
                "xrayTraceId": trace,
                "fields": {"message": "Intent call failed; retrying", "attempt": 2},
                "span": {"method": "POST", "reference": "INTER-0501", "index": 0, "name": "record"}
            })
        );
        assert_eq!(lines[3]["span"]["reference"], "INTER-0500");
        assert_eq!(lines[3]["span"]["name"], "invocation");
        assert_eq!(lines[1]["span"]["name"], "Lambda runtime invoke");
    }

    #[test]
    fn a_line_is_written_in_its_documented_order() {
        let text = logged_text("info", || {
            runtime_span("req-1", "Root=1-1").in_scope(|| {
                tracing::info_span!("invocation", method = "POST", reference = "INTER-0500")
                    .in_scope(|| {
                        tracing::info_span!("record", reference = "INTER-\"0501\"", name = "n")
                            .in_scope(|| tracing::warn!(attempt = 2_u64, ok = true, "retrying"))
                    });
            });
        });
        assert_eq!(
            text,
            concat!(
                r#"{"level":"WARN","requestId":"req-1","xrayTraceId":"Root=1-1","#,
                r#""fields":{"message":"retrying","attempt":2,"ok":true},"#,
                r#""span":{"method":"POST","reference":"INTER-\"0501\"","name":"record"}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn the_ids_stay_on_the_lines_when_only_warnings_are_logged() {
        let lines = logged("warn", || {
            runtime_span("req-3", "Root=1-3").in_scope(|| {
                tracing::info_span!("invocation", kind = "resend").in_scope(|| {
                    tracing::info!("filtered out");
                    tracing::warn!("kept");
                });
            });
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["requestId"], "req-3");
        assert_eq!(lines[0]["xrayTraceId"], "Root=1-3");
        assert_eq!(lines[0]["fields"]["message"], "kept");
    }
}
