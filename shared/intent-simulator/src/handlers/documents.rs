//! `POST /api/documents/v1/documents`: a document (PDF) attached to an element. The file is
//! streamed chunk by chunk into a SHA-256 hasher and a byte counter, never buffered whole.
//!
//! `GET /api/documents/v1/documents?elementType=&elementReference=[&intent_contractReference=]`
//! `[&page=&perPage=]`: the documents attached to an element, in arrival order.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    AppState, authorize, page_params, query_pairs, query_param, require_accept, validation_error,
};
use crate::ReceivedDocument;
use crate::http_util::{Detail, api_error, header_str, json_with_type, parse_media_type};
use crate::validation::ELEMENT_TYPES;

const REQUIRED_FIELDS: &[&str] = &[
    "title",
    "elementType",
    "elementReference",
    "intent_contractReference",
];

/// A text field larger than this is refused (they are titles and references).
const MAX_TEXT_FIELD: usize = 64 * 1024;

struct ReceivedFile {
    name: Option<String>,
    content_type: Option<String>,
    size: u64,
    sha256: String,
}

pub(super) async fn publish(State(shared): State<AppState>, request: Request) -> Response {
    if let Some(response) = authorize(&shared, request.headers()) {
        return response;
    }
    let is_multipart = header_str(request.headers(), header::CONTENT_TYPE)
        .and_then(parse_media_type)
        .is_some_and(|m| m.essence == "multipart/form-data");
    if !is_multipart {
        return api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be multipart/form-data",
            Vec::new(),
        );
    }
    if let Some(response) = require_accept(request.headers(), "application/json") {
        return response;
    }
    let mut multipart = match Multipart::from_request(request, &()).await {
        Ok(multipart) => multipart,
        Err(_) => {
            return invalid_multipart("the multipart/form-data Content-Type has no valid boundary");
        }
    };

    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut file: Option<ReceivedFile> = None;
    let mut details = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return invalid_multipart(&error.body_text()),
        };
        let Some(name) = field.name().map(str::to_owned) else {
            details.push(Detail::new("", "a part has no name"));
            if let Some(response) = drain(&mut field).await {
                return response;
            }
            continue;
        };
        if name == "file" {
            let received = ReceivedFile {
                name: field.file_name().map(str::to_owned),
                content_type: field.content_type().map(str::to_owned),
                size: 0,
                sha256: String::new(),
            };
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        size += chunk.len() as u64;
                        hasher.update(&chunk);
                    }
                    Ok(None) => break,
                    Err(error) => return invalid_multipart(&error.body_text()),
                }
            }
            if file.is_some() {
                details.push(Detail::new("file", "only one file may be sent"));
                continue;
            }
            file = Some(ReceivedFile {
                size,
                sha256: hex::encode(hasher.finalize()),
                ..received
            });
            continue;
        }
        if field.file_name().is_some() {
            // An extra file part: not part of the contract, ignored (and not buffered).
            if let Some(response) = drain(&mut field).await {
                return response;
            }
            continue;
        }
        let mut bytes = Vec::new();
        let mut too_large = false;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_TEXT_FIELD {
                        too_large = true;
                    } else {
                        bytes.extend_from_slice(&chunk);
                    }
                }
                Ok(None) => break,
                Err(error) => return invalid_multipart(&error.body_text()),
            }
        }
        if too_large {
            details.push(Detail::new(
                name,
                format!("must be at most {MAX_TEXT_FIELD} bytes"),
            ));
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            details.push(Detail::new(name, "must be UTF-8 text"));
            continue;
        };
        if fields.contains_key(&name) {
            details.push(Detail::new(name, "is repeated"));
            continue;
        }
        fields.insert(name, text);
    }

    match &file {
        None => details.push(Detail::new("file", "is required")),
        Some(file) => {
            let pdf = file
                .content_type
                .as_deref()
                .and_then(parse_media_type)
                .is_some_and(|m| m.essence == "application/pdf");
            if !pdf {
                details.push(Detail::new(
                    "file",
                    "the file part's content type must be application/pdf",
                ));
            }
            if file.size == 0 {
                details.push(Detail::new("file", "the file is empty"));
            }
        }
    }
    for required in REQUIRED_FIELDS {
        match fields.get(*required) {
            None if !details.iter().any(|d| d.field == *required) => {
                details.push(Detail::new(*required, "is required"));
            }
            Some(value) if value.trim().is_empty() => {
                details.push(Detail::new(*required, "must not be empty"));
            }
            _ => {}
        }
    }
    if let Some(element_type) = fields
        .get("elementType")
        .filter(|t| !t.trim().is_empty() && !ELEMENT_TYPES.contains(&t.as_str()))
    {
        details.push(Detail::new(
            "elementType",
            format!(
                "`{element_type}` is not one of: {}",
                ELEMENT_TYPES.join(", ")
            ),
        ));
    }
    if !details.is_empty() {
        return validation_error("the document is invalid", details);
    }

    let element_reference = fields["elementReference"].clone();
    let contract_reference = fields["intent_contractReference"].clone();
    if shared.config.strict_lifecycle
        && fields["elementType"] == "intervention"
        && shared
            .intervention(&element_reference, &contract_reference)
            .is_none()
    {
        return api_error(
            StatusCode::NOT_FOUND,
            "intervention_not_found",
            format!(
                "intervention {element_reference} (contract {contract_reference}) is not on the hub"
            ),
            Vec::new(),
        );
    }

    let Some(file) = file else {
        // Cannot happen: a missing file is a validation detail above.
        return validation_error(
            "the document is invalid",
            vec![Detail::new("file", "is required")],
        );
    };
    let id = uuid::Uuid::new_v4().to_string();
    let answered_with_id = shared.add_document(ReceivedDocument {
        id: id.clone(),
        received_at: SystemTime::now(),
        fields,
        file_name: file.name,
        file_content_type: file.content_type,
        file_size: file.size,
        file_sha256: file.sha256,
    });
    shared.save().await;
    if !answered_with_id {
        return StatusCode::CREATED.into_response();
    }
    (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
}

/// The document listing: Bearer, `Accept` listing `application/json`, then the query
/// (`elementType` one of [`ELEMENT_TYPES`] and `elementReference` required,
/// `intent_contractReference` optional, `page`/`perPage` as the operations listing).
pub(super) async fn list(State(shared): State<AppState>, request: Request) -> Response {
    if let Some(response) = authorize(&shared, request.headers()) {
        return response;
    }
    if let Some(response) = require_accept(request.headers(), "application/json") {
        return response;
    }
    let Some(params) = query_pairs(&request) else {
        return validation_error("the query string is malformed", Vec::new());
    };
    let mut details = Vec::new();
    let element_type = query_param(&params, "elementType");
    match element_type {
        None => details.push(Detail::new("elementType", "is required")),
        Some(t) if t.trim().is_empty() => {
            details.push(Detail::new("elementType", "must not be empty"));
        }
        Some(t) if !ELEMENT_TYPES.contains(&t) => details.push(Detail::new(
            "elementType",
            format!("`{t}` is not one of: {}", ELEMENT_TYPES.join(", ")),
        )),
        Some(_) => {}
    }
    let element_reference = query_param(&params, "elementReference");
    match element_reference {
        None => details.push(Detail::new("elementReference", "is required")),
        Some(r) if r.trim().is_empty() => {
            details.push(Detail::new("elementReference", "must not be empty"));
        }
        Some(_) => {}
    }
    let contract_reference = query_param(&params, "intent_contractReference");
    if contract_reference.is_some_and(|c| c.trim().is_empty()) {
        details.push(Detail::new("intent_contractReference", "must not be empty"));
    }
    let (page, per_page) = page_params(&params, &mut details);
    if !details.is_empty() {
        return validation_error("invalid listing parameters", details);
    }
    let (Some(element_type), Some(element_reference)) = (element_type, element_reference) else {
        // Cannot happen: both are validated above.
        return validation_error("invalid listing parameters", Vec::new());
    };

    let field = |doc: &ReceivedDocument, name: &str| doc.fields.get(name).cloned();
    let (total, items) = {
        let inner = shared.lock();
        let matching: Vec<&ReceivedDocument> = inner
            .documents
            .iter()
            .filter(|d| {
                d.fields.get("elementType").map(String::as_str) == Some(element_type)
                    && d.fields.get("elementReference").map(String::as_str)
                        == Some(element_reference)
                    && contract_reference.is_none_or(|c| {
                        d.fields.get("intent_contractReference").map(String::as_str) == Some(c)
                    })
            })
            .collect();
        let items: Vec<Value> = matching
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .map(|d| {
                json!({
                    "id": d.id,
                    "title": field(d, "title"),
                    "description": field(d, "description"),
                    "fileName": d.file_name,
                    "size": d.file_size,
                    "contentType": d.file_content_type,
                    "elementType": field(d, "elementType"),
                    "elementReference": field(d, "elementReference"),
                    "intent_contractReference": field(d, "intent_contractReference"),
                    "createdAt": jiff::Timestamp::try_from(d.received_at)
                        .ok()
                        .map(|t| t.to_string()),
                })
            })
            .collect();
        (matching.len(), items)
    };
    let body = json!({
        "_embedded": { "documents": items },
        "total": total,
        "page": page,
        "perPage": per_page,
    });
    json_with_type(StatusCode::OK, &body, "application/json")
}

/// Reads a part to its end; returns the 400 to answer if the multipart body is malformed.
async fn drain(field: &mut axum::extract::multipart::Field<'_>) -> Option<Response> {
    loop {
        match field.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => return None,
            Err(error) => return Some(invalid_multipart(&error.body_text())),
        }
    }
}

fn invalid_multipart(message: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "invalid_multipart",
        format!("the multipart body is malformed: {message}"),
        Vec::new(),
    )
}
