//! Every error of the partner API, mapped once to an HTTP status and an RFC 9457
//! `application/problem+json` body.

use http::StatusCode;
use oncall_domain::{FieldError, FileState};
use serde_json::{Value, json};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no authenticated partner on the request")]
    Unauthenticated,
    #[error("{}", forbidden_contract(.contract))]
    ForbiddenContract { contract: String },
    #[error("{}; send application/json (UTF-8)", describe_media_type(.found))]
    UnsupportedMediaType { found: Option<String> },
    #[error("the body is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("the body broke off before its end; send the request again")]
    UnreadableBody,
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the request has {} invalid field(s)", .errors.len())]
    Invalid { errors: Vec<FieldError> },
    #[error("{0}")]
    Unprocessable(String),
    #[error("missing query parameter {0}")]
    MissingQuery(&'static str),
    /// `reference` and `contract` as [`repeatable`] gives them (empty: no contract given).
    #[error("{}", not_found_message(reference, contract))]
    NotFound { reference: String, contract: String },
    #[error("{message}")]
    Conflict { message: String, current: FileState },
    #[error("this caller may not {action}")]
    NotAllowed { action: &'static str },
    /// `path` as [`repeatable_path`] gives it.
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error(
        "the file store is unavailable; send the same request again (a request already stored is answered as its replay)"
    )]
    StoreUnavailable,
    #[error(
        "the request ran out of time (Intent or the file store too slow to answer); send the same request again (what was stored is answered as its replay)"
    )]
    OutOfTime,
    #[error("uploads cannot be signed right now; nothing was granted, try again")]
    UploadsUnavailable,
    #[error("internal error")]
    Internal,
}

/// What stands in an error's message for a value that is not an identifier.
const NOT_REPEATED: &str = "(not an identifier: not repeated)";

/// A value of the request as an error may repeat it: only an identifier; what a caller put
/// in its place may be personal data (a tenant's name, a phone number).
pub fn repeatable(text: &str) -> String {
    if oncall_domain::validation::is_safe_reference(text) {
        text.to_string()
    } else {
        NOT_REPEATED.to_string()
    }
}

/// A request path as an error may repeat it: each segment that is not an identifier
/// replaced (see [`repeatable`]).
pub fn repeatable_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.is_empty() {
                String::new()
            } else if oncall_domain::validation::is_safe_reference(segment) {
                segment.to_string()
            } else {
                "(…)".to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn not_found_message(reference: &str, contract: &str) -> String {
    if contract.is_empty() {
        format!("no intervention file {reference}")
    } else {
        format!("no intervention file {reference} under contract {contract}")
    }
}

/// The contract refused, named only when it is an identifier (never what could be personal
/// data put in its place).
fn forbidden_contract(contract: &str) -> String {
    if oncall_domain::validation::is_safe_reference(contract) {
        format!("contract {contract:?} is not one of this partner's contracts")
    } else {
        "the contract given is not one of this partner's contracts".to_string()
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::ForbiddenContract { .. } | ApiError::NotAllowed { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MalformedJson { .. }
            | ApiError::MissingQuery(_)
            | ApiError::UnreadableBody => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::StoreUnavailable | ApiError::UploadsUnavailable | ApiError::OutOfTime => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::ForbiddenContract { .. } => "forbidden-contract",
            ApiError::NotAllowed { .. } => "not-allowed",
            ApiError::UnsupportedMediaType { .. } => "unsupported-media-type",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnreadableBody => "unreadable-body",
            ApiError::MalformedJson { .. } => "malformed-json",
            ApiError::Invalid { .. } => "invalid-fields",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::MissingQuery(_) => "missing-query-parameter",
            ApiError::NotFound { .. } => "not-found",
            ApiError::Conflict { .. } => "conflict",
            ApiError::NoRoute { .. } => "no-route",
            ApiError::StoreUnavailable => "store-unavailable",
            ApiError::OutOfTime => "out-of-time",
            ApiError::UploadsUnavailable => "uploads-unavailable",
            ApiError::Internal => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "Authentication required",
            ApiError::ForbiddenContract { .. } => "Contract not allowed",
            ApiError::NotAllowed { .. } => "Not allowed",
            ApiError::UnsupportedMediaType { .. } => "Unsupported media type",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnreadableBody => "Unreadable body",
            ApiError::MalformedJson { .. } => "Malformed JSON",
            ApiError::Invalid { .. } => "Invalid fields",
            ApiError::Unprocessable(_) => "Request cannot be applied",
            ApiError::MissingQuery(_) => "Missing query parameter",
            ApiError::NotFound { .. } => "Not found",
            ApiError::Conflict { .. } => "Conflict with the file's current state",
            ApiError::NoRoute { .. } => "No such route",
            ApiError::StoreUnavailable | ApiError::UploadsUnavailable => "Service unavailable",
            ApiError::OutOfTime => "Out of time",
            ApiError::Internal => "Internal error",
        }
    }

    /// The RFC 9457 problem document.
    pub fn to_problem(&self) -> Value {
        let mut problem = json!({
            "type": format!("urn:oncall-bridge:problem:{}", self.slug()),
            "title": self.title(),
            "status": self.status().as_u16(),
            "detail": self.to_string(),
        });
        match self {
            ApiError::MalformedJson { line, column, .. } => {
                problem["line"] = json!(line);
                problem["column"] = json!(column);
            }
            ApiError::Invalid { errors } => problem["errors"] = json!(errors),
            ApiError::Conflict { current, .. } => problem["currentState"] = json!(current),
            ApiError::PayloadTooLarge { limit, .. } => problem["limit"] = json!(limit),
            _ => {}
        }
        problem
    }

    pub fn into_response(self) -> http::Response<Vec<u8>> {
        let mut builder = http::Response::builder()
            .status(self.status())
            .header(http::header::CONTENT_TYPE, PROBLEM_JSON);
        if matches!(
            self,
            ApiError::StoreUnavailable | ApiError::UploadsUnavailable | ApiError::OutOfTime
        ) {
            builder = builder.header(http::header::RETRY_AFTER, "5");
        }
        if matches!(self, ApiError::Unauthenticated) {
            // RFC 6750: how to authenticate.
            builder = builder.header(http::header::WWW_AUTHENTICATE, "Bearer");
        }
        builder
            .body(serde_json::to_vec(&self.to_problem()).expect("problem documents serialise"))
            .expect("a valid response")
    }
}

/// The content type a request sent, in words (bounded: it is the caller's input).
fn describe_media_type(found: &Option<String>) -> String {
    match found {
        None => "the request has no Content-Type".to_string(),
        Some(found) => {
            let shown: String = found
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            format!("content type {shown} is not supported")
        }
    }
}

impl From<oncall_domain::InputError> for ApiError {
    fn from(error: oncall_domain::InputError) -> Self {
        match error {
            oncall_domain::InputError::Syntax {
                line,
                column,
                message,
            } => ApiError::MalformedJson {
                line,
                column,
                message,
            },
            oncall_domain::InputError::Invalid(errors) => ApiError::Invalid { errors },
        }
    }
}

impl From<oncall_domain::ports::StoreError> for ApiError {
    fn from(error: oncall_domain::ports::StoreError) -> Self {
        match error {
            oncall_domain::ports::StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt stored file");
                ApiError::Internal
            }
            other => {
                tracing::error!(error = %other, "file store unavailable");
                ApiError::StoreUnavailable
            }
        }
    }
}
