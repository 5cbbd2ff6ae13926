//! The document forwarder end to end: objects in moto's S3, events as AWS sends them,
//! DynamoDB Local, moto's EventBridge and the Intent simulator.

use aws_sdk_dynamodb::types::AttributeValue;
use document_forwarder::{Summary, handle};
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::intent_examples::SEED_OPENING;
use serde_json::json;
use sha2::{Digest, Sha256};
use system_tests::*;

struct Docs {
    bridge: Bridge,
    s3: aws_sdk_s3::Client,
    bucket: String,
    forwarder: document_forwarder::DocumentForwarder,
}

async fn docs_with(policy: DocumentPolicy) -> Docs {
    let bridge = Bridge::start().await;
    let s3 = s3_client(&bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let forwarder = bridge.forwarder(policy);
    Docs {
        bridge,
        s3,
        bucket,
        forwarder,
    }
}

async fn docs() -> Docs {
    docs_with(DocumentPolicy::default()).await
}

impl Docs {
    async fn drop_pdf(&self, key: &str, body: Vec<u8>) -> StoredObject {
        put_object(&self.s3, &self.bucket, key, body, &[]).await
    }

    async fn deliver(&self, objects: &[&StoredObject]) -> Result<Summary, String> {
        handle(&self.forwarder, s3_event(objects))
            .await
            .map_err(|e| e.to_string())
    }

    async fn object_item(
        &self,
        object: &StoredObject,
    ) -> std::collections::HashMap<String, AttributeValue> {
        self.bridge
            .items()
            .await
            .into_iter()
            .find(|item| {
                item["sk"].as_s().unwrap() == "OBJECT"
                    && item["version"].as_s().unwrap() == &object.version
                    && item["objectKey"].as_s().unwrap() == &object.key
            })
            .expect("a ledger item for the object")
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

const KEY: &str = "operator-quitus/contract1/INTER-0500/quitus-INTER-0500.pdf";

#[tokio::test]
async fn a_quitus_reaches_intent_with_every_field_and_is_recorded_on_the_file() {
    let docs = docs().await;
    assert_eq!(docs.bridge.post(SEED_OPENING).await.status, 201);
    let pdf = pdf_bytes(300_000);
    let object = docs.drop_pdf(KEY, pdf.clone()).await;
    let summary = docs.deliver(&[&object]).await.unwrap();
    assert_eq!(summary.published, 1);

    let received = docs.bridge.simulator.received_documents();
    assert_eq!(received.len(), 1);
    let document = &received[0];
    let fields: Vec<(&str, &str)> = document
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("description", "Quitus"),
            ("elementReference", "INTER-0500"),
            ("elementType", "intervention"),
            ("intent_contractReference", "contract1"),
            ("title", "quitus d'intervention"),
        ]
    );
    assert_eq!(document.file_name.as_deref(), Some("quitus-INTER-0500.pdf"));
    assert_eq!(
        document.file_content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(document.file_size, pdf.len() as u64);
    assert_eq!(document.file_sha256, sha256(&pdf));

    let file = docs
        .bridge
        .send(ApiGatewayRequest::get_file(
            "partner-a",
            "INTER-0500",
            Some("contract1"),
        ))
        .await;
    let recorded = &file.body["documents"];
    assert_eq!(recorded.as_array().unwrap().len(), 1, "{:#}", file.body);
    assert_eq!(recorded[0]["fileName"], "quitus-INTER-0500.pdf");
    assert_eq!(recorded[0]["size"], json!(pdf.len()));

    let events = docs.bridge.tap.drain().await;
    let published = events
        .iter()
        .find(|e| e["detail-type"] == "DocumentPublished")
        .expect("a DocumentPublished event");
    assert_eq!(published["detail"]["reference"], "INTER-0500");
    assert!(!published["detail"].to_string().contains("quitus-INTER"));
}

#[tokio::test]
async fn object_metadata_overrides_title_and_description() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let object = put_object(
        &docs.s3,
        &docs.bucket,
        KEY,
        pdf_bytes(2_000),
        &[
            ("title", "quitus signe"),
            ("description", "Quitus chaudiere"),
        ],
    )
    .await;
    docs.deliver(&[&object]).await.unwrap();
    let received = docs.bridge.simulator.received_documents();
    assert_eq!(received[0].fields["title"], "quitus signe");
    assert_eq!(received[0].fields["description"], "Quitus chaudiere");
}

#[tokio::test]
async fn non_ascii_metadata_s3_encodes_arrives_on_intent_as_text() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    // As S3 hands back metadata that was not ASCII: RFC 2047 encoded words.
    let object = put_object(
        &docs.s3,
        &docs.bucket,
        KEY,
        pdf_bytes(2_000),
        &[
            ("title", "=?UTF-8?B?cXVpdHVzIHNpZ27DqQ==?="),
            ("description", "=?UTF-8?Q?Quitus_chaudi=C3=A8re?="),
        ],
    )
    .await;
    docs.deliver(&[&object]).await.unwrap();
    let received = docs.bridge.simulator.received_documents();
    assert_eq!(received[0].fields["title"], "quitus signé");
    assert_eq!(received[0].fields["description"], "Quitus chaudière");
}

#[tokio::test]
async fn url_encoded_keys_with_spaces_accents_and_plus_signs() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let key = "operator-quitus/contract1/INTER-0500/quitus signé 1+1 été.pdf";
    let object = docs.drop_pdf(key, pdf_bytes(4_000)).await;
    let event = s3_event(&[&object]);
    assert_eq!(
        event.records[0].s3.object.key.as_deref(),
        Some("operator-quitus/contract1/INTER-0500/quitus+sign%C3%A9+1%2B1+%C3%A9t%C3%A9.pdf")
    );
    let summary = docs.deliver(&[&object]).await.unwrap();
    assert_eq!(summary.published, 1);
    assert_eq!(
        docs.bridge.simulator.received_documents()[0]
            .file_name
            .as_deref(),
        Some("quitus signé 1+1 été.pdf")
    );
}

#[tokio::test]
async fn a_pdf_before_its_claim_waits_in_the_ledger_and_the_resend_run_publishes_it() {
    let docs = docs().await;
    let object = docs.drop_pdf(KEY, pdf_bytes(5_000)).await;
    let summary = docs.deliver(&[&object]).await.unwrap();
    assert_eq!(summary.pending, 1, "waiting, not failed, not rejected");
    assert!(docs.bridge.simulator.received_documents().is_empty());
    assert_eq!(
        docs.object_item(&object).await["status"].as_s().unwrap(),
        "pending"
    );
    // Lambda's retries are not needed: the re-send run takes it once the claim is there.
    assert_eq!(docs.bridge.post(SEED_OPENING).await.status, 201);
    let run = docs.bridge.resend_run().await;
    assert_eq!(run.report.documents.unwrap().published, 1);
    assert_eq!(docs.bridge.simulator.received_documents().len(), 1);
    assert_eq!(
        docs.object_item(&object).await["status"].as_s().unwrap(),
        "published"
    );
    // A later delivery of the same S3 event sends nothing.
    assert_eq!(docs.deliver(&[&object]).await.unwrap().duplicates, 1);
}

#[tokio::test]
async fn a_duplicate_delivery_sends_nothing_and_a_new_version_is_a_new_document() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let first = docs.drop_pdf(KEY, pdf_bytes(3_000)).await;
    docs.deliver(&[&first]).await.unwrap();
    let again = docs.deliver(&[&first]).await.unwrap();
    assert_eq!(
        again,
        Summary {
            duplicates: 1,
            ..Summary::default()
        }
    );
    assert_eq!(docs.bridge.simulator.received_documents().len(), 1);

    let second = docs.drop_pdf(KEY, pdf_bytes(3_500)).await;
    assert_ne!(first.version, second.version);
    assert_eq!(docs.deliver(&[&second]).await.unwrap().published, 1);
    let received = docs.bridge.simulator.received_documents();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].file_size, 3_500);
}

#[tokio::test]
async fn a_non_pdf_is_rejected_for_good_recorded_and_announced() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let zip = b"PK\x03\x04 this is a zip file renamed .pdf".to_vec();
    let object = docs.drop_pdf(KEY, zip).await;
    let summary = docs.deliver(&[&object]).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            rejected: 1,
            ..Summary::default()
        }
    );
    assert!(docs.bridge.simulator.received_documents().is_empty());
    let item = docs.object_item(&object).await;
    assert_eq!(item["status"].as_s().unwrap(), "rejected");
    assert_eq!(item["reason"].as_s().unwrap(), "not_pdf");
    let events = docs.bridge.tap.drain().await;
    let rejected = events
        .iter()
        .find(|e| e["detail-type"] == "DocumentRejected")
        .expect("a DocumentRejected event");
    assert_eq!(rejected["detail"]["reason"], "not_pdf");
    // Not retried: a redelivery is a duplicate.
    assert_eq!(docs.deliver(&[&object]).await.unwrap().duplicates, 1);
}

#[tokio::test]
async fn an_oversized_object_is_rejected_for_good() {
    let docs = docs_with(DocumentPolicy {
        max_bytes: 10_000,
        ..DocumentPolicy::default()
    })
    .await;
    docs.bridge.post(SEED_OPENING).await;
    let object = docs.drop_pdf(KEY, pdf_bytes(10_001)).await;
    let summary = docs.deliver(&[&object]).await.unwrap();
    assert_eq!(summary.rejected, 1);
    assert_eq!(
        docs.object_item(&object).await["reason"].as_s().unwrap(),
        "too_large"
    );
    assert!(docs.bridge.simulator.received_documents().is_empty());
}

#[tokio::test]
async fn a_key_off_the_convention_is_rejected_for_good() {
    let docs = docs().await;
    let object = docs
        .drop_pdf("operator-quitus/contract1/stray.pdf", pdf_bytes(1_000))
        .await;
    assert_eq!(docs.deliver(&[&object]).await.unwrap().rejected, 1);
    assert_eq!(
        docs.object_item(&object).await["reason"].as_s().unwrap(),
        "key_convention"
    );
}

#[tokio::test]
async fn intent_failing_then_accepting_delivers_once_rereading_s3() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    docs.bridge
        .simulator
        .inject(Fault::status(Endpoint::Documents, 503, 2));
    let pdf = pdf_bytes(200_000);
    let object = docs.drop_pdf(KEY, pdf.clone()).await;
    let summary = docs.deliver(&[&object]).await.unwrap();
    assert_eq!(summary.published, 1, "{summary:?}");
    let received = docs.bridge.simulator.received_documents();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].file_sha256,
        sha256(&pdf),
        "the retry sent the whole file again"
    );
    let statuses: Vec<u16> = docs
        .bridge
        .simulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/documents"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 201]);
}

#[tokio::test]
async fn intent_down_for_the_whole_budget_keeps_the_quitus_waiting_until_the_resend_run() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    docs.bridge
        .simulator
        .inject(Fault::status(Endpoint::Documents, 503, 4));
    let object = docs.drop_pdf(KEY, pdf_bytes(1_500)).await;
    assert_eq!(docs.deliver(&[&object]).await.unwrap().pending, 1);
    let run = docs.bridge.resend_run().await;
    assert_eq!(run.report.documents.unwrap().published, 1);
    assert_eq!(docs.bridge.simulator.received_documents().len(), 1);
}

#[tokio::test]
async fn one_record_waiting_does_not_hide_anothers_success() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let good = docs.drop_pdf(KEY, pdf_bytes(2_000)).await;
    let early = docs
        .drop_pdf(
            "operator-quitus/contract1/INTER-0600/quitus.pdf",
            pdf_bytes(2_100),
        )
        .await;
    let first = docs.deliver(&[&good, &early]).await.unwrap();
    assert_eq!((first.published, first.pending), (1, 1));
    assert_eq!(docs.bridge.simulator.received_documents().len(), 1);
    assert_eq!(
        docs.object_item(&good).await["status"].as_s().unwrap(),
        "published"
    );

    let claim = SEED_OPENING.replace("INTER-0500", "INTER-0600");
    assert_eq!(docs.bridge.post(&claim).await.status, 201);
    let summary = docs.deliver(&[&good, &early]).await.unwrap();
    assert_eq!(
        summary,
        Summary {
            published: 1,
            duplicates: 1,
            ..Summary::default()
        }
    );
    assert_eq!(docs.bridge.simulator.received_documents().len(), 2);
}

#[tokio::test]
async fn after_a_quitus_the_file_can_no_longer_be_canceled_at_reception() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let object = docs.drop_pdf(KEY, pdf_bytes(1_000)).await;
    docs.deliver(&[&object]).await.unwrap();
    let cancel = SEED_OPENING
        .replace("\"status\": \"open\"", "\"status\": \"denied\"")
        .replace("\"event\": \"acknowledged\"", "\"event\": \"canceled\"")
        .replace("2020-03-06T10:45:23", "2020-03-06T11:00:00");
    let answer = docs.bridge.close("INTER-0500", &cancel).await;
    assert_eq!(answer.status, 409, "{:#}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("canceled at reception")
    );
}

/// A quitus forwarded after its file was closed, and one forwarded while it was open: the
/// file's items expire as one, its documents' records with them (none outlives the file,
/// none goes before it).
#[tokio::test]
async fn a_quitus_record_expires_with_its_file() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let before = docs.drop_pdf(KEY, pdf_bytes(1_000)).await;
    docs.deliver(&[&before]).await.unwrap();
    let closed = docs
        .bridge
        .close(
            "INTER-0500",
            oncall_domain::intent_examples::SEED_CLOSURE_DONE,
        )
        .await;
    assert_eq!(closed.status, 200, "{:#}", closed.body);
    let after = docs.drop_pdf(KEY, pdf_bytes(2_000)).await;
    assert_eq!(docs.deliver(&[&after]).await.unwrap().published, 1);

    let items = docs.bridge.items().await;
    let expiry_of = |prefix: &str| -> Vec<String> {
        items
            .iter()
            .filter(|item| item["sk"].as_s().unwrap().starts_with(prefix))
            .map(|item| item["expiresAt"].as_n().unwrap().clone())
            .collect()
    };
    let file = expiry_of("FILE");
    assert_eq!(file.len(), 1);
    let documents = expiry_of("DOC#");
    assert_eq!(documents.len(), 2);
    assert_eq!(documents, [file[0].clone(), file[0].clone()]);
}

#[tokio::test]
async fn a_quitus_for_a_file_canceled_at_reception_is_rejected() {
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let cancel = SEED_OPENING
        .replace("\"status\": \"open\"", "\"status\": \"denied\"")
        .replace("\"event\": \"acknowledged\"", "\"event\": \"canceled\"")
        .replace("2020-03-06T10:45:23", "2020-03-06T11:00:00");
    assert_eq!(docs.bridge.close("INTER-0500", &cancel).await.status, 200);
    let object = docs.drop_pdf(KEY, pdf_bytes(1_000)).await;
    assert_eq!(docs.deliver(&[&object]).await.unwrap().rejected, 1);
    assert_eq!(
        docs.object_item(&object).await["reason"].as_s().unwrap(),
        "file_canceled"
    );
    assert!(docs.bridge.simulator.received_documents().is_empty());
}

#[tokio::test]
async fn tenant_names_in_file_names_never_reach_a_log_line() {
    let logs = LogCapture::global();
    let docs = docs().await;
    docs.bridge.post(SEED_OPENING).await;
    let named = "operator-quitus/contract1/INTER-0500/quitus Pierre DUPONT.pdf";
    let good = docs.drop_pdf(named, pdf_bytes(2_000)).await;
    let bad = docs
        .drop_pdf(
            "operator-quitus/contract1/INTER-0500/DUPONT facture.pdf",
            b"PK\x03\x04".to_vec(),
        )
        .await;
    let early = docs
        .drop_pdf(
            "operator-quitus/contract1/INTER-0999/DUPONT.pdf",
            pdf_bytes(2_000),
        )
        .await;
    docs.bridge
        .simulator
        .inject(Fault::status(Endpoint::Documents, 503, 1));
    let _ = docs.deliver(&[&good, &bad, &early]).await;
    assert!(
        logs.text().contains("document rejected for good"),
        "the run was captured:\n{}",
        logs.text()
    );
    logs.assert_free_of(&["DUPONT", "Pierre", "facture"]);
}
