//! `POST /api/operations/v2/interventions/logs`: one event in an intervention's log.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, authorize, require_accept, validation_error};
use crate::http_util::{api_error, header_str, parse_media_type};
use crate::state::{LogEvent, LogOutcome};
use crate::validation::validate_log;

pub(super) async fn publish(State(shared): State<AppState>, request: Request) -> Response {
    if let Some(response) = authorize(&shared, request.headers()) {
        return response;
    }
    if let Err(message) =
        check_json_content_type(header_str(request.headers(), header::CONTENT_TYPE))
    {
        return api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
            Vec::new(),
        );
    }
    if let Some(response) = require_accept(request.headers(), "application/json+hal") {
        return response;
    }
    // The pipeline already buffered this JSON body (bounded); this only collects it.
    let bytes = match axum::body::to_bytes(request.into_body(), usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the body could not be read",
                Vec::new(),
            );
        }
    };
    let body: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(error) => {
            // serde_json's message names the line and column, never the content.
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {error}"),
                Vec::new(),
            );
        }
    };
    let details = validate_log(&body);
    if !details.is_empty() {
        return validation_error("the intervention log is invalid", details);
    }
    // Validation guarantees these are strings.
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
    let (reference, contract_reference) = (text("reference"), text("contractReference"));
    let (status, event, event_date) = (text("status"), text("event"), text("eventDate"));
    let outcome = shared.apply_log(
        LogEvent {
            reference: &reference,
            contract_reference: &contract_reference,
            status: &status,
            event: &event,
            event_date: &event_date,
        },
        body,
    );
    match outcome {
        LogOutcome::Accepted => {
            shared.save().await;
            StatusCode::NO_CONTENT.into_response()
        }
        LogOutcome::NotFound => api_error(
            StatusCode::NOT_FOUND,
            "intervention_not_found",
            format!(
                "intervention {reference} (contract {contract_reference}) is not on the hub: \
                 its first event must have status open"
            ),
            Vec::new(),
        ),
        LogOutcome::Closed { status: current } => api_error(
            StatusCode::CONFLICT,
            "intervention_closed",
            format!(
                "intervention {reference} (contract {contract_reference}) is {current}: \
                 no further event is accepted"
            ),
            Vec::new(),
        ),
    }
}

/// `application/json`, optionally with `charset=utf-8`, and nothing else.
fn check_json_content_type(value: Option<&str>) -> Result<(), String> {
    let expected = "Content-Type must be application/json (optionally with charset=utf-8)";
    let media = value
        .and_then(parse_media_type)
        .ok_or_else(|| expected.to_owned())?;
    if media.essence != "application/json" {
        return Err(expected.to_owned());
    }
    for (name, value) in &media.params {
        match name.as_str() {
            "charset" if value.eq_ignore_ascii_case("utf-8") => {}
            "charset" => return Err("the only accepted charset is utf-8".to_owned()),
            _ => return Err(format!("unexpected Content-Type parameter `{name}`")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_json_content_type;

    #[test]
    fn json_content_types() {
        assert!(check_json_content_type(Some("application/json")).is_ok());
        assert!(check_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_json_content_type(Some("Application/JSON;charset=\"UTF-8\"")).is_ok());
        assert!(check_json_content_type(Some("application/json; charset=latin1")).is_err());
        assert!(check_json_content_type(Some("application/json; version=2")).is_err());
        assert!(check_json_content_type(Some("text/plain")).is_err());
        assert!(check_json_content_type(Some("application/json+hal")).is_err());
        assert!(check_json_content_type(None).is_err());
    }
}
