//! The closure function end to end: API Gateway v2 events into the real handler, with
//! DynamoDB Local, moto's EventBridge and the Intent simulator.

use oncall_domain::intent_examples::{
    SEED_CLOSURE_DONE, SEED_CLOSURE_PARTIAL_REPAIR, SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED,
    SEED_OPENING,
};
use serde_json::{Value, json};
use std::sync::Arc;
use system_tests::*;

/// What Intent must receive: exactly the seed's fields, dates with their Paris offset.
fn as_sent(seed: &str) -> Value {
    let mut expected: Value = serde_json::from_str(seed).unwrap();
    for field in ["eventDate", "logDate"] {
        let date = expected[field].as_str().unwrap().to_string();
        expected[field] = json!(format!("{date}+01:00"));
    }
    expected
}

use oncall_domain::intent_examples::CLOSURE_CANCELED as CANCEL;

async fn opened() -> Bridge {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    bridge
}

#[tokio::test]
async fn the_three_seed_closures_reach_intent_exactly_as_written() {
    for (seed, outcome, status) in [
        (SEED_CLOSURE_DONE, "done", "closed"),
        (SEED_CLOSURE_PARTIAL_REPAIR, "partial_repair", "closed"),
        (CANCEL, "canceled", "denied"),
    ] {
        let bridge = opened().await;
        let closed = bridge.close("INTER-0500", seed).await;
        assert_eq!(closed.status, 200, "{outcome}: {:#}", closed.body);
        assert_eq!(closed.body["state"], "closed");
        assert_eq!(closed.body["outcome"], outcome);
        assert_eq!(closed.body["delivery"], "delivered");
        assert_eq!(closed.body["events"][1]["status"], status);

        let received = bridge.simulator.received_logs();
        assert_eq!(
            received,
            vec![as_sent(SEED_OPENING), as_sent(seed)],
            "{outcome}"
        );
        let hub = bridge.simulator.interventions();
        assert_eq!(hub[0].status, status);
        assert_eq!(hub[0].event, outcome);

        let events = bridge.tap.drain().await;
        let closed_event = events
            .iter()
            .find(|e| e["detail-type"] == "InterventionClosed")
            .expect("an InterventionClosed domain event");
        assert_eq!(closed_event["detail"]["outcome"], outcome);
        assert_eq!(closed_event["detail"]["closedBy"], "partner");
        let detail = closed_event["detail"].to_string();
        assert!(
            !detail.contains("LOGEMENT_002") && !detail.contains("vanne"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn an_identical_replay_answers_200_with_the_same_body_and_sends_nothing() {
    let bridge = opened().await;
    let first = bridge.close("INTER-0500", SEED_CLOSURE_DONE).await;
    assert_eq!(first.status, 200);
    let replay = bridge.close("INTER-0500", SEED_CLOSURE_DONE).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, first.body);
    assert_eq!(bridge.simulator.received_logs().len(), 2);
}

#[tokio::test]
async fn any_other_closure_of_a_closed_file_is_a_conflict_naming_the_state() {
    let bridge = opened().await;
    assert_eq!(
        bridge.close("INTER-0500", SEED_CLOSURE_DONE).await.status,
        200
    );
    for other in [SEED_CLOSURE_PARTIAL_REPAIR, CANCEL] {
        let conflict = bridge.close("INTER-0500", other).await;
        assert_problem(&conflict, 409);
        assert_eq!(
            conflict.body["currentState"],
            json!({"state": "closed", "outcome": "done"})
        );
        assert!(
            conflict.body["detail"]
                .as_str()
                .unwrap()
                .contains("closed (done)")
        );
    }
    // A later report of the same outcome is another closure too.
    let again = SEED_CLOSURE_DONE.replace("Chauffage de nouveau", "Chauffage vraiment");
    assert_problem(&bridge.close("INTER-0500", &again).await, 409);
    assert_eq!(bridge.simulator.received_logs().len(), 2);
}

#[tokio::test]
async fn unknown_references_contradictions_and_bad_json() {
    let bridge = opened().await;
    let unknown = SEED_CLOSURE_DONE.replace("INTER-0500", "INTER-0404");
    assert_problem(&bridge.close("INTER-0404", &unknown).await, 404);

    let contradicts_path = bridge.close("INTER-0501", SEED_CLOSURE_DONE).await;
    assert_problem(&contradicts_path, 422);
    assert!(
        contradicts_path.body["detail"]
            .as_str()
            .unwrap()
            .contains("contradicts")
    );

    let mut with_query =
        ApiGatewayRequest::post_closure("partner-a", "INTER-0500", SEED_CLOSURE_DONE.as_bytes());
    with_query.query = Some(("contractReference".into(), "contract9".into()));
    assert_problem(&bridge.call(CLOSURE, with_query).await, 422);

    // Under another contract of the same partner, this reference is unknown.
    let other_contract = SEED_CLOSURE_DONE.replace("contract1", "contract9");
    assert_problem(&bridge.close("INTER-0500", &other_contract).await, 404);

    let malformed = bridge
        .close("INTER-0500", SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED)
        .await;
    assert_problem(&malformed, 400);
    assert_eq!(
        (
            malformed.body["line"].clone(),
            malformed.body["column"].clone()
        ),
        (json!(3), json!(95))
    );

    let opening_again = bridge.close("INTER-0500", SEED_OPENING).await;
    assert_problem(&opening_again, 422);

    let early = SEED_CLOSURE_DONE.replace("2020-03-06T15:35:00", "2020-03-06T08:00:00");
    let before = bridge.close("INTER-0500", &early).await;
    assert_problem(&before, 422);
    assert!(
        before.body["detail"]
            .as_str()
            .unwrap()
            .contains("before the opening")
    );

    // Nothing of the above was stored or sent: the file is still open with one event.
    let file = bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-0500",
            Some("contract1"),
        ))
        .await;
    assert_eq!(file.body["state"], "open");
    assert_eq!(file.body["events"].as_array().unwrap().len(), 1);
    assert_eq!(bridge.simulator.received_logs().len(), 1);
}

#[tokio::test]
async fn partners_close_only_their_own_files() {
    let bridge = opened().await;
    let foreign = bridge
        .call(
            CLOSURE,
            ApiGatewayRequest::post_closure(
                "partner-b",
                "INTER-0500",
                SEED_CLOSURE_DONE.as_bytes(),
            ),
        )
        .await;
    assert_problem(&foreign, 403);

    let shared = SEED_OPENING.replace("contract1", "contract9");
    assert_eq!(bridge.post(&shared).await.status, 201);
    let closure = SEED_CLOSURE_DONE.replace("contract1", "contract9");
    let other_partner = bridge
        .call(
            CLOSURE,
            ApiGatewayRequest::post_closure("partner-c", "INTER-0500", closure.as_bytes()),
        )
        .await;
    assert_problem(&other_partner, 404);

    let mut anonymous =
        ApiGatewayRequest::post_closure("x", "INTER-0500", SEED_CLOSURE_DONE.as_bytes());
    anonymous.client_id = None;
    assert_problem(&bridge.call(CLOSURE, anonymous).await, 401);
}

#[tokio::test]
async fn the_closure_function_serves_only_its_route() {
    let bridge = opened().await;
    let claim = bridge
        .call(
            CLOSURE,
            ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
        )
        .await;
    assert_problem(&claim, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_different_closures_racing_exactly_one_wins() {
    for round in 0..5 {
        let bridge = Arc::new(opened().await);
        let done = {
            let bridge = bridge.clone();
            tokio::spawn(async move { bridge.close("INTER-0500", SEED_CLOSURE_DONE).await })
        };
        let partial = {
            let bridge = bridge.clone();
            tokio::spawn(async move {
                bridge
                    .close("INTER-0500", SEED_CLOSURE_PARTIAL_REPAIR)
                    .await
            })
        };
        let (done, partial) = (done.await.unwrap(), partial.await.unwrap());
        let mut statuses = [done.status, partial.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 409],
            "round {round}: {:#} {:#}",
            done.body,
            partial.body
        );
        let winner = if done.status == 200 {
            "done"
        } else {
            "partial_repair"
        };
        let loser = if done.status == 200 { &partial } else { &done };
        assert_eq!(loser.body["currentState"]["outcome"], winner);

        let events: Vec<Item> = bridge
            .items()
            .await
            .into_iter()
            .filter(|item| item["sk"].as_s().unwrap().starts_with("EVENT#"))
            .collect();
        assert_eq!(events.len(), 2, "one opening, one closure");
        let received = bridge.simulator.received_logs();
        assert_eq!(received.len(), 2);
        assert_eq!(received[1]["event"], winner);
    }
}

#[tokio::test]
async fn the_closure_waits_behind_a_pending_opening_and_intent_gets_them_in_order() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 4));
    let opened = bridge.post(SEED_OPENING).await;
    assert_eq!(opened.status, 202);
    assert!(bridge.simulator.received_logs().is_empty());

    // Intent is still down for the first attempt of the closure's run: the opening is
    // retried first, and only once it is through does the closure go.
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 1));
    let closed = bridge.close("INTER-0500", SEED_CLOSURE_DONE).await;
    assert_eq!(closed.status, 200, "{:#}", closed.body);
    assert_eq!(closed.body["events"][0]["delivery"]["state"], "delivered");
    assert_eq!(closed.body["events"][0]["delivery"]["attempts"], 6);
    let received = bridge.simulator.received_logs();
    assert_eq!(
        received,
        vec![as_sent(SEED_OPENING), as_sent(SEED_CLOSURE_DONE)]
    );
}

#[tokio::test]
async fn while_intent_stays_down_the_closure_is_stored_and_pending_behind_the_opening() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 100));
    assert_eq!(bridge.post(SEED_OPENING).await.status, 202);
    let closed = bridge.close("INTER-0500", SEED_CLOSURE_DONE).await;
    assert_eq!(closed.status, 202);
    assert_eq!(closed.body["delivery"], "pending");
    assert_eq!(closed.body["state"], "closed");
    assert_eq!(
        closed.body["events"][1]["delivery"],
        json!({"state": "pending", "attempts": 0}),
        "the closure is not tried while the opening is not through"
    );
    assert!(bridge.simulator.received_logs().is_empty());
}

#[tokio::test]
async fn closed_files_get_a_ttl_on_every_item_and_leave_the_open_index() {
    let bridge = opened().await;
    let before = jiff::Timestamp::now().as_second();
    assert_eq!(
        bridge.close("INTER-0500", SEED_CLOSURE_DONE).await.status,
        200
    );
    let items = bridge.items().await;
    assert_eq!(items.len(), 3, "file, opening, closure");
    let retention = 395 * 24 * 3600;
    let margin = oncall_domain::lifecycle::OPEN_FILE_EXPIRY_MARGIN_DAYS * 24 * 3600;
    for item in &items {
        let expires: i64 = item["expiresAt"].as_n().unwrap().parse().unwrap();
        // The opening got its expiry when it was stored (its claim's time, the retention
        // and the margin): the whole file expires with it, at most the margin after the
        // closing's time + retention.
        assert!(
            (before + retention..=before + retention + margin + 60).contains(&expires),
            "{} expires at {expires}",
            item["sk"].as_s().unwrap()
        );
    }
    let expiries: std::collections::HashSet<&str> = items
        .iter()
        .map(|item| item["expiresAt"].as_n().unwrap().as_str())
        .collect();
    assert_eq!(
        expiries.len(),
        1,
        "one expiry for the whole file: {expiries:?}"
    );
    let file = items
        .iter()
        .find(|i| i["sk"].as_s().unwrap() == "FILE")
        .unwrap();
    assert!(!file.contains_key("openShard"), "no longer listed as open");
    assert_eq!(file["state"].as_s().unwrap(), "closed");
}

/// Intent too slow to answer within the request's limit (API Gateway gives up at 30 s):
/// the partner gets a 503 in time, telling it to send the same request again, instead of
/// a gateway error; the closure was stored, and the same request again is answered as its
/// replay.
#[tokio::test]
async fn a_closure_that_runs_out_of_time_is_answered_503_and_its_replay_200() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    bridge.simulator.inject(Fault::delay(
        Endpoint::InterventionLogs,
        std::time::Duration::from_secs(5),
        1,
    ));
    let (api, _) = bridge.counted_api_within(
        &LostAnswers::default(),
        std::time::Duration::from_millis(800),
    );
    let closure =
        || ApiGatewayRequest::post_closure("partner-a", "INTER-0500", SEED_CLOSURE_DONE.as_bytes());

    let started = std::time::Instant::now();
    let answer = serve(&api, CLOSURE, closure()).await;

    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(answer.status, 503, "{:#}", answer.body);
    assert_eq!(answer.body["type"], "urn:oncall-bridge:problem:out-of-time");
    assert!(
        answer.headers.contains_key("retry-after"),
        "{:?}",
        answer.headers
    );
    let replay = serve(&api, CLOSURE, closure()).await;
    assert_eq!(replay.status, 200, "{:#}", replay.body);
    assert_eq!(replay.body["state"], "closed");
}
