//! `/_simulator/*`: JSON admin routes for the local demo. Not recorded, not faulted, not
//! authenticated (the simulator only ever runs locally).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::http_util::api_error;
use crate::{Endpoint, Fault, FaultBehaviour};

/// What the hub received, for a person looking at the local demo: method, path, query,
/// status and headers' shape, but no body (tenants' personal data) and no bearer token.
/// Tests read the full recording through `IntentSimulator::requests`.
pub(super) async fn requests(State(shared): State<AppState>) -> Response {
    let redacted: Vec<_> = shared
        .requests()
        .into_iter()
        .map(|mut request| {
            request.authorization =
                request
                    .authorization
                    .map(|value| match value.split_once(' ') {
                        Some((scheme, _)) => format!("{scheme} [redacted]"),
                        None => "[redacted]".to_owned(),
                    });
            request.body = request
                .body
                .map(|_| serde_json::Value::String("[redacted]".to_owned()));
            request
        })
        .collect();
    Json(redacted).into_response()
}

pub(super) async fn logs(State(shared): State<AppState>) -> Response {
    Json(shared.lock().logs.clone()).into_response()
}

pub(super) async fn documents(State(shared): State<AppState>) -> Response {
    Json(shared.lock().documents.clone()).into_response()
}

pub(super) async fn interventions(State(shared): State<AppState>) -> Response {
    Json(shared.interventions()).into_response()
}

pub(super) async fn expire_tokens(State(shared): State<AppState>) -> StatusCode {
    shared.expire_tokens();
    StatusCode::NO_CONTENT
}

pub(super) async fn reset(State(shared): State<AppState>) -> StatusCode {
    shared.reset();
    shared.save().await;
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultRequest {
    endpoint: Endpoint,
    status: Option<u16>,
    retry_after: Option<Value>,
    body: Option<Value>,
    delay_ms: Option<u64>,
    drop: Option<bool>,
    drop_after_apply: Option<bool>,
    delay_after_apply_ms: Option<u64>,
    times: Option<usize>,
}

const FAULT_SHAPE: &str = "{\"endpoint\":\"interventionLogs\"|\"token\"|\"documents\"|\
     \"documentLookup\"|\"operations\"|\"any\", then exactly one of \"status\" (with optional \
     \"retryAfter\", \"body\"), \"delayMs\", \"drop\":true, \"dropAfterApply\":true or \
     \"delayAfterApplyMs\", and optional \"times\" (default 1)}";

pub(super) async fn inject_fault(State(shared): State<AppState>, body: Bytes) -> Response {
    match parse_fault(&body) {
        Ok(fault) => {
            let answer = json!({
                "endpoint": fault.endpoint,
                "times": fault.times,
                "behaviour": format!("{:?}", fault.behaviour),
            });
            shared.inject(fault);
            (StatusCode::CREATED, Json(answer)).into_response()
        }
        Err(message) => api_error(
            StatusCode::BAD_REQUEST,
            "invalid_fault",
            message,
            Vec::new(),
        ),
    }
}

fn parse_fault(body: &[u8]) -> Result<Fault, String> {
    let request: FaultRequest =
        serde_json::from_slice(body).map_err(|e| format!("expected {FAULT_SHAPE}: {e}"))?;
    let retry_after = match request.retry_after {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err("retryAfter must be a string or a number".to_owned()),
    };
    let behaviours = [
        request.status.is_some(),
        request.delay_ms.is_some(),
        request.drop == Some(true),
        request.drop_after_apply == Some(true),
        request.delay_after_apply_ms.is_some(),
    ];
    if behaviours.iter().filter(|b| **b).count() != 1 {
        return Err(format!(
            "give exactly one of status, delayMs, drop:true, dropAfterApply:true or \
             delayAfterApplyMs; expected {FAULT_SHAPE}"
        ));
    }
    let behaviour = if let Some(code) = request.status {
        if !(100..=999).contains(&code) {
            return Err("status must be an HTTP status code".to_owned());
        }
        FaultBehaviour::Status {
            code,
            retry_after,
            body: request.body,
        }
    } else if let Some(ms) = request.delay_ms {
        FaultBehaviour::Delay(Duration::from_millis(ms))
    } else if let Some(ms) = request.delay_after_apply_ms {
        FaultBehaviour::ApplyThenDelay(Duration::from_millis(ms))
    } else if request.drop_after_apply == Some(true) {
        FaultBehaviour::ApplyThenDrop
    } else {
        FaultBehaviour::DropConnection
    };
    let times = request.times.unwrap_or(1);
    if times == 0 {
        return Err("times must be at least 1".to_owned());
    }
    Ok(Fault {
        endpoint: request.endpoint,
        behaviour,
        times,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_fault_kind() {
        let status = parse_fault(
            br#"{"endpoint":"interventionLogs","status":503,"retryAfter":"1","times":2}"#,
        )
        .unwrap();
        assert_eq!(status.endpoint, Endpoint::InterventionLogs);
        assert_eq!(status.times, 2);
        assert!(matches!(
            status.behaviour,
            FaultBehaviour::Status { code: 503, retry_after: Some(ref r), .. } if r == "1"
        ));
        let delay = parse_fault(br#"{"endpoint":"token","delayMs":250}"#).unwrap();
        assert!(
            matches!(delay.behaviour, FaultBehaviour::Delay(d) if d == Duration::from_millis(250))
        );
        assert_eq!(delay.times, 1);
        let drop = parse_fault(br#"{"endpoint":"any","drop":true}"#).unwrap();
        assert!(matches!(drop.behaviour, FaultBehaviour::DropConnection));
        assert!(parse_fault(br#"{"endpoint":"any"}"#).is_err());
        assert!(parse_fault(br#"{"endpoint":"any","drop":true,"status":500}"#).is_err());
        assert!(parse_fault(br#"{"endpoint":"nowhere","drop":true}"#).is_err());
    }

    #[test]
    fn parses_apply_then_fault_kinds() {
        let drop =
            parse_fault(br#"{"endpoint":"interventionLogs","dropAfterApply":true,"times":3}"#)
                .unwrap();
        assert_eq!(drop.endpoint, Endpoint::InterventionLogs);
        assert_eq!(drop.times, 3);
        assert!(matches!(drop.behaviour, FaultBehaviour::ApplyThenDrop));

        let delay = parse_fault(br#"{"endpoint":"documents","delayAfterApplyMs":1500}"#).unwrap();
        assert_eq!(delay.endpoint, Endpoint::Documents);
        assert_eq!(delay.times, 1);
        assert!(matches!(
            delay.behaviour,
            FaultBehaviour::ApplyThenDelay(d) if d == Duration::from_millis(1500)
        ));

        let lookup = parse_fault(br#"{"endpoint":"documentLookup","status":503}"#).unwrap();
        assert_eq!(lookup.endpoint, Endpoint::DocumentLookup);

        // Exactly one behaviour.
        assert!(parse_fault(br#"{"endpoint":"any","dropAfterApply":false}"#).is_err());
        assert!(
            parse_fault(br#"{"endpoint":"any","dropAfterApply":true,"delayAfterApplyMs":5}"#)
                .is_err()
        );
        assert!(parse_fault(br#"{"endpoint":"any","dropAfterApply":true,"drop":true}"#).is_err());
        assert!(parse_fault(br#"{"endpoint":"any","delayAfterApplyMs":5,"delayMs":5}"#).is_err());
        assert!(parse_fault(br#"{"endpoint":"any","delayAfterApplyMs":"5"}"#).is_err());
        let help = parse_fault(br#"{"endpoint":"any","dropAfterApply":1}"#).unwrap_err();
        assert!(help.contains("dropAfterApply"), "{help}");
        assert!(help.contains("documentLookup"), "{help}");
    }
}
