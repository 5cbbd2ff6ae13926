//! What every Lambda entry point shares: JSON logs through `tracing`, one `SdkConfig`
//! for all AWS clients, and configuration read from the environment.

mod adapters;

pub use adapters::{CoreAdapters, CoreConfig};
use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;

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

/// The one `SdkConfig` of the execution environment: region, credentials and endpoints
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, … for local emulators) resolved once
/// and shared by every client built from it.
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} is required")]
pub struct MissingVariable {
    pub name: String,
}

/// A required environment variable.
pub fn required_env(name: &str) -> Result<String, MissingVariable> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .ok_or_else(|| MissingVariable {
            name: name.to_string(),
        })
}

/// An optional environment variable with a default.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} must be {expected}, not {value:?}")]
pub struct InvalidVariable {
    pub name: String,
    pub expected: String,
    pub value: String,
}

/// An optional environment variable parsed as `T` (unset or blank: `None`); `accept`
/// refuses values out of range. `expected` describes a valid value for the error.
pub fn parsed_env<T: std::str::FromStr>(
    name: &str,
    expected: &str,
    accept: impl Fn(&T) -> bool,
) -> Result<Option<T>, InvalidVariable> {
    let Some(value) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.trim().parse::<T>() {
        Ok(parsed) if accept(&parsed) => Ok(Some(parsed)),
        _ => Err(InvalidVariable {
            name: name.to_string(),
            expected: expected.to_string(),
            value,
        }),
    }
}

/// `CLOSED_FILE_RETENTION_DAYS`: days a closed file's data is kept (default 395).
pub fn retention_days() -> Result<i64, InvalidVariable> {
    Ok(parsed_env(
        "CLOSED_FILE_RETENTION_DAYS",
        "a whole number of days ≥ 1",
        |d: &i64| *d >= 1,
    )?
    .unwrap_or(395))
}
