//! `POST /oauth/token`: OAuth2 client credentials, credentials in the form body.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::http_util::{header_str, oauth_error, parse_media_type};

pub(super) async fn issue(State(shared): State<AppState>, request: Request) -> Response {
    let form_type = header_str(request.headers(), header::CONTENT_TYPE)
        .and_then(parse_media_type)
        .is_some_and(|m| m.essence == "application/x-www-form-urlencoded");
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let Ok(Form(pairs)) = Form::<Vec<(String, String)>>::from_request(request, &()).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not a valid application/x-www-form-urlencoded form",
        );
    };
    let mut params: HashMap<&str, &str> = HashMap::new();
    for (name, value) in &pairs {
        if params.insert(name, value).is_some() {
            // RFC 6749 §3.2: request parameters must not be included more than once.
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a parameter is repeated",
            );
        }
    }
    match params.get("grant_type") {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
        Some(&"client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            );
        }
    }
    let config = &shared.config;
    let id_ok = params.get("client_id") == Some(&config.client_id.as_str());
    let secret_ok = params.get("client_secret") == Some(&config.client_secret.as_str());
    if !(id_ok && secret_ok) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let token = shared.issue_token();
    let mut response = (
        StatusCode::OK,
        axum::Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": config.token_ttl.as_secs(),
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
