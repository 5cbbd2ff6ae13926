//! The adapters every AWS function shares (the table, the bus, Intent), built once per
//! execution environment from one `SdkConfig`.

use dynamodb_store::DynamoDbStore;
use eventbridge_publisher::EventBridgePublisher;
use intent_client::{IntentClient, IntentConfig, IntentError};

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

/// The store, the Intent client (its connection pool and token cache) and the domain
/// event publisher.
pub struct CoreAdapters {
    pub store: DynamoDbStore,
    pub intent: IntentClient,
    pub events: EventBridgePublisher,
}

impl CoreAdapters {
    pub fn new(sdk: &crate::SdkConfig, config: CoreConfig) -> Result<Self, IntentError> {
        let intent = match config.intent_secret_arn {
            Some(arn) => IntentClient::with_secret_source(
                config.intent,
                std::sync::Arc::new(
                    crate::SecretsManagerSecret::new(sdk, arn).map_err(IntentError::Protocol)?,
                ),
            )?,
            None => IntentClient::new(config.intent)?,
        };
        Ok(Self {
            store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table_name),
            intent,
            events: EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(sdk),
                config.event_bus_name,
                config.event_source,
            ),
        })
    }
}
