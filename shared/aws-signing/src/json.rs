//! One AWS service spoken in its JSON protocol (`POST /`, `X-Amz-Target:
//! {prefix}.{Operation}`, a JSON body each way), each call signed with SigV4.

use crate::context::SigningContext;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use std::time::{Duration, SystemTime};

/// What tells one JSON-protocol service from another.
#[derive(Debug, Clone, Copy)]
pub struct JsonProtocol {
    /// The SDK's name for the service, which names its endpoint override
    /// (`"EventBridge"`: `AWS_ENDPOINT_URL_EVENTBRIDGE`).
    pub service_id: &'static str,
    /// The first label of its regional endpoint (`events.eu-west-3.amazonaws.com`).
    pub endpoint_prefix: &'static str,
    /// The service name in the credential scope.
    pub signing_name: &'static str,
    /// What `X-Amz-Target` starts with (`AWSEvents`.PutEvents).
    pub target_prefix: &'static str,
    pub content_type: &'static str,
}

/// EventBridge (`PutEvents`).
pub const EVENTBRIDGE: JsonProtocol = JsonProtocol {
    service_id: "EventBridge",
    endpoint_prefix: "events",
    signing_name: "events",
    target_prefix: "AWSEvents",
    content_type: "application/x-amz-json-1.1",
};

/// AWS Secrets Manager (`GetSecretValue`).
pub const SECRETS_MANAGER: JsonProtocol = JsonProtocol {
    service_id: "Secrets Manager",
    endpoint_prefix: "secretsmanager",
    signing_name: "secretsmanager",
    target_prefix: "secretsmanager",
    content_type: "application/x-amz-json-1.1",
};

/// Amazon DynamoDB (the table: transactions, queries, batch reads).
pub const DYNAMODB: JsonProtocol = JsonProtocol {
    service_id: "DynamoDB",
    endpoint_prefix: "dynamodb",
    signing_name: "dynamodb",
    target_prefix: "DynamoDB_20120810",
    content_type: "application/x-amz-json-1.0",
};

/// Why a call gave no answer to use.
#[derive(Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// The service's error type without its namespace (`ResourceNotFoundException`), when
    /// it answered one.
    pub error_type: Option<String>,
    /// What went wrong, for a log line or an error message: the HTTP status, the service's
    /// error type and message, or why no answer came.
    pub message: String,
    /// No answer, a 5xx, a 429 or a throttling: the same call may pass later.
    pub transient: bool,
    /// The service's JSON error answer, for what only its caller can read (DynamoDB's
    /// cancellation reasons). Left out of `Debug`: it may quote the items concerned.
    pub answer: Option<Box<serde_json::Value>>,
}

impl std::fmt::Debug for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFailure")
            .field("error_type", &self.error_type)
            .field("message", &self.message)
            .field("transient", &self.transient)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One JSON-protocol service in one region, with one set of credentials.
#[derive(Debug, Clone)]
pub struct AwsJsonService {
    http: reqwest::Client,
    /// With its trailing `/`: what is signed is what is sent.
    endpoint: String,
    /// `endpoint`, parsed once (not at every call).
    url: reqwest::Url,
    signing: SigningContext,
    protocol: JsonProtocol,
    /// "to call {service}", for the error messages.
    purpose: String,
}

impl AwsJsonService {
    /// The service at its endpoint in the region of `sdk` (or the override `sdk` carries:
    /// `AWS_ENDPOINT_URL_{SERVICE}`, then `AWS_ENDPOINT_URL`), with its credentials, on
    /// `http` (whose pool it shares).
    pub fn new(
        sdk: &SdkConfig,
        http: reqwest::Client,
        protocol: JsonProtocol,
    ) -> Result<Self, String> {
        let purpose = format!("to call {}", protocol.service_id);
        let signing = SigningContext::of(sdk, protocol.service_id, &purpose)?;
        let endpoint = match &signing.endpoint_override {
            Some(url) => format!("{url}/"),
            None => format!(
                "https://{}.{}.{}/",
                protocol.endpoint_prefix,
                signing.region,
                signing.dns_suffix()
            ),
        };
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| format!("the {} endpoint {endpoint}: {e}", protocol.service_id))?;
        Ok(Self {
            http,
            endpoint,
            url,
            signing,
            protocol,
            purpose,
        })
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One signed call of `operation` with `body`, waiting at most `timeout` for the whole
    /// answer: the answer's JSON, read as `T`, when the service accepted the call.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        body: String,
        timeout: Duration,
    ) -> Result<T, CallFailure> {
        let service = self.protocol.service_id;
        let failure = |message: String| CallFailure {
            error_type: None,
            message,
            transient: false,
            answer: None,
        };
        let identity = self
            .signing
            .identity(&self.purpose)
            .await
            .map_err(failure)?;
        let signing_failed =
            |e: &dyn std::fmt::Display| failure(format!("signing a {service} {operation}: {e}"));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.signing.region)
            .name(self.protocol.signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| signing_failed(&e))?
            .into();
        let target = format!("{}.{operation}", self.protocol.target_prefix);
        let headers = [
            ("content-type", self.protocol.content_type),
            ("x-amz-target", target.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| signing_failed(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| signing_failed(&e))?
            .into_parts();
        let mut request = self.http.post(self.url.clone()).body(body);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let exchange = async {
            let response = request.send().await.map_err(|e| CallFailure {
                error_type: None,
                transient: !e.is_builder(),
                message: format!("{service} could not be reached: {}", e.without_url()),
                answer: None,
            })?;
            let status = response.status();
            let transient = status.is_server_error() || status.as_u16() == 429;
            let text = response.text().await.map_err(|e| CallFailure {
                error_type: None,
                message: format!(
                    "{service}'s answer to {operation} was cut ({status}): {}",
                    e.without_url()
                ),
                transient: true,
                answer: None,
            })?;
            if status.is_success() {
                // Where, not what: serde's message may quote the answer's values (a
                // table's items hold tenants' contacts).
                return serde_json::from_str::<T>(&text).map_err(|e| CallFailure {
                    error_type: None,
                    message: format!(
                        "{service}'s answer to {operation} is not what it documents ({status}): {:?} error at line {} column {}",
                        e.classify(),
                        e.line(),
                        e.column()
                    ),
                    transient: false,
                    answer: None,
                });
            }
            Err(match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(answer) => service_error(service, operation, status, &answer, transient),
                // A refusal from in front of the service (a proxy, an XML error page):
                // its code and opening words. A success is never quoted (it may hold a
                // secret).
                Err(_) => unreadable_refusal(service, operation, status, &text, transient),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(CallFailure {
                    error_type: None,
                    message: format!(
                        "{service} did not answer {operation} within {} ms",
                        timeout.as_millis()
                    ),
                    transient: true,
                    answer: None,
                })
            })
    }
}

/// The failure a JSON-protocol error answer describes: `__type` (namespaced or not) and
/// `message` (or `Message`).
fn service_error(
    service: &str,
    operation: &str,
    status: reqwest::StatusCode,
    answer: &serde_json::Value,
    transient: bool,
) -> CallFailure {
    let error_type = answer["__type"]
        .as_str()
        .map(|kind| kind.rsplit('#').next().unwrap_or(kind).to_string());
    let message = answer["message"]
        .as_str()
        .or(answer["Message"].as_str())
        .unwrap_or_default();
    CallFailure {
        answer: Some(Box::new(answer.clone())),
        ..refusal(service, operation, status, error_type, message, transient)
    }
}

/// A refusal whose body is not JSON: its `<Code>` if it is an XML error, and its first
/// words.
fn unreadable_refusal(
    service: &str,
    operation: &str,
    status: reqwest::StatusCode,
    text: &str,
    transient: bool,
) -> CallFailure {
    // Not JSON: a refusal from in front of the service (its page is quoted); JSON that
    // does not parse (an answer cut short) is never quoted: it may hold the service's
    // items (a refused DynamoDB write gives its item back).
    let excerpt: String = if text.trim_start().starts_with('{') {
        "an unreadable JSON answer".to_string()
    } else {
        text.chars().take(300).collect()
    };
    let error_type = crate::xml_error_code(text);
    refusal(service, operation, status, error_type, &excerpt, transient)
}

/// A refusal of `operation` with the service's `error_type` and `detail`; a throttling is
/// transient whatever its status.
fn refusal(
    service: &str,
    operation: &str,
    status: reqwest::StatusCode,
    error_type: Option<String>,
    detail: &str,
    transient: bool,
) -> CallFailure {
    let kind = error_type.as_deref().unwrap_or("unknown error");
    CallFailure {
        transient: transient || kind.contains("Throttling"),
        message: format!("{service} refused {operation} ({status}): {kind}: {detail}"),
        error_type,
        answer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_error_answer_gives_its_type_without_namespace_and_its_message() {
        let failure = service_error(
            "Secrets Manager",
            "GetSecretValue",
            reqwest::StatusCode::BAD_REQUEST,
            &json!({"__type": "com.amazonaws#ResourceNotFoundException", "Message": "no such secret"}),
            false,
        );
        assert_eq!(
            failure.error_type.as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(
            failure.message,
            "Secrets Manager refused GetSecretValue (400 Bad Request): ResourceNotFoundException: no such secret"
        );
        assert!(!failure.transient);
    }

    #[test]
    fn an_xml_refusal_gives_its_code() {
        let failure = unreadable_refusal(
            "EventBridge",
            "PutEvents",
            reqwest::StatusCode::FORBIDDEN,
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>",
            false,
        );
        assert_eq!(failure.error_type.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(failure.message.starts_with(
            "EventBridge refused PutEvents (403 Forbidden): SignatureDoesNotMatch: <ErrorResponse>"
        ));
    }

    #[test]
    fn json_that_does_not_parse_is_never_quoted() {
        let failure = unreadable_refusal(
            "DynamoDB",
            "UpdateItem",
            reqwest::StatusCode::BAD_REQUEST,
            r#"{"__type":"ConditionalCheckFailedException","Item":{"phone":{"S":"06 12"#,
            false,
        );
        assert!(!failure.message.contains("06 12"), "{}", failure.message);
    }

    #[test]
    fn a_throttling_is_transient_whatever_its_status() {
        let failure = service_error(
            "EventBridge",
            "PutEvents",
            reqwest::StatusCode::BAD_REQUEST,
            &json!({"__type": "ThrottlingException", "message": "slow down"}),
            false,
        );
        assert!(failure.transient);
    }
}
