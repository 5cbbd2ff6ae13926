//! The partner API functions' hosting (HTTP API, payload 2.0, JWT authorizer):
//! configuration from the environment, the adapters wired once per execution environment,
//! and the partner API's router (the same one the local run serves) run by `lambda_http`,
//! with the caller identified from the JWT claims.

use aws_wiring::{CoreAdapters, CoreConfig, S3UploadSigner};
use axum::http::request::Parts;
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::IntentClient;
use lambda_http::Error;
use lambda_http::request::RequestContext;
use oncall_domain::closure::ClosurePolicy;
use oncall_domain::ports::{PresignUpload, PresignedUpload, SystemClock};
use oncall_domain::uploads::UploadPolicy;
pub use partner_api::Route;
use partner_api::{Handled, IdentifyCaller, Operation, PartnerApi, PartnerDirectory};
use settings::Settings;
use std::sync::Arc;
use telemetry::intent::MeteredIntent;
use telemetry::metrics::{Invocation, Metrics, MetricsSink, Unit};

pub type LambdaPartnerApi = PartnerApi<
    DynamoDbStore,
    MeteredIntent<IntentClient>,
    EventBridgePublisher,
    SystemClock,
    BucketUploads,
>;

/// Claims by `Outcome` (`created`, `replayed`, `conflict`, `rejected`, `error`): one per
/// `POST /interventions`.
pub const CLAIMS: &str = "Claims";
/// Closures by `Outcome` (`done`, `partial_repair`, `canceled`, `replayed`, `conflict`,
/// `rejected`, `error`): one per `POST /interventions/{reference}/closure`.
pub const CLOSURES: &str = "Closures";
/// What a claim or a closure came to.
pub const OUTCOME: &str = "Outcome";

/// Everything a partner function needs from its environment.
pub struct FunctionConfig {
    pub core: CoreConfig,
    pub partners: PartnerDirectory,
    pub closure: ClosurePolicy,
    pub uploads: UploadPolicy,
    /// `DOCUMENTS_BUCKET`: where partners' quitus uploads go (required by the function
    /// serving `POST /interventions/{reference}/documents`).
    pub documents_bucket: Option<String>,
    /// `S3_FORCE_PATH_STYLE`: path-style S3 URLs (local emulators).
    pub s3_force_path_style: bool,
}

impl FunctionConfig {
    /// The shared variables (`TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, `INTENT_*`),
    /// `PARTNER_CONTRACTS`, `CLOSED_FILE_RETENTION_DAYS` (default 395) and
    /// `CLOSURES_WRITTEN_UNREAD` (default true).
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        let mut core = CoreConfig::from_settings(settings)?;
        core.intent = core.intent.for_partner_requests(settings);
        Ok(Self {
            core,
            partners: PartnerDirectory::from_json(&settings.required("PARTNER_CONTRACTS")?)?,
            closure: ClosurePolicy {
                written_unread: settings.flag("CLOSURES_WRITTEN_UNREAD", true)?,
                ..ClosurePolicy::with_retention_days(aws_wiring::retention_days(settings)?)
            },
            uploads: aws_wiring::upload_policy(settings)?,
            documents_bucket: settings.text("DOCUMENTS_BUCKET"),
            s3_force_path_style: settings.flag("S3_FORCE_PATH_STYLE", false)?,
        })
    }
}

/// Partners' uploads, signed for the documents bucket (local work: no request, no S3
/// client; see `aws_wiring::S3UploadSigner`).
pub struct BucketUploads {
    signer: Result<S3UploadSigner, String>,
}

impl BucketUploads {
    pub fn new(sdk: &aws_wiring::SdkConfig, config: &FunctionConfig) -> Self {
        let signer = match &config.documents_bucket {
            Some(bucket) => S3UploadSigner::new(sdk, bucket, config.s3_force_path_style),
            None => Err("DOCUMENTS_BUCKET is not set for this function".into()),
        };
        Self { signer }
    }
}

impl PresignUpload for BucketUploads {
    async fn presign_upload(
        &self,
        key: &str,
        size: u64,
        lifetime: std::time::Duration,
    ) -> Result<PresignedUpload, String> {
        let signer = self.signer.as_ref().map_err(Clone::clone)?;
        signer
            .presign_put(key, size, lifetime, std::time::SystemTime::now())
            .await
    }
}

/// Builds the API once per execution environment: one SDK config, one HTTP client, one
/// Intent token cache.
pub fn build_api(
    sdk: &aws_wiring::SdkConfig,
    config: FunctionConfig,
) -> Result<LambdaPartnerApi, Error> {
    let uploads = BucketUploads::new(sdk, &config);
    let CoreAdapters {
        store,
        intent,
        events,
        ..
    } = CoreAdapters::new(sdk, config.core)?;
    Ok(PartnerApi {
        store,
        intent: MeteredIntent::new(intent),
        events,
        clock: SystemClock,
        uploads,
        partners: config.partners,
        closure: config.closure,
        upload_policy: config.uploads,
        request_limit: partner_api::REQUEST_LIMIT,
    })
}

/// A function's whole `main`: JSON tracing, configuration, clients, then the runtime loop
/// serving `routes` of the partner API's router.
pub async fn run(routes: &'static [Route]) -> Result<(), Error> {
    telemetry::init_tracing();
    let config = FunctionConfig::from_settings(&Settings::from_process())?;
    if routes.contains(&Route::RequestDocumentUpload) && config.documents_bucket.is_none() {
        return Err("DOCUMENTS_BUCKET must name the documents bucket: this function signs partners' uploads".into());
    }
    let sdk = aws_wiring::lambda_aws_config()?;
    let api = build_api(&sdk, config)?;
    lambda_http::run(router(Arc::new(api), routes)).await
}

/// The partner API's router as a Lambda function serves it: callers identified by API
/// Gateway's JWT authorizer, metrics on standard output.
pub fn router(api: Arc<LambdaPartnerApi>, routes: &[Route]) -> axum::Router {
    router_with_metrics(api, routes, MetricsSink::stdout())
}

/// [`router`], its metrics written to `metrics`. Each request is an invocation of the
/// function serving `routes` ([`function_name`]): its Intent calls are measured, and a
/// claim or a closure is counted by outcome, with the Lambda request and X-Ray trace ids.
/// (Lambda's runtime puts the same ids on every log line, from the span it opens around
/// the invocation.)
pub fn router_with_metrics(
    api: Arc<LambdaPartnerApi>,
    routes: &[Route],
    metrics: MetricsSink,
) -> axum::Router {
    let function = function_name(routes);
    partner_api::router(api, JwtAuthorizer, routes).layer(axum::middleware::from_fn_with_state(
        (function, metrics),
        invocation,
    ))
}

/// The function serving `routes`, as `template.yaml` deploys them (its metrics'
/// `Function`): `claim-intake` serves the claims and their reading,
/// `intervention-closure` the closures and the upload URLs.
pub fn function_name(routes: &[Route]) -> &'static str {
    match routes.first() {
        Some(Route::OpenIntervention | Route::GetIntervention) => "claim-intake",
        Some(Route::CloseIntervention | Route::RequestDocumentUpload) => "intervention-closure",
        None => "partner-api",
    }
}

/// One request as an invocation of `function`, for its metrics.
async fn invocation(
    axum::extract::State((function, sink)): axum::extract::State<(&'static str, MetricsSink)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let invocation = match request.extensions().get::<lambda_http::Context>() {
        Some(context) => Invocation::new(
            function,
            &context.request_id,
            context.xray_trace_id.as_deref(),
            sink,
        ),
        None => Invocation::new(function, "", None, sink),
    };
    let response = invocation.clone().run(next.run(request)).await;
    if let Some(handled) = response.extensions().get::<Handled>() {
        let name = match handled.operation {
            Operation::Claim => CLAIMS,
            Operation::Closure => CLOSURES,
        };
        invocation.emit(&Metrics::new().dimension(OUTCOME, handled.outcome).metric(
            name,
            Unit::Count,
            1,
            &[OUTCOME],
        ));
    }
    response
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_counted_under_the_function_that_serves_it() {
        assert_eq!(
            function_name(&[Route::OpenIntervention, Route::GetIntervention]),
            "claim-intake"
        );
        assert_eq!(
            function_name(&[Route::CloseIntervention, Route::RequestDocumentUpload]),
            "intervention-closure"
        );
    }
}
