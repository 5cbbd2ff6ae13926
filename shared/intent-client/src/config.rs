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

/// Whether `url` names this machine (a loopback address or `localhost`).
pub fn is_local_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|parsed| parsed.host_str().map(str::to_string))
        .is_some_and(|host| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// `https://…`, or `http://` on a loopback host (the simulator, in tests and the local
/// run): the client secret and the bearer tokens never travel in clear over a network.
pub fn is_acceptable_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => is_local_url(url),
        _ => false,
    }
}

/// A missing or invalid `INTENT_*` variable.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ConfigError(#[from] pub settings::SettingError);

impl IntentConfig {
    /// The longest one call (a publication, a read) can take: each attempt may renew the
    /// token first (two requests, each within `request_timeout`), plus the pauses
    /// between attempts (at most `max_total_delay`).
    pub fn longest_call(&self) -> Duration {
        self.request_timeout * 2 * self.retry.max_attempts + self.retry.max_total_delay
    }

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
    /// and optionally `INTENT_MAX_ATTEMPTS` (1–10, default 4) and
    /// `INTENT_REQUEST_TIMEOUT_MS` (100–60000, default 10000), from the process.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&settings::Settings::from_process())
    }

    /// The same variables, from `settings`.
    pub fn from_settings(settings: &settings::Settings) -> Result<Self, ConfigError> {
        let base_url = settings.required("INTENT_BASE_URL")?;
        let token_url = settings.required("INTENT_TOKEN_URL")?;
        for (name, url) in [
            ("INTENT_BASE_URL", &base_url),
            ("INTENT_TOKEN_URL", &token_url),
        ] {
            if !is_acceptable_url(url) {
                return Err(ConfigError(settings::SettingError::Invalid {
                    name: name.to_string(),
                    expected: "an https URL (http only on a loopback address)".into(),
                    value: url.clone(),
                }));
            }
        }
        // With `INTENT_CLIENT_SECRET_ARN` (the functions), the secret is read from AWS
        // Secrets Manager at run time and is in no configuration.
        let secret = if settings.text("INTENT_CLIENT_SECRET_ARN").is_some() {
            String::new()
        } else {
            settings.required("INTENT_CLIENT_SECRET")?
        };
        Self::new(
            &base_url,
            &token_url,
            &settings.required("INTENT_CLIENT_ID")?,
            &secret,
        )
        .with_attempt_settings(settings)
    }

    /// `INTENT_MAX_ATTEMPTS` (1–10) and `INTENT_REQUEST_TIMEOUT_MS` (100–60000) from
    /// `settings` over these (what is not set keeps its value), whichever hub they are for.
    pub fn with_attempt_settings(
        mut self,
        settings: &settings::Settings,
    ) -> Result<Self, ConfigError> {
        self.retry.max_attempts =
            settings.number("INTENT_MAX_ATTEMPTS", 1..=10, self.retry.max_attempts)?;
        if let Some(millis) = settings.optional_number("INTENT_REQUEST_TIMEOUT_MS", 100..=60_000)? {
            self.request_timeout = Duration::from_millis(millis);
        }
        Ok(self)
    }

    /// Inside a partner's API request, Intent gets a shorter budget than in background
    /// runs, so the partner always has an answer (202 "pending") well within API Gateway's
    /// 30 s: unless `settings` set them, 3 attempts of at most 5 s each; at most 2 s of
    /// backoff.
    pub fn for_partner_requests(mut self, settings: &settings::Settings) -> Self {
        if settings.text("INTENT_MAX_ATTEMPTS").is_none() {
            self.retry.max_attempts = 3;
        }
        if settings.text("INTENT_REQUEST_TIMEOUT_MS").is_none() {
            self.request_timeout = Duration::from_secs(5);
            self.connect_timeout = Duration::from_secs(2);
        }
        self.retry.max_total_delay = self.retry.max_total_delay.min(Duration::from_secs(2));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_the_four_variables_and_refuses_gaps() {
        let env: HashMap<&'static str, &'static str> = [
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
        let lookup = env.clone();
        let config = IntentConfig::from_settings(&settings::Settings::from_lookup(move |k| {
            lookup.get(k).map(|v| v.to_string())
        }))
        .unwrap();
        assert_eq!(config.base_url, "https://apisandbox.hubintent.com/api");
        assert_eq!(config.retry.max_attempts, 6);
        // Six attempts of two 10 s requests, and 8 s of pauses at most.
        assert_eq!(config.longest_call(), Duration::from_secs(128));
        assert!(!format!("{config:?}").contains("secret\""));

        let missing = IntentConfig::from_settings(&settings::Settings::from_lookup(move |k| {
            (k != "INTENT_CLIENT_SECRET")
                .then(|| env.get(k).map(|v| v.to_string()))
                .flatten()
        }))
        .unwrap_err();
        assert_eq!(missing.to_string(), "INTENT_CLIENT_SECRET is required");
    }

    #[test]
    fn intent_urls_must_be_https_but_on_loopback() {
        for good in [
            "https://api.hubintent.com/api",
            "http://127.0.0.1:4010/api",
            "http://localhost:4010/oauth/token",
            "http://[::1]:4010/api",
        ] {
            assert!(is_acceptable_url(good), "{good}");
        }
        for bad in [
            "http://api.hubintent.com/api",
            "http://10.0.0.5/api",
            "ftp://api.hubintent.com",
            "api.hubintent.com",
            "",
        ] {
            assert!(!is_acceptable_url(bad), "{bad}");
        }
    }
}
