//! The partner API functions' hosting (HTTP API, payload 2.0, JWT authorizer):
//! configuration from the environment, the adapters wired once per execution environment,
//! and the partner API's router (the same one the local run serves) run by `lambda_http`,
//! with the caller identified from the JWT claims.

use aws_wiring::{CoreAdapters, CoreConfig};
use axum::http::request::Parts;
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::{IntentClient, IntentConfig};
use lambda_http::Error;
use lambda_http::request::RequestContext;
use oncall_domain::closure::ClosurePolicy;
use oncall_domain::ports::SystemClock;
pub use partner_api::Route;
use partner_api::{IdentifyCaller, PartnerApi, PartnerDirectory, RequestId};
use settings::Settings;
use std::sync::Arc;

pub type LambdaPartnerApi =
    PartnerApi<DynamoDbStore, IntentClient, EventBridgePublisher, SystemClock>;

/// Everything a partner function needs from its environment.
pub struct FunctionConfig {
    pub core: CoreConfig,
    pub partners: PartnerDirectory,
    pub closure: ClosurePolicy,
}

impl FunctionConfig {
    /// The shared variables (`TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, `INTENT_*`),
    /// `PARTNER_CONTRACTS` and `CLOSED_FILE_RETENTION_DAYS` (default 395).
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        let mut core = CoreConfig::from_settings(settings)?;
        core.intent = request_path_budget(settings, core.intent);
        Ok(Self {
            core,
            partners: PartnerDirectory::from_json(&settings.required("PARTNER_CONTRACTS")?)?,
            closure: ClosurePolicy::with_retention_days(aws_wiring::retention_days(settings)?),
        })
    }
}

/// Inside an API request, Intent gets a shorter budget than in background runs, so the
/// partner always has an answer (202 "pending") well within API Gateway's 30 s: unless
/// set explicitly, 3 attempts of at most 5 s each with at most 2 s of backoff.
fn request_path_budget(settings: &Settings, mut intent: IntentConfig) -> IntentConfig {
    if settings.text("INTENT_MAX_ATTEMPTS").is_none() {
        intent.retry.max_attempts = 3;
    }
    if settings.text("INTENT_REQUEST_TIMEOUT_MS").is_none() {
        intent.request_timeout = std::time::Duration::from_secs(5);
        intent.connect_timeout = std::time::Duration::from_secs(2);
    }
    intent.retry.max_total_delay = intent
        .retry
        .max_total_delay
        .min(std::time::Duration::from_secs(2));
    intent
}

/// Builds the API once per execution environment: one SDK config, one HTTP client, one
/// Intent token cache.
pub fn build_api(
    sdk: &aws_wiring::SdkConfig,
    config: FunctionConfig,
) -> Result<LambdaPartnerApi, Error> {
    let CoreAdapters {
        store,
        intent,
        events,
    } = CoreAdapters::new(sdk, config.core)?;
    Ok(PartnerApi {
        store,
        intent,
        events,
        clock: SystemClock,
        partners: config.partners,
        closure: config.closure,
    })
}

/// A function's whole `main`: JSON tracing, configuration, clients, then the runtime loop
/// serving `routes` of the partner API's router.
pub async fn run(routes: &'static [Route]) -> Result<(), Error> {
    telemetry::init_tracing();
    let config = FunctionConfig::from_settings(&Settings::from_process())?;
    let sdk = aws_wiring::load_aws_config().await;
    let api = build_api(&sdk, config)?;
    lambda_http::run(router(Arc::new(api), routes)).await
}

/// The partner API's router as a Lambda function serves it: callers identified by API
/// Gateway's JWT authorizer, the Lambda request id on every log line.
pub fn router(api: Arc<LambdaPartnerApi>, routes: &[Route]) -> axum::Router {
    partner_api::router(api, JwtAuthorizer, routes)
        .layer(axum::middleware::map_request(lambda_request_id))
}

/// The partner's client id, from the JWT authorizer's claims (Cognito client-credentials
/// access tokens carry `client_id`).
pub struct JwtAuthorizer;

impl IdentifyCaller for JwtAuthorizer {
    fn caller(&self, request: &Parts) -> Option<String> {
        match request.extensions.get::<RequestContext>()? {
            RequestContext::ApiGatewayV2(context) => context
                .authorizer
                .as_ref()?
                .jwt
                .as_ref()?
                .claims
                .get("client_id")
                .cloned(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// Puts the Lambda request id where the router's span finds it.
async fn lambda_request_id<B>(mut request: http::Request<B>) -> http::Request<B> {
    let id = request
        .extensions()
        .get::<lambda_http::Context>()
        .map(|context| context.request_id.clone());
    if let Some(id) = id {
        request.extensions_mut().insert(RequestId(id));
    }
    request
}
