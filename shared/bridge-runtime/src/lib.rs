//! What every Lambda entry point shares: JSON logs through `tracing`, one `SdkConfig`
//! for all AWS clients, and configuration read from the environment.

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

/// The JSON subscriber every function uses, writing to `writer` (tests capture it to
/// check that no personal data reaches a log line).
pub fn json_subscriber<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
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
