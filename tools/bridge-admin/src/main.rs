//! `bridge-admin`: the operator's command (see the README's "Operating the bridge").
//! Only wiring: the logic is in the library, which tests run on their own adapters.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Never a backtrace or a debug dump: one line, exit code 2.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unexpected failure".into());
        eprintln!(
            "bridge-admin: internal error: {}",
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        std::process::exit(bridge_admin::EXIT_CONFIG);
    }));
    // Logs only when asked for (RUST_LOG), as JSON lines on standard error: standard
    // output is the command's.
    if std::env::var_os("RUST_LOG").is_some() {
        let filter = telemetry::log_filter(&std::env::var("RUST_LOG").unwrap_or_default());
        let _ = tracing::subscriber::set_global_default(telemetry::json_subscriber(
            filter,
            std::io::stderr,
        ));
    }
    let env = |name: &str| std::env::var(name).ok();
    let code = bridge_admin::run(
        std::env::args_os(),
        &env,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
    .await;
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
