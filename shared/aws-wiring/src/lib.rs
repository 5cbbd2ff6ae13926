//! What the Lambda functions (and the operator's command) share to reach AWS: one
//! `SdkConfig` per execution environment, and the adapters built from it once (the table,
//! the bus, Intent).

mod adapters;
mod http_client;
mod lambda_config;
mod presign;
mod secrets;

pub use adapters::{
    AdapterError, CoreAdapters, CoreConfig, documents_reader, dynamodb_store, event_publisher,
};
pub use aws_types::SdkConfig;
pub use http_client::aws_reqwest_client;
pub use lambda_config::MissingLambdaEnvironment;
pub use presign::S3UploadSigner;
pub use secrets::SecretsManagerSecret;

/// The one `SdkConfig` of a machine outside Lambda (the operator's command, the tests):
/// region, credentials and endpoints (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, …
/// for local emulators) resolved once by aws-config's full chain and shared by every
/// client built from it, with the one HTTP client (reqwest, webpki roots).
#[cfg(feature = "full-chain")]
pub async fn load_aws_config() -> SdkConfig {
    let http = http_client::sdk_http_client().expect("the TLS configuration is static");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// A Lambda function's `SdkConfig`: straight from the variables Lambda sets (region,
/// the role's credentials, `AWS_ENDPOINT_URL[_SERVICE]`), for the calls signed by hand
/// (no SDK client is built from it, so it carries no HTTP client). No
/// provider chain is linked into the functions: without those variables the function
/// does not start, and says which are missing.
pub fn lambda_aws_config() -> Result<SdkConfig, MissingLambdaEnvironment> {
    lambda_config::from_process_environment()
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

/// `UPLOAD_URL_TTL_SECONDS` (60 to 3600, default 300: how long a partner's upload URL
/// works), with the document policy's size limit and retention.
pub fn upload_policy(
    settings: &settings::Settings,
) -> Result<oncall_domain::uploads::UploadPolicy, settings::SettingError> {
    let documents = document_policy(settings)?;
    Ok(oncall_domain::uploads::UploadPolicy {
        max_bytes: documents.max_bytes,
        url_lifetime: jiff::SignedDuration::from_secs(settings.number(
            "UPLOAD_URL_TTL_SECONDS",
            60..=3600,
            300,
        )?),
        retention: documents.retention,
    })
}

/// `CLOSED_FILE_RETENTION_DAYS`: days a closed file's data is kept, 30 to 3650, default
/// 395. At least 30: TTL erases a closed file's items whatever their delivery, so a
/// closing still pending through an outage of Intent, or refused and waiting for an
/// operator's redrive, and a quitus waiting with its upload grant, must outlive those waits
/// (the alarms on failed and old pending events fire within hours). At most ten years: past
/// that, TTL arithmetic is not worth the risk.
pub fn retention_days(settings: &settings::Settings) -> Result<i64, settings::SettingError> {
    settings.number("CLOSED_FILE_RETENTION_DAYS", 30..=3650, 395)
}

/// Why an invocation of the closer or the forwarder failed, as Lambda reports it
/// (`errorType`): `Retryable` (our own table or bus failed; the same invocation may pass
/// later, Lambda's asynchronous retries then the dead-letter queue take it) or `Final`
/// (retrying cannot help). Alarms and logs tell them apart by the type.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Final(String),
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(error: InvocationError) -> Self {
        let error_type = match &error {
            InvocationError::Retryable(_) => "Retryable",
            InvocationError::Final(_) => "Final",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A retention shorter than the time an event or a quitus may wait (an outage of
    /// Intent, an operator's redrive) would let TTL erase what was never delivered.
    #[test]
    fn a_retention_under_thirty_days_is_refused() {
        let with = |days: &'static str| {
            retention_days(&settings::Settings::from_lookup(move |name| {
                (name == "CLOSED_FILE_RETENTION_DAYS").then(|| days.to_string())
            }))
        };
        assert!(with("29").is_err());
        assert!(with("1").is_err());
        assert_eq!(with("30").unwrap(), 30);
        assert_eq!(with("395").unwrap(), 395);
    }

    #[test]
    fn lambda_reports_retryable_and_final_failures_by_type() {
        let retryable: lambda_runtime::Diagnostic =
            InvocationError::Retryable("the table is unavailable".into()).into();
        assert_eq!(retryable.error_type, "Retryable");
        assert_eq!(retryable.error_message, "the table is unavailable");
        let final_: lambda_runtime::Diagnostic = InvocationError::Final("bad input".into()).into();
        assert_eq!(final_.error_type, "Final");
    }
}
