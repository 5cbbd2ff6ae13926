//! The calls the functions sign by hand (`aws-signing`: every DynamoDB operation the
//! store makes, PutEvents, GetSecretValue, S3 HEAD and GET by version id and by ETag)
//! checked the way AWS checks them: a moto server
//! of this test's own, with moto's IAM authentication on, recomputes each request's SigV4
//! signature with botocore (AWS's Python SDK) from the secret key of an IAM user it issued,
//! or of a role session (temporary credentials, as Lambda gives), and refuses a mismatch.
//! The shared moto of the other tests does not check signatures at all.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::region::Region;
use oncall_domain::DomainEvent;
use oncall_domain::documents::UploadGrant;
use oncall_domain::documents::{ObjectRef, ObjectVersion};
use oncall_domain::domain_events::StoredEvent;
use oncall_domain::ports::{
    GrantRecorded, LeaseGrant, ListOpenFiles, LoadFile, LoadFiles, OpenFile, OpenFileResult,
    Outbox, PublishDomainEvents, ReadObject, SendLease, SourceError, StoreError, UploadGrants,
};
use oncall_domain::{NewFile, PartnerId};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use system_tests::*;

/// A moto server started for this test, stopped when dropped.
struct SigningMoto {
    child: Child,
    url: String,
    /// The tests' SDK HTTP client (the functions' one), for the set-up's SDK clients.
    http_client: aws_smithy_runtime_api::client::http::SharedHttpClient,
}

impl Drop for SigningMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SigningMoto {
    /// `MOTO_SERVER` (exported by `emulators.sh env`) on a free loopback port.
    async fn start() -> Self {
        let binary = std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
            panic!("MOTO_SERVER is not set: run the tests through infra/scripts/test.sh, or eval \"$(infra/scripts/emulators.sh env)\"")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http_client: sdk_config().await.http_client().unwrap(),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("{}/moto-api/", moto.url))
                .send()
                .await
                .is_ok_and(|answer| answer.status().is_success());
            if ready {
                return moto;
            }
            assert!(Instant::now() < deadline, "moto did not start on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signature checks on (`0` calls left unchecked) or off (`inf`).
    async fn check_signatures(&self, on: bool) {
        let answer = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.url))
            .body(if on { "0" } else { "inf" })
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }

    /// An IAM Query-protocol call (IAM, STS) while checks are off; the answer's XML.
    async fn query(&self, service: &str, params: &[(&str, &str)]) -> String {
        let answer = reqwest::Client::new()
            .post(&self.url)
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-3/{service}/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .form(params)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        assert!(status.is_success(), "{service} {params:?}: {status} {text}");
        text
    }

    /// The `SdkConfig` a function would have with `credentials`, every service at this moto.
    fn sdk(&self, credentials: Credentials) -> aws_wiring::SdkConfig {
        aws_wiring::SdkConfig::builder()
            .region(Region::new("eu-west-3"))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .endpoint_url(&self.url)
            .http_client(self.http_client.clone())
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }
}

fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// An IAM user allowed everything, and its access key.
async fn user_credentials(moto: &SigningMoto) -> Credentials {
    moto.query(
        "iam",
        &[
            ("Action", "CreateUser"),
            ("Version", "2010-05-08"),
            ("UserName", "bridge"),
        ],
    )
    .await;
    moto.query(
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("Version", "2010-05-08"),
            ("UserName", "bridge"),
            ("PolicyName", "all"),
            ("PolicyDocument", ALLOW_ALL),
        ],
    )
    .await;
    let key = moto
        .query(
            "iam",
            &[
                ("Action", "CreateAccessKey"),
                ("Version", "2010-05-08"),
                ("UserName", "bridge"),
            ],
        )
        .await;
    Credentials::new(
        between(&key, "AccessKeyId"),
        between(&key, "SecretAccessKey"),
        None,
        None,
        "iam-user",
    )
}

/// A role session's temporary credentials (with a session token), as Lambda gives a
/// function its role's.
async fn role_session_credentials(moto: &SigningMoto) -> Credentials {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    moto.query(
        "iam",
        &[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", "function-role"),
            ("AssumeRolePolicyDocument", trust),
        ],
    )
    .await;
    moto.query(
        "iam",
        &[
            ("Action", "PutRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", "function-role"),
            ("PolicyName", "all"),
            ("PolicyDocument", ALLOW_ALL),
        ],
    )
    .await;
    let session = moto
        .query(
            "sts",
            &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", "arn:aws:iam::123456789012:role/function-role"),
                ("RoleSessionName", "claim-intake"),
            ],
        )
        .await;
    Credentials::new(
        between(&session, "AccessKeyId"),
        between(&session, "SecretAccessKey"),
        Some(between(&session, "SessionToken").to_string()),
        None,
        "role-session",
    )
}

/// What the functions keep in AWS, created while checks are off.
struct Resources {
    table: String,
    bus: String,
    secret_arn: String,
    bucket: String,
    key: String,
    version_id: String,
    etag: String,
    body: Vec<u8>,
}

async fn create_resources(moto: &SigningMoto) -> Resources {
    let admin = moto.sdk(Credentials::new("test", "test", None, None, "setup"));
    let table = unique("signed");
    create_table(&aws_sdk_dynamodb::Client::new(&admin), &table).await;
    let bus = unique("bus");
    aws_sdk_eventbridge::Client::new(&admin)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let secret_arn = aws_sdk_secretsmanager::Client::new(&admin)
        .create_secret()
        .name(unique("intent-client-secret"))
        .secret_string("s3cr3t-value")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let s3 = s3_client(&admin);
    let bucket = create_versioned_bucket(&s3).await;
    // A key with what S3 escapes: spaces, accents, a `#`, parentheses.
    let key = "quitus/2026/Résidence Les Tilleuls #3 (bât. B).pdf".to_string();
    let body: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..70_000u32).map(|n| (n % 251) as u8))
        .collect();
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .content_type("application/pdf")
        .metadata("title", "Quitus signé")
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    Resources {
        table,
        bus,
        secret_arn,
        bucket,
        key,
        version_id: put.version_id().unwrap().to_string(),
        etag: put.e_tag().unwrap().to_string(),
        body,
    }
}

fn event() -> DomainEvent {
    DomainEvent::Stored(StoredEvent {
        id: "signatures-test".into(),
        detail_type: "InterventionOpened".into(),
        detail: json!({"eventId": "signatures-test", "reference": "SIG-1"}),
    })
}

/// Every hand-signed call the functions make, with `credentials`: each must pass moto's
/// signature check.
async fn every_signed_call_passes(
    moto: &SigningMoto,
    resources: &Resources,
    credentials: Credentials,
    who: &str,
) {
    let sdk = moto.sdk(credentials);
    let http = aws_wiring::aws_reqwest_client().unwrap();

    every_store_operation_passes(&sdk, &http, &resources.table, who).await;

    let secret = aws_wiring::SecretsManagerSecret::new(&sdk, &http, &resources.secret_arn).unwrap();
    let value = intent_client::ClientSecretSource::read_secret(&secret).await;
    assert_eq!(
        value.as_deref(),
        Ok("s3cr3t-value"),
        "{who}: GetSecretValue"
    );

    let events = aws_wiring::event_publisher(&sdk, &http, &resources.bus, SOURCE).unwrap();
    let published = events.publish(&[event()]).await;
    assert!(published.is_ok(), "{who}: PutEvents: {published:?}");

    let documents = aws_wiring::documents_reader(&sdk, &http, true).unwrap();
    for version in [
        ObjectVersion::VersionId(resources.version_id.clone()),
        ObjectVersion::ETag(resources.etag.clone()),
    ] {
        let object = ObjectRef {
            bucket: resources.bucket.clone(),
            key: resources.key.clone(),
            version,
            size: None,
        };
        let info = documents.object_info(&object).await;
        let info = info.unwrap_or_else(|e| panic!("{who}: HEAD {object:?}: {e:?}"));
        assert_eq!(info.size, resources.body.len() as u64);
        assert_eq!(info.title.as_deref(), Some("Quitus signé"));
        let first = documents.first_bytes(&object, 9).await;
        assert_eq!(first.unwrap(), b"%PDF-1.7\n", "{who}: GET with a range");
        let mut body = documents.open(&object).await.unwrap();
        assert_eq!(body.length, resources.body.len() as u64);
        let mut read = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut body.chunks).await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert!(read == resources.body, "{who}: GET {object:?}");
    }
}

/// A file opened under `who`'s name (its reference is unique to the caller).
fn new_file(who: &str) -> NewFile {
    store_contract::new_file(&format!("SIG-{}", who.replace(' ', "-")))
}

/// Each of the seven DynamoDB operations the store makes: `TransactWriteItems`, `Query`
/// (a partition, an index), `BatchGetItem`, `UpdateItem`, `PutItem`, `GetItem`,
/// `BatchWriteItem`.
async fn every_store_operation_passes(
    sdk: &aws_wiring::SdkConfig,
    http: &reqwest::Client,
    table: &str,
    who: &str,
) {
    let store = aws_wiring::dynamodb_store(sdk, http, table).unwrap();
    let file = new_file(who);
    let id = file.id();
    let opened = store.open_file_sending(&file, &[], None).await;
    assert!(
        matches!(opened, Ok(OpenFileResult::Created)),
        "{who}: TransactWriteItems: {opened:?}"
    );
    let loaded = store.load_file(&id).await;
    assert!(
        loaded.as_ref().is_ok_and(|found| found.is_some()),
        "{who}: Query: {loaded:?}"
    );
    let batch = store.load_files(std::slice::from_ref(&id)).await;
    assert!(
        matches!(batch.as_slice(), [Ok(Some(_))]),
        "{who}: BatchGetItem: {batch:?}"
    );
    let now = jiff::Timestamp::now();
    let lease = store
        .take_send_lease(&id, now, now + jiff::SignedDuration::from_secs(30))
        .await;
    assert!(
        matches!(lease, Ok(LeaseGrant::Taken)),
        "{who}: UpdateItem: {lease:?}"
    );
    let grant = UploadGrant {
        key: format!("quitus/{who}.pdf"),
        file: id.clone(),
        partner: PartnerId("partner-a".into()),
        file_name: "quitus.pdf".into(),
        size: 10,
        granted_at: now,
        upload_by: now,
    };
    let recorded = store
        .record_upload_grant(&grant, now + jiff::SignedDuration::from_hours(1))
        .await;
    assert!(
        matches!(recorded, Ok(GrantRecorded::Recorded)),
        "{who}: TransactWriteItems with a ConditionCheck: {recorded:?}"
    );
    let opened = DomainEvent::opened(&file.opened()).expect("an opening's event");
    let kept = store.keep(std::slice::from_ref(&opened), now).await;
    assert!(kept.is_ok(), "{who}: PutItem: {kept:?}");
    let read = store.upload_grant(&grant.key).await;
    assert!(
        read.as_ref().is_ok_and(|found| found.is_some()),
        "{who}: GetItem: {read:?}"
    );
    let cleared = store.clear_published(&[format!("{who}-event")]).await;
    assert!(cleared.is_ok(), "{who}: BatchWriteItem: {cleared:?}");
    let open = store
        .open_files_opened_before(now + jiff::SignedDuration::from_hours(1))
        .await;
    assert!(
        open.as_ref().is_ok_and(|files| files.contains(&id)),
        "{who}: Query on an index: {open:?}"
    );
}

#[tokio::test]
async fn hand_signed_calls_pass_aws_signature_checks_and_a_wrong_key_does_not() {
    install_crypto_provider();
    let moto = SigningMoto::start().await;
    moto.check_signatures(false).await;
    let resources = create_resources(&moto).await;
    let user = user_credentials(&moto).await;
    let role_session = role_session_credentials(&moto).await;
    moto.check_signatures(true).await;

    every_signed_call_passes(&moto, &resources, user.clone(), "IAM user").await;
    every_signed_call_passes(&moto, &resources, role_session, "role session").await;

    // The check can fail: the same user's key id with a wrong secret is refused.
    let forged = moto.sdk(Credentials::new(
        user.access_key_id(),
        "not-the-secret",
        None,
        None,
        "forged",
    ));
    let http = aws_wiring::aws_reqwest_client().unwrap();
    let error = aws_wiring::event_publisher(&forged, &http, &resources.bus, SOURCE)
        .unwrap()
        .publish(&[event()])
        .await
        .unwrap_err();
    assert!(
        error.detail.contains("SignatureDoesNotMatch"),
        "{}",
        error.detail
    );
    let object = ObjectRef {
        bucket: resources.bucket.clone(),
        key: resources.key.clone(),
        version: ObjectVersion::VersionId(resources.version_id.clone()),
        size: None,
    };
    let forged_reader = aws_wiring::documents_reader(&forged, &http, true).unwrap();
    let refused = forged_reader.first_bytes(&object, 9).await;
    assert!(
        matches!(&refused, Err(SourceError::Unavailable(why)) if why.contains("403") && why.contains("SignatureDoesNotMatch")),
        "{refused:?}"
    );
    // A HEAD's refusal has no body: its status says it, never "missing".
    let refused = forged_reader.object_info(&object).await;
    assert!(
        matches!(&refused, Err(SourceError::Unavailable(why)) if why.contains("403")),
        "{refused:?}"
    );
    let refused = aws_wiring::dynamodb_store(&forged, &http, &resources.table)
        .unwrap()
        .load_file(&new_file("IAM user").id())
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(why)) if why.contains("UnrecognizedClient") || why.contains("SignatureDoesNotMatch") || why.contains("InvalidSignature")),
        "{refused:?}"
    );
    let secret =
        aws_wiring::SecretsManagerSecret::new(&forged, &http, &resources.secret_arn).unwrap();
    let refused = intent_client::ClientSecretSource::read_secret(&secret).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|why| why.contains("SignatureDoesNotMatch")),
        "{refused:?}"
    );
}
