use std::time::Duration;

/// Where and how to reach Intent. Hosts are configuration, never code: tests point them
/// at the simulator, operators switch sandbox and production.
#[derive(Clone)]
pub struct IntentConfig {
    /// API base, e.g. `https://apisandbox.hubintent.com/api`.
    pub base_url: String,
    /// OAuth2 token endpoint, e.g. `https://accountsandbox.hubintent.com/oauth/token`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// Per HTTP request (not per delivery with its retries).
    pub request_timeout: Duration,
}

impl std::fmt::Debug for IntentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentConfig")
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Bounded retries with jittered exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total HTTP attempts for one delivery (the first included).
    pub max_attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The most a delivery may spend sleeping between attempts; a `Retry-After` beyond
    /// what is left ends the delivery (the event stays pending for a later run).
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
            max_total_delay: Duration::from_secs(8),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("missing or invalid environment variable {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl IntentConfig {
    pub fn new(base_url: &str, token_url: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            token_url: token_url.to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// `INTENT_BASE_URL`, `INTENT_TOKEN_URL`, `INTENT_CLIENT_ID`, `INTENT_CLIENT_SECRET`,
    /// and optionally `INTENT_MAX_ATTEMPTS`, `INTENT_REQUEST_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or(ConfigError {
                    name,
                    reason: "not set".into(),
                })
        };
        let base_url = required("INTENT_BASE_URL")?;
        let token_url = required("INTENT_TOKEN_URL")?;
        for (name, url) in [
            ("INTENT_BASE_URL", &base_url),
            ("INTENT_TOKEN_URL", &token_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError {
                    name,
                    reason: "must be an http(s) URL".into(),
                });
            }
        }
        let mut config = Self::new(
            &base_url,
            &token_url,
            &required("INTENT_CLIENT_ID")?,
            &required("INTENT_CLIENT_SECRET")?,
        );
        if let Some(value) = lookup("INTENT_MAX_ATTEMPTS") {
            config.retry.max_attempts =
                value.parse().ok().filter(|n| *n >= 1).ok_or(ConfigError {
                    name: "INTENT_MAX_ATTEMPTS",
                    reason: "must be a whole number ≥ 1".into(),
                })?;
        }
        if let Some(value) = lookup("INTENT_REQUEST_TIMEOUT_MS") {
            config.request_timeout = value
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .map(Duration::from_millis)
                .ok_or(ConfigError {
                    name: "INTENT_REQUEST_TIMEOUT_MS",
                    reason: "must be a whole number of milliseconds".into(),
                })?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_the_four_variables_and_refuses_gaps() {
        let env: HashMap<&str, &str> = [
            ("INTENT_BASE_URL", "https://apisandbox.hubintent.com/api/"),
            (
                "INTENT_TOKEN_URL",
                "https://accountsandbox.hubintent.com/oauth/token",
            ),
            ("INTENT_CLIENT_ID", "id"),
            ("INTENT_CLIENT_SECRET", "secret"),
            ("INTENT_MAX_ATTEMPTS", "6"),
        ]
        .into();
        let config = IntentConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(config.base_url, "https://apisandbox.hubintent.com/api");
        assert_eq!(config.retry.max_attempts, 6);
        assert!(!format!("{config:?}").contains("secret\""));

        let missing = IntentConfig::from_lookup(|k| {
            (k != "INTENT_CLIENT_SECRET")
                .then(|| env.get(k).map(|v| v.to_string()))
                .flatten()
        })
        .unwrap_err();
        assert_eq!(missing.name, "INTENT_CLIENT_SECRET");
    }
}
