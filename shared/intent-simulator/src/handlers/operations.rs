//! `GET /api/operations/v2/operations` (paged HAL listing) and
//! `GET /api/operations/v2/operations/{reference}?contractReference=…` (one operation, with
//! its log embedded).

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::{AppState, authorize, page_params, query_pairs, query_param, validation_error};
use crate::HubIntervention;
use crate::http_util::{Detail, api_error, encode_query_component, header_str, json_with_type};
use crate::state::Shared;
use crate::validation::STATUSES;

const HAL: &str = "application/json+hal";
const LIST_PATH: &str = "/api/operations/v2/operations";

pub(super) async fn list(State(shared): State<AppState>, request: Request) -> Response {
    if let Some(response) = authorize(&shared, request.headers()) {
        return response;
    }
    let Some(params) = query_pairs(&request) else {
        return validation_error("the query string is malformed", Vec::new());
    };
    let mut details = Vec::new();
    let status = query_param(&params, "status");
    if let Some(status) = status.filter(|s| !STATUSES.contains(s)) {
        details.push(Detail::new(
            "status",
            format!("`{status}` is not one of: {}", STATUSES.join(", ")),
        ));
    }
    let (page, per_page) = page_params(&params, &mut details);
    if !details.is_empty() {
        return validation_error("invalid listing parameters", details);
    }

    let matching: Vec<HubIntervention> = shared
        .interventions()
        .into_iter()
        .filter(|i| status.is_none_or(|s| i.status == s))
        .collect();
    let total = matching.len();
    let start = (page - 1).saturating_mul(per_page);
    let items: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(per_page)
        .map(operation_json)
        .collect();
    let origin = origin(&shared, request.headers());
    let href = |page: usize| {
        let mut query = String::new();
        if let Some(status) = status {
            query.push_str(&format!("status={}&", encode_query_component(status)));
        }
        query.push_str(&format!("page={page}&perPage={per_page}"));
        format!("{origin}{LIST_PATH}?{query}")
    };
    let mut links = json!({ "self": { "href": href(page) } });
    if start.saturating_add(per_page) < total {
        links["next"] = json!({ "href": href(page + 1) });
    }
    let body = json!({
        "_embedded": { "operations": items },
        "total": total,
        "page": page,
        "perPage": per_page,
        "_links": links,
    });
    json_with_type(StatusCode::OK, &body, HAL)
}

pub(super) async fn get_one(
    State(shared): State<AppState>,
    Path(reference): Path<String>,
    request: Request,
) -> Response {
    if let Some(response) = authorize(&shared, request.headers()) {
        return response;
    }
    let Some(params) = query_pairs(&request) else {
        return validation_error("the query string is malformed", Vec::new());
    };
    let contract_reference = query_param(&params, "contractReference")
        .filter(|v| !v.trim().is_empty())
        .map(str::to_owned);
    let Some(contract_reference) = contract_reference else {
        return validation_error(
            "contractReference is required",
            vec![Detail::new("contractReference", "is required")],
        );
    };
    let Some((intervention, logs)) = shared.operation(&reference, &contract_reference) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "operation_not_found",
            format!("no operation {reference} on contract {contract_reference}"),
            Vec::new(),
        );
    };
    let mut body = operation_json(&intervention);
    let href = format!(
        "{}{LIST_PATH}/{}?contractReference={}",
        origin(&shared, request.headers()),
        encode_query_component(&reference),
        encode_query_component(&contract_reference)
    );
    body["_links"] = json!({ "self": { "href": href } });
    body["_embedded"] = json!({ "logs": logs });
    json_with_type(StatusCode::OK, &body, HAL)
}

fn operation_json(intervention: &HubIntervention) -> Value {
    json!({
        "reference": intervention.reference,
        "contractReference": intervention.contract_reference,
        "status": intervention.status,
        "event": intervention.event,
        "eventDate": intervention.last_event_date,
    })
}

/// `http://host:port` as the client addressed it (Host header), else the bound address.
fn origin(shared: &Shared, headers: &HeaderMap) -> String {
    let host = header_str(headers, header::HOST)
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| shared.local_addr.to_string());
    format!("http://{host}")
}
