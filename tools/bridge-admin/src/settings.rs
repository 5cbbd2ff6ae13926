//! Configuration from the functions' variables, looked up through a function (the
//! process environment in `main`, a map in tests).

use document_forwarder::{DocumentForwarder, ForwarderConfig};
use intent_client::{IntentClient, IntentConfig};
use oncall_domain::documents::DocumentPolicy;

/// Looks a variable up.
pub type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The functions' one configuration reader over `env` (blank is unset, values trimmed,
/// numbers within their ranges).
fn reader<'a>(env: &'a Lookup<'a>) -> ::settings::Settings<'a> {
    ::settings::Settings::from_lookup(move |name| env(name))
}

/// A variable, if set and not blank.
pub fn var(env: &Lookup<'_>, name: &str) -> Option<String> {
    reader(env).text(name)
}

const INTENT_VARIABLES: &str =
    "INTENT_BASE_URL, INTENT_TOKEN_URL, INTENT_CLIENT_ID, INTENT_CLIENT_SECRET";

/// The Intent client, or why a redrive cannot reach Intent.
/// With `sdk` and `INTENT_CLIENT_SECRET_ARN`, the client secret is read from AWS Secrets
/// Manager, as the functions read it.
/// Without `sdk` (the local run), `INTENT_CLIENT_SECRET` is the secret: an
/// `INTENT_CLIENT_SECRET_ARN` left in the shell names a secret this run does not read.
pub fn intent(
    env: &Lookup<'_>,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<IntentClient, String> {
    let client = match (var(env, "INTENT_CLIENT_SECRET_ARN"), sdk) {
        (Some(arn), Some(sdk)) => IntentClient::with_secret_source(
            intent_config(env)?,
            std::sync::Arc::new(
                aws_wiring::aws_reqwest_client()
                    .and_then(|http| aws_wiring::SecretsManagerSecret::new(sdk, &http, arn))
                    .map_err(|error| format!("the Intent client secret cannot be read: {error}"))?,
            ),
        ),
        _ => {
            let without_arn = |name: &str| match name {
                "INTENT_CLIENT_SECRET_ARN" => None,
                name => env(name),
            };
            IntentClient::new(intent_config(&without_arn)?)
        }
    };
    client.map_err(|error| format!("the Intent client could not be set up: {error}"))
}

fn intent_config(env: &Lookup<'_>) -> Result<IntentConfig, String> {
    IntentConfig::from_settings(&reader(env))
        .map_err(|error| format!("Intent is not configured: {error} (needs {INTENT_VARIABLES})"))
}

/// `EVENT_SOURCE` (default `oncall-bridge.interventions`).
pub fn event_source(env: &Lookup<'_>) -> String {
    var(env, "EVENT_SOURCE").unwrap_or_else(|| "oncall-bridge.interventions".into())
}

/// `S3_FORCE_PATH_STYLE` (`true` for local S3 emulators).
pub fn s3_force_path_style(env: &Lookup<'_>) -> Result<bool, String> {
    reader(env)
        .flag("S3_FORCE_PATH_STYLE", false)
        .map_err(|error| error.to_string())
}

/// The forwarder's limits: `MAX_DOCUMENT_BYTES`, `CLOSED_FILE_RETENTION_DAYS`, read as
/// the functions read them.
pub fn document_policy(env: &Lookup<'_>) -> Result<DocumentPolicy, String> {
    aws_wiring::document_policy(&reader(env)).map_err(|error| error.to_string())
}

/// The AWS configuration from the standard chain, with a region and credentials (checked
/// here, so that their absence is one clear line rather than an SDK error later).
pub async fn aws_config() -> Result<aws_config::SdkConfig, String> {
    use aws_credential_types::provider::ProvideCredentials;
    let sdk = aws_wiring::load_aws_config().await;
    if sdk.region().is_none() {
        return Err("no AWS region: set AWS_REGION (or a profile's region)".into());
    }
    let Some(credentials) = sdk.credentials_provider() else {
        return Err("no AWS credentials provider".into());
    };
    if credentials.provide_credentials().await.is_err() {
        return Err("no AWS credentials found (standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance or task role)".into());
    }
    Ok(sdk)
}

/// The document forwarder as its function builds it, from the same variables.
pub fn forwarder(
    sdk: &aws_config::SdkConfig,
    env: &Lookup<'_>,
    table: String,
    policy: DocumentPolicy,
) -> Result<DocumentForwarder<oncall_domain::ports::OperatorClock>, String> {
    let event_bus_name = var(env, "EVENT_BUS_NAME")
        .ok_or("dlq replay needs EVENT_BUS_NAME (the domain event bus)")?;
    let config = ForwarderConfig {
        core: aws_wiring::CoreConfig {
            table_name: table,
            event_bus_name,
            event_source: event_source(env),
            intent: intent_config(env)?,
            intent_secret_arn: var(env, "INTENT_CLIENT_SECRET_ARN"),
        },
        policy,
        s3_force_path_style: s3_force_path_style(env)?,
    };
    // The operator's machine: its clock may be off (claims allow for it).
    DocumentForwarder::new(sdk, config)
        .map(|forwarder| forwarder.with_clock(oncall_domain::ports::OperatorClock))
        .map_err(|error| format!("the forwarder could not be set up: {error}"))
}
