//! What each function is started with (template.yaml's environment) and fed (the events
//! AWS sends it), and what counts as a successful answer.

use crate::error::{Context, Result, bail};
use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use serde_json::{Value, json};
use std::time::Duration;
use system_tests::ApiGatewayRequest;

/// Where the bench drops each quitus for the forwarder, as the company's operators do:
/// `{DIRECT_DROP_PREFIX}{contractReference}/{reference}/{file name}.pdf` (`operator-quitus/`;
/// partners' uploads under `quitus/` are forwarded only with their upload grant). The one
/// place to change if the convention moves again; `--quitus-prefix` overrides it per run.
pub const DIRECT_DROP_PREFIX: &str = oncall_domain::documents::OPERATOR_PREFIX;

/// The partner the bench calls as (`client_id` of the JWT authorizer's claims).
pub const PARTNER: &str = "lambda-bench-partner";
pub const CONTRACT: &str = "contract1";

/// The functions, in the order they run (each one's inputs come from the one before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    ClaimIntake,
    InterventionClosure,
    DocumentForwarder,
    OncallCloser,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::ClaimIntake,
        Function::InterventionClosure,
        Function::DocumentForwarder,
        Function::OncallCloser,
    ];

    /// The package's name, its binary's, and the name in the table.
    pub fn binary(self) -> &'static str {
        match self {
            Function::ClaimIntake => "claim-intake",
            Function::InterventionClosure => "intervention-closure",
            Function::DocumentForwarder => "document-forwarder",
            Function::OncallCloser => "oncall-closer",
        }
    }

    pub fn parse(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.binary() == name)
    }

    /// `MemorySize` and `Timeout` in template.yaml.
    pub fn memory_and_timeout(self) -> (u32, Duration) {
        match self {
            Function::ClaimIntake | Function::InterventionClosure => (256, Duration::from_secs(30)),
            Function::DocumentForwarder => (256, Duration::from_secs(900)),
            Function::OncallCloser => (512, Duration::from_secs(900)),
        }
    }

    /// The environment template.yaml gives the function (its defaults), pointed at the
    /// bench's table, bus, bucket, Intent simulator and secret. A variable the function
    /// does not read is harmless; the partner functions get the documents bucket for the
    /// upload route being added to them.
    pub fn environment(self, world: &Resources) -> Vec<(String, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("TABLE_NAME", world.table.clone()),
            ("EVENT_BUS_NAME", world.bus.clone()),
            ("EVENT_SOURCE", "oncall-bridge.interventions".into()),
            ("INTENT_BASE_URL", world.intent_base_url.clone()),
            ("INTENT_TOKEN_URL", world.intent_token_url.clone()),
            ("INTENT_CLIENT_ID", world.intent_client_id.clone()),
            ("INTENT_CLIENT_SECRET_ARN", world.secret_arn.clone()),
            ("CLOSED_FILE_RETENTION_DAYS", "395".into()),
            ("RUST_LOG", "info".into()),
            // Not in template.yaml: path-style addressing for moto (README, Configuration).
            ("S3_FORCE_PATH_STYLE", "true".into()),
        ];
        match self {
            Function::ClaimIntake => {
                env.push(("PARTNER_CONTRACTS", partner_contracts()));
            }
            Function::InterventionClosure => {
                env.push(("PARTNER_CONTRACTS", partner_contracts()));
                env.push(("MAX_DOCUMENT_BYTES", "52428800".into()));
                env.push(("DOCUMENTS_BUCKET", world.bucket.clone()));
                env.push(("UPLOAD_URL_TTL_SECONDS", "300".into()));
            }
            Function::DocumentForwarder => {
                env.push(("MAX_DOCUMENT_BYTES", "52428800".into()));
            }
            Function::OncallCloser => {
                env.extend([
                    ("RECONCILE_CONTRACTS", String::new()),
                    ("ONCALL_TIME_ZONE", "Europe/Paris".into()),
                    ("ONCALL_PERIOD_START", "18:00".into()),
                    ("ONCALL_PERIOD_END", "08:00".into()),
                    ("ONCALL_EXTRA_NON_WORKING_DAYS", String::new()),
                    ("AUTO_CLOSE_OUTCOME", "partial_repair".into()),
                    ("CLOSER_CONCURRENCY", "50".into()),
                    ("MAX_DOCUMENT_BYTES", "52428800".into()),
                    ("TICK_TOLERANCE_MINUTES", "30".into()),
                ]);
            }
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// What the bench created for this run.
pub struct Resources {
    pub table: String,
    pub bus: String,
    pub bucket: String,
    pub secret_arn: String,
    pub intent_base_url: String,
    pub intent_token_url: String,
    pub intent_client_id: String,
}

fn partner_contracts() -> String {
    json!({ PARTNER: [CONTRACT] }).to_string()
}

/// The `n`th claim's reference (a new file per request).
pub fn reference(n: usize) -> String {
    format!("LB-{n:04}")
}

/// `POST /interventions` with the seed claim under a reference of its own.
pub fn claim_event(n: usize) -> Result<Vec<u8>> {
    let body = SEED_OPENING.replace("INTER-0500", &reference(n));
    to_bytes(&ApiGatewayRequest::post_claim(PARTNER, body.as_bytes()).event())
}

/// `POST /interventions/{reference}/closure` with the seed's report (closed/done).
pub fn closure_event(n: usize) -> Result<Vec<u8>> {
    let reference = reference(n);
    let body = SEED_CLOSURE_DONE.replace("INTER-0500", &reference);
    to_bytes(&ApiGatewayRequest::post_closure(PARTNER, &reference, body.as_bytes()).event())
}

/// The `n`th claim's quitus key.
pub fn quitus_key(prefix: &str, n: usize) -> String {
    let reference = reference(n);
    format!("{prefix}{CONTRACT}/{reference}/quitus-{reference}.pdf")
}

/// A resend tick as EventBridge Scheduler sends it (template.yaml's `Resend` input, the
/// scheduled time filled in): the closer's most frequent run.
pub fn resend_tick() -> Result<Vec<u8>> {
    to_bytes(&json!({"kind": "resend", "scheduledTime": jiff::Timestamp::now().to_string()}))
}

/// The bodies a new claim sends, in bytes, in order: the opening's `TransactWriteItems`
/// (2,872, measured through the counting proxy at df6656c), Intent's event (about the
/// seed's claim), `PutEvents` (391), the delivery's `TransactWriteItems` (1,067).
pub fn claim_body_sizes() -> [usize; 4] {
    [2872, SEED_OPENING.len(), 391, 1067]
}

/// `exchange-floor`'s answer once its exchanges all passed.
pub fn check_exchanges(answer: &Value) -> Result<()> {
    if answer["statusCode"] != 201 {
        bail!("expected {{\"statusCode\":201}}, got {answer}");
    }
    Ok(())
}

pub fn hello_event(n: usize) -> Result<Vec<u8>> {
    to_bytes(&json!({"hello": "lambda-bench", "n": n}))
}

pub fn to_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).context("serializing an event")
}

/// The echo of [`hello_event`].
pub fn check_hello(answer: &Value) -> Result<()> {
    if answer["hello"] != "lambda-bench" {
        bail!("expected the event back, got {answer}");
    }
    Ok(())
}

/// An API Gateway (payload 2.0) answer with `status`, its body's `delivery` `delivered`
/// (Intent got the event within the request).
pub fn check_api_answer(answer: &Value, status: u64) -> Result<()> {
    let got = answer["statusCode"].as_u64().unwrap_or(0);
    let body = answer["body"].as_str().unwrap_or_default();
    if got != status {
        bail!("HTTP {got} (expected {status}): {body}");
    }
    if answer["isBase64Encoded"] == true {
        bail!("HTTP {got} with a base64 body, expected JSON");
    }
    let body: Value = serde_json::from_str(body).context("the answer's body is not JSON")?;
    if body["delivery"] != "delivered" {
        bail!(
            "HTTP {got} but Intent did not get the event within the request (delivery {}): {body}",
            body["delivery"]
        );
    }
    Ok(())
}

/// The forwarder's summary: the one object (dropped under `prefix`) published to Intent.
pub fn check_forwarded(answer: &Value, prefix: &str) -> Result<()> {
    let count = |field: &str| answer[field].as_u64().unwrap_or(0);
    if count("published") != 1 {
        let hint = if count("rejected") > 0 {
            format!(
                " (rejected: dropped under {prefix:?}; if the key convention changed, see DIRECT_DROP_PREFIX or --quitus-prefix)"
            )
        } else {
            String::new()
        };
        bail!("expected 1 document published, got {answer}{hint}");
    }
    Ok(())
}

/// The closer's run summary: a resend run, not cut off, without problems.
pub fn check_tick(answer: &Value) -> Result<()> {
    if answer["kind"] != "resend" || answer["interrupted"] != false {
        bail!("expected a complete resend run, got {answer}");
    }
    if answer["problems"].as_array().is_some_and(|p| !p.is_empty()) {
        bail!("the run reported problems: {}", answer["problems"]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_answers_are_checked_on_status_and_delivery() {
        let answer = |status: u64, body: Value| json!({"statusCode": status, "body": body.to_string(), "isBase64Encoded": false});
        check_api_answer(&answer(201, json!({"delivery": "delivered"})), 201).unwrap();
        let refused = check_api_answer(&answer(409, json!({"title": "conflict"})), 201);
        assert!(refused.unwrap_err().to_string().contains("HTTP 409"));
        assert!(check_api_answer(&answer(202, json!({"delivery": "pending"})), 202).is_err());
    }

    #[test]
    fn events_are_what_api_gateway_sends() {
        let event: Value = serde_json::from_slice(&claim_event(7).unwrap()).unwrap();
        assert_eq!(event["version"], "2.0");
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["client_id"],
            PARTNER
        );
        assert!(event["body"].as_str().unwrap().contains("LB-0007"));
        assert_eq!(
            quitus_key(DIRECT_DROP_PREFIX, 7),
            "operator-quitus/contract1/LB-0007/quitus-LB-0007.pdf"
        );
    }
}
