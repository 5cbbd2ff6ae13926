//! Each function's role in `template.yaml` allows every AWS call the function makes.
//!
//! The emulators enforce no IAM, so a call the role does not allow passes every other test
//! and fails only once deployed (`AccessDenied` on every run). Here each function is built
//! on its own wiring with every service behind a counting proxy, driven through its paths
//! (the usual ones and the waiting, re-sending and refusing ones; Intent's client secret read
//! from Secrets Manager as deployed), and each call the proxy
//! saw is mapped to what IAM checks for it: its action (each action of a
//! `TransactWriteItems`, as IAM authorises them one by one) and its resource (the table, an
//! index, an object key under the bucket). Each must be allowed by a statement of that
//! function's `Policies`.

use crate::openapi::contract::parse_yaml;
use crate::openapi::repository_file;
use oncall_closer::{Tick, TickKind, run_tick};
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::intent_examples::{
    CLOSURE_CANCELED, SEED_CLOSURE_DONE, SEED_CLOSURE_PARTIAL_REPAIR, SEED_OPENING,
};
use oncall_domain::oncall::{CloserPolicy, Deadline};
use serde_json::Value;
use std::collections::BTreeSet;
use system_tests::*;

/// The quitus bucket, as the template names it in its S3 resources (the functions' bucket
/// in the tests has another name: any bucket stands for it).
const QUITUS_BUCKET: &str =
    "arn:${AWS::Partition}:s3:::${AWS::StackName}-quitus-${AWS::AccountId}-${AWS::Region}";

/// What IAM checks for one call: an action on a resource, written as the template writes
/// resources (`${InterventionsTable.Arn}/index/open-files`, `{QUITUS_BUCKET}/quitus/…`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    action: String,
    resource: String,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)
    }
}

const TABLE: &str = "${InterventionsTable.Arn}";

fn permission(action: impl Into<String>, resource: impl Into<String>) -> Permission {
    Permission {
        action: action.into(),
        resource: resource.into(),
    }
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("a UTF-8 key")
}

/// What IAM checks for `request`.
fn permissions_of(request: &LoggedRequest) -> Vec<Permission> {
    let body = &request.body;
    let dynamodb = |action: &str, body: &Value| {
        let resource = match body["IndexName"].as_str() {
            Some(index) => format!("{TABLE}/index/{index}"),
            None => TABLE.to_string(),
        };
        permission(format!("dynamodb:{action}"), resource)
    };
    match request.operation.as_str() {
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .expect("transact items")
            .iter()
            .flat_map(|item| item.as_object().expect("one action").keys())
            .map(|kind| {
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    other => panic!("a transaction action {other}"),
                };
                permission(format!("dynamodb:{action}"), TABLE)
            })
            .collect(),
        "TransactGetItems" => vec![permission("dynamodb:GetItem", TABLE)],
        "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Query" | "Scan" | "BatchGetItem"
        | "BatchWriteItem" => vec![dynamodb(&request.operation, body)],
        "PutEvents" => vec![permission("events:PutEvents", "${DomainEventBus.Arn}")],
        // SQS authorises a batch call as its single action.
        "ReceiveMessage"
        | "DeleteMessage"
        | "DeleteMessageBatch"
        | "ChangeMessageVisibility"
        | "ChangeMessageVisibilityBatch" => vec![permission(
            format!("sqs:{}", request.operation.trim_end_matches("Batch")),
            "${DocumentForwarderDeadLetterQueue.Arn}",
        )],
        "GetSecretValue" => vec![permission(
            "secretsmanager:GetSecretValue",
            "${IntentClientSecret}",
        )],
        // S3's REST calls, path-style: /bucket[/key][?query].
        "GET" | "HEAD" => {
            let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
            let key = path
                .trim_start_matches('/')
                .split_once('/')
                .map_or("", |(_bucket, key)| key);
            if key.is_empty() {
                assert_eq!(request.operation, "GET", "{request:?}");
                return vec![permission("s3:ListBucket", QUITUS_BUCKET)];
            }
            let versioned = query.split('&').any(|pair| pair.starts_with("versionId="));
            let action = if versioned {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            };
            vec![permission(
                action,
                format!("{QUITUS_BUCKET}/{}", percent_decoded(key)),
            )]
        }
        other => panic!("a call this test does not map to IAM yet: {other} {request:?}"),
    }
}

/// A template resource as the permissions write it: `!GetAtt X.Arn` and `!Ref X` as
/// `${X.Arn}` and `${X}`; `!Sub` strings as they are.
fn resource_of(value: &Value) -> String {
    let text = value.as_str().expect("a resource as one string");
    if text.starts_with("arn:") || text.starts_with("${") || text == "*" {
        text.to_string()
    } else {
        format!("${{{text}}}")
    }
}

/// IAM's `*` wildcard: any run of characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&at| rest.is_char_boundary(at))
                .any(|at| glob_matches(tail, &rest[at..]))
        }
    }
}

fn one_or_many(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(values) => values.clone(),
        Value::Null => Vec::new(),
        value => vec![value.clone()],
    }
}

/// The `Allow` statements of `grantee`'s policies (a function's `Policies`, a managed
/// policy's `PolicyDocument`), as (action, resource) patterns.
fn allowed_by(template: &Value, grantee: &str) -> Vec<(String, String)> {
    let properties = &template["Resources"][grantee]["Properties"];
    let policies = match &properties["PolicyDocument"] {
        Value::Null => properties["Policies"].clone(),
        document => Value::Array(vec![document.clone()]),
    };
    assert!(policies.is_array(), "{grantee} has Policies");
    let mut allowed = Vec::new();
    for policy in policies.as_array().unwrap() {
        for statement in one_or_many(&policy["Statement"]) {
            assert_eq!(statement["Effect"], "Allow", "{grantee}: {statement}");
            for action in one_or_many(&statement["Action"]) {
                for resource in one_or_many(&statement["Resource"]) {
                    allowed.push((action.as_str().unwrap().to_string(), resource_of(&resource)));
                }
            }
        }
    }
    allowed
}

/// Fails with every call of `log` that `function`'s role does not allow.
fn assert_allowed(function: &str, log: &CallLog) -> BTreeSet<Permission> {
    let template = parse_yaml(&repository_file("template.yaml")).expect("template.yaml");
    let allowed = allowed_by(&template, function);
    let needed: BTreeSet<Permission> = log.requests().iter().flat_map(permissions_of).collect();
    let denied: Vec<String> = needed
        .iter()
        .filter(|needed| {
            !allowed.iter().any(|(action, resource)| {
                glob_matches(action, &needed.action) && glob_matches(resource, &needed.resource)
            })
        })
        .map(Permission::to_string)
        .collect();
    assert!(
        denied.is_empty(),
        "{function}'s role does not allow what it calls:\n  {}\n(allowed: {allowed:?})",
        denied.join("\n  ")
    );
    needed
}

fn needs(needed: &BTreeSet<Permission>, action: &str) -> bool {
    needed.iter().any(|p| p.action == action)
}

/// A claim for `reference` opened during the period ending at [`END`] (Monday 22:00
/// Paris).
fn claim(reference: &str) -> String {
    SEED_OPENING
        .replace("INTER-0500", reference)
        .replace("2020-03-06T10:45:23", "2026-11-23T22:00:00")
        .replace("2020-03-06T10:45:26", "2026-11-23T22:00:03")
}

fn closure(seed: &str, reference: &str) -> String {
    seed.replace("INTER-0500", reference)
        .replace("2020-03-06T15:35:00", "2026-11-23T23:30:00")
        .replace("2020-03-06T15:35:26", "2026-11-23T23:30:10")
        .replace("2020-03-06T10:50:00", "2026-11-23T22:10:00")
        .replace("2020-03-06T10:50:02", "2026-11-23T22:10:02")
}

/// A partner's quitus for `reference`, uploaded where the API grants it (the bridge's
/// documents bucket).
async fn partner_quitus(bridge: &Bridge, s3: &aws_sdk_s3::Client, reference: &str) -> StoredObject {
    let pdf = pdf_bytes(4_000);
    let body = serde_json::json!({"fileName": "quitus signé.pdf", "size": pdf.len()});
    let ticket = bridge
        .call(
            CLOSURE,
            ApiGatewayRequest::post_upload(
                "partner-a",
                reference,
                "contract1",
                body.to_string().as_bytes(),
            ),
        )
        .await;
    assert_eq!(ticket.status, 200, "{:#}", ticket.body);
    let key = ticket.body["key"].as_str().unwrap();
    put_object(s3, &bridge.documents_bucket, key, pdf, &[]).await
}

/// An operator's drop for `reference` into the bridge's documents bucket.
async fn operator_quitus(
    bridge: &Bridge,
    s3: &aws_sdk_s3::Client,
    reference: &str,
    body: Vec<u8>,
) -> StoredObject {
    let key = format!("operator-quitus/contract1/{reference}/quitus {reference}.pdf");
    put_object(s3, &bridge.documents_bucket, &key, body, &[]).await
}

/// The end of the period of [`claim`] (Tuesday 08:00 Paris).
const END: &str = "2026-11-24T07:00:00Z";

#[tokio::test]
async fn the_partner_functions_roles_allow_what_they_call() {
    let mut bridge = Bridge::start().await;
    // Intent's client secret where the stack keeps it: each function reads it.
    bridge.keep_intent_secret_in_secrets_manager().await;
    let log = CallLog::default();
    let api = bridge.api_on(&every_service_through_proxies(&bridge.sdk, &log));
    let status = |answer: Answer| answer.status;

    // claim-intake: a claim, its replay, another content under its reference, a read, a
    // claim while Intent is down.
    let post =
        |reference: &str| ApiGatewayRequest::post_claim("partner-a", claim(reference).as_bytes());
    assert_eq!(status(serve(&api, INTAKE, post("IAM-1")).await), 201);
    assert_eq!(status(serve(&api, INTAKE, post("IAM-1")).await), 200);
    let other = claim("IAM-1").replace("\"criticalLevel\": 3", "\"criticalLevel\": 1");
    assert_ne!(other, claim("IAM-1"));
    let conflict = ApiGatewayRequest::post_claim("partner-a", other.as_bytes());
    assert_eq!(status(serve(&api, INTAKE, conflict).await), 409);
    let read = ApiGatewayRequest::get_file("partner-a", "IAM-1", Some("contract1"));
    assert_eq!(status(serve(&api, INTAKE, read).await), 200);
    assert_eq!(status(serve(&api, INTAKE, post("IAM-2")).await), 201);
    assert_eq!(status(serve(&api, INTAKE, post("IAM-3")).await), 201);
    let intake = assert_allowed("ClaimIntakeFunction", &log);
    assert!(needs(&intake, "dynamodb:PutItem") && needs(&intake, "events:PutEvents"));
    assert!(needs(&intake, "secretsmanager:GetSecretValue"));

    // intervention-closure: a closure, its replay, another closure of the closed file, a
    // cancellation, an upload grant, a closure while Intent is down.
    let close = |reference: &str, seed: &str| {
        ApiGatewayRequest::post_closure("partner-a", reference, closure(seed, reference).as_bytes())
    };
    assert_eq!(
        status(serve(&api, CLOSURE, close("IAM-1", SEED_CLOSURE_DONE)).await),
        200
    );
    assert_eq!(
        status(serve(&api, CLOSURE, close("IAM-1", SEED_CLOSURE_DONE)).await),
        200
    );
    let again = close("IAM-1", SEED_CLOSURE_PARTIAL_REPAIR);
    assert_eq!(status(serve(&api, CLOSURE, again).await), 409);
    let cancel = close("IAM-2", CLOSURE_CANCELED);
    assert_eq!(status(serve(&api, CLOSURE, cancel).await), 200);
    let upload = ApiGatewayRequest::post_upload(
        "partner-a",
        "IAM-1",
        "contract1",
        br#"{"fileName": "quitus.pdf", "size": 48213}"#,
    );
    assert_eq!(status(serve(&api, CLOSURE, upload).await), 200);
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 1000));
    let down = serve(&api, CLOSURE, close("IAM-3", SEED_CLOSURE_DONE)).await;
    assert_eq!(down.status, 202, "{:#}", down.body);
    let closing = assert_allowed("InterventionClosureFunction", &log);
    assert!(needs(&closing, "dynamodb:Query") && needs(&closing, "dynamodb:UpdateItem"));
    assert!(needs(&closing, "secretsmanager:GetSecretValue"));
}

#[tokio::test]
async fn the_document_forwarders_role_allows_what_it_calls() {
    let mut bridge = Bridge::start().await;
    // Intent's client secret where the stack keeps it: each function reads it.
    bridge.keep_intent_secret_in_secrets_manager().await;
    let s3 = s3_client(&bridge.sdk);
    create_versioned_bucket_named(&s3, &bridge.documents_bucket).await;
    let log = CallLog::default();
    let forwarder = bridge.forwarder_on(
        &every_service_through_proxies(&bridge.sdk, &log),
        DocumentPolicy::default(),
    );
    for reference in ["IAM-1", "IAM-2"] {
        assert_eq!(bridge.post(&claim(reference)).await.status, 201);
    }

    // A partner's upload and an operator's drop for an open file, a drop before its claim,
    // one that is not a PDF, and an event delivered again.
    let partner = partner_quitus(&bridge, &s3, "IAM-1").await;
    let operator = operator_quitus(&bridge, &s3, "IAM-1", pdf_bytes(3_000)).await;
    let early = operator_quitus(&bridge, &s3, "IAM-9", pdf_bytes(2_000)).await;
    let not_a_pdf = operator_quitus(&bridge, &s3, "IAM-2", b"not a PDF at all".to_vec()).await;
    let summary = document_forwarder::handle(
        &forwarder,
        s3_event(&[&partner, &operator, &early, &not_a_pdf]),
    )
    .await
    .expect("a forwarding run");
    assert_eq!(
        (summary.published, summary.pending, summary.rejected),
        (2, 1, 1),
        "{summary:?}"
    );
    let again = document_forwarder::handle(&forwarder, s3_event(&[&partner]))
        .await
        .unwrap();
    assert_eq!(again.duplicates, 1);
    let needed = assert_allowed("DocumentForwarderFunction", &log);
    assert!(needs(&needed, "s3:GetObjectVersion") && needs(&needed, "dynamodb:GetItem"));
    assert!(needs(&needed, "secretsmanager:GetSecretValue"));
}

#[tokio::test]
async fn the_on_call_closers_role_allows_what_it_calls() {
    let mut bridge = Bridge::start().await;
    // Intent's client secret where the stack keeps it: each function reads it.
    bridge.keep_intent_secret_in_secrets_manager().await;
    let s3 = s3_client(&bridge.sdk);
    let log = CallLog::default();
    let sdk = every_service_through_proxies(&bridge.sdk, &log);
    let policy = CloserPolicy {
        base_backoff: jiff::SignedDuration::ZERO,
        ..CloserPolicy::default()
    };

    // The end of a period: stragglers closed (read in batches), their closings announced.
    for reference in ["IAM-1", "IAM-2", "IAM-3"] {
        assert_eq!(bridge.post(&claim(reference)).await.status, 201);
    }
    let end: jiff::Timestamp = END.parse().unwrap();
    let on_time = oncall_domain::in_memory::FixedClock(end + jiff::SignedDuration::from_secs(30));
    let closer = bridge.closer_on(&sdk, policy.clone(), on_time);
    let tick = |kind, scheduled_time| Tick {
        kind,
        scheduled_time,
    };
    let ended = run_tick(
        &closer,
        tick(TickKind::EndOfPeriod, Some(end)),
        Deadline::none(),
        None,
    )
    .await
    .expect("an end-of-period run");
    assert_eq!(ended.report.closing.as_ref().unwrap().closed, 3);

    // A re-send run: an opening Intent did not take, tried again; a partner's quitus and
    // an operator's waiting for it in the ledger, forwarded from the bucket.
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 1000));
    let pending = bridge
        .post(&SEED_OPENING.replace("INTER-0500", "IAM-6"))
        .await;
    assert_eq!(pending.status, 202);
    create_versioned_bucket_named(&s3, &bridge.documents_bucket).await;
    let partner = partner_quitus(&bridge, &s3, "IAM-6").await;
    let operator = operator_quitus(&bridge, &s3, "IAM-6", pdf_bytes(3_000)).await;
    let waiting = document_forwarder::handle(
        &bridge.forwarder(DocumentPolicy::default()),
        s3_event(&[&partner, &operator]),
    )
    .await
    .unwrap();
    assert_eq!(waiting.pending, 2, "{waiting:?}");
    // Intent back (and empty: the run above is over).
    bridge.simulator.reset();
    let closer = bridge.closer_on(&sdk, policy, oncall_domain::ports::SystemClock);
    let resent = run_tick(
        &closer,
        tick(TickKind::Resend, None),
        Deadline::none(),
        None,
    )
    .await
    .expect("a re-send run");
    assert_eq!(resent.report.documents.as_ref().unwrap().published, 2);
    assert_eq!(bridge.simulator.received_logs().len(), 1, "the opening");

    let needed = assert_allowed("OnCallCloserFunction", &log);
    assert!(needs(&needed, "dynamodb:BatchGetItem") && needs(&needed, "s3:GetObjectVersion"));
    assert!(needs(&needed, "secretsmanager:GetSecretValue"));
}

#[test]
fn a_call_the_role_does_not_allow_is_named() {
    let template = parse_yaml(
        "Resources:\n  F:\n    Properties:\n      Policies:\n        - Statement:\n            - Effect: Allow\n              Action: [dynamodb:Query]\n              Resource: !GetAtt InterventionsTable.Arn\n            - Effect: Allow\n              Action: s3:GetObject\n              Resource: !Sub arn:${AWS::Partition}:s3:::${AWS::StackName}-quitus-${AWS::AccountId}-${AWS::Region}/quitus/*\n",
    )
    .unwrap();
    let allowed = allowed_by(&template, "F");
    let is_allowed = |needed: &Permission| {
        allowed.iter().any(|(action, resource)| {
            glob_matches(action, &needed.action) && glob_matches(resource, &needed.resource)
        })
    };
    let request = |operation: &str, path: &str, body: Value| LoggedRequest {
        operation: operation.into(),
        path: path.into(),
        body,
    };
    let query = request("Query", "/", serde_json::json!({"TableName": "t"}));
    let index_query = request(
        "Query",
        "/",
        serde_json::json!({"TableName": "t", "IndexName": "open-files"}),
    );
    let partner_object = request("GET", "/b/quitus/contract1/R/x%20y.pdf", Value::Null);
    let operator_object = request("HEAD", "/b/operator-quitus/contract1/R/x.pdf", Value::Null);
    let batch = request("BatchGetItem", "/", serde_json::json!({"RequestItems": {}}));
    assert!(permissions_of(&query).iter().all(is_allowed));
    assert!(permissions_of(&partner_object).iter().all(is_allowed));
    assert_eq!(
        permissions_of(&partner_object)[0].resource,
        format!("{QUITUS_BUCKET}/quitus/contract1/R/x y.pdf")
    );
    for refused in [index_query, operator_object, batch] {
        assert!(
            !permissions_of(&refused).iter().all(is_allowed),
            "{refused:?}"
        );
    }
}

/// An operator's bridge-admin on AWS: listings, show, a redrive of a refused opening and
/// of a refused quitus, a replay of the forwarder's dead letters, Intent's secret read from
/// Secrets Manager. Every call it makes is allowed by the stack's `OperatorPolicy`.
#[tokio::test]
async fn the_operators_policy_allows_what_bridge_admin_calls() {
    let mut bridge = Bridge::start().await;
    bridge.keep_intent_secret_in_secrets_manager().await;
    let s3 = s3_client(&bridge.sdk);
    create_versioned_bucket_named(&s3, &bridge.documents_bucket).await;
    // What the operator has to redrive: an opening Intent refused, a quitus it refused.
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 400, 1));
    assert_eq!(bridge.post(&claim("OPS-1")).await.status, 202);
    assert_eq!(bridge.post(&claim("OPS-2")).await.status, 201);
    let refused = operator_quitus(&bridge, &s3, "OPS-2", pdf_bytes(3_000)).await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::Documents, 400, 1));
    let forwarded = document_forwarder::handle(
        &bridge.forwarder(DocumentPolicy::default()),
        s3_event(&[&refused]),
    )
    .await
    .unwrap();
    assert_eq!(forwarded.rejected, 1, "{forwarded:?}");
    // A dead letter: an S3 event the forwarder gave up on.
    let waiting = operator_quitus(&bridge, &s3, "OPS-2", pdf_bytes(4_000)).await;
    let sqs = aws_sdk_sqs::Client::new(&bridge.sdk);
    let queue = dead_letter_queue(&sqs).await;
    sqs.send_message()
        .queue_url(&queue)
        .message_body(serde_json::to_string(&s3_event(&[&waiting])).unwrap())
        .send()
        .await
        .unwrap();

    // The operator's session, every service behind the counting proxies.
    let log = CallLog::default();
    let sdk = every_service_through_proxies(&bridge.sdk, &log);
    let operator = bridge.forwarder_on(&sdk, DocumentPolicy::default());
    let admin = bridge_admin::Admin {
        store: &operator.store,
        clock: &operator.clock,
        senders: Ok(bridge_admin::Senders {
            intent: &operator.intent,
            events: &operator.events,
            objects: &operator.objects,
        }),
        documents: DocumentPolicy::default(),
    };
    let mut codes = Vec::new();
    for args in [
        &["pending"][..],
        &["failed", "--json"],
        &["show", "OPS-2", "--contract", "contract1"],
        &["redrive", "--all-failed"],
    ] {
        let cli = bridge_admin::parse(std::iter::once("bridge-admin").chain(args.iter().copied()))
            .unwrap_or_else(|(code, _, text)| panic!("usage error {code}: {text}"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = admin
            .execute(&cli.command, cli.json, &mut out, &mut err)
            .await;
        codes.push((args[0], code, String::from_utf8_lossy(&out).into_owned()));
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let replayed = bridge_admin::dlq::replay(
        &aws_sdk_sqs::Client::new(&sdk),
        &queue,
        None,
        &operator,
        false,
        &mut out,
        &mut err,
    )
    .await;
    codes.push((
        "dlq replay",
        replayed,
        String::from_utf8_lossy(&out).into_owned(),
    ));
    assert!(codes.iter().all(|(_, code, _)| *code == 0), "{codes:#?}");
    assert_eq!(bridge.simulator.received_documents().len(), 2);
    assert_eq!(
        bridge.simulator.operation_logs("OPS-1", "contract1").len(),
        1
    );

    let needed = assert_allowed("OperatorPolicy", &log);
    for action in [
        "dynamodb:Query",
        "dynamodb:PutItem",
        "s3:GetObjectVersion",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "secretsmanager:GetSecretValue",
    ] {
        assert!(needs(&needed, action), "{action} not called: {needed:?}");
    }
}
