//! `bridge-admin`, the operator's command, on DynamoDB Local, moto (S3, SQS, EventBridge)
//! and the Intent simulator, with a table seeded through the real partner API; and once
//! on the local run's embedded store.

use bridge_admin::{Admin, Senders, parse, run};
use document_forwarder::DocumentForwarder;
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use oncall_domain::model::FileId;
use oncall_domain::ports::SendLease;
use serde_json::{Value, json};
use std::collections::HashMap;
use system_tests::*;

/// Tenants' personal data of the seeds: never in the command's output.
const SECRETS: &[&str] = &["DUPONT", "LOGEMENT_002", "16°C", "Bretagne", "0734220902"];

struct Fixture {
    bridge: Bridge,
    forwarder: DocumentForwarder,
}

#[derive(Debug)]
struct Ran {
    code: i32,
    out: String,
    err: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", self.out))
    }

    fn assert_free_of_personal_data(&self) {
        for secret in SECRETS {
            assert!(
                !self.out.contains(secret) && !self.err.contains(secret),
                "{secret} printed: {self:?}"
            );
        }
    }
}

async fn fixture() -> Fixture {
    let bridge = Bridge::start().await;
    let forwarder = bridge.forwarder(DocumentPolicy::default());
    Fixture { bridge, forwarder }
}

fn claim_for(reference: &str) -> String {
    SEED_OPENING.replace("INTER-0500", reference)
}

fn references(listing: &Value, part: &str) -> Vec<String> {
    listing[part]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["reference"].as_str().unwrap().to_string())
        .collect()
}

impl Fixture {
    /// Runs the command on this fixture's table, bus, bucket client and simulator.
    async fn admin(&self, args: &[&str]) -> Ran {
        let cli = parse(std::iter::once("bridge-admin").chain(args.iter().copied()))
            .unwrap_or_else(|(code, _, text)| panic!("usage error {code}: {text}"));
        let f = &self.forwarder;
        let admin = Admin {
            store: &f.store,
            clock: &f.clock,
            senders: Ok(Senders {
                intent: &f.intent,
                events: &f.events,
                objects: &f.objects,
            }),
            documents: DocumentPolicy::default(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = admin
            .execute(&cli.command, cli.json, &mut out, &mut err)
            .await;
        let ran = Ran {
            code,
            out: String::from_utf8(out).unwrap(),
            err: String::from_utf8(err).unwrap(),
        };
        ran.assert_free_of_personal_data();
        ran
    }

    /// A claim Intent accepts.
    async fn delivered(&self, reference: &str) {
        let answer = self.bridge.post(&claim_for(reference)).await;
        assert_eq!(answer.body["delivery"], "delivered", "{:#}", answer.body);
    }

    /// A claim Intent refuses for good (400): its opening is `failed`.
    async fn refused(&self, reference: &str) {
        self.bridge
            .simulator
            .inject(Fault::status(Endpoint::InterventionLogs, 400, 1));
        let answer = self.bridge.post(&claim_for(reference)).await;
        assert_eq!(answer.status, 202, "{:#}", answer.body);
        assert_eq!(answer.body["delivery"], "failed", "{:#}", answer.body);
    }

    /// A claim Intent could not take (503 on every attempt): its opening is `pending`.
    async fn unreachable(&self, reference: &str) {
        self.bridge
            .simulator
            .inject(Fault::status(Endpoint::InterventionLogs, 503, 4));
        let answer = self.bridge.post(&claim_for(reference)).await;
        assert_eq!(answer.body["delivery"], "pending", "{:#}", answer.body);
    }

    fn logs_on_intent(&self, reference: &str) -> usize {
        self.bridge
            .simulator
            .operation_logs(reference, "contract1")
            .len()
    }
}

#[tokio::test]
async fn show_prints_the_ordered_log_with_each_delivery_state() {
    let f = fixture().await;
    f.delivered("INTER-0500").await;
    assert_eq!(
        f.bridge.close("INTER-0500", SEED_CLOSURE_DONE).await.status,
        200
    );
    let shown = f
        .admin(&["show", "INTER-0500", "--contract", "contract1"])
        .await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let lines: Vec<&str> = shown.out.lines().collect();
    assert_eq!(
        lines[0],
        "INTER-0500 under contract contract1: closed (done)"
    );
    assert!(lines[1].starts_with("SEQ  EVENT"), "{}", shown.out);
    assert!(
        lines[2].starts_with("1    open/acknowledged  2020-03-06T10:45:23+01:00  delivered"),
        "{}",
        shown.out
    );
    assert!(lines[3].starts_with("2    closed/done"), "{}", shown.out);
    assert!(shown.out.contains("no documents"));

    let json = f
        .admin(&["show", "INTER-0500", "--contract", "contract1", "--json"])
        .await
        .json();
    assert_eq!(json["state"], "closed");
    assert_eq!(json["outcome"], "done");
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0]["seq"].clone(), events[0]["event"].clone()),
        (json!(1), json!("acknowledged"))
    );
    assert_eq!(events[1]["event"], "done");
    assert_eq!(events[1]["delivery"]["state"], "delivered");
    assert_eq!(events[1]["delivery"]["attempts"], 1);
    assert!(events[0]["ageSeconds"].is_i64());
}

#[tokio::test]
async fn show_of_an_unknown_reference_exits_1_with_one_line() {
    let f = fixture().await;
    let shown = f
        .admin(&["show", "INTER-9", "--contract", "contract1"])
        .await;
    assert_eq!(shown.code, 1);
    assert_eq!(shown.out, "");
    assert_eq!(
        shown.err,
        "bridge-admin: no intervention INTER-9 under contract contract1\n"
    );
    let redriven = f
        .admin(&["redrive", "INTER-9", "--contract", "contract1"])
        .await;
    assert_eq!(redriven.code, 1);
    assert_eq!(redriven.err.lines().count(), 1, "{redriven:?}");
}

#[tokio::test]
async fn pending_and_failed_list_oldest_first_with_ages_and_as_json() {
    let f = fixture().await;
    f.refused("INTER-0601").await;
    f.unreachable("INTER-0602").await;
    f.refused("INTER-0603").await;
    f.unreachable("INTER-0604").await;
    f.delivered("INTER-0605").await;

    let pending = f.admin(&["pending", "--json"]).await;
    assert_eq!(pending.code, 0, "{pending:?}");
    let pending = pending.json();
    assert_eq!(references(&pending, "events"), ["INTER-0602", "INTER-0604"]);
    let first = &pending["events"][0];
    assert_eq!(first["delivery"]["state"], "pending");
    assert_eq!(first["delivery"]["attempts"], 4);
    assert!(
        first["delivery"]["lastError"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{first}"
    );
    assert!(first["ageSeconds"].as_i64().unwrap() >= 0);
    assert_eq!(pending["documents"], json!([]));

    let failed = f.admin(&["failed", "--json"]).await.json();
    assert_eq!(references(&failed, "events"), ["INTER-0601", "INTER-0603"]);
    assert_eq!(failed["events"][0]["delivery"]["state"], "failed");
    assert_eq!(
        (
            failed["events"][0]["status"].clone(),
            failed["events"][0]["event"].clone()
        ),
        (json!("open"), json!("acknowledged"))
    );

    let table = f.admin(&["failed"]).await;
    assert_eq!(table.code, 0);
    let lines: Vec<&str> = table.out.lines().collect();
    assert!(
        lines[0]
            .starts_with("REFERENCE   CONTRACT   SEQ  EVENT              STATE   ATTEMPTS  AGE"),
        "{}",
        table.out
    );
    assert!(lines[1].starts_with("INTER-0601  contract1  1    open/acknowledged  failed  1"));
    assert!(lines[2].starts_with("INTER-0603"));
    assert!(table.out.contains("no failed documents"));
}

#[tokio::test]
async fn redrive_of_a_refused_opening_delivers_it_once_and_failed_is_then_empty() {
    let f = fixture().await;
    f.refused("INTER-0701").await;
    assert_eq!(f.logs_on_intent("INTER-0701"), 0);
    // The closing waits behind the refused opening.
    let closing = SEED_CLOSURE_DONE.replace("INTER-0500", "INTER-0701");
    assert_eq!(f.bridge.close("INTER-0701", &closing).await.status, 202);

    let redriven = f
        .admin(&["redrive", "INTER-0701", "--contract", "contract1"])
        .await;
    assert_eq!(redriven.code, 0, "{redriven:?}");
    assert!(
        redriven.out.starts_with(
            "INTER-0701 (contract1): event(s) 1 re-queued; delivered event(s) 1, 2; every event is on Intent"
        ),
        "{}",
        redriven.out
    );
    assert_eq!(
        f.logs_on_intent("INTER-0701"),
        2,
        "opening then closing, once each"
    );
    let sent: Vec<String> = f
        .bridge
        .simulator
        .operation_logs("INTER-0701", "contract1")
        .iter()
        .map(|log| log["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, ["acknowledged", "done"]);

    let failed = f.admin(&["failed"]).await;
    assert_eq!((failed.code, failed.out.as_str()), (0, "nothing failed\n"));
    let shown = f
        .admin(&["show", "INTER-0701", "--contract", "contract1", "--json"])
        .await
        .json();
    assert_eq!(shown["events"][0]["delivery"]["state"], "delivered");
    assert_eq!(
        shown["events"][0]["delivery"]["attempts"], 2,
        "attempts kept"
    );

    // Nothing left: a second redrive does nothing, successfully.
    let again = f
        .admin(&["redrive", "INTER-0701", "--contract", "contract1", "--json"])
        .await;
    assert_eq!(again.code, 0);
    assert_eq!(again.json()["files"][0]["result"], "nothingToDo");
    assert_eq!(f.logs_on_intent("INTER-0701"), 2);
}

#[tokio::test]
async fn redrive_leaves_the_events_requeued_when_another_sender_holds_the_file() {
    let f = fixture().await;
    f.refused("INTER-0801").await;
    let id = FileId::new("INTER-0801", "contract1");
    let now = jiff::Timestamp::now();
    let until = now + jiff::SignedDuration::from_secs(2);
    let grant = f
        .forwarder
        .store
        .take_send_lease(&id, now, until)
        .await
        .unwrap();
    assert_eq!(grant, oncall_domain::ports::LeaseGrant::Taken);

    let redriven = f
        .admin(&["redrive", "INTER-0801", "--contract", "contract1"])
        .await;
    assert_eq!(redriven.code, 1, "{redriven:?}");
    assert!(
        redriven
            .out
            .contains("another sender holds the file's send lease"),
        "{}",
        redriven.out
    );
    assert_eq!(
        f.logs_on_intent("INTER-0801"),
        0,
        "nothing sent under another's lease"
    );
    let pending = f.admin(&["pending", "--json"]).await.json();
    assert_eq!(references(&pending, "events"), ["INTER-0801"]);
    assert!(
        pending["events"][0]["delivery"]["lastError"]
            .as_str()
            .unwrap()
            .contains("400"),
        "the refusal stays as the last error"
    );
    assert_eq!(f.admin(&["failed"]).await.out, "nothing failed\n");

    // The lease runs out; the next re-send run delivers it.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let run = f.bridge.resend_run().await;
    assert_eq!(run.report.resend.unwrap().delivered, 1);
    assert_eq!(f.logs_on_intent("INTER-0801"), 1);
}

#[tokio::test]
async fn redrive_all_failed_sends_every_refused_event_and_document() {
    let f = fixture().await;
    f.refused("INTER-0901").await;
    f.refused("INTER-0902").await;
    f.unreachable("INTER-0903").await;
    // A quitus Intent refuses (400): rejected as `intent_rejected`.
    f.delivered("INTER-0904").await;
    let s3 = s3_client(&f.bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let key = "operator-quitus/contract1/INTER-0904/quitus Pierre DUPONT.pdf";
    let object = put_object(&s3, &bucket, key, pdf_bytes(5_000), &[]).await;
    f.bridge
        .simulator
        .inject(Fault::status(Endpoint::Documents, 400, 1));
    let summary = document_forwarder::handle(&f.forwarder, s3_event(&[&object]))
        .await
        .unwrap();
    assert_eq!(summary.rejected, 1, "{summary:?}");
    assert!(f.bridge.simulator.received_documents().is_empty());

    let failed = f.admin(&["failed", "--json"]).await.json();
    assert_eq!(references(&failed, "events"), ["INTER-0901", "INTER-0902"]);
    assert_eq!(references(&failed, "documents"), ["INTER-0904"]);
    let document = &failed["documents"][0];
    assert_eq!(document["state"], "refused");
    assert_eq!(document["size"], 5_000);
    assert_eq!(document["objectIdentity"].as_str().unwrap().len(), 64);
    let table = f.admin(&["failed"]).await;
    assert!(table.out.contains("refused"), "{}", table.out);
    assert!(
        !table.out.contains("quitus Pierre"),
        "no file name: {}",
        table.out
    );

    let redriven = f.admin(&["redrive", "--all-failed"]).await;
    assert_eq!(redriven.code, 0, "{redriven:?}");
    assert!(
        redriven
            .out
            .ends_with("2 file(s), 1 document(s): all on Intent\n"),
        "{}",
        redriven.out
    );
    assert!(!redriven.out.contains("quitus Pierre"));
    assert_eq!(f.logs_on_intent("INTER-0901"), 1);
    assert_eq!(f.logs_on_intent("INTER-0902"), 1);
    assert_eq!(
        f.logs_on_intent("INTER-0903"),
        0,
        "pending ones are the re-send run's"
    );
    assert_eq!(f.bridge.simulator.received_documents().len(), 1);
    let failed = f.admin(&["failed"]).await;
    assert_eq!(failed.out, "nothing failed\n");
    let shown = f
        .admin(&["show", "INTER-0904", "--contract", "contract1", "--json"])
        .await
        .json();
    assert_eq!(shown["documents"][0]["state"], "published");

    let nothing = f.admin(&["redrive", "--all-failed"]).await;
    assert_eq!(
        (nothing.code, nothing.out.as_str()),
        (0, "nothing failed: nothing to redrive\n")
    );
}

/// A Lambda asynchronous-invocation destination record for a failed S3 event, as the
/// forwarder's on-failure destination puts it in the queue.
fn destination_record(event: &aws_lambda_events::event::s3::S3Event) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-28T21:10:00.000Z",
        "requestContext": {
            "requestId": "e8a9b3f2-0d8c-4d4c-9a51-0f1d2a3b4c5d",
            "functionArn": "arn:aws:lambda:eu-west-3:123456789012:function:document-forwarder:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": serde_json::to_value(event).unwrap(),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "&alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>", "errorMessage": "1 record(s) to retry: record 0: the file store is unavailable"}
    })
    .to_string()
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let count = |name: A| {
        attributes
            .get(&name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        count(A::ApproximateNumberOfMessages),
        count(A::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn dlq_replay_feeds_the_dead_letters_back_through_the_forwarder_and_deletes_them() {
    let f = fixture().await;
    f.delivered("INTER-0500").await;
    let s3 = s3_client(&f.bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let key = "operator-quitus/contract1/INTER-0500/quitus-INTER-0500.pdf";
    let object = put_object(&s3, &bucket, key, pdf_bytes(6_000), &[]).await;
    let sqs = aws_sdk_sqs::Client::new(&f.bridge.sdk);
    let url = dead_letter_queue(&sqs).await;
    // The same failed event twice (Lambda delivers at least once), one a bare S3 event.
    let event = s3_event(&[&object]);
    for body in [
        destination_record(&event),
        serde_json::to_string(&event).unwrap(),
    ] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let replay = |json: bool| {
        let (sqs, url, forwarder) = (&sqs, &url, &f.forwarder);
        async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code =
                bridge_admin::dlq::replay(sqs, url, None, forwarder, json, &mut out, &mut err)
                    .await;
            let ran = Ran {
                code,
                out: String::from_utf8(out).unwrap(),
                err: String::from_utf8(err).unwrap(),
            };
            ran.assert_free_of_personal_data();
            assert!(
                !ran.out.contains("quitus-INTER"),
                "no file name: {}",
                ran.out
            );
            ran
        }
    };
    let ran = replay(true).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let report = ran.json();
    assert_eq!(report["received"], 2);
    assert_eq!(report["replayed"], 2);
    assert_eq!(report["published"], 1);
    assert_eq!(report["duplicates"], 1, "the ledger skips the second");
    assert_eq!(f.bridge.simulator.received_documents().len(), 1);
    assert_eq!(queue_depth(&sqs, &url).await, (0, 0), "both deleted");
    let shown = f
        .admin(&["show", "INTER-0500", "--contract", "contract1", "--json"])
        .await
        .json();
    assert_eq!(shown["documents"][0]["state"], "published");
    assert_eq!(shown["documents"][0]["size"], 6_000);

    // Nothing left to replay.
    let empty = replay(false).await;
    assert_eq!(
        (empty.code, empty.out.as_str()),
        (0, "the queue is empty: nothing to replay\n")
    );

    // A message that is not an S3 event stays in the queue, visible for the next replay.
    sqs.send_message()
        .queue_url(&url)
        .message_body("{\"hello\": \"world\"}")
        .send()
        .await
        .unwrap();
    let unreadable = replay(false).await;
    assert_eq!(unreadable.code, 1, "{unreadable:?}");
    assert!(
        unreadable.out.contains("left in the queue"),
        "{}",
        unreadable.out
    );
    assert_eq!(queue_depth(&sqs, &url).await, (1, 0));
}

/// A replay whose quitus is not on Intent afterwards (here: its file's claim not filed
/// yet, so it waits in the ledger) is not all done: exit 1, as a redrive's, so that
/// `bridge-admin dlq replay && …` does not go on as if it were.
#[tokio::test]
async fn a_dlq_replay_that_leaves_a_quitus_waiting_is_not_done() {
    let f = fixture().await;
    let s3 = s3_client(&f.bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let key = "operator-quitus/contract1/INTER-0777/quitus-INTER-0777.pdf";
    let object = put_object(&s3, &bucket, key, pdf_bytes(6_000), &[]).await;
    let sqs = aws_sdk_sqs::Client::new(&f.bridge.sdk);
    let url = dead_letter_queue(&sqs).await;
    sqs.send_message()
        .queue_url(&url)
        .message_body(destination_record(&s3_event(&[&object])))
        .send()
        .await
        .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code =
        bridge_admin::dlq::replay(&sqs, &url, None, &f.forwarder, true, &mut out, &mut err).await;
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["waiting"], 1, "{report}");
    assert_eq!(code, 1, "{report}");
    assert!(f.bridge.simulator.received_documents().is_empty());
}

/// `bridge-admin dlq` without its action is a usage error (exit 2, on standard error), not
/// help printed as if something were done.
#[test]
fn a_command_missing_its_action_is_a_usage_error() {
    match bridge_admin::parse(["bridge-admin", "dlq"]) {
        Err((code, to_out, _)) => assert_eq!((code, to_out), (2, false)),
        Ok(_) => panic!("parsed"),
    }
    match bridge_admin::parse(["bridge-admin", "--help"]) {
        Err((code, to_out, _)) => assert_eq!((code, to_out), (0, true), "asked for"),
        Ok(_) => panic!("parsed"),
    }
}

fn lookup(vars: HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
    move |name| vars.get(name).cloned()
}

async fn run_with(env: &bridge_admin::Lookup<'_>, args: &[&str]) -> Ran {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(
        std::iter::once("bridge-admin").chain(args.iter().copied()),
        env,
        &mut out,
        &mut err,
    )
    .await;
    let ran = Ran {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    };
    ran.assert_free_of_personal_data();
    ran
}

#[tokio::test]
async fn configuration_errors_exit_2_with_one_line() {
    let nothing = lookup(HashMap::new());
    let ran = run_with(&nothing, &["pending"]).await;
    assert_eq!(ran.code, 2);
    assert_eq!(ran.out, "");
    assert_eq!(ran.err.lines().count(), 1, "{ran:?}");
    assert!(
        ran.err.starts_with("bridge-admin: TABLE_NAME is not set"),
        "{}",
        ran.err
    );

    let f = fixture().await;
    f.delivered("INTER-0500").await;
    // The whole command on the table, as an operator runs it (the AWS SDK's own variables
    // point at the emulators).
    let table = lookup(HashMap::from([("TABLE_NAME", f.bridge.table.clone())]));
    let shown = run_with(&table, &["show", "INTER-0500", "--contract", "contract1"]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.out.contains("delivered"));
    // A redrive needs Intent.
    let redrive = run_with(&table, &["redrive", "--all-failed"]).await;
    assert_eq!(redrive.code, 2);
    assert_eq!(redrive.err.lines().count(), 1, "{redrive:?}");
    assert!(redrive.err.contains("INTENT_BASE_URL"), "{}", redrive.err);
    // A table that does not exist: the store is unreachable.
    let wrong = lookup(HashMap::from([("TABLE_NAME", unique("no-such-table"))]));
    let ran = run_with(&wrong, &["failed"]).await;
    assert_eq!(ran.code, 2);
    assert_eq!(ran.err.lines().count(), 1, "{ran:?}");
    assert!(
        ran.err
            .starts_with("bridge-admin: the store could not be read:"),
        "{}",
        ran.err
    );
    // No queue for a replay.
    let ran = run_with(&table, &["dlq", "replay"]).await;
    assert_eq!(ran.code, 2);
    assert!(ran.err.contains("FORWARDER_DLQ_URL"), "{}", ran.err);
    // A usage error.
    let ran = run_with(&table, &["redrive", "INTER-0500"]).await;
    assert_eq!(ran.code, 2);
    assert!(ran.err.contains("--contract"), "{}", ran.err);
}

#[tokio::test]
async fn on_the_local_runs_store_the_refused_opening_is_listed_and_redriven() {
    use local_bridge::events::JsonLinesEvents;
    use local_bridge::store::EmbeddedStore;
    let dir = tempfile::tempdir().unwrap();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    {
        // The local run took a claim Intent refused, then stopped.
        let store = EmbeddedStore::open(&dir.path().join("bridge.redb")).unwrap();
        let intent = intent_client::IntentClient::new(fast_intent_config(&simulator)).unwrap();
        let events = JsonLinesEvents::new(Some(dir.path().join("domain-events.jsonl")), SOURCE);
        simulator.inject(Fault::status(Endpoint::InterventionLogs, 400, 1));
        let log =
            oncall_domain::validation::parse_intervention_log(SEED_OPENING.as_bytes()).unwrap();
        let opened = oncall_domain::intake::open_intervention(
            &store,
            &intent,
            &events,
            &oncall_domain::ports::SystemClock,
            oncall_domain::closure::ClosurePolicy::default(),
            oncall_domain::PartnerId("demo-partner".into()),
            log,
        )
        .await
        .unwrap();
        assert!(opened.file.events[0].delivery.is_failed());
    }
    let data = dir.path().to_str().unwrap();
    let env = lookup(HashMap::from([
        ("INTENT_BASE_URL", simulator.base_url()),
        ("INTENT_TOKEN_URL", simulator.token_url()),
        ("INTENT_CLIENT_ID", simulator.client_id()),
        ("INTENT_CLIENT_SECRET", simulator.client_secret()),
        // Left in the operator's shell from work on AWS: the local run reads no secret
        // from Secrets Manager, so the secret given is the one used.
        (
            "INTENT_CLIENT_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-3:123456789012:secret:intent-AbCdEf".to_string(),
        ),
    ]));

    let failed = run_with(&env, &["--local", data, "failed", "--json"]).await;
    assert_eq!(failed.code, 0, "{failed:?}");
    assert_eq!(references(&failed.json(), "events"), ["INTER-0500"]);

    let redriven = run_with(
        &env,
        &[
            "--local",
            data,
            "redrive",
            "INTER-0500",
            "--contract",
            "contract1",
        ],
    )
    .await;
    assert_eq!(redriven.code, 0, "{redriven:?}");
    assert_eq!(simulator.operation_logs("INTER-0500", "contract1").len(), 1);
    let shown = run_with(
        &env,
        &[
            "show",
            "INTER-0500",
            "--contract",
            "contract1",
            "--local",
            data,
            "--json",
        ],
    )
    .await;
    assert_eq!(shown.json()["events"][0]["delivery"]["state"], "delivered");
    let failed = run_with(&env, &["--local", data, "failed"]).await;
    assert_eq!(failed.out, "nothing failed\n");

    let missing = dir.path().join("nowhere");
    let ran = run_with(&env, &["--local", missing.to_str().unwrap(), "pending"]).await;
    assert_eq!(ran.code, 2);
    assert_eq!(ran.err.lines().count(), 1, "{ran:?}");
    assert!(ran.err.contains("no local store"), "{}", ran.err);
}
