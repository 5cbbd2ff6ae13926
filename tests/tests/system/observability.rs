//! What the functions tell operators, as Lambda runs them: the metric lines (Embedded
//! Metric Format) a request, a forwarding and a closer run produce, captured through the
//! functions' metrics sink; and the invocation's request and trace ids on every log line,
//! from the span lambda_runtime opens (its own `request_span`).

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::LambdaEvent;
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::intent_examples::{SEED_CLOSURE_DONE, SEED_OPENING};
use serde_json::{Value, json};
use std::time::Duration;
use system_tests::*;

/// The one document among `documents` holding metric `name`.
fn document_with<'a>(documents: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = documents
        .iter()
        .filter(|document| document.get(name).is_some())
        .collect();
    assert_eq!(found.len(), 1, "one document with {name}: {documents:#?}");
    found[0]
}

/// A metric's name and unit.
type Declared = (String, String);

/// The metric directives of `document`: (dimension set, [(name, unit)]).
fn directives(document: &Value) -> Vec<(Vec<String>, Vec<Declared>)> {
    document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|directive| {
            assert_eq!(directive["Namespace"], "OnCallBridge", "{document}");
            let sets = directive["Dimensions"].as_array().unwrap();
            assert_eq!(sets.len(), 1, "one dimension set: {document}");
            let dimensions = sets[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|name| name.as_str().unwrap().to_string())
                .collect();
            let metrics = directive["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|metric| {
                    (
                        metric["Name"].as_str().unwrap().to_string(),
                        metric["Unit"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (dimensions, metrics)
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

fn metric(name: &str, unit: &str) -> Declared {
    (name.to_string(), unit.to_string())
}

/// The document carries the invocation's ids and a time CloudWatch accepts (now).
fn assert_of_invocation(document: &Value, context: &lambda_runtime::Context) {
    assert_eq!(
        document["requestId"],
        json!(context.request_id),
        "{document}"
    );
    assert_eq!(
        document["xrayTraceId"],
        json!(context.xray_trace_id.as_deref().unwrap()),
        "{document}"
    );
    let timestamp = document["_aws"]["Timestamp"].as_i64().expect("a timestamp");
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(
        (now - 60_000..=now).contains(&timestamp),
        "{timestamp} is not now ({now})"
    );
}

/// The counted outcome of a claim or closure document.
fn outcome_document(document: &Value, function: &str, name: &str, outcome: &str) {
    assert_eq!(
        directives(document),
        vec![(
            strings(&["Function", "Outcome"]),
            vec![metric(name, "Count")]
        )],
        "{document}"
    );
    assert_eq!(document["Function"], function, "{document}");
    assert_eq!(document["Outcome"], outcome, "{document}");
    assert_eq!(document[name], 1, "{document}");
}

/// A delivery document: `IntentDeliveries` by result, `IntentLatency` by operation.
/// Returns the latency.
fn delivery_document(document: &Value, function: &str, result: &str, operation: &str) -> f64 {
    assert_eq!(
        directives(document),
        vec![
            (
                strings(&["Function", "Result"]),
                vec![metric("IntentDeliveries", "Count")]
            ),
            (
                strings(&["Function", "Operation"]),
                vec![metric("IntentLatency", "Milliseconds")]
            ),
        ],
        "{document}"
    );
    assert_eq!(document["Function"], function, "{document}");
    assert_eq!(document["Result"], result, "{document}");
    assert_eq!(document["Operation"], operation, "{document}");
    assert_eq!(document["IntentDeliveries"], 1, "{document}");
    document["IntentLatency"].as_f64().expect("a latency")
}

#[tokio::test]
async fn a_claim_counts_its_outcome_and_its_delivery_with_intents_latency() {
    let bridge = Bridge::start().await;
    let metrics = MetricCapture::default();
    // Intent takes its time: the latency must show it.
    bridge.simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Delay(Duration::from_millis(250)),
        times: 1,
    });
    let context = lambda_context();
    let created = serve_invocation(
        &bridge.api,
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
        &context,
        &metrics,
    )
    .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    let documents = metrics.take();
    assert_eq!(documents.len(), 2, "{documents:#?}");
    let claim = document_with(&documents, "Claims");
    outcome_document(claim, "claim-intake", "Claims", "created");
    assert_of_invocation(claim, &context);
    let delivery = document_with(&documents, "IntentDeliveries");
    let latency = delivery_document(delivery, "claim-intake", "delivered", "event");
    assert!(
        (250.0..5_000.0).contains(&latency),
        "Intent answered after 250 ms, measured {latency} ms"
    );
    assert_of_invocation(delivery, &context);
    // Nothing in a metric names the file or the partner.
    for document in &documents {
        let text = document.to_string();
        for private in ["INTER-0500", "contract1", "partner-a", "DUPONT"] {
            assert!(!text.contains(private), "{private} in {text}");
        }
    }

    // A replay sends nothing: one claim counted, no delivery. A different claim under the
    // same reference is a conflict; an invalid one is rejected.
    for (body, status, outcome) in [
        (SEED_OPENING.to_string(), 200, "replayed"),
        (SEED_OPENING.replace("16°C", "15°C"), 409, "conflict"),
        ("{\"reference\": 1}".to_string(), 422, "rejected"),
    ] {
        let context = lambda_context();
        let answer = serve_invocation(
            &bridge.api,
            INTAKE,
            ApiGatewayRequest::post_claim("partner-a", body.as_bytes()),
            &context,
            &metrics,
        )
        .await;
        assert_eq!(answer.status, status, "{:#}", answer.body);
        let documents = metrics.take();
        assert_eq!(documents.len(), 1, "{outcome}: {documents:#?}");
        outcome_document(&documents[0], "claim-intake", "Claims", outcome);
        assert_of_invocation(&documents[0], &context);
    }

    // Reading a file is neither a claim nor a delivery.
    let read = serve_invocation(
        &bridge.api,
        INTAKE,
        ApiGatewayRequest::get_file("partner-a", "INTER-0500", Some("contract1")),
        &lambda_context(),
        &metrics,
    )
    .await;
    assert_eq!(read.status, 200);
    assert_eq!(metrics.take(), Vec::<Value>::new());
}

/// The seed's claim, through the intake function as Lambda runs it, Intent answering its
/// opening `status`: the claim ends `failed`; its metric documents and invocation.
async fn claim_intent_answers(status: u16) -> (Vec<Value>, lambda_runtime::Context) {
    let bridge = Bridge::start().await;
    let metrics = MetricCapture::default();
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, status, 1));
    let context = lambda_context();
    let answer = serve_invocation(
        &bridge.api,
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", SEED_OPENING.as_bytes()),
        &context,
        &metrics,
    )
    .await;
    assert_eq!(answer.status, 202, "{:#}", answer.body);
    assert_eq!(answer.body["delivery"], "failed");
    (metrics.take(), context)
}

#[tokio::test]
async fn a_delivery_intent_refuses_is_counted_failed_as_the_alarm_expects() {
    let (documents, context) = claim_intent_answers(400).await;
    outcome_document(
        document_with(&documents, "Claims"),
        "claim-intake",
        "Claims",
        "created",
    );
    let delivery = document_with(&documents, "IntentDeliveries");
    delivery_document(delivery, "claim-intake", "failed", "event");
    assert_of_invocation(delivery, &context);

    // template.yaml's alarm on refused deliveries watches exactly this metric.
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let alarm = template
        .split("\n  IntentDeliveryFailuresAlarm:\n")
        .nth(1)
        .expect("the alarm on refused deliveries")
        .split("\n\n")
        .next()
        .unwrap();
    for line in [
        "Namespace: OnCallBridge",
        "MetricName: IntentDeliveries",
        "- Name: Function",
        "Value: claim-intake",
        "- Name: Result",
        "Value: failed",
        "- !Ref OperationsTopic",
    ] {
        assert!(alarm.contains(line), "the alarm lacks {line}:\n{alarm}");
    }
}

#[tokio::test]
async fn a_closure_counts_its_outcome_under_the_closure_function() {
    let bridge = Bridge::start().await;
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    let metrics = MetricCapture::default();
    let context = lambda_context();
    let closed = serve_invocation(
        &bridge.api,
        CLOSURE,
        ApiGatewayRequest::post_closure("partner-a", "INTER-0500", SEED_CLOSURE_DONE.as_bytes()),
        &context,
        &metrics,
    )
    .await;
    assert_eq!(closed.status, 200, "{:#}", closed.body);
    let documents = metrics.take();
    assert_eq!(documents.len(), 2, "{documents:#?}");
    let closure = document_with(&documents, "Closures");
    outcome_document(closure, "intervention-closure", "Closures", "done");
    assert_of_invocation(closure, &context);
    delivery_document(
        document_with(&documents, "IntentDeliveries"),
        "intervention-closure",
        "delivered",
        "event",
    );

    // The same closure again: a replay, nothing sent. Another one: the file is closed.
    for (body, status, outcome) in [
        (SEED_CLOSURE_DONE.to_string(), 200, "replayed"),
        (
            SEED_CLOSURE_DONE.replace("Chauffage de nouveau", "Chauffage enfin"),
            409,
            "conflict",
        ),
    ] {
        let answer = serve_invocation(
            &bridge.api,
            CLOSURE,
            ApiGatewayRequest::post_closure("partner-a", "INTER-0500", body.as_bytes()),
            &lambda_context(),
            &metrics,
        )
        .await;
        assert_eq!(answer.status, status, "{:#}", answer.body);
        let documents = metrics.take();
        assert_eq!(documents.len(), 1, "{outcome}: {documents:#?}");
        outcome_document(&documents[0], "intervention-closure", "Closures", outcome);
    }
    assert_eq!(bridge.simulator.received_logs().len(), 2);
}

/// The seed's claim, and an operator's quitus `name` for it in a new bucket.
async fn opened_with_a_quitus(bridge: &Bridge, name: &str) -> StoredObject {
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);
    let s3 = s3_client(&bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    put_object(
        &s3,
        &bucket,
        &format!("operator-quitus/contract1/INTER-0500/{name}"),
        pdf_bytes(20_000),
        &[],
    )
    .await
}

#[tokio::test]
async fn a_forwarded_quitus_counts_its_result_and_intents_latency() {
    let bridge = Bridge::start().await;
    let object = opened_with_a_quitus(&bridge, "quitus Pierre DUPONT.pdf").await;
    let metrics = MetricCapture::default();
    let mut forwarder = bridge.forwarder(DocumentPolicy::default());
    forwarder.metrics = metrics.sink();
    let invoke = |event: S3Event| {
        let context = lambda_context();
        let forwarder = &forwarder;
        async move {
            let summary = in_invocation(
                &context,
                document_forwarder::handle_invocation(
                    forwarder,
                    LambdaEvent::new(event, context.clone()),
                ),
            )
            .await
            .expect("the invocation succeeds");
            (summary, context)
        }
    };

    let (summary, context) = invoke(s3_event(&[&object])).await;
    assert_eq!(summary.published, 1);
    let documents = metrics.take();
    assert_eq!(documents.len(), 2, "{documents:#?}");
    let forwarded = document_with(&documents, "Documents");
    assert_eq!(
        directives(forwarded),
        vec![(
            strings(&["Function", "Result"]),
            vec![metric("Documents", "Count")]
        )]
    );
    assert_eq!(forwarded["Function"], "document-forwarder");
    assert_eq!(forwarded["Result"], "published");
    assert_eq!(forwarded["Documents"], 1);
    assert_of_invocation(forwarded, &context);
    let upload = document_with(&documents, "IntentDeliveries");
    let latency = delivery_document(upload, "document-forwarder", "delivered", "document");
    assert!(latency > 0.0 && latency < 10_000.0, "{latency}");
    assert_of_invocation(upload, &context);
    for document in &documents {
        let text = document.to_string();
        for private in ["DUPONT", "INTER-0500", "quitus"] {
            assert!(!text.contains(private), "{private} in {text}");
        }
    }

    // The same S3 event again (Lambda delivers at least once): a duplicate, nothing sent.
    let (summary, _) = invoke(s3_event(&[&object, &object])).await;
    assert_eq!(summary.duplicates, 2);
    let documents = metrics.take();
    assert_eq!(documents.len(), 1, "{documents:#?}");
    assert_eq!(documents[0]["Result"], "duplicate");
    assert_eq!(documents[0]["Documents"], 2);
    assert_eq!(bridge.simulator.received_documents().len(), 1);
}

/// A claim Intent was down for (pending, for the re-send run), and the closer, without
/// backoff, writing its metrics to the capture returned.
async fn a_pending_claim_and_a_metered_closer(
    bridge: &Bridge,
) -> (oncall_closer::CloserFunction, MetricCapture) {
    bridge
        .simulator
        .inject(Fault::status(Endpoint::InterventionLogs, 503, 4));
    let answer = bridge.post(SEED_OPENING).await;
    assert_eq!(answer.body["delivery"], "pending", "{:#}", answer.body);
    let metrics = MetricCapture::default();
    let mut closer = bridge.closer(oncall_domain::oncall::CloserPolicy {
        base_backoff: jiff::SignedDuration::ZERO,
        ..Default::default()
    });
    closer.metrics = metrics.sink();
    (closer, metrics)
}

/// A re-send tick, as Lambda invokes the closer with `context`.
async fn resend_invocation(
    closer: &oncall_closer::CloserFunction,
    context: &lambda_runtime::Context,
) -> Result<oncall_closer::RunSummary, aws_wiring::InvocationError> {
    let tick = oncall_closer::Tick {
        kind: oncall_closer::TickKind::Resend,
        scheduled_time: None,
    };
    in_invocation(
        context,
        oncall_closer::handle_invocation(closer, LambdaEvent::new(tick, context.clone())),
    )
    .await
}

#[tokio::test]
async fn the_closers_run_is_reported_as_its_invocations_metrics() {
    let bridge = Bridge::start().await;
    let (closer, metrics) = a_pending_claim_and_a_metered_closer(&bridge).await;
    let context = lambda_context();
    let summary = resend_invocation(&closer, &context)
        .await
        .expect("a re-send run");
    assert_eq!(summary.report.resend.as_ref().unwrap().delivered, 1);
    let documents = metrics.take();
    assert_eq!(documents.len(), 1, "{documents:#?}");
    let run = &documents[0];
    assert_eq!(run["Function"], "oncall-closer");
    assert_of_invocation(run, &context);
    let (dimensions, names) = directives(run).remove(0);
    assert_eq!(dimensions, strings(&["Function"]));
    assert!(names.contains(&metric("EventsResent", "Count")), "{run}");
    assert!(
        names.contains(&metric("OldestPendingEventAge", "Seconds")),
        "{run}"
    );
    assert!(
        names.contains(&metric("OldestPendingDocumentAge", "Seconds")),
        "{run}"
    );
    assert!(
        names.contains(&metric("OldestUnpublishedDomainEventAge", "Seconds")),
        "{run}"
    );
    assert_eq!(run["EventsResent"], 1);
    assert_eq!(run["PendingEvents"], 0);
    assert_eq!(run["EventsMarkedFailed"], 0);
}

/// Every line of the global capture that `keep` selects, as JSON.
fn captured_lines(logs: &LogCapture, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    logs.text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| keep(line))
        .collect()
}

#[tokio::test]
async fn every_log_line_of_an_invocation_carries_its_request_and_trace_ids() {
    let logs = LogCapture::global();
    let bridge = Bridge::start().await;
    // One refusal from Intent first: the Intent client logs its retry, inside the request.
    bridge.simulator.inject(Fault {
        endpoint: Endpoint::InterventionLogs,
        behaviour: FaultBehaviour::Status {
            code: 503,
            retry_after: Some("0".into()),
            body: None,
        },
        times: 1,
    });
    let reference = format!("OBS-{}", uuid::Uuid::new_v4().simple());
    let claim = SEED_OPENING.replace("INTER-0500", &reference);
    let context = lambda_context();
    let trace = context.xray_trace_id.clone().unwrap();
    let answer = serve_invocation(
        &bridge.api,
        INTAKE,
        ApiGatewayRequest::post_claim("partner-a", claim.as_bytes()),
        &context,
        &MetricCapture::default(),
    )
    .await;
    assert_eq!(answer.status, 201, "{:#}", answer.body);

    // The lines of this request (the suite's tests log in parallel into one capture): the
    // router's, the handler's and the Intent client's, all with the ids at the top.
    let of_request = captured_lines(&logs, |line| line["span"]["reference"] == json!(reference));
    let messages: Vec<&str> = of_request
        .iter()
        .map(|line| line["fields"]["message"].as_str().unwrap_or_default())
        .collect();
    for expected in ["Intent call failed; retrying", "claim handled", "answered"] {
        assert!(
            messages.contains(&expected),
            "no {expected:?} in {messages:?}"
        );
    }
    for line in &of_request {
        assert_eq!(line["requestId"], json!(context.request_id), "{line}");
        assert_eq!(line["xrayTraceId"], json!(trace), "{line}");
    }
    // And every line with the request id has the trace id: none half-tagged.
    let with_id = captured_lines(&logs, |line| line["requestId"] == json!(context.request_id));
    assert!(with_id.len() >= of_request.len());
    for line in &with_id {
        assert_eq!(line["xrayTraceId"], json!(trace), "{line}");
    }
    logs.assert_free_of(&["DUPONT", "Pierre", "0685874445", "Bretagne"]);
}

/// A 409 for an event Intent does not hold ends the event `failed`: the read-back that
/// settles it is counted `failed`, which `IntentDeliveryFailuresAlarm` watches (the 409
/// itself is counted `conflict`).
#[tokio::test]
async fn a_conflict_intent_does_not_hold_is_counted_failed_as_the_alarm_expects() {
    let (documents, context) = claim_intent_answers(409).await;
    let results: Vec<&Value> = documents
        .iter()
        .filter(|document| document.get("IntentDeliveries").is_some())
        .map(|document| &document["Result"])
        .collect();
    assert_eq!(
        results,
        [&json!("conflict"), &json!("failed")],
        "{documents:#?}"
    );
    let settled = documents
        .iter()
        .find(|document| document["Result"] == "failed")
        .unwrap();
    delivery_document(settled, "claim-intake", "failed", "event_lookup");
    assert_of_invocation(settled, &context);
}

/// A quitus Intent refused for good waits for an operator's redrive: every closer run
/// counts those waiting (`RejectedDocuments`), whoever was refused (a forwarder, the
/// closer's own re-send run), and an alarm watches the count.
#[tokio::test]
async fn a_quitus_intent_refused_is_counted_by_every_closer_run_and_alarmed() {
    let bridge = Bridge::start().await;
    let object = opened_with_a_quitus(&bridge, "quitus.pdf").await;
    bridge
        .simulator
        .inject(Fault::status(Endpoint::Documents, 422, 1));
    let forwarder = bridge.forwarder(DocumentPolicy::default());
    let context = lambda_context();
    let summary = in_invocation(
        &context,
        document_forwarder::handle_invocation(
            &forwarder,
            LambdaEvent::new(s3_event(&[&object]), context.clone()),
        ),
    )
    .await
    .expect("the invocation succeeds");
    assert_eq!(summary.published, 0, "{summary:?}");

    let metrics = MetricCapture::default();
    let mut closer = bridge.closer(oncall_domain::oncall::CloserPolicy::default());
    closer.metrics = metrics.sink();
    for _ in 0..2 {
        let context = lambda_context();
        let tick = oncall_closer::Tick {
            kind: oncall_closer::TickKind::Resend,
            scheduled_time: None,
        };
        in_invocation(
            &context,
            oncall_closer::handle_invocation(&closer, LambdaEvent::new(tick, context.clone())),
        )
        .await
        .expect("a re-send run");
        let documents = metrics.take();
        let run = &documents[0];
        let (_, names) = directives(run).remove(0);
        assert!(
            names.contains(&metric("RejectedDocuments", "Count")),
            "{run}"
        );
        assert_eq!(run["RejectedDocuments"], 1, "{run}");
    }
    assert!(bridge.simulator.received_documents().is_empty());

    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let alarm = template
        .split("\n  OnCallCloserRejectedDocumentsAlarm:\n")
        .nth(1)
        .expect("an alarm on refused documents")
        .split("\n\n")
        .next()
        .unwrap();
    for line in [
        "Namespace: OnCallBridge",
        "MetricName: RejectedDocuments",
        "- Name: Function",
        "Value: oncall-closer",
        "Threshold: 1",
        "ComparisonOperator: GreaterThanOrEqualToThreshold",
        "- !Ref OperationsTopic",
    ] {
        assert!(alarm.contains(line), "the alarm lacks {line}:\n{alarm}");
    }
}

/// Intent slow (each call longer than the run has): the run is cut off at its hard stop
/// before its last step. Its metrics still carry the backlog: the backlog alarms (the
/// oldest pending event's age above all) watch every run, and a slow Intent is the outage
/// they are for.
#[tokio::test]
async fn a_closer_run_cut_off_at_its_hard_stop_still_reports_the_backlog() {
    let bridge = Bridge::start().await;
    let (mut closer, metrics) = a_pending_claim_and_a_metered_closer(&bridge).await;
    bridge.simulator.inject(Fault::delay(
        Endpoint::InterventionLogs,
        std::time::Duration::from_secs(5),
        10,
    ));
    // Four seconds left: new work until the last second, cut off after the first.
    closer.stop_margin = std::time::Duration::from_secs(1);
    closer.hard_stop_margin = std::time::Duration::from_secs(3);
    let mut context = lambda_context();
    context.deadline = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap() + 4_000;

    let ran = resend_invocation(&closer, &context).await;

    let documents = metrics.take();
    assert_eq!(documents.len(), 1, "{documents:#?} {ran:?}");
    let run = &documents[0];
    assert_eq!(run["PendingEvents"], 1, "{run}");
    assert!(run["OldestPendingEventAge"].is_number(), "{run}");
    assert_eq!(run["RunStoppedEarly"], 1, "{run}");
}
