//! JSON log lines through `tracing`, the same for every function, the local run and the
//! operator's command. No AWS crate: the local run links it without the SDK.

/// JSON log lines on stdout (CloudWatch picks them up), level from `RUST_LOG` (default
/// `info`). No ANSI colours, no time stamps (Lambda stamps each line), the current span's
/// fields (the file reference) on every line.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout));
}

/// Libraries whose debug and trace output carries request contents (S3 object keys with
/// file names, request bodies, raw Lambda events): whatever `RUST_LOG` asks, they log at
/// `warn` at most, so tenants' personal data never reaches a log line through them.
const CAPPED_TARGETS: [&str; 12] = [
    "aws_config",
    "aws_runtime",
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

/// The JSON subscriber every function uses, writing to `writer` (tests capture it to
/// check that no personal data reaches a log line).
pub fn json_subscriber<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = CAPPED_TARGETS.iter().fold(filter, |filter, target| {
        filter.add_directive(format!("{target}=warn").parse().expect("a valid directive"))
    });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .with_writer(writer)
        .finish()
}
