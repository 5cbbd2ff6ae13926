//! `intent-simulator`: a local Intent hub for demo runs.
//!
//! ```text
//! intent-simulator [--listen 127.0.0.1:4010]
//! ```
//! The address can also come from `LISTEN_ADDR`; the accepted client credentials from
//! `SIMULATOR_CLIENT_ID` / `SIMULATOR_CLIENT_SECRET` (defaults `bridge-client` /
//! `bridge-secret`). Logs are JSON lines on stdout (`RUST_LOG` filters, default `info`).
//! Runs until interrupted (Ctrl-C / SIGTERM end the process).

use std::net::SocketAddr;
use std::process::ExitCode;

use intent_simulator::{IntentSimulator, SimulatorConfig};
use tracing_subscriber::EnvFilter;

const DEFAULT_LISTEN: &str = "127.0.0.1:4010";
const USAGE: &str = "usage: intent-simulator [--listen ADDR:PORT]   (or env LISTEN_ADDR)";

fn listen_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = std::env::var("LISTEN_ADDR").ok();
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = Some(args.next().ok_or_else(|| USAGE.to_owned())?);
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = Some(value.to_owned());
        } else if arg == "--help" || arg == "-h" {
            return Err(USAGE.to_owned());
        } else {
            return Err(format!("unknown argument `{arg}`\n{USAGE}"));
        }
    }
    let listen = listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    listen
        .parse()
        .map_err(|_| format!("`{listen}` is not an address like {DEFAULT_LISTEN}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let addr = match listen_addr() {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut config = SimulatorConfig::default();
    if let Ok(id) = std::env::var("SIMULATOR_CLIENT_ID") {
        config.client_id = id;
    }
    if let Ok(secret) = std::env::var("SIMULATOR_CLIENT_SECRET") {
        config.client_secret = secret;
    }
    let simulator = match IntentSimulator::start_on(addr, config).await {
        Ok(simulator) => simulator,
        Err(error) => {
            tracing::error!(%addr, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        base_url = %simulator.base_url(),
        token_url = %simulator.token_url(),
        client_id = %simulator.client_id(),
        admin_url = %format!("{}/_simulator", simulator.base_url().trim_end_matches("/api")),
        "Intent simulator listening"
    );
    // The default SIGINT/SIGTERM disposition ends the process; nothing needs flushing.
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
