//! The axum router: Intent's endpoints, the admin routes and the recording/fault pipeline
//! that every API request goes through.

mod admin;
mod documents;
mod logs;
mod operations;
mod token;

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::http_util::{Detail, api_error, header_str, oauth_error, parse_media_type};
use crate::server::KillSwitch;
use crate::state::{Shared, TokenProblem};
use crate::{Endpoint, FaultBehaviour, RecordedRequest};

type AppState = Arc<Shared>;

/// JSON bodies are buffered (to record them); larger ones are refused with 413.
const MAX_JSON_BODY: usize = 8 * 1024 * 1024;

/// Listing pages: `perPage` default and maximum.
const DEFAULT_PER_PAGE: usize = 100;
const MAX_PER_PAGE: usize = 100;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth/token", post(token::issue))
        .route("/api/operations/v2/interventions/logs", post(logs::publish))
        .route(
            "/api/documents/v1/documents",
            post(documents::publish)
                .layer(DefaultBodyLimit::disable())
                .get(documents::list),
        )
        .route("/api/operations/v2/operations", get(operations::list))
        .route(
            "/api/operations/v2/operations/{reference}",
            get(operations::get_one),
        )
        .route("/_simulator/requests", get(admin::requests))
        .route("/_simulator/logs", get(admin::logs))
        .route("/_simulator/documents", get(admin::documents))
        .route("/_simulator/interventions", get(admin::interventions))
        .route("/_simulator/expire-tokens", post(admin::expire_tokens))
        .route("/_simulator/reset", post(admin::reset))
        .route("/_simulator/faults", post(admin::inject_fault))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), pipeline))
        .with_state(shared)
}

async fn not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
        Vec::new(),
    )
}

/// Which fault endpoint a request belongs to. Only the documents path depends on the
/// method: `GET`/`HEAD` is the listing, anything else the upload.
fn classify(method: &Method, path: &str) -> Option<Endpoint> {
    match path {
        "/oauth/token" => Some(Endpoint::Token),
        "/api/operations/v2/interventions/logs" => Some(Endpoint::InterventionLogs),
        "/api/documents/v1/documents" if method == Method::GET || method == Method::HEAD => {
            Some(Endpoint::DocumentLookup)
        }
        "/api/documents/v1/documents" => Some(Endpoint::Documents),
        "/api/operations/v2/operations" => Some(Endpoint::Operations),
        p if p.starts_with("/api/operations/v2/operations/") => Some(Endpoint::Operations),
        _ => None,
    }
}

fn is_admin(path: &str) -> bool {
    path == "/_simulator" || path.starts_with("/_simulator/")
}

/// Records the request on arrival, applies a queued fault if one matches, runs the handler
/// and records the status answered. Bodies are never logged.
async fn pipeline(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if is_admin(&path) {
        return next.run(request).await;
    }
    let endpoint = classify(request.method(), &path);
    let method = request.method().to_string();
    let (parts, body) = request.into_parts();
    let header = |name| header_str(&parts.headers, name).map(str::to_owned);
    let content_type = header(header::CONTENT_TYPE);
    let is_json = content_type
        .as_deref()
        .and_then(parse_media_type)
        .is_some_and(|m| m.essence.contains("json"));

    let mut record = RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        status: 0,
        authorization: header(header::AUTHORIZATION),
        content_type,
        accept: header(header::ACCEPT),
        body: None,
        at: SystemTime::now(),
    };

    let body = if is_json {
        let declared_too_large = header_str(&parts.headers, header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len > MAX_JSON_BODY as u64);
        let read = if declared_too_large {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            axum::body::to_bytes(body, MAX_JSON_BODY)
                .await
                .map_err(|_| StatusCode::BAD_REQUEST)
        };
        match read {
            Ok(bytes) => {
                record.body = serde_json::from_slice(&bytes).ok();
                Body::from(bytes)
            }
            Err(status) => {
                record.status = status.as_u16();
                shared.record_arrival(record);
                tracing::info!(%method, %path, status = status.as_u16(), "request");
                return api_error(
                    status,
                    "invalid_body",
                    format!("the body could not be read (at most {MAX_JSON_BODY} bytes of JSON)"),
                    Vec::new(),
                );
            }
        }
    } else {
        body
    };
    let request = Request::from_parts(parts, body);
    let id = shared.record_arrival(record);

    let response = match endpoint.and_then(|e| shared.take_fault(e)) {
        None => next.run(request).await,
        Some(FaultBehaviour::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(FaultBehaviour::Status {
            code,
            retry_after,
            body,
        }) => fault_response(endpoint, code, retry_after.as_deref(), body),
        Some(FaultBehaviour::DropConnection) => {
            tracing::info!(%method, %path, "dropping the connection (injected fault)");
            let kill = request.extensions().get::<KillSwitch>().cloned();
            // The whole request first (a streamed upload too): the connection drops once
            // the client has sent it all, whatever the machine's load, as for a JSON body.
            let _ = axum::body::to_bytes(request.into_body(), usize::MAX).await;
            match kill {
                Some(kill) => {
                    kill.fire();
                    // The connection future is dropped by the server, and this one with it.
                    return std::future::pending().await;
                }
                None => no_connection(),
            }
        }
        Some(FaultBehaviour::ApplyThenDrop) => {
            let kill = request.extensions().get::<KillSwitch>().cloned();
            // The status the hub produced, though the client never gets it.
            let (response, status) = applied(&shared, id, next, request).await;
            tracing::info!(
                %method,
                %path,
                status,
                "applied, dropping the connection without the response (injected fault)"
            );
            match kill {
                Some(kill) => {
                    drop(response);
                    kill.fire();
                    return std::future::pending().await;
                }
                None => no_connection(),
            }
        }
        Some(FaultBehaviour::ApplyThenStatus(code)) => {
            // The status the hub produced, though the client gets the gateway's.
            let (_, status) = applied(&shared, id, next, request).await;
            tracing::info!(
                %method,
                %path,
                status,
                answered = code,
                "applied, answering another status instead (injected fault)"
            );
            return fault_response(endpoint, code, None, None);
        }
        Some(FaultBehaviour::ApplyThenDelay(delay)) => {
            // Recorded before the wait: the client may give up (and the server drop this
            // future) before the response goes out.
            let (response, status) = applied(&shared, id, next, request).await;
            tracing::info!(
                %method,
                %path,
                status,
                delay_ms = delay.as_millis() as u64,
                "applied, holding the response back (injected fault)"
            );
            tokio::time::sleep(delay).await;
            return response;
        }
    };
    let status = response.status().as_u16();
    shared.record_status(id, status);
    tracing::info!(%method, %path, status, "request");
    response
}

/// Handles `request` normally (the hub applies it) and records the status it produced as
/// request `id`'s, whatever the client gets instead.
async fn applied(shared: &Shared, id: u64, next: Next, request: Request) -> (Response, u16) {
    let response = next.run(request).await;
    let status = response.status().as_u16();
    shared.record_status(id, status);
    (response, status)
}

fn no_connection() -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "no_connection",
        "cannot drop a connection outside the simulator's server",
        Vec::new(),
    )
}

fn fault_response(
    endpoint: Option<Endpoint>,
    code: u16,
    retry_after: Option<&str>,
    body: Option<serde_json::Value>,
) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None if endpoint == Some(Endpoint::Token) => {
            oauth_error(status, "temporarily_unavailable", "injected fault")
        }
        None if status.is_success() => status.into_response(),
        None => api_error(
            status,
            "injected_fault",
            format!("injected fault: HTTP {code}"),
            Vec::new(),
        ),
    };
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Checks `Authorization: Bearer <token>`: a token issued by this simulator, neither expired
/// nor revoked. Returns the 401 to answer, if any.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let problem = shared
        .check_token(header_str(headers, header::AUTHORIZATION))
        .err()?;
    let message = match problem {
        TokenProblem::Missing => "missing Authorization header",
        TokenProblem::Malformed => "the Authorization header must be `Bearer <access_token>`",
        TokenProblem::Unknown => "invalid or revoked access token",
        TokenProblem::Expired => "the access token has expired",
    };
    let mut response = api_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message,
        Vec::new(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"intent\", error=\"invalid_token\""),
    );
    Some(response)
}

/// The 406 to answer unless the Accept header lists `wanted`.
fn require_accept(headers: &HeaderMap, wanted: &str) -> Option<Response> {
    if crate::http_util::accepts(headers, wanted) {
        None
    } else {
        Some(api_error(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!("the Accept header must include {wanted}"),
            Vec::new(),
        ))
    }
}

/// The query string as (name, value) pairs; None when it is malformed.
fn query_pairs(request: &Request) -> Option<Vec<(String, String)>> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(request.uri())
        .ok()
        .map(|q| q.0)
}

/// The last value of a query parameter.
fn query_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `page` (1-based, default 1) and `perPage` (1 to 100, default 100) of a listing; a bad
/// value is a validation detail.
fn page_params(params: &[(String, String)], details: &mut Vec<Detail>) -> (usize, usize) {
    let page = parse_bounded(
        query_param(params, "page"),
        "page",
        1,
        usize::MAX,
        1,
        details,
    );
    let per_page = parse_bounded(
        query_param(params, "perPage"),
        "perPage",
        1,
        MAX_PER_PAGE,
        DEFAULT_PER_PAGE,
        details,
    );
    (page, per_page)
}

fn parse_bounded(
    value: Option<&str>,
    field: &str,
    min: usize,
    max: usize,
    default: usize,
    details: &mut Vec<Detail>,
) -> usize {
    let Some(value) = value else {
        return default;
    };
    match value.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => n,
        _ if max == usize::MAX => {
            details.push(Detail::new(
                field,
                format!("must be an integer of at least {min}"),
            ));
            default
        }
        _ => {
            details.push(Detail::new(
                field,
                format!("must be an integer from {min} to {max}"),
            ));
            default
        }
    }
}

fn validation_error(message: &str, details: Vec<Detail>) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "validation_error",
        message,
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        let post = &Method::POST;
        let get = &Method::GET;
        assert_eq!(classify(post, "/oauth/token"), Some(Endpoint::Token));
        assert_eq!(
            classify(post, "/api/operations/v2/interventions/logs"),
            Some(Endpoint::InterventionLogs)
        );
        assert_eq!(
            classify(post, "/api/documents/v1/documents"),
            Some(Endpoint::Documents)
        );
        assert_eq!(
            classify(&Method::PUT, "/api/documents/v1/documents"),
            Some(Endpoint::Documents)
        );
        assert_eq!(
            classify(get, "/api/documents/v1/documents"),
            Some(Endpoint::DocumentLookup)
        );
        assert_eq!(
            classify(&Method::HEAD, "/api/documents/v1/documents"),
            Some(Endpoint::DocumentLookup)
        );
        assert_eq!(
            classify(get, "/api/operations/v2/operations"),
            Some(Endpoint::Operations)
        );
        assert_eq!(
            classify(get, "/api/operations/v2/operations/INTER-1"),
            Some(Endpoint::Operations)
        );
        assert_eq!(classify(get, "/_simulator/requests"), None);
        assert!(is_admin("/_simulator/requests"));
    }
}
