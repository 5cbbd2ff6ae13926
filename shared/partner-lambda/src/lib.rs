//! API Gateway glue shared by the partner API functions (HTTP API, payload 2.0, JWT
//! authorizer): configuration from the environment, wiring of the adapters once per
//! execution environment, routing by route key, the caller's identity from the JWT claims,
//! and one tracing span per invocation.

use bridge_runtime::{CoreAdapters, CoreConfig};
use bytes::Bytes;
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::{IntentClient, IntentConfig};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, service_fn};
use oncall_domain::closure::ClosurePolicy;
use oncall_domain::ports::SystemClock;
use partner_api::{ApiError, PartnerApi, PartnerDirectory};
use tracing::Instrument;

pub type LambdaPartnerApi =
    PartnerApi<DynamoDbStore, IntentClient, EventBridgePublisher, SystemClock>;

/// The routes of the partner API; each function serves some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    OpenIntervention,
    GetIntervention,
    CloseIntervention,
}

impl Route {
    /// The HTTP API route key, as declared in `template.yaml`.
    pub fn key(self) -> &'static str {
        match self {
            Route::OpenIntervention => "POST /interventions",
            Route::GetIntervention => "GET /interventions/{reference}",
            Route::CloseIntervention => "POST /interventions/{reference}/closure",
        }
    }
}

/// Everything a partner function needs from its environment.
pub struct FunctionConfig {
    pub core: CoreConfig,
    pub partners: PartnerDirectory,
    pub closure: ClosurePolicy,
}

impl FunctionConfig {
    /// The shared variables (`TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, `INTENT_*`),
    /// `PARTNER_CONTRACTS` and `CLOSED_FILE_RETENTION_DAYS` (default 395).
    pub fn from_env() -> Result<Self, Error> {
        let mut core = CoreConfig::from_env()?;
        core.intent = request_path_budget(core.intent);
        Ok(Self {
            core,
            partners: PartnerDirectory::from_json(&bridge_runtime::required_env(
                "PARTNER_CONTRACTS",
            )?)?,
            closure: ClosurePolicy::with_retention_days(bridge_runtime::retention_days()?),
        })
    }
}

/// Inside an API request, Intent gets a shorter budget than in background runs, so the
/// partner always has an answer (202 "pending") well within API Gateway's 30 s: unless
/// set explicitly, 3 attempts of at most 5 s each with at most 2 s of backoff.
fn request_path_budget(mut intent: IntentConfig) -> IntentConfig {
    if std::env::var("INTENT_MAX_ATTEMPTS").is_err() {
        intent.retry.max_attempts = 3;
    }
    if std::env::var("INTENT_REQUEST_TIMEOUT_MS").is_err() {
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
    sdk: &bridge_runtime::SdkConfig,
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
/// serving `routes`.
pub async fn run(routes: &'static [Route]) -> Result<(), Error> {
    bridge_runtime::init_tracing();
    let sdk = bridge_runtime::load_aws_config().await;
    let api = build_api(&sdk, FunctionConfig::from_env()?)?;
    let api = &api;
    lambda_http::run(service_fn(move |request| handle(api, routes, request))).await
}

/// The partner's client id, from the JWT authorizer's claims (Cognito client-credentials
/// access tokens carry `client_id`).
pub fn caller_of(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
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

fn route_key(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.route_key.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn request_id(request: &Request) -> String {
    request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default()
}

fn body_bytes(request: &Request) -> Bytes {
    match request.body() {
        Body::Text(text) => Bytes::copy_from_slice(text.as_bytes()),
        Body::Binary(bytes) => Bytes::copy_from_slice(bytes),
        _ => Bytes::new(),
    }
}

fn path_parameter(request: &Request, name: &str) -> Option<String> {
    request
        .path_parameters_ref()
        .and_then(|parameters| parameters.first(name))
        .map(str::to_string)
}

fn query_parameter(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|parameters| parameters.first(name))
        .map(str::to_string)
}

fn into_lambda(response: http::Response<Vec<u8>>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// One invocation: route, call the partner API, answer. One span per invocation, with the
/// file reference recorded once known.
pub async fn handle(
    api: &LambdaPartnerApi,
    routes: &[Route],
    request: Request,
) -> Result<Response<Body>, Error> {
    let span = tracing::info_span!(
        "invocation",
        request_id = %request_id(&request),
        route = tracing::field::Empty,
        reference = tracing::field::Empty,
        contract = tracing::field::Empty,
    );
    async move {
        let caller = caller_of(&request);
        let caller = caller.as_deref();
        let key = route_key(&request).unwrap_or_default();
        tracing::Span::current().record("route", key.as_str());
        let route = routes.iter().copied().find(|route| route.key() == key);
        let reference = path_parameter(&request, "reference");
        let contract = query_parameter(&request, "contractReference");
        let response = match (route, reference) {
            (Some(Route::OpenIntervention), _) => {
                api.open_intervention(caller, request.headers(), &body_bytes(&request))
                    .await
            }
            (Some(Route::GetIntervention), Some(reference)) => {
                api.get_intervention(caller, &reference, contract.as_deref())
                    .await
            }
            (Some(Route::CloseIntervention), Some(reference)) => {
                api.close_intervention(
                    caller,
                    &reference,
                    contract.as_deref(),
                    request.headers(),
                    &body_bytes(&request),
                )
                .await
            }
            _ => ApiError::NoRoute {
                method: request.method().to_string(),
                path: request.uri().path().to_string(),
            }
            .into_response(),
        };
        tracing::info!(status = response.status().as_u16(), "answered");
        Ok(into_lambda(response))
    }
    .instrument(span)
    .await
}
