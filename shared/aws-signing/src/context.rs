//! What a call signed by hand (`aws-sigv4`, no SDK client) takes from the function's
//! `SdkConfig`: its region, its credentials, and the endpoint override the SDK would use
//! for that service (`AWS_ENDPOINT_URL_{SERVICE}`, then `AWS_ENDPOINT_URL`: the emulators).

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;

/// The region, credentials and endpoint override one hand-signed service is called with.
#[derive(Clone)]
pub struct SigningContext {
    pub region: String,
    credentials: SharedCredentialsProvider,
    /// Without a trailing `/`.
    pub endpoint_override: Option<String>,
}

impl std::fmt::Debug for SigningContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningContext")
            .field("region", &self.region)
            .field("endpoint_override", &self.endpoint_override)
            .finish_non_exhaustive()
    }
}

impl SigningContext {
    /// For the service the SDK names `service_id` (`"S3"`, `"Secrets Manager"`); `purpose`
    /// completes the error messages ("to sign uploads").
    pub fn of(sdk: &SdkConfig, service_id: &str, purpose: &str) -> Result<Self, String> {
        let region = sdk
            .region()
            .ok_or_else(|| format!("no AWS region {purpose}"))?
            .to_string();
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| format!("no AWS credentials {purpose}"))?;
        let endpoint_override = ServiceConfigKey::builder()
            .service_id(service_id)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .ok()
            .and_then(|key| sdk.service_config()?.load_config(key))
            .or_else(|| sdk.endpoint_url().map(str::to_string))
            .map(|url| url.trim_end_matches('/').to_string());
        Ok(Self {
            region,
            credentials,
            endpoint_override,
        })
    }

    /// The domain name AWS's endpoints end with in this region.
    pub fn dns_suffix(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }

    /// The credentials to sign one request with (`purpose` for the error message).
    pub async fn identity(&self, purpose: &str) -> Result<Identity, String> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials {purpose}: {e}"))?;
        Ok(credentials.into())
    }
}
