//! Real HTTP against a started simulator.

use std::time::{Duration, Instant};

use futures_util::stream;
use intent_simulator::{Endpoint, Fault, FaultBehaviour, IntentSimulator, SimulatorConfig};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const LOGS: &str = "/operations/v2/interventions/logs";
const DOCUMENTS: &str = "/documents/v1/documents";
const OPERATIONS: &str = "/operations/v2/operations";
const JSON_UTF8: &str = "application/json; charset=utf-8";
const HAL: &str = "application/json+hal";

fn client() -> reqwest::Client {
    // The workspace's reqwest has no built-in crypto provider; plain HTTP still needs one
    // installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn start() -> (IntentSimulator, reqwest::Client) {
    start_with(SimulatorConfig::default()).await
}

async fn start_with(config: SimulatorConfig) -> (IntentSimulator, reqwest::Client) {
    let sim = IntentSimulator::start(config).await.unwrap();
    (sim, client())
}

async fn token_response(
    sim: &IntentSimulator,
    client: &reqwest::Client,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(sim.token_url())
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn fetch_token(sim: &IntentSimulator, client: &reqwest::Client) -> String {
    let id = sim.client_id();
    let secret = sim.client_secret();
    let response = token_response(
        sim,
        client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The seed's opening example, with offsets on its dates.
fn opening(reference: &str) -> Value {
    json!({
        "reference": reference,
        "description": "Plus de chauffage dans le logement 2. Le locataire indique une température de 16°C",
        "contractReference": "contract1",
        "status": "open",
        "event": "acknowledged",
        "eventDate": "2020-03-06T10:45:23+01:00",
        "logDate": "2020-03-06T10:45:26+01:00",
        "serviceCode": "P902",
        "location": { "assetReference": "LOGEMENT_002" },
        "workType": "corrective",
        "contacts": [
            "BEGIN:VCARD\n\nVERSION:3\r\nFN;CHARSET=UTF-8:Pierre DUPONT\r\nN;CHARSET=UTF-8:DUPONT;Pierre\r\nTEL;TYPE=WORK,VOICE:0734220902\r\nTEL;TYPE=HOME,VOICE:0685874445\r\nADR;TYPE=WORK:165 Avenue de Bretagne;59000;LILLE;France\r\nROLE;CHARSET=UTF-8:Locataire\r\nEMAIL;CHARSET=UTF-8;TYPE=WORK,INTERNET:p.dupont@internet.fr\r\nEND:VCARD"
        ],
        "criticalLevel": 3,
        "visitAttempt": 1,
        "equipmentWorkingOrder": "not_operational"
    })
}

/// The seed's full closure example, with offsets on its dates.
fn closing(reference: &str) -> Value {
    json!({
        "reference": reference,
        "description": "Chauffage de nouveau opérationnel ! Remise en service du chauffage pour le locataire.",
        "contractReference": "contract1",
        "status": "closed",
        "event": "done",
        "eventDate": "2020-03-06T15:35:00+01:00",
        "logDate": "2020-03-06T15:35:26+01:00",
        "serviceCode": "P902",
        "location": { "assetReference": "LOGEMENT_002" },
        "workType": "corrective",
        "criticalLevel": 3,
        "visitAttempt": 1,
        "equipmentWorkingOrder": "operational",
        "equipmentStatus": "ok",
        "occupantSignature": "ok"
    })
}

async fn post_log(
    sim: &IntentSimulator,
    client: &reqwest::Client,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    client
        .post(format!("{}{LOGS}", sim.base_url()))
        .bearer_auth(token)
        .header(CONTENT_TYPE, JSON_UTF8)
        .header(ACCEPT, HAL)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

fn detail_fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------- token

#[tokio::test]
async fn token_is_issued_to_the_configured_client() {
    let (sim, client) = start().await;
    assert!(sim.base_url().ends_with("/api"));
    assert!(sim.token_url().ends_with("/oauth/token"));
    let response = token_response(
        &sim,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "bridge-client"),
            ("client_secret", "bridge-secret"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_of(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 36, "a uuid: {token}");
    assert_eq!(sim.tokens_issued(), 1);
}

#[tokio::test]
async fn token_refused_for_bad_client_grant_or_content_type() {
    let (sim, client) = start().await;
    let bad_secret = token_response(
        &sim,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "bridge-client"),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(bad_secret.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(bad_secret).await["error"], "invalid_client");

    let bad_id = token_response(
        &sim,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "someone"),
            ("client_secret", "bridge-secret"),
        ],
    )
    .await;
    assert_eq!(bad_id.status(), StatusCode::UNAUTHORIZED);

    let bad_grant = token_response(
        &sim,
        &client,
        &[
            ("grant_type", "password"),
            ("client_id", "bridge-client"),
            ("client_secret", "bridge-secret"),
        ],
    )
    .await;
    assert_eq!(bad_grant.status(), StatusCode::BAD_REQUEST);
    let body = json_of(bad_grant).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    assert!(body["error_description"].is_string());

    let as_json = client
        .post(sim.token_url())
        .json(&json!({"grant_type": "client_credentials", "client_id": "bridge-client", "client_secret": "bridge-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(as_json).await["error"], "invalid_request");

    assert_eq!(sim.tokens_issued(), 0);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 400, 400]);
}

#[tokio::test]
async fn token_expires_after_its_ttl() {
    let config = SimulatorConfig {
        token_ttl: Duration::from_secs(1),
        ..SimulatorConfig::default()
    };
    let (sim, client) = start_with(config).await;
    let token = fetch_token(&sim, &client).await;
    let first = post_log(&sim, &client, &token, &opening("INTER-TTL")).await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = post_log(&sim, &client, &token, &opening("INTER-TTL2")).await;
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
    assert!(
        json_of(late).await["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

// ---------------------------------------------------------------- logs: auth and headers

#[tokio::test]
async fn logs_need_a_valid_bearer_token() {
    let (sim, client) = start().await;
    let url = format!("{}{LOGS}", sim.base_url());
    let body = opening("INTER-AUTH").to_string();

    let without = client
        .post(&url)
        .header(CONTENT_TYPE, JSON_UTF8)
        .header(ACCEPT, HAL)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    assert!(without.headers().contains_key("www-authenticate"));
    let error = json_of(without).await;
    assert_eq!(error["code"], "unauthorized");
    assert_eq!(error["details"], json!([]));

    let forged = post_log(&sim, &client, "not-a-token", &opening("INTER-AUTH")).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let token = fetch_token(&sim, &client).await;
    let basic = client
        .post(&url)
        .header("authorization", format!("Basic {token}"))
        .header(CONTENT_TYPE, JSON_UTF8)
        .header(ACCEPT, HAL)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    sim.expire_tokens();
    let expired = post_log(&sim, &client, &token, &opening("INTER-AUTH")).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(sim.received_logs().is_empty());

    let fresh = fetch_token(&sim, &client).await;
    assert_ne!(fresh, token);
    let ok = post_log(&sim, &client, &fresh, &opening("INTER-AUTH")).await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.tokens_issued(), 2);
}

#[tokio::test]
async fn logs_check_content_type_accept_and_json() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    let url = format!("{}{LOGS}", sim.base_url());
    let body = opening("INTER-HDR").to_string();
    let send = |content_type: Option<&'static str>, accept: Option<&'static str>, body: String| {
        let mut request = client.post(&url).bearer_auth(&token).body(body);
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, ct);
        }
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        request.send()
    };

    let text = send(Some("text/plain"), Some(HAL), body.clone())
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json_of(text).await["code"], "unsupported_media_type");
    let latin1 = send(
        Some("application/json; charset=iso-8859-1"),
        Some(HAL),
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(latin1.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let missing = send(None, Some(HAL), body.clone()).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let plain_json_accept = send(Some(JSON_UTF8), Some("application/json"), body.clone())
        .await
        .unwrap();
    assert_eq!(plain_json_accept.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(json_of(plain_json_accept).await["code"], "not_acceptable");
    let no_accept = send(Some(JSON_UTF8), None, body.clone()).await.unwrap();
    assert_eq!(no_accept.status(), StatusCode::NOT_ACCEPTABLE);

    // The seed's partial_repair example, with its stray `",`.
    let broken = "{\n\"reference\": \"INTER-0500\",\n\"description\": \"Remise en service incomplète, le prestataire de maintenance prend le relai\",\",\n\"contractReference\": \"contract1\"\n}";
    let invalid = send(
        Some("application/json"),
        Some("application/json+hal, application/json"),
        broken.to_owned(),
    )
    .await
    .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let error = json_of(invalid).await;
    assert_eq!(error["code"], "invalid_json");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("line 4 column"), "{message}");
    assert!(
        !message.contains("prestataire"),
        "never echo content: {message}"
    );

    assert!(sim.received_logs().is_empty());
    assert!(sim.interventions().is_empty());
    let statuses: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/logs"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![415, 415, 415, 406, 406, 400]);
}

// ---------------------------------------------------------------- logs: validation

#[tokio::test]
async fn validation_error_lists_every_problem() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    let body = json!({
        "reference": "INTER-1",
        "contractReference": "",
        "status": "closed",
        "event": "acknowledged",
        "eventDate": "2020-03-06T10:45:23+01:00",
        "logDate": "yesterday",
        "location": {},
        "workType": "curative",
        "contacts": "Pierre DUPONT",
        "visitAttempt": 0,
        "somethingNew": [1, 2, 3]
    });
    let response = post_log(&sim, &client, &token, &body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = json_of(response).await;
    assert_eq!(error["code"], "validation_error");
    assert!(error["message"].is_string());
    assert_eq!(
        detail_fields(&error),
        vec![
            "contractReference",
            "event",
            "logDate",
            "serviceCode",
            "location.assetReference",
            "workType",
            "contacts",
            "visitAttempt"
        ]
    );
    assert!(sim.received_logs().is_empty());
}

#[tokio::test]
async fn date_without_offset_is_rejected() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    let mut body = opening("INTER-0500");
    body["eventDate"] = json!("2020-03-06T10:45:23");
    body["logDate"] = json!("2020-03-06T10:45:26.000");
    let response = post_log(&sim, &client, &token, &body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = json_of(response).await;
    assert_eq!(detail_fields(&error), vec!["eventDate", "logDate"]);
    assert!(
        error["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("offset")
    );
    assert!(sim.interventions().is_empty());
}

#[tokio::test]
async fn seed_opening_with_offsets_is_accepted_and_recorded() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    let body = opening("INTER-0500");
    let response = post_log(&sim, &client, &token, &body).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());

    assert_eq!(sim.received_logs(), vec![body.clone()]);
    let hub = sim.interventions();
    assert_eq!(hub.len(), 1);
    assert_eq!(hub[0].reference, "INTER-0500");
    assert_eq!(hub[0].contract_reference, "contract1");
    assert_eq!(hub[0].status, "open");
    assert_eq!(hub[0].event, "acknowledged");
    assert_eq!(hub[0].last_event_date, "2020-03-06T10:45:23+01:00");

    let requests = sim.requests();
    let recorded = requests.last().unwrap();
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.path, "/api/operations/v2/interventions/logs");
    assert_eq!(recorded.status, 204);
    assert_eq!(
        recorded.authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(recorded.content_type.as_deref(), Some(JSON_UTF8));
    assert_eq!(recorded.accept.as_deref(), Some(HAL));
    assert_eq!(recorded.body.as_ref(), Some(&body));
    // RecordedRequest serializes for the admin route.
    let as_json = serde_json::to_value(recorded).unwrap();
    assert_eq!(as_json["status"], 204);
    assert!(as_json["at"].as_str().unwrap().ends_with('Z'));
}

// ---------------------------------------------------------------- lifecycle

#[tokio::test]
async fn lifecycle_is_enforced() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;

    let unknown = post_log(&sim, &client, &token, &closing("INTER-0500")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(unknown).await["code"], "intervention_not_found");

    let open = post_log(&sim, &client, &token, &opening("INTER-0500")).await;
    assert_eq!(open.status(), StatusCode::NO_CONTENT);
    let close = post_log(&sim, &client, &token, &closing("INTER-0500")).await;
    assert_eq!(close.status(), StatusCode::NO_CONTENT);

    let mut cancel = closing("INTER-0500");
    cancel["status"] = json!("denied");
    cancel["event"] = json!("canceled");
    let after_close = post_log(&sim, &client, &token, &cancel).await;
    assert_eq!(after_close.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(after_close).await["code"], "intervention_closed");
    let reopen = post_log(&sim, &client, &token, &opening("INTER-0500")).await;
    assert_eq!(reopen.status(), StatusCode::CONFLICT);

    let hub = sim.interventions();
    assert_eq!(hub.len(), 1);
    assert_eq!(
        (hub[0].status.as_str(), hub[0].event.as_str()),
        ("closed", "done")
    );
    assert_eq!(sim.received_logs().len(), 2);

    // The same reference on another contract is another intervention.
    let mut other = opening("INTER-0500");
    other["contractReference"] = json!("contract2");
    let other_open = post_log(&sim, &client, &token, &other).await;
    assert_eq!(other_open.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.interventions().len(), 2);
}

#[tokio::test]
async fn lifecycle_not_enforced_when_lenient() {
    let config = SimulatorConfig {
        strict_lifecycle: false,
        ..SimulatorConfig::default()
    };
    let (sim, client) = start_with(config).await;
    let token = fetch_token(&sim, &client).await;
    let close = post_log(&sim, &client, &token, &closing("INTER-9")).await;
    assert_eq!(close.status(), StatusCode::NO_CONTENT);
    let again = post_log(&sim, &client, &token, &closing("INTER-9")).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.interventions()[0].status, "closed");
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn status_fault_with_retry_after_honours_times() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 503,
            retry_after: Some("1".to_owned()),
            body: None,
        },
        times: 2,
    });
    for _ in 0..2 {
        let response = post_log(&sim, &client, &token, &opening("INTER-F")).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(json_of(response).await["code"], "injected_fault");
    }
    let third = post_log(&sim, &client, &token, &opening("INTER-F")).await;
    assert_eq!(third.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.received_logs().len(), 1);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 503, 503, 204]);
}

#[tokio::test]
async fn faults_are_fifo_and_any_matches_every_endpoint() {
    let (sim, client) = start().await;
    sim.inject(Fault::status(Endpoint::Token, 500, 1));
    sim.inject(Fault {
        endpoint: Endpoint::Any,
        behaviour: FaultBehaviour::Status {
            code: 429,
            retry_after: Some("2".to_owned()),
            body: Some(json!({"custom": true})),
        },
        times: 1,
    });
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "bridge-client"),
        ("client_secret", "bridge-secret"),
    ];
    let first = token_response(&sim, &client, &form).await;
    assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json_of(first).await["error"], "temporarily_unavailable");
    let second = token_response(&sim, &client, &form).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()[RETRY_AFTER], "2");
    assert_eq!(json_of(second).await, json!({"custom": true}));
    let third = token_response(&sim, &client, &form).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(sim.tokens_issued(), 1);
}

#[tokio::test]
async fn delay_fault_delays_then_handles_normally() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Delay(Duration::from_millis(400)),
        times: 1,
    });
    let started = Instant::now();
    let slow = post_log(&sim, &client, &token, &opening("INTER-D")).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(slow.status(), StatusCode::NO_CONTENT);

    // A client timeout shorter than the delay fails client-side.
    sim.inject(Fault::delay(
        Endpoint::InterventionLogs,
        Duration::from_millis(800),
        1,
    ));
    let timed_out = client
        .post(format!("{}{LOGS}", sim.base_url()))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, JSON_UTF8)
        .header(ACCEPT, HAL)
        .timeout(Duration::from_millis(200))
        .body(opening("INTER-D2").to_string())
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());

    let started = Instant::now();
    let fast = post_log(&sim, &client, &token, &opening("INTER-D3")).await;
    assert_eq!(fast.status(), StatusCode::NO_CONTENT);
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn drop_connection_fault_gives_a_client_side_error() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.inject(Fault::drop_connection(Endpoint::InterventionLogs, 2));
    for _ in 0..2 {
        let error = client
            .post(format!("{}{LOGS}", sim.base_url()))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, JSON_UTF8)
            .header(ACCEPT, HAL)
            .timeout(Duration::from_secs(10))
            .body(opening("INTER-X").to_string())
            .send()
            .await
            .unwrap_err();
        assert!(!error.is_timeout(), "closed, not hung: {error:?}");
        assert!(error.is_request() || error.is_connect(), "{error:?}");
    }
    let after = post_log(&sim, &client, &token, &opening("INTER-X")).await;
    assert_eq!(after.status(), StatusCode::NO_CONTENT);
    // Nothing was accepted by the dropped requests; they are recorded without a status.
    assert_eq!(sim.received_logs().len(), 1);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 0, 0, 204]);
}

// ---------------------------------------------------------------- documents

fn pdf_bytes(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend((0..len.saturating_sub(9)).map(|i| (i % 251) as u8));
    bytes
}

fn document_form(file: Part, skip: Option<&str>) -> Form {
    let fields = [
        ("title", "quitus d'intervention"),
        ("elementType", "intervention"),
        ("elementReference", "INTER-0500"),
        ("description", "Quitus"),
        ("intent_contractReference", "contract1"),
        ("intent_documentType", "quitus"),
        ("intent_creationDate", "2020-03-06T15:40:00+01:00"),
    ];
    let mut form = Form::new().part("file", file);
    for (name, value) in fields {
        if Some(name) != skip {
            form = form.text(name, value);
        }
    }
    form
}

async fn post_document(
    sim: &IntentSimulator,
    client: &reqwest::Client,
    token: &str,
    form: Form,
) -> reqwest::Response {
    client
        .post(format!("{}{DOCUMENTS}", sim.base_url()))
        .bearer_auth(token)
        .header(ACCEPT, "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn document_is_accepted_and_recorded() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-0500", "contract1");
    let pdf = pdf_bytes(100_000);
    let file = Part::bytes(pdf.clone())
        .file_name("quitus1.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let response = post_document(&sim, &client, &token, document_form(file, None)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = json_of(response).await["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);

    let documents = sim.received_documents();
    assert_eq!(documents.len(), 1);
    let doc = &documents[0];
    assert_eq!(doc.file_name.as_deref(), Some("quitus1.pdf"));
    assert_eq!(doc.file_content_type.as_deref(), Some("application/pdf"));
    assert_eq!(doc.file_size, pdf.len() as u64);
    assert_eq!(doc.file_sha256, hex::encode(Sha256::digest(&pdf)));
    let fields: Vec<(&str, &str)> = doc
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("description", "Quitus"),
            ("elementReference", "INTER-0500"),
            ("elementType", "intervention"),
            ("intent_contractReference", "contract1"),
            ("intent_creationDate", "2020-03-06T15:40:00+01:00"),
            ("intent_documentType", "quitus"),
            ("title", "quitus d'intervention"),
        ]
    );
    let request = sim.requests().pop().unwrap();
    assert_eq!(request.status, 201);
    assert!(request.body.is_none());
    assert!(
        request
            .content_type
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
}

#[tokio::test]
async fn large_document_is_streamed() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-0500", "contract1");
    const CHUNK: usize = 256 * 1024;
    const CHUNKS: usize = 96; // 24 MiB
    let chunk: Vec<u8> = pdf_bytes(CHUNK);
    let mut expected = Sha256::new();
    for _ in 0..CHUNKS {
        expected.update(&chunk);
    }
    let body_chunk = bytes::Bytes::from(chunk);
    let stream =
        stream::iter((0..CHUNKS).map(move |_| Ok::<_, std::io::Error>(body_chunk.clone())));
    let file =
        Part::stream_with_length(reqwest::Body::wrap_stream(stream), (CHUNK * CHUNKS) as u64)
            .file_name("big.pdf")
            .mime_str("application/pdf")
            .unwrap();
    let response = post_document(&sim, &client, &token, document_form(file, None)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let doc = sim.received_documents().pop().unwrap();
    assert_eq!(doc.file_size, (CHUNK * CHUNKS) as u64);
    assert_eq!(doc.file_sha256, hex::encode(expected.finalize()));
}

#[tokio::test]
async fn document_validation() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-0500", "contract1");
    let pdf = || {
        Part::bytes(pdf_bytes(1000))
            .file_name("quitus1.pdf")
            .mime_str("application/pdf")
            .unwrap()
    };

    let missing_title =
        post_document(&sim, &client, &token, document_form(pdf(), Some("title"))).await;
    assert_eq!(missing_title.status(), StatusCode::BAD_REQUEST);
    let error = json_of(missing_title).await;
    assert_eq!(error["code"], "validation_error");
    assert_eq!(detail_fields(&error), vec!["title"]);

    let octets = Part::bytes(pdf_bytes(1000))
        .file_name("quitus1.pdf")
        .mime_str("application/octet-stream")
        .unwrap();
    let not_pdf = post_document(&sim, &client, &token, document_form(octets, None)).await;
    assert_eq!(not_pdf.status(), StatusCode::BAD_REQUEST);
    assert_eq!(detail_fields(&json_of(not_pdf).await), vec!["file"]);

    let no_file = Form::new()
        .text("title", "t")
        .text("elementType", "building")
        .text("elementReference", "INTER-0500");
    let several = post_document(&sim, &client, &token, no_file).await;
    assert_eq!(several.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        detail_fields(&json_of(several).await),
        vec!["file", "intent_contractReference", "elementType"]
    );

    let mut unknown = document_form(pdf(), Some("elementReference"));
    unknown = unknown.text("elementReference", "INTER-404");
    let not_on_hub = post_document(&sim, &client, &token, unknown).await;
    assert_eq!(not_on_hub.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(not_on_hub).await["code"], "intervention_not_found");

    let wrong_accept = client
        .post(format!("{}{DOCUMENTS}", sim.base_url()))
        .bearer_auth(&token)
        .header(ACCEPT, "text/html")
        .multipart(document_form(pdf(), None))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_accept.status(), StatusCode::NOT_ACCEPTABLE);

    let as_json = client
        .post(format!("{}{DOCUMENTS}", sim.base_url()))
        .bearer_auth(&token)
        .header(ACCEPT, "application/json")
        .json(&json!({"title": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let no_token = client
        .post(format!("{}{DOCUMENTS}", sim.base_url()))
        .header(ACCEPT, "application/json")
        .multipart(document_form(pdf(), None))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);

    assert!(sim.received_documents().is_empty());
}

// ---------------------------------------------------------------- operations

#[tokio::test]
async fn operations_are_listed_page_by_page() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-3", "contract1");
    sim.seed_open_intervention("INTER-1", "contract2");
    sim.seed_open_intervention("INTER-2", "contract1");
    // A closed one, not listed with status=open.
    post_log(&sim, &client, &token, &opening("INTER-0")).await;
    let closed = post_log(&sim, &client, &token, &closing("INTER-0")).await;
    assert_eq!(closed.status(), StatusCode::NO_CONTENT);

    let page = |n: u32| {
        client
            .get(format!("{}{OPERATIONS}", sim.base_url()))
            .bearer_auth(&token)
            .header(ACCEPT, HAL)
            .query(&[
                ("status", "open"),
                ("page", &n.to_string()),
                ("perPage", "2"),
            ])
            .send()
    };
    let first = page(1).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let first = json_of(first).await;
    let refs = |body: &Value| -> Vec<(String, String)> {
        body["_embedded"]["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["contractReference"].as_str().unwrap().to_owned(),
                    o["reference"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        refs(&first),
        vec![
            ("contract1".to_owned(), "INTER-2".to_owned()),
            ("contract1".to_owned(), "INTER-3".to_owned())
        ]
    );
    assert_eq!(first["total"], 3);
    assert_eq!(first["_embedded"]["operations"][0]["status"], "open");
    assert_eq!(first["_embedded"]["operations"][0]["event"], "acknowledged");
    assert!(first["_embedded"]["operations"][0]["eventDate"].is_string());
    let next = first["_links"]["next"]["href"].as_str().unwrap();
    assert!(next.contains("page=2"), "{next}");
    assert!(next.contains("status=open"), "{next}");

    // Following the next link as given works.
    let second = client.get(next).bearer_auth(&token).send().await.unwrap();
    let second = json_of(second).await;
    assert_eq!(
        refs(&second),
        vec![("contract2".to_owned(), "INTER-1".to_owned())]
    );
    assert!(second["_links"].get("next").is_none());

    let third = json_of(page(3).await.unwrap()).await;
    assert_eq!(refs(&third), vec![]);
    assert_eq!(third["total"], 3);

    let all = client
        .get(format!("{}{OPERATIONS}", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let all = json_of(all).await;
    assert_eq!(all["perPage"], 100);
    assert_eq!(all["total"], 4);

    let too_many = client
        .get(format!("{}{OPERATIONS}?perPage=500", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(too_many.status(), StatusCode::BAD_REQUEST);

    let unauthenticated = client
        .get(format!("{}{OPERATIONS}?status=open", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn single_operation_is_found_or_404() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    post_log(&sim, &client, &token, &opening("INTER-0500")).await;
    let get = |reference: &'static str, contract: Option<&'static str>| {
        let mut request = client
            .get(format!("{}{OPERATIONS}/{reference}", sim.base_url()))
            .bearer_auth(&token)
            .header(ACCEPT, HAL);
        if let Some(contract) = contract {
            request = request.query(&[("contractReference", contract)]);
        }
        request.send()
    };
    let found = get("INTER-0500", Some("contract1")).await.unwrap();
    assert_eq!(found.status(), StatusCode::OK);
    let found = json_of(found).await;
    assert_eq!(found["reference"], "INTER-0500");
    assert_eq!(found["contractReference"], "contract1");
    assert_eq!(found["status"], "open");
    assert_eq!(found["event"], "acknowledged");
    assert_eq!(found["eventDate"], "2020-03-06T10:45:23+01:00");

    let other_contract = get("INTER-0500", Some("contract2")).await.unwrap();
    assert_eq!(other_contract.status(), StatusCode::NOT_FOUND);
    let unknown = get("INTER-0501", Some("contract1")).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let no_contract = get("INTER-0500", None).await.unwrap();
    assert_eq!(no_contract.status(), StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------- admin and reset

#[tokio::test]
async fn the_admin_request_log_shows_no_body_and_no_token() {
    let (sim, client) = start().await;
    let admin = sim.base_url().replace("/api", "/_simulator");
    let token = fetch_token(&sim, &client).await;
    post_log(&sim, &client, &token, &opening("INTER-A")).await;
    let text = client
        .get(format!("{admin}/requests"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("/api/operations/v2/interventions/logs"),
        "{text}"
    );
    assert!(
        !text.contains(&token),
        "the bearer token is redacted: {text}"
    );
    assert!(
        !text.contains("DUPONT") && !text.contains("LOGEMENT"),
        "{text}"
    );
    assert!(text.contains("[redacted]"));
    // The recording itself, for tests, is whole.
    assert!(sim.requests().iter().any(|r| r.body.is_some()));
}

#[tokio::test]
async fn admin_routes_and_reset() {
    let (sim, client) = start().await;
    let admin = sim.base_url().replace("/api", "/_simulator");
    let token = fetch_token(&sim, &client).await;
    post_log(&sim, &client, &token, &opening("INTER-A")).await;

    let injected = client
        .post(format!("{admin}/faults"))
        .json(
            &json!({"endpoint": "interventionLogs", "status": 503, "retryAfter": "1", "times": 1}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), StatusCode::CREATED);
    let faulted = post_log(&sim, &client, &token, &opening("INTER-B")).await;
    assert_eq!(faulted.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bad_fault = client
        .post(format!("{admin}/faults"))
        .json(&json!({"endpoint": "somewhere", "drop": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_fault.status(), StatusCode::BAD_REQUEST);

    let logs = json_of(client.get(format!("{admin}/logs")).send().await.unwrap()).await;
    assert_eq!(logs, json!([opening("INTER-A")]));
    let requests = json_of(
        client
            .get(format!("{admin}/requests"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let statuses: Vec<u64> = requests
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec![200, 204, 503],
        "admin calls are not recorded"
    );
    let interventions = json_of(
        client
            .get(format!("{admin}/interventions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(interventions[0]["contractReference"], "contract1");
    assert_eq!(
        interventions[0]["lastEventDate"],
        "2020-03-06T10:45:23+01:00"
    );
    let documents = json_of(
        client
            .get(format!("{admin}/documents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(documents, json!([]));

    let expire = client
        .post(format!("{admin}/expire-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(expire.status(), StatusCode::NO_CONTENT);
    let expired = post_log(&sim, &client, &token, &opening("INTER-C")).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);

    sim.inject(Fault::status(Endpoint::Any, 500, 5));
    let reset = client.post(format!("{admin}/reset")).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert!(sim.requests().is_empty());
    assert!(sim.received_logs().is_empty());
    assert!(sim.interventions().is_empty());
    assert_eq!(sim.tokens_issued(), 0);
    // The queued fault is gone too.
    let token = fetch_token(&sim, &client).await;
    let after = post_log(&sim, &client, &token, &opening("INTER-A")).await;
    assert_eq!(after.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn simulator_stops_when_dropped() {
    let (sim, client) = start().await;
    let url = sim.token_url();
    drop(sim);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let result = client
        .post(url)
        .form(&[("grant_type", "client_credentials")])
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(result.is_err());
}

// ---------------------------------------------------------------- the operation's log

/// A technician on site: a second, different event for an open intervention.
fn on_site(reference: &str) -> Value {
    let mut log = opening(reference);
    log["status"] = json!("pending");
    log["event"] = json!("on_site");
    log["eventDate"] = json!("2020-03-06T14:00:00+01:00");
    log["logDate"] = json!("2020-03-06T14:00:02+01:00");
    log
}

async fn get_operation(
    sim: &IntentSimulator,
    client: &reqwest::Client,
    token: &str,
    reference: &str,
    contract: &str,
) -> Value {
    let response = client
        .get(format!("{}{OPERATIONS}/{reference}", sim.base_url()))
        .bearer_auth(token)
        .header(ACCEPT, HAL)
        .query(&[("contractReference", contract)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    json_of(response).await
}

#[tokio::test]
async fn operation_embeds_its_logs_in_order_duplicates_included() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    for body in [
        opening("INTER-0500"),
        opening("INTER-0500"),
        on_site("INTER-0500"),
    ] {
        let response = post_log(&sim, &client, &token, &body).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    // The same reference on another contract has its own log.
    let mut other = opening("INTER-0500");
    other["contractReference"] = json!("contract2");
    post_log(&sim, &client, &token, &other).await;

    let expected = vec![
        opening("INTER-0500"),
        opening("INTER-0500"),
        on_site("INTER-0500"),
    ];
    let operation = get_operation(&sim, &client, &token, "INTER-0500", "contract1").await;
    assert_eq!(operation["status"], "pending");
    assert_eq!(operation["event"], "on_site");
    assert!(operation["_links"]["self"]["href"].is_string());
    assert_eq!(operation["_embedded"]["logs"], json!(expected));
    assert_eq!(sim.operation_logs("INTER-0500", "contract1"), expected);
    assert_eq!(sim.operation_logs("INTER-0500", "contract2"), vec![other]);
    assert!(sim.operation_logs("INTER-404", "contract1").is_empty());

    // Once closed, a duplicate closure is refused and not appended.
    let close = post_log(&sim, &client, &token, &closing("INTER-0500")).await;
    assert_eq!(close.status(), StatusCode::NO_CONTENT);
    let again = post_log(&sim, &client, &token, &closing("INTER-0500")).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(again).await["code"], "intervention_closed");
    let logs = sim.operation_logs("INTER-0500", "contract1");
    assert_eq!(logs.len(), 4);
    assert_eq!(logs[3], closing("INTER-0500"));
    assert_eq!(sim.received_logs().len(), 5);

    // Listing pages do not embed logs.
    let listing = client
        .get(format!("{}{OPERATIONS}", sim.base_url()))
        .bearer_auth(&token)
        .header(ACCEPT, HAL)
        .send()
        .await
        .unwrap();
    let listing = json_of(listing).await;
    for operation in listing["_embedded"]["operations"].as_array().unwrap() {
        assert!(operation.get("_embedded").is_none(), "{operation}");
    }
}

#[tokio::test]
async fn seeded_operation_starts_with_a_synthetic_log() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-S", "contract1");
    let operation = get_operation(&sim, &client, &token, "INTER-S", "contract1").await;
    let logs = operation["_embedded"]["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    let seed = &logs[0];
    assert_eq!(seed["reference"], "INTER-S");
    assert_eq!(seed["contractReference"], "contract1");
    assert_eq!(seed["status"], "open");
    assert_eq!(seed["event"], "acknowledged");
    let event_date = seed["eventDate"].as_str().unwrap();
    assert!(
        event_date.parse::<jiff::Timestamp>().is_ok(),
        "{event_date}"
    );
    assert_eq!(seed["eventDate"], operation["eventDate"]);
    // Not a received log.
    assert!(sim.received_logs().is_empty());

    let response = post_log(&sim, &client, &token, &on_site("INTER-S")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let logs = sim.operation_logs("INTER-S", "contract1");
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[1], on_site("INTER-S"));
}

// ---------------------------------------------------------------- document listing

fn pdf_part() -> Part {
    Part::bytes(pdf_bytes(1000))
        .file_name("quitus1.pdf")
        .mime_str("application/pdf")
        .unwrap()
}

/// A document form on intervention `reference` of `contract`.
fn document_form_for(reference: &str, contract: &str, title: &str) -> Form {
    Form::new()
        .part("file", pdf_part())
        .text("title", title.to_owned())
        .text("elementType", "intervention")
        .text("elementReference", reference.to_owned())
        .text("intent_contractReference", contract.to_owned())
}

async fn post_document_id(
    sim: &IntentSimulator,
    client: &reqwest::Client,
    token: &str,
    form: Form,
) -> String {
    let response = post_document(sim, client, token, form).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json_of(response).await["id"].as_str().unwrap().to_owned()
}

async fn list_documents(
    sim: &IntentSimulator,
    client: &reqwest::Client,
    token: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    client
        .get(format!("{}{DOCUMENTS}", sim.base_url()))
        .bearer_auth(token)
        .header(ACCEPT, "application/json")
        .query(query)
        .send()
        .await
        .unwrap()
}

fn listed_ids(body: &Value) -> Vec<String> {
    body["_embedded"]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn documents_are_listed_by_element_and_contract() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-0500", "contract1");
    sim.seed_open_intervention("INTER-0501", "contract1");
    sim.seed_open_intervention("INTER-0500", "contract2");

    // The full form (with a description) twice: stored twice, under two ids.
    let first = post_document_id(&sim, &client, &token, document_form(pdf_part(), None)).await;
    let second = post_document_id(&sim, &client, &token, document_form(pdf_part(), None)).await;
    assert_ne!(first, second);
    let other_reference = post_document_id(
        &sim,
        &client,
        &token,
        document_form_for("INTER-0501", "contract1", "rapport"),
    )
    .await;
    let other_contract = post_document_id(
        &sim,
        &client,
        &token,
        document_form_for("INTER-0500", "contract2", "rapport"),
    )
    .await;
    let received: Vec<String> = sim
        .received_documents()
        .iter()
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(
        received,
        vec![
            first.clone(),
            second.clone(),
            other_reference.clone(),
            other_contract.clone()
        ]
    );

    let by_reference = list_documents(
        &sim,
        &client,
        &token,
        &[
            ("elementType", "intervention"),
            ("elementReference", "INTER-0500"),
        ],
    )
    .await;
    assert_eq!(by_reference.status(), StatusCode::OK);
    assert_eq!(by_reference.headers()[CONTENT_TYPE], "application/json");
    let by_reference = json_of(by_reference).await;
    assert_eq!(
        listed_ids(&by_reference),
        vec![first.clone(), second.clone(), other_contract.clone()]
    );
    assert_eq!(by_reference["total"], 3);
    assert_eq!(by_reference["page"], 1);
    assert_eq!(by_reference["perPage"], 100);

    let query = [
        ("elementType", "intervention"),
        ("elementReference", "INTER-0500"),
        ("intent_contractReference", "contract1"),
    ];
    let by_contract = json_of(list_documents(&sim, &client, &token, &query).await).await;
    assert_eq!(
        listed_ids(&by_contract),
        vec![first.clone(), second.clone()]
    );
    let doc = &by_contract["_embedded"]["documents"][0];
    assert_eq!(doc["title"], "quitus d'intervention");
    assert_eq!(doc["description"], "Quitus");
    assert_eq!(doc["fileName"], "quitus1.pdf");
    assert_eq!(doc["size"], 1000);
    assert_eq!(doc["contentType"], "application/pdf");
    assert_eq!(doc["elementType"], "intervention");
    assert_eq!(doc["elementReference"], "INTER-0500");
    assert_eq!(doc["intent_contractReference"], "contract1");
    let created_at = doc["createdAt"].as_str().unwrap();
    assert!(
        created_at.parse::<jiff::Timestamp>().is_ok(),
        "{created_at}"
    );
    let without_description = json_of(
        list_documents(
            &sim,
            &client,
            &token,
            &[
                ("elementType", "intervention"),
                ("elementReference", "INTER-0501"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(listed_ids(&without_description), vec![other_reference]);
    assert_eq!(
        without_description["_embedded"]["documents"][0]["description"],
        Value::Null
    );

    let mut paged_query = query.to_vec();
    paged_query.extend([("page", "2"), ("perPage", "1")]);
    let paged = json_of(list_documents(&sim, &client, &token, &paged_query).await).await;
    assert_eq!(listed_ids(&paged), vec![second]);
    assert_eq!(paged["total"], 2);
    assert_eq!(paged["page"], 2);
    assert_eq!(paged["perPage"], 1);

    let other_type = json_of(
        list_documents(
            &sim,
            &client,
            &token,
            &[
                ("elementType", "quotation"),
                ("elementReference", "INTER-0500"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(other_type["_embedded"]["documents"], json!([]));
    assert_eq!(other_type["total"], 0);
}

#[tokio::test]
async fn document_listing_validates_parameters_and_needs_a_token() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    let url = format!("{}{DOCUMENTS}", sim.base_url());
    let valid = [
        ("elementType", "intervention"),
        ("elementReference", "INTER-0500"),
    ];

    let no_token = client
        .get(&url)
        .header(ACCEPT, "application/json")
        .query(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(no_token).await["code"], "unauthorized");
    let forged = list_documents(&sim, &client, "not-a-token", &valid).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let html = client
        .get(&url)
        .bearer_auth(&token)
        .header(ACCEPT, "text/html")
        .query(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::NOT_ACCEPTABLE);

    let check = |query: &'static [(&'static str, &'static str)], fields: Vec<&'static str>| {
        let (sim, client, token) = (&sim, &client, &token);
        async move {
            let response = list_documents(sim, client, token, query).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query:?}");
            let error = json_of(response).await;
            assert_eq!(error["code"], "validation_error");
            assert_eq!(detail_fields(&error), fields, "{query:?}");
        }
    };
    check(&[], vec!["elementType", "elementReference"]).await;
    check(
        &[
            ("elementType", "building"),
            ("elementReference", "INTER-0500"),
        ],
        vec!["elementType"],
    )
    .await;
    check(
        &[("elementType", "intervention"), ("elementReference", " ")],
        vec!["elementReference"],
    )
    .await;
    check(
        &[
            ("elementType", "intervention"),
            ("elementReference", "INTER-0500"),
            ("intent_contractReference", ""),
            ("page", "0"),
            ("perPage", "101"),
        ],
        vec!["intent_contractReference", "page", "perPage"],
    )
    .await;

    let ok = list_documents(&sim, &client, &token, &valid).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let statuses: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![401, 401, 406, 400, 400, 400, 400, 200]);
}

// ---------------------------------------------------------------- answers lost after the hub acted

#[tokio::test]
async fn apply_then_drop_on_logs_applies_once_without_answer() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.inject(Fault::apply_then_drop(Endpoint::InterventionLogs, 1));
    let error = client
        .post(format!("{}{LOGS}", sim.base_url()))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, JSON_UTF8)
        .header(ACCEPT, HAL)
        .timeout(Duration::from_secs(10))
        .body(opening("INTER-L").to_string())
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_timeout(), "closed, not hung: {error:?}");
    assert!(error.status().is_none(), "no HTTP status: {error:?}");
    assert!(error.is_request() || error.is_connect(), "{error:?}");

    // The hub applied it, once.
    assert_eq!(sim.received_logs(), vec![opening("INTER-L")]);
    assert_eq!(
        sim.operation_logs("INTER-L", "contract1"),
        vec![opening("INTER-L")]
    );
    assert_eq!(sim.interventions()[0].status, "open");
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 204], "the status the hub produced");

    // A blind retry doubles the log: that is what the bridge must avoid.
    let retry = post_log(&sim, &client, &token, &opening("INTER-L")).await;
    assert_eq!(retry.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.operation_logs("INTER-L", "contract1").len(), 2);
}

#[tokio::test]
async fn apply_then_drop_on_documents_stores_once_without_answer() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-0500", "contract1");
    let admin = sim.base_url().replace("/api", "/_simulator");
    let injected = client
        .post(format!("{admin}/faults"))
        .json(&json!({"endpoint": "documents", "dropAfterApply": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), StatusCode::CREATED);

    let error = client
        .post(format!("{}{DOCUMENTS}", sim.base_url()))
        .bearer_auth(&token)
        .header(ACCEPT, "application/json")
        .timeout(Duration::from_secs(10))
        .multipart(document_form(pdf_part(), None))
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_timeout(), "closed, not hung: {error:?}");
    assert!(error.status().is_none(), "no HTTP status: {error:?}");

    let received = sim.received_documents();
    assert_eq!(received.len(), 1);
    let listed = json_of(
        list_documents(
            &sim,
            &client,
            &token,
            &[
                ("elementType", "intervention"),
                ("elementReference", "INTER-0500"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(listed_ids(&listed), vec![received[0].id.clone()]);
    let upload = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/documents"))
        .unwrap();
    assert_eq!(upload.status, 201);
}

#[tokio::test]
async fn apply_then_delay_lets_the_client_time_out_after_the_hub_applied() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.inject(Fault::apply_then_delay(
        Endpoint::InterventionLogs,
        Duration::from_millis(1500),
        1,
    ));
    let timed_out = client
        .post(format!("{}{LOGS}", sim.base_url()))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, JSON_UTF8)
        .header(ACCEPT, HAL)
        .timeout(Duration::from_millis(300))
        .body(opening("INTER-T").to_string())
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    assert_eq!(sim.received_logs(), vec![opening("INTER-T")]);
    assert_eq!(sim.operation_logs("INTER-T", "contract1").len(), 1);
    assert_eq!(sim.requests().last().unwrap().status, 204);

    // Without a client timeout the answer arrives, late.
    sim.seed_open_intervention("INTER-0500", "contract1");
    sim.inject(Fault::apply_then_delay(
        Endpoint::Documents,
        Duration::from_millis(400),
        1,
    ));
    let started = Instant::now();
    let response = post_document(&sim, &client, &token, document_form(pdf_part(), None)).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(sim.received_documents().len(), 1);
}

#[tokio::test]
async fn document_lookup_faults_only_hit_the_listing() {
    let (sim, client) = start().await;
    let token = fetch_token(&sim, &client).await;
    sim.seed_open_intervention("INTER-0500", "contract1");
    let query = [
        ("elementType", "intervention"),
        ("elementReference", "INTER-0500"),
    ];

    sim.inject(Fault::status(Endpoint::DocumentLookup, 503, 1));
    let upload = post_document(&sim, &client, &token, document_form(pdf_part(), None)).await;
    assert_eq!(
        upload.status(),
        StatusCode::CREATED,
        "the upload is not faulted"
    );
    let faulted = list_documents(&sim, &client, &token, &query).await;
    assert_eq!(faulted.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(faulted).await["code"], "injected_fault");
    let listed = list_documents(&sim, &client, &token, &query).await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(json_of(listed).await["total"], 1);

    sim.inject(Fault::status(Endpoint::Documents, 500, 1));
    let listed = list_documents(&sim, &client, &token, &query).await;
    assert_eq!(
        listed.status(),
        StatusCode::OK,
        "the listing is not faulted"
    );
    let upload = post_document(&sim, &client, &token, document_form(pdf_part(), None)).await;
    assert_eq!(upload.status(), StatusCode::INTERNAL_SERVER_ERROR);

    sim.inject(Fault::status(Endpoint::Any, 429, 1));
    let any = list_documents(&sim, &client, &token, &query).await;
    assert_eq!(any.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sim.received_documents().len(), 1);
}

// ---------------------------------------------------------------- persistence

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "intent-simulator-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn persistent(state_file: &std::path::Path) -> SimulatorConfig {
    SimulatorConfig {
        state_file: Some(state_file.to_owned()),
        ..SimulatorConfig::default()
    }
}

#[tokio::test]
async fn state_survives_a_restart_with_a_state_file() {
    let dir = TempDir::new("restart");
    let state_file = dir.0.join("hub.json");

    let (sim, client) = start_with(persistent(&state_file)).await;
    assert!(sim.interventions().is_empty());
    let token = fetch_token(&sim, &client).await;
    let opened = post_log(&sim, &client, &token, &opening("INTER-P")).await;
    assert_eq!(opened.status(), StatusCode::NO_CONTENT);
    let id = post_document_id(
        &sim,
        &client,
        &token,
        document_form_for("INTER-P", "contract1", "quitus"),
    )
    .await;
    sim.seed_open_intervention("INTER-S", "contract1");
    let interventions = sim.interventions();
    let seeded_logs = sim.operation_logs("INTER-S", "contract1");
    assert!(state_file.exists());
    assert_eq!(dir.file_names(), vec!["hub.json"], "no temporary file left");
    drop(sim);

    let (sim, client) = start_with(persistent(&state_file)).await;
    assert_eq!(sim.interventions(), interventions);
    assert_eq!(
        sim.operation_logs("INTER-P", "contract1"),
        vec![opening("INTER-P")]
    );
    assert_eq!(sim.operation_logs("INTER-S", "contract1"), seeded_logs);
    assert!(sim.received_logs().is_empty(), "a recording, not persisted");
    assert!(sim.requests().is_empty());
    // Tokens are not persisted.
    let stale = post_log(&sim, &client, &token, &on_site("INTER-P")).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    let token = fetch_token(&sim, &client).await;
    let operation = get_operation(&sim, &client, &token, "INTER-P", "contract1").await;
    assert_eq!(operation["_embedded"]["logs"], json!([opening("INTER-P")]));
    let listed = json_of(
        list_documents(
            &sim,
            &client,
            &token,
            &[
                ("elementType", "intervention"),
                ("elementReference", "INTER-P"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(listed_ids(&listed), vec![id.clone()]);
    assert_eq!(listed["_embedded"]["documents"][0]["title"], "quitus");
    let document = &sim.received_documents()[0];
    assert_eq!(document.id, id);
    assert_eq!(document.file_size, 1000);

    // The lifecycle goes on where it was, and is saved again.
    let closed = post_log(&sim, &client, &token, &closing("INTER-P")).await;
    assert_eq!(closed.status(), StatusCode::NO_CONTENT);
    drop(sim);
    let (sim, client) = start_with(persistent(&state_file)).await;
    let token = fetch_token(&sim, &client).await;
    assert_eq!(sim.operation_logs("INTER-P", "contract1").len(), 2);
    let refused = post_log(&sim, &client, &token, &on_site("INTER-P")).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);

    // A reset is saved too.
    sim.reset();
    drop(sim);
    let (sim, _client) = start_with(persistent(&state_file)).await;
    assert!(sim.interventions().is_empty());
    assert!(sim.received_documents().is_empty());
    assert_eq!(dir.file_names(), vec!["hub.json"]);
}

#[tokio::test]
async fn corrupt_or_unreadable_state_file_fails_start_naming_the_file() {
    let dir = TempDir::new("corrupt");
    let state_file = dir.0.join("hub.json");
    std::fs::write(&state_file, b"{\"version\":1,\"interventions\":[{").unwrap();
    let error = IntentSimulator::start(persistent(&state_file))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let message = error.to_string();
    assert!(
        message.contains(&state_file.display().to_string()),
        "{message}"
    );
    // Left as it was.
    assert_eq!(
        std::fs::read(&state_file).unwrap(),
        b"{\"version\":1,\"interventions\":[{"
    );

    // A directory where the file should be: unreadable.
    let unreadable = dir.0.join("a-directory");
    std::fs::create_dir(&unreadable).unwrap();
    let error = IntentSimulator::start(persistent(&unreadable))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&unreadable.display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn a_failed_save_does_not_fail_the_request() {
    let dir = TempDir::new("no-dir");
    // The parent directory does not exist: nothing to load, and every save fails.
    let state_file = dir.0.join("missing").join("hub.json");
    let (sim, client) = start_with(persistent(&state_file)).await;
    let token = fetch_token(&sim, &client).await;
    let response = post_log(&sim, &client, &token, &opening("INTER-E")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.received_logs().len(), 1);
    sim.seed_open_intervention("INTER-F", "contract1");
    assert_eq!(sim.interventions().len(), 2);
    assert!(!state_file.exists());
}
