//! The services as `exchange-floor` meets them: three loopback listeners (the table, the
//! bus and Secrets Manager, Intent: three hosts, so three connections, as a claim opens)
//! that read each request whole and answer as the services do, with answers of the
//! sizes a claim gets (measured through the counting proxy): `{}` to a transaction, one
//! entry's id to `PutEvents`, the secret, a token, 204 to an Intent event. Every AWS
//! call is counted, as the proxy counts the functions'; anything else is refused, so the
//! floor cannot pass by doing less than a claim.
//!
//! By default it answers at once. Paced ([`Sink::pace`]), it answers each AWS operation
//! after the time given for it (the emulators' median answer time during claim-intake's
//! run): the floor then waits as long as a claim waits between its exchanges, which costs
//! CPU of its own on this kind of machine (a process woken after a few milliseconds'
//! sleep runs on cold caches). Tokio's timer rounds each wait up to the next millisecond.

use crate::error::{Context, Result};
use crate::proxy::{Counter, operation_of};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `exchange-floor` needs to reach the sink.
pub struct Sink {
    pub dynamodb_url: String,
    pub moto_url: String,
    pub intent_url: String,
    pacing: Arc<Pacing>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

/// How long to wait before answering each operation (`dynamodb:TransactWriteItems`…);
/// those not named are answered at once.
#[derive(Default)]
struct Pacing(Mutex<BTreeMap<String, Duration>>);

impl Pacing {
    fn delay(&self, operation: &str) -> Option<Duration> {
        self.0.lock().ok()?.get(operation).copied()
    }
}

#[derive(Clone)]
struct SinkState {
    counter: Arc<Counter>,
    pacing: Arc<Pacing>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

pub const CLIENT_ID: &str = "exchange-floor";
const CLIENT_SECRET: &str = "exchange-floor-secret";
const SECRET_ID: &str = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:exchange-floor";
const TOKEN: &str = "exchange-floor-token";

impl Sink {
    pub async fn start(counter: Arc<Counter>) -> Result<Self> {
        let mut urls = Vec::new();
        let mut servers = Vec::new();
        let pacing = Arc::new(Pacing::default());
        let state = SinkState {
            counter,
            pacing: pacing.clone(),
        };
        for _ in 0..3 {
            let app = axum::Router::new()
                .fallback(answer)
                .with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding the exchange sink on 127.0.0.1")?;
            let address = listener.local_addr().context("the sink's address")?;
            urls.push(format!("http://{address}"));
            servers.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    eprintln!("lambda-bench: the exchange sink stopped: {error}");
                }
            }));
        }
        let [dynamodb_url, moto_url, intent_url] = <[String; 3]>::try_from(urls)
            .map_err(|_| crate::error::Error::msg("three sink listeners"))?;
        Ok(Self {
            dynamodb_url,
            moto_url,
            intent_url,
            pacing,
            servers,
        })
    }

    /// From now on, each operation named is answered after its time (an empty map: all at
    /// once again).
    pub fn pace(&self, delays: BTreeMap<String, Duration>) {
        if let Ok(mut pacing) = self.pacing.0.lock() {
            *pacing = delays;
        }
    }

    /// `exchange-floor`'s own variables (the AWS ones point at the sink too).
    pub fn environment(&self, claim_body_sizes: [usize; 4]) -> Vec<(String, String)> {
        let sizes = claim_body_sizes.map(|size| size.to_string()).join(",");
        vec![
            ("AWS_ENDPOINT_URL".into(), self.moto_url.clone()),
            (
                "AWS_ENDPOINT_URL_DYNAMODB".into(),
                self.dynamodb_url.clone(),
            ),
            ("EXCHANGE_INTENT_URL".into(), self.intent_url.clone()),
            ("EXCHANGE_SECRET_ID".into(), SECRET_ID.into()),
            ("EXCHANGE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("EXCHANGE_BYTES".into(), sizes),
        ]
    }
}

fn json(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

async fn answer(State(state): State<SinkState>, request: Request) -> Response {
    let counter = &state.counter;
    let (parts, body) = request.into_parts();
    let signed = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("AWS4-HMAC-SHA256 "));
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {TOKEN}"));
    let operation = operation_of(&parts.method, &parts.uri, &parts.headers);
    let body = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(body) => body,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    if signed {
        counter.call(&operation);
    }
    if let Some(delay) = state.pacing.delay(&operation) {
        tokio::time::sleep(delay).await;
    }
    match (target.as_deref(), parts.uri.path()) {
        (Some("DynamoDB_20120810.TransactWriteItems"), "/") if signed => json("{}".into()),
        (Some("AWSEvents.PutEvents"), "/") if signed => json(format!(
            r#"{{"Entries":[{{"EventId":"{}"}}],"FailedEntryCount":0}}"#,
            uuid::Uuid::new_v4()
        )),
        (Some("secretsmanager.GetSecretValue"), "/") if signed => json(format!(
            r#"{{"ARN":"{SECRET_ID}","Name":"exchange-floor","VersionId":"{}","SecretString":"{CLIENT_SECRET}","VersionStages":["AWSCURRENT"],"CreatedDate":1764547200.0}}"#,
            uuid::Uuid::new_v4()
        )),
        (None, "/token") if body.starts_with(b"grant_type=client_credentials") => {
            let mut response = Response::new(Body::from(format!(
                r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":3600}}"#
            )));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        (None, "/events") if bearer && !body.is_empty() => StatusCode::NO_CONTENT.into_response(),
        _ => {
            counter.error(&operation, "refused by the sink");
            (
                StatusCode::BAD_REQUEST,
                format!("lambda-bench sink: nothing expected at {operation}"),
            )
                .into_response()
        }
    }
}
