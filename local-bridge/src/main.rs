//! `cargo run --release -p local-bridge`: the whole bridge on this machine.

use intent_client::{IntentClient, IntentConfig};
use intent_simulator::{IntentSimulator, SimulatorConfig};
use local_bridge::config::LocalConfig;
use local_bridge::{LocalBridge, router, spawn_background};
use std::sync::Arc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init_tracing();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One sentence, not a debug dump.
            eprintln!("local-bridge: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings::Settings::from_process();
    let config = LocalConfig::from_settings(&settings)?;

    std::fs::create_dir_all(&config.data_dir)?;
    // Intent: the configured hub, or the simulator in process.
    let (intent_config, simulator) = match IntentConfig::from_settings(&settings) {
        // A hub beyond this machine is a real Intent: the demo tokens would let anyone who
        // reaches the local run publish there.
        Ok(intent)
            if !intent_client::is_local_url(&intent.base_url)
                && settings.text("PARTNERS_FILE").is_none() =>
        {
            return Err(format!(
                "a real Intent is configured ({}): set PARTNERS_FILE to your partners' tokens, the demo tokens are refused",
                intent.base_url
            )
            .into());
        }
        Ok(intent) => (intent, None),
        Err(_) if settings.text("INTENT_BASE_URL").is_none() => {
            // The simulator keeps Intent's side in DATA_DIR too: a restart finds the
            // interventions it had accepted.
            let simulator = IntentSimulator::start_on(
                config.simulator_listen,
                SimulatorConfig {
                    state_file: Some(config.data_dir.join("intent-simulator.json")),
                    ..SimulatorConfig::default()
                },
            )
            .await
            .map_err(|e| {
                format!(
                    "the Intent simulator cannot listen on {} (SIMULATOR_ADDR): {e}",
                    config.simulator_listen
                )
            })?;
            let intent = IntentConfig::new(
                &simulator.base_url(),
                &simulator.token_url(),
                &simulator.client_id(),
                &simulator.client_secret(),
            );
            (intent, Some(simulator))
        }
        Err(error) => return Err(error.into()),
    };
    let intent = local_bridge::intent_settings(&settings, intent_config)?;
    let bridge = Arc::new(LocalBridge::new(
        config.clone(),
        IntentClient::new(intent.api)?,
        IntentClient::new(intent.background)?,
    )?);
    let left = bridge.api.store.expire_leases_of_dead_processes().await?;
    if left > 0 {
        tracing::warn!(
            files = left,
            "send leases left by a previous run: their events are read back from Intent before any new send"
        );
    }
    spawn_background(bridge.clone());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {} (LISTEN_ADDR): {e}", config.listen))?;
    bridge.api.uploads.set_address(listener.local_addr()?);
    let simulator_line = simulator
        .as_ref()
        .map(|s| format!("http://{}/_simulator/requests", s.local_addr()))
        .unwrap_or_else(|| "(a real Intent is configured)".into());
    println!(
        "local bridge on http://{}  |  inbox {}  |  events {}  |  Intent simulator {}",
        listener.local_addr()?,
        config.inbox_dir.display(),
        config
            .events_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "stdout".into()),
        simulator_line
    );
    axum::serve(listener, router(bridge))
        .with_graceful_shutdown(async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        })
        .await?;
    drop(simulator);
    Ok(())
}
