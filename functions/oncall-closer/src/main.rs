// The runtime's future nests the handler's (the invocation's span and metrics scope around
// the domain's use cases) past the compiler's default depth for computing its layout.
#![recursion_limit = "256"]

use lambda_runtime::{Error, service_fn};
use oncall_closer::{CloserConfig, CloserFunction, handle_invocation};

// One thread: Lambda hands an environment one event at a time, and a second worker only
// adds the wake-ups between threads each awaited answer costs (lambda-bench, issue 12).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let config = CloserConfig::from_settings(&settings::Settings::from_process())?;
    let sdk = aws_wiring::lambda_aws_config()?;
    let closer = CloserFunction::new(&sdk, config)?;
    let closer = &closer;
    lambda_runtime::run(service_fn(move |event| handle_invocation(closer, event))).await
}
