//! The partner HTTP API, independent of its hosting: the same operations serve API
//! Gateway (through `lambda_http`) and the local server. Errors are mapped once, in
//! [`problem::ApiError`], to status codes and `application/problem+json`.

pub mod api;
pub mod partners;
pub mod problem;
pub mod router;
pub mod views;

pub use api::{
    Handled, MAX_BODY_BYTES, Operation, PartnerApi, REQUEST_LIMIT, check_json_content_type,
    percent_encode,
};
pub use partners::{PartnerConfigError, PartnerDirectory};
pub use problem::{ApiError, PROBLEM_JSON};
pub use router::{Caller, IdentifyCaller, RequestId, Route, router};
