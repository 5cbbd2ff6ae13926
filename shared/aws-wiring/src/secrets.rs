//! Intent's client secret in AWS Secrets Manager, read with one signed `GetSecretValue`
//! call on the functions' AWS HTTP client.
//!
//! Why not `aws-sdk-secretsmanager`: a function reads this secret once per execution
//! environment (and again after a rotation), but building the SDK client costs at every
//! cold start what building the DynamoDB client costs: its endpoint resolver parses the AWS
//! partitions document (about 0.88 million instructions, a quarter of claim-intake's
//! start, measured with callgrind). The call itself is small and stable (the
//! `secretsmanager.GetSecretValue` JSON operation); the signing is the SDK's own SigV4
//! crate (`aws-sigv4`), with the credentials and region of the function's `SdkConfig`.

use aws_signing::{AwsJsonService, CallFailure, SECRETS_MANAGER};
use aws_types::SdkConfig;
use backon::Retryable;

/// One call's limit, so a stalled connection does not hold a request for long.
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Intent's client secret in AWS Secrets Manager: read when the Intent client first needs
/// a token, and again when Intent answers `invalid_client` (after a rotation).
#[derive(Debug)]
pub struct SecretsManagerSecret {
    secrets_manager: AwsJsonService,
    secret_id: String,
}

impl SecretsManagerSecret {
    /// `secret_id` (its ARN or name) in the region of `sdk`, with its credentials, at
    /// Secrets Manager's endpoint for that region or the `AWS_ENDPOINT_URL_SECRETS_MANAGER`
    /// / `AWS_ENDPOINT_URL` override `sdk` carries (the emulators), on `http`: the
    /// function's client for signed calls ([`crate::aws_reqwest_client`]), not one more
    /// built at start for one read per environment.
    pub fn new(
        sdk: &SdkConfig,
        http: &reqwest::Client,
        secret_id: impl Into<String>,
    ) -> Result<Self, String> {
        Ok(Self {
            secrets_manager: AwsJsonService::new(sdk, http.clone(), SECRETS_MANAGER)?,
            secret_id: secret_id.into(),
        })
    }

    /// The secret's text, trimmed: signed `GetSecretValue` calls, tried again only after
    /// no answer, a 5xx or a throttling ([`aws_signing::retry_policy`], as the SDK client
    /// retried). Errors name the secret and the failure, never a value.
    async fn get_secret_value(&self) -> Result<String, String> {
        let body = serde_json::json!({ "SecretId": self.secret_id }).to_string();
        let answer = (|| {
            self.secrets_manager
                .call::<serde_json::Value>("GetSecretValue", body.clone(), ATTEMPT_TIMEOUT)
        })
        .retry(aws_signing::retry_policy())
        .when(|failure: &CallFailure| failure.transient)
        .notify(|failure, _| tracing::warn!(error = %failure, "reading the secret failed; trying again"))
        .await
        .map_err(|failure| format!("reading the secret {}: {failure}", self.secret_id))?;
        answer["SecretString"]
            .as_str()
            .map(|secret| secret.trim().to_string())
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| format!("the secret {} holds no text value", self.secret_id))
    }
}

impl intent_client::ClientSecretSource for SecretsManagerSecret {
    fn read_secret(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>
    {
        Box::pin(self.get_secret_value())
    }
}
