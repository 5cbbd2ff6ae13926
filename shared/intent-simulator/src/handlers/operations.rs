//! `GET /api/operations/v2/operations` (paged HAL listing) and
//! `GET /api/operations/v2/operations/{reference}?contractReference=…`.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::{AppState, authorize, validation_error};
use crate::HubIntervention;
use crate::http_util::{Detail, api_error, encode_query_component, header_str, json_with_type};
use crate::state::Shared;
use crate::validation::STATUSES;

const HAL: &str = "application/json+hal";
const LIST_PATH: &str = "/api/operations/v2/operations";
const DEFAULT_PER_PAGE: usize = 100;
const MAX_PER_PAGE: usize = 100;

pub(super) async fn list(State(shared): State<AppState>, request: Request) -> Response {
    if let Some(response) = authorize(&shared, request.headers()) {
        return response;
    }
    let Ok(Query(params)) = Query::<Vec<(String, String)>>::try_from_uri(request.uri()) else {
        return validation_error("the query string is malformed", Vec::new());
    };
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut details = Vec::new();
    let status = param("status");
    if let Some(status) = status.filter(|s| !STATUSES.contains(s)) {
        details.push(Detail::new(
            "status",
            format!("`{status}` is not one of: {}", STATUSES.join(", ")),
        ));
    }
    let page = parse_bounded(param("page"), "page", 1, usize::MAX, 1, &mut details);
    let per_page = parse_bounded(
        param("perPage"),
        "perPage",
        1,
        MAX_PER_PAGE,
        DEFAULT_PER_PAGE,
        &mut details,
    );
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
    let Ok(Query(params)) = Query::<Vec<(String, String)>>::try_from_uri(request.uri()) else {
        return validation_error("the query string is malformed", Vec::new());
    };
    let contract_reference = params
        .iter()
        .rev()
        .find(|(n, _)| n == "contractReference")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.trim().is_empty());
    let Some(contract_reference) = contract_reference else {
        return validation_error(
            "contractReference is required",
            vec![Detail::new("contractReference", "is required")],
        );
    };
    let Some(intervention) = shared.intervention(&reference, &contract_reference) else {
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
