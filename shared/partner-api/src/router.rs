//! The partner API as one axum `Router`, whatever hosts it: `lambda_http` in the Lambda
//! functions (API Gateway's HTTP API, JWT authorizer) and `axum::serve` in the local run.
//! The host only says who the caller is ([`IdentifyCaller`]) and which routes it serves.

use crate::api::{Handled, MAX_BODY_BYTES, Operation, PartnerApi};
use crate::problem::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use oncall_domain::ports::{
    Clock, CloseFile, FinishDelivery, LoadFile, OpenFile, Outbox, PresignUpload,
    PublishDomainEvents, PublishToIntent, RecordDelivery, UploadGrants,
};
use std::sync::Arc;
use tracing::Instrument;

/// The routes of the partner API; each Lambda function serves some of them, the local run
/// all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    OpenIntervention,
    GetIntervention,
    CloseIntervention,
    RequestDocumentUpload,
}

impl Route {
    pub const ALL: [Route; 4] = [
        Route::OpenIntervention,
        Route::GetIntervention,
        Route::CloseIntervention,
        Route::RequestDocumentUpload,
    ];

    /// The method and path template, as declared in `template.yaml`'s HTTP API routes.
    pub fn key(self) -> &'static str {
        match self {
            Route::OpenIntervention => "POST /interventions",
            Route::GetIntervention => "GET /interventions/{reference}",
            Route::CloseIntervention => "POST /interventions/{reference}/closure",
            Route::RequestDocumentUpload => "POST /interventions/{reference}/documents",
        }
    }
}

/// What the partner API needs of a store.
pub trait PartnerStore:
    OpenFile + LoadFile + CloseFile + FinishDelivery + UploadGrants + 'static
{
}

impl<T> PartnerStore for T where
    T: OpenFile
        + LoadFile
        + CloseFile
        + RecordDelivery
        + FinishDelivery
        + Outbox
        + UploadGrants
        + 'static
{
}

/// Who is calling: the partner's client id, if the request is authenticated. API Gateway's
/// JWT authorizer (claims in the request context) in Lambda; static bearer tokens locally.
pub trait IdentifyCaller: Send + Sync + 'static {
    fn caller(&self, request: &Parts) -> Option<String>;
}

/// The request id a host may put in the request's extensions, for the span (`requestId`,
/// raised to the top of every log line). In Lambda the runtime's own span carries it, with
/// the X-Ray trace id.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What every handler works with.
pub struct ApiState<S, I, E, C, U, A> {
    pub api: Arc<PartnerApi<S, I, E, C, U>>,
    pub identify: Arc<A>,
}

impl<S, I, E, C, U, A> Clone for ApiState<S, I, E, C, U, A> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            identify: self.identify.clone(),
        }
    }
}

/// The caller, as the host identifies it (`None`: unauthenticated; each operation answers
/// 401 itself, in problem+json).
pub struct Caller(pub Option<String>);

impl<S, I, E, C, U, A> FromRequestParts<ApiState<S, I, E, C, U, A>> for Caller
where
    S: Send + Sync,
    I: Send + Sync,
    E: Send + Sync,
    C: Send + Sync,
    U: Send + Sync,
    A: IdentifyCaller,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState<S, I, E, C, U, A>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller(state.identify.caller(parts)))
    }
}

/// The file reference in the path. Percent-encoded bytes that are not UTF-8 are no
/// file's reference: given as one no file can have, so the operation answers its own 404
/// (as `application/problem+json`) instead of axum's plain-text 400.
pub struct FileReference(pub String);

/// What a path that does not decode stands for: no file can have it.
const NO_FILES_REFERENCE: &str = "\u{FFFD}";

impl<S: Send + Sync> FromRequestParts<S> for FileReference {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(FileReference(
            match Path::<String>::from_request_parts(parts, state).await {
                Ok(Path(reference)) => reference,
                Err(_) => NO_FILES_REFERENCE.to_string(),
            },
        ))
    }
}

/// `?contractReference=`; given more than once, the first counts. (axum's `Query` refuses
/// a repeated field with a plain-text 400, the one answer that would not be a problem
/// document; a query that does not decode at all is taken as none: the operation then
/// answers its own 400.)
pub struct ContractParam(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ContractParam {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| pairs)
            .unwrap_or_default();
        Ok(ContractParam(
            pairs
                .into_iter()
                .find(|(name, _)| name == "contractReference")
                .map(|(_, value)| value),
        ))
    }
}

fn into_axum(response: http::Response<Vec<u8>>) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// A refusal the router answers itself (a body too large), marked like the operation's.
fn counted(mut response: Response, operation: Operation) -> Response {
    let refused = Handled::refused(operation, response.status());
    response.extensions_mut().insert(refused);
    response
}

/// The body, read up to the API's limit (a larger one is answered 413 as problem+json,
/// without reading the rest; one that breaks off before its end, 400).
async fn limited_body(body: Body) -> Result<bytes::Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            let too_large = error
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let error = if too_large {
                ApiError::PayloadTooLarge {
                    size: MAX_BODY_BYTES + 1,
                    limit: MAX_BODY_BYTES,
                }
            } else {
                ApiError::UnreadableBody
            };
            into_axum(error.into_response())
        })
}

async fn open<S, I, E, C, U, A>(
    State(state): State<ApiState<S, I, E, C, U, A>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Body,
) -> Response
where
    S: PartnerStore,
    I: PublishToIntent + 'static,
    E: PublishDomainEvents + 'static,
    C: Clock + 'static,
    U: PresignUpload + 'static,
    A: IdentifyCaller,
{
    let body = match limited_body(body).await {
        Ok(body) => body,
        Err(too_large) => return counted(too_large, Operation::Claim),
    };
    into_axum(
        state
            .api
            .open_intervention(caller.as_deref(), &headers, &body)
            .await,
    )
}

async fn read<S, I, E, C, U, A>(
    State(state): State<ApiState<S, I, E, C, U, A>>,
    Caller(caller): Caller,
    FileReference(reference): FileReference,
    ContractParam(contract): ContractParam,
) -> Response
where
    S: PartnerStore,
    I: PublishToIntent + 'static,
    E: PublishDomainEvents + 'static,
    C: Clock + 'static,
    U: PresignUpload + 'static,
    A: IdentifyCaller,
{
    into_axum(
        state
            .api
            .get_intervention(caller.as_deref(), &reference, contract.as_deref())
            .await,
    )
}

async fn close<S, I, E, C, U, A>(
    State(state): State<ApiState<S, I, E, C, U, A>>,
    Caller(caller): Caller,
    FileReference(reference): FileReference,
    ContractParam(contract): ContractParam,
    headers: HeaderMap,
    body: Body,
) -> Response
where
    S: PartnerStore,
    I: PublishToIntent + 'static,
    E: PublishDomainEvents + 'static,
    C: Clock + 'static,
    U: PresignUpload + 'static,
    A: IdentifyCaller,
{
    let body = match limited_body(body).await {
        Ok(body) => body,
        Err(too_large) => return counted(too_large, Operation::Closure),
    };
    into_axum(
        state
            .api
            .close_intervention(
                caller.as_deref(),
                &reference,
                contract.as_deref(),
                &headers,
                &body,
            )
            .await,
    )
}

async fn request_upload<S, I, E, C, U, A>(
    State(state): State<ApiState<S, I, E, C, U, A>>,
    Caller(caller): Caller,
    FileReference(reference): FileReference,
    ContractParam(contract): ContractParam,
    headers: HeaderMap,
    body: Body,
) -> Response
where
    S: PartnerStore,
    I: PublishToIntent + 'static,
    E: PublishDomainEvents + 'static,
    C: Clock + 'static,
    U: PresignUpload + 'static,
    A: IdentifyCaller,
{
    let body = match limited_body(body).await {
        Ok(body) => body,
        Err(too_large) => return too_large,
    };
    into_axum(
        state
            .api
            .request_document_upload(
                caller.as_deref(),
                &reference,
                contract.as_deref(),
                &headers,
                &body,
            )
            .await,
    )
}

async fn no_route(request: Request) -> Response {
    into_axum(
        ApiError::NoRoute {
            method: request.method().to_string(),
            path: crate::problem::repeatable_path(request.uri().path()),
        }
        .into_response(),
    )
}

/// One span per request, carrying the request id (when the host gives one), the route and,
/// once known, the file reference; one log line with the status.
async fn request_span(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "invocation",
        requestId = tracing::field::Empty,
        method = %request.method(),
        reference = tracing::field::Empty,
        contract = tracing::field::Empty,
    );
    if let Some(RequestId(id)) = request.extensions().get::<RequestId>() {
        span.record("requestId", id.as_str());
    }
    async move {
        let response = next.run(request).await;
        tracing::info!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

/// The partner API serving `routes` for `api`, callers identified by `identify`.
pub fn router<S, I, E, C, U, A>(
    api: Arc<PartnerApi<S, I, E, C, U>>,
    identify: A,
    routes: &[Route],
) -> Router
where
    S: PartnerStore,
    I: PublishToIntent + 'static,
    E: PublishDomainEvents + 'static,
    C: Clock + 'static,
    U: PresignUpload + 'static,
    A: IdentifyCaller,
{
    let state = ApiState {
        api,
        identify: Arc::new(identify),
    };
    let mut router = Router::new();
    for route in routes {
        router = match route {
            Route::OpenIntervention => router.route("/interventions", post(open)),
            Route::GetIntervention => router.route("/interventions/{reference}", get(read)),
            Route::CloseIntervention => {
                router.route("/interventions/{reference}/closure", post(close))
            }
            Route::RequestDocumentUpload => {
                router.route("/interventions/{reference}/documents", post(request_upload))
            }
        };
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .with_state(state)
        .layer(axum::middleware::from_fn(request_span))
}
