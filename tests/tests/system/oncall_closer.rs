//! The on-call closer end to end: Scheduler ticks into the real handler, with DynamoDB
//! Local, moto's EventBridge and the Intent simulator.
//!
//! The period used: Monday 2026-11-23 18:00 → Tuesday 2026-11-24 08:00 (Paris), whose end
//! tick is 2026-11-24T07:00:00Z.

use oncall_closer::{RunSummary, Tick, TickKind, run_tick};
use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use oncall_domain::oncall::{CloserPolicy, Deadline};
use serde_json::Value;
use std::sync::Arc;
use system_tests::*;

const END_TICK: &str = "2026-11-24T07:00:00Z";

/// A claim opened during the period (Monday 22:00 Paris) for `reference`.
fn claim(reference: &str) -> String {
    SEED_OPENING
        .replace("INTER-0500", reference)
        .replace("2020-03-06T10:45:23", "2026-11-23T22:00:00")
        .replace("2020-03-06T10:45:26", "2026-11-23T22:00:03")
}

fn closure(reference: &str) -> String {
    SEED_CLOSURE_DONE
        .replace("INTER-0500", reference)
        .replace("2020-03-06T15:35:00", "2026-11-23T23:30:00")
        .replace("2020-03-06T15:35:26", "2026-11-23T23:30:10")
}

fn tick(kind: TickKind, at: &str) -> Tick {
    Tick {
        kind,
        scheduled_time: Some(at.parse().unwrap()),
    }
}

fn policy() -> CloserPolicy {
    CloserPolicy {
        base_backoff: jiff::SignedDuration::ZERO,
        ..CloserPolicy::default()
    }
}

/// The closer on time for [`END_TICK`], its AWS calls through proxies that lose or refuse
/// what `lost` says.
fn closer_on_time_through(
    bridge: &Bridge,
    lost: &LostAnswers,
) -> oncall_closer::CloserFunction<oncall_domain::in_memory::FixedClock> {
    let sdk = every_service_through_lossy_proxies(&bridge.sdk, &CallLog::default(), lost);
    let end: jiff::Timestamp = END_TICK.parse().unwrap();
    bridge.closer_on(
        &sdk,
        policy(),
        oncall_domain::in_memory::FixedClock(end + jiff::SignedDuration::from_secs(30)),
    )
}

/// An end tick at [`END_TICK`] cut off at its hard stop a second from now, the function's
/// deadline 3 s after it (as 15 s before Lambda's): what the run came to (within 30 s,
/// whatever Intent and AWS do), and that deadline.
async fn cut_off_end_run<C: oncall_domain::ports::Clock>(
    closer: &mut oncall_closer::CloserFunction<C>,
) -> (
    Result<RunSummary, aws_wiring::InvocationError>,
    std::time::Instant,
) {
    closer.hard_stop_margin = std::time::Duration::from_secs(3);
    let hard_stop = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        run_tick(
            closer,
            tick(TickKind::EndOfPeriod, END_TICK),
            Deadline::none(),
            Some(hard_stop),
        ),
    )
    .await
    .expect("the run ends before the function's deadline");
    (ended, hard_stop + closer.hard_stop_margin)
}

/// `reference` claimed and closed (both on Intent), then the closing lost by Intent: it
/// shows the intervention open again, and only a reconciliation sends the closing again.
async fn a_closing_intent_lost(bridge: &Bridge, reference: &str) {
    bridge.post(&claim(reference)).await;
    assert_eq!(
        bridge.close(reference, &closure(reference)).await.status,
        200
    );
    bridge.simulator.lose_last_event(reference, "contract1");
}

async fn run<C: oncall_domain::ports::Clock>(
    closer: &oncall_closer::CloserFunction<C>,
    kind: TickKind,
    at: &str,
) -> RunSummary {
    ran(closer, kind, at).await.unwrap()
}

/// A tick at `at`, without deadline: what it came to.
async fn ran<C: oncall_domain::ports::Clock>(
    closer: &oncall_closer::CloserFunction<C>,
    kind: TickKind,
    at: &str,
) -> Result<RunSummary, aws_wiring::InvocationError> {
    run_tick(closer, tick(kind, at), Deadline::none(), None).await
}

/// The period summaries (`OnCallPeriodClosed`) on the bus since the last drain.
async fn period_summaries(bridge: &Bridge) -> Vec<Value> {
    bridge
        .tap
        .drain()
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "OnCallPeriodClosed")
        .collect()
}

fn closings(bridge: &Bridge) -> Vec<Value> {
    bridge
        .simulator
        .received_logs()
        .into_iter()
        .filter(|log| log["status"] != "open")
        .collect()
}

#[tokio::test]
async fn three_open_and_two_closed_files_give_exactly_three_closing_events() {
    let bridge = Bridge::start().await;
    for reference in ["R-1", "R-2", "R-3", "R-4", "R-5"] {
        assert_eq!(bridge.post(&claim(reference)).await.status, 201);
    }
    for reference in ["R-4", "R-5"] {
        assert_eq!(
            bridge.close(reference, &closure(reference)).await.status,
            200
        );
    }
    // Opened after the period's end (Tuesday 09:00): not this period's business.
    let late = claim("R-6").replace("2026-11-23T22:00:0", "2026-11-24T09:00:0");
    assert_eq!(bridge.post(&late).await.status, 201);
    bridge.tap.drain().await;

    let closer = bridge.closer_on_time(policy(), END_TICK);
    let summary = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert_eq!(
        summary.report.period.as_ref().unwrap().id,
        "oncall-2026-11-24"
    );
    assert_eq!(summary.report.closing.as_ref().unwrap().closed, 3);

    let auto: Vec<Value> = closings(&bridge)
        .into_iter()
        .filter(|log| log["event"] == "partial_repair")
        .collect();
    let mut references: Vec<&str> = auto
        .iter()
        .map(|l| l["reference"].as_str().unwrap())
        .collect();
    references.sort();
    assert_eq!(references, ["R-1", "R-2", "R-3"]);
    for log in &auto {
        assert_eq!(log["status"], "closed");
        assert_eq!(log["eventDate"], "2026-11-24T08:00:00+01:00");
        assert!(
            log["description"]
                .as_str()
                .unwrap()
                .contains("fin de période d'astreinte")
        );
        assert!(log.get("contacts").is_none(), "no tenant contacts repeated");
    }
    let hub = bridge.simulator.interventions();
    let still_open: Vec<&str> = hub
        .iter()
        .filter(|i| i.status == "open")
        .map(|i| i.reference.as_str())
        .collect();
    assert_eq!(still_open, ["R-6"]);

    let events = bridge.tap.drain().await;
    let closed_by_closer = events
        .iter()
        .filter(|e| {
            e["detail-type"] == "InterventionClosed" && e["detail"]["closedBy"] == "on_call_closer"
        })
        .count();
    assert_eq!(closed_by_closer, 3);
    let period_closed = events
        .iter()
        .find(|e| e["detail-type"] == "OnCallPeriodClosed")
        .expect("the summary event");
    assert_eq!(period_closed["detail"]["filesClosed"], 3);
    assert_eq!(period_closed["detail"]["stillFailing"], 0);
    assert_eq!(period_closed["detail"]["unknownOnIntent"], 0);
    assert_eq!(period_closed["detail"]["period"]["id"], "oncall-2026-11-24");
    // Stored in the outbox before it was published, and taken out once on the bus.
    assert!(bridge.outbox_items().await.is_empty());
}

#[tokio::test]
async fn a_saturday_tick_ends_no_period_and_does_nothing() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("R-1")).await;
    let closer = bridge.closer(policy());
    let summary = run(&closer, TickKind::EndOfPeriod, "2026-11-28T07:00:00Z").await;
    assert!(summary.report.period.is_none());
    assert!(summary.report.closing.is_none());
    assert!(closings(&bridge).is_empty());
}

#[tokio::test]
async fn the_same_tick_twice_changes_nothing_the_second_time() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("R-1")).await;
    bridge.post(&claim("R-2")).await;
    let closer = bridge.closer_on_time(policy(), END_TICK);
    let first = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert_eq!(first.report.closing.unwrap().closed, 2);
    let requests = bridge.simulator.requests().len();
    let second = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    let closing = second.report.closing.unwrap();
    assert_eq!((closing.closed, closing.already_closed), (0, 0));
    assert_eq!(closings(&bridge).len(), 2);
    // Only the reconciliation listing was asked of Intent the second time.
    let new_requests: Vec<String> = bridge.simulator.requests()[requests..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        new_requests.iter().all(|r| r.starts_with("GET ")),
        "{new_requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_closing_at_the_same_moment_wins_or_loses_cleanly() {
    for round in 0..4 {
        let bridge = Arc::new(Bridge::start().await);
        bridge.post(&claim("R-1")).await;
        let closer = Arc::new(bridge.closer_on_time(policy(), END_TICK));
        let partner = {
            let bridge = bridge.clone();
            tokio::spawn(async move { bridge.close("R-1", &closure("R-1")).await })
        };
        let automatic = {
            let closer = closer.clone();
            tokio::spawn(async move { run(&closer, TickKind::EndOfPeriod, END_TICK).await })
        };
        let (partner, automatic) = (partner.await.unwrap(), automatic.await.unwrap());
        let closing = automatic.report.closing.unwrap();
        assert_eq!(closing.errors, 0);
        // The partner first: the closer finds nothing open (or, through a stale index
        // entry, a closed file); the closer first: the partner gets a 409.
        match partner.status {
            200 => assert_eq!(closing.closed, 0, "round {round}"),
            409 => {
                assert_eq!(closing.closed, 1, "round {round}");
                assert_eq!(partner.body["currentState"]["outcome"], "partial_repair");
            }
            other => panic!("round {round}: partner got {other}: {:#}", partner.body),
        }
        assert_eq!(
            closings(&bridge).len(),
            1,
            "round {round}: the file is closed exactly once"
        );
    }
}

#[tokio::test]
async fn intent_failing_during_the_run_then_recovering_on_the_resend_tick() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("R-1")).await;
    bridge.post(&claim("R-2")).await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 1_000));
    let closer = bridge.closer_on_time(policy(), END_TICK);
    let summary = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert_eq!(
        summary.report.closing.as_ref().unwrap().closed,
        2,
        "closed in our table"
    );
    assert!(closings(&bridge).is_empty(), "nothing reached Intent");
    assert!(summary.report.resend.as_ref().unwrap().still_pending >= 2);

    bridge.simulator.reset();
    // reset() forgot the hub's interventions too: put the openings back as Intent had them.
    bridge.simulator.seed_open_intervention("R-1", "contract1");
    bridge.simulator.seed_open_intervention("R-2", "contract1");
    let resend = run(&closer, TickKind::Resend, "2026-11-24T07:10:00Z").await;
    assert_eq!(resend.report.resend.as_ref().unwrap().delivered, 2);
    assert_eq!(resend.report.resend.as_ref().unwrap().still_pending, 0);
    assert_eq!(closings(&bridge).len(), 2);
    assert!(
        bridge
            .simulator
            .interventions()
            .iter()
            .all(|i| i.status == "closed")
    );
}

#[tokio::test]
async fn openings_still_pending_go_first_then_the_automatic_closures() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 4));
    assert_eq!(bridge.post(&claim("R-1")).await.status, 202);
    let closer = bridge.closer_on_time(policy(), END_TICK);
    run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    let received: Vec<String> = bridge
        .simulator
        .received_logs()
        .iter()
        .map(|l| {
            format!(
                "{}/{}",
                l["status"].as_str().unwrap(),
                l["event"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(received, ["open/acknowledged", "closed/partial_repair"]);
}

#[tokio::test]
async fn reconciliation_resends_our_closures_and_reports_unknown_files() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("R-1")).await;
    assert_eq!(bridge.close("R-1", &closure("R-1")).await.status, 200);
    // Intent lost our closure (it shows R-1 open again) and shows a file we never knew.
    bridge.simulator.lose_last_event("R-1", "contract1");
    bridge
        .simulator
        .seed_open_intervention("FOREIGN-1", "contract1");
    bridge
        .simulator
        .seed_open_intervention("OTHER-CONTRACT", "contract-not-ours");
    bridge.tap.drain().await;

    let closer = bridge.closer(policy());
    let summary = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    let reconcile = summary.report.reconcile.unwrap();
    assert_eq!(reconcile.closing_resent, 1);
    assert_eq!(reconcile.unknown_on_intent.len(), 1);
    assert_eq!(reconcile.unknown_on_intent[0].reference, "FOREIGN-1");
    let hub = bridge.simulator.interventions();
    let state = |reference: &str| {
        hub.iter()
            .find(|i| i.reference == reference)
            .map(|i| i.status.clone())
            .unwrap()
    };
    assert_eq!(state("R-1"), "closed");
    assert_eq!(
        state("FOREIGN-1"),
        "open",
        "reported, not closed: we did not open it"
    );
    let events = bridge.tap.drain().await;
    let summary_event = events
        .iter()
        .find(|e| e["detail-type"] == "OnCallPeriodClosed")
        .unwrap();
    assert_eq!(summary_event["detail"]["unknownOnIntent"], 1);
    assert_eq!(
        summary_event["detail"]["closingResentAfterReconciliation"],
        1
    );
}

#[tokio::test]
async fn a_weekend_outage_never_fails_an_event_and_it_is_delivered_once_after() {
    let bridge = Bridge::start().await;
    // Intent answers 503 to every log for the whole weekend.
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 100_000));
    assert_eq!(bridge.post(&claim("R-1")).await.status, 202);
    assert_eq!(bridge.close("R-1", &closure("R-1")).await.status, 202);
    bridge.tap.drain().await;
    // A re-send tick every hour over 62 hours (past the 15-minute backoff cap): each
    // tick's clock is the tick's time.
    let start = jiff::Timestamp::now();
    let mut at = start;
    let mut runs = 0;
    while at < start + jiff::SignedDuration::from_hours(62) {
        let closer = bridge.closer_with_clock(
            CloserPolicy::default(),
            oncall_domain::in_memory::FixedClock(at),
        );
        let summary = run(&closer, TickKind::Resend, &at.to_string()).await;
        let resend = summary.report.resend.unwrap();
        assert_eq!(resend.marked_failed, 0, "never failed for unavailability");
        assert_eq!(resend.failed, 0);
        at += jiff::SignedDuration::from_hours(1);
        runs += 1;
    }
    assert_eq!(runs, 62);
    let file = bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "R-1",
            Some("contract1"),
        ))
        .await;
    assert_eq!(file.body["events"][0]["delivery"]["state"], "pending");
    assert_eq!(file.body["events"][1]["delivery"]["state"], "pending");
    let attempts = file.body["events"][0]["delivery"]["attempts"]
        .as_u64()
        .unwrap();
    assert!(
        (100..1_000).contains(&attempts),
        "the capped backoff spaced the attempts out: {attempts}"
    );
    assert!(
        !bridge
            .tap
            .drain()
            .await
            .iter()
            .any(|e| e["detail-type"] == "DeliveryFailed"),
        "nothing reported as failed"
    );

    // Monday morning Intent is back: both events go, once each, in order.
    bridge.simulator.reset();
    let monday = start + jiff::SignedDuration::from_hours(63);
    let closer = bridge.closer_with_clock(
        CloserPolicy::default(),
        oncall_domain::in_memory::FixedClock(monday),
    );
    let summary = run(&closer, TickKind::Resend, &monday.to_string()).await;
    assert_eq!(summary.report.resend.unwrap().delivered, 2);
    let received: Vec<Value> = bridge.simulator.received_logs();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0]["event"], "acknowledged");
    assert_eq!(received[1]["event"], "done");
    let file = bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "R-1",
            Some("contract1"),
        ))
        .await;
    assert_eq!(file.body["events"][1]["delivery"]["state"], "delivered");
}

#[tokio::test]
async fn the_backoff_spaces_out_retries_across_runs() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 1_000));
    bridge.post(&claim("R-1")).await;
    let calls = || {
        bridge
            .simulator
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/interventions/logs"))
            .count()
    };
    let before = calls();
    let closer = bridge.closer(CloserPolicy {
        base_backoff: jiff::SignedDuration::from_hours(1),
        ..CloserPolicy::default()
    });
    let summary = run(&closer, TickKind::Resend, "2026-11-23T23:00:00Z").await;
    assert_eq!(
        calls(),
        before,
        "not due yet: the last attempt was just now"
    );
    assert_eq!(summary.report.resend.unwrap().still_pending, 1);
}

#[tokio::test]
async fn near_its_deadline_the_run_stops_cleanly_and_the_next_tick_continues() {
    let bridge = Bridge::start().await;
    for reference in ["R-1", "R-2", "R-3"] {
        bridge.post(&claim(reference)).await;
    }
    // A period that ends after these claims were recorded, run by a closer whose clock
    // stands just after it.
    let end = next_period_end().end;
    let end_tick = &end.to_string();
    let clock = oncall_domain::in_memory::FixedClock(end + jiff::SignedDuration::from_mins(1));
    let closer = bridge.closer_with_clock(policy(), clock);
    let out_of_time = Deadline {
        stop_at: Some(std::time::Instant::now()),
    };
    let ended = run_tick(
        &closer,
        tick(TickKind::EndOfPeriod, end_tick),
        out_of_time,
        None,
    )
    .await;
    // Nothing closed, nor reconciled: the end tick fails, to be tried again.
    let problem = ended.expect_err("not reconciled");
    assert!(problem.to_string().contains("reconciling"), "{problem}");
    assert!(closings(&bridge).is_empty());
    // The next (resend) tick finishes the last ended period.
    let next = run(
        &closer,
        TickKind::Resend,
        &(end + jiff::SignedDuration::from_mins(5)).to_string(),
    )
    .await;
    assert_eq!(next.report.closing.unwrap().closed, 3);
    assert_eq!(closings(&bridge).len(), 3);
}

/// Two claims of the night (`R-1`, `R-2`), stored and on Intent before the period's end.
async fn two_claims_of_the_night(bridge: &Bridge) {
    use oncall_domain::ports::OpenFile;
    let night: jiff::Timestamp = "2026-11-23T21:00:00Z".parse().unwrap();
    for reference in ["R-1", "R-2"] {
        let log =
            oncall_domain::validation::parse_intervention_log(claim(reference).as_bytes()).unwrap();
        let delivered = oncall_domain::Delivery::Delivered {
            attempts: 1,
            delivered_at: night,
        };
        let file = oncall_domain::NewFile {
            owner: oncall_domain::PartnerId("partner-a".into()),
            opening: oncall_domain::RecordedEvent::new(1, log, night, delivered),
            expires_at: None,
        };
        bridge.api.store.open_file(&file, &[]).await.unwrap();
        bridge
            .simulator
            .seed_open_intervention(reference, "contract1");
    }
}

/// At the period's end both ticks fire (the end's and a resend one), in either order.
/// The resend tick leaves the closing to the end's run for a few minutes, so the period's
/// summary (`OnCallPeriodClosed`) counts the files its run closed instead of finding
/// them already closed.
#[tokio::test]
async fn a_resend_tick_at_the_period_end_leaves_the_closing_to_the_end_run() {
    let bridge = Bridge::start().await;
    two_claims_of_the_night(&bridge).await;
    let closer = bridge.closer(policy());

    let resend = run(&closer, TickKind::Resend, END_TICK).await;
    let end = run(&closer, TickKind::EndOfPeriod, END_TICK).await;

    assert!(
        resend.report.closing.is_none(),
        "{:?}",
        resend.report.closing
    );
    let closing = end.report.closing.unwrap();
    assert_eq!((closing.closed, closing.already_closed), (2, 0));
    let events = bridge.tap.drain().await;
    let period_closed = events
        .iter()
        .find(|e| e["detail-type"] == "OnCallPeriodClosed")
        .expect("the summary event");
    assert_eq!(period_closed["detail"]["filesClosed"], 2);
}

/// The end's run held back past the resend tick's wait (its slot taken by a long re-send
/// run, Lambda retrying it with back-off): the resend tick closes the period's files first.
/// Its closings are counted in a period summary of their own, so that `filesClosed` still
/// adds up, across the period's summaries, to every file closed for it.
#[tokio::test]
async fn a_resend_tick_that_closes_the_periods_files_publishes_their_summary() {
    let bridge = Bridge::start().await;
    two_claims_of_the_night(&bridge).await;
    let closer = bridge.closer(policy());

    let resend = run(&closer, TickKind::Resend, "2026-11-24T07:08:00Z").await;
    let end_run = run(&closer, TickKind::EndOfPeriod, END_TICK).await;

    let closed_by = |summary: &RunSummary| summary.report.closing.as_ref().map_or(0, |c| c.closed);
    assert_eq!(closed_by(&resend) + closed_by(&end_run), 2);
    let events = bridge.tap.drain().await;
    let files_closed: u64 = events
        .iter()
        .filter(|e| e["detail-type"] == "OnCallPeriodClosed")
        .map(|e| e["detail"]["filesClosed"].as_u64().unwrap())
        .sum();
    assert_eq!(files_closed, 2, "{events:#?}");
}

#[tokio::test]
async fn a_resend_tick_leaves_alone_a_claim_filed_after_the_period_ended() {
    let bridge = Bridge::start().await;
    // A call of the night (eventDate Monday 22:00), filed now, after the period's end:
    // the partner's own report may still come; the next period's end closes it.
    bridge.post(&claim("R-1")).await;
    let closer = bridge.closer(policy());
    let summary = run(&closer, TickKind::Resend, "2026-11-24T07:05:00Z").await;
    let closing = summary.report.closing.unwrap();
    assert_eq!(
        (closing.closed, closing.already_closed, closing.left_open),
        (0, 0, 1),
        "left open, not counted as closed by someone else"
    );
    assert!(closings(&bridge).is_empty());
}

#[tokio::test]
async fn the_closer_logs_no_tenant_data() {
    let logs = LogCapture::global();
    let bridge = Bridge::start().await;
    bridge.post(&claim("R-1")).await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 2));
    bridge
        .simulator
        .seed_open_intervention("FOREIGN-1", "contract1");
    // Opened on Intent by someone else, under a reference that is free text.
    bridge
        .simulator
        .seed_open_intervention("Pierre DUPONT fuite", "contract1");
    let closer = bridge.closer_on_time(policy(), END_TICK);
    run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert!(
        logs.text().contains("on-call closer run"),
        "the run was captured:\n{}",
        logs.text()
    );
    logs.assert_free_of(&[
        "DUPONT",
        "Pierre",
        "0685874445",
        "Bretagne",
        "16°C",
        "LOGEMENT_002",
    ]);
}

/// Sixty stragglers: read fifty to a `BatchGetItem` (no `Query` per file), their
/// closings and delivery records sharing `TransactWriteItems` calls (two per file
/// without group commit): well under the issue's bound of three table operations each.
#[tokio::test]
async fn stragglers_are_read_in_batches_and_share_their_transactions() {
    let bridge = Bridge::start().await;
    let references: Vec<String> = (0..60).map(|n| format!("BATCH-{n:02}")).collect();
    for reference in &references {
        assert_eq!(bridge.post(&claim(reference)).await.status, 201);
    }
    bridge.tap.drain().await;

    let log = CallLog::default();
    let mut closer = bridge.closer_on_time(policy(), END_TICK);
    closer.store = counted_store(&bridge.sdk, &bridge.table, &log).with_group_commit(4);
    let summary = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert_eq!(summary.report.closing.as_ref().unwrap().closed, 60);
    assert_eq!(closings(&bridge).len(), 60, "every closing on Intent");

    let calls = log.calls();
    let count = |operation: &str| calls.iter().filter(|call| *call == operation).count();
    assert_eq!(count("BatchGetItem"), 2, "{calls:?}");
    assert!(
        count("TransactWriteItems") < 60,
        "{} transaction calls for 60 files (120 unshared)",
        count("TransactWriteItems")
    );
    // The index sweeps of the tick (open files, pending events, documents, outbox; the
    // backlog's five kinds, eight shards each) do not grow with the number of files.
    assert!(count("Query") <= 80, "{} queries", count("Query"));
    assert!(calls.len() <= 3 * 60, "{} table operations", calls.len());
}

/// The summary of a period's end that the bus does not take (EventBridge down) is kept in
/// the outbox, and a later re-send run publishes it: it is not lost with the run that made
/// it.
#[tokio::test]
async fn a_period_summary_the_bus_refuses_is_published_by_a_later_resend_run() {
    let bridge = Bridge::start().await;
    let bus_down = LostAnswers::default();
    bus_down.refuse("PutEvents", 1_000);
    let closer = closer_on_time_through(&bridge, &bus_down);
    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert!(ended.is_ok(), "kept for later, the run is done: {ended:?}");
    assert!(
        bridge.tap.drain().await.is_empty(),
        "nothing reached the bus"
    );
    let kept = bridge.outbox_items().await;
    assert_eq!(kept.len(), 1, "the summary waits in the outbox");
    assert_eq!(kept[0]["detailType"].as_s().unwrap(), "OnCallPeriodClosed");

    let resent = bridge.resend_run().await;
    assert!(
        resent.report.problems.is_empty(),
        "{:?}",
        resent.report.problems
    );
    let published = bridge.tap.drain().await;
    let summary = published
        .iter()
        .find(|e| e["detail-type"] == "OnCallPeriodClosed")
        .expect("the summary on the bus");
    assert_eq!(summary["detail"]["period"]["end"], "2026-11-24T07:00:00Z");
    assert!(
        bridge.outbox_items().await.is_empty(),
        "the outbox is cleared"
    );
}

/// An event EventBridge refuses for good (an entry's `InvalidArgument`) stays alone in the
/// outbox: the events the bus took beside it in the same `PutEvents` call leave the outbox
/// (they were published again by every run until the poison's TTL before), and the run's
/// failure names the refused event's id for an operator.
#[tokio::test]
async fn an_event_the_bus_refuses_for_good_stays_alone_in_the_outbox_and_is_named() {
    let bridge = Bridge::start().await;
    for reference in ["POISON-1", "FINE-1", "FINE-2"] {
        assert_eq!(bridge.post(&claim(reference)).await.status, 201);
    }
    bridge.tap.drain().await;
    let bus = LostAnswers::default();
    bus.refuse_entries(r#""reference":"POISON-1""#, "InvalidArgument");
    let closer = closer_on_time_through(&bridge, &bus);
    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;

    let kept = bridge.outbox_items().await;
    assert_eq!(kept.len(), 1, "only the refused event stays: {kept:?}");
    assert!(
        kept[0]["detail"].as_s().unwrap().contains("POISON-1"),
        "{kept:?}"
    );
    let refused_id = kept[0]["eventId"].as_s().unwrap().clone();
    let failure = format!("{:?}", ended.expect_err("a refused event fails the run"));
    assert!(
        failure.contains(&refused_id) && failure.contains("InvalidArgument"),
        "the failure names the event and the code: {failure}"
    );
    let published = bridge.tap.drain().await;
    let closed: Vec<&Value> = published
        .iter()
        .filter(|event| event["detail-type"] == "InterventionClosed")
        .collect();
    assert_eq!(closed.len(), 2, "{published:?}");
    assert!(
        closed
            .iter()
            .all(|event| event["detail"]["reference"] != "POISON-1")
    );

    // Once the bus takes it (here: a run past the proxy, at the next tick), the next run
    // publishes the refused event only: the others went out once.
    bridge
        .resend_run_with_clock(oncall_domain::ports::FixedClock(
            jiff::Timestamp::now() + jiff::SignedDuration::from_mins(5),
        ))
        .await;
    let again: Vec<Value> = bridge
        .tap
        .drain()
        .await
        .into_iter()
        .filter(|event| event["detail-type"] == "InterventionClosed")
        .collect();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["detail"]["reference"], "POISON-1");
    assert!(bridge.outbox_items().await.is_empty());
}

/// With EventBridge hanging, what a run does after its hard stop (the last domain events,
/// the period's summary) is cut off too, before the function's deadline: the run still
/// ends with its log line and metrics, as a failed invocation (Lambda tries the tick
/// again), instead of being killed by Lambda without a word.
#[tokio::test]
async fn a_hanging_bus_does_not_keep_the_run_past_its_deadline() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(&claim("HANG-1")).await.status, 201);
    bridge.tap.drain().await;
    let bus_hangs = LostAnswers::default();
    bus_hangs.hang("PutEvents", 1_000);
    let mut closer = closer_on_time_through(&bridge, &bus_hangs);
    // The run ends before the function's deadline, not when the bus answers.
    let (ended, function_deadline) = cut_off_end_run(&mut closer).await;
    let problem = ended.expect_err("the events not published are a problem of the run");
    assert!(
        problem
            .to_string()
            .contains("before the function's deadline"),
        "{problem}"
    );
    assert!(
        std::time::Instant::now() < function_deadline,
        "ended after the function's deadline"
    );
    // The closing is stored and on Intent; its announcement and the period's summary
    // wait in the outbox.
    assert_eq!(closings(&bridge).len(), 1);
    let kept: Vec<String> = bridge
        .outbox_items()
        .await
        .iter()
        .map(|item| item["detailType"].as_s().unwrap().clone())
        .collect();
    assert!(kept.contains(&"InterventionClosed".to_string()), "{kept:?}");
    assert!(kept.contains(&"OnCallPeriodClosed".to_string()), "{kept:?}");
}

/// A closing Intent lost and then refuses for good when reconciliation sends it again is
/// counted in the run's report (the file stays open on Intent, for an operator), and every
/// line reconciliation writes about it names the file (its span).
#[tokio::test]
async fn a_lost_closing_intent_refuses_again_is_counted_and_its_lines_name_the_file() {
    let logs = LogCapture::global();
    let bridge = Bridge::start().await;
    a_closing_intent_lost(&bridge, "RECON-1").await;
    bridge.simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 400,
            retry_after: None,
            body: Some(serde_json::json!({"code": "validation_error", "message": "refused"})),
        },
        times: 1,
    });
    let closer = bridge.closer(policy());
    let summary = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    let reconcile = summary.report.reconcile.unwrap();
    assert_eq!(reconcile.closing_resend_refused, 1, "{reconcile:?}");
    assert_eq!(reconcile.closing_resent, 0);
    let refused: Vec<Value> = logs
        .text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["fields"]["message"]
                == "Intent refused the closing sent again; recorded refused for an operator's redrive"
                && line["span"]["reference"] == "RECON-1"
        })
        .collect();
    assert_eq!(refused.len(), 1, "{}", logs.text());
    // Recorded refused in the table: listed for an operator's redrive, not sent (and
    // refused) again at the next period's end.
    let file = bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "RECON-1",
            Some("contract1"),
        ))
        .await;
    assert_eq!(
        file.body["events"][1]["delivery"]["state"], "failed",
        "{:#}",
        file.body
    );
    let sent = bridge.simulator.received_logs().len();
    let next = run(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert_eq!(next.report.reconcile.unwrap().closing_resend_refused, 0);
    assert_eq!(
        bridge.simulator.received_logs().len(),
        sent,
        "not sent again"
    );
}

/// A calendar the closer refuses (extra non-working days in a reversed range: no pattern
/// of the stack's parameter can tell) stops only the ending of periods. The closer still
/// starts, and each tick still re-sends what Intent has not acknowledged, then fails
/// naming the calendar (the errors alarm); no period is ended on a guess.
#[tokio::test]
async fn a_calendar_the_closer_refuses_stops_only_the_ending_of_periods() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 100));
    let answer = bridge.post(&claim("R-1")).await;
    assert_eq!(answer.body["delivery"], "pending", "{:#}", answer.body);
    bridge.simulator.reset();
    let refused = oncall_closer::CloserConfig::from_settings(&crate::readme::with(
        "ONCALL_EXTRA_NON_WORKING_DAYS",
        "2026-12-31..2026-12-24".into(),
    ))
    .expect("the closer starts")
    .calendar;
    let closer = bridge.closer_configured(
        &bridge.sdk,
        policy(),
        oncall_domain::ports::SystemClock,
        |config| config.calendar = refused,
    );

    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK)
        .await
        .expect_err("the tick fails");
    let resent = ran(&closer, TickKind::Resend, END_TICK)
        .await
        .expect_err("the tick fails");

    for failed in [&ended, &resent] {
        let text = failed.to_string();
        assert!(
            text.contains("2026-12-31..2026-12-24") && text.contains("calendar"),
            "{text}"
        );
    }
    let acknowledged = bridge
        .simulator
        .operation_logs("R-1", "contract1")
        .into_iter()
        .filter(|log| log["event"] == "acknowledged")
        .count();
    assert_eq!(acknowledged, 1, "the pending opening was re-sent");
    assert!(closings(&bridge).is_empty(), "no period ended");
}

/// Domain events the closer published but could not take out of the outbox (DynamoDB
/// refusing the clearing's `BatchWriteItem`) go out again at every run until a clearing
/// works: the run says so, and fails (the errors alarm), instead of ending clean.
#[tokio::test]
async fn a_clearing_of_the_outbox_that_fails_is_a_problem_of_the_run() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(&claim("CLEAR-1")).await.status, 201);
    bridge.tap.drain().await;
    let clearing_refused = LostAnswers::default();
    clearing_refused.refuse_as("BatchWriteItem", 1_000, 400, "ValidationException");
    let closer = closer_on_time_through(&bridge, &clearing_refused);

    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;

    let problem = ended.expect_err("a run that leaves published events in the outbox fails");
    assert!(problem.to_string().contains("clearing"), "{problem}");
    assert_eq!(closings(&bridge).len(), 1, "the closing itself is done");
    let announced = bridge.tap.drain().await;
    assert!(
        announced
            .iter()
            .any(|event| event["detail-type"] == "InterventionClosed"),
        "{announced:?}"
    );
}

/// The table hanging on reads cuts the run off; its tail then reads the backlog again (for
/// the metrics) within a share of the time left only, so the period's summary is still
/// kept and published before the function's deadline.
#[tokio::test]
async fn a_hanging_backlog_read_leaves_the_tail_time_to_keep_the_periods_summary() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(&claim("SLOW-1")).await.status, 201);
    bridge.tap.drain().await;
    let reads_hang = LostAnswers::default();
    reads_hang.hang("Query", 1_000);
    let mut closer = closer_on_time_through(&bridge, &reads_hang);

    let (ended, function_deadline) = cut_off_end_run(&mut closer).await;

    assert!(
        std::time::Instant::now() < function_deadline,
        "ended after the function's deadline: {ended:?}"
    );
    let published = bridge.tap.drain().await;
    assert!(
        published
            .iter()
            .any(|event| event["detail-type"] == "OnCallPeriodClosed"),
        "{published:?} {ended:?}"
    );
}

/// An intervention Intent lists open whose file's item cannot be read (corrupt) does not
/// keep the others from being reconciled, and fails the period end's run, naming it (the
/// errors alarm): a lost closing listed after it is still sent again.
#[tokio::test]
async fn an_unreadable_file_fails_the_period_end_after_the_others_are_reconciled() {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let bridge = Bridge::start().await;
    a_closing_intent_lost(&bridge, "RECON-2").await;
    // Listed first: (contract, reference) order.
    bridge
        .simulator
        .seed_open_intervention("AAA-CORRUPT", "contract1");
    bridge
        .dynamodb
        .put_item()
        .table_name(&bridge.table)
        .item("pk", S("FILE#contract1#AAA-CORRUPT".into()))
        .item("sk", S("FILE".into()))
        .send()
        .await
        .unwrap();
    let closer = bridge.closer(policy());

    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;

    let problem = ended.expect_err("the run fails");
    assert!(
        problem
            .to_string()
            .contains("1 intervention(s) open on Intent could not be checked"),
        "{problem}"
    );
    let closings = bridge
        .simulator
        .operation_logs("RECON-2", "contract1")
        .into_iter()
        .filter(|log| log["event"] == "done")
        .count();
    assert_eq!(closings, 1, "the lost closing is on Intent again");
}

/// Intent slow: the run is cut off at its hard stop while a straggler's closing, already
/// written, is being sent. The file is closed: the run's summary counts it (a later run
/// does not find it open to count it), so that `filesClosed` adds up across the period.
#[tokio::test]
async fn a_closing_written_before_the_hard_stop_is_counted_by_the_cut_off_run() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(&claim("CUT-1")).await.status, 201);
    bridge.tap.drain().await;
    bridge.simulator.inject(Fault::delay(
        Endpoint::InterventionLogs,
        std::time::Duration::from_secs(5),
        10,
    ));
    let mut closer = bridge.closer_on_time(policy(), END_TICK);

    let (ended, _) = cut_off_end_run(&mut closer).await;

    // Cut off before reconciling: the tick fails, to be tried again; its summary counts
    // the file it closed.
    let problem = ended.expect_err("cut off before reconciling");
    assert!(problem.to_string().contains("reconciling"), "{problem}");
    let published = bridge.tap.drain().await;
    let period_closed = published
        .iter()
        .find(|event| event["detail-type"] == "OnCallPeriodClosed")
        .unwrap_or_else(|| panic!("{published:?}"));
    assert_eq!(period_closed["detail"]["filesClosed"], 1, "{period_closed}");
    assert_eq!(
        period_closed["detail"]["closingsPending"], 1,
        "its closing not known on Intent: {period_closed}"
    );
}

/// An end run that reaches its deadline before its reconciliation with Intent fails, so
/// that the tick is tried again: the retry (its closings done) reconciles, and a closing
/// Intent lost does not stay open on Intent until the next period's end.
#[tokio::test]
async fn an_end_run_out_of_time_before_reconciling_fails_and_its_retry_reconciles() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("RECON-3")).await;
    assert_eq!(
        bridge.close("RECON-3", &closure("RECON-3")).await.status,
        200
    );
    bridge.simulator.lose_last_event("RECON-3", "contract1");
    let closer = bridge.closer(policy());

    let out_of_time = run_tick(
        &closer,
        tick(TickKind::EndOfPeriod, END_TICK),
        Deadline::after(std::time::Duration::ZERO),
        None,
    )
    .await;
    let problem = out_of_time.expect_err("not reconciled: the tick is tried again");
    assert!(problem.to_string().contains("reconcil"), "{problem}");

    let retried = ran(&closer, TickKind::EndOfPeriod, END_TICK)
        .await
        .expect("the retry");
    assert_eq!(retried.report.reconcile.unwrap().closing_resent, 1);
}

/// Intent slow on its open list: the end run is cut off while reconciling. The tick fails,
/// to be tried again, as when the deadline comes before the reconciliation starts.
#[tokio::test]
async fn an_end_run_cut_off_while_reconciling_fails() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("RECON-4")).await;
    assert_eq!(
        bridge.close("RECON-4", &closure("RECON-4")).await.status,
        200
    );
    bridge.simulator.lose_last_event("RECON-4", "contract1");
    bridge.simulator.inject(Fault::delay(
        Endpoint::Operations,
        std::time::Duration::from_secs(5),
        10,
    ));
    let mut closer = bridge.closer_on_time(policy(), END_TICK);

    let (ended, _) = cut_off_end_run(&mut closer).await;

    let problem = ended.expect_err("cut off while reconciling");
    assert!(
        problem.to_string().contains("did not run to its end"),
        "{problem}"
    );
    // Cut off during the listing, not before it.
    assert!(
        bridge
            .simulator
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/operations/v2/operations"),
        "cut off before reconciling"
    );
}

/// An end run cut off while it was sending a lost closing again leaves that file's send
/// lease held for a while. Its retry, finding the lease held, has not reconciled that file:
/// it fails too, instead of ending Ok with the closing still lost on Intent.
#[tokio::test]
async fn a_retry_that_finds_the_lost_closings_lease_held_has_not_reconciled_it() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("RECON-5")).await;
    assert_eq!(
        bridge.close("RECON-5", &closure("RECON-5")).await.status,
        200
    );
    bridge.simulator.lose_last_event("RECON-5", "contract1");
    bridge.simulator.inject(Fault::delay(
        Endpoint::InterventionLogs,
        std::time::Duration::from_secs(5),
        1,
    ));
    let mut closer = bridge.closer_on_time(policy(), END_TICK);
    let (cut_off, _) = cut_off_end_run(&mut closer).await;
    assert!(cut_off.is_err(), "{cut_off:?}");

    let retried = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;

    let problem = retried.expect_err("the lost closing is not reconciled yet");
    assert!(
        problem.to_string().contains("did not run to its end"),
        "{problem}"
    );
}

/// With no contract to reconcile (the stack's default), an end run stopped by its deadline
/// is not failed over a reconciliation it was never to make: the next tick goes on.
#[tokio::test]
async fn an_end_run_with_nothing_to_reconcile_is_not_failed_over_it() {
    let bridge = Bridge::start().await;
    bridge.post(&claim("R-1")).await;
    let mut closer = bridge.closer_on_time(policy(), END_TICK);
    closer.contracts = std::collections::HashSet::new();

    let ended = run_tick(
        &closer,
        tick(TickKind::EndOfPeriod, END_TICK),
        Deadline::after(std::time::Duration::ZERO),
        None,
    )
    .await;

    let summary = ended.expect("nothing to reconcile");
    assert!(summary.report.stopped_early(), "the closing step stopped");
    assert!(!summary.report.reconcile.unwrap().stopped_early);
}

/// The local run's closer ends a period at its next pass after the end, and tries again
/// at every pass while the run fails (Intent's open list unreadable, say). Each try is not
/// a new `OnCallPeriodClosed`: the first failed run tells its summary, the run that
/// succeeds tells its own, none in between (consumers would count the period's files once
/// per minute of the outage).
#[tokio::test]
async fn the_local_closer_retries_a_failed_period_end_without_a_summary_per_pass() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = local_config(data.path());
    let events_file = config.events_file.clone().unwrap();
    let bridge = local_bridge_on(config, &simulator);
    let summaries = || {
        std::fs::read_to_string(&events_file)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("OnCallPeriodClosed"))
            .count()
    };
    simulator.inject(Fault::status(Endpoint::Operations, 503, 10_000));

    for _ in 0..3 {
        assert!(
            bridge.closer_pass().await.is_err(),
            "the period's end fails"
        );
    }
    assert_eq!(summaries(), 1, "the first failed run's summary only");

    simulator.reset();
    bridge
        .closer_pass()
        .await
        .expect("the period's end succeeds");
    assert_eq!(summaries(), 2, "and the run that succeeded");
    bridge.closer_pass().await.expect("a re-send pass");
    assert_eq!(summaries(), 2, "the period is ended");
}

/// The end's run cannot list Intent's open interventions at any of its tries: a later
/// re-send tick of that period reconciles it (the closing Intent lost is sent again),
/// and notes it on the table, so that the ticks after it do not list Intent again.
#[tokio::test]
async fn a_period_the_end_run_could_not_reconcile_is_reconciled_by_a_later_resend_tick_once() {
    let bridge = Bridge::start().await;
    a_closing_intent_lost(&bridge, "RECON-2").await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::Operations, 503, 10_000));
    let closer = bridge.closer(policy());
    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert!(ended.is_err(), "the end's run fails: {ended:?}");
    bridge.simulator.clear_faults();

    // (Within the hour after the end, when the end's tries may still be running, a re-send
    // run does not reconcile: closer_run's test, on a clock of its own; this closer's clock
    // is the machine's, long past the hour.)
    bridge.tap.drain().await;
    let resent = run(&closer, TickKind::Resend, "2026-11-24T08:10:00Z").await;
    // Its summary tells what the reconciliation found (the end's runs could not).
    let told = period_summaries(&bridge).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["detail"]["closingResentAfterReconciliation"], 1);
    assert_eq!(
        resent.report.reconcile.as_ref().map(|r| r.closing_resent),
        Some(1),
        "{:?}",
        resent.report
    );
    let listings = || {
        bridge
            .simulator
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/operations/v2/operations"))
            .count()
    };
    let listed = listings();
    let later = run(&closer, TickKind::Resend, "2026-11-24T08:15:00Z").await;
    assert!(later.report.reconcile.is_none(), "{:?}", later.report);
    assert_eq!(listings(), listed, "Intent not listed again");
}

/// Interventions open on Intent that we never opened are a state: told by the end's
/// summary, and once more by the reconciliation that settles the period an hour later (the
/// end's run may not have listed Intent at all), not at every re-send run after it.
#[tokio::test]
async fn interventions_unknown_to_us_are_told_by_the_end_and_once_when_the_period_settles() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .seed_open_intervention("UNKNOWN-1", "contract1");
    let closer = bridge.closer(policy());
    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert!(ended.is_ok(), "{ended:?}");
    let told = period_summaries(&bridge).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["detail"]["unknownOnIntent"], 1);

    let settling = run(&closer, TickKind::Resend, "2026-11-24T08:10:00Z").await;
    assert!(settling.report.reconcile.as_ref().is_some_and(|r| r.noted));
    let told = period_summaries(&bridge).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["detail"]["unknownOnIntent"], 1);

    let after = run(&closer, TickKind::Resend, "2026-11-24T08:15:00Z").await;
    assert!(after.report.reconcile.is_none(), "{:?}", after.report);
    assert!(period_summaries(&bridge).await.is_empty());
}

/// The end's run could not list Intent at any of its tries: the interventions unknown to
/// us are told by the reconciliation that settles the period, not by no summary at all.
#[tokio::test]
async fn interventions_unknown_to_us_are_told_when_the_end_run_could_not_list_intent() {
    let bridge = Bridge::start().await;
    bridge
        .simulator
        .seed_open_intervention("UNKNOWN-2", "contract1");
    bridge
        .simulator
        .inject(Fault::status(Endpoint::Operations, 503, 10_000));
    let closer = bridge.closer(policy());
    let ended = ran(&closer, TickKind::EndOfPeriod, END_TICK).await;
    assert!(ended.is_err(), "{ended:?}");
    bridge.simulator.clear_faults();
    bridge.tap.drain().await;

    run(&closer, TickKind::Resend, "2026-11-24T08:10:00Z").await;
    let told = period_summaries(&bridge).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["detail"]["unknownOnIntent"], 1);
}
