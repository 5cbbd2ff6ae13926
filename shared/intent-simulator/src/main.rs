//! `intent-simulator`: a local Intent hub for demo runs.
//!
//! ```text
//! intent-simulator [--listen 127.0.0.1:4010] [--state-file PATH]
//! ```
//! The address can also come from `LISTEN_ADDR`; the accepted client credentials from
//! `SIMULATOR_CLIENT_ID` / `SIMULATOR_CLIENT_SECRET` (defaults `bridge-client` /
//! `bridge-secret`). With `--state-file` (or `SIMULATOR_STATE_FILE`) the hub's interventions,
//! their logs and the documents' metadata are loaded from that JSON file at start and saved
//! to it after every change, so they survive a restart; without it everything is in memory.
//! Logs are JSON lines on stdout (`RUST_LOG` filters, default `info`).
//! Runs until interrupted (Ctrl-C / SIGTERM end the process).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use intent_simulator::{IntentSimulator, SimulatorConfig};
use tracing_subscriber::EnvFilter;

const DEFAULT_LISTEN: &str = "127.0.0.1:4010";
const USAGE: &str = "usage: intent-simulator [--listen ADDR:PORT] [--state-file PATH]
  --listen ADDR:PORT   address to serve on (env LISTEN_ADDR, default 127.0.0.1:4010)
  --state-file PATH    keep the hub's interventions, their logs and the documents' metadata
                       in this JSON file across restarts (env SIMULATOR_STATE_FILE;
                       default: in memory only)";

struct Args {
    listen: SocketAddr,
    state_file: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = std::env::var("LISTEN_ADDR").ok();
    let mut state_file = std::env::var_os("SIMULATOR_STATE_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = Some(args.next().ok_or_else(|| USAGE.to_owned())?);
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            listen = Some(value.to_owned());
        } else if arg == "--state-file" {
            state_file = Some(PathBuf::from(args.next().ok_or_else(|| USAGE.to_owned())?));
        } else if let Some(value) = arg.strip_prefix("--state-file=") {
            state_file = Some(PathBuf::from(value));
        } else if arg == "--help" || arg == "-h" {
            return Err(USAGE.to_owned());
        } else {
            return Err(format!("unknown argument `{arg}`\n{USAGE}"));
        }
    }
    if state_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        return Err(format!("--state-file needs a path\n{USAGE}"));
    }
    let listen = listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen
        .parse()
        .map_err(|_| format!("`{listen}` is not an address like {DEFAULT_LISTEN}"))?;
    Ok(Args { listen, state_file })
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

    let Args {
        listen: addr,
        state_file,
    } = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut config = SimulatorConfig {
        state_file,
        ..SimulatorConfig::default()
    };
    if let Ok(id) = std::env::var("SIMULATOR_CLIENT_ID") {
        config.client_id = id;
    }
    if let Ok(secret) = std::env::var("SIMULATOR_CLIENT_SECRET") {
        config.client_secret = secret;
    }
    let state_file = config.state_file.as_deref().map_or_else(
        || "none (in memory)".to_owned(),
        |path| path.display().to_string(),
    );
    let simulator = match IntentSimulator::start_on(addr, config).await {
        Ok(simulator) => simulator,
        Err(error) => {
            // The error names the address or the state file; never the file's content.
            tracing::error!(%addr, %error, "cannot start the simulator");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        base_url = %simulator.base_url(),
        token_url = %simulator.token_url(),
        client_id = %simulator.client_id(),
        %state_file,
        admin_url = %format!("{}/_simulator", simulator.base_url().trim_end_matches("/api")),
        "Intent simulator listening"
    );
    // The default SIGINT/SIGTERM disposition ends the process; nothing needs flushing.
    std::future::pending::<()>().await;
    ExitCode::SUCCESS
}
