//! The README's walkthrough, end to end: the `local-bridge` binary started as a process
//! on a free port, driven over HTTP, killed and restarted midway; the Intent simulator
//! runs in the test (so it outlives the restarts) and tells what Intent received.

use intent_simulator::{Endpoint, Fault, IntentSimulator, SimulatorConfig};
use oncall_domain::seeds::{SEED_CLOSURE_DONE, SEED_OPENING};
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
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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

    // 4. Drop the quitus in the inbox.
    let folder = data.path().join("inbox/quitus/contract1/INTER-0500");
    std::fs::create_dir_all(&folder).unwrap();
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'x', 50_000));
    std::fs::write(folder.join("quitus signé.pdf"), &pdf).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while simulator.received_documents().is_empty() {
        assert!(Instant::now() < deadline, "the quitus did not reach Intent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let document = &simulator.received_documents()[0];
    assert_eq!(document.fields["elementReference"], "INTER-0500");
    assert_eq!(document.file_name.as_deref(), Some("quitus signé.pdf"));
    assert_eq!(document.file_size, pdf.len() as u64);

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
    let forbidden = send(
        "POST",
        &format!("{}/admin/end-period", bridge.base),
        PARTNER,
        None,
    )
    .await;
    assert_eq!(forbidden.0, 401);

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
