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
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
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
                self.secrets
                    .put_secret_value()
                    .secret_id(&self.secret_id)
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
        inner: SecretsManagerSecret::new(
            &sdk_config().await,
            &aws_wiring::aws_reqwest_client().unwrap(),
            &arn,
        )
        .unwrap(),
        secrets,
        secret_id: arn,
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

/// Gives `old` on its first read, `new` after; counts its reads.
struct OldThenNew {
    old: String,
    new: String,
    reads: AtomicUsize,
}

impl ClientSecretSource for OldThenNew {
    fn read_secret(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>
    {
        Box::pin(async move {
            // Slow enough for every caller to meet the refusal before a re-read ends.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok(match self.reads.fetch_add(1, Ordering::SeqCst) {
                0 => self.old.clone(),
                _ => self.new.clone(),
            })
        })
    }
}

/// Eight calls at once meet Intent's `invalid_client` after a rotation: the secret is read
/// again once for all of them, not once each.
#[tokio::test]
async fn callers_refused_together_after_a_rotation_share_one_new_read_of_the_secret() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    let source = Arc::new(OldThenNew {
        old: "the-old-secret".into(),
        new: simulator.client_secret(),
        reads: AtomicUsize::new(0),
    });
    let mut config = fast_intent_config(&simulator);
    config.client_secret = String::new();
    let client = IntentClient::with_secret_source(config, source.clone()).unwrap();
    let logs: Vec<_> = (0..8)
        .map(|n| {
            parse_intervention_log(
                SEED_OPENING
                    .replace("INTER-0500", &format!("R-{n}"))
                    .as_bytes(),
            )
            .unwrap()
        })
        .collect();

    let sent =
        futures_util::future::join_all(logs.iter().map(|log| client.post_intervention_log(log)))
            .await;

    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    assert_eq!(
        source.reads.load(Ordering::SeqCst),
        2,
        "read, refused, read again once"
    );
}

#[tokio::test]
async fn a_missing_secret_is_an_authentication_error_that_names_no_value() {
    install_crypto_provider();
    let simulator = IntentSimulator::start(SimulatorConfig::default())
        .await
        .unwrap();
    secret_holding("unused").await;
    let mut config = fast_intent_config(&simulator);
    config.client_secret = String::new();
    let client = IntentClient::with_secret_source(
        config,
        Arc::new(
            SecretsManagerSecret::new(
                &sdk_config().await,
                &aws_wiring::aws_reqwest_client().unwrap(),
                "arn:aws:secretsmanager:eu-west-3:123456789012:secret:nowhere",
            )
            .unwrap(),
        ),
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

/// The functions' own `SdkConfig` (Lambda's variables, no provider chain) reads the secret
/// from the endpoint its `AWS_ENDPOINT_URL` names (moto here), signed with its
/// credentials: the value, trimmed, and for a secret that does not exist an error that
/// names the secret and Secrets Manager's reason.
#[tokio::test]
async fn the_functions_read_the_secret_with_one_signed_call_from_their_own_config() {
    let (_, arn) = secret_holding("  s3cr3t-from-moto\n").await;
    let sdk = aws_wiring::lambda_aws_config().expect("the emulators' variables");
    let source =
        SecretsManagerSecret::new(&sdk, &aws_wiring::aws_reqwest_client().unwrap(), &arn).unwrap();
    assert_eq!(source.read_secret().await.unwrap(), "s3cr3t-from-moto");

    let missing = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:nowhere-AbCdEf";
    let error =
        SecretsManagerSecret::new(&sdk, &aws_wiring::aws_reqwest_client().unwrap(), missing)
            .unwrap()
            .read_secret()
            .await
            .unwrap_err();
    assert!(error.contains(missing), "{error}");
    assert!(error.contains("ResourceNotFoundException"), "{error}");
}
