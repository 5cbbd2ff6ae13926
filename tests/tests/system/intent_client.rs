//! The Intent client against the simulator: token caching and refresh, retries with
//! backoff on 429/5xx and connections that could not be made, Retry-After, no retry on
//! 4xx, no blind re-send of a write whose answer was lost, reading Intent back.

use intent_client::{IntentClient, IntentError};
use oncall_domain::intent_examples::SEED_OPENING;
use oncall_domain::validation::parse_intervention_log;
use oncall_domain::{
    InterventionLog,
    ports::{PublishDocument, PublishToIntent},
};
use std::time::{Duration, Instant};
use system_tests::*;

async fn setup() -> (IntentSimulator, IntentClient) {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let client = IntentClient::new(fast_intent_config(&simulator)).unwrap();
    (simulator, client)
}

fn opening(reference: &str) -> InterventionLog {
    parse_intervention_log(SEED_OPENING.replace("INTER-0500", reference).as_bytes()).unwrap()
}

/// A PDF's bytes as a document body, in one chunk.
struct Body(Vec<u8>);

impl oncall_domain::ports::OpenDocument for Body {
    async fn open_body(
        &self,
    ) -> Result<oncall_domain::documents::DocumentBody, oncall_domain::ports::SourceError> {
        let bytes = bytes::Bytes::from(self.0.clone());
        Ok(oncall_domain::documents::DocumentBody {
            length: bytes.len() as u64,
            chunks: Box::pin(futures_util::stream::iter([Ok(bytes)])),
        })
    }
}

/// `quitus.pdf` for the intervention `reference` under contract1, with the default title.
fn quitus_upload(reference: &str) -> oncall_domain::documents::DocumentUpload {
    oncall_domain::documents::DocumentUpload {
        file_name: "quitus.pdf".into(),
        title: "quitus d'intervention".into(),
        description: "Quitus".into(),
        element_reference: reference.into(),
        contract_reference: "contract1".into(),
    }
}

fn log_posts(simulator: &IntentSimulator) -> Vec<u16> {
    simulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/interventions/logs"))
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn one_token_serves_many_calls() {
    let (simulator, client) = setup().await;
    for n in 0..5 {
        assert_eq!(
            client
                .post_intervention_log(&opening(&format!("R-{n}")))
                .await
                .unwrap(),
            1
        );
    }
    assert_eq!(simulator.tokens_issued(), 1);
    assert_eq!(simulator.received_logs().len(), 5);
    let authorization = simulator.requests()[1].authorization.clone().unwrap();
    assert!(authorization.starts_with("Bearer "));
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig {
        token_ttl: Duration::from_secs(1),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let client = IntentClient::new(fast_intent_config(&simulator)).unwrap();
    client.post_intervention_log(&opening("R-1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(950)).await;
    // 0.95 s into a 1 s token: inside the refresh margin, so a new token is fetched
    // rather than risking a 401.
    client.post_intervention_log(&opening("R-2")).await.unwrap();
    assert_eq!(simulator.tokens_issued(), 2);
    assert!(log_posts(&simulator).iter().all(|s| *s == 204));
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_on_401() {
    let (simulator, client) = setup().await;
    client.post_intervention_log(&opening("R-1")).await.unwrap();
    simulator.expire_tokens();
    client.post_intervention_log(&opening("R-2")).await.unwrap();
    assert_eq!(log_posts(&simulator), [204, 401, 204]);
    assert_eq!(simulator.tokens_issued(), 2);
}

#[tokio::test]
async fn a_401_with_a_fresh_token_is_an_authentication_error() {
    let (simulator, client) = setup().await;
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 401, 2));
    let (error, attempts) = client
        .post_intervention_log(&opening("R-1"))
        .await
        .unwrap_err();
    assert!(matches!(error, IntentError::Authentication(_)), "{error}");
    assert_eq!(attempts, 1, "no backoff loop on credentials");
    assert_eq!(log_posts(&simulator), [401, 401]);
}

#[tokio::test]
async fn bad_credentials_are_reported_as_such() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let mut config = fast_intent_config(&simulator);
    config.client_secret = "wrong".into();
    let client = IntentClient::new(config).unwrap();
    let failure = client.publish_log(&opening("R-1")).await.unwrap_err();
    assert!(
        failure.retryable,
        "fixing the configuration lets a later run deliver it"
    );
    assert!(failure.detail.contains("credentials"), "{}", failure.detail);
    assert!(simulator.received_logs().is_empty());
}

#[tokio::test]
async fn unavailability_and_throttling_are_retried_then_succeed() {
    let (simulator, client) = setup().await;
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 503, 1));
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 429, 1));
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 408, 1));
    let attempts = client.post_intervention_log(&opening("R-1")).await.unwrap();
    assert_eq!(attempts, 4);
    assert_eq!(log_posts(&simulator), [503, 429, 408, 204]);
    assert_eq!(simulator.received_logs().len(), 1);
}

/// Another 5xx (a 500, a gateway's 502/504) may come after Intent applied the request: a
/// write is not sent again within the call; its outcome is unknown (read back first). A
/// read is tried again.
#[tokio::test]
async fn other_server_errors_leave_a_write_in_doubt_and_retry_a_read() {
    for code in [500, 502, 504] {
        let (simulator, client) = setup().await;
        simulator.inject(Fault::status(Endpoint::InterventionLogs, code, 1));
        let failure = client.publish_log(&opening("R-1")).await.unwrap_err();
        assert!(
            failure.outcome_unknown && failure.retryable,
            "{code}: {failure:?}"
        );
        assert_eq!(failure.attempts, 1, "{code}: not sent again blindly");
        assert_eq!(log_posts(&simulator), [code]);

        simulator.inject(Fault::status(Endpoint::Operations, code, 1));
        assert_eq!(
            client.log_is_on_intent(&opening("R-1")).await,
            Ok(false),
            "{code}"
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (simulator, client) = setup().await;
    simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 429,
            retry_after: Some("1".into()),
            body: None,
        },
        times: 1,
    });
    let mut config = fast_intent_config(&simulator);
    config.retry.max_total_delay = Duration::from_secs(2);
    let client_with_budget = IntentClient::new(config).unwrap();
    drop(client);
    let started = Instant::now();
    client_with_budget
        .post_intervention_log(&opening("R-1"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?} instead of the 1 s Intent asked for",
        started.elapsed()
    );
    assert_eq!(log_posts(&simulator), [429, 204]);
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_ends_the_delivery_at_once() {
    let (simulator, client) = setup().await;
    simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 503,
            retry_after: Some("120".into()),
            body: None,
        },
        times: 1,
    });
    let started = Instant::now();
    let (error, attempts) = client
        .post_intervention_log(&opening("R-1"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(attempts, 1);
    assert_eq!(
        error,
        IntentError::Unavailable {
            status: 503,
            retry_after: Some(Duration::from_secs(120))
        }
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (simulator, client) = setup().await;
    simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 422,
            retry_after: None,
            body: Some(
                serde_json::json!({"code": "unprocessable", "message": "no", "details": []}),
            ),
        },
        times: 3,
    });
    let (error, attempts) = client
        .post_intervention_log(&opening("R-1"))
        .await
        .unwrap_err();
    assert_eq!(attempts, 1);
    match &error {
        IntentError::Rejected { status, code, .. } => {
            assert_eq!(*status, 422);
            assert_eq!(code.as_deref(), Some("unprocessable"));
        }
        other => panic!("expected a rejection, got {other}"),
    }
    assert!(!error.is_retryable_later());
    assert_eq!(log_posts(&simulator), [422]);
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_not_sent_again_blindly() {
    let (simulator, client) = setup().await;
    // The hub applies the log, then the connection drops before the answer.
    simulator.inject(Fault::apply_then_drop(Endpoint::InterventionLogs, 1));
    let (error, attempts) = client
        .post_intervention_log(&opening("R-1"))
        .await
        .unwrap_err();
    assert_eq!(
        attempts, 1,
        "one attempt: the request may have been applied"
    );
    assert!(error.outcome_unknown(), "{error}");
    assert_eq!(simulator.received_logs().len(), 1);
    let failure = client.publish_log(&opening("R-2")).await;
    assert!(failure.is_ok(), "the next call goes through: {failure:?}");

    // A timeout after the request left: the same.
    simulator.inject(Fault::delay(
        Endpoint::InterventionLogs,
        Duration::from_secs(3),
        1,
    ));
    let failure = client.publish_log(&opening("R-3")).await.unwrap_err();
    assert!(failure.retryable && failure.outcome_unknown, "{failure:?}");
    assert_eq!(failure.attempts, 1);
}

#[tokio::test]
async fn intent_is_read_back_for_logs_and_documents() {
    let (simulator, client) = setup().await;
    let log = opening("R-1");
    assert!(!client.log_is_on_intent(&log).await.unwrap(), "unknown");
    client.post_intervention_log(&log).await.unwrap();
    assert!(client.log_is_on_intent(&log).await.unwrap());
    // Another event of the same intervention is not this one.
    let mut later = log.clone();
    later.event_date = oncall_domain::IntentDateTime::parse("2020-03-06T11:00:00+01:00").unwrap();
    assert!(!client.log_is_on_intent(&later).await.unwrap());
    // Reads are retried through a lost answer (they change nothing).
    simulator.inject(Fault::drop_connection(Endpoint::Operations, 1));
    assert!(client.log_is_on_intent(&log).await.unwrap());

    let upload = quitus_upload("R-1");
    assert_eq!(
        client
            .find_uploaded_document(&upload, 2_000, &[])
            .await
            .unwrap(),
        None
    );
    let published = client
        .post_document(&upload, &Body(pdf_bytes(2_000)), Duration::from_secs(60))
        .await
        .unwrap();
    let found = client
        .find_uploaded_document(&upload, 2_000, &[])
        .await
        .unwrap()
        .expect("found by file name and size");
    assert_eq!(found.intent_document_id, published.intent_document_id);
    let recorded = published
        .intent_document_id
        .as_deref()
        .expect("Intent gives an id");
    assert_eq!(
        client
            .find_uploaded_document(&upload, 2_000, &[Some(recorded)])
            .await
            .unwrap(),
        None,
        "a document already recorded for the file is another upload"
    );
    assert_eq!(
        client
            .find_uploaded_document(&upload, 2_000, &[None])
            .await
            .unwrap(),
        None,
        "so is one recorded without the id Intent did not give"
    );
    assert_eq!(
        client
            .find_uploaded_document(&upload, 2_001, &[])
            .await
            .unwrap(),
        None,
        "another size is another document"
    );
}

#[tokio::test]
async fn a_404_for_an_unknown_intervention_is_retryable_later() {
    let (_simulator, client) = setup().await;
    let closing = parse_intervention_log(
        oncall_domain::intent_examples::SEED_CLOSURE_DONE
            .replace("INTER-0500", "NEVER-OPENED")
            .as_bytes(),
    )
    .unwrap();
    let failure = client.publish_log(&closing).await.unwrap_err();
    assert!(failure.retryable, "{failure:?}");
    assert!(!failure.outcome_unknown);
    assert_eq!(failure.attempts, 1, "not retried within the call");
}

#[tokio::test]
async fn the_retry_budget_is_bounded() {
    let (simulator, client) = setup().await;
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 503, 50));
    let (error, attempts) = client
        .post_intervention_log(&opening("R-1"))
        .await
        .unwrap_err();
    assert_eq!(attempts, 4, "max_attempts");
    assert!(error.is_transient());
    assert_eq!(log_posts(&simulator).len(), 4);
}

#[tokio::test]
async fn intent_unreachable_is_a_transport_error() {
    install_crypto_provider();
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = intent_client::IntentConfig::new(
        &format!("http://127.0.0.1:{port}/api"),
        &format!("http://127.0.0.1:{port}/oauth/token"),
        "id",
        "secret",
    );
    config.retry.min_delay = Duration::from_millis(5);
    config.retry.max_delay = Duration::from_millis(10);
    let client = IntentClient::new(config).unwrap();
    let failure = client.publish_log(&opening("R-1")).await.unwrap_err();
    assert!(failure.retryable);
    assert_eq!(failure.attempts, 4);
    assert!(
        failure.detail.contains("could not be reached"),
        "{}",
        failure.detail
    );
}

/// A hand-rolled Intent for answers the simulator never gives: its token endpoint answers
/// `token`, its API 204.
async fn odd_intent(
    token: axum::response::Response,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use axum::routing::post;
    let token = std::sync::Arc::new(std::sync::Mutex::new(Some(token)));
    let app = axum::Router::new()
        .route(
            "/oauth/token",
            post(move || {
                let token = token.clone();
                async move {
                    token
                        .lock()
                        .unwrap()
                        .take()
                        .unwrap_or_else(|| axum::http::StatusCode::GONE.into_response())
                }
            }),
        )
        .route(
            "/api/operations/v2/interventions/logs",
            post(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

fn client_for(addr: std::net::SocketAddr) -> IntentClient {
    install_crypto_provider();
    let mut config = intent_client::IntentConfig::new(
        &format!("http://{addr}/api"),
        &format!("http://{addr}/oauth/token"),
        "id",
        "the-client-secret",
    );
    config.retry.min_delay = Duration::from_millis(5);
    config.retry.max_delay = Duration::from_millis(10);
    IntentClient::new(config).unwrap()
}

use axum::response::IntoResponse;

#[tokio::test]
async fn a_huge_token_lifetime_is_clamped_not_a_panic() {
    let token = axum::Json(serde_json::json!({
        "access_token": "t",
        "token_type": "Bearer",
        "expires_in": u64::MAX,
    }))
    .into_response();
    let (addr, _server) = odd_intent(token).await;
    let client = client_for(addr);
    assert_eq!(
        client.post_intervention_log(&opening("R-1")).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a_redirect_is_never_followed_so_the_secret_stays_home() {
    // Another host, which records whatever reaches it.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorder = seen.clone();
    let elsewhere = axum::Router::new().fallback(move |body: String| {
        let recorder = recorder.clone();
        async move {
            recorder.lock().unwrap().push(body);
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, elsewhere).await.unwrap() });
    let redirect = (
        axum::http::StatusCode::TEMPORARY_REDIRECT,
        [(
            axum::http::header::LOCATION,
            format!("http://{other}/steal"),
        )],
    )
        .into_response();
    let (addr, _server) = odd_intent(redirect).await;
    let client = client_for(addr);
    let failure = client.publish_log(&opening("R-1")).await.unwrap_err();
    assert!(!failure.detail.contains("the-client-secret"));
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the other host: {:?}",
        seen.lock().unwrap()
    );
}

/// A redirection from Intent's API (a gateway sending callers to a maintenance page, or a
/// 303 after a POST it applied) is not followed, and is no refusal: whether the event was
/// applied is not known, so it stays to be sent, read back from Intent first.
#[tokio::test]
async fn a_redirection_is_not_a_refusal_but_an_unknown_outcome() {
    let (simulator, client) = setup().await;
    for code in [302, 303, 307] {
        simulator.inject(Fault {
            endpoint: Endpoint::InterventionLogs,
            behaviour: FaultBehaviour::Status {
                code,
                retry_after: None,
                body: None,
            },
            times: 1,
        });
        let failure = client.publish_log(&opening("R-1")).await.unwrap_err();
        assert!(failure.retryable, "{code}: {failure:?}");
        assert!(failure.outcome_unknown, "{code}: {failure:?}");
    }
}

/// Intent's error `code` goes into the failure's detail (logged, stored, announced in a
/// `DocumentRejected`): only an identifier is kept, never a structure or text that could
/// echo the refused value.
#[tokio::test]
async fn only_an_identifier_of_intents_error_code_is_kept() {
    let (simulator, client) = setup().await;
    for (code, kept) in [
        (serde_json::json!("validation_error"), true),
        (
            serde_json::json!({"field": "title", "value": "quitus Pierre DUPONT"}),
            false,
        ),
        (
            serde_json::json!("le titre « Pierre DUPONT » est refusé"),
            false,
        ),
    ] {
        simulator.inject(Fault {
            endpoint: Endpoint::InterventionLogs,
            behaviour: FaultBehaviour::Status {
                code: 400,
                retry_after: None,
                body: Some(serde_json::json!({"code": code, "message": "refused"})),
            },
            times: 1,
        });
        let failure = client.publish_log(&opening("R-1")).await.unwrap_err();
        assert!(!failure.retryable, "{failure:?}");
        assert!(!failure.detail.contains("DUPONT"), "{}", failure.detail);
        assert_eq!(
            failure.detail.contains("validation_error"),
            kept,
            "{}",
            failure.detail
        );
    }
}

/// Callers waiting for the same token share the outcome of its one fetch, a failure as
/// well: thirty deliveries started while Intent's token endpoint fails ask it once, not
/// thirty times in a row (each waiting for the one before, past their send leases).
#[tokio::test]
async fn callers_waiting_for_a_token_share_its_fetch_even_when_it_fails() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let mut config = fast_intent_config(&simulator);
    config.retry.max_attempts = 1;
    let client = IntentClient::new(config).unwrap();
    simulator.inject(Fault::status(Endpoint::Token, 503, 1_000));
    let logs: Vec<InterventionLog> = (0..30).map(|n| opening(&format!("R-{n}"))).collect();
    let results =
        futures_util::future::join_all(logs.iter().map(|log| client.publish_log(log))).await;
    assert!(results.iter().all(|result| result.is_err()));
    let token_requests = simulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth/token"))
        .count();
    assert!(token_requests <= 2, "{token_requests} token requests");
}

/// A call never takes longer than `longest_call()`, which a send lease is sized by (a
/// sender starts an event only while its lease has that much room): Intent's `Retry-After`
/// waits count against the retry budget as they are, not as planned.
#[tokio::test]
async fn retry_after_waits_stay_within_the_calls_bound() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let mut config = fast_intent_config(&simulator);
    config.request_timeout = Duration::from_millis(100);
    config.retry.max_total_delay = Duration::from_millis(1_500);
    let bound = config.longest_call();
    let client = IntentClient::new(config).unwrap();
    simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 503,
            retry_after: Some("1".into()),
            body: None,
        },
        times: 4,
    });
    let started = Instant::now();
    let failure = client.publish_log(&opening("R-1")).await.unwrap_err();
    let took = started.elapsed();
    assert!(failure.retryable, "{failure:?}");
    // Ended by the budget (Intent's 503), not cut off at the bound.
    assert!(!failure.outcome_unknown, "{failure:?}");
    assert!(took <= bound, "took {took:?}, bound {bound:?}");
}

/// Whatever the path (a 401 renewing the token costs four requests in one attempt), a call
/// ends within `longest_call()`: one cut off then may have been applied, and is read back
/// before being sent again, never sent blind by a sender whose lease ran out meanwhile.
#[tokio::test]
async fn a_call_is_cut_off_at_its_bound_and_then_in_doubt() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let mut config = fast_intent_config(&simulator);
    config.request_timeout = Duration::from_millis(500);
    config.retry.max_attempts = 1;
    config.retry.max_total_delay = Duration::ZERO;
    let bound = config.longest_call();
    let client = IntentClient::new(config).unwrap();
    // Each request within the timeout; three of them past the bound (two timeouts).
    let slow = Duration::from_millis(460);
    simulator.inject(Fault {
        endpoint: Endpoint::Token,
        behaviour: FaultBehaviour::Delay(slow),
        times: 2,
    });
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 401, 1));
    simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::ApplyThenDelay(slow),
        times: 1,
    });
    let started = Instant::now();
    let result = client.publish_log(&opening("R-1")).await;
    let took = started.elapsed();
    assert!(
        took <= bound + Duration::from_millis(200),
        "took {took:?}, bound {bound:?}"
    );
    let failure = result.expect_err("cut off at its bound");
    assert!(failure.retryable && failure.outcome_unknown, "{failure:?}");
}

/// An upload ends within the time it is given (what its object's claim leaves): cut off
/// then, it may have reached Intent, and is read back before being uploaded again.
#[tokio::test]
async fn an_upload_is_cut_off_within_its_time_and_then_in_doubt() {
    let (simulator, client) = setup().await;
    assert_eq!(
        client.post_intervention_log(&opening("R-1")).await.unwrap(),
        1
    );
    simulator.inject(Fault {
        endpoint: Endpoint::Documents,
        behaviour: FaultBehaviour::ApplyThenDelay(Duration::from_secs(3)),
        times: 1,
    });
    let upload = quitus_upload("R-1");
    let started = Instant::now();
    let failure = client
        .publish_document(&upload, &Body(pdf_bytes(2_000)), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(failure.outcome_unknown && failure.retryable, "{failure:?}");
}

/// A token endpoint's answer: one bearer token for an hour.
async fn a_token() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "access_token": "t", "token_type": "Bearer", "expires_in": 3600,
    }))
}

/// An Intent whose token endpoint gives a token and whose document listing answers `body`
/// (200, as `content_type`).
async fn intent_listing_documents(
    body: String,
    content_type: &'static str,
) -> std::net::SocketAddr {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route("/oauth/token", post(a_token))
        .route(
            "/api/documents/v1/documents",
            get(move || {
                let body = body.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, content_type)], body) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The document listing's shape is not documented: a bare array is read as the list; a
/// shape with no list in it is an unexpected answer (the upload stays in doubt), never
/// taken for "not on Intent" (which would upload it a second time, or fail it after a 409).
#[tokio::test]
async fn a_document_listing_of_another_shape_is_read_or_refused_never_taken_for_empty() {
    let upload = quitus_upload("R-1");
    let document = serde_json::json!({"id": "d1", "fileName": "quitus.pdf", "size": 3000});
    let find_text = |body: String, content_type: &'static str| {
        let upload = upload.clone();
        async move {
            let client = client_for(intent_listing_documents(body, content_type).await);
            client.find_uploaded_document(&upload, 3000, &[]).await
        }
    };
    let find = |listing: serde_json::Value| find_text(listing.to_string(), "application/json");
    // The document, as a list or as a list of one given as an object.
    for listing in [
        serde_json::json!([document.clone()]),
        serde_json::json!({"_embedded": {"documents": document.clone()}}),
        document.clone(),
    ] {
        let found = find(listing.clone()).await;
        let id = found
            .as_ref()
            .ok()
            .and_then(|found| found.as_ref())
            .and_then(|found| found.intent_document_id.as_deref());
        assert_eq!(id, Some("d1"), "{listing}: {found:?}");
    }
    // A document where it is not looked for, a body that is not whole JSON: not "none".
    let truncated = serde_json::json!({"_embedded": {"documents": [document.clone()]}}).to_string();
    for (body, content_type) in [
        (
            serde_json::json!({"items": [document.clone()]}).to_string(),
            "application/json",
        ),
        (
            truncated[..truncated.len() - 3].to_string(),
            "application/json",
        ),
        ("<html>maintenance</html>".to_string(), "text/html"),
    ] {
        let odd = find_text(body.clone(), content_type).await;
        assert!(
            matches!(odd, Err((IntentError::Protocol(_), _))),
            "{body}: {odd:?}"
        );
    }
    // Empty pages, whatever their form: none.
    for empty in [
        serde_json::json!({"_embedded": {"documents": []}}),
        serde_json::json!({"_links": {"self": {"href": "/documents"}}, "total": 0}),
        serde_json::json!({"_links": {"curies": [{"name": "doc", "href": "/rels/{rel}"}]}, "total": 0}),
        serde_json::json!([]),
        serde_json::Value::Null,
    ] {
        let none = find(empty.clone()).await;
        assert!(matches!(none, Ok(None)), "{empty}: {none:?}");
    }
}

/// A document added while the listing's pages are read shifts the next page: its last
/// matching document shows again at the top of the next one. Counted twice, it would
/// stand for the earlier upload Intent gave no id for *and* for the upload in doubt, which
/// would then be taken for published while it never reached Intent.
#[tokio::test]
async fn a_document_listed_again_on_the_next_page_is_counted_once() {
    use axum::extract::Query;
    use axum::routing::{get, post};
    let other =
        |n: usize| serde_json::json!({"id": format!("o{n}"), "fileName": "plan.pdf", "size": 3000});
    let earlier = serde_json::json!({"id": "e", "fileName": "quitus.pdf", "size": 3000});
    let mut first: Vec<serde_json::Value> = (0..99).map(other).collect();
    first.push(earlier.clone());
    let second = vec![earlier, other(100)];
    let app = axum::Router::new()
        .route("/oauth/token", post(a_token))
        .route(
            "/api/documents/v1/documents",
            get(
                move |Query(query): Query<std::collections::HashMap<String, String>>| {
                    let page = match query.get("page").map(String::as_str) {
                        Some("1") => first.clone(),
                        Some("2") => second.clone(),
                        _ => Vec::new(),
                    };
                    async move { axum::Json(serde_json::json!({"_embedded": {"documents": page}})) }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = client_for(addr);

    let found = client
        .find_uploaded_document(&quitus_upload("R-1"), 3000, &[None])
        .await;

    assert!(matches!(found, Ok(None)), "{found:?}");
}

/// One canned answer of a hand-made Intent: status, content type, body.
type Canned = (u16, &'static str, String);

/// An Intent whose token endpoint gives a token and whose other routes answer as given:
/// `logs` to `POST …/interventions/logs`, `document` to `POST …/documents`, `operation`
/// to `GET …/operations/{reference}`, and `open_page(page)` to page `page` of
/// `GET …/operations?status=open`.
async fn intent_answering(
    logs: Canned,
    document: Canned,
    operation: Canned,
    open_page: fn(u32) -> Canned,
) -> std::net::SocketAddr {
    use axum::extract::Query;
    use axum::routing::{get, post};
    fn answer((status, content_type, body): Canned) -> axum::response::Response {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [(axum::http::header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response()
    }
    let app = axum::Router::new()
        .route("/oauth/token", post(a_token))
        .route(
            "/api/operations/v2/interventions/logs",
            post(move || {
                let logs = logs.clone();
                async move { answer(logs) }
            }),
        )
        .route(
            "/api/documents/v1/documents",
            post(move || {
                let document = document.clone();
                async move { answer(document) }
            }),
        )
        .route(
            "/api/operations/v2/operations/{reference}",
            get(move || {
                let operation = operation.clone();
                async move { answer(operation) }
            }),
        )
        .route(
            "/api/operations/v2/operations",
            get(
                move |Query(query): Query<std::collections::HashMap<String, String>>| async move {
                    answer(open_page(query["page"].parse().unwrap()))
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn no_content() -> Canned {
    (204, "application/json", String::new())
}

fn maintenance_page(status: u16) -> Canned {
    (status, "text/html", "<html>maintenance</html>".into())
}

fn empty_open_page(_page: u32) -> Canned {
    (
        200,
        "application/json+hal",
        r#"{"_embedded":{"operations":[]}}"#.into(),
    )
}

/// `count` open operations of contract1 as a page of Intent's open list, with `total`.
fn open_operations(from: u32, count: u32, total: u32) -> String {
    let operations: Vec<serde_json::Value> = (from..from + count)
        .map(|n| {
            serde_json::json!({"reference": format!("O-{n}"), "contractReference": "contract1",
                "status": "open", "event": "acknowledged"})
        })
        .collect();
    serde_json::json!({"_embedded": {"operations": operations}, "total": total}).to_string()
}

/// The open list ends with its empty page, as documented; `total`, whose meaning is not
/// documented (the page's count, or all of them), does not end it sooner. An empty HAL page
/// without `_embedded` is an empty page.
#[tokio::test]
async fn the_open_list_is_read_to_its_empty_page_whatever_total_says() {
    let client = client_for(
        intent_answering(
            no_content(),
            no_content(),
            no_content(),
            |page| match page {
                1 => (200, "application/json+hal", open_operations(1, 100, 100)),
                2 => (200, "application/json+hal", open_operations(101, 5, 5)),
                _ => (
                    200,
                    "application/json+hal",
                    r#"{"_links":{"self":{"href":"/operations?page=3"}},"total":0}"#.into(),
                ),
            },
        )
        .await,
    );
    let listing = client
        .list_open_operations(oncall_domain::oncall::Deadline::none())
        .await
        .unwrap();
    assert_eq!(listing.interventions.len(), 105);
    assert!(listing.complete);
}

/// A write answered 2xx by something that is not Intent (a proxy's maintenance page
/// where 204 or 201 is documented) may not have reached Intent: in doubt (read back
/// before anything is sent again), never recorded delivered.
#[tokio::test]
async fn a_write_answered_by_a_page_that_is_not_intents_is_in_doubt() {
    let client = client_for(
        intent_answering(
            maintenance_page(200),
            maintenance_page(200),
            no_content(),
            empty_open_page,
        )
        .await,
    );
    let posted = client.post_intervention_log(&opening("R-1")).await;
    assert!(
        matches!(&posted, Err((error, _)) if error.outcome_unknown()),
        "{posted:?}"
    );
    let uploaded = client
        .post_document(
            &quitus_upload("R-1"),
            &Body(pdf_bytes(2_000)),
            Duration::from_secs(60),
        )
        .await;
    assert!(
        matches!(&uploaded, Err((error, _)) if error.outcome_unknown()),
        "{uploaded:?}"
    );
}

/// Reading Intent back after an attempt in doubt: an answer that cannot be understood (a
/// proxy's 404 page, an operation with neither a log nor a status and event, listed
/// documents without a file name and size) is not "not on Intent", which would send the
/// event or upload the document a second time.
#[tokio::test]
async fn a_read_back_that_cannot_be_understood_is_not_taken_for_absent() {
    let log = opening("R-1");
    for operation in [
        maintenance_page(404),
        (
            200,
            "application/json+hal",
            r#"{"id":"op-1","_links":{}}"#.into(),
        ),
    ] {
        let client = client_for(
            intent_answering(
                no_content(),
                no_content(),
                operation.clone(),
                empty_open_page,
            )
            .await,
        );
        let read = client.log_on_intent(&log).await;
        assert!(
            matches!(read, Err((IntentError::Protocol(_), _))),
            "{operation:?}: {read:?}"
        );
    }
    // An operation Intent does not know (its JSON error) holds nothing.
    let client = client_for(
        intent_answering(
            no_content(),
            no_content(),
            (
                404,
                "application/json",
                r#"{"code":"not_found","message":"no such operation"}"#.into(),
            ),
            empty_open_page,
        )
        .await,
    );
    assert!(!client.log_on_intent(&log).await.unwrap());

    let other_names = serde_json::json!({"_embedded": {"documents": [
        {"id": "d1", "filename": "quitus.pdf", "fileSize": 2000}
    ]}});
    let client =
        client_for(intent_listing_documents(other_names.to_string(), "application/json").await);
    let found = client
        .find_uploaded_document(&quitus_upload("R-1"), 2_000, &[])
        .await;
    assert!(
        matches!(found, Err((IntentError::Protocol(_), _))),
        "{found:?}"
    );
}

/// An Intent that gives fewer documents per page than asked (a cap of its own, never
/// documented) has more pages all the same: the listing is read to its empty page, not
/// ended by the first short one (the upload in doubt, on page 2, would be taken for
/// absent and sent a second time).
#[tokio::test]
async fn a_document_listing_capped_below_the_page_size_is_read_to_its_empty_page() {
    use axum::extract::Query;
    use axum::routing::{get, post};
    let document =
        |id: &str, name: &str| serde_json::json!({"id": id, "fileName": name, "size": 3000});
    let pages = [
        vec![document("p1", "plan.pdf"), document("p2", "plan.pdf")],
        vec![document("q1", "quitus.pdf")],
    ];
    let app =
        axum::Router::new()
            .route("/oauth/token", post(a_token))
            .route(
                "/api/documents/v1/documents",
                get(
                    move |Query(query): Query<std::collections::HashMap<String, String>>| {
                        let page = query["page"].parse::<usize>().unwrap();
                        let documents = pages.get(page - 1).cloned().unwrap_or_default();
                        async move {
                            axum::Json(serde_json::json!({"_embedded": {"documents": documents}}))
                        }
                    },
                ),
            );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let found = client_for(addr)
        .find_uploaded_document(&quitus_upload("R-1"), 3000, &[])
        .await
        .unwrap();

    assert_eq!(
        found.and_then(|found| found.intent_document_id).as_deref(),
        Some("q1")
    );
}

/// An Intent that ignores `page` and gives its one page again whatever is asked: the
/// listings end on the page given again, counting it once (the open list does not run to
/// its two-thousandth page; an id-less document listed again is not taken for a second
/// one, which would stand for the upload in doubt).
#[tokio::test]
async fn a_hub_that_ignores_page_ends_each_listing_at_the_page_given_again() {
    use axum::routing::{get, post};
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    let app = axum::Router::new()
        .route("/oauth/token", post(a_token))
        .route(
            "/api/operations/v2/operations",
            get(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json+hal")],
                        open_operations(1, 3, 3),
                    )
                }
            }),
        )
        .route(
            "/api/documents/v1/documents",
            get(|| async {
                axum::Json(serde_json::json!({"_embedded": {"documents": [
                    {"fileName": "quitus.pdf", "size": 3000}
                ]}}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = client_for(addr);

    let listing = client
        .list_open_operations(oncall_domain::oncall::Deadline::none())
        .await
        .unwrap();
    assert_eq!(listing.interventions.len(), 3);
    assert!(listing.complete);
    assert!(requests.load(std::sync::atomic::Ordering::Relaxed) <= 2);

    // The one listed is the earlier upload recorded without an id: this one is not there.
    let found = client
        .find_uploaded_document(&quitus_upload("R-1"), 3000, &[None])
        .await
        .unwrap();
    assert_eq!(found, None);
}
