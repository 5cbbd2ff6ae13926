//! What a call signed by hand (`aws-sigv4`, no SDK client) takes from the function's
//! `SdkConfig`: its region, its credentials, and the endpoint override the SDK would use
//! for that service (`AWS_ENDPOINT_URL_{SERVICE}`, then `AWS_ENDPOINT_URL`: the emulators).

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The region, credentials and endpoint override one hand-signed service is called with.
#[derive(Clone)]
pub struct SigningContext {
    pub region: String,
    credentials: SharedCredentialsProvider,
    /// The last credentials the provider gave, kept until shortly before they expire (the
    /// SDK clients' identity cache does the same): with a provider chain (the operator's
    /// command: SSO, assumed roles), every call would otherwise run the chain again.
    cached: Arc<Mutex<Option<Credentials>>>,
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
            cached: Arc::default(),
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

    /// The credentials to sign one request with (`purpose` for the error message): the
    /// cached ones while they have more than [`REFRESH_BEFORE_EXPIRY`] left, else the
    /// provider's.
    pub async fn identity(&self, purpose: &str) -> Result<Identity, String> {
        let fresh_enough = |credentials: &Credentials| {
            credentials
                .expiry()
                .is_none_or(|expiry| SystemTime::now() + REFRESH_BEFORE_EXPIRY < expiry)
        };
        let cached = self.cached.lock().ok().and_then(|cached| cached.clone());
        if let Some(credentials) = cached.filter(fresh_enough) {
            return Ok(credentials.into());
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials {purpose}: {e}"))?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some(credentials.clone());
        }
        Ok(credentials.into())
    }
}

/// How long before their expiry cached credentials are renewed (the SDK's identity cache
/// uses the same margin).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Gives credentials expiring `lifetime` from now, counting the calls.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKIA",
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.lifetime),
                "counting",
            )))
        }
    }

    fn context(lifetime: Duration) -> (SigningContext, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let sdk = SdkConfig::builder()
            .region(aws_types::region::Region::new("eu-west-3"))
            .credentials_provider(SharedCredentialsProvider::new(Counting {
                calls: calls.clone(),
                lifetime,
            }))
            .build();
        (SigningContext::of(&sdk, "S3", "to test").unwrap(), calls)
    }

    #[tokio::test]
    async fn credentials_are_asked_for_once_while_they_last() {
        let (context, calls) = context(Duration::from_secs(3600));
        for _ in 0..3 {
            context.identity("to test").await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_renewed() {
        let (context, calls) = context(Duration::from_secs(60));
        for _ in 0..3 {
            context.identity("to test").await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
