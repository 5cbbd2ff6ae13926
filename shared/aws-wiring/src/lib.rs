//! What the Lambda functions (and the operator's command) share to reach AWS: one
//! `SdkConfig` per execution environment, and the adapters built from it once (the table,
//! the bus, Intent).

mod adapters;

pub use adapters::{CoreAdapters, CoreConfig};
use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;

/// The one `SdkConfig` of the execution environment: region, credentials and endpoints
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, … for local emulators) resolved once
/// and shared by every client built from it.
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// `MAX_DOCUMENT_BYTES` (1 byte to 5 GiB, S3's largest single upload; default 50 MiB)
/// and `CLOSED_FILE_RETENTION_DAYS`: the forwarder's policy, also the closer's for the
/// documents it forwards.
pub fn document_policy(
    settings: &settings::Settings,
) -> Result<oncall_domain::documents::DocumentPolicy, settings::SettingError> {
    let defaults = oncall_domain::documents::DocumentPolicy::default();
    Ok(oncall_domain::documents::DocumentPolicy {
        max_bytes: settings.number("MAX_DOCUMENT_BYTES", 1..=5 << 30, defaults.max_bytes)?,
        retention: jiff::SignedDuration::from_hours(24 * retention_days(settings)?),
        ..defaults
    })
}

/// `CLOSED_FILE_RETENTION_DAYS`: days a closed file's data is kept, 1 to 3650 (ten years;
/// past that, TTL arithmetic is not worth the risk), default 395.
pub fn retention_days(settings: &settings::Settings) -> Result<i64, settings::SettingError> {
    settings.number("CLOSED_FILE_RETENTION_DAYS", 1..=3650, 395)
}
