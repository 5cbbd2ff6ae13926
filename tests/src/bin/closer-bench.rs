//! Benchmark: the on-call closer closing N stragglers (default 10,000) at the end of a
//! period, with every Intent call delayed by a simulated latency (default 50 ms), through
//! the real closer against DynamoDB Local and the Intent simulator. Prints the wall time.
//! The closer runs on one thread, as in its Lambda (`flavor = "current_thread"`).
//!
//! Needs the emulators (`infra/scripts/emulators.sh start`, then
//! `eval "$(infra/scripts/emulators.sh env)"`), then:
//! `cargo run --release -p system-tests --bin closer-bench [FILES] [LATENCY_MS] [CONCURRENCY]`

use futures_util::StreamExt;
use oncall_closer::{Tick, TickKind, run_tick};
use oncall_domain::intent_examples::SEED_OPENING;
use oncall_domain::oncall::{CloserPolicy, Deadline};
use oncall_domain::ports::OpenFile;
use oncall_domain::validation::parse_intervention_log;
use oncall_domain::{Delivery, NewFile, PartnerId, RecordedEvent};
use std::time::{Duration, Instant};
use system_tests::*;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let files = *args.first().unwrap_or(&10_000) as usize;
    let latency = Duration::from_millis(*args.get(1).unwrap_or(&50));
    let concurrency = *args.get(2).unwrap_or(&50) as usize;

    let bridge = Bridge::start().await;
    let started = Instant::now();
    // The last on-call period that ended a day ago or more (the files' data would have
    // expired at a fixed date one day), its files claimed during its night.
    let calendar = oncall_domain::calendar::OnCallCalendar::new(Default::default()).unwrap();
    let period = calendar
        .last_period_ended_by(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24))
        .expect("a period before now");
    let end = period.end;
    let night = end - jiff::SignedDuration::from_hours(10);
    let night_in_paris = calendar.config().time_zone.to_datetime(night);
    let template = SEED_OPENING.replace(
        "2020-03-06T10:45:2",
        &night_in_paris.strftime("%Y-%m-%dT%H:%M:0").to_string(),
    );
    futures_util::stream::iter(0..files)
        .map(|n| {
            let bridge = &bridge;
            let json = template.replace("INTER-0500", &format!("BENCH-{n:05}"));
            async move {
                let log = parse_intervention_log(json.as_bytes()).unwrap();
                // Received during the night, as its eventDate says.
                let recorded_at = night + jiff::SignedDuration::from_secs(7);
                let file = NewFile {
                    owner: PartnerId("partner-a".into()),
                    // The openings already reached Intent: only closures are measured.
                    opening: RecordedEvent::new(
                        1,
                        log,
                        recorded_at,
                        Delivery::Delivered {
                            attempts: 1,
                            delivered_at: recorded_at,
                        },
                    ),
                    // As a claim stores it: the closing need not write the opening again.
                    expires_at: Some(oncall_domain::lifecycle::open_file_expiry(
                        recorded_at,
                        oncall_domain::closure::ClosurePolicy::default().retention,
                    )),
                };
                bridge.api.store.open_file(&file, &[]).await.unwrap();
                bridge
                    .simulator
                    .seed_open_intervention(&file.opening.log.reference, "contract1");
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    eprintln!(
        "set-up: {files} open files in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    bridge
        .simulator
        .inject(Fault::delay(Endpoint::InterventionLogs, latency, files * 2));
    // Domain events go to a bus of their own with no rules: the benchmark measures the
    // closer, not moto's event routing (which is far slower than EventBridge).
    let bus = unique("bench-bus");
    aws_sdk_eventbridge::Client::new(&bridge.sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    // The closer's DynamoDB calls go through a counting proxy: its calls and the items they
    // write, per straggler, are measured rather than read from the code.
    let log = CallLog::default();
    let (dynamodb, _) = endpoints();
    let closer_sdk = dynamodb_through_proxy(&bridge.sdk, dynamodb, &log);
    // On time: its clock 30 s after the period's end (a run that starts later closes only
    // what an on-time run would have seen).
    let clock = oncall_domain::ports::FixedClock(end + jiff::SignedDuration::from_secs(30));
    let closer = oncall_closer::CloserFunction::with_clock(
        &closer_sdk,
        oncall_closer::CloserConfig {
            core: aws_wiring::CoreConfig {
                table_name: bridge.table.clone(),
                event_bus_name: bus,
                event_source: SOURCE.into(),
                intent: fast_intent_config(&bridge.simulator),
                intent_secret_arn: None,
            },
            calendar: Ok(oncall_domain::calendar::CalendarConfig::default()),
            policy: CloserPolicy {
                concurrency,
                ..CloserPolicy::default()
            },
            contracts: Default::default(),
            tolerance: jiff::SignedDuration::from_mins(30),
            documents: Default::default(),
            s3_force_path_style: true,
        },
        clock,
    )
    .unwrap();
    let tick = Tick {
        kind: TickKind::EndOfPeriod,
        scheduled_time: Some(end),
    };
    let started = Instant::now();
    let summary = run_tick(&closer, tick, Deadline::none(), None)
        .await
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let closing = summary.report.closing.unwrap();
    assert_eq!(closing.closed, files, "{closing:?}");
    let closed_on_intent = bridge
        .simulator
        .interventions()
        .iter()
        .filter(|i| i.status == "closed")
        .count();
    assert_eq!(closed_on_intent, files);
    let calls = log.calls();
    let written = log.written();
    let per_file = |count: usize| count as f64 / files as f64;
    let rate = transactional_write_rate(&bridge).await;
    // What the closer wrote in transactions (its closings and delivery records) could not
    // go faster than the emulator takes transactional items.
    let transactional_per_file = per_file(written.transactional as usize);
    let floor = files as f64 * transactional_per_file / rate;
    let mut by_operation = std::collections::BTreeMap::<&str, usize>::new();
    for call in &calls {
        *by_operation.entry(call.as_str()).or_default() += 1;
    }
    eprintln!(
        "dynamodb calls: {}",
        by_operation
            .iter()
            .map(|(operation, count)| format!("{operation} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "files,intent_latency_ms,concurrency,wall_s,closures_per_s,dynamodb_calls_per_file,tx_items_per_file,other_items_per_file,dynamodb_tx_items_per_s,dynamodb_floor_s"
    );
    println!(
        "{files},{},{concurrency},{wall:.1},{:.0},{:.2},{transactional_per_file:.2},{:.2},{rate:.0},{floor:.1}",
        latency.as_millis(),
        files as f64 / wall,
        per_file(calls.len()),
        per_file(written.other as usize),
    );
}

/// How many items per second the table takes in transactions, measured right after the
/// run on the same table and emulator: 4,000 items of about 1 KB, each in the
/// `pending-events` index as the closer's are, 25 to a `TransactWriteItems`, four calls
/// in flight (as group commit keeps them). What the closer's writes cannot go below.
async fn transactional_write_rate(bridge: &Bridge) -> f64 {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
    const ITEMS: usize = 4_000;
    const PER_CALL: usize = 25;
    let client = &bridge.dynamodb;
    let payload = "x".repeat(1_000);
    let calls = (0..ITEMS / PER_CALL).map(|call| {
        let items = (0..PER_CALL)
            .map(|n| {
                let put = Put::builder()
                    .table_name(&bridge.table)
                    .item("pk", AttributeValue::S(format!("PROBE#{call}#{n}")))
                    .item("sk", AttributeValue::S("PROBE".into()))
                    .item(
                        "pendingShard",
                        AttributeValue::S(format!("probe-{}", n % 8)),
                    )
                    .item(
                        "pendingSince",
                        AttributeValue::S(jiff::Timestamp::now().to_string()),
                    )
                    .item("payload", AttributeValue::S(payload.clone()))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("a complete put");
                TransactWriteItem::builder().put(put).build()
            })
            .collect::<Vec<_>>();
        async move {
            client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
                .expect("the probe's transaction")
        }
    });
    let started = Instant::now();
    futures_util::stream::iter(calls)
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    ITEMS as f64 / started.elapsed().as_secs_f64()
}
