//! AWS calls signed by hand with the SDK's own SigV4 crate (`aws-sigv4`), on the
//! functions' HTTP client: DynamoDB (the store's own protocol code is in
//! `dynamodb-store`), EventBridge's `PutEvents`, Secrets Manager's `GetSecretValue`, S3's
//! object reads and upload URLs. No function links an AWS SDK client.
//!
//! Why: every SDK client's construction parses the AWS partitions document for its
//! endpoint resolver (about 0.88 million instructions, callgrind, a quarter of a
//! function's start), and each client links its own operation code, endpoint rules and
//! (S3) checksum machinery. Per call, the SDK's orchestrator (interceptors,
//! endpoint rules, serializers) was two thirds of a warm claim's instructions. These
//! calls are few and stable.
//!
//! What each call takes from the function's `SdkConfig` is in [`SigningContext`]: its
//! region, its credentials (refreshed by the provider, session token included) and the
//! endpoint override the SDK would use (`AWS_ENDPOINT_URL_{SERVICE}`, `AWS_ENDPOINT_URL`).
//! `tests/tests/system/signatures.rs` has moto check every kind of signed call the way
//! AWS does (botocore's SigV4), with long-term and temporary credentials.

mod context;
mod json;
mod s3;

pub use context::SigningContext;
pub use json::{AwsJsonService, CallFailure, DYNAMODB, EVENTBRIDGE, JsonProtocol, SECRETS_MANAGER};
pub use s3::{S3Endpoint, query_value, s3_signing_settings};

/// How a hand-signed call is tried again after a transient failure: 3 attempts in all,
/// exponential backoff from 100 ms (at most 2 s), each pause plus a random part up to its
/// length (backon's jitter). Shorter than the SDK's standard mode (1 s base, 20 s cap):
/// what these calls carry waits in the store when they fail (the outbox, the documents
/// ledger), and a partner's request should not.
pub fn retry_policy() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_delay(std::time::Duration::from_secs(2))
        .with_max_times(2)
        .with_jitter()
}

/// The `<Code>` of an XML error answer (S3's, or a refusal in front of a JSON service).
pub fn xml_error_code(text: &str) -> Option<String> {
    text.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.trim().to_string())
}
