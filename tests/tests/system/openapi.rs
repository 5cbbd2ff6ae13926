//! The partner API's OpenAPI document, `openapi.yaml` at the repository root, held to what
//! the API does:
//! - the document itself: valid against the OpenAPI 3.1 meta-schema (vendored in
//!   `tests/openapi/`), each Schema Object valid JSON Schema 2020-12, every `$ref`
//!   resolving, path parameters declared, every example valid against its schema, the
//!   request examples the seed's own JSON;
//! - its routes and scopes are `template.yaml`'s HTTP API routes and Cognito scopes, and
//!   the router's;
//! - every answer of both hosts of the router (the Lambda functions behind API Gateway's
//!   JWT authorizer, and the local run) to requests covering every route and every status
//!   each can give: the status documented for the path and method, the content type
//!   documented for the status, the body valid against its schema, the documented headers
//!   there; and, the other way round, every status and problem type the document lists for
//!   an operation is answered by the hosts;
//! - the local run serves the document at `GET /openapi.yaml`.
//!
//! The checks can fail: `the_validator_refuses_what_the_document_does_not_say`,
//! `the_document_checks_refuse_a_broken_document` and
//! `the_drift_check_names_what_differs` feed them what they must refuse.

pub(crate) mod contract;

use contract::{Answer, Contract, Variant};
use oncall_domain::intent_examples::{
    CLOSURE_CANCELED, SEED_CLOSURE_DONE, SEED_CLOSURE_PARTIAL_REPAIR,
    SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED, SEED_OPENING,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use system_tests::*;
use tower::ServiceExt;

pub(crate) fn repository_file(name: &str) -> String {
    let path = format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn contract() -> Contract {
    Contract::from_yaml(&repository_file("openapi.yaml")).expect("openapi.yaml is YAML")
}

fn meta_schema() -> Value {
    serde_json::from_str(&repository_file(
        "tests/openapi/oas-3.1-schema-2022-10-07.json",
    ))
    .expect("the vendored OpenAPI 3.1 schema is JSON")
}

fn template() -> Value {
    contract::parse_yaml(&repository_file("template.yaml")).expect("template.yaml is YAML")
}

/// The value of a named example of the document (`#/components/examples/{name}`).
fn example(contract: &Contract, name: &str) -> Value {
    contract
        .resolve(&format!("/components/examples/{name}/value"))
        .unwrap_or_else(|e| panic!("example {name}: {e}"))
        .0
        .clone()
}

// ---------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------

#[test]
fn the_document_is_valid_openapi_3_1() {
    let contract = contract();
    assert_eq!(contract.doc["openapi"], "3.1.0");
    let problems = contract.document_problems(&meta_schema());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        contract.examples().len() >= 10,
        "the examples are found (and so checked)"
    );
}

/// A change made to a copy of the document.
type Change = dyn Fn(&mut Value);

#[test]
fn the_document_checks_refuse_a_broken_document() {
    let meta = meta_schema();
    let broken = |change: &dyn Fn(&mut Value)| {
        let mut doc = contract().doc;
        change(&mut doc);
        Contract::new(doc).document_problems(&meta).join("\n")
    };
    let cases: [(&str, &Change, &str); 6] = [
        (
            "no info",
            &|doc| {
                doc.as_object_mut().unwrap().remove("info");
            },
            "\"info\" is a required property",
        ),
        (
            "a status that is not one",
            &|doc| {
                doc["paths"]["/interventions"]["post"]["responses"]["2000"] =
                    json!({"description": "x"});
            },
            "OpenAPI 3.1 schema",
        ),
        (
            "a dangling $ref",
            &|doc| {
                doc["components"]["schemas"]["FileView"]["properties"]["events"]["items"] =
                    json!({"$ref": "#/components/schemas/Nowhere"});
            },
            "#/components/schemas/Nowhere",
        ),
        (
            "a schema that is not JSON Schema",
            &|doc| doc["components"]["schemas"]["Outcome"]["type"] = json!("text"),
            "not a JSON Schema 2020-12 schema",
        ),
        (
            "an example its schema refuses",
            &|doc| {
                doc["components"]["examples"]["SeedOpening"]["value"]["workType"] =
                    json!("preventive")
            },
            "example #/components/examples/SeedOpening",
        ),
        (
            "a path parameter never declared",
            &|doc| {
                let paths = doc["paths"].as_object_mut().unwrap();
                let item = paths.remove("/interventions/{reference}").unwrap();
                paths.insert("/interventions/{id}".into(), item);
            },
            "path parameters declared",
        ),
    ];
    for (name, change, expected) in cases {
        let problems = broken(change);
        assert!(
            problems.contains(expected),
            "{name}: expected a problem with {expected:?}, got:\n{problems}"
        );
    }
}

#[test]
fn the_documents_request_examples_are_the_seeds_json() {
    let contract = contract();
    for (name, seed) in [
        ("SeedOpening", SEED_OPENING),
        ("SeedClosureDone", SEED_CLOSURE_DONE),
        ("SeedClosurePartialRepair", SEED_CLOSURE_PARTIAL_REPAIR),
        ("ClosureCanceled", CLOSURE_CANCELED),
    ] {
        let seed: Value = serde_json::from_str(seed).unwrap();
        assert_eq!(example(&contract, name), seed, "example {name}");
    }
    // Used as the examples of the request bodies.
    let request = |pointer: &str| contract.resolve(pointer).unwrap().0.clone();
    assert_eq!(
        request(
            "/paths/~1interventions/post/requestBody/content/application~1json/examples/seedOpening/value"
        ),
        example(&contract, "SeedOpening")
    );
    for (name, seed) in [
        ("seedClosureDone", SEED_CLOSURE_DONE),
        ("seedClosurePartialRepair", SEED_CLOSURE_PARTIAL_REPAIR),
        ("canceledAtReception", CLOSURE_CANCELED),
    ] {
        let value = request(&format!(
            "/paths/~1interventions~1{{reference}}~1closure/post/requestBody/content/application~1json/examples/{name}/value"
        ));
        let seed: Value = serde_json::from_str(seed).unwrap();
        assert_eq!(value, seed, "closure example {name}");
    }
    // The log in the claim's answer is what the bridge sends Intent for the seed.
    let sent = oncall_domain::validation::parse_intervention_log(SEED_OPENING.as_bytes())
        .unwrap()
        .to_wire_json();
    assert_eq!(
        example(&contract, "ClaimDelivered")["events"][0]["log"],
        sent
    );
}

// ---------------------------------------------------------------------------------------
// Drift: template.yaml, the router and the document
// ---------------------------------------------------------------------------------------

#[test]
fn template_yaml_the_router_and_the_document_have_the_same_routes_and_scopes() {
    let contract = contract();
    let template = template();
    let template_routes = contract::template_routes(&template);
    assert_eq!(
        template_routes.len(),
        partner_api::Route::ALL.len(),
        "template.yaml's HTTP API routes are found: {template_routes:?}"
    );
    let mut drift = contract::route_drift(
        "template.yaml",
        &template_routes,
        "openapi.yaml",
        &contract.routes(),
    );
    let router: BTreeSet<String> = partner_api::Route::ALL
        .iter()
        .map(|route| route.key().to_string())
        .collect();
    let documented: BTreeSet<String> = contract.routes().into_keys().collect();
    for route in router.difference(&documented) {
        drift.push(format!("{route} is in the router, not in openapi.yaml"));
    }
    for route in documented.difference(&router) {
        drift.push(format!("{route} is in openapi.yaml, not in the router"));
    }

    // The scopes: the ones the Cognito resource server defines, with its descriptions.
    let defined = contract::template_scopes(&template);
    let documented_scopes: BTreeMap<String, String> = contract.doc["components"]["securitySchemes"]
        [contract::OAUTH_SCHEME]["flows"]["clientCredentials"]["scopes"]
        .as_object()
        .expect("the OAuth2 scheme lists its scopes")
        .iter()
        .map(|(name, description)| (name.clone(), description.as_str().unwrap_or("").into()))
        .collect();
    if defined != documented_scopes {
        drift.push(format!(
            "scopes: template.yaml defines {defined:?}, openapi.yaml {documented_scopes:?}"
        ));
    }
    assert!(drift.is_empty(), "{}", drift.join("\n"));
}

#[test]
fn the_drift_check_names_what_differs() {
    let contract = contract();
    let mut template = template();
    // CloudFormation's tags are tolerated: their values are kept.
    let events = &mut template["Resources"]["ClaimIntakeFunction"]["Properties"]["Events"];
    assert_eq!(
        events["OpenIntervention"]["Properties"]["ApiId"],
        "PartnerApi"
    );
    events["DeleteIntervention"] = json!({
        "Type": "HttpApi",
        "Properties": {"Method": "DELETE", "Path": "/interventions/{reference}",
                       "Auth": {"AuthorizationScopes": ["oncall-bridge/interventions.write"]}}
    });
    events["GetIntervention"]["Properties"]["Auth"]["AuthorizationScopes"] =
        json!(["oncall-bridge/interventions.write"]);
    let closure = &mut template["Resources"]["InterventionClosureFunction"]["Properties"]["Events"];
    closure
        .as_object_mut()
        .unwrap()
        .remove("RequestDocumentUpload");
    let drift = contract::route_drift(
        "template.yaml",
        &contract::template_routes(&template),
        "openapi.yaml",
        &contract.routes(),
    )
    .join("\n");
    for expected in [
        "DELETE /interventions/{reference} is in template.yaml, not in openapi.yaml",
        "POST /interventions/{reference}/documents is in openapi.yaml, not in template.yaml",
        "GET /interventions/{reference}: scopes {\"oncall-bridge/interventions.write\"} in template.yaml, {\"oncall-bridge/interventions.read\"} in openapi.yaml",
    ] {
        assert!(drift.contains(expected), "{expected:?} not in:\n{drift}");
    }
}

// ---------------------------------------------------------------------------------------
// The two hosts
// ---------------------------------------------------------------------------------------

/// Who calls: the same partners on both hosts (partner-a on contract1 and contract9,
/// partner-b on contract2, partner-c sharing contract9 with partner-a).
#[derive(Clone, Copy, Debug)]
enum Who {
    A,
    B,
    C,
    Nobody,
}

enum Host {
    /// A partner function: `lambda_http`'s request from an API Gateway event, through the
    /// function's router (the claim-intake or the closure function's routes).
    Lambda(Arc<partner_lambda::LambdaPartnerApi>),
    /// The local run's router (bearer tokens).
    Local(axum::Router),
}

impl Host {
    fn name(&self) -> &'static str {
        match self {
            Host::Lambda(_) => "lambda",
            Host::Local(_) => "local",
        }
    }

    async fn send(
        &self,
        method: &'static str,
        uri: &str,
        who: Who,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let response = match self {
            Host::Lambda(api) => {
                let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
                let routes = if path.ends_with("/closure") || path.ends_with("/documents") {
                    CLOSURE
                } else {
                    INTAKE
                };
                let request = ApiGatewayRequest {
                    route_key: "",
                    method,
                    path: path.to_string(),
                    path_parameters: None,
                    query: query
                        .split_once('=')
                        .map(|(name, value)| (name.to_string(), value.to_string())),
                    client_id: match who {
                        Who::A => Some("partner-a".into()),
                        Who::B => Some("partner-b".into()),
                        Who::C => Some("partner-c".into()),
                        Who::Nobody => None,
                    },
                    content_type: content_type.map(str::to_string),
                    body: (!body.is_empty()).then(|| body.to_vec()),
                };
                let (parts, _) = request.into_request().into_parts();
                partner_lambda::router(api.clone(), routes)
                    .oneshot(http::Request::from_parts(parts, body_of(body)))
                    .await
                    .expect("the router always answers")
            }
            Host::Local(router) => {
                let mut request = http::Request::builder().method(method).uri(uri);
                if let Some(content_type) = content_type {
                    request = request.header("content-type", content_type);
                }
                let token = match who {
                    Who::A => Some("token-a"),
                    Who::B => Some("token-b"),
                    Who::C => Some("token-c"),
                    Who::Nobody => None,
                };
                if let Some(token) = token {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
                router
                    .clone()
                    .oneshot(request.body(body_of(body)).unwrap())
                    .await
                    .expect("the router always answers")
            }
        };
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("a readable body")
                .to_vec(),
        }
    }
}

/// A step's body that stands for one breaking off before its end: its first bytes come,
/// then the connection fails.
const BREAKS_OFF: &[u8] = b"{\"status\": \"open\", \"event\": <the body breaks off here>";

/// `body` as a request body ([`BREAKS_OFF`] as one that breaks off).
fn body_of(body: &[u8]) -> axum::body::Body {
    if body != BREAKS_OFF {
        return axum::body::Body::from(body.to_vec());
    }
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(&BREAKS_OFF[..24])),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the client went away",
        )),
    ];
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

/// The local run's router on a fresh data folder, Intent being `simulator`, with the test
/// partners' tokens.
fn local_host(
    simulator: &IntentSimulator,
    data: &tempfile::TempDir,
) -> (Host, Arc<local_bridge::LocalBridge>) {
    install_crypto_provider();
    let mut config = local_config(data.path());
    for (client_id, token, contracts) in [
        ("partner-a", "token-a", vec!["contract1", "contract9"]),
        ("partner-b", "token-b", vec!["contract2"]),
        ("partner-c", "token-c", vec!["contract9"]),
    ] {
        config
            .partners
            .partners
            .push(local_bridge::config::PartnerEntry {
                client_id: client_id.into(),
                token: token.into(),
                contracts: contracts.into_iter().map(str::to_string).collect(),
            });
    }
    let bridge = Arc::new(local_bridge_on(config, simulator));
    (Host::Local(local_bridge::router(bridge.clone())), bridge)
}

/// `seed` with another reference and contract.
fn body_for(seed: &str, reference: &str, contract: &str) -> Vec<u8> {
    let mut value: Value = serde_json::from_str(seed).unwrap();
    value["reference"] = json!(reference);
    value["contractReference"] = json!(contract);
    serde_json::to_vec(&value).unwrap()
}

fn claim(reference: &str, contract: &str) -> Vec<u8> {
    body_for(SEED_OPENING, reference, contract)
}

fn seed_with(seed: &str, reference: &str, change: impl Fn(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&body_for(seed, reference, "contract1")).unwrap();
    change(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn too_large() -> Vec<u8> {
    seed_with(SEED_OPENING, "OA-1", |v| {
        v["padding"] = json!("x".repeat(partner_api::MAX_BODY_BYTES))
    })
}

fn upload(file_name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"fileName": file_name, "size": 48213})).unwrap()
}

const JSON: Option<&str> = Some("application/json");
const TEXT: Option<&str> = Some("text/plain");

/// One request of a run and the status it is there for.
struct Step {
    status: u16,
    label: &'static str,
    method: &'static str,
    uri: &'static str,
    who: Who,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// `status`, `label`, `"METHOD /uri"`, who, content type, body.
fn step(
    status: u16,
    label: &'static str,
    route: &'static str,
    who: Who,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
) -> Step {
    let (method, uri) = route.split_once(' ').expect("METHOD /uri");
    Step {
        status,
        label,
        method,
        uri,
        who,
        content_type,
        body: body.into(),
    }
}

/// Every route, every status a request can get from either host while Intent is up, in
/// order (each step may rely on the ones before it).
#[rustfmt::skip]
fn steps_of_both_hosts() -> Vec<Step> {
    use Who::*;
    let done = || body_for(SEED_CLOSURE_DONE, "OA-1", "contract1");
    vec![
        // Claims.
        step(201, "a claim Intent accepts", "POST /interventions", A, JSON, claim("OA-1", "contract1")),
        step(200, "the same claim again", "POST /interventions", A, JSON, claim("OA-1", "contract1")),
        step(409, "another content under the same reference", "POST /interventions", A, JSON,
             seed_with(SEED_OPENING, "OA-1", |v| v["criticalLevel"] = json!(1))),
        step(201, "a claim under a shared contract", "POST /interventions", A, JSON, claim("OA-9", "contract9")),
        step(404, "another partner's reference under a shared contract", "POST /interventions", C, JSON,
             claim("OA-9", "contract9")),
        step(401, "a claim without a caller", "POST /interventions", Nobody, JSON, claim("OA-2", "contract1")),
        step(403, "a claim on another partner's contract", "POST /interventions", B, JSON, claim("OA-2", "contract1")),
        step(415, "a claim in text/plain", "POST /interventions", A, TEXT, claim("OA-2", "contract1")),
        step(413, "a claim over 128 KiB", "POST /interventions", A, JSON, too_large()),
        step(400, "the seed's partial repair as published", "POST /interventions", A, JSON,
             SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED),
        step(400, "a claim whose body breaks off", "POST /interventions", A, JSON, BREAKS_OFF),
        step(422, "an unknown status", "POST /interventions", A, JSON,
             seed_with(SEED_OPENING, "INTER-0500", |v| v["status"] = json!("exploded"))),
        step(422, "an empty object", "POST /interventions", A, JSON, "{}"),
        step(422, "a closure sent as a claim", "POST /interventions", A, JSON,
             body_for(SEED_CLOSURE_DONE, "OA-2", "contract1")),
        // Reading.
        step(200, "reading a file", "GET /interventions/OA-1?contractReference=contract1", A, None, ""),
        step(400, "reading without a contract", "GET /interventions/OA-1", A, None, ""),
        step(401, "reading without a caller", "GET /interventions/OA-1?contractReference=contract1", Nobody, None, ""),
        step(403, "reading under another partner's contract", "GET /interventions/OA-1?contractReference=contract1",
             B, None, ""),
        step(404, "reading an unknown file", "GET /interventions/OA-404?contractReference=contract1", A, None, ""),
        step(404, "reading another partner's file", "GET /interventions/OA-9?contractReference=contract9", C, None, ""),
        // Closing.
        step(200, "a closure Intent accepts", "POST /interventions/OA-1/closure?contractReference=contract1", A, JSON,
             done()),
        step(200, "the same closure again", "POST /interventions/OA-1/closure?contractReference=contract1", A, JSON,
             done()),
        step(409, "another closure of a closed file", "POST /interventions/OA-1/closure?contractReference=contract1",
             A, JSON, body_for(SEED_CLOSURE_PARTIAL_REPAIR, "OA-1", "contract1")),
        step(401, "a closure without a caller", "POST /interventions/OA-1/closure", Nobody, JSON, done()),
        step(403, "a closure on another partner's contract", "POST /interventions/OA-1/closure", B, JSON, done()),
        step(415, "a closure in text/plain", "POST /interventions/OA-1/closure", A, TEXT, done()),
        step(413, "a closure over 128 KiB", "POST /interventions/OA-1/closure", A, JSON, too_large()),
        step(400, "a malformed closure", "POST /interventions/OA-1/closure", A, JSON, "{\"status\": \"closed\","),
        step(400, "a closure whose body breaks off", "POST /interventions/OA-1/closure", A, JSON, BREAKS_OFF),
        step(422, "a closure with an unknown workType", "POST /interventions/OA-1/closure", A, JSON,
             seed_with(SEED_CLOSURE_DONE, "OA-1", |v| v["workType"] = json!("magic"))),
        step(422, "a body for another reference", "POST /interventions/OA-3/closure", A, JSON, done()),
        step(422, "a query contract contradicting the body",
             "POST /interventions/OA-1/closure?contractReference=contract2", A, JSON, done()),
        step(404, "closing an unknown file", "POST /interventions/OA-404/closure", A, JSON,
             body_for(SEED_CLOSURE_DONE, "OA-404", "contract1")),
        step(404, "closing a reference no file can have", "POST /interventions/OA%201/closure", A, JSON, done()),
        step(201, "a claim to cancel", "POST /interventions", A, JSON, claim("OA-5", "contract1")),
        step(200, "a refusal at reception", "POST /interventions/OA-5/closure", A, JSON,
             body_for(CLOSURE_CANCELED, "OA-5", "contract1")),
        // Uploads.
        step(200, "an upload for a closed file", "POST /interventions/OA-1/documents?contractReference=contract1",
             A, JSON, upload("quitus signé.pdf")),
        step(400, "an upload without a contract", "POST /interventions/OA-1/documents", A, JSON, upload("quitus.pdf")),
        step(400, "a malformed upload request", "POST /interventions/OA-1/documents?contractReference=contract1",
             A, JSON, "{\"fileName\": "),
        step(400, "an upload request whose body breaks off",
             "POST /interventions/OA-1/documents?contractReference=contract1", A, JSON, BREAKS_OFF),
        step(401, "an upload without a caller", "POST /interventions/OA-1/documents?contractReference=contract1",
             Nobody, JSON, upload("quitus.pdf")),
        step(403, "an upload under another partner's contract",
             "POST /interventions/OA-1/documents?contractReference=contract1", B, JSON, upload("quitus.pdf")),
        step(404, "an upload for an unknown file", "POST /interventions/OA-404/documents?contractReference=contract1",
             A, JSON, upload("quitus.pdf")),
        step(409, "an upload for a canceled file", "POST /interventions/OA-5/documents?contractReference=contract1",
             A, JSON, upload("quitus.pdf")),
        step(422, "an upload of a .txt", "POST /interventions/OA-1/documents?contractReference=contract1",
             A, JSON, upload("quitus.txt")),
        step(415, "an upload request in text/plain", "POST /interventions/OA-1/documents?contractReference=contract1",
             A, TEXT, upload("quitus.pdf")),
        step(413, "an upload request over 128 KiB", "POST /interventions/OA-1/documents?contractReference=contract1",
             A, JSON, too_large()),
    ]
}

/// What only the Lambda host can be made to answer from outside, each step on the host
/// named first: `unsigned` (no documents bucket to sign for), `storeless` (a table that
/// does not exist), `corrupt` (a stored file item that is not one).
#[rustfmt::skip]
fn steps_of_the_lambda_host() -> Vec<(&'static str, Step)> {
    use Who::*;
    let done = || body_for(SEED_CLOSURE_DONE, "OA-1", "contract1");
    let corrupt = || body_for(SEED_CLOSURE_DONE, "OA-CORRUPT", "contract1");
    vec![
        ("unsigned", step(503, "an upload nobody can sign", "POST /interventions/OA-1/documents?contractReference=contract1",
                          A, JSON, upload("quitus.pdf"))),
        ("storeless", step(503, "a claim, the table unavailable", "POST /interventions", A, JSON,
                           claim("OA-20", "contract1"))),
        ("storeless", step(503, "reading, the table unavailable", "GET /interventions/OA-1?contractReference=contract1",
                           A, None, "")),
        ("storeless", step(503, "a closure, the table unavailable",
                           "POST /interventions/OA-1/closure?contractReference=contract1", A, JSON, done())),
        ("storeless", step(503, "an upload, the table unavailable",
                           "POST /interventions/OA-1/documents?contractReference=contract1", A, JSON, upload("quitus.pdf"))),
        ("corrupt", step(500, "a claim over an unreadable file", "POST /interventions", A, JSON,
                         claim("OA-CORRUPT", "contract1"))),
        ("corrupt", step(500, "reading an unreadable file", "GET /interventions/OA-CORRUPT?contractReference=contract1",
                         A, None, "")),
        ("corrupt", step(500, "closing an unreadable file", "POST /interventions/OA-CORRUPT/closure", A, JSON, corrupt())),
        ("corrupt", step(500, "an upload for an unreadable file",
                         "POST /interventions/OA-CORRUPT/documents?contractReference=contract1", A, JSON,
                         upload("quitus.pdf"))),
    ]
}

/// One request and its answer.
struct Exchange {
    host: &'static str,
    label: &'static str,
    method: &'static str,
    uri: &'static str,
    answer: Answer,
}

/// The exchanges of a run, and the answers that were not the status their step is there
/// for.
#[derive(Default)]
struct Run {
    exchanges: Vec<Exchange>,
    unexpected: Vec<String>,
}

impl Run {
    /// Sends `step` to `host`; its answer's JSON.
    async fn send(&mut self, host: &Host, step: &Step) -> Value {
        let answer = host
            .send(
                step.method,
                step.uri,
                step.who,
                step.content_type,
                &step.body,
            )
            .await;
        if answer.status != step.status {
            self.unexpected.push(format!(
                "{}: {}: {} expected, {} answered: {}",
                host.name(),
                step.label,
                step.status,
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        let json = answer.json();
        self.exchanges.push(Exchange {
            host: host.name(),
            label: step.label,
            method: step.method,
            uri: step.uri,
            answer,
        });
        json
    }

    /// The JSON answer `host` gave to the step `label`.
    fn answer(&self, host: &Host, label: &str) -> Value {
        self.exchanges
            .iter()
            .find(|e| e.host == host.name() && e.label == label)
            .unwrap_or_else(|| panic!("no step {label}"))
            .answer
            .json()
    }
}

/// Every route, every status a request can get from either host; then Intent refusing an
/// event, then down.
async fn answers_of_both_hosts(run: &mut Run, host: &Host, simulator: &IntentSimulator) {
    for step in steps_of_both_hosts() {
        run.send(host, &step).await;
    }
    // The document's examples of problems are real answers.
    let contract = contract();
    for (label, name) in [
        ("the seed's partial repair as published", "MalformedSeed"),
        ("an unknown status", "UnknownStatus"),
        ("another closure of a closed file", "AlreadyClosed"),
    ] {
        assert_eq!(
            run.answer(host, label),
            example(&contract, name),
            "{}: the example {name} is the answer to {label}",
            host.name()
        );
    }

    // Last: these faults stay queued.
    simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 400,
            retry_after: None,
            body: Some(json!({"code": "validation_error", "message": "refused", "details": []})),
        },
        times: 1,
    });
    let refused = step(
        202,
        "a claim Intent refuses",
        "POST /interventions",
        Who::A,
        JSON,
        claim("OA-6", "contract1"),
    );
    assert_eq!(run.send(host, &refused).await["delivery"], "failed");
    simulator.inject(Fault::status(Endpoint::InterventionLogs, 503, 1000));
    let down = [
        step(
            202,
            "a claim while Intent is down",
            "POST /interventions",
            Who::A,
            JSON,
            claim("OA-7", "contract1"),
        ),
        step(
            202,
            "a closure while Intent is down",
            "POST /interventions/OA-9/closure",
            Who::A,
            JSON,
            body_for(SEED_CLOSURE_DONE, "OA-9", "contract9"),
        ),
    ];
    for step in down {
        assert_eq!(
            run.send(host, &step).await["delivery"],
            "pending",
            "{}",
            step.label
        );
    }
}

/// A partner function of `bridge` wired on `table`, with or without a documents bucket.
fn lambda_api(bridge: &Bridge, table: &str, bucket: bool) -> Host {
    let config = partner_lambda::FunctionConfig {
        documents_bucket: bucket.then(|| bridge.documents_bucket.clone()),
        ..function_config(aws_wiring::CoreConfig {
            table_name: table.to_string(),
            event_bus_name: bridge.tap.bus_name.clone(),
            event_source: SOURCE.into(),
            intent: fast_intent_config(&bridge.simulator),
            intent_secret_arn: None,
        })
    };
    Host::Lambda(Arc::new(
        partner_lambda::build_api(&bridge.sdk, config).unwrap(),
    ))
}

/// What only the Lambda host can be made to answer from outside: its store unavailable, a
/// stored file it cannot read (500), no signer for uploads.
async fn failures_of_the_lambda_host(run: &mut Run, bridge: &Bridge) {
    // A file item that is not one (no state, no owner, no events).
    use aws_sdk_dynamodb::types::AttributeValue::S;
    bridge
        .dynamodb
        .put_item()
        .table_name(&bridge.table)
        .item("pk", S("FILE#contract1#OA-CORRUPT".into()))
        .item("sk", S("FILE".into()))
        .send()
        .await
        .unwrap();
    let unsigned = lambda_api(bridge, &bridge.table, false);
    let storeless = lambda_api(bridge, &unique("missing-table"), true);
    let corrupt = Host::Lambda(bridge.api.clone());
    for (host, step) in steps_of_the_lambda_host() {
        let host = match host {
            "unsigned" => &unsigned,
            "storeless" => &storeless,
            _ => &corrupt,
        };
        run.send(host, &step).await;
    }
}

/// Problem types the local host cannot be made to answer from outside (its embedded store
/// and signer do not fail on demand): they come from the Lambda host.
const LAMBDA_HOST_ONLY: [&str; 3] = [
    "urn:oncall-bridge:problem:internal",
    "urn:oncall-bridge:problem:store-unavailable",
    "urn:oncall-bridge:problem:uploads-unavailable",
];

#[tokio::test]
async fn every_answer_of_both_hosts_is_documented_and_every_documented_answer_is_given() {
    let contract = contract();
    let mut run = Run::default();

    let bridge = Bridge::start().await;
    let lambda = Host::Lambda(bridge.api.clone());
    answers_of_both_hosts(&mut run, &lambda, &bridge.simulator).await;
    failures_of_the_lambda_host(&mut run, &bridge).await;

    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (local, _bridge) = local_host(&simulator, &data);
    answers_of_both_hosts(&mut run, &local, &simulator).await;

    // A route the API does not have: the problem the document describes for it.
    let (no_route, _) = contract
        .resolve("/components/schemas/NoRouteProblem")
        .unwrap();
    let no_route = no_route.clone();
    for host in [&lambda, &local] {
        let answer = host
            .send(
                "DELETE",
                "/interventions/OA-1?contractReference=contract1",
                Who::A,
                None,
                b"",
            )
            .await;
        assert_eq!(answer.status, 404);
        assert_eq!(answer.content_type(), Some(partner_api::PROBLEM_JSON));
        let errors = contract.schema_errors(&no_route, &answer.json());
        assert!(errors.is_empty(), "{}: {}", host.name(), errors.join("\n"));
    }

    assert!(run.unexpected.is_empty(), "{}", run.unexpected.join("\n"));
    let mut undocumented = Vec::new();
    let mut seen: BTreeMap<&str, BTreeSet<Variant>> = BTreeMap::new();
    for exchange in &run.exchanges {
        match contract.check(exchange.method, exchange.uri, &exchange.answer) {
            Ok(variant) => {
                seen.entry(exchange.host).or_default().insert(variant);
            }
            Err(errors) => undocumented.push(format!(
                "{}: {} ({} {}):\n  {}",
                exchange.host,
                exchange.label,
                exchange.method,
                exchange.uri,
                errors.join("\n  ")
            )),
        }
    }
    assert!(
        undocumented.is_empty(),
        "answers the document does not describe:\n{}",
        undocumented.join("\n")
    );

    // The other way round: every answer the document lists is given, by both hosts but for
    // what only the Lambda host can be made to fail with.
    let documented = contract.documented_variants();
    assert!(
        documented.len() > 40,
        "{} documented answers",
        documented.len()
    );
    for host in ["lambda", "local"] {
        let seen = seen.get(host).cloned().unwrap_or_default();
        let never: Vec<String> = documented
            .difference(&seen)
            .filter(|v| host == "lambda" || !LAMBDA_HOST_ONLY.contains(&v.kind.as_str()))
            .map(Variant::to_string)
            .collect();
        assert!(
            never.is_empty(),
            "{host}: documented but never answered:\n{}",
            never.join("\n")
        );
    }
}

#[tokio::test]
async fn the_validator_refuses_what_the_document_does_not_say() {
    let contract = contract();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (host, _bridge) = local_host(&simulator, &data);
    let created = host
        .send(
            "POST",
            "/interventions",
            Who::A,
            JSON,
            &claim("OA-1", "contract1"),
        )
        .await;
    assert_eq!(created.status, 201);
    contract
        .check("POST", "/interventions", &created)
        .expect("the real answer is documented");
    let invalid = host
        .send(
            "POST",
            "/interventions",
            Who::A,
            JSON,
            &seed_with(SEED_OPENING, "OA-2", |v| v["status"] = json!("exploded")),
        )
        .await;
    assert_eq!(invalid.status, 422);
    contract
        .check("POST", "/interventions", &invalid)
        .expect("the real answer is documented");

    let with_body = |answer: &Answer, change: &dyn Fn(&mut Value)| {
        let mut body = answer.json();
        change(&mut body);
        Answer {
            body: serde_json::to_vec(&body).unwrap(),
            ..answer.clone()
        }
    };
    let cases: Vec<(&str, &str, &str, Answer, &str)> = vec![
        (
            "an undocumented status",
            "POST",
            "/interventions",
            Answer {
                status: 418,
                ..created.clone()
            },
            "status 418 is not documented",
        ),
        (
            "an undocumented content type",
            "POST",
            "/interventions",
            {
                let mut answer = created.clone();
                answer
                    .headers
                    .insert("content-type", "text/plain".parse().unwrap());
                answer
            },
            "content type text/plain is not documented",
        ),
        (
            "a required header missing",
            "POST",
            "/interventions",
            {
                let mut answer = created.clone();
                answer.headers.remove("location");
                answer
            },
            "the required header Location is missing",
        ),
        (
            "a required member missing",
            "POST",
            "/interventions",
            with_body(&created, &|b| {
                b.as_object_mut().unwrap().remove("events");
            }),
            "\"events\" is a required property",
        ),
        (
            "an undocumented member",
            "POST",
            "/interventions",
            with_body(&created, &|b| b["internalNote"] = json!("x")),
            "Additional properties are not allowed",
        ),
        (
            "a value outside its enumeration",
            "POST",
            "/interventions",
            with_body(&created, &|b| {
                b["events"][0]["delivery"]["state"] = json!("lost")
            }),
            "at /events/0/delivery",
        ),
        (
            "a date that is not one",
            "POST",
            "/interventions",
            with_body(&created, &|b| {
                b["events"][0]["recordedAt"] = json!("yesterday")
            }),
            "at /events/0/recordedAt",
        ),
        (
            "a problem of another type than documented for the status",
            "POST",
            "/interventions",
            with_body(&invalid, &|b| {
                b["type"] = json!("urn:oncall-bridge:problem:unprocessable")
            }),
            "'oneOf'",
        ),
        (
            "an undocumented operation",
            "PUT",
            "/interventions",
            created.clone(),
            "the operation is not documented",
        ),
        (
            "an undocumented path",
            "POST",
            "/interventions/OA-1/notes",
            created.clone(),
            "the path is not documented",
        ),
    ];
    for (name, method, uri, answer, expected) in cases {
        match contract.check(method, uri, &answer) {
            Ok(variant) => panic!("{name}: accepted as {variant}"),
            Err(errors) => {
                let errors = errors.join("\n");
                assert!(
                    errors.contains(expected),
                    "{name}: expected {expected:?} in:\n{errors}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_local_run_serves_the_document() {
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (host, _bridge) = local_host(&simulator, &data);
    let answer = host
        .send("GET", "/openapi.yaml", Who::Nobody, None, b"")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type(), Some("application/yaml"));
    assert_eq!(
        String::from_utf8(answer.body).unwrap(),
        repository_file("openapi.yaml"),
        "the file at the repository root, as it is now"
    );
}
