//! Partners' quitus uploads end to end: the upload route of the closure function signs a
//! `PUT` to moto's S3, the partner uploads with it, S3's notification reaches the
//! forwarder, which forwards only what came with a grant (or under the operators'
//! prefix). Anything else written to the bucket is rejected (`not_authorized`) and never
//! reaches Intent.

use oncall_domain::intent_examples::{CLOSURE_CANCELED, SEED_OPENING};
use serde_json::{Value, json};
use system_tests::*;

struct Uploads {
    bridge: Bridge,
    s3: aws_sdk_s3::Client,
    forwarder: document_forwarder::DocumentForwarder,
}

async fn uploads() -> Uploads {
    let bridge = Bridge::start().await;
    let s3 = s3_client(&bridge.sdk);
    create_versioned_bucket_named(&s3, &bridge.documents_bucket).await;
    let forwarder = bridge.forwarder(Default::default());
    Uploads {
        bridge,
        s3,
        forwarder,
    }
}

impl Uploads {
    async fn ask(&self, partner: &str, reference: &str, contract: &str, body: Value) -> Answer {
        self.bridge
            .call(
                CLOSURE,
                ApiGatewayRequest::post_upload(
                    partner,
                    reference,
                    contract,
                    body.to_string().as_bytes(),
                ),
            )
            .await
    }

    /// Uploads `body` as the ticket says, then reads back what S3 stored (the version its
    /// notification carries).
    async fn upload(&self, ticket: &Value, body: Vec<u8>) -> (u16, Option<StoredObject>) {
        install_crypto_provider();
        let mut request = reqwest::Client::new()
            .put(ticket["url"].as_str().unwrap())
            .body(body.clone());
        for (name, value) in ticket["headers"].as_object().unwrap() {
            request = request.header(name.as_str(), value.as_str().unwrap());
        }
        let status = request.send().await.unwrap().status().as_u16();
        if status != 200 {
            return (status, None);
        }
        let key = ticket["key"].as_str().unwrap();
        let head = self
            .s3
            .head_object()
            .bucket(&self.bridge.documents_bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let stored = StoredObject {
            bucket: self.bridge.documents_bucket.clone(),
            key: key.to_string(),
            size: body.len(),
            etag: head.e_tag().unwrap_or_default().trim_matches('"').into(),
            version: head.version_id().unwrap_or_default().into(),
        };
        (status, Some(stored))
    }

    async fn grants(&self) -> usize {
        self.bridge
            .items()
            .await
            .iter()
            .filter(|item| item["sk"].as_s().unwrap() == "GRANT")
            .count()
    }
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url.split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| {
            (
                name.to_string(),
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_partner_uploads_with_the_signed_put_and_the_quitus_reaches_intent_under_its_name() {
    let uploads = uploads().await;
    assert_eq!(uploads.bridge.post(SEED_OPENING).await.status, 201);
    let pdf = pdf_bytes(40_000);

    let answer = uploads
        .ask(
            "partner-a",
            "INTER-0500",
            "contract1",
            json!({"fileName": "quitus signé.pdf", "size": pdf.len()}),
        )
        .await;

    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let ticket = &answer.body;
    assert_eq!(ticket["method"], "PUT");
    assert_eq!(ticket["headers"]["content-type"], "application/pdf");
    assert_eq!(ticket["headers"]["content-length"], pdf.len().to_string());
    let key = ticket["key"].as_str().unwrap();
    assert!(
        key.starts_with("quitus/contract1/INTER-0500/") && key.ends_with("-quitus signé.pdf"),
        "{key}"
    );
    // Signed for that size and type, a few minutes only.
    let query = query_of(ticket["url"].as_str().unwrap());
    let signed = &query["X-Amz-SignedHeaders"];
    assert!(
        signed.contains("content-length") && signed.contains("content-type"),
        "{signed}"
    );
    assert_eq!(query["X-Amz-Expires"], "300");
    assert_eq!(uploads.grants().await, 1);

    let (status, object) = uploads.upload(ticket, pdf.clone()).await;
    assert_eq!(status, 200);
    let summary = document_forwarder::handle(&uploads.forwarder, s3_event(&[&object.unwrap()]))
        .await
        .unwrap();

    assert_eq!(summary.published, 1, "{summary:?}");
    let received = uploads.bridge.simulator.received_documents();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].file_name.as_deref(), Some("quitus signé.pdf"));
    assert_eq!(received[0].file_size, pdf.len() as u64);
}

/// The partner's PUT sent a second time (its HTTP client retried after a timeout, or a
/// double click within the URL's five minutes): the bucket keeps the first (the URL is
/// signed with `If-None-Match: *`, S3 answers 412), so one quitus reaches Intent, not two
/// versions of the key each forwarded.
#[tokio::test]
async fn an_upload_sent_twice_is_stored_once_and_forwarded_once() {
    let uploads = uploads().await;
    assert_eq!(uploads.bridge.post(SEED_OPENING).await.status, 201);
    let pdf = pdf_bytes(20_000);
    let answer = uploads
        .ask(
            "partner-a",
            "INTER-0500",
            "contract1",
            json!({"fileName": "quitus.pdf", "size": pdf.len()}),
        )
        .await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let ticket = &answer.body;

    let (first, object) = uploads.upload(ticket, pdf.clone()).await;
    let (second, again) = uploads.upload(ticket, pdf.clone()).await;

    assert_eq!(first, 200);
    assert_eq!(second, 412, "the key is written once");
    let objects: Vec<StoredObject> = [object, again].into_iter().flatten().collect();
    let refs: Vec<&StoredObject> = objects.iter().collect();
    document_forwarder::handle(&uploads.forwarder, s3_event(&refs))
        .await
        .unwrap();
    assert_eq!(uploads.bridge.simulator.received_documents().len(), 1);
    assert_eq!(ticket["headers"]["if-none-match"], "*");
}

#[tokio::test]
async fn a_pdf_written_to_the_bucket_without_a_grant_is_rejected_and_the_owner_can_still_cancel() {
    let uploads = uploads().await;
    uploads.bridge.post(SEED_OPENING).await;
    uploads.bridge.tap.drain().await;
    // Someone with write access to the bucket, but no grant.
    let object = put_object(
        &uploads.s3,
        &uploads.bridge.documents_bucket,
        "quitus/contract1/INTER-0500/quitus.pdf",
        pdf_bytes(2_000),
        &[],
    )
    .await;

    let summary = document_forwarder::handle(&uploads.forwarder, s3_event(&[&object]))
        .await
        .unwrap();

    assert_eq!(summary.rejected, 1, "{summary:?}");
    assert!(uploads.bridge.simulator.received_documents().is_empty());
    let events = uploads.bridge.tap.drain().await;
    let rejected = events
        .iter()
        .find(|event| event["detail-type"] == "DocumentRejected")
        .expect("a DocumentRejected event");
    assert_eq!(rejected["detail"]["reason"], "not_authorized");
    // Nothing attached: the owner's refusal at reception still goes through.
    let canceled = uploads.bridge.close("INTER-0500", CLOSURE_CANCELED).await;
    assert!(
        [200, 202].contains(&canceled.status),
        "{} {:#}",
        canceled.status,
        canceled.body
    );
}

/// S3 refuses a body of another size than the signed `Content-Length` (moto does not
/// check signatures); behind it, the forwarder refuses an object whose size is not the
/// granted one.
#[tokio::test]
async fn an_object_of_another_size_than_granted_is_rejected() {
    let uploads = uploads().await;
    uploads.bridge.post(SEED_OPENING).await;
    let answer = uploads
        .ask(
            "partner-a",
            "INTER-0500",
            "contract1",
            json!({"fileName": "q.pdf", "size": 1_000}),
        )
        .await;
    let mut ticket = answer.body.clone();
    ticket["headers"]["content-length"] = json!("2000");
    let (status, object) = uploads.upload(&ticket, pdf_bytes(2_000)).await;
    assert_eq!(status, 200, "moto takes it: it checks no signature");

    let summary = document_forwarder::handle(&uploads.forwarder, s3_event(&[&object.unwrap()]))
        .await
        .unwrap();

    assert_eq!(summary.rejected, 1, "{summary:?}");
    assert!(uploads.bridge.simulator.received_documents().is_empty());
}

#[tokio::test]
async fn only_the_owner_gets_an_upload_and_bad_requests_are_named() {
    let uploads = uploads().await;
    uploads.bridge.post(SEED_OPENING).await;
    let ok = json!({"fileName": "q.pdf", "size": 1_000});

    // Not the partner's contract; another partner's file on a shared contract; no file.
    let cases = [
        ("partner-b", "INTER-0500", "contract1", ok.clone(), 403),
        ("partner-a", "INTER-0404", "contract1", ok.clone(), 404),
        ("partner-a", "INTER/0500", "contract1", ok.clone(), 404),
        (
            "partner-a",
            "INTER-0500",
            "contract1",
            json!({"fileName": "q.exe", "size": 0}),
            422,
        ),
        (
            "partner-a",
            "INTER-0500",
            "contract1",
            json!({"fileName": "q.pdf", "size": 60_000_000}),
            422,
        ),
    ];
    for (partner, reference, contract, body, status) in cases {
        let answer = uploads
            .ask(partner, reference, contract, body.clone())
            .await;
        assert_problem(&answer, status);
    }
    let invalid = uploads
        .ask(
            "partner-a",
            "INTER-0500",
            "contract1",
            json!({"fileName": "Dupont.exe", "size": 0}),
        )
        .await;
    let paths: Vec<&str> = invalid.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["$.fileName", "$.size"]);
    assert!(!invalid.body.to_string().contains("Dupont"));

    // partner-c shares contract9 with partner-a: partner-a's file there is not found.
    let shared = SEED_OPENING
        .replace("contract1", "contract9")
        .replace("INTER-0500", "INTER-0900");
    assert_eq!(uploads.bridge.post(&shared).await.status, 201);
    let answer = uploads
        .ask("partner-c", "INTER-0900", "contract9", ok.clone())
        .await;
    assert_eq!(answer.status, 404);
    assert!(answer.body.get("currentState").is_none());

    // A canceled file has no intervention to prove.
    uploads.bridge.close("INTER-0500", CLOSURE_CANCELED).await;
    let answer = uploads
        .ask("partner-a", "INTER-0500", "contract1", ok)
        .await;
    assert_eq!(answer.status, 409, "{:#}", answer.body);
    assert_eq!(
        answer.body["currentState"],
        json!({"state": "closed", "outcome": "canceled"})
    );

    assert_eq!(uploads.grants().await, 0, "no refused request left a grant");
}

#[tokio::test]
async fn an_unauthenticated_request_is_401() {
    let uploads = uploads().await;
    let mut request = ApiGatewayRequest::post_upload("x", "INTER-0500", "contract1", b"{}");
    request.client_id = None;
    let answer = uploads.bridge.call(CLOSURE, request).await;
    assert_eq!(answer.status, 401);
    assert!(answer.headers.contains_key("www-authenticate"));
}

/// The upload URL the functions sign without an S3 client is the one the S3 SDK's own
/// presigner makes for the same inputs at the same instant (same host and path, same
/// query parameters, same signature): path-style on the emulator's endpoint and
/// virtual-hosted on AWS's, with temporary credentials, for a key with spaces, accents
/// and a `#`.
#[tokio::test]
async fn upload_urls_are_signed_exactly_as_the_s3_sdk_signs_them() {
    use aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
    use aws_sdk_s3::presigning::PresigningConfig;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000);
    let lifetime = std::time::Duration::from_secs(300);
    let key = "quitus/contract1/INTER-0500/2c1f-quitus signé #2 (final).pdf";
    let size = 48_213_u64;
    let emulator = sdk_config().await;
    let aws = aws_config::SdkConfig::builder()
        .region(Region::new("eu-west-3"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "ASIAEXAMPLE",
            "secret/with+chars",
            Some("session-token/with=chars".into()),
            None,
            "test",
        )))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    for (sdk, path_style, bucket) in [
        (&emulator, true, "oncall-documents"),
        (&aws, false, "oncall-documents"),
        (&aws, false, "dotted.bucket.name"),
    ] {
        let ours = aws_wiring::S3UploadSigner::new(sdk, bucket, path_style)
            .unwrap()
            .presign_put(key, size, lifetime, at)
            .await
            .unwrap();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(path_style)
                .build(),
        );
        let theirs = s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/pdf")
            .content_length(size as i64)
            .if_none_match("*")
            .presigned(
                PresigningConfig::builder()
                    .start_time(at)
                    .expires_in(lifetime)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(ours.url, theirs.uri(), "{bucket}");
        assert!(
            query_of(&ours.url).contains_key("X-Amz-Signature"),
            "{}",
            ours.url
        );
        assert_eq!(ours.method, theirs.method());
        let mut headers = ours.headers.clone();
        headers.sort();
        assert_eq!(
            headers,
            [
                ("content-length".to_string(), size.to_string()),
                ("content-type".to_string(), "application/pdf".to_string()),
                ("if-none-match".to_string(), "*".to_string())
            ]
        );
    }
}
