//! A panic fails one invocation, not the execution environment: with unwinding (the
//! workspace's release profile no longer aborts on panic), `lambda_runtime` reports the
//! panicking invocation as an error and the same process serves the next one. Proved
//! against a Lambda Runtime API served on loopback by this test. Its own test binary: the
//! runtime reads its configuration from the process environment.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct RuntimeApi {
    events: Mutex<VecDeque<(String, Value)>>,
    answers: Mutex<Vec<(String, &'static str)>>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> (HeaderMap, axum::Json<Value>) {
    loop {
        let event = api.events.lock().unwrap().pop_front();
        if let Some((id, payload)) = event {
            let mut headers = HeaderMap::new();
            headers.insert(
                "lambda-runtime-aws-request-id",
                HeaderValue::from_str(&id).unwrap(),
            );
            let deadline = jiff::Timestamp::now().as_millisecond() + 60_000;
            headers.insert(
                "lambda-runtime-deadline-ms",
                HeaderValue::from_str(&deadline.to_string()).unwrap(),
            );
            headers.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:eu-west-3:123456789012:function:test"),
            );
            return (headers, axum::Json(payload));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn response(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>) -> &'static str {
    api.answers.lock().unwrap().push((id, "response"));
    "{}"
}

async fn error(State(api): State<Arc<RuntimeApi>>, Path(id): Path<String>) -> &'static str {
    api.answers.lock().unwrap().push((id, "error"));
    "{}"
}

#[tokio::test]
async fn a_panicking_invocation_fails_alone_and_the_next_one_is_served_by_the_same_process() {
    let api = Arc::new(RuntimeApi::default());
    api.events.lock().unwrap().extend([
        ("first".to_string(), json!({"panic": true})),
        ("second".to_string(), json!({"panic": false})),
    ]);
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // SAFETY: the only test of this binary that touches the environment; it sets the
    // variables before the runtime (their only reader) starts.
    unsafe {
        std::env::set_var("AWS_LAMBDA_RUNTIME_API", address.to_string());
        std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "test");
        std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
        std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "1");
    }
    let runtime = tokio::spawn(lambda_runtime::run(service_fn(
        |event: LambdaEvent<Value>| async move {
            if event.payload["panic"] == true {
                panic!("a bug in one invocation");
            }
            Ok::<_, lambda_runtime::Error>(json!({"ok": true}))
        },
    )));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while api.answers.lock().unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            api.answers.lock().unwrap()
        );
        assert!(!runtime.is_finished(), "the runtime died with the panic");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *api.answers.lock().unwrap(),
        [
            ("first".to_string(), "error"),
            ("second".to_string(), "response")
        ]
    );
    runtime.abort();
}

#[test]
fn the_release_profile_unwinds_on_panic() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("a release profile")
        .split("\n[")
        .next()
        .unwrap();
    assert!(
        !release.contains("panic = \"abort\""),
        "a panic must fail one invocation, not abort the execution environment:\n{release}"
    );
}
