//! What a partner's request costs in AWS calls (each is the partner's wait and a billed
//! request), counted by a proxy in front of DynamoDB Local and moto (every call
//! is signed by hand, as the functions make it). The guarantees stay: stored first, one sender per file, the outbox.

use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use system_tests::*;

fn items_named(items: &[Item], sk_prefix: &str) -> usize {
    items
        .iter()
        .filter(|item| item["sk"].as_s().unwrap().starts_with(sk_prefix))
        .count()
}

#[tokio::test]
async fn a_new_claim_is_two_table_writes_and_one_put_events() {
    let bridge = Bridge::start().await;
    let (api, log) = bridge.counted_api();

    let answer = serve(
        &api,
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
    )
    .await;

    assert_eq!(answer.status, 201, "{:#}", answer.body);
    assert_eq!(
        log.calls(),
        ["TransactWriteItems", "PutEvents", "TransactWriteItems"],
        "the opening write (file, event, outbox entry, send lease), the announcement, then \
         the outcome with the lease's release and the outbox's clearing"
    );
    let items = bridge.items().await;
    assert_eq!(items_named(&items, "OUTBOX"), 0, "the outbox is cleared");
    let file = item_keyed(&items, "FILE");
    assert!(
        !file.contains_key("sendingUntil"),
        "the lease is given back"
    );
    let opened = bridge.tap.drain().await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["detail-type"], "InterventionOpened");
    assert_eq!(opened[0]["detail"]["delivery"], "delivered");
    assert_eq!(bridge.simulator.received_logs().len(), 1);
}

#[tokio::test]
async fn a_replayed_claim_is_one_refused_write() {
    let bridge = Bridge::start().await;
    let created = bridge.post(SEED_OPENING).await;
    assert_eq!(created.status, 201);
    let (api, log) = bridge.counted_api();

    let answer = serve(
        &api,
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
    )
    .await;

    assert_eq!(answer.status, 200);
    // The refused write gave back the file and its opening: no read.
    assert_eq!(log.calls(), ["TransactWriteItems"]);
    // And the answer is the whole file, as stored.
    assert_eq!(answer.body["events"], created.body["events"]);
    assert_eq!(answer.body["events"][0]["delivery"]["state"], "delivered");
    assert_eq!(answer.body["documents"], serde_json::json!([]));
}

/// A closure of a file with nothing but its delivered opening (almost every one) is not
/// read first: its write checks what the decision needs (open, the partner's, the opening
/// delivered and dated no later, no quitus, no lease, the expiry already set) and gives the
/// whole file back; the outcome's write gives the closing its own item.
#[tokio::test]
async fn a_closure_is_two_table_writes_and_one_put_events() {
    let bridge = Bridge::start().await;
    let opened = bridge.post(SEED_OPENING).await;
    assert_eq!(opened.status, 201);
    bridge.tap.drain().await;
    let (api, log) = bridge.counted_api();

    let answer = serve(
        &api,
        CLOSURE,
        ApiGatewayRequest::post_closure("partner-a", "INTER-0500", SEED_CLOSURE_DONE.as_bytes()),
    )
    .await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert_eq!(
        log.calls(),
        ["UpdateItem", "PutEvents", "TransactWriteItems"],
        "the closing write with the send lease (the file given back), the announcement, the \
         outcome with the lease's release"
    );
    assert_eq!(
        log.written().transactional,
        2,
        "the outcome: the closing's own item and the file (its announcement, on the bus, \
         never became an outbox item)"
    );
    assert_eq!(answer.body["events"][0], opened.body["events"][0]);
    assert_eq!(answer.body["events"][1]["delivery"]["state"], "delivered");
    assert_eq!(answer.body["documents"], serde_json::json!([]));
    let items = bridge.items().await;
    assert_eq!(items_named(&items, "OUTBOX"), 0);
    let file = item_keyed(&items, "FILE");
    for kept_until_its_item in [
        "stagedClosing",
        "stagedOutbox",
        "pendingShard",
        "sendingUntil",
    ] {
        assert!(
            !file.contains_key(kept_until_its_item),
            "{kept_until_its_item}"
        );
    }
    let closing = items
        .iter()
        .find(|item| item["sk"].as_s().unwrap() == "EVENT#000002")
        .expect("the closing has its own item");
    assert_eq!(closing["delivery"].as_s().unwrap(), "delivered");
    assert_eq!(closing["expiresAt"], file["expiresAt"]);
    let closed = bridge.tap.drain().await;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["detail-type"], "InterventionClosed");
    assert_eq!(closed[0]["detail"]["delivery"], "delivered");
    // Read again, the file is the one answered.
    let read = bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-0500",
            Some("contract1"),
        ))
        .await;
    assert_eq!(read.body["events"], answer.body["events"]);
}

/// An upload URL costs one table call: the grant's write checks the file itself (the
/// partner's, not canceled), so a cancellation cannot slip between a read and the write.
#[tokio::test]
async fn an_upload_grant_is_one_table_write_that_checks_its_file() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    let (api, log) = bridge.counted_api();
    let body = br#"{"fileName": "quitus.pdf", "size": 1000}"#;

    let granted = serve(
        &api,
        CLOSURE,
        ApiGatewayRequest::post_upload("partner-a", "INTER-0500", "contract1", body),
    )
    .await;

    assert_eq!(granted.status, 200, "{:#}", granted.body);
    assert_eq!(log.calls(), ["TransactWriteItems"]);
    assert_eq!(
        log.written().transactional,
        2,
        "the file's condition check and the grant's put"
    );
    log.clear();
    let refused = serve(
        &api,
        CLOSURE,
        ApiGatewayRequest::post_upload("partner-a", "INTER-0501", "contract1", body),
    )
    .await;
    assert_problem(&refused, 404);
    assert_eq!(log.calls(), ["TransactWriteItems"]);
    let grants = bridge
        .items()
        .await
        .iter()
        .filter(|item| item["sk"].as_s().unwrap() == "GRANT")
        .count();
    assert_eq!(grants, 1, "the refused grant is not kept");
}

#[tokio::test]
async fn with_intent_down_a_claim_is_still_two_writes_and_stays_pending_under_no_lease() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 10));
    let (api, log) = bridge.counted_api();

    let answer = serve(
        &api,
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
    )
    .await;

    assert_eq!(answer.status, 202, "{:#}", answer.body);
    assert_eq!(
        log.calls(),
        ["TransactWriteItems", "PutEvents", "TransactWriteItems"]
    );
    let items = bridge.items().await;
    let file = item_keyed(&items, "FILE");
    assert!(
        !file.contains_key("sendingUntil"),
        "the lease is given back: the re-send run may take the file at once"
    );
    let opening = items
        .iter()
        .find(|item| item["sk"].as_s().unwrap() == "EVENT#000001")
        .unwrap();
    assert_eq!(opening["delivery"].as_s().unwrap(), "pending");
    assert!(
        opening.contains_key("pendingShard"),
        "queued for the re-send run"
    );
}

/// The claim's opening transaction was applied but its answer lost (a 500 after the
/// write): the same call again, same `ClientRequestToken`, is answered as done. The partner
/// gets its 201 with the event delivered at once, one file, one event on Intent.
#[tokio::test]
async fn a_claim_whose_opening_answer_was_lost_is_still_created_and_delivered_once() {
    let bridge = Bridge::start().await;
    let lost = LostAnswers::default();
    lost.lose("TransactWriteItems", 1);
    let (api, log) = bridge.counted_api_losing(&lost);

    let answer = serve(
        &api,
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
    )
    .await;

    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["delivery"], "delivered");
    assert_eq!(
        log.calls(),
        [
            "TransactWriteItems",
            "TransactWriteItems",
            "PutEvents",
            "TransactWriteItems"
        ]
    );
    assert_eq!(bridge.simulator.received_logs().len(), 1);
}

/// A closure written unread whose outcome write fails (DynamoDB refusing transactions
/// once Intent took the closing, or the function dying there) leaves the closing on the
/// file item, the lease with it. The file is still read whole (the closing pending), and
/// the re-send run, once the lease has run out, gives the closing its own item and its
/// announcement its outbox entry, reads Intent back (the closing may have been sent: it
/// was) and records it delivered: sent once, nothing lost.
#[tokio::test]
async fn a_closure_written_unread_whose_outcome_is_not_recorded_is_finished_by_the_resend_run() {
    let bridge = bridge_with_the_seed_claimed().await;
    let lost = LostAnswers::default();
    lost.refuse("TransactWriteItems", 20);
    let (api, log) = bridge.counted_api_losing(&lost);

    let answer = close_the_seed(&api).await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert_eq!(log.calls()[0], "UpdateItem");
    assert_eq!(bridge.simulator.received_logs().len(), 2);
    let items = bridge.items().await;
    assert_eq!(items_named(&items, "EVENT#000002"), 0);
    let file = item_keyed(&items, "FILE");
    assert_has(
        file,
        &[
            "stagedClosing",
            "stagedOutbox",
            "pendingShard",
            "sendingUntil",
        ],
    );
    let read = bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-0500",
            Some("contract1"),
        ))
        .await;
    assert_eq!(read.body["state"], "closed");
    assert_eq!(read.body["events"][1]["event"], "done");
    assert_eq!(read.body["events"][1]["delivery"]["state"], "pending");
    let announced = bridge.tap.drain().await;
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0]["detail-type"], "InterventionClosed");

    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(4);
    bridge
        .resend_run_with_clock(oncall_domain::ports::FixedClock(later))
        .await;

    assert_eq!(bridge.simulator.received_logs().len(), 2, "not sent again");
    let items = bridge.items().await;
    let closing = items
        .iter()
        .find(|item| item["sk"].as_s().unwrap() == "EVENT#000002")
        .expect("the closing has its own item");
    assert_eq!(closing["delivery"].as_s().unwrap(), "delivered");
    let file = item_keyed(&items, "FILE");
    assert_lacks(
        file,
        &[
            "stagedClosing",
            "stagedOutbox",
            "pendingShard",
            "sendingUntil",
        ],
    );
    assert_eq!(closing["expiresAt"], file["expiresAt"]);
    assert_eq!(items_named(&items, "OUTBOX"), 0, "its outbox entry cleared");
    let after = bridge.tap.drain().await;
    let types: Vec<_> = after
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"EventDelivered"), "{types:?}");
    // Its announcement, kept on the file item, became an outbox entry and went out again
    // (at least once: the same eventId, which consumers de-duplicate on).
    let again: Vec<_> = after
        .iter()
        .filter(|e| e["detail-type"] == "InterventionClosed")
        .collect();
    assert_eq!(again.len(), 1, "{types:?}");
    assert_eq!(
        again[0]["detail"]["eventId"],
        announced[0]["detail"]["eventId"]
    );
}

/// The same with the bus down too during the closure: its announcement, kept on the file
/// item with the closing, reaches the bus through the outbox once the re-send run has
/// given it its entry there.
#[tokio::test]
async fn a_closure_written_unread_announces_its_closing_even_when_its_process_never_could() {
    let bridge = bridge_with_the_seed_claimed().await;
    let lost = LostAnswers::default();
    lost.refuse("TransactWriteItems", 20);
    lost.refuse("PutEvents", 20);
    let (api, _) = bridge.counted_api_losing(&lost);
    let answer = close_the_seed(&api).await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert!(bridge.tap.drain().await.is_empty(), "the bus was down");

    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(4);
    for _ in 0..2 {
        bridge
            .resend_run_with_clock(oncall_domain::ports::FixedClock(later))
            .await;
    }

    let published = bridge.tap.drain().await;
    let closed: Vec<_> = published
        .iter()
        .filter(|e| e["detail-type"] == "InterventionClosed")
        .collect();
    assert_eq!(closed.len(), 1, "{published:#?}");
    assert_eq!(closed[0]["detail"]["outcome"], "done");
    assert_eq!(
        bridge
            .items()
            .await
            .iter()
            .filter(|i| i["sk"].as_s().unwrap() == "OUTBOX")
            .count(),
        0
    );
    assert_eq!(bridge.simulator.received_logs().len(), 2);
}

/// The unread closing's write applied but its answer lost: its repetition is refused and
/// finds the closing its own (its token): closed once, sent once, answered 200.
#[tokio::test]
async fn a_closure_written_unread_whose_answer_was_lost_is_still_the_requests() {
    let bridge = bridge_with_the_seed_claimed().await;
    let lost = LostAnswers::default();
    lost.lose("UpdateItem", 1);
    let (api, log) = bridge.counted_api_losing(&lost);

    let answer = close_the_seed(&api).await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert_eq!(answer.body["delivery"], "delivered");
    assert_eq!(
        log.calls(),
        [
            "UpdateItem",
            "UpdateItem",
            "PutEvents",
            "TransactWriteItems"
        ]
    );
    assert_eq!(bridge.simulator.received_logs().len(), 2);
    let items = bridge.items().await;
    assert_eq!(items_named(&items, "EVENT#000002"), 1);
    let closed = bridge.tap.drain().await;
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["detail"]["delivery"], "delivered");
}

/// A claim and a closure each carrying, in a field Intent does not define, numbers that
/// grow when written back (`1e15` is stored as `1000000000000000.0`): the file item with
/// its opening's copy and the closing kept beside it would pass DynamoDB's 400 KB, so the
/// unread write is refused as too large, and the closure is read and written as before,
/// the closing in its own item.
#[tokio::test]
async fn a_closure_too_large_to_be_written_unread_is_written_as_before() {
    let bridge = Bridge::start().await;
    let numbers = vec!["1e15"; 11_000].join(",");
    // As the partner sends them (a `Value` would already write them long).
    let with_numbers = |seed: &str| {
        let end = seed.rfind('}').unwrap();
        format!("{},\"intent_custom\":[{numbers}]}}", &seed[..end])
    };
    let opening = with_numbers(SEED_OPENING);
    assert!(opening.len() < 128 * 1024);
    let opened = bridge.post(&opening).await;
    assert_eq!(opened.status, 201, "{:#}", opened.body);
    let (api, log) = bridge.counted_api();

    let answer = serve(
        &api,
        CLOSURE,
        ApiGatewayRequest::post_closure(
            "partner-a",
            "INTER-0500",
            with_numbers(SEED_CLOSURE_DONE).as_bytes(),
        ),
    )
    .await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert_eq!(
        log.calls(),
        [
            "UpdateItem",
            "Query",
            "TransactWriteItems",
            "PutEvents",
            "TransactWriteItems"
        ]
    );
    assert_eq!(bridge.simulator.received_logs().len(), 2);
}

/// The unread closing's write applied but its answer lost, and a quitus marked on the file
/// before its repetition: the repetition still finds the closing its own, and the file is
/// read (the file item no longer holds it whole): closed once, sent once, answered 200.
#[tokio::test]
async fn a_closure_written_unread_whose_answer_was_lost_while_a_quitus_came_is_still_the_requests()
{
    let bridge = bridge_with_the_seed_claimed().await;
    let lost = LostAnswers::default();
    lost.lose("UpdateItem", 1);
    lost.then_update(
        "UpdateItem",
        serde_json::json!({
            "TableName": bridge.table,
            "Key": {"pk": {"S": "FILE#contract1#INTER-0500"}, "sk": {"S": "FILE"}},
            "UpdateExpression": "SET hasDocuments = :yes",
            "ExpressionAttributeValues": {":yes": {"BOOL": true}},
        }),
    );
    let (api, _) = bridge.counted_api_losing(&lost);

    let answer = close_the_seed(&api).await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert_eq!(answer.body["delivery"], "delivered");
    assert_eq!(bridge.simulator.received_logs().len(), 2);
    let items = bridge.items().await;
    assert_eq!(items_named(&items, "EVENT#000002"), 1);
}

/// A bridge whose partner-a claimed the seed (delivered), its announcement drained.
async fn bridge_with_the_seed_claimed() -> Bridge {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    bridge.tap.drain().await;
    bridge
}

/// partner-a closes the seed (`closed/done`) through `api`.
async fn close_the_seed(api: &std::sync::Arc<partner_lambda::LambdaPartnerApi>) -> Answer {
    serve(
        api,
        CLOSURE,
        ApiGatewayRequest::post_closure("partner-a", "INTER-0500", SEED_CLOSURE_DONE.as_bytes()),
    )
    .await
}

/// The bus down during a closure written unread whose outcome is recorded: the outcome's
/// write gives the announcement its outbox entry (it was only on the file item), and the
/// relay publishes it.
#[tokio::test]
async fn a_closure_written_unread_with_the_bus_down_leaves_its_announcement_in_the_outbox() {
    let bridge = bridge_with_the_seed_claimed().await;
    let lost = LostAnswers::default();
    lost.refuse("PutEvents", 20);
    let (api, _) = bridge.counted_api_losing(&lost);

    let answer = close_the_seed(&api).await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let items = bridge.items().await;
    assert_eq!(items_named(&items, "OUTBOX"), 1, "its announcement, kept");
    let outbox = bridge.outbox_items().await;
    assert_eq!(
        outbox[0]["detailType"].as_s().unwrap(),
        "InterventionClosed"
    );
    let file = item_keyed(&items, "FILE");
    assert!(!file.contains_key("stagedOutbox"));
    assert!(bridge.tap.drain().await.is_empty());

    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(4);
    bridge
        .resend_run_with_clock(oncall_domain::ports::FixedClock(later))
        .await;
    let published = bridge.tap.drain().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    assert_eq!(published[0]["detail-type"], "InterventionClosed");
    assert_eq!(published[0]["detail"]["delivery"], "delivered");
    assert!(bridge.outbox_items().await.is_empty());
}

/// A replayed closure is one refused write: the unread write's refusal gives back the file
/// item, which holds the whole file (its opening and its closing, each delivered), and the
/// replay is answered from it; a different closure is refused (409) the same way.
#[tokio::test]
async fn a_replayed_closure_is_one_refused_write() {
    let bridge = bridge_with_the_seed_claimed().await;
    let (api, _) = bridge.counted_api();
    let first = close_the_seed(&api).await;
    assert_eq!(first.status, 200);
    let (api, log) = bridge.counted_api();

    let again = close_the_seed(&api).await;

    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(again.body["events"], first.body["events"]);
    assert_eq!(again.body["documents"], first.body["documents"]);
    assert_eq!(log.calls(), ["UpdateItem"]);
    assert_eq!(bridge.simulator.received_logs().len(), 2);

    let (api, log) = bridge.counted_api();
    let other = serve(
        &api,
        CLOSURE,
        ApiGatewayRequest::post_closure(
            "partner-a",
            "INTER-0500",
            SEED_CLOSURE_DONE
                .replace("\"done\"", "\"partial_repair\"")
                .as_bytes(),
        ),
    )
    .await;
    assert_eq!(other.status, 409, "{:#}", other.body);
    assert_eq!(log.calls(), ["UpdateItem"]);
}

/// `CLOSURES_WRITTEN_UNREAD=false` (the way back to functions that cannot read a closing
/// kept on the file item): every closure reads its file and writes its closing in its own
/// item, as before 61b7595; nothing is kept on the file item.
#[tokio::test]
async fn with_unread_closures_switched_off_a_closure_reads_its_file_and_keeps_nothing_on_it() {
    let settings = settings::Settings::from_lookup(|name| {
        let value = match name {
            "CLOSURES_WRITTEN_UNREAD" => "false",
            "PARTNER_CONTRACTS" => r#"{"partner-a": ["contract1"]}"#,
            "TABLE_NAME" => "table",
            "EVENT_BUS_NAME" => "bus",
            "INTENT_BASE_URL" => "http://127.0.0.1:1",
            "INTENT_TOKEN_URL" => "http://127.0.0.1:1/token",
            "INTENT_CLIENT_ID" => "id",
            "INTENT_CLIENT_SECRET" => "secret",
            _ => return None,
        };
        Some(value.to_string())
    });
    let closure = partner_lambda::FunctionConfig::from_settings(&settings)
        .unwrap()
        .closure;
    assert!(!closure.written_unread);
    let bridge = bridge_with_the_seed_claimed().await;
    let (api, log) = bridge.counted_api_closing_under(closure);

    let answer = close_the_seed(&api).await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert_eq!(
        log.calls(),
        [
            "Query",
            "TransactWriteItems",
            "PutEvents",
            "TransactWriteItems"
        ]
    );
    let items = bridge.items().await;
    let file = item_keyed(&items, "FILE");
    assert_lacks(
        file,
        &[
            "stagedClosing",
            "stagedOutbox",
            "pendingShard",
            "closingCopy",
        ],
    );
    assert_eq!(items_named(&items, "EVENT#000002"), 1);
}

/// The item of `items` whose sort key is `sk`.
fn item_keyed<'a>(items: &'a [Item], sk: &str) -> &'a Item {
    items
        .iter()
        .find(|item| item["sk"].as_s().unwrap() == sk)
        .unwrap_or_else(|| panic!("no {sk} item"))
}

fn assert_lacks(item: &Item, names: &[&str]) {
    for name in names {
        assert!(!item.contains_key(*name), "{name}");
    }
}

fn assert_has(item: &Item, names: &[&str]) {
    for name in names {
        assert!(item.contains_key(*name), "{name}");
    }
}
