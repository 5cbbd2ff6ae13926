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

use crate::signing::SigningContext;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use std::time::SystemTime;

/// Secrets Manager's name for the `AWS_ENDPOINT_URL_SECRETS_MANAGER` override, as the SDK
/// spells it.
const SERVICE_ID: &str = "Secrets Manager";
const SIGNING_NAME: &str = "secretsmanager";

/// Calls made for one read, at most.
const ATTEMPTS: u32 = 3;
/// One call's limit, so a stalled connection does not hold a request for long.
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why one call did not give the secret, and whether another may.
struct Failure {
    message: String,
    transient: bool,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            message,
            transient: false,
        }
    }
}

/// Intent's client secret in AWS Secrets Manager: read when the Intent client first needs
/// a token, and again when Intent answers `invalid_client` (after a rotation).
#[derive(Debug)]
pub struct SecretsManagerSecret {
    http: reqwest::Client,
    endpoint: String,
    signing: SigningContext,
    secret_id: String,
}

impl SecretsManagerSecret {
    /// `secret_id` (its ARN or name) in the region of `sdk`, with its credentials, at
    /// Secrets Manager's endpoint for that region or the `AWS_ENDPOINT_URL_SECRETS_MANAGER`
    /// / `AWS_ENDPOINT_URL` override `sdk` carries (the emulators).
    pub fn new(sdk: &SdkConfig, secret_id: impl Into<String>) -> Result<Self, String> {
        let signing = SigningContext::of(sdk, SERVICE_ID, "to read the secret with")?;
        let endpoint = match &signing.endpoint_override {
            Some(url) => url.clone(),
            None => format!(
                "https://secretsmanager.{}.{}",
                signing.region,
                signing.dns_suffix()
            ),
        };
        Ok(Self {
            http: crate::http_client::aws_reqwest_client()?,
            endpoint: format!("{endpoint}/"),
            signing,
            secret_id: secret_id.into(),
        })
    }

    /// The secret's text, trimmed: up to [`ATTEMPTS`] signed `GetSecretValue` calls, again
    /// only after no answer, a 5xx or a throttling (as the SDK client retried). Errors name
    /// the secret and the failure, never a value.
    async fn get_secret_value(&self) -> Result<String, String> {
        let mut attempt = 1;
        loop {
            match self.get_secret_value_once().await {
                Ok(secret) => return Ok(secret),
                Err(Failure { message, transient }) if transient && attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %message, "reading the secret failed; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                    attempt += 1;
                }
                Err(failure) => return Err(failure.message),
            }
        }
    }

    /// One signed `GetSecretValue` (on a reqwest client of its own, built with the adapter);
    /// the secret's text, trimmed. Errors name the secret and
    /// the failure, never a value.
    async fn get_secret_value_once(&self) -> Result<String, Failure> {
        let identity = self.signing.identity("to read the secret").await?;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.signing.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing the secret's request: {e}"))?
            .into();
        let body = serde_json::json!({ "SecretId": self.secret_id }).to_string();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("signing the secret's request: {e}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("signing the secret's request: {e}"))?
            .into_parts();
        let mut request = self.http.post(&self.endpoint).body(body);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let response = request
            .timeout(ATTEMPT_TIMEOUT)
            .send()
            .await
            .map_err(|e| Failure {
                message: format!(
                    "Secrets Manager could not be reached for {}: {e}",
                    self.secret_id
                ),
                transient: true,
            })?;
        let status = response.status();
        let transient = status.is_server_error() || status.as_u16() == 429;
        let answer: serde_json::Value = response.json().await.map_err(|e| Failure {
            message: format!(
                "Secrets Manager's answer for {} is unreadable ({status}): {e}",
                self.secret_id
            ),
            transient,
        })?;
        if !status.is_success() {
            let kind = answer["__type"].as_str().unwrap_or("unknown error");
            let kind = kind.rsplit('#').next().unwrap_or(kind);
            let message = answer["message"]
                .as_str()
                .or(answer["Message"].as_str())
                .unwrap_or_default();
            return Err(Failure {
                message: format!(
                    "Secrets Manager refused to read {} ({status}): {kind}: {message}",
                    self.secret_id
                ),
                transient: transient || kind.contains("Throttling"),
            });
        }
        answer["SecretString"]
            .as_str()
            .map(|secret| secret.trim().to_string())
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| format!("the secret {} holds no text value", self.secret_id).into())
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
