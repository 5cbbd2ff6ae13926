//! Small HTTP helpers: media types, Accept negotiation, error bodies.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// One problem in a request, reported in an API error's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Detail {
    pub field: String,
    pub message: String,
}

impl Detail {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Detail {
        Detail {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An API error in Intent's format: `{code, message, details}`.
pub(crate) fn api_error(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    details: Vec<Detail>,
) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message.into(), "details": details })),
    )
        .into_response()
}

/// An OAuth2 error: `{error, error_description}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"intent\""),
        );
    }
    response
}

/// A JSON body with a given content type (HAL answers use `application/json+hal`).
pub(crate) fn json_with_type(
    status: StatusCode,
    body: &serde_json::Value,
    content_type: &'static str,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A parsed media type: lowercase `type/subtype` and its parameters (lowercase names,
/// unquoted values).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `type/subtype; name=value; …`. None when it is not of that shape.
pub(crate) fn parse_media_type(value: &str) -> Option<MediaType> {
    let mut parts = value.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    if kind.is_empty() || subtype.is_empty() || !is_token(kind) || !is_token(subtype) {
        return None;
    }
    let mut params = Vec::new();
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, raw) = part.split_once('=')?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || !is_token(&name) {
            return None;
        }
        let raw = raw.trim();
        let value = if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
            raw[1..raw.len() - 1].to_owned()
        } else {
            raw.to_owned()
        };
        params.push((name, value));
    }
    Some(MediaType { essence, params })
}

fn is_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// True when the `Accept` header lists `wanted` (exactly, not through a wildcard) with a
/// non-zero quality.
pub(crate) fn accepts(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(parse_media_type)
        .any(|m| {
            let q_zero = m
                .param("q")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0);
            m.essence == wanted && !q_zero
        })
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay as they are).
pub(crate) fn encode_query_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_parsing() {
        let m = parse_media_type("Application/JSON; Charset=\"UTF-8\"").unwrap();
        assert_eq!(m.essence, "application/json");
        assert_eq!(m.param("charset"), Some("UTF-8"));
        assert!(parse_media_type("json").is_none());
        assert!(parse_media_type("application/json; charset").is_none());
    }

    #[test]
    fn accept_negotiation() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, application/json+hal;q=0.9"),
        );
        assert!(accepts(&headers, "application/json+hal"));
        assert!(!accepts(&headers, "application/json"));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json+hal;q=0"),
        );
        assert!(!accepts(&headers, "application/json+hal"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!accepts(&headers, "application/json+hal"));
    }

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query_component("a b/é"), "a%20b%2F%C3%A9");
    }
}
