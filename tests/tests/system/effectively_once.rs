//! Effectively once on Intent under the faults production brings: answers lost after
//! Intent applied a request, a quitus racing its file's opening, closings refused at the
//! end of a period. Real DynamoDB Local, moto and the Intent simulator (which, like Intent
//! as far as its documentation says, does not deduplicate: a blind re-send would show as
//! a second log or document).

use oncall_closer::{Tick, TickKind, run_tick};
use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use oncall_domain::oncall::{CloserPolicy, Deadline};
use serde_json::Value;
use std::time::Duration;
use system_tests::*;

const KEY: &str = "operator-quitus/contract1/INTER-0500/quitus-INTER-0500.pdf";

fn logs_named(bridge: &Bridge, event: &str) -> Vec<Value> {
    bridge
        .simulator
        .operation_logs("INTER-0500", "contract1")
        .into_iter()
        .filter(|log| log["event"] == event)
        .collect()
}

async fn file(bridge: &Bridge) -> Value {
    bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-0500",
            Some("contract1"),
        ))
        .await
        .body
}

fn paths(bridge: &Bridge) -> Vec<(String, String, u16)> {
    bridge
        .simulator
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect()
}

#[tokio::test]
async fn an_opening_whose_answer_was_lost_is_on_intent_once_and_delivered() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::apply_then_drop(Endpoint::InterventionLogs, 1));
    let answer = bridge.post(SEED_OPENING).await;
    assert_eq!(answer.status, 201, "{:#}", answer.body);
    assert_eq!(answer.body["delivery"], "delivered");
    assert_eq!(logs_named(&bridge, "acknowledged").len(), 1);
    let posts = paths(&bridge)
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/interventions/logs"))
        .count();
    assert_eq!(posts, 1, "read back, never sent twice");
    assert!(
        paths(&bridge)
            .iter()
            .any(|(m, p, _)| m == "GET" && p.ends_with("/operations/INTER-0500")),
        "Intent was read"
    );
    // Nothing left for the re-send run, which sends nothing.
    let run = bridge.resend_run().await;
    assert_eq!(run.report.resend.unwrap().delivered, 0);
    assert_eq!(logs_named(&bridge, "acknowledged").len(), 1);
}

#[tokio::test]
async fn a_timeout_after_intent_applied_is_settled_without_a_second_log() {
    let bridge = Bridge::start().await;
    // The hub applies, then answers after the client's 2 s timeout.
    bridge.simulator.inject(Fault::apply_then_delay(
        Endpoint::InterventionLogs,
        Duration::from_secs(3),
        1,
    ));
    let answer = bridge.post(SEED_OPENING).await;
    assert_eq!(answer.body["delivery"], "delivered", "{:#}", answer.body);
    assert_eq!(logs_named(&bridge, "acknowledged").len(), 1);
}

#[tokio::test]
async fn when_intent_cannot_be_read_either_the_event_stays_in_doubt_and_the_resend_run_reads_first()
{
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::apply_then_drop(Endpoint::InterventionLogs, 1));
    bridge
        .simulator
        .inject(Fault::status(Endpoint::Operations, 503, 4));
    let answer = bridge.post(SEED_OPENING).await;
    assert_eq!(answer.status, 202, "{:#}", answer.body);
    assert_eq!(answer.body["delivery"], "pending");
    let stored = file(&bridge).await;
    assert_eq!(stored["events"][0]["delivery"]["state"], "pending");
    assert_eq!(stored["events"][0]["delivery"]["inDoubt"], true);

    let run = bridge.resend_run().await;
    assert_eq!(run.report.resend.unwrap().delivered, 1);
    assert_eq!(
        logs_named(&bridge, "acknowledged").len(),
        1,
        "not sent twice"
    );
    let stored = file(&bridge).await;
    assert_eq!(stored["events"][0]["delivery"]["state"], "delivered");
    assert!(stored["events"][0]["delivery"]["inDoubt"].is_null());
}

#[tokio::test]
async fn a_closing_whose_answer_was_lost_is_on_intent_once_and_nothing_is_failed() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    bridge
        .simulator
        .inject(Fault::apply_then_drop(Endpoint::InterventionLogs, 1));
    let closed = bridge.close("INTER-0500", SEED_CLOSURE_DONE).await;
    assert_eq!(closed.status, 200, "{:#}", closed.body);
    assert_eq!(closed.body["delivery"], "delivered");
    assert_eq!(logs_named(&bridge, "done").len(), 1);
    // The reconciliation and the re-send run find nothing to re-send.
    let run = bridge.resend_run().await;
    assert_eq!(run.report.resend.unwrap().marked_failed, 0);
    assert_eq!(logs_named(&bridge, "done").len(), 1);
    let events = bridge.tap.drain().await;
    assert!(
        !events.iter().any(|e| e["detail-type"] == "DeliveryFailed"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_closing_intent_already_holds_is_delivered_when_intent_answers_409() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 4));
    assert_eq!(
        bridge.close("INTER-0500", SEED_CLOSURE_DONE).await.status,
        202
    );
    // The closing reaches Intent by a path the bridge did not see (an earlier attempt
    // whose trace was lost): the re-send gets Intent's 409, reads the log, finds it.
    let closing =
        oncall_domain::validation::parse_intervention_log(SEED_CLOSURE_DONE.as_bytes()).unwrap();
    let other_sender =
        intent_client::IntentClient::new(fast_intent_config(&bridge.simulator)).unwrap();
    other_sender.post_intervention_log(&closing).await.unwrap();
    let run = bridge.resend_run().await;
    let resend = run.report.resend.unwrap();
    assert_eq!((resend.delivered, resend.marked_failed), (1, 0));
    assert!(
        paths(&bridge)
            .iter()
            .any(|(m, p, s)| m == "POST" && p.ends_with("/interventions/logs") && *s == 409),
        "Intent answered 409"
    );
    assert_eq!(logs_named(&bridge, "done").len(), 1);
    assert_eq!(
        file(&bridge).await["events"][1]["delivery"]["state"],
        "delivered"
    );
    let events = bridge.tap.drain().await;
    assert!(!events.iter().any(|e| e["detail-type"] == "DeliveryFailed"));
}

#[tokio::test]
async fn a_quitus_dropped_while_the_opening_is_pending_goes_after_the_opening_once() {
    let bridge = Bridge::start().await;
    let s3 = s3_client(&bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let forwarder = bridge.forwarder(Default::default());
    // Intent was down when the claim came in.
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 4));
    assert_eq!(bridge.post(SEED_OPENING).await.status, 202);
    // The quitus arrives before the next re-send run; Intent is back.
    let object = put_object(&s3, &bucket, KEY, pdf_bytes(4_000), &[]).await;
    let summary = document_forwarder::handle(&forwarder, s3_event(&[&object]))
        .await
        .unwrap();
    assert_eq!(summary.published, 1);
    let accepted: Vec<String> = paths(&bridge)
        .into_iter()
        .filter(|(m, _, status)| m == "POST" && (200..300).contains(status))
        .map(|(_, p, _)| p)
        .filter(|p| !p.ends_with("/token"))
        .collect();
    assert_eq!(
        accepted,
        [
            "/api/operations/v2/interventions/logs",
            "/api/documents/v1/documents"
        ],
        "the opening first, then the document, once each"
    );
    assert_eq!(
        file(&bridge).await["events"][0]["delivery"]["state"],
        "delivered"
    );
}

#[tokio::test]
async fn with_intent_still_down_the_quitus_waits_and_the_resend_run_sends_both_in_order() {
    let bridge = Bridge::start().await;
    let s3 = s3_client(&bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let forwarder = bridge.forwarder(Default::default());
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 8));
    assert_eq!(bridge.post(SEED_OPENING).await.status, 202);
    let object = put_object(&s3, &bucket, KEY, pdf_bytes(4_000), &[]).await;
    let summary = document_forwarder::handle(&forwarder, s3_event(&[&object]))
        .await
        .unwrap();
    assert_eq!(summary.pending, 1, "waiting, not rejected, not failed");
    assert!(
        !paths(&bridge)
            .iter()
            .any(|(_, p, _)| p.ends_with("/documents")),
        "no document for an intervention Intent does not know"
    );
    let run = bridge.resend_run().await;
    assert_eq!(run.report.resend.unwrap().delivered, 1);
    assert_eq!(run.report.documents.unwrap().published, 1);
    assert_eq!(bridge.simulator.received_documents().len(), 1);
    assert_eq!(logs_named(&bridge, "acknowledged").len(), 1);
    let docs = &file(&bridge).await["documents"];
    assert_eq!(docs.as_array().map(Vec::len), Some(1), "{docs}");
}

#[tokio::test]
async fn an_upload_whose_answer_was_lost_is_found_on_intent_not_uploaded_again() {
    let bridge = Bridge::start().await;
    let s3 = s3_client(&bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let forwarder = bridge.forwarder(Default::default());
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    bridge
        .simulator
        .inject(Fault::apply_then_drop(Endpoint::Documents, 1));
    let object = put_object(&s3, &bucket, KEY, pdf_bytes(6_000), &[]).await;
    let summary = document_forwarder::handle(&forwarder, s3_event(&[&object]))
        .await
        .unwrap();
    assert_eq!(summary.published, 1, "{summary:?}");
    assert_eq!(bridge.simulator.received_documents().len(), 1);
    // S3 delivers the event again: nothing more.
    let again = document_forwarder::handle(&forwarder, s3_event(&[&object]))
        .await
        .unwrap();
    assert_eq!(again.duplicates, 1);
    assert_eq!(bridge.simulator.received_documents().len(), 1);
}

/// Intent answers an upload 201 without an id (its 201 body is not documented), so the
/// file's first quitus is recorded without one. A second quitus of the same name and size
/// (a new version of the key) is lost on the way (the connection drops before Intent
/// got it): reading Intent back finds the first, which is not this upload. It is uploaded,
/// not taken for published.
#[tokio::test]
async fn an_upload_lost_on_the_way_is_not_taken_for_an_earlier_one_intent_gave_no_id() {
    let bridge = Bridge::start().await;
    bridge.simulator.answer_uploads_without_id(true);
    let s3 = s3_client(&bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let forwarder = bridge.forwarder(Default::default());
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    let first = put_object(&s3, &bucket, KEY, pdf_bytes(6_000), &[]).await;
    let summary = document_forwarder::handle(&forwarder, s3_event(&[&first]))
        .await
        .unwrap();
    assert_eq!(summary.published, 1, "{summary:?}");

    bridge
        .simulator
        .inject(Fault::drop_connection(Endpoint::Documents, 1));
    let second = put_object(&s3, &bucket, KEY, pdf_bytes(6_000), &[]).await;
    assert_ne!(first.version, second.version);
    let summary = document_forwarder::handle(&forwarder, s3_event(&[&second]))
        .await
        .unwrap();
    // Intent read back: nothing of this upload there yet, so it waits in doubt for the
    // next reading (the re-send run's), never taken for published.
    assert_eq!(summary.pending, 1, "{summary:?}");
    let run = bridge.resend_run().await;

    let documents = run
        .report
        .documents
        .as_ref()
        .expect("waiting documents forwarded");
    assert_eq!(documents.published, 1, "{documents:?}");
    assert_eq!(
        bridge.simulator.received_documents().len(),
        2,
        "both quitus on Intent"
    );
    let docs = &file(&bridge).await["documents"];
    assert_eq!(docs.as_array().map(Vec::len), Some(2), "{docs}");
    // A third delivery of either sends nothing more.
    let again = document_forwarder::handle(&forwarder, s3_event(&[&first, &second]))
        .await
        .unwrap();
    assert_eq!(again.duplicates, 2, "{again:?}");
    assert_eq!(bridge.simulator.received_documents().len(), 2);
}

/// A gateway in front of Intent answers 502 or 504 while Intent went on and applied the
/// request (its backend slower than the gateway's timeout): the event and the document
/// are read back, not sent a second time.
#[tokio::test]
async fn a_gateway_error_after_intent_applied_is_read_back_not_sent_twice() {
    for code in [502, 504] {
        let bridge = Bridge::start().await;
        bridge.simulator.inject(Fault::apply_then_status(
            Endpoint::InterventionLogs,
            code,
            1,
        ));
        let answer = bridge.post(SEED_OPENING).await;
        assert_eq!(
            answer.body["delivery"], "delivered",
            "{code}: {:#}",
            answer.body
        );
        assert_eq!(logs_named(&bridge, "acknowledged").len(), 1, "{code}");

        let s3 = s3_client(&bridge.sdk);
        let bucket = create_versioned_bucket(&s3).await;
        let forwarder = bridge.forwarder(Default::default());
        bridge
            .simulator
            .inject(Fault::apply_then_status(Endpoint::Documents, code, 1));
        let object = put_object(&s3, &bucket, KEY, pdf_bytes(6_000), &[]).await;
        let summary = document_forwarder::handle(&forwarder, s3_event(&[&object]))
            .await
            .unwrap();
        assert_eq!(summary.published, 1, "{code}: {summary:?}");
        assert_eq!(bridge.simulator.received_documents().len(), 1, "{code}");
    }
}

#[tokio::test]
async fn closings_refused_at_the_periods_end_are_reported() {
    let bridge = Bridge::start().await;
    for reference in ["R-1", "R-2", "R-3"] {
        let claim = SEED_OPENING
            .replace("INTER-0500", reference)
            .replace("2020-03-06T10:45:23", "2026-11-23T22:00:00")
            .replace("2020-03-06T10:45:26", "2026-11-23T22:00:03");
        assert_eq!(bridge.post(&claim).await.status, 201);
    }
    bridge.tap.drain().await;
    // Intent refuses two of the three closings (400: their content, for good).
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 400, 2));
    let closer = bridge.closer_on_time(CloserPolicy::default(), "2026-11-24T07:00:00Z");
    let tick = Tick {
        kind: TickKind::EndOfPeriod,
        scheduled_time: Some("2026-11-24T07:00:00Z".parse().unwrap()),
    };
    let summary = run_tick(&closer, tick, Deadline::none(), None)
        .await
        .unwrap();
    let closing = summary.report.closing.unwrap();
    assert_eq!(closing.closed, 3);
    assert_eq!(closing.delivery_failed, 2);
    let events = bridge.tap.drain().await;
    let failed = events
        .iter()
        .filter(|e| e["detail-type"] == "DeliveryFailed")
        .count();
    assert_eq!(failed, 2, "each refused closing is announced");
    let period = events
        .iter()
        .find(|e| e["detail-type"] == "OnCallPeriodClosed")
        .expect("the summary");
    assert_eq!(period["detail"]["closingsRefused"], 2);
    assert_eq!(period["detail"]["stillFailing"], 2);
    assert_eq!(period["detail"]["failedEvents"], 2);
}

#[tokio::test]
async fn a_run_cut_off_by_its_host_still_publishes_its_summary_and_the_next_tick_finishes() {
    let bridge = Bridge::start().await;
    for reference in ["R-1", "R-2", "R-3"] {
        bridge
            .post(&SEED_OPENING.replace("INTER-0500", reference))
            .await;
    }
    bridge.tap.drain().await;
    // Every closing takes 1.5 s at Intent; the host stops the run after 0.5 s.
    bridge.simulator.inject(Fault::delay(
        Endpoint::InterventionLogs,
        Duration::from_millis(1_500),
        3,
    ));
    let end = next_period_end().end;
    let minutes = |m: i64| end + jiff::SignedDuration::from_mins(m);
    let clock = oncall_domain::in_memory::FixedClock(minutes(1));
    let closer = bridge.closer_with_clock(CloserPolicy::default(), clock);
    let tick = Tick {
        kind: TickKind::EndOfPeriod,
        scheduled_time: Some(end),
    };
    let hard_stop = std::time::Instant::now() + Duration::from_millis(500);
    // Cut off before reconciling: the tick fails (Lambda tries it again).
    let problem = run_tick(&closer, tick, Deadline::none(), Some(hard_stop))
        .await
        .expect_err("cut off before reconciling");
    assert!(problem.to_string().contains("reconciling"), "{problem}");
    let events = bridge.tap.drain().await;
    let period = events
        .iter()
        .find(|e| e["detail-type"] == "OnCallPeriodClosed")
        .expect("the summary goes out even when cut off");
    assert_eq!(period["detail"]["stoppedEarly"], true);
    // The next tick, once the cut-off run's send leases have run out, finishes: every
    // file closed on Intent, each closing once (what the cut-off run may have sent is
    // read back first).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let later = oncall_domain::in_memory::FixedClock(minutes(5));
    let closer = bridge.closer_with_clock(CloserPolicy::default(), later);
    let next = run_tick(
        &closer,
        Tick {
            kind: TickKind::Resend,
            scheduled_time: Some(minutes(5)),
        },
        Deadline::none(),
        None,
    )
    .await
    .unwrap();
    assert!(!next.report.interrupted);
    let closed: Vec<_> = bridge
        .simulator
        .interventions()
        .into_iter()
        .filter(|i| i.status == "closed")
        .collect();
    assert_eq!(closed.len(), 3, "{closed:?}");
    let closings = bridge
        .simulator
        .received_logs()
        .into_iter()
        .filter(|l| l["status"] == "closed")
        .count();
    assert_eq!(closings, 3, "each closing once");
}

#[tokio::test]
async fn a_domain_event_the_request_could_not_publish_is_published_by_the_resend_run() {
    let bridge = Bridge::start().await;
    // The same function, but its bus is unreachable: the claim is stored and delivered,
    // its InterventionOpened stays in the outbox (as after a crash right after the write).
    let cut_off = partner_lambda::build_api(
        &bridge.sdk,
        function_config(aws_wiring::CoreConfig {
            table_name: bridge.table.clone(),
            event_bus_name: "no-such-bus".into(),
            event_source: SOURCE.into(),
            intent: fast_intent_config(&bridge.simulator),
            intent_secret_arn: None,
        }),
    )
    .unwrap();
    let answer = serve(
        &std::sync::Arc::new(cut_off),
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
    )
    .await;
    assert_eq!(answer.status, 201, "{:#}", answer.body);
    assert!(
        bridge.tap.drain().await.is_empty(),
        "nothing on the bus yet"
    );
    let outbox = bridge.outbox_items().await;
    assert_eq!(outbox.len(), 1, "written with the claim");

    // The next re-send run, five minutes later, publishes it (once its writer's send
    // lease would have run out: not while the request may still be delivering).
    let run = bridge
        .resend_run_with_clock(oncall_domain::ports::FixedClock(
            jiff::Timestamp::now() + jiff::SignedDuration::from_mins(5),
        ))
        .await;
    assert_eq!(run.report.outbox_published, 1);
    let events = bridge.tap.drain().await;
    let opened: Vec<_> = events
        .iter()
        .filter(|e| e["detail-type"] == "InterventionOpened")
        .collect();
    assert_eq!(opened.len(), 1, "{events:?}");
    assert_eq!(opened[0]["detail"]["reference"], "INTER-0500");
    assert_eq!(
        opened[0]["detail"]["eventId"],
        outbox[0]["eventId"].as_s().unwrap().as_str(),
        "consumers de-duplicate on eventId"
    );
    assert!(
        bridge.outbox_items().await.is_empty(),
        "the outbox is empty once published"
    );
}

#[tokio::test]
async fn published_events_carry_an_event_id_and_leave_nothing_in_the_outbox() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    assert_eq!(
        bridge.close("INTER-0500", SEED_CLOSURE_DONE).await.status,
        200
    );
    let events = bridge.tap.drain().await;
    assert_eq!(events.len(), 2, "{events:?}");
    for event in &events {
        assert_eq!(
            event["detail"]["eventId"].as_str().map(str::len),
            Some(32),
            "{event}"
        );
    }
    assert!(bridge.outbox_items().await.is_empty());
}
