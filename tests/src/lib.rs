//! Test harness for the integration suites: real DynamoDB Local and moto server on
//! loopback (started by `infra/scripts/emulators.sh`, endpoints from the environment it
//! exports), and the Intent simulator started in process.
//!
//! Every test gets its own table, bus and queue (random names), so suites run in
//! parallel without seeing each other.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use base64::Engine as _;
use serde_json::{Value, json};
use std::time::Duration;

use oncall_domain::closure::ClosurePolicy;
use partner_api::PartnerDirectory;
use partner_lambda::{FunctionConfig, LambdaPartnerApi, Route, build_api};

pub use intent_simulator::{Endpoint, Fault, FaultBehaviour, IntentSimulator, SimulatorConfig};

const EMULATOR_HINT: &str = "integration tests need DynamoDB Local and moto server: run them through `infra/scripts/test.sh`, or `eval \"$(infra/scripts/emulators.sh start >&2 && infra/scripts/emulators.sh env)\"` first";

/// The emulators' endpoints, from the environment `emulators.sh env` exports.
pub fn endpoints() -> (String, String) {
    let dynamodb = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect(EMULATOR_HINT);
    let moto = std::env::var("AWS_ENDPOINT_URL").expect(EMULATOR_HINT);
    (dynamodb, moto)
}

/// reqwest is built without a default TLS provider (the Intent client brings its own
/// rustls config); plain clients in tests need one installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One shared `SdkConfig`, as the Lambda functions build it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    endpoints();
    install_crypto_provider();
    aws_wiring::load_aws_config().await
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates the interventions table exactly as `template.yaml` declares it.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let index = |index: &str, hash: &str, range: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(index)
            .key_schema(key(hash, KeyType::Hash))
            .key_schema(key(range, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .attribute_definitions(attribute("openShard"))
        .attribute_definitions(attribute("openedAt"))
        .attribute_definitions(attribute("pendingShard"))
        .attribute_definitions(attribute("pendingSince"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(index(
            dynamodb_store::OPEN_FILES_INDEX,
            "openShard",
            "openedAt",
        ))
        .global_secondary_indexes(index(
            dynamodb_store::PENDING_EVENTS_INDEX,
            "pendingShard",
            "pendingSince",
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name}: {e:?}\n{EMULATOR_HINT}"));
}

/// A bus on moto whose events all land in an SQS queue the test can read.
pub struct EventTap {
    pub bus_name: String,
    queue_url: String,
    http: reqwest::Client,
    moto: String,
}

const REGION: &str = "eu-west-3";

/// moto reads the region from the Authorization header's credential scope.
fn moto_auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

async fn sqs_call(http: &reqwest::Client, moto: &str, action: &str, body: Value) -> Value {
    let response = http
        .post(moto)
        .header("X-Amz-Target", format!("AmazonSQS.{action}"))
        .header("Content-Type", "application/x-amz-json-1.0")
        .header("Authorization", moto_auth("sqs"))
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("SQS {action}: {e}\n{EMULATOR_HINT}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(
        status.is_success(),
        "SQS {action} answered {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

impl EventTap {
    pub async fn new(client: &aws_sdk_eventbridge::Client, source: &str) -> Self {
        let (_, moto) = endpoints();
        let http = reqwest::Client::new();
        let bus_name = unique("bus");
        let queue_name = unique("events");
        client
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bus: {e:?}\n{EMULATOR_HINT}"));
        let queue = sqs_call(
            &http,
            &moto,
            "CreateQueue",
            json!({"QueueName": queue_name}),
        )
        .await;
        let queue_url = queue["QueueUrl"].as_str().unwrap().to_string();
        let queue_arn = format!("arn:aws:sqs:{REGION}:123456789012:{queue_name}");
        let rule = unique("rule");
        client
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus_name)
            .event_pattern(json!({"source": [source]}).to_string())
            .send()
            .await
            .unwrap();
        client
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        Self {
            bus_name,
            queue_url,
            http,
            moto,
        }
    }

    /// Every event that reached the bus so far (as EventBridge delivers them to targets).
    pub async fn drain(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let answer = sqs_call(
                &self.http,
                &self.moto,
                "ReceiveMessage",
                json!({"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}),
            )
            .await;
            let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return events;
            }
            for message in messages {
                events.push(serde_json::from_str(message["Body"].as_str().unwrap()).unwrap());
                sqs_call(
                    &self.http,
                    &self.moto,
                    "DeleteMessage",
                    json!({"QueueUrl": self.queue_url, "ReceiptHandle": message["ReceiptHandle"]}),
                )
                .await;
            }
        }
    }
}

/// Builds the API Gateway HTTP API (payload 2.0) event for a request, as API Gateway
/// sends it to the function after the JWT authorizer, and converts it the way the
/// runtime does.
pub struct ApiGatewayRequest {
    pub route_key: &'static str,
    pub method: &'static str,
    pub path: String,
    pub path_parameters: Option<Value>,
    pub query: Option<(String, String)>,
    pub client_id: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
}

impl ApiGatewayRequest {
    pub fn post_claim(client_id: &str, body: &[u8]) -> Self {
        Self {
            route_key: "POST /interventions",
            method: "POST",
            path: "/interventions".into(),
            path_parameters: None,
            query: None,
            client_id: Some(client_id.to_string()),
            content_type: Some("application/json".into()),
            body: Some(body.to_vec()),
        }
    }

    pub fn post_closure(client_id: &str, reference: &str, body: &[u8]) -> Self {
        let path = format!(
            "/interventions/{}/closure",
            partner_api::percent_encode(reference)
        );
        Self {
            route_key: "POST /interventions/{reference}/closure",
            method: "POST",
            path,
            path_parameters: Some(json!({"reference": reference})),
            query: None,
            client_id: Some(client_id.to_string()),
            content_type: Some("application/json".into()),
            body: Some(body.to_vec()),
        }
    }

    /// `POST /interventions/{reference}/documents?contractReference=…` asking to upload.
    pub fn post_upload(client_id: &str, reference: &str, contract: &str, body: &[u8]) -> Self {
        Self {
            route_key: "POST /interventions/{reference}/documents",
            method: "POST",
            path: format!(
                "/interventions/{}/documents",
                partner_api::percent_encode(reference)
            ),
            path_parameters: Some(json!({"reference": reference})),
            query: Some(("contractReference".to_string(), contract.to_string())),
            client_id: Some(client_id.to_string()),
            content_type: Some("application/json".into()),
            body: Some(body.to_vec()),
        }
    }

    pub fn get_file(client_id: &str, reference: &str, contract: Option<&str>) -> Self {
        Self {
            route_key: "GET /interventions/{reference}",
            method: "GET",
            path: format!("/interventions/{}", partner_api::percent_encode(reference)),
            path_parameters: Some(json!({"reference": reference})),
            query: contract.map(|c| ("contractReference".to_string(), c.to_string())),
            client_id: Some(client_id.to_string()),
            content_type: None,
            body: None,
        }
    }

    pub fn event(&self) -> Value {
        let mut headers = json!({"host": "api.example.test", "accept": "application/json"});
        if let Some(content_type) = &self.content_type {
            headers["content-type"] = json!(content_type);
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": self.route_key,
            "rawPath": self.path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "routeKey": self.route_key,
                "accountId": "123456789012",
                "stage": "$default",
                "requestId": uuid::Uuid::new_v4().to_string(),
                "apiId": "api-id",
                "domainName": "api.example.test",
                "domainPrefix": "api",
                "time": "28/Nov/2026:19:03:58 +0000",
                "timeEpoch": 1_795_892_638_000_i64,
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.1",
                    "userAgent": "partner-test"
                }
            },
            "isBase64Encoded": false
        });
        if let Some(client_id) = &self.client_id {
            event["requestContext"]["authorizer"] = json!({
                "jwt": {"claims": {"client_id": client_id, "token_use": "access", "scope": "oncall-bridge/interventions.write"}, "scopes": ["oncall-bridge/interventions.write"]}
            });
        }
        if let Some(parameters) = &self.path_parameters {
            event["pathParameters"] = parameters.clone();
        }
        if let Some((name, value)) = &self.query {
            event["rawQueryString"] =
                json!(format!("{name}={}", partner_api::percent_encode(value)));
            event["queryStringParameters"] = json!({ name: value });
        }
        if let Some(body) = &self.body {
            match std::str::from_utf8(body) {
                Ok(text) => event["body"] = json!(text),
                Err(_) => {
                    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
                    event["isBase64Encoded"] = json!(true);
                }
            }
        }
        event
    }

    pub fn into_request(self) -> lambda_http::Request {
        let event: lambda_http::request::LambdaRequest =
            serde_json::from_value(self.event()).expect("a valid API Gateway v2 event");
        event.into()
    }
}

/// A response as the test reads it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Value,
    pub headers: http::HeaderMap,
}

/// Asserts an RFC 9457 problem document with this status.
pub fn assert_problem(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{:#}", answer.body);
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(answer.body["status"], json!(status));
    assert!(
        answer.body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:oncall-bridge:problem:")
    );
    assert!(!answer.body["detail"].as_str().unwrap().is_empty());
}

/// Serves one API Gateway request through a partner function's router, as `lambda_http`
/// does, and reads the answer.
pub async fn serve(
    api: &std::sync::Arc<LambdaPartnerApi>,
    routes: &[Route],
    request: ApiGatewayRequest,
) -> Answer {
    use tower::ServiceExt;
    let response = partner_lambda::router(api.clone(), routes)
        .oneshot(request.into_request())
        .await
        .expect("the router always answers");
    read_answer(response).await
}

/// A Lambda context as the runtime builds one for an invocation: a new request id and a
/// new X-Ray trace id (`Root=1-{time}-{id};Parent=…;Sampled=1`), a deadline fifteen minutes
/// away (Lambda's longest timeout, the closer's and the forwarder's).
pub fn lambda_context() -> lambda_runtime::Context {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = jiff::Timestamp::now();
    let mut context = lambda_runtime::Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.xray_trace_id = Some(format!(
        "Root=1-{:08x}-{};Parent={};Sampled=1",
        now.as_second(),
        &id[..24],
        &id[16..]
    ));
    context.deadline = u64::try_from(now.as_millisecond()).unwrap() + 900_000;
    context
}

/// `work` as the Lambda runtime runs an invocation: within the span lambda_runtime opens
/// for it (its own `request_span`, with the request and trace ids).
pub async fn in_invocation<F: std::future::Future>(
    context: &lambda_runtime::Context,
    work: F,
) -> F::Output {
    use tracing::Instrument;
    work.instrument(lambda_runtime::layers::trace::request_span(context))
        .await
}

/// Serves one API Gateway request as Lambda runs a partner function: the context in the
/// request as `lambda_http` puts it, within the runtime's span, the function's metrics
/// written to `metrics`.
pub async fn serve_invocation(
    api: &std::sync::Arc<LambdaPartnerApi>,
    routes: &[Route],
    request: ApiGatewayRequest,
    context: &lambda_runtime::Context,
    metrics: &MetricCapture,
) -> Answer {
    use lambda_http::RequestExt;
    use tower::ServiceExt;
    let request = request.into_request().with_lambda_context(context.clone());
    let router = partner_lambda::router_with_metrics(api.clone(), routes, metrics.sink());
    let response = in_invocation(context, router.oneshot(request))
        .await
        .expect("the router always answers");
    read_answer(response).await
}

/// The metric lines (Embedded Metric Format) a function wrote to its sink.
#[derive(Clone, Default)]
pub struct MetricCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for MetricCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MetricCapture {
    /// A sink writing here.
    pub fn sink(&self) -> telemetry::metrics::MetricsSink {
        telemetry::metrics::MetricsSink::writer(self.clone())
    }

    /// Every line so far, each one JSON document; the capture is emptied.
    pub fn take(&self) -> Vec<Value> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .expect("UTF-8 lines")
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON document per line"))
            .collect()
    }
}

pub async fn read_answer(response: axum::response::Response) -> Answer {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("a readable body");
    Answer {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string()),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers: parts.headers,
    }
}

/// The local run's configuration with its data in `data_dir` (everything else its
/// embedded defaults).
pub fn local_config(data_dir: &std::path::Path) -> local_bridge::config::LocalConfig {
    let data_dir = data_dir.display().to_string();
    local_bridge::config::LocalConfig::from_settings(&settings::Settings::from_lookup(
        move |name| (name == "DATA_DIR").then(|| data_dir.clone()),
    ))
    .unwrap()
}

/// The local run on `config`, talking to `simulator` (fast retries), its API's and its
/// background runs' Intent clients alike.
pub fn local_bridge_on(
    config: local_bridge::config::LocalConfig,
    simulator: &IntentSimulator,
) -> local_bridge::LocalBridge {
    local_bridge::LocalBridge::new(
        config,
        intent_client::IntentClient::new(fast_intent_config(simulator)).unwrap(),
        intent_client::IntentClient::new(fast_intent_config(simulator)).unwrap(),
    )
    .unwrap()
}

/// Short retry budget for Intent in tests, so "Intent down" answers quickly.
pub fn fast_intent_config(simulator: &IntentSimulator) -> intent_client::IntentConfig {
    let mut config = intent_client::IntentConfig::new(
        &simulator.base_url(),
        &simulator.token_url(),
        &simulator.client_id(),
        &simulator.client_secret(),
    );
    config.retry.min_delay = Duration::from_millis(10);
    config.retry.max_delay = Duration::from_millis(50);
    config.retry.max_total_delay = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(2);
    config
}

/// The first on-call period (default calendar) that ends after now, so that claims filed
/// by a test are recorded before its end whatever day the suite runs.
pub fn next_period_end() -> oncall_domain::calendar::OnCallPeriod {
    let calendar = oncall_domain::calendar::OnCallCalendar::new(Default::default()).unwrap();
    let now = jiff::Timestamp::now();
    (1..15)
        .filter_map(|days| {
            calendar.last_period_ended_by(now + jiff::SignedDuration::from_hours(24 * days))
        })
        .find(|period| period.end > now)
        .expect("a period ends within two weeks")
}

/// `source` of the domain events in tests.
pub const SOURCE: &str = "oncall-bridge.interventions";
/// The routes the claim-intake function serves (as its `main` declares them).
pub const INTAKE: &[Route] = &[Route::OpenIntervention, Route::GetIntervention];
/// The routes the closure function serves.
pub const CLOSURE: &[Route] = &[Route::CloseIntervention, Route::RequestDocumentUpload];

/// A partner function's configuration on `core`, with the test partners and defaults
/// (no documents bucket).
pub fn function_config(core: aws_wiring::CoreConfig) -> FunctionConfig {
    FunctionConfig {
        core,
        partners: partners(),
        closure: ClosurePolicy::default(),
        uploads: oncall_domain::uploads::UploadPolicy::default(),
        documents_bucket: None,
        s3_force_path_style: true,
    }
}

/// partner-a: contract1 and contract9; partner-b: contract2; partner-c shares contract9
/// with partner-a but never sees partner-a's files.
pub fn partners() -> PartnerDirectory {
    PartnerDirectory::default()
        .with_partner("partner-a", ["contract1", "contract9"])
        .with_partner("partner-b", ["contract2"])
        .with_partner("partner-c", ["contract9"])
}

/// The partner API as the Lambda functions wire it, on a fresh table, bus and simulator.
pub struct Bridge {
    pub sdk: aws_config::SdkConfig,
    pub api: std::sync::Arc<LambdaPartnerApi>,
    pub simulator: IntentSimulator,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub tap: EventTap,
    /// The bucket partners' uploads are signed for (created by the tests that upload).
    pub documents_bucket: String,
    /// Where the functions built from now on read Intent's client secret: in their
    /// configuration when `None`, else in this Secrets Manager secret (moto's).
    pub intent_secret_arn: Option<String>,
}

pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

impl Bridge {
    pub async fn start() -> Self {
        let sdk = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let table = unique("interventions");
        create_table(&dynamodb, &table).await;
        let tap = EventTap::new(&aws_sdk_eventbridge::Client::new(&sdk), SOURCE).await;
        let simulator = IntentSimulator::start(SimulatorConfig::default())
            .await
            .unwrap();
        // Named, not created: the tests that upload create it.
        let documents_bucket = unique("documents");
        let api = build_api(
            &sdk,
            FunctionConfig {
                documents_bucket: Some(documents_bucket.clone()),
                ..function_config(aws_wiring::CoreConfig {
                    table_name: table.clone(),
                    event_bus_name: tap.bus_name.clone(),
                    event_source: SOURCE.into(),
                    intent: fast_intent_config(&simulator),
                    intent_secret_arn: None,
                })
            },
        )
        .unwrap();
        Self {
            sdk,
            api: std::sync::Arc::new(api),
            documents_bucket,
            simulator,
            dynamodb,
            table,
            tap,
            intent_secret_arn: None,
        }
    }

    /// The on-call closer function, wired on this bridge's table, bus and simulator, with
    /// the default calendar (Europe/Paris, 18:00 → 08:00) and reconciling `contract1` and
    /// `contract9`.
    pub fn closer(
        &self,
        policy: oncall_domain::oncall::CloserPolicy,
    ) -> oncall_closer::CloserFunction {
        self.closer_with_clock(policy, oncall_domain::ports::SystemClock)
    }

    /// The closer as the schedule runs it at the period's end `end` (UTC), on time: its clock
    /// 30 s after it. The claims a test posts are received now, after that period's end in
    /// real time; a closer that runs that late closes only what an on-time run would have
    /// seen (`StragglerScope::of_end_run`), so an end-of-period test runs on time.
    pub fn closer_on_time(
        &self,
        policy: oncall_domain::oncall::CloserPolicy,
        end: &str,
    ) -> oncall_closer::CloserFunction<oncall_domain::ports::FixedClock> {
        let end: jiff::Timestamp = end.parse().expect("a UTC instant");
        let clock = oncall_domain::ports::FixedClock(end + jiff::SignedDuration::from_secs(30));
        self.closer_with_clock(policy, clock)
    }

    /// The closer with its own clock (to run a period that has not ended yet in real time).
    pub fn closer_with_clock<C: oncall_domain::ports::Clock>(
        &self,
        policy: oncall_domain::oncall::CloserPolicy,
        clock: C,
    ) -> oncall_closer::CloserFunction<C> {
        self.closer_on(&self.sdk, policy, clock)
    }

    /// [`Bridge::closer_with_clock`], its AWS clients built on `sdk`.
    pub fn closer_on<C: oncall_domain::ports::Clock>(
        &self,
        sdk: &aws_wiring::SdkConfig,
        policy: oncall_domain::oncall::CloserPolicy,
        clock: C,
    ) -> oncall_closer::CloserFunction<C> {
        self.closer_configured(sdk, policy, clock, |_| {})
    }

    /// What every function of this bridge is wired on: its table, bus, simulator, and
    /// where Intent's client secret is read.
    pub fn core_config(&self) -> aws_wiring::CoreConfig {
        aws_wiring::CoreConfig {
            table_name: self.table.clone(),
            event_bus_name: self.tap.bus_name.clone(),
            event_source: SOURCE.into(),
            intent: fast_intent_config(&self.simulator),
            intent_secret_arn: self.intent_secret_arn.clone(),
        }
    }

    /// The functions built from now on read Intent's client secret from Secrets Manager
    /// (moto), as deployed, instead of their configuration.
    pub async fn keep_intent_secret_in_secrets_manager(&mut self) {
        let secrets = aws_sdk_secretsmanager::Client::new(&self.sdk);
        let created = secrets
            .create_secret()
            .name(unique("intent-client-secret"))
            .secret_string(self.simulator.client_secret())
            .send()
            .await
            .unwrap();
        self.intent_secret_arn = Some(created.arn().unwrap().to_string());
    }

    /// [`Bridge::closer_on`], its configuration changed by `configure` first.
    pub fn closer_configured<C: oncall_domain::ports::Clock>(
        &self,
        sdk: &aws_wiring::SdkConfig,
        policy: oncall_domain::oncall::CloserPolicy,
        clock: C,
        configure: impl FnOnce(&mut oncall_closer::CloserConfig),
    ) -> oncall_closer::CloserFunction<C> {
        let mut config = oncall_closer::CloserConfig {
            core: self.core_config(),
            calendar: Ok(oncall_domain::calendar::CalendarConfig::default()),
            policy,
            contracts: ["contract1", "contract9"]
                .iter()
                .map(|c| c.to_string())
                .collect(),
            tolerance: jiff::SignedDuration::from_mins(30),
            documents: oncall_domain::documents::DocumentPolicy::default(),
            s3_force_path_style: true,
        };
        configure(&mut config);
        oncall_closer::CloserFunction::with_clock(sdk, config, clock).unwrap()
    }

    /// One re-send tick of the closer, now, without backoff (what the schedule does every
    /// few minutes): pending events re-sent, waiting documents forwarded.
    pub async fn resend_run(&self) -> oncall_closer::RunSummary {
        self.resend_run_with_clock(oncall_domain::ports::SystemClock)
            .await
    }

    /// [`Bridge::resend_run`] on `clock` (a tick to come: what the outbox keeps is
    /// published once its writer's send lease would have run out).
    pub async fn resend_run_with_clock<C: oncall_domain::ports::Clock>(
        &self,
        clock: C,
    ) -> oncall_closer::RunSummary {
        let closer = self.closer_with_clock(
            oncall_domain::oncall::CloserPolicy {
                base_backoff: jiff::SignedDuration::ZERO,
                ..Default::default()
            },
            clock,
        );
        let tick = oncall_closer::Tick {
            kind: oncall_closer::TickKind::Resend,
            scheduled_time: None,
        };
        oncall_closer::run_tick(&closer, tick, oncall_domain::oncall::Deadline::none(), None)
            .await
            .expect("a re-send run")
    }

    /// The document forwarder function, wired on this bridge's table, bus and simulator.
    pub fn forwarder(
        &self,
        policy: oncall_domain::documents::DocumentPolicy,
    ) -> document_forwarder::DocumentForwarder {
        self.forwarder_on(&self.sdk, policy)
    }

    /// [`Bridge::forwarder`], its AWS clients built on `sdk`.
    pub fn forwarder_on(
        &self,
        sdk: &aws_wiring::SdkConfig,
        policy: oncall_domain::documents::DocumentPolicy,
    ) -> document_forwarder::DocumentForwarder {
        document_forwarder::DocumentForwarder::new(
            sdk,
            document_forwarder::ForwarderConfig {
                core: self.core_config(),
                policy,
                s3_force_path_style: true,
            },
        )
        .unwrap()
    }

    /// Sends a request to the function serving `routes`.
    pub async fn call(&self, routes: &[Route], request: ApiGatewayRequest) -> Answer {
        serve(&self.api, routes, request).await
    }

    /// Sends a request to the claim-intake function.
    pub async fn send(&self, request: ApiGatewayRequest) -> Answer {
        self.call(INTAKE, request).await
    }

    /// partner-a posts a claim.
    pub async fn post(&self, body: &str) -> Answer {
        self.send(ApiGatewayRequest::post_claim("partner-a", body.as_bytes()))
            .await
    }

    /// partner-a posts a closure for `reference`.
    pub async fn close(&self, reference: &str, body: &str) -> Answer {
        self.call(
            CLOSURE,
            ApiGatewayRequest::post_closure("partner-a", reference, body.as_bytes()),
        )
        .await
    }

    /// The outbox's items (domain events not yet known to be on the bus).
    pub async fn outbox_items(&self) -> Vec<Item> {
        self.items()
            .await
            .into_iter()
            .filter(|item| item["sk"].as_s().is_ok_and(|sk| sk == "OUTBOX"))
            .collect()
    }

    /// Every item of the table (tests only: production code never scans).
    pub async fn items(&self) -> Vec<Item> {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }
}

/// An S3 client for moto (path-style addressing).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// A new versioned bucket on moto.
pub async fn create_versioned_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = unique("quitus");
    create_versioned_bucket_named(s3, &bucket).await;
    bucket
}

/// The versioned bucket `bucket` on moto.
pub async fn create_versioned_bucket_named(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest3)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket: {e:?}\n{EMULATOR_HINT}"));
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// An object as S3 stored it: what its notification will carry.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bucket: String,
    pub key: String,
    pub size: usize,
    pub etag: String,
    pub version: String,
}

pub async fn put_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    metadata: &[(&str, &str)],
) -> StoredObject {
    let size = body.len();
    let mut request = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/pdf")
        .body(aws_sdk_s3::primitives::ByteStream::from(body));
    for (name, value) in metadata {
        request = request.metadata(*name, *value);
    }
    let output = request.send().await.unwrap();
    StoredObject {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size,
        etag: output
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string(),
        version: output.version_id().unwrap_or_default().to_string(),
    }
}

/// Encodes a key the way S3 event notifications do (form URL encoding: spaces as `+`).
pub fn event_key(key: &str) -> String {
    let mut out = String::new();
    for byte in key.bytes() {
        match byte {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The `ObjectCreated:Put` event AWS sends for these objects (from the fixture in
/// `tests/fixtures/s3-object-created.json`, one record per object).
pub fn s3_event(objects: &[&StoredObject]) -> aws_lambda_events::event::s3::S3Event {
    let template = include_str!("../fixtures/s3-object-created.json");
    let mut records = Vec::new();
    for object in objects {
        let filled = template
            .replace("{{bucket}}", &object.bucket)
            .replace("{{key}}", &event_key(&object.key))
            .replace("{{size}}", &object.size.to_string())
            .replace("{{etag}}", &object.etag)
            .replace("{{version}}", &object.version);
        let event: Value = serde_json::from_str(&filled).unwrap();
        records.push(event["Records"][0].clone());
    }
    serde_json::from_value(json!({ "Records": records })).expect("a valid S3 event")
}

/// A small but real-looking PDF of about `size` bytes.
pub fn pdf_bytes(size: usize) -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    let mut state: u32 = 0x1234_5678;
    while pdf.len() < size.saturating_sub(6) {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        pdf.push((state >> 24) as u8);
    }
    pdf.extend_from_slice(b"%%EOF\n");
    pdf.truncate(size.max(16));
    pdf
}

/// Captures the JSON log lines the functions write (the same subscriber as in Lambda, at
/// `debug`), to check that no personal data reaches them. One capture per test binary,
/// installed as the global subscriber: every test's logs land in it (a thread-local
/// subscriber would miss events through tracing's callsite cache when tests run in
/// parallel), so a leak anywhere in the binary fails the checks.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// The binary's capture, installed on first use.
    pub fn global() -> Self {
        static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = LogCapture::default();
                let writer = capture.clone();
                let subscriber =
                    telemetry::json_subscriber(telemetry::log_filter("debug"), move || {
                        writer.clone()
                    });
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in the test binary");
                capture
            })
            .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Panics if any of `secrets` appears in a log line.
    pub fn assert_free_of(&self, secrets: &[&str]) {
        let logs = self.text();
        for secret in secrets {
            if let Some(line) = logs.lines().find(|line| line.contains(secret)) {
                panic!("{secret} leaked into the logs: {line}");
            }
        }
    }
}

/// Every AWS call a client makes (one per HTTP attempt, as billed), by its `X-Amz-Target`
/// (`DynamoDB_20120810.TransactWriteItems`, `AWSEvents.PutEvents`, …), as a
/// [`CountingProxy`] in front of the emulators sees them: a test can state how many round
/// trips a request costs.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    written: std::sync::Arc<std::sync::Mutex<WrittenItems>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<LoggedRequest>>>,
}

/// One request a [`CountingProxy`] passed on, as the service received it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// The operation of a JSON protocol call (the `X-Amz-Target` after the dot), else the
    /// HTTP method (S3's REST calls).
    pub operation: String,
    /// The path and query.
    pub path: String,
    /// The body of a JSON protocol call (`Null` for others).
    pub body: serde_json::Value,
}

/// The items DynamoDB write calls asked for, counted from their bodies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrittenItems {
    /// Actions of `TransactWriteItems` calls (puts, updates, deletes, condition checks).
    pub transactional: u64,
    /// Items of `BatchWriteItem`, `PutItem`, `UpdateItem` and `DeleteItem` calls.
    pub other: u64,
}

impl CallLog {
    /// The operations called so far, in order (the part after the dot).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// The items the write calls so far asked DynamoDB to write.
    pub fn written(&self) -> WrittenItems {
        *self.written.lock().unwrap()
    }

    /// The requests passed on so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
        self.requests.lock().unwrap().clear();
        *self.written.lock().unwrap() = WrittenItems::default();
    }

    /// Logs one call of `operation` to `path` with its request `body`.
    fn record(&self, operation: &str, path: &str, body: &[u8]) {
        self.calls.lock().unwrap().push(operation.to_string());
        self.requests.lock().unwrap().push(LoggedRequest {
            operation: operation.to_string(),
            path: path.to_string(),
            body: match body.first() {
                Some(b'{') => serde_json::from_slice(body).unwrap_or_default(),
                _ => serde_json::Value::Null,
            },
        });
        let items = |value: &serde_json::Value| value.as_array().map_or(0, Vec::len) as u64;
        let request = || serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
        let mut written = self.written.lock().unwrap();
        match operation {
            "TransactWriteItems" => written.transactional += items(&request()["TransactItems"]),
            "BatchWriteItem" => {
                written.other += request()["RequestItems"]
                    .as_object()
                    .map_or(0, |tables| tables.values().map(items).sum())
            }
            "PutItem" | "UpdateItem" | "DeleteItem" => written.other += 1,
            _ => {}
        }
    }
}

/// A plain HTTP proxy on loopback in front of `upstream` (DynamoDB Local, moto), logging
/// each request it passes on by its `X-Amz-Target` into a [`CallLog`]: the round trips of
/// the functions' calls, all signed by hand (no SDK client to intercept). Serves until the
/// test's runtime ends.
pub struct CountingProxy;

/// Answers a [`CountingProxy`] loses after its emulator applied the call, by operation:
/// each comes back as DynamoDB's `InternalServerError` (a 500, after which the caller cannot
/// know whether the call was applied), as when a connection drops after AWS acted, or as
/// another error DynamoDB gives in that case.
#[derive(Clone, Debug, Default)]
pub struct LostAnswers(
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Loss>>>,
    /// `PutEvents` entries refused one by one: those whose `Detail` holds the text, with
    /// the error code.
    std::sync::Arc<std::sync::Mutex<Vec<(String, &'static str)>>>,
    /// By operation: an `UpdateItem` request applied once, right after a call of it whose
    /// answer is lost (another writer between an applied write and its repetition).
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>>,
);

/// The entries of a `PutEvents` call refused one by one: each one's index and error code.
type RefusedEntries = Vec<(usize, &'static str)>;

/// The "error type" of [`LostAnswers::leave_unprocessed`].
const UNPROCESSED: &str = "UnprocessedItems";

/// How many more answers of one operation to lose, and the status and error type given
/// instead.
#[derive(Clone, Copy, Debug)]
struct Loss {
    left: u32,
    status: u16,
    error_type: &'static str,
    /// Whether the call reaches the emulator before its answer is lost (else the service
    /// refuses it unapplied, as when it is down).
    applied: bool,
    /// Whether no answer comes at all (the call hangs, unapplied).
    hangs: bool,
}

impl LostAnswers {
    /// Loses the answers of the next `count` calls of `operation` (500
    /// `InternalServerError`).
    pub fn lose(&self, operation: &str, count: u32) {
        self.lose_as(operation, count, 500, "InternalServerError");
    }

    /// Loses the answers of the next `count` calls of `operation`, answering `status` with
    /// DynamoDB's `error_type` instead.
    pub fn lose_as(&self, operation: &str, count: u32, status: u16, error_type: &'static str) {
        self.set(operation, count, status, error_type, true, false);
    }

    /// The next `count` calls of `operation` lose their answer (`applied`: passed on
    /// first), get `status` with `error_type` instead, or (`hangs`) no answer at all.
    fn set(
        &self,
        operation: &str,
        count: u32,
        status: u16,
        error_type: &'static str,
        applied: bool,
        hangs: bool,
    ) {
        self.0.lock().unwrap().insert(
            operation.to_string(),
            Loss {
                left: count,
                status,
                error_type,
                applied,
                hangs,
            },
        );
    }

    /// Once a call of `operation` whose answer is lost has been applied, applies
    /// `update` (an `UpdateItem` request) before the lost answer is given: another writer
    /// acting between a write and its repetition.
    pub fn then_update(&self, operation: &str, update: serde_json::Value) {
        self.2.lock().unwrap().insert(operation.to_string(), update);
    }

    /// Refuses the next `count` calls of `operation` without passing them on (a 500
    /// `InternalServerError`, nothing applied): the service down.
    pub fn refuse(&self, operation: &str, count: u32) {
        self.refuse_as(operation, count, 500, "InternalServerError");
    }

    /// Refuses the next `count` calls of `operation` without passing them on, answering
    /// `status` with DynamoDB's `error_type` (a throttling: 400 `ThrottlingException`).
    pub fn refuse_as(&self, operation: &str, count: u32, status: u16, error_type: &'static str) {
        self.set(operation, count, status, error_type, false, false);
    }

    /// Leaves the next `count` calls of `operation` unanswered (nothing applied; the
    /// connection stays open for an hour): the service hanging.
    pub fn hang(&self, operation: &str, count: u32) {
        self.set(operation, count, 500, "InternalServerError", false, true);
    }

    /// Answers the next `count` `BatchWriteItem` calls, without passing them on, as
    /// DynamoDB does when it applies none of a batch: a 200 whose `UnprocessedItems` are
    /// the request's own.
    pub fn leave_unprocessed(&self, count: u32) {
        self.lose_as("BatchWriteItem", count, 200, UNPROCESSED);
    }

    /// Refuses, in every `PutEvents` call, the entries whose `Detail` holds `text`, with the
    /// entry error code `code` (as EventBridge refuses an entry for good:
    /// `InvalidArgument`, `MalformedDetail`), passing the call's other entries on.
    pub fn refuse_entries(&self, text: &str, code: &'static str) {
        self.1.lock().unwrap().push((text.to_string(), code));
    }

    /// `body` (a `PutEvents` request) without the entries [`LostAnswers::refuse_entries`]
    /// refuses, and each refused entry's index and code; `None` when it refuses none.
    fn refused_entries(&self, body: &[u8]) -> Option<(Vec<u8>, RefusedEntries)> {
        let refusals = self.1.lock().unwrap().clone();
        if refusals.is_empty() {
            return None;
        }
        let mut request: serde_json::Value = serde_json::from_slice(body).ok()?;
        let entries = request["Entries"].as_array()?.clone();
        let mut refused = Vec::new();
        let mut passed = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            let detail = entry["Detail"].as_str().unwrap_or_default();
            match refusals
                .iter()
                .find(|(text, _)| detail.contains(text.as_str()))
            {
                Some((_, code)) => refused.push((index, *code)),
                None => passed.push(entry),
            }
        }
        if refused.is_empty() {
            return None;
        }
        request["Entries"] = serde_json::Value::Array(passed);
        Some((request.to_string().into_bytes(), refused))
    }

    /// The answer given instead of this call's (counting it), if it is lost, and whether
    /// the call is passed on first.
    fn take(&self, operation: &str) -> Option<(u16, &'static str, bool)> {
        let mut lost = self.0.lock().unwrap();
        match lost.get_mut(operation) {
            Some(loss) if loss.left > 0 => {
                loss.left -= 1;
                Some((loss.status, loss.error_type, loss.applied))
            }
            _ => None,
        }
    }

    /// Whether this operation's lost answers never come.
    fn hangs(&self, operation: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .get(operation)
            .is_some_and(|loss| loss.hangs)
    }
}

impl CountingProxy {
    /// Starts the proxy; its base URL.
    pub fn start(upstream: String, log: CallLog) -> String {
        Self::start_losing(upstream, log, LostAnswers::default())
    }

    /// Starts the proxy, losing the answers `lost` names; its base URL.
    pub fn start_losing(upstream: String, log: CallLog, lost: LostAnswers) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let http = reqwest::Client::new();
        let forward = move |request: axum::extract::Request| {
            let (http, upstream, log, lost) =
                (http.clone(), upstream.clone(), log.clone(), lost.clone());
            async move {
                let (parts, body) = request.into_parts();
                let original_headers = parts.headers.clone();
                let target = parts
                    .headers
                    .get("x-amz-target")
                    .and_then(|target| target.to_str().ok())
                    .map(|target| target.rsplit('.').next().unwrap_or(target).to_string())
                    .unwrap_or_else(|| parts.method.to_string());
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                log.record(&target, path, &body);
                let hangs = lost.hangs(&target);
                let loss = lost.take(&target);
                if loss.is_some() && hangs {
                    tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
                }
                if let Some((status, error_type, false)) = loss {
                    let mut response = axum::response::Response::new(axum::body::Body::from(
                        format!(r#"{{"__type":"{error_type}","message":"the service is down"}}"#),
                    ));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    return response;
                }
                if let Some((_, UNPROCESSED, _)) = loss {
                    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let answer = serde_json::json!({ "UnprocessedItems": request["RequestItems"] });
                    return axum::response::Response::new(axum::body::Body::from(
                        answer.to_string(),
                    ));
                }
                let mut headers = parts.headers.clone();
                headers.remove(http::header::HOST);
                let refused = (target == "PutEvents")
                    .then(|| lost.refused_entries(&body))
                    .flatten();
                let body = match &refused {
                    Some((passed, _)) => {
                        headers.remove(http::header::CONTENT_LENGTH);
                        bytes::Bytes::from(passed.clone())
                    }
                    None => body,
                };
                let nothing_passed = refused.as_ref().is_some_and(|(passed, _)| {
                    serde_json::from_slice::<serde_json::Value>(passed).unwrap()["Entries"]
                        .as_array()
                        .is_some_and(Vec::is_empty)
                });
                let (status, mut headers, mut body) = if nothing_passed {
                    let body = bytes::Bytes::from(r#"{"FailedEntryCount":0,"Entries":[]}"#);
                    (http::StatusCode::OK, http::HeaderMap::new(), body)
                } else {
                    let answer = http
                        .request(parts.method, format!("{upstream}{path}"))
                        .headers(headers)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = answer.status();
                    let headers = answer.headers().clone();
                    (status, headers, answer.bytes().await.unwrap())
                };
                if let Some((_, refused)) = refused {
                    // The refused entries' results put back in their places, as
                    // EventBridge answers a call it took in part.
                    let mut answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let mut results = answer["Entries"].as_array().cloned().unwrap_or_default();
                    for (index, code) in &refused {
                        results.insert(
                            *index,
                            serde_json::json!({"ErrorCode": code, "ErrorMessage": "refused by the test"}),
                        );
                    }
                    let failed =
                        answer["FailedEntryCount"].as_u64().unwrap_or(0) + refused.len() as u64;
                    answer["Entries"] = serde_json::Value::Array(results);
                    answer["FailedEntryCount"] = failed.into();
                    headers.remove(http::header::CONTENT_LENGTH);
                    body = bytes::Bytes::from(answer.to_string());
                }
                let then_update = match loss {
                    Some((_, _, true)) => lost.2.lock().unwrap().remove(&target),
                    _ => None,
                };
                if let Some(update) = then_update {
                    let mut side = original_headers;
                    side.remove(http::header::HOST);
                    side.remove(http::header::CONTENT_LENGTH);
                    side.insert(
                        "x-amz-target",
                        http::HeaderValue::from_static("DynamoDB_20120810.UpdateItem"),
                    );
                    let answer = http
                        .post(format!("{upstream}/"))
                        .headers(side)
                        .body(update.to_string())
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        answer.status().is_success(),
                        "{}",
                        answer.text().await.unwrap()
                    );
                }
                if let Some((status, error_type, _)) = loss {
                    let mut response = axum::response::Response::new(axum::body::Body::from(
                        format!(
                            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{error_type}","message":"the answer was lost"}}"#
                        ),
                    ));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    return response;
                }
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                response
            }
        };
        let app = axum::Router::new().fallback(forward);
        tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        url
    }
}

/// `sdk`'s region and credentials, every endpoint a [`CountingProxy`] in front of
/// `upstream` logging into `log`.
pub fn through_proxy(
    sdk: &aws_wiring::SdkConfig,
    upstream: String,
    log: &CallLog,
) -> aws_wiring::SdkConfig {
    through_lossy_proxy(sdk, upstream, log, &LostAnswers::default())
}

/// `sdk` as it is, but for DynamoDB: its calls go through a [`CountingProxy`] in front of
/// `upstream` (DynamoDB Local), logged into `log`; the other services keep their
/// endpoints.
pub fn dynamodb_through_proxy(
    sdk: &aws_wiring::SdkConfig,
    upstream: String,
    log: &CallLog,
) -> aws_wiring::SdkConfig {
    #[derive(Debug)]
    struct DynamoDbEndpoint {
        proxy: String,
        others: aws_wiring::SdkConfig,
    }
    impl aws_types::service_config::LoadServiceConfig for DynamoDbEndpoint {
        fn load_config(
            &self,
            key: aws_types::service_config::ServiceConfigKey<'_>,
        ) -> Option<String> {
            if key.service_id() == "DynamoDB" && key.env() == "AWS_ENDPOINT_URL" {
                return Some(self.proxy.clone());
            }
            self.others.service_config()?.load_config(key)
        }
    }
    let proxy = CountingProxy::start(upstream, log.clone());
    sdk.to_builder()
        .service_config(DynamoDbEndpoint {
            proxy,
            others: sdk.clone(),
        })
        .build()
}

/// `sdk` with every service's calls going through a [`CountingProxy`] in front of its
/// emulator (DynamoDB's in front of DynamoDB Local, the others' in front of moto), all
/// logged into `log`: what a function built on it calls, as its role must allow.
pub fn every_service_through_proxies(
    sdk: &aws_wiring::SdkConfig,
    log: &CallLog,
) -> aws_wiring::SdkConfig {
    every_service_through_lossy_proxies(sdk, log, &LostAnswers::default())
}

/// [`every_service_through_proxies`], the proxies losing (or refusing) the answers `lost`
/// names.
pub fn every_service_through_lossy_proxies(
    sdk: &aws_wiring::SdkConfig,
    log: &CallLog,
    lost: &LostAnswers,
) -> aws_wiring::SdkConfig {
    #[derive(Debug)]
    struct Endpoints {
        dynamodb: String,
        others: String,
        given: aws_wiring::SdkConfig,
    }
    impl aws_types::service_config::LoadServiceConfig for Endpoints {
        fn load_config(
            &self,
            key: aws_types::service_config::ServiceConfigKey<'_>,
        ) -> Option<String> {
            if key.env() == "AWS_ENDPOINT_URL" {
                return Some(if key.service_id() == "DynamoDB" {
                    self.dynamodb.clone()
                } else {
                    self.others.clone()
                });
            }
            self.given.service_config()?.load_config(key)
        }
    }
    let (dynamodb, moto) = endpoints();
    let others = CountingProxy::start_losing(moto, log.clone(), lost.clone());
    sdk.to_builder()
        .endpoint_url(others.clone())
        .service_config(Endpoints {
            dynamodb: CountingProxy::start_losing(dynamodb, log.clone(), lost.clone()),
            others,
            given: sdk.clone(),
        })
        .build()
}

/// [`through_proxy`], the proxy losing the answers `lost` names.
pub fn through_lossy_proxy(
    sdk: &aws_wiring::SdkConfig,
    upstream: String,
    log: &CallLog,
    lost: &LostAnswers,
) -> aws_wiring::SdkConfig {
    aws_wiring::SdkConfig::builder()
        .region(sdk.region().cloned())
        .credentials_provider(sdk.credentials_provider().unwrap())
        .endpoint_url(CountingProxy::start_losing(
            upstream,
            log.clone(),
            lost.clone(),
        ))
        .build()
}

/// A store on `table` (with `sdk`'s region and credentials) whose every DynamoDB call is
/// logged into `log`.
pub fn counted_store(
    sdk: &aws_wiring::SdkConfig,
    table: &str,
    log: &CallLog,
) -> dynamodb_store::DynamoDbStore {
    lossy_store(sdk, table, log, &LostAnswers::default())
}

/// [`counted_store`], its proxy losing the answers `lost` names.
pub fn lossy_store(
    sdk: &aws_wiring::SdkConfig,
    table: &str,
    log: &CallLog,
    lost: &LostAnswers,
) -> dynamodb_store::DynamoDbStore {
    aws_wiring::dynamodb_store(
        &through_lossy_proxy(sdk, endpoints().0, log, lost),
        &aws_wiring::aws_reqwest_client().unwrap(),
        table,
    )
    .unwrap()
}

impl Bridge {
    /// The partner API as `build_api` wires it on this bridge's table, bus and simulator,
    /// with every DynamoDB and EventBridge call logged.
    pub fn counted_api(&self) -> (std::sync::Arc<LambdaPartnerApi>, CallLog) {
        self.counted_api_losing(&LostAnswers::default())
    }

    /// [`Bridge::counted_api`], its table's and its bus's proxies losing the answers `lost`
    /// names.
    pub fn counted_api_losing(
        &self,
        lost: &LostAnswers,
    ) -> (std::sync::Arc<LambdaPartnerApi>, CallLog) {
        self.counted_api_within(lost, partner_api::REQUEST_LIMIT)
    }

    /// [`Bridge::counted_api_losing`], answering a claim or a closure within
    /// `request_limit`.
    pub fn counted_api_within(
        &self,
        lost: &LostAnswers,
        request_limit: std::time::Duration,
    ) -> (std::sync::Arc<LambdaPartnerApi>, CallLog) {
        self.counted_api_with(lost, request_limit, ClosurePolicy::default())
    }

    /// [`Bridge::counted_api`], closing files under `closure`.
    pub fn counted_api_closing_under(
        &self,
        closure: ClosurePolicy,
    ) -> (std::sync::Arc<LambdaPartnerApi>, CallLog) {
        self.counted_api_with(&LostAnswers::default(), partner_api::REQUEST_LIMIT, closure)
    }

    fn counted_api_with(
        &self,
        lost: &LostAnswers,
        request_limit: std::time::Duration,
        closure: ClosurePolicy,
    ) -> (std::sync::Arc<LambdaPartnerApi>, CallLog) {
        let log = CallLog::default();
        // Each service counted by a proxy in front of its emulator, into the same log.
        let bus_sdk = through_lossy_proxy(&self.sdk, endpoints().1, &log, lost);
        let events = aws_wiring::event_publisher(
            &bus_sdk,
            &aws_wiring::aws_reqwest_client().unwrap(),
            self.tap.bus_name.clone(),
            SOURCE,
        )
        .unwrap();
        let api = partner_api::PartnerApi {
            store: lossy_store(&self.sdk, &self.table, &log, lost),
            intent: telemetry::intent::MeteredIntent::new(
                intent_client::IntentClient::new(fast_intent_config(&self.simulator)).unwrap(),
            ),
            events,
            clock: oncall_domain::ports::SystemClock,
            uploads: partner_lambda::BucketUploads::new(&self.sdk, &function_config_of(self)),
            partners: partners(),
            closure,
            upload_policy: oncall_domain::uploads::UploadPolicy::default(),
            request_limit,
        };
        (std::sync::Arc::new(api), log)
    }
}

impl Bridge {
    /// The partner functions' API as `build_api` wires it on this bridge's table, bus,
    /// bucket and simulator, its AWS clients built on `sdk`.
    pub fn api_on(&self, sdk: &aws_wiring::SdkConfig) -> std::sync::Arc<LambdaPartnerApi> {
        std::sync::Arc::new(build_api(sdk, function_config_of(self)).unwrap())
    }
}

fn function_config_of(bridge: &Bridge) -> FunctionConfig {
    FunctionConfig {
        documents_bucket: Some(bridge.documents_bucket.clone()),
        ..function_config(bridge.core_config())
    }
}

/// A new queue standing for the forwarder's dead-letter queue; its URL.
pub async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.create_queue()
        .queue_name(unique("forwarder-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}
