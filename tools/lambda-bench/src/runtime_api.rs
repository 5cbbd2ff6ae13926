//! A Lambda Runtime API on loopback, as the Lambda service serves it to a custom runtime
//! (`provided.al2023`): the function's `GET …/invocation/next` long-polls until the bench
//! hands out an event; its answer comes back as `POST …/{id}/response` or `…/{id}/error`,
//! a failed start as `POST …/init/error`. Every arrival is timestamped here and reported
//! to the bench as a [`Notice`].

use crate::error::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc};

/// One event handed to the function.
pub struct Invocation {
    pub request_id: String,
    pub payload: Vec<u8>,
    /// The function's timeout (template.yaml): the deadline header is now + this.
    pub timeout: Duration,
}

/// What the function did, as the Runtime API saw it.
#[derive(Debug)]
pub enum Notice {
    /// It asked for its next event: it is idle (its start, or its last invocation, is over).
    Next {
        at: Instant,
    },
    Response {
        request_id: String,
        at: Instant,
        body: Bytes,
    },
    Error {
        request_id: String,
        body: Bytes,
    },
    InitError {
        body: Bytes,
    },
}

struct Shared {
    invocations: Mutex<mpsc::Receiver<Invocation>>,
    notices: mpsc::UnboundedSender<Notice>,
    function_arn: HeaderValue,
}

/// The server, for one function's execution environment.
pub struct RuntimeApi {
    pub address: SocketAddr,
    invocations: mpsc::Sender<Invocation>,
    pub notices: mpsc::UnboundedReceiver<Notice>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start(function_name: &str) -> Result<Self> {
        let (invocations_tx, invocations_rx) = mpsc::channel(1);
        let (notices_tx, notices_rx) = mpsc::unbounded_channel();
        let function_arn = HeaderValue::from_str(&format!(
            "arn:aws:lambda:eu-west-3:123456789012:function:{function_name}"
        ))
        .context("function ARN header")?;
        let shared = Arc::new(Shared {
            invocations: Mutex::new(invocations_rx),
            notices: notices_tx,
            function_arn,
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Lambda Runtime API on 127.0.0.1")?;
        let address = listener.local_addr().context("the Runtime API's address")?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("lambda-bench: the Runtime API stopped: {error}");
            }
        });
        Ok(Self {
            address,
            invocations: invocations_tx,
            notices: notices_rx,
            server,
        })
    }

    /// Hands `invocation` to the function's pending (or next) `GET …/next`.
    pub async fn invoke(&self, invocation: Invocation) -> Result<()> {
        self.invocations
            .send(invocation)
            .await
            .map_err(|_| crate::error::Error::msg("the Runtime API is gone"))
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let _ = shared.notices.send(Notice::Next { at: Instant::now() });
    let invocation = shared.invocations.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return (StatusCode::GONE, "the bench is over").into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(invocation.timeout)
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{}00000000;Parent=53995c3f42cd8ad8;Sampled=0",
            deadline / 1000,
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        ),
    );
    set("content-type", "application/json".into());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    (headers, invocation.payload).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    let _ = shared.notices.send(Notice::Response {
        request_id,
        at: Instant::now(),
        body,
    });
    accepted()
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    let _ = shared.notices.send(Notice::Error { request_id, body });
    accepted()
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> impl IntoResponse {
    let _ = shared.notices.send(Notice::InitError { body });
    accepted()
}

/// What the Lambda service answers to the runtime's posts.
fn accepted() -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
}
