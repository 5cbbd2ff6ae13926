use lambda_runtime::{Error, service_fn};
use oncall_closer::{CloserConfig, OnCallCloser, handle_invocation};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bridge_runtime::init_tracing();
    let sdk = bridge_runtime::load_aws_config().await;
    let closer = OnCallCloser::new(&sdk, CloserConfig::from_env()?)?;
    let closer = &closer;
    lambda_runtime::run(service_fn(move |event| handle_invocation(closer, event))).await
}
