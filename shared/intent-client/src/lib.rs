//! Adapter to the Intent hub's API: OAuth2 client credentials with a cached token,
//! `POST operations/v2/interventions/logs` with bounded, jittered retries, typed errors.

mod client;
mod config;
mod error;
mod token;

pub use client::{ClientSecretSource, IntentClient, build_http_client, tls_client_config};
pub use config::{ConfigError, IntentConfig, RetryPolicy, is_acceptable_url, is_local_url};
pub use error::IntentError;
