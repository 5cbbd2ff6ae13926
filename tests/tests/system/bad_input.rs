//! A corpus of hostile or broken requests, run against both hosts of the partner API (the
//! Lambda functions' router behind API Gateway's JWT authorizer, and the local run's
//! router with its bearer tokens): each gets a 4xx `application/problem+json` that names
//! the problem without echoing personal data, and nothing is stored or sent to Intent.

use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use serde_json::{Value, json};
use std::sync::Arc;
use system_tests::*;
use tower::ServiceExt;

/// Who calls.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// partner-a, on contract1.
    Partner,
    /// partner-b, on contract2 only.
    OtherPartner,
    /// An authenticated client no partner is configured for.
    Stranger,
    Nobody,
}

#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    query: Option<(&'static str, String)>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    who: Who,
}

fn claim(name: &'static str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        method: "POST",
        path: "/interventions".into(),
        query: None,
        content_type: Some("application/json"),
        body: body.into(),
        who: Who::Partner,
    }
}

fn closure(name: &'static str, reference: &str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        path: format!(
            "/interventions/{}/closure",
            partner_api::percent_encode(reference)
        ),
        ..claim(name, body)
    }
}

fn read(name: &'static str, reference: &str, contract: Option<&str>) -> Case {
    Case {
        method: "GET",
        path: format!("/interventions/{}", partner_api::percent_encode(reference)),
        query: contract.map(|c| ("contractReference", c.to_string())),
        content_type: None,
        body: Vec::new(),
        ..claim(name, Vec::new())
    }
}

/// The seed's claim with `change` applied to its JSON.
fn seed_with(change: impl Fn(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_str(SEED_OPENING).unwrap();
    change(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn corpus() -> Vec<Case> {
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases = vec![
        // Encodings.
        claim(
            "latin-1 bytes",
            [
                &b"{\"reference\": \"INTER-0500\", \"description\": \"caf"[..],
                &[0xe9],
                b"\"}",
            ]
            .concat(),
        ),
        claim(
            "invalid UTF-8",
            [b"{\"reference\": \"\xff\xfe\"}".as_slice()].concat(),
        ),
        claim(
            "UTF-16 with a BOM",
            [&[0xff, 0xfe][..], "{\0}\0".as_bytes()].concat(),
        ),
        claim(
            "UTF-8 BOM",
            [&[0xef, 0xbb, 0xbf][..], SEED_OPENING.as_bytes()].concat(),
        ),
        claim("NUL bytes", b"{\0}".to_vec()),
        // Sizes and nesting.
        claim("empty body", Vec::new()),
        claim("one space", b" ".to_vec()),
        claim(
            "over the size limit",
            seed_with(|v| v["padding"] = json!("x".repeat(partner_api::MAX_BODY_BYTES))),
        ),
        claim("nested ten thousand deep", nested.clone().into_bytes()),
        claim(
            "a description of a megabyte",
            seed_with(|v| v["description"] = json!("DUPONT ".repeat(20_000))),
        ),
        claim(
            "a huge number",
            seed_with(|v| v["criticalLevel"] = json!(1e300)),
        ),
        claim(
            "twenty-one contacts",
            seed_with(|v| {
                v["contacts"] = json!(vec![
                    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:DUPONT\r\nEND:VCARD";
                    21
                ])
            }),
        ),
        claim(
            "a contact of 5000 characters",
            seed_with(|v| {
                v["contacts"] = json!([format!(
                    "BEGIN:VCARD\r\nFN:{}\r\nEND:VCARD",
                    "DUPONT".repeat(1000)
                )])
            }),
        ),
        // JSON shapes and types.
        claim("not JSON", b"reference=INTER-0500".to_vec()),
        claim(
            "truncated JSON",
            SEED_OPENING.as_bytes()[..SEED_OPENING.len() / 2].to_vec(),
        ),
        claim("null", b"null".to_vec()),
        claim("an array", b"[]".to_vec()),
        claim("a string", b"\"DUPONT\"".to_vec()),
        claim("a number", b"42".to_vec()),
        claim("an empty object", b"{}".to_vec()),
        claim(
            "reference as a number",
            seed_with(|v| v["reference"] = json!(500)),
        ),
        claim(
            "reference null",
            seed_with(|v| v["reference"] = Value::Null),
        ),
        claim(
            "no contractReference",
            seed_with(|v| {
                v.as_object_mut().unwrap().remove("contractReference");
            }),
        ),
        claim(
            "eventDate as a number",
            seed_with(|v| v["eventDate"] = json!(1583487923)),
        ),
        claim(
            "contacts as a string",
            seed_with(|v| v["contacts"] = json!("DUPONT Pierre 0685874445")),
        ),
        claim(
            "location as an array",
            seed_with(|v| v["location"] = json!(["LOGEMENT_002"])),
        ),
        claim(
            "criticalLevel as a word",
            seed_with(|v| v["criticalLevel"] = json!("urgent")),
        ),
        claim(
            "an unknown status",
            seed_with(|v| v["status"] = json!("exploded")),
        ),
        claim(
            "an unknown event",
            seed_with(|v| v["event"] = json!("teleported")),
        ),
        claim(
            "an unknown workType",
            seed_with(|v| v["workType"] = json!("magic")),
        ),
        claim("a closure sent as a claim", SEED_CLOSURE_DONE),
        claim(
            "duplicate keys of two types",
            SEED_OPENING.replacen("{", "{\"reference\": 1, ", 1),
        ),
        // References.
        claim(
            "a slash in the reference",
            seed_with(|v| v["reference"] = json!("INTER/0500")),
        ),
        claim(
            "a space in the reference",
            seed_with(|v| v["reference"] = json!("INTER 0500")),
        ),
        claim(
            "a zero-width space",
            seed_with(|v| v["reference"] = json!("INTER\u{200b}0500")),
        ),
        claim(
            "a bidi override",
            seed_with(|v| v["reference"] = json!("INTER\u{202e}0500")),
        ),
        claim(
            "a control character",
            seed_with(|v| v["reference"] = json!("INTER\n0500")),
        ),
        claim(
            "a query character",
            seed_with(|v| v["reference"] = json!("INTER?0500")),
        ),
        claim(
            "a percent sign",
            seed_with(|v| v["reference"] = json!("INTER%2F0500")),
        ),
        claim(
            "65 characters",
            seed_with(|v| v["reference"] = json!("R".repeat(65))),
        ),
        claim(
            "an empty reference",
            seed_with(|v| v["reference"] = json!("")),
        ),
        // Dates.
        claim(
            "a word for a date",
            seed_with(|v| v["eventDate"] = json!("yesterday")),
        ),
        claim(
            "month 13",
            seed_with(|v| v["eventDate"] = json!("2026-13-01T10:00:00")),
        ),
        claim(
            "an offset of 25 hours",
            seed_with(|v| v["eventDate"] = json!("2026-11-01T10:00:00+25:00")),
        ),
        claim(
            "a date in the future",
            seed_with(|v| v["eventDate"] = json!("2099-01-01T10:00:00+01:00")),
        ),
        claim(
            "a garbage logDate",
            seed_with(|v| v["logDate"] = json!("soon")),
        ),
        claim(
            "the year zero",
            seed_with(|v| v["eventDate"] = json!("0000-01-01T00:00:00Z")),
        ),
        // Headers.
        Case {
            content_type: None,
            ..claim("no content type", SEED_OPENING)
        },
        Case {
            content_type: Some("text/plain"),
            ..claim("text/plain", SEED_OPENING)
        },
        Case {
            content_type: Some("application/xml"),
            ..claim("application/xml", SEED_OPENING)
        },
        Case {
            content_type: Some("multipart/form-data; boundary=x"),
            ..claim("multipart", SEED_OPENING)
        },
        Case {
            content_type: Some("application/json; charset=latin1"),
            ..claim("a latin1 charset", SEED_OPENING)
        },
        Case {
            content_type: Some("application/json; charset=utf-16"),
            ..claim("a UTF-16 charset", SEED_OPENING)
        },
        // Callers.
        Case {
            who: Who::Nobody,
            ..claim("no caller", SEED_OPENING)
        },
        Case {
            who: Who::Stranger,
            ..claim("a caller no partner is configured for", SEED_OPENING)
        },
        Case {
            who: Who::OtherPartner,
            ..claim("another partner's contract", SEED_OPENING)
        },
        Case {
            who: Who::Nobody,
            ..read("reading without a caller", "INTER-0500", Some("contract1"))
        },
        Case {
            who: Who::OtherPartner,
            ..read("reading another contract", "INTER-0500", Some("contract1"))
        },
        // Reading and closing.
        read("reading without a contract", "INTER-0500", None),
        read("reading an unknown file", "INTER-9999", Some("contract1")),
        read("reading a slash reference", "INTER/0500", Some("contract1")),
        Case {
            // Percent-encoded bytes that are not UTF-8: no file can have that reference.
            path: "/interventions/%FF%FE".into(),
            ..read(
                "reading a reference that is not UTF-8",
                "-",
                Some("contract1"),
            )
        },
        Case {
            path: "/interventions/%C3%28/closure".into(),
            ..closure(
                "closing a reference that is not UTF-8",
                "-",
                SEED_CLOSURE_DONE,
            )
        },
        read(
            "reading a 2 KB reference",
            &"R".repeat(2_000),
            Some("contract1"),
        ),
        read(
            "reading with a contract of 2 KB",
            "INTER-0500",
            Some(&"c".repeat(2_000)),
        ),
        closure("closing an unknown file", "INTER-0500", SEED_CLOSURE_DONE),
        closure("an opening sent as a closure", "INTER-0500", SEED_OPENING),
        closure(
            "a body for another reference",
            "INTER-0501",
            SEED_CLOSURE_DONE,
        ),
        closure(
            "closing a 2 KB reference",
            &"R".repeat(2_000),
            SEED_CLOSURE_DONE,
        ),
        closure(
            "a malformed closure",
            "INTER-0500",
            b"{\"status\": \"closed\",".to_vec(),
        ),
        Case {
            who: Who::Nobody,
            ..closure("closing without a caller", "INTER-0500", SEED_CLOSURE_DONE)
        },
        Case {
            query: Some(("contractReference", "contract2".into())),
            ..closure(
                "a query contract contradicting the body",
                "INTER-0500",
                SEED_CLOSURE_DONE,
            )
        },
        Case {
            method: "DELETE",
            ..read("an unknown method", "INTER-0500", Some("contract1"))
        },
        Case {
            path: "/interventions/INTER-0500/documents/../../admin".into(),
            ..claim("a path that climbs", SEED_OPENING)
        },
        Case {
            path: "/nowhere".into(),
            ..claim("an unknown route", SEED_OPENING)
        },
        // Personal data where an identifier goes: not repeated in the error either.
        read(
            "a name and phone in place of the reference",
            "Pierre DUPONT 0685874445",
            Some("contract1"),
        ),
        read(
            "a name in place of the contract",
            "INTER-0500",
            Some("Pierre DUPONT"),
        ),
        Case {
            query: Some(("contractReference", "Pierre DUPONT".into())),
            ..closure(
                "a name in the closure's query",
                "INTER-0500",
                SEED_CLOSURE_DONE,
            )
        },
        closure(
            "a name in place of the closure's reference",
            "Pierre DUPONT",
            SEED_CLOSURE_DONE,
        ),
        Case {
            path: "/interventions/Pierre%20DUPONT/close".into(),
            ..claim("a name in an unknown route", SEED_OPENING)
        },
    ];
    cases
}

/// Personal data of the seed that must never come back in an error.
const PERSONAL: [&str; 5] = ["DUPONT", "Pierre", "0685874445", "LOGEMENT_002", "Bretagne"];

fn check(case: &Case, status: u16, content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if !(400..500).contains(&status) {
        return Some(format!("{}: status {status}: {text}", case.name));
    }
    if content_type != Some(partner_api::PROBLEM_JSON) {
        return Some(format!("{}: content type {content_type:?}", case.name));
    }
    let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if problem["detail"].as_str().is_none_or(str::is_empty) || problem["status"] != status {
        return Some(format!("{}: not a problem document: {text}", case.name));
    }
    PERSONAL
        .iter()
        .find(|secret| text.contains(*secret))
        .map(|secret| format!("{}: echoes {secret}: {text}", case.name))
}

#[tokio::test]
async fn every_hostile_request_gets_a_clean_4xx_on_the_lambda_host_and_nothing_is_stored() {
    let bridge = Bridge::start().await;
    let cases = corpus();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut problems = Vec::new();
    for case in &cases {
        let request = ApiGatewayRequest {
            route_key: "",
            method: case.method,
            path: case.path.clone(),
            path_parameters: None,
            query: case.query.clone().map(|(n, v)| (n.to_string(), v)),
            client_id: match case.who {
                Who::Partner => Some("partner-a".into()),
                Who::OtherPartner => Some("partner-b".into()),
                Who::Stranger => Some("stranger".into()),
                Who::Nobody => None,
            },
            content_type: case.content_type.map(str::to_string),
            body: (!case.body.is_empty()).then(|| case.body.clone()),
        };
        let answer = bridge.call(&partner_lambda::Route::ALL, request).await;
        let body = serde_json::to_vec(&answer.body).unwrap();
        if let Some(problem) = check(case, answer.status, answer.content_type.as_deref(), &body) {
            problems.push(problem);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(bridge.items().await.is_empty(), "nothing stored");
    assert!(
        bridge.simulator.received_logs().is_empty(),
        "nothing sent to Intent"
    );
}

#[tokio::test]
async fn every_hostile_request_gets_a_clean_4xx_on_the_local_host_and_nothing_is_stored() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = local_config(data.path());
    config
        .partners
        .partners
        .push(local_bridge::config::PartnerEntry {
            client_id: "partner-b".into(),
            token: "token-b".into(),
            contracts: vec!["contract2".into()],
        });
    let bridge = Arc::new(local_bridge_on(config, &simulator));
    let router = local_bridge::router(bridge.clone());
    let cases = corpus();
    let mut problems = Vec::new();
    for case in &cases {
        let uri = match &case.query {
            Some((name, value)) => format!(
                "{}?{name}={}",
                case.path,
                partner_api::percent_encode(value)
            ),
            None => case.path.clone(),
        };
        let mut request = http::Request::builder().method(case.method).uri(uri);
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        match case.who {
            Who::Partner => request = request.header("authorization", "Bearer demo-partner-token"),
            Who::OtherPartner => request = request.header("authorization", "Bearer token-b"),
            Who::Stranger => request = request.header("authorization", "Bearer unknown-token"),
            Who::Nobody => {}
        }
        let response = router
            .clone()
            .oneshot(
                request
                    .body(axum::body::Body::from(case.body.clone()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        if let Some(problem) = check(case, status, content_type.as_deref(), &body) {
            problems.push(problem);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    use oncall_domain::ports::ListPendingEvents;
    assert!(
        bridge
            .api
            .store
            .files_with_pending_events()
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
    assert!(
        simulator.received_logs().is_empty(),
        "nothing sent to Intent"
    );
}

/// A query naming `contractReference` twice (as API Gateway passes it on: both in the raw
/// query string) gets a problem document like every other answer, not a plain-text 400 of
/// the framework's query parsing. The first value counts.
#[tokio::test]
async fn a_contract_given_twice_in_the_query_gets_a_problem_document() {
    let bridge = Bridge::start().await;
    let request = ApiGatewayRequest {
        route_key: "",
        method: "GET",
        path: "/interventions/INTER-0500".into(),
        path_parameters: None,
        query: Some(("contractReference".into(), "contract1".into())),
        client_id: Some("partner-a".into()),
        content_type: None,
        body: None,
    };
    let mut request = request.into_request();
    *request.uri_mut() =
        "https://api.example.test/interventions/INTER-0500?contractReference=contract1&contractReference=contract2"
            .parse()
            .unwrap();
    let response = partner_lambda::router(bridge.api.clone(), &partner_lambda::Route::ALL)
        .oneshot(request)
        .await
        .unwrap();
    let answer = read_answer(response).await;
    // No such file under contract1 (the first value): its own 404.
    assert_problem(&answer, 404);
}

/// A body that breaks off before its end (the client gone mid-request, a malformed chunked
/// encoding) is a 400 saying so: it is not too large, and nothing is stored.
#[tokio::test]
async fn a_body_that_breaks_off_is_a_bad_request_not_a_payload_too_large() {
    let bridge = Bridge::start().await;
    let first_half = &SEED_OPENING.as_bytes()[..SEED_OPENING.len() / 2];
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::copy_from_slice(first_half)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let request = ApiGatewayRequest {
        route_key: "",
        method: "POST",
        path: "/interventions".into(),
        path_parameters: None,
        query: None,
        client_id: Some("partner-a".into()),
        content_type: Some("application/json".into()),
        body: None,
    };
    let (parts, _) = request.into_request().into_parts();
    let request = http::Request::from_parts(
        parts,
        axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
    );
    let response = partner_lambda::router(bridge.api.clone(), &partner_lambda::Route::ALL)
        .oneshot(request)
        .await
        .unwrap();
    let answer = read_answer(response).await;
    assert_problem(&answer, 400);
    assert_eq!(
        answer.body["type"], "urn:oncall-bridge:problem:unreadable-body",
        "{:#}",
        answer.body
    );
    assert!(
        bridge.simulator.received_logs().is_empty(),
        "nothing sent to Intent"
    );
}
