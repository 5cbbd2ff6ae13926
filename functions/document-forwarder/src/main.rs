use document_forwarder::{DocumentForwarder, ForwarderConfig, handle_invocation};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bridge_runtime::init_tracing();
    let sdk = bridge_runtime::load_aws_config().await;
    let forwarder = DocumentForwarder::new(&sdk, ForwarderConfig::from_env()?)?;
    let forwarder = &forwarder;
    lambda_runtime::run(service_fn(move |event| handle_invocation(forwarder, event))).await
}
