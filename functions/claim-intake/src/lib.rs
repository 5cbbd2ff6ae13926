//! Claim intake behind API Gateway (HTTP API, payload v2, JWT authorizer):
//! `POST /interventions` and `GET /interventions/{reference}?contractReference=…`.

use bytes::Bytes;
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::{IntentClient, IntentConfig};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use oncall_domain::ports::SystemClock;
use partner_api::{ApiError, PartnerApi, PartnerDirectory};
use tracing::Instrument;

pub type IntakeApi = PartnerApi<DynamoDbStore, IntentClient, EventBridgePublisher, SystemClock>;

/// Everything the function needs from its environment.
pub struct IntakeConfig {
    pub table_name: String,
    pub event_bus_name: String,
    pub event_source: String,
    pub partners: PartnerDirectory,
    pub intent: IntentConfig,
}

impl IntakeConfig {
    /// `TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE` (default
    /// `oncall-bridge.interventions`), `PARTNER_CONTRACTS`, and the `INTENT_*` variables.
    pub fn from_env() -> Result<Self, Error> {
        Ok(Self {
            table_name: bridge_runtime::required_env("TABLE_NAME")?,
            event_bus_name: bridge_runtime::required_env("EVENT_BUS_NAME")?,
            event_source: bridge_runtime::env_or("EVENT_SOURCE", "oncall-bridge.interventions"),
            partners: PartnerDirectory::from_json(&bridge_runtime::required_env(
                "PARTNER_CONTRACTS",
            )?)?,
            intent: IntentConfig::from_env()?,
        })
    }
}

/// Builds the API once per execution environment: one SDK config, one HTTP client, one
/// Intent token cache.
pub fn build_api(
    sdk: &bridge_runtime::SdkConfig,
    config: IntakeConfig,
) -> Result<IntakeApi, Error> {
    Ok(PartnerApi {
        store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name),
        intent: IntentClient::new(config.intent)?,
        events: EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(sdk),
            config.event_bus_name,
            config.event_source,
        ),
        clock: SystemClock,
        partners: config.partners,
    })
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

fn into_lambda(response: http::Response<Vec<u8>>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// One invocation: route, call the partner API, answer. One span per invocation, with the
/// file reference recorded once known.
pub async fn handle(api: &IntakeApi, request: Request) -> Result<Response<Body>, Error> {
    let span = tracing::info_span!(
        "invocation",
        request_id = %request_id(&request),
        route = tracing::field::Empty,
        reference = tracing::field::Empty,
        contract = tracing::field::Empty,
    );
    async move {
        let caller = caller_of(&request);
        let route = route_key(&request)
            .unwrap_or_else(|| format!("{} {}", request.method(), request.uri().path()));
        tracing::Span::current().record("route", route.as_str());
        let response = match route.as_str() {
            "POST /interventions" => {
                let body: Bytes = match request.body() {
                    Body::Empty => Bytes::new(),
                    Body::Text(text) => Bytes::copy_from_slice(text.as_bytes()),
                    Body::Binary(bytes) => Bytes::copy_from_slice(bytes),
                    _ => Bytes::new(),
                };
                api.open_intervention(caller.as_deref(), request.headers(), &body)
                    .await
            }
            "GET /interventions/{reference}" => {
                let reference = request
                    .path_parameters_ref()
                    .and_then(|p| p.first("reference"))
                    .map(str::to_string);
                let contract = request
                    .query_string_parameters_ref()
                    .and_then(|q| q.first("contractReference"))
                    .map(str::to_string);
                match reference {
                    Some(reference) => {
                        api.get_intervention(caller.as_deref(), &reference, contract.as_deref())
                            .await
                    }
                    None => ApiError::NoRoute {
                        method: request.method().to_string(),
                        path: request.uri().path().to_string(),
                    }
                    .into_response(),
                }
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
