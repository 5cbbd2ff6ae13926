use document_forwarder::{DocumentForwarder, ForwarderConfig, handle_invocation};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_tracing();
    let config = ForwarderConfig::from_settings(&settings::Settings::from_process())?;
    let sdk = aws_wiring::lambda_aws_config().await;
    let forwarder = DocumentForwarder::new(&sdk, config)?;
    let forwarder = &forwarder;
    lambda_runtime::run(service_fn(move |event| handle_invocation(forwarder, event))).await
}
