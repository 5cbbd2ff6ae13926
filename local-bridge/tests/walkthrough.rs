//! The README's walkthrough, end to end: the `local-bridge` binary started as a process
//! on a free port, driven over HTTP, killed and restarted midway; the Intent simulator
//! runs in the test (so it outlives the restarts) and tells what Intent received.

use intent_simulator::{Endpoint, Fault, IntentSimulator, SimulatorConfig};
use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PARTNER: &str = "Bearer demo-partner-token";
const ADMIN: &str = "Bearer demo-admin-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Bridge {
    child: Child,
    base: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(data: &Path, port: u16, simulator: &IntentSimulator) -> Bridge {
    let child = Command::new(env!("CARGO_BIN_EXE_local-bridge"))
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", data)
        .env("INTENT_BASE_URL", simulator.base_url())
        .env("INTENT_TOKEN_URL", simulator.token_url())
        .env("INTENT_CLIENT_ID", simulator.client_id())
        .env("INTENT_CLIENT_SECRET", simulator.client_secret())
        .env("INBOX_POLL_MS", "100")
        .env("CLOSER_EVERY_SECS", "3600")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the local-bridge binary starts");
    wait_until_up(child, port).await
}

async fn send(method: &str, url: &str, token: &str, body: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    }
    .header("Authorization", token);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_walkthrough_survives_restarts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut bridge = start(data.path(), port, &simulator).await;

    // 1. Open the seed's claim.
    let (status, body) = send(
        "POST",
        &format!("{}/interventions", bridge.base),
        PARTNER,
        Some(SEED_OPENING),
    )
    .await;
    assert_eq!(status, 201, "{body:#}");
    // A second claim while Intent is down: stored, pending.
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 503, 4));
    let second = SEED_OPENING.replace("INTER-0500", "INTER-0501");
    let (status, body) = send(
        "POST",
        &format!("{}/interventions", bridge.base),
        PARTNER,
        Some(&second),
    )
    .await;
    assert_eq!(status, 202, "{body:#}");
    let bad = send(
        "POST",
        &format!("{}/interventions", bridge.base),
        "Bearer nope",
        Some(SEED_OPENING),
    )
    .await;
    assert_eq!(bad.0, 401, "an unknown token authenticates nobody");

    // 2. Restart: nothing is lost.
    drop(bridge);
    bridge = start(data.path(), port, &simulator).await;
    let (status, file) = send(
        "GET",
        &format!(
            "{}/interventions/INTER-0500?contractReference=contract1",
            bridge.base
        ),
        PARTNER,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(file["state"], "open");
    assert_eq!(file["events"][0]["delivery"]["state"], "delivered");

    // 3. Close it with the seed's report.
    let (status, body) = send(
        "POST",
        &format!("{}/interventions/INTER-0500/closure", bridge.base),
        PARTNER,
        Some(SEED_CLOSURE_DONE),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");

    // 4. Upload the quitus: ask for an upload URL, then PUT the PDF with it.
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'x', 50_000));
    pdf.extend(b"\n%%EOF\n");
    let (status, ticket) = send(
        "POST",
        &format!(
            "{}/interventions/INTER-0500/documents?contractReference=contract1",
            bridge.base
        ),
        PARTNER,
        Some(&serde_json::json!({"fileName": "quitus signé.pdf", "size": pdf.len()}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{ticket:#}");
    assert_eq!(ticket["method"], "PUT");
    let url = ticket["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/uploads/quitus/contract1/INTER-0500/",
            bridge.base
        )),
        "{url}"
    );
    let put = |body: Vec<u8>, length: usize| {
        let request = reqwest::Client::new()
            .put(url)
            .header("Content-Type", "application/pdf")
            .header("Content-Length", length.to_string())
            .body(body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Another size than granted, or a tampered URL: refused.
    assert_eq!(put(pdf[..100].to_vec(), 100).await, 403);
    let tampered = url.replace("signature=", "signature=0");
    let status = reqwest::Client::new()
        .put(&tampered)
        .header("Content-Type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 403);
    assert_eq!(put(pdf.clone(), pdf.len()).await, 200);
    assert_eq!(ticket["headers"]["if-none-match"], "*");
    assert_eq!(
        put(pdf.clone(), pdf.len()).await,
        412,
        "the same upload again is refused, not stored twice"
    );
    // A PDF written straight into the partners' folder, without a grant, never goes.
    let stray = data.path().join("inbox/quitus/contract1/INTER-0500");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("stray.pdf"), &pdf).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while simulator.received_documents().is_empty() {
        assert!(Instant::now() < deadline, "the quitus did not reach Intent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Recorded on the file and announced (the outbox would announce it after a restart
    // too, but a minute later).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events =
            std::fs::read_to_string(data.path().join("domain-events.jsonl")).unwrap_or_default();
        if events.contains("DocumentPublished") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DocumentPublished was not written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let document = &simulator.received_documents()[0];
    assert_eq!(document.fields["elementReference"], "INTER-0500");
    assert_eq!(document.file_name.as_deref(), Some("quitus signé.pdf"));
    assert_eq!(document.file_size, pdf.len() as u64);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events =
            std::fs::read_to_string(data.path().join("domain-events.jsonl")).unwrap_or_default();
        if events.contains("not_authorized") {
            break;
        }
        assert!(Instant::now() < deadline, "the stray PDF was not rejected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        simulator.received_documents().len(),
        1,
        "the stray PDF stays off Intent"
    );

    // 5. Restart again, then end the period: the pending file's opening goes first,
    //    then its automatic closure.
    drop(bridge);
    bridge = start(data.path(), port, &simulator).await;
    let (status, summary) = send(
        "POST",
        &format!("{}/admin/end-period", bridge.base),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{summary:#}");
    assert_eq!(summary["filesClosed"], 1);
    assert_eq!(summary["stillFailing"], 0);
    // A partner may not end a period (403); nobody without a token (401, saying how).
    let client = reqwest::Client::new();
    let forbidden = client
        .post(format!("{}/admin/end-period", bridge.base))
        .header("Authorization", PARTNER)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(
        forbidden.headers()["content-type"],
        "application/problem+json"
    );
    let anonymous = client
        .post(format!("{}/admin/end-period", bridge.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        anonymous.headers()["content-type"],
        "application/problem+json"
    );

    // 6. What Intent received, in order.
    let received: Vec<String> = simulator
        .received_logs()
        .iter()
        .map(|log| {
            format!(
                "{} {}/{}",
                log["reference"].as_str().unwrap(),
                log["status"].as_str().unwrap(),
                log["event"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        received,
        [
            "INTER-0500 open/acknowledged",
            "INTER-0500 closed/done",
            "INTER-0501 open/acknowledged",
            "INTER-0501 closed/partial_repair",
        ]
    );
    assert!(
        simulator
            .interventions()
            .iter()
            .all(|i| i.status == "closed")
    );
    // The manual end of period is dated in whole seconds, as every date sent to Intent.
    let automatic = &simulator.received_logs()[3];
    let date = automatic["eventDate"].as_str().unwrap();
    assert!(!date.contains('.'), "{date}");

    // The domain events, as JSON lines.
    let events = std::fs::read_to_string(data.path().join("domain-events.jsonl")).unwrap();
    for kind in [
        "InterventionOpened",
        "InterventionClosed",
        "DocumentPublished",
        "OnCallPeriodClosed",
    ] {
        assert!(events.contains(kind), "{kind} missing from\n{events}");
    }
    assert!(
        !events.contains("DUPONT"),
        "no tenant data in domain events"
    );
}

/// The local run on its own: no Intent configured, so its in-process simulator, which
/// keeps Intent's side in DATA_DIR.
async fn start_alone(data: &Path, port: u16, simulator_port: u16) -> Bridge {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let child = Command::new(env!("CARGO_BIN_EXE_local-bridge"))
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SIMULATOR_ADDR", format!("127.0.0.1:{simulator_port}"))
        .env("DATA_DIR", data)
        .env_remove("INTENT_BASE_URL")
        .env_remove("INTENT_TOKEN_URL")
        .env_remove("INTENT_CLIENT_ID")
        .env_remove("INTENT_CLIENT_SECRET")
        .env("INBOX_POLL_MS", "100")
        .env("INBOX_SETTLE_MS", "500")
        .env("CLOSER_EVERY_SECS", "1")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the local-bridge binary starts");
    wait_until_up(child, port).await
}

async fn wait_until_up(child: Child, port: u16) -> Bridge {
    let bridge = Bridge {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("{}/health", bridge.base)).send().await
            && response.status().is_success()
        {
            return bridge;
        }
        assert!(
            Instant::now() < deadline,
            "the local bridge did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The operation's log on the in-process simulator (`status/event` per entry), read
/// through Intent's API as the bridge reads it (the simulator's default credentials).
async fn operation_log(simulator_port: u16, reference: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{simulator_port}");
    let token: Value = client
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "bridge-client"),
            ("client_secret", "bridge-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = client
        .get(format!(
            "{base}/api/operations/v2/operations/{reference}?contractReference=contract1"
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("Accept", "application/json+hal")
        .send()
        .await
        .unwrap();
    if response.status() == 404 {
        return Vec::new();
    }
    let operation: Value = response.json().await.unwrap();
    operation["_embedded"]["logs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|log| {
            format!(
                "{}/{}",
                log["status"].as_str().unwrap_or_default(),
                log["event"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// How many interventions the in-process simulator holds.
async fn hub_interventions(simulator_port: u16) -> usize {
    let (_, interventions) = send(
        "GET",
        &format!("http://127.0.0.1:{simulator_port}/_simulator/interventions"),
        "",
        None,
    )
    .await;
    interventions.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn killed_mid_burst_and_restarted_nothing_lost_nothing_doubled() {
    let data = tempfile::tempdir().unwrap();
    let (port, simulator_port) = (free_port(), free_port());
    let bridge = start_alone(data.path(), port, simulator_port).await;
    // A burst of claims, the process killed while they are in flight.
    let references: Vec<String> = (0..30).map(|n| format!("BURST-{n:02}")).collect();
    let base = bridge.base.clone();
    let burst: Vec<_> = references
        .iter()
        .map(|reference| {
            let url = format!("{base}/interventions");
            let body = SEED_OPENING.replace("INTER-0500", reference);
            tokio::spawn(async move {
                // The process may die under this request: no answer is "not accepted".
                reqwest::Client::new()
                    .post(url)
                    .header("Authorization", PARTNER)
                    .header("Content-Type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    // Killed once a few openings reached Intent, with the rest in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while hub_interventions(simulator_port).await < 5 {
        assert!(Instant::now() < deadline, "the burst did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(bridge);
    let mut accepted = 0;
    for answer in burst {
        if let Ok(status) = answer.await
            && (200..300).contains(&status)
        {
            accepted += 1;
        }
    }

    let bridge = start_alone(data.path(), port, simulator_port).await;
    // Every claim the bridge answered 2xx is there; the re-send pass finishes what the
    // killed process left, reading Intent back first where a send may have gone out.
    let mut stored = 0;
    for reference in &references {
        let (status, _) = send(
            "GET",
            &format!(
                "{}/interventions/{reference}?contractReference=contract1",
                bridge.base
            ),
            PARTNER,
            None,
        )
        .await;
        if status == 200 {
            stored += 1;
        }
    }
    assert!(stored >= accepted, "{stored} stored, {accepted} accepted");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let on_hub = hub_interventions(simulator_port).await;
        if on_hub >= stored {
            break;
        }
        assert!(Instant::now() < deadline, "{on_hub} of {stored} on the hub");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut opened = None;
    for reference in &references {
        let log = operation_log(simulator_port, reference).await;
        assert!(
            log.len() <= 1,
            "{reference} logged twice on the hub: {log:?}"
        );
        if log == ["open/acknowledged"] {
            opened = Some(reference.clone());
        }
    }
    // Intent's side survived the restart: a closing for a file opened before it is
    // accepted (not a 404 from an empty simulator).
    let opened = opened.expect("at least one claim went through");
    let closure = SEED_CLOSURE_DONE.replace("INTER-0500", &opened);
    let (status, body) = send(
        "POST",
        &format!("{}/interventions/{opened}/closure", bridge.base),
        PARTNER,
        Some(&closure),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["delivery"], "delivered", "{body:#}");
    assert_eq!(
        operation_log(simulator_port, &opened).await,
        ["open/acknowledged", "closed/done"]
    );
}

#[tokio::test]
async fn a_slow_writer_in_the_inbox_gives_one_complete_document() {
    let data = tempfile::tempdir().unwrap();
    let (port, simulator_port) = (free_port(), free_port());
    let bridge = start_alone(data.path(), port, simulator_port).await;
    let (status, _) = send(
        "POST",
        &format!("{}/interventions", bridge.base),
        PARTNER,
        Some(SEED_OPENING),
    )
    .await;
    assert_eq!(status, 201);
    let folder = data
        .path()
        .join("inbox/operator-quitus/contract1/INTER-0500");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("quitus.pdf");
    // Half the PDF, a 3.5 s pause (longer than the quiet period), then the rest.
    let mut first = b"%PDF-1.7\n".to_vec();
    first.extend(std::iter::repeat_n(b'x', 20_000));
    std::fs::write(&path, &first).unwrap();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let mut rest = std::iter::repeat_n(b'y', 20_000).collect::<Vec<u8>>();
    rest.extend(b"\n%%EOF\n");
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&rest).unwrap();
    }
    // A temporary name is never picked up.
    std::fs::write(folder.join("other.pdf.part"), b"%PDF-1.7\n").unwrap();
    let full = (first.len() + rest.len()) as u64;
    let documents = || async {
        let (_, documents) = send(
            "GET",
            &format!("http://127.0.0.1:{simulator_port}/_simulator/documents"),
            "",
            None,
        )
        .await;
        documents.as_array().cloned().unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while documents().await.is_empty() {
        assert!(Instant::now() < deadline, "the quitus did not reach Intent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let received = documents().await;
    assert_eq!(received.len(), 1, "one document: {received:?}");
    assert_eq!(received[0]["fileSize"], full, "the complete file");
    drop(bridge);
}

#[tokio::test]
async fn a_busy_port_is_named_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_local-bridge"))
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("SIMULATOR_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DATA_DIR", data.path())
        .env("RUST_LOG", "error")
        .output()
        .expect("the local-bridge binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port} (LISTEN_ADDR)")),
        "{stderr}"
    );
    assert!(!stderr.contains("Os {"), "{stderr}");
    drop(taken);
}

#[tokio::test]
async fn the_demo_tokens_are_refused_when_a_real_intent_is_configured() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_local-bridge"))
        .env("LISTEN_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DATA_DIR", data.path())
        .env("INTENT_BASE_URL", "https://apisandbox.hubintent.com/api")
        .env(
            "INTENT_TOKEN_URL",
            "https://accountsandbox.hubintent.com/oauth/token",
        )
        .env("INTENT_CLIENT_ID", "id")
        .env("INTENT_CLIENT_SECRET", "secret")
        .env_remove("PARTNERS_FILE")
        .env("RUST_LOG", "error")
        .output()
        .expect("the local-bridge binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the demo tokens are refused"), "{stderr}");
}
