//! Intent's client secret in AWS Secrets Manager (moto): no secret in any function's
//! configuration, read once per execution environment, and again when the token endpoint
//! answers `invalid_client` after a rotation.

use aws_wiring::SecretsManagerSecret;
use intent_client::{ClientSecretSource, IntentClient};
use oncall_domain::intent_examples::SEED_OPENING;
use oncall_domain::validation::parse_intervention_log;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use system_tests::*;

async fn secret_holding(value: &str) -> (aws_sdk_secretsmanager::Client, String) {
    let sdk = sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let created = secrets
        .create_secret()
        .name(unique("intent-client-secret"))
        .secret_string(value)
        .send()
        .await
        .unwrap();
    (secrets, created.arn().unwrap().to_string())
}

/// Counts reads; after the first one, the secret is rotated (in Secrets Manager, as an
/// operator would) before Intent is asked for a token.
struct RotatedAfterFirstRead {
    inner: SecretsManagerSecret,
    rotate_to: String,
    reads: AtomicUsize,
}

impl ClientSecretSource for RotatedAfterFirstRead {
    fn read_secret(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>
    {
        Box::pin(async move {
            let value = self.inner.read_secret().await;
            if self.reads.fetch_add(1, Ordering::SeqCst) == 0 {
                self.inner
                    .client
                    .put_secret_value()
                    .secret_id(&self.inner.secret_id)
                    .secret_string(&self.rotate_to)
                    .send()
                    .await
                    .unwrap();
            }
            value
        })
    }
}

#[tokio::test]
async fn the_secret_is_read_from_secrets_manager_once_and_again_after_invalid_client() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    // Secrets Manager still holds the old secret; Intent already wants the new one.
    let (secrets, arn) = secret_holding("the-old-secret").await;
    let source = Arc::new(RotatedAfterFirstRead {
        inner: SecretsManagerSecret {
            client: secrets,
            secret_id: arn,
        },
        rotate_to: simulator.client_secret(),
        reads: AtomicUsize::new(0),
    });
    let mut config = fast_intent_config(&simulator);
    config.client_secret = String::new();
    let client = IntentClient::with_secret_source(config, source.clone()).unwrap();
    let log = |reference: &str| {
        parse_intervention_log(SEED_OPENING.replace("INTER-0500", reference).as_bytes()).unwrap()
    };
    client.post_intervention_log(&log("R-1")).await.unwrap();
    assert_eq!(
        source.reads.load(Ordering::SeqCst),
        2,
        "read, refused, read again"
    );
    client.post_intervention_log(&log("R-2")).await.unwrap();
    client.post_intervention_log(&log("R-3")).await.unwrap();
    assert_eq!(source.reads.load(Ordering::SeqCst), 2, "then kept");
    assert_eq!(simulator.received_logs().len(), 3);
}

#[tokio::test]
async fn a_missing_secret_is_an_authentication_error_that_names_no_value() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let (secrets, _) = secret_holding("unused").await;
    let mut config = fast_intent_config(&simulator);
    config.client_secret = String::new();
    let client = IntentClient::with_secret_source(
        config,
        Arc::new(SecretsManagerSecret {
            client: secrets,
            secret_id: "arn:aws:secretsmanager:eu-west-3:123456789012:secret:nowhere".into(),
        }),
    )
    .unwrap();
    let (error, _) = client
        .post_intervention_log(&parse_intervention_log(SEED_OPENING.as_bytes()).unwrap())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the client secret could not be read"),
        "{error}"
    );
    assert!(simulator.received_logs().is_empty());
}
