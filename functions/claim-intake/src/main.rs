use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bridge_runtime::init_tracing();
    let sdk = bridge_runtime::load_aws_config().await;
    let api = claim_intake::build_api(&sdk, claim_intake::IntakeConfig::from_env()?)?;
    let api = &api;
    lambda_http::run(service_fn(move |request| {
        claim_intake::handle(api, request)
    }))
    .await
}
