//! The adapters every AWS function shares (the table, the bus, Intent, and for the
//! forwarder and the closer the documents bucket), built once per execution environment
//! from one `SdkConfig`.

use aws_signing::{AwsJsonService, S3Endpoint};
use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::{IntentClient, IntentConfig, IntentError};
use s3_documents::S3Documents;

/// Where the shared adapters point.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub table_name: String,
    pub event_bus_name: String,
    pub event_source: String,
    pub intent: IntentConfig,
    /// The AWS Secrets Manager secret holding Intent's client secret
    /// (`INTENT_CLIENT_SECRET_ARN`); without it, `intent.client_secret` is used.
    pub intent_secret_arn: Option<String>,
}

impl CoreConfig {
    /// `TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE` (default
    /// `oncall-bridge.interventions`) and the `INTENT_*` variables.
    pub fn from_settings(
        settings: &settings::Settings,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self {
            table_name: settings.required("TABLE_NAME")?,
            event_bus_name: settings.required("EVENT_BUS_NAME")?,
            event_source: settings.text_or("EVENT_SOURCE", "oncall-bridge.interventions"),
            intent: IntentConfig::from_settings(settings)?,
            intent_secret_arn: settings.text("INTENT_CLIENT_SECRET_ARN"),
        })
    }
}

/// Why the shared adapters could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error(transparent)]
    Intent(#[from] IntentError),
    /// The AWS side: no region or credentials for a signed call, the HTTP client.
    #[error("{0}")]
    Aws(String),
}

/// The store, the Intent client (its connection pool and token cache) and the domain
/// event publisher.
pub struct CoreAdapters {
    pub store: DynamoDbStore,
    pub intent: IntentClient,
    pub events: EventBridgePublisher,
    /// The HTTP client of the calls signed by hand (the secret, the bus, S3 reads).
    signed_calls: reqwest::Client,
}

impl CoreAdapters {
    pub fn new(sdk: &crate::SdkConfig, config: CoreConfig) -> Result<Self, AdapterError> {
        // One HTTP client for every call signed by hand: the secret, the bus, S3 reads.
        let signed_calls = crate::http_client::aws_reqwest_client().map_err(AdapterError::Aws)?;
        let intent = match config.intent_secret_arn {
            Some(arn) => IntentClient::with_secret_source(
                config.intent,
                std::sync::Arc::new(
                    crate::SecretsManagerSecret::new(sdk, &signed_calls, arn)
                        .map_err(AdapterError::Aws)?,
                ),
            )?,
            None => IntentClient::new(config.intent)?,
        };
        let events = event_publisher(
            sdk,
            &signed_calls,
            config.event_bus_name,
            config.event_source,
        )
        .map_err(AdapterError::Aws)?;
        Ok(Self {
            store: dynamodb_store(sdk, &signed_calls, config.table_name)
                .map_err(AdapterError::Aws)?,
            intent,
            events,
            signed_calls,
        })
    }

    /// The documents bucket's reader (the forwarder, the closer), on the bus's HTTP
    /// client; `force_path_style` puts the bucket in the path (the emulators).
    pub fn documents_reader(
        &self,
        sdk: &crate::SdkConfig,
        force_path_style: bool,
    ) -> Result<S3Documents, String> {
        documents_reader(sdk, &self.signed_calls, force_path_style)
    }
}

/// The table `table`, in the region and with the credentials of `sdk`, its calls signed
/// by hand on `http` ([`crate::aws_reqwest_client`]).
pub fn dynamodb_store(
    sdk: &crate::SdkConfig,
    http: &reqwest::Client,
    table: impl Into<String>,
) -> Result<DynamoDbStore, String> {
    let dynamodb = AwsJsonService::new(sdk, http.clone(), aws_signing::DYNAMODB)?;
    Ok(DynamoDbStore::new(dynamodb, table))
}

/// Domain events from `source` onto `bus_name`, in the region and with the credentials of
/// `sdk`, `PutEvents` signed by hand on `http` ([`crate::aws_reqwest_client`]).
pub fn event_publisher(
    sdk: &crate::SdkConfig,
    http: &reqwest::Client,
    bus_name: impl Into<String>,
    source: impl Into<String>,
) -> Result<EventBridgePublisher, String> {
    let eventbridge = AwsJsonService::new(sdk, http.clone(), aws_signing::EVENTBRIDGE)?;
    Ok(EventBridgePublisher::new(eventbridge, bus_name, source))
}

/// The documents bucket's objects, read with requests signed by hand on `http`;
/// `force_path_style` puts the bucket in the path (the emulators).
pub fn documents_reader(
    sdk: &crate::SdkConfig,
    http: &reqwest::Client,
    force_path_style: bool,
) -> Result<S3Documents, String> {
    Ok(S3Documents::new(
        http.clone(),
        S3Endpoint::new(sdk, force_path_style, "to read documents with")?,
    ))
}
