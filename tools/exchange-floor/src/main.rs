//! lambda-bench's second floor: what a claim costs before it does any work of its own.
//!
//! Per event it makes the HTTP exchanges a new claim cannot do without (issue 12's
//! "fewer round trips, same guarantees"), in the claim's order, with bodies of the
//! claim's sizes, on the functions' own HTTP client ([`aws_wiring::aws_reqwest_client`])
//! and signer ([`aws_signing::AwsJsonService`]): a signed `TransactWriteItems` (the
//! opening), Intent's `POST` with its bearer token, a signed `PutEvents` (the
//! announcement), a signed `TransactWriteItems` (the delivery); on the first event,
//! Intent's token first, from a signed `GetSecretValue` and a client-credentials `POST`.
//! It parses no claim, builds no JSON, validates nothing and writes no log line: the
//! difference between its CPU and claim-intake's is the claim's own work.
//!
//! The exchanges go to lambda-bench's sink (`tools/lambda-bench/src/sink.rs`), which
//! answers as the services do, in as many bytes.

use aws_signing::{AwsJsonService, DYNAMODB, EVENTBRIDGE, SECRETS_MANAGER};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::OnceCell;

const TIMEOUT: Duration = Duration::from_secs(5);

/// The sizes of a claim's request bodies, in bytes, in the order sent (`EXCHANGE_BYTES`:
/// opening, Intent event, `PutEvents`, delivery).
struct Bodies {
    opening: String,
    intent_event: String,
    announcement: String,
    delivery: String,
}

impl Bodies {
    fn from_sizes(sizes: &str) -> Result<Self, String> {
        let sizes: Vec<usize> = sizes
            .split(',')
            .map(|size| size.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("EXCHANGE_BYTES {sizes:?}: {e}"))?;
        let [opening, intent_event, announcement, delivery] = sizes[..] else {
            return Err(format!(
                "EXCHANGE_BYTES: four sizes expected (opening, Intent, PutEvents, delivery), got {}",
                sizes.len()
            ));
        };
        Ok(Self {
            opening: padded(opening),
            intent_event: padded(intent_event),
            announcement: padded(announcement),
            delivery: padded(delivery),
        })
    }
}

/// A JSON object of `size` bytes (at least its frame).
fn padded(size: usize) -> String {
    let frame = r#"{"pad":""}"#;
    let mut body = String::with_capacity(size.max(frame.len()));
    body.push_str(r#"{"pad":""#);
    body.extend(std::iter::repeat_n('x', size.saturating_sub(frame.len())));
    body.push_str(r#""}"#);
    body
}

struct Floor {
    dynamodb: AwsJsonService,
    events: AwsJsonService,
    secrets: AwsJsonService,
    intent: reqwest::Client,
    intent_url: String,
    secret_id: String,
    client_id: String,
    token: OnceCell<String>,
    bodies: Bodies,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsAnswer {
    failed_entry_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretAnswer {
    secret_string: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

impl Floor {
    fn from_environment() -> Result<Self, Error> {
        let variable =
            |name: &str| std::env::var(name).map_err(|_| Error::from(format!("{name} is not set")));
        let sdk = aws_wiring::lambda_aws_config()?;
        let aws = aws_wiring::aws_reqwest_client()?;
        Ok(Self {
            dynamodb: AwsJsonService::new(&sdk, aws.clone(), DYNAMODB)?,
            events: AwsJsonService::new(&sdk, aws.clone(), EVENTBRIDGE)?,
            secrets: AwsJsonService::new(&sdk, aws, SECRETS_MANAGER)?,
            intent: aws_wiring::aws_reqwest_client()?,
            intent_url: variable("EXCHANGE_INTENT_URL")?
                .trim_end_matches('/')
                .to_string(),
            secret_id: variable("EXCHANGE_SECRET_ID")?,
            client_id: variable("EXCHANGE_CLIENT_ID")?,
            token: OnceCell::new(),
            bodies: Bodies::from_sizes(&variable("EXCHANGE_BYTES")?)?,
        })
    }

    async fn token(&self) -> Result<&str, Error> {
        let token = self
            .token
            .get_or_try_init(|| async {
                let body = json!({ "SecretId": self.secret_id }).to_string();
                let secret: SecretAnswer = self
                    .secrets
                    .call("GetSecretValue", body, TIMEOUT)
                    .await
                    .map_err(|failure| failure.message)?;
                let answer: TokenAnswer = self
                    .intent
                    .post(format!("{}/token", self.intent_url))
                    .basic_auth(&self.client_id, Some(secret.secret_string))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                Ok::<_, Error>(answer.access_token)
            })
            .await?;
        Ok(token)
    }

    async fn claim_exchanges(&self) -> Result<Value, Error> {
        let token = self.token().await?;
        self.dynamodb
            .call::<IgnoredAny>("TransactWriteItems", self.bodies.opening.clone(), TIMEOUT)
            .await
            .map_err(|failure| failure.message)?;
        let status = self
            .intent
            .post(format!("{}/events", self.intent_url))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.bodies.intent_event.clone())
            .send()
            .await?
            .status();
        if status != reqwest::StatusCode::NO_CONTENT {
            return Err(format!("Intent answered {status}").into());
        }
        let announced: PutEventsAnswer = self
            .events
            .call("PutEvents", self.bodies.announcement.clone(), TIMEOUT)
            .await
            .map_err(|failure| failure.message)?;
        if announced.failed_entry_count != 0 {
            return Err("PutEvents: an entry failed".into());
        }
        self.dynamodb
            .call::<IgnoredAny>("TransactWriteItems", self.bodies.delivery.clone(), TIMEOUT)
            .await
            .map_err(|failure| failure.message)?;
        Ok(json!({ "statusCode": 201 }))
    }
}

// One thread: Lambda hands an environment one event at a time, and a second worker only
// adds the wake-ups between threads each awaited answer costs (lambda-bench, issue 12).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let floor = Floor::from_environment()?;
    let floor = &floor;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<IgnoredAny>| {
        floor.claim_exchanges()
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_sizes_asked() {
        let bodies = Bodies::from_sizes("2872, 1200,391,5").unwrap();
        assert_eq!(bodies.opening.len(), 2872);
        assert_eq!(bodies.intent_event.len(), 1200);
        assert_eq!(bodies.announcement.len(), 391);
        // Never less than a JSON object.
        assert_eq!(bodies.delivery, r#"{"pad":""}"#);
        assert!(serde_json::from_str::<Value>(&bodies.opening).is_ok());
        assert!(Bodies::from_sizes("1,2,3").is_err());
        assert!(Bodies::from_sizes("1,2,x,4").is_err());
    }
}
