//! The partner API's operations, independent of how they are hosted (API Gateway +
//! Lambda, or the local server): bytes and headers in, status and JSON out.

use crate::partners::PartnerDirectory;
use crate::problem::{ApiError, repeatable};
use crate::views::{FileView, file_view};
use http::{HeaderMap, Response, StatusCode, header};
use oncall_domain::closure::{
    CloseError, CloseOutcome, ClosedBy, ClosurePolicy, close_intervention,
};
use oncall_domain::intake::{OpenError, OpenOutcome, open_intervention};
use oncall_domain::ports::{
    Clock, CloseFile, FinishDelivery, LoadFile, OpenFile, PresignUpload, PublishDomainEvents,
    PublishToIntent, UploadGrants,
};
use oncall_domain::uploads::{
    UploadError, UploadPolicy, UploadPorts, grant_upload, validate_upload_request,
};
use oncall_domain::validation::{is_safe_reference, parse_json, validate_intervention_log};
use oncall_domain::{Delivery, FileId, FileState};
use oncall_domain::{InterventionLog, PartnerId};
use serde_json::Value;

/// What a claim or a closure came to, attached to its response (an extension) for the
/// host's metrics: fixed words, never the file's identity nor anything the partner sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    pub operation: Operation,
    /// Claims: `created`, `replayed`; closures: `done`, `partial_repair`, `canceled`,
    /// `replayed`; both: `conflict` (409), `rejected` (any other 4xx), `error` (5xx).
    pub outcome: &'static str,
}

/// The writes whose outcomes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Claim,
    Closure,
}

impl Handled {
    /// The outcome of a request answered with an error.
    pub(crate) fn refused(operation: Operation, status: StatusCode) -> Self {
        let outcome = if status == StatusCode::CONFLICT {
            "conflict"
        } else if status.is_server_error() {
            "error"
        } else {
            "rejected"
        };
        Self { operation, outcome }
    }
}

/// `response`, marked with what the request came to: the outcome the operation gave it, or
/// its refusal.
fn marked(
    response: Result<Response<Vec<u8>>, ApiError>,
    operation: Operation,
) -> Response<Vec<u8>> {
    let mut response = response.unwrap_or_else(ApiError::into_response);
    if response.extensions().get::<Handled>().is_none() {
        let refused = Handled::refused(operation, response.status());
        response.extensions_mut().insert(refused);
    }
    response
}

/// The largest request body accepted. A claim is a few kilobytes; descriptions are
/// capped at 10,000 characters and contacts at 20 × 4,000.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// What the partner API needs, wired once per execution environment.
pub struct PartnerApi<S, I, E, C, U> {
    pub store: S,
    pub intent: I,
    pub events: E,
    pub clock: C,
    /// Signs partners' quitus uploads to the documents bucket.
    pub uploads: U,
    pub partners: PartnerDirectory,
    pub closure: ClosurePolicy,
    pub upload_policy: UploadPolicy,
    /// The longest a claim or a closure may take before it is answered 503 (send the same
    /// request again): [`REQUEST_LIMIT`].
    pub request_limit: std::time::Duration,
}

/// A claim or a closure is answered within this, whatever Intent does: API Gateway gives
/// up at 30 s. Past it, the work in flight is dropped (as a crash would: what was stored
/// stays, a send lease left behind is taken over, Intent read first) and the partner is
/// told to send the same request again, which is answered as its replay.
pub const REQUEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(25);

/// Accepts `application/json` or `application/*+json`, with no charset or UTF-8.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let unsupported = || ApiError::UnsupportedMediaType { found: raw.clone() };
    let value = raw.as_deref().ok_or_else(unsupported)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !is_json {
        return Err(unsupported());
    }
    for parameter in parts {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        if name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(unsupported());
        }
    }
    Ok(())
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).expect("views serialise"))
        .expect("a valid response")
}

fn record_file_on_span(reference: &str, contract: &str) {
    let span = tracing::Span::current();
    span.record("reference", reference);
    span.record("contract", contract);
}

/// A request's JSON body: `application/json` in UTF-8 (415), at most
/// [`MAX_BODY_BYTES`] (413), well-formed (400, with where it breaks).
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    check_json_content_type(headers)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(parse_json(body)?)
}

/// No such file for this caller (the path's values repeated only when they are
/// identifiers: they are the caller's input).
fn not_found(reference: &str, contract: &str) -> ApiError {
    ApiError::NotFound {
        reference: repeatable(reference),
        contract: if contract.is_empty() {
            String::new()
        } else {
            repeatable(contract)
        },
    }
}

/// The checks of a route addressing one file by path and `?contractReference=`: an
/// authenticated caller (401), the query parameter (400), references that a file can have
/// (else 404, never looked up nor logged). Returns the contract.
fn addressed_file<'a>(
    caller: Option<&str>,
    reference: &str,
    contract: Option<&'a str>,
) -> Result<&'a str, ApiError> {
    if caller.is_none() {
        return Err(ApiError::Unauthenticated);
    }
    let contract = contract
        .filter(|c| !c.is_empty())
        .ok_or(ApiError::MissingQuery("contractReference"))?;
    if !is_safe_reference(reference) || !is_safe_reference(contract) {
        return Err(not_found(reference, contract));
    }
    record_file_on_span(reference, contract);
    Ok(contract)
}

/// `contractReference` of a parsed body, if it is a string: needed to authorise before the
/// full validation runs.
fn contract_of(value: &Value) -> Option<&str> {
    value.get("contractReference").and_then(Value::as_str)
}

impl<S, I, E, C, U> PartnerApi<S, I, E, C, U>
where
    S: OpenFile + LoadFile + CloseFile + FinishDelivery + UploadGrants,
    I: PublishToIntent,
    E: PublishDomainEvents,
    C: Clock,
    U: PresignUpload,
{
    /// `answer`, unless it takes longer than `request_limit`: then it is dropped (as a
    /// crash would drop it: what was stored stays, and the next sender delivers it) and
    /// the answer is `OutOfTime`.
    async fn within_limit(
        &self,
        answer: impl std::future::Future<Output = Result<Response<Vec<u8>>, ApiError>>,
    ) -> Result<Response<Vec<u8>>, ApiError> {
        tokio::time::timeout(self.request_limit, answer)
            .await
            .unwrap_or_else(|_| {
                tracing::error!(
                    "the request ran out of time; what was stored stays, and is delivered by the next sender"
                );
                Err(ApiError::OutOfTime)
            })
    }

    /// `POST /interventions`: a partner reports a claim (open/acknowledged).
    pub async fn open_intervention(
        &self,
        caller: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        marked(
            self.within_limit(self.try_open(caller, headers, body))
                .await,
            Operation::Claim,
        )
    }

    async fn try_open(
        &self,
        caller: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Vec<u8>>, ApiError> {
        let (owner, log) = self.read_log(caller, headers, body)?;
        let owner_of_claim = owner.clone();
        let opened = open_intervention(
            &self.store,
            &self.intent,
            &self.events,
            &self.clock,
            self.closure,
            owner,
            log,
        )
        .await
        .map_err(|error| match error {
            OpenError::NotAnOpening { .. } | OpenError::InFuture(_) => {
                ApiError::Unprocessable(error.to_string())
            }
            // A reference another partner holds under a shared contract: nothing about
            // that file is told, not even that it exists.
            OpenError::Conflict { ref existing } if existing.owner != owner_of_claim => {
                ApiError::NotFound {
                    reference: existing.id.reference.clone(),
                    contract: existing.id.contract_reference.clone(),
                }
            }
            OpenError::Conflict { ref existing } => ApiError::Conflict {
                current: existing.state,
                message: error.to_string(),
            },
            OpenError::Store(store) => store.into(),
        })?;

        let opening = opened.file.opening().ok_or(ApiError::Internal)?;
        let delivery = opening.delivery.label();
        let status = match (opened.outcome, &opening.delivery) {
            (OpenOutcome::Replayed, _) => StatusCode::OK,
            (OpenOutcome::Created, Delivery::Delivered { .. }) => StatusCode::CREATED,
            (OpenOutcome::Created, _) => StatusCode::ACCEPTED,
        };
        tracing::info!(status = status.as_u16(), delivery, outcome = ?opened.outcome, "claim handled");
        let view = FileView {
            delivery: Some(delivery),
            ..file_view(&opened.file)
        };
        let mut response = json_response(status, &view);
        response.extensions_mut().insert(Handled {
            operation: Operation::Claim,
            outcome: match opened.outcome {
                OpenOutcome::Created => "created",
                OpenOutcome::Replayed => "replayed",
            },
        });
        if status != StatusCode::OK {
            let location = format!(
                "/interventions/{}?contractReference={}",
                percent_encode(&opened.file.id.reference),
                percent_encode(&opened.file.id.contract_reference)
            );
            if let Ok(value) = location.parse() {
                response.headers_mut().insert(header::LOCATION, value);
            }
        }
        Ok(response)
    }

    /// The checks every write shares, in this order: an authenticated partner (401), a
    /// JSON body (415) of bounded size (413) that parses (400), for one of the partner's
    /// contracts (403; a `contractReference` no contract can have is a 422 naming the
    /// field and its rule, as the rest of the body), valid as an intervention log (422).
    fn read_log(
        &self,
        caller: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(PartnerId, InterventionLog), ApiError> {
        if caller.is_none() {
            return Err(ApiError::Unauthenticated);
        }
        let value = json_body(headers, body)?;
        if let Some(contract) = contract_of(&value).filter(|c| is_safe_reference(c)) {
            self.partners.authorize(caller, contract)?;
        }
        let log = validate_intervention_log(&value)?;
        record_file_on_span(&log.reference, &log.contract_reference);
        let partner = self.partners.authorize(caller, &log.contract_reference)?;
        Ok((partner, log))
    }

    /// `POST /interventions/{reference}/closure[?contractReference=…]`: closes the file
    /// as done, partial repair, or canceled at reception.
    pub async fn close_intervention(
        &self,
        caller: Option<&str>,
        reference: &str,
        contract: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        marked(
            self.within_limit(self.try_close(caller, reference, contract, headers, body))
                .await,
            Operation::Closure,
        )
    }

    async fn try_close(
        &self,
        caller: Option<&str>,
        reference: &str,
        contract: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Vec<u8>>, ApiError> {
        if caller.is_some() && !is_safe_reference(reference) {
            // No file can have that reference: not found, whatever the body says.
            return Err(not_found(reference, contract.unwrap_or_default()));
        }
        let (partner, log) = self.read_log(caller, headers, body)?;
        if log.reference != reference {
            return Err(ApiError::Unprocessable(format!(
                "the body's reference {:?} contradicts the path's {:?}",
                log.reference, reference
            )));
        }
        if let Some(contract) = contract.filter(|c| !c.is_empty())
            && contract != log.contract_reference
        {
            return Err(ApiError::Unprocessable(format!(
                "the body's contractReference {:?} contradicts the query's {}",
                log.contract_reference,
                match repeatable(contract) {
                    shown if shown == contract => format!("{shown:?}"),
                    not_shown => not_shown,
                }
            )));
        }
        let closed = close_intervention(
            &self.store,
            &self.intent,
            &self.events,
            &self.clock,
            self.closure,
            ClosedBy::Partner(&partner),
            log,
        )
        .await
        .map_err(|error| match error {
            CloseError::NotAClosure { .. }
            | CloseError::BeforeOpening { .. }
            | CloseError::InFuture(_) => ApiError::Unprocessable(error.to_string()),
            CloseError::NotFound(id) => ApiError::NotFound {
                reference: id.reference,
                contract: id.contract_reference,
            },
            CloseError::Refused { error, current } => ApiError::Conflict {
                message: error.to_string(),
                current: current.state,
            },
            CloseError::Store(store) => store.into(),
        })?;
        let closing = closed.file.last_event().ok_or(ApiError::Internal)?;
        let delivery = closing.delivery.label();
        let status = match (closed.outcome, &closing.delivery) {
            (CloseOutcome::Replayed, _) | (CloseOutcome::Closed, Delivery::Delivered { .. }) => {
                StatusCode::OK
            }
            (CloseOutcome::Closed, _) => StatusCode::ACCEPTED,
        };
        tracing::info!(status = status.as_u16(), delivery, outcome = ?closed.outcome, "closure handled");
        let view = FileView {
            delivery: Some(delivery),
            ..file_view(&closed.file)
        };
        let mut response = json_response(status, &view);
        response.extensions_mut().insert(Handled {
            operation: Operation::Closure,
            outcome: match (closed.outcome, closed.file.state) {
                (CloseOutcome::Replayed, _) => "replayed",
                (CloseOutcome::Closed, FileState::Closed(outcome)) => outcome.as_str(),
                // Not reached: a closure leaves its file closed.
                (CloseOutcome::Closed, FileState::Open) => "closed",
            },
        });
        Ok(response)
    }

    /// `POST /interventions/{reference}/documents?contractReference=…` with
    /// `{"fileName", "size"}`: leave to upload one quitus for the partner's file, as a
    /// presigned `PUT` to the documents bucket (valid a few minutes, for that key, that
    /// size and `application/pdf` only).
    pub async fn request_document_upload(
        &self,
        caller: Option<&str>,
        reference: &str,
        contract: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        self.try_request_upload(caller, reference, contract, headers, body)
            .await
            .unwrap_or_else(ApiError::into_response)
    }

    async fn try_request_upload(
        &self,
        caller: Option<&str>,
        reference: &str,
        contract: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response<Vec<u8>>, ApiError> {
        let contract = addressed_file(caller, reference, contract)?;
        let value = json_body(headers, body)?;
        let partner = self.partners.authorize(caller, contract)?;
        let request = validate_upload_request(&value, self.upload_policy.max_bytes)?;
        let id = FileId::new(reference, contract);
        let ports = UploadPorts {
            grants: &self.store,
            presigner: &self.uploads,
            clock: &self.clock,
        };
        let ticket = grant_upload(&ports, self.upload_policy, &partner, &id, request)
            .await
            .map_err(|error| match error {
                UploadError::NotFound(id) => ApiError::NotFound {
                    reference: id.reference,
                    contract: id.contract_reference,
                },
                UploadError::Canceled { current } => ApiError::Conflict {
                    message: error.to_string(),
                    current,
                },
                UploadError::Signing(detail) => {
                    tracing::error!(%detail, "upload URL not signed");
                    ApiError::UploadsUnavailable
                }
                UploadError::Store(store) => store.into(),
            })?;
        Ok(json_response(StatusCode::OK, &ticket))
    }

    /// `GET /interventions/{reference}?contractReference=…`: the file, its event log and
    /// each event's delivery state. Only its owner sees it.
    pub async fn get_intervention(
        &self,
        caller: Option<&str>,
        reference: &str,
        contract: Option<&str>,
    ) -> Response<Vec<u8>> {
        self.try_get(caller, reference, contract)
            .await
            .unwrap_or_else(ApiError::into_response)
    }

    async fn try_get(
        &self,
        caller: Option<&str>,
        reference: &str,
        contract: Option<&str>,
    ) -> Result<Response<Vec<u8>>, ApiError> {
        let contract = addressed_file(caller, reference, contract)?;
        let partner = self.partners.authorize(caller, contract)?;
        let file = self
            .store
            .load_file(&FileId::new(reference, contract))
            .await?
            // Another partner's file under a shared contract is not even acknowledged.
            .filter(|file| file.owner == partner)
            .ok_or_else(|| not_found(reference, contract))?;
        Ok(json_response(StatusCode::OK, &file_view(&file)))
    }
}

/// Percent-encodes a path or query component (RFC 3986 unreserved characters kept).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
