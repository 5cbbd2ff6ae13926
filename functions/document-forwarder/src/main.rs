// The runtime's future nests the handler's (the invocation's span and metrics scope around
// the domain's use cases) past the compiler's default depth for computing its layout.
#![recursion_limit = "256"]

use document_forwarder::{DocumentForwarder, ForwarderConfig, handle_invocation};
use lambda_runtime::{Error, service_fn};

// One thread: Lambda hands an environment one event at a time, and a second worker only
// adds the wake-ups between threads each awaited answer costs (lambda-bench, issue 12).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let config = ForwarderConfig::from_settings(&settings::Settings::from_process())?;
    let sdk = aws_wiring::lambda_aws_config()?;
    let forwarder = DocumentForwarder::new(&sdk, config)?;
    let forwarder = &forwarder;
    lambda_runtime::run(service_fn(move |event| handle_invocation(forwarder, event))).await
}
