//! The claim-intake function end to end: API Gateway v2 events into the real handler,
//! DynamoDB Local, moto's EventBridge (tapped through SQS) and the Intent simulator.

use oncall_domain::intent_examples::{
    SEED_CLOSURE_DONE, SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED, SEED_OPENING,
};
use partner_lambda::build_api;
use serde_json::{Value, json};
use std::sync::Arc;
use system_tests::*;

async fn intake() -> Bridge {
    Bridge::start().await
}

fn seed_as_sent_to_intent() -> Value {
    let mut expected: Value = serde_json::from_str(SEED_OPENING).unwrap();
    expected["eventDate"] = json!("2020-03-06T10:45:23+01:00");
    expected["logDate"] = json!("2020-03-06T10:45:26+01:00");
    expected
}

#[tokio::test]
async fn the_seed_claim_is_stored_delivered_and_announced() {
    let intake = intake().await;
    let created = intake.post(SEED_OPENING).await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["delivery"], "delivered");
    assert_eq!(created.body["state"], "open");
    assert_eq!(created.body["events"][0]["delivery"]["state"], "delivered");
    assert_eq!(
        created.headers["location"],
        "/interventions/INTER-0500?contractReference=contract1"
    );

    // Intent received exactly the seed's fields, dates with their Paris offset.
    assert_eq!(
        intake.simulator.received_logs(),
        vec![seed_as_sent_to_intent()]
    );
    let request = intake
        .simulator
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/interventions/logs"))
        .unwrap();
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(request.accept.as_deref(), Some("application/json+hal"));

    // The file, its event log and the delivery state, as the partner reads them back.
    let read = intake
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-0500",
            Some("contract1"),
        ))
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["events"].as_array().unwrap().len(), 1);
    assert_eq!(read.body["events"][0]["event"], "acknowledged");
    assert_eq!(read.body["events"][0]["delivery"]["attempts"], 1);
    assert_eq!(read.body["events"][0]["log"], seed_as_sent_to_intent());

    // One domain event, without tenant personal data.
    let events = intake.tap.drain().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["detail-type"], "InterventionOpened");
    assert_eq!(events[0]["source"], SOURCE);
    assert_eq!(events[0]["detail"]["reference"], "INTER-0500");
    assert_eq!(events[0]["detail"]["delivery"], "delivered");
    let detail = events[0]["detail"].to_string();
    for secret in ["DUPONT", "0685874445", "LOGEMENT_002", "16°C"] {
        assert!(!detail.contains(secret), "{detail}");
    }
}

#[tokio::test]
async fn an_identical_replay_answers_200_with_the_same_body_and_sends_nothing() {
    let intake = intake().await;
    let first = intake.post(SEED_OPENING).await;
    assert_eq!(first.status, 201);
    let replay = intake.post(SEED_OPENING).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, first.body);
    assert_eq!(intake.simulator.received_logs().len(), 1);
    assert_eq!(intake.tap.drain().await.len(), 1, "no second domain event");
}

#[tokio::test]
async fn the_same_reference_with_other_content_is_a_conflict() {
    let intake = intake().await;
    assert_eq!(intake.post(SEED_OPENING).await.status, 201);
    let changed = SEED_OPENING.replace("16°C", "14°C");
    let conflict = intake.post(&changed).await;
    assert_problem(&conflict, 409);
    assert_eq!(conflict.body["currentState"]["state"], "open");
    assert_eq!(intake.simulator.received_logs().len(), 1);
}

#[tokio::test]
async fn the_seeds_malformed_partial_repair_is_a_400_with_line_and_column_and_nothing_stored() {
    let intake = intake().await;
    let answer = intake.post(SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED).await;
    assert_problem(&answer, 400);
    assert_eq!(answer.body["line"], 3);
    assert_eq!(answer.body["column"], 95);
    assert!(answer.body["detail"].as_str().unwrap().contains("line 3"));
    assert!(intake.items().await.is_empty());
    assert!(intake.simulator.requests().is_empty());
}

#[tokio::test]
async fn an_invalid_claim_lists_every_field_error_with_allowed_values() {
    let intake = intake().await;
    let mut claim: Value = serde_json::from_str(SEED_OPENING).unwrap();
    claim["status"] = json!("opened");
    claim["workType"] = json!("preventive");
    claim["location"] = json!({});
    claim["eventDate"] = json!("06/03/2020");
    let answer = intake.post(&claim.to_string()).await;
    assert_problem(&answer, 422);
    let errors = answer.body["errors"].as_array().unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "$.status",
            "$.eventDate",
            "$.workType",
            "$.location.assetReference"
        ]
    );
    assert_eq!(
        errors[0]["allowed"],
        json!(["open", "pending", "hold", "closed", "denied"])
    );
    assert!(intake.items().await.is_empty());
}

#[tokio::test]
async fn a_closure_sent_to_intake_is_refused() {
    let intake = intake().await;
    let answer = intake.post(SEED_CLOSURE_DONE).await;
    assert_problem(&answer, 422);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("closed/done")
    );
}

#[tokio::test]
async fn content_type_and_size_are_checked() {
    let intake = intake().await;
    let mut text = ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes());
    text.content_type = Some("text/plain".into());
    let answer = intake.send(text).await;
    assert_problem(&answer, 415);
    assert_eq!(
        answer.body["detail"],
        "content type text/plain is not supported; send application/json (UTF-8)",
        "a sentence, not Rust debug text"
    );

    let mut none = ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes());
    none.content_type = None;
    let answer = intake.send(none).await;
    assert_problem(&answer, 415);
    assert_eq!(
        answer.body["detail"],
        "the request has no Content-Type; send application/json (UTF-8)"
    );

    let mut anonymous = ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes());
    anonymous.client_id = None;
    let answer = intake.send(anonymous).await;
    assert_problem(&answer, 401);
    assert_eq!(answer.headers["www-authenticate"], "Bearer");

    let mut latin1 = ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes());
    latin1.content_type = Some("application/json; charset=iso-8859-1".into());
    assert_problem(&intake.send(latin1).await, 415);

    let mut utf8 = ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes());
    utf8.content_type = Some("application/json; charset=UTF-8".into());
    assert_eq!(intake.send(utf8).await.status, 201);

    let mut huge: Value = serde_json::from_str(SEED_OPENING).unwrap();
    huge["padding"] = json!("x".repeat(partner_api::MAX_BODY_BYTES));
    let too_large = intake.post(&huge.to_string()).await;
    assert_problem(&too_large, 413);
    assert_eq!(too_large.body["limit"], json!(partner_api::MAX_BODY_BYTES));
}

#[tokio::test]
async fn partners_are_authenticated_and_scoped_to_their_contracts() {
    let intake = intake().await;
    let mut anonymous = ApiGatewayRequest::post_claim("x", SEED_OPENING.as_bytes());
    anonymous.client_id = None;
    assert_problem(&intake.send(anonymous).await, 401);

    let foreign = intake
        .send(ApiGatewayRequest::post_claim(
            "partner-b",
            SEED_OPENING.as_bytes(),
        ))
        .await;
    assert_problem(&foreign, 403);
    assert!(intake.items().await.is_empty());

    assert_eq!(intake.post(SEED_OPENING).await.status, 201);
    let peek = intake
        .send(ApiGatewayRequest::get_file(
            "partner-b",
            "INTER-0500",
            Some("contract1"),
        ))
        .await;
    assert_problem(&peek, 403);

    // A file under a shared contract is invisible to the other partner.
    let shared = SEED_OPENING.replace("contract1", "contract9");
    assert_eq!(intake.post(&shared).await.status, 201);
    let other = intake
        .send(ApiGatewayRequest::get_file(
            "partner-c",
            "INTER-0500",
            Some("contract9"),
        ))
        .await;
    assert_problem(&other, 404);
    let own = intake
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-0500",
            Some("contract9"),
        ))
        .await;
    assert_eq!(own.status, 200);
}

#[tokio::test]
async fn a_reference_another_partner_holds_on_a_shared_contract_is_not_found_without_state() {
    let intake = intake().await;
    let shared = SEED_OPENING.replace("contract1", "contract9");
    assert_eq!(intake.post(&shared).await.status, 201);
    // partner-c shares contract9: the same claim, and another one, under that reference.
    for body in [
        shared.clone(),
        shared.replace("\"criticalLevel\": 3", "\"criticalLevel\": 1"),
    ] {
        let squat = intake
            .send(ApiGatewayRequest::post_claim("partner-c", body.as_bytes()))
            .await;
        assert_problem(&squat, 404);
        assert!(squat.body.get("currentState").is_none(), "{:#}", squat.body);
    }
    let closure = SEED_CLOSURE_DONE.replace("contract1", "contract9");
    let close = intake
        .call(
            CLOSURE,
            ApiGatewayRequest::post_closure("partner-c", "INTER-0500", closure.as_bytes()),
        )
        .await;
    assert_problem(&close, 404);
    assert!(close.body.get("currentState").is_none());
}

#[tokio::test]
async fn references_are_limited_to_a_safe_alphabet_in_bodies_and_paths() {
    let intake = intake().await;
    for bad in [
        "INTER/1",
        "INTER 1",
        "INTER#1",
        "INTER%2F1",
        "INTER\\u200b1",
    ] {
        let body = SEED_OPENING.replace("INTER-0500", bad);
        let answer = intake.post(&body).await;
        assert_problem(&answer, 422);
        let errors = answer.body["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["path"] == "$.reference"
                && e["message"].as_str().unwrap().contains("A-Z, a-z, 0-9")),
            "{bad:?}: {:#}",
            answer.body
        );
    }
    let long = SEED_OPENING.replace("INTER-0500", &"R".repeat(65));
    let answer = intake.post(&long).await;
    assert_problem(&answer, 422);
    // A contractReference no contract can have names the field and the rule too (not a
    // 403 saying the partner lacks a right it could not have been given).
    for bad in ["contract 1", "CTR/2024", ""] {
        let body = SEED_OPENING.replace("\"contract1\"", &format!("{bad:?}"));
        let answer = intake.post(&body).await;
        assert_problem(&answer, 422);
        let errors = answer.body["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["path"] == "$.contractReference"
                && (bad.is_empty() || e["message"].as_str().unwrap().contains("A-Z, a-z, 0-9"))),
            "{bad:?}: {:#}",
            answer.body
        );
    }
    assert!(intake.items().await.is_empty(), "nothing stored");
    // In a path, a reference no file can have is not found, never a 5xx: a slash encoded
    // in it, or one of 2 KB (DynamoDB refuses partition keys over 2 KB).
    for reference in ["INTER/1".to_string(), "R".repeat(2_000)] {
        let answer = intake
            .send(ApiGatewayRequest::get_file(
                "partner-a",
                &reference,
                Some("contract1"),
            ))
            .await;
        assert_problem(&answer, 404);
        let close = intake
            .call(
                CLOSURE,
                ApiGatewayRequest::post_closure(
                    "partner-a",
                    &reference,
                    SEED_CLOSURE_DONE.as_bytes(),
                ),
            )
            .await;
        assert_problem(&close, 404);
    }
}

#[tokio::test]
async fn reading_a_file_needs_its_contract_and_an_existing_reference() {
    let intake = intake().await;
    let missing = intake
        .send(ApiGatewayRequest::get_file("partner-a", "INTER-0500", None))
        .await;
    assert_problem(&missing, 400);
    let unknown = intake
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-9999",
            Some("contract1"),
        ))
        .await;
    assert_problem(&unknown, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_storm_makes_one_file_and_one_event_on_intent() {
    let intake = Arc::new(intake().await);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let intake = intake.clone();
        tasks.push(tokio::spawn(async move { intake.post(SEED_OPENING).await }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        statuses.push(answer.status);
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(intake.simulator.received_logs().len(), 1);
    let items = intake.items().await;
    assert_eq!(items.len(), 2, "one file item and one event item");
    assert_eq!(intake.tap.drain().await.len(), 1);
}

#[tokio::test]
async fn intent_down_answers_202_and_the_event_stays_pending_in_the_table() {
    let intake = intake().await;
    intake.simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 503,
            retry_after: None,
            body: None,
        },
        times: 100,
    });
    let answer = intake.post(SEED_OPENING).await;
    assert_eq!(answer.status, 202, "{:#}", answer.body);
    assert_eq!(answer.body["delivery"], "pending");
    assert!(intake.simulator.received_logs().is_empty());

    let event_item = intake
        .items()
        .await
        .into_iter()
        .find(|item| item["sk"].as_s().unwrap().starts_with("EVENT#"))
        .unwrap();
    assert_eq!(event_item["delivery"].as_s().unwrap(), "pending");
    assert_eq!(
        event_item["attempts"].as_n().unwrap(),
        "4",
        "the whole retry budget was used"
    );
    assert!(event_item["lastError"].as_s().unwrap().contains("503"));
    assert!(
        event_item.contains_key("pendingShard"),
        "listed in the pending-events index"
    );

    // The pending-events index lists it (the re-send run will query it, never scan).
    let mut pending = 0;
    for shard in 0..dynamodb_store::INDEX_SHARDS {
        pending += intake
            .dynamodb
            .query()
            .table_name(&intake.table)
            .index_name(dynamodb_store::PENDING_EVENTS_INDEX)
            .key_condition_expression("pendingShard = :s")
            .expression_attribute_values(
                ":s",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("pending-{shard}")),
            )
            .send()
            .await
            .unwrap()
            .count;
    }
    assert_eq!(pending, 1);

    let events = intake.tap.drain().await;
    assert_eq!(events[0]["detail"]["delivery"], "pending");
}

#[tokio::test]
async fn intent_rejecting_the_event_is_recorded_as_failed_not_retried() {
    let intake = intake().await;
    intake.simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 400,
            retry_after: None,
            body: Some(json!({"code": "validation_error", "message": "bad", "details": []})),
        },
        times: 1,
    });
    let answer = intake.post(SEED_OPENING).await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.body["delivery"], "failed");
    assert_eq!(answer.body["events"][0]["delivery"]["attempts"], 1);
    assert!(
        answer.body["events"][0]["delivery"]["lastError"]
            .as_str()
            .unwrap()
            .contains("validation_error")
    );
}

#[tokio::test]
async fn a_token_that_expires_early_is_refreshed_once() {
    let intake = intake().await;
    assert_eq!(intake.post(SEED_OPENING).await.status, 201);
    intake.simulator.expire_tokens();
    let second = SEED_OPENING.replace("INTER-0500", "INTER-0501");
    assert_eq!(intake.post(&second).await.status, 201);
    assert_eq!(intake.simulator.tokens_issued(), 2);
    assert_eq!(intake.simulator.received_logs().len(), 2);
}

#[tokio::test]
async fn store_down_means_503_and_nothing_reaches_intent() {
    let sdk = sdk_config().await;
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let api = build_api(
        &sdk,
        function_config(aws_wiring::CoreConfig {
            table_name: unique("no-such-table"),
            event_bus_name: "default".into(),
            event_source: SOURCE.into(),
            intent: fast_intent_config(&simulator),
            intent_secret_arn: None,
        }),
    )
    .unwrap();
    let answer = serve(
        &std::sync::Arc::new(api),
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
    )
    .await;
    assert_problem(&answer, 503);
    assert_eq!(answer.headers["retry-after"], "5");
    assert!(simulator.requests().is_empty());
}

#[tokio::test]
async fn no_personal_data_reaches_a_log_line() {
    let logs = LogCapture::global();
    let intake = intake().await;
    // Exercise the noisy paths too: retries, a pending delivery, a rejection, errors.
    intake.simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 503,
            retry_after: Some("0".into()),
            body: None,
        },
        times: 2,
    });
    assert_eq!(intake.post(SEED_OPENING).await.status, 201);
    assert_eq!(
        intake
            .post(&SEED_OPENING.replace("16°C", "15°C"))
            .await
            .status,
        409
    );
    let mut invalid: Value = serde_json::from_str(SEED_OPENING).unwrap();
    invalid["contacts"] = json!(["BEGIN:VCARD\r\nFN:Pierre DUPONT\r\nTEL:0685874445"]);
    invalid["reference"] = json!("INTER-0777");
    assert_eq!(intake.post(&invalid.to_string()).await.status, 422);

    let text = logs.text();
    assert!(
        text.contains("INTER-0500"),
        "the span carries the reference"
    );
    assert!(text.contains("retrying"), "the retries were logged");
    logs.assert_free_of(&[
        "DUPONT",
        "Pierre",
        "0685874445",
        "0734220902",
        "Bretagne",
        "p.dupont",
        "16°C",
        "15°C",
        "LOGEMENT_002",
    ]);
}

#[tokio::test]
async fn a_claim_dated_in_the_future_is_refused() {
    let intake = intake().await;
    // A wrong offset or year would keep the file out of tonight's closing.
    let tomorrow = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    let future = SEED_OPENING.replace(
        "\"eventDate\": \"2020-03-06T10:45:23\"",
        &format!("\"eventDate\": \"{tomorrow}\""),
    );
    let answer = intake.post(&future).await;
    assert_problem(&answer, 422);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("in the future")
    );
    assert!(intake.items().await.is_empty());
}
