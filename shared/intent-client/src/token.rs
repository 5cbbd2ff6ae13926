//! OAuth2 client-credentials token, cached for the execution environment: fetched once,
//! reused until shortly before `expires_in`, and refreshed at most once per 401.

use crate::error::IntentError;
use serde::Deserialize;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Mutex;

#[derive(Clone)]
pub(crate) struct Token {
    pub value: String,
    refresh_at: Instant,
    /// The same moment on the wall clock: the monotonic clock may stand still while a
    /// Lambda execution environment is frozen between invocations, the wall clock does
    /// not (a token kept across a long freeze would be served expired).
    refresh_at_wall: SystemTime,
}

impl Token {
    fn new(value: String, lifetime: Duration) -> Self {
        let fresh_for = lifetime - refresh_margin(lifetime);
        Self {
            value,
            refresh_at: Instant::now() + fresh_for,
            refresh_at_wall: SystemTime::now() + fresh_for,
        }
    }

    /// Still to be used, by both clocks.
    fn is_fresh(&self) -> bool {
        Instant::now() < self.refresh_at && SystemTime::now() < self.refresh_at_wall
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

/// Without `expires_in`, assume a short life rather than none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// How long before expiry the token is renewed: a tenth of its life, at most a minute.
/// Bounds on a token's announced lifetime.
const MIN_LIFETIME_SECS: u64 = 1;
const MAX_LIFETIME_SECS: u64 = 24 * 3600;

fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(60))
}

pub(crate) struct TokenCache {
    current: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    token: Option<Token>,
    /// The last fetch's failure and when it ended: what the callers that waited for that
    /// fetch are answered.
    failure: Option<(Instant, IntentError)>,
}

impl TokenCache {
    pub fn new() -> Self {
        Self {
            current: Mutex::new(Cached::default()),
        }
    }

    /// A valid token, fetched if none is cached or the cached one is about to expire.
    /// The lock is held while fetching, so concurrent callers share one fetch, and its
    /// outcome: a caller that was waiting while it failed gets its failure rather than
    /// asking again (a failing token endpoint is asked once per round of callers, not once
    /// per caller, one after the other).
    pub async fn get(
        &self,
        http: &reqwest::Client,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Token, IntentError> {
        let asked_at = Instant::now();
        let mut current = self.current.lock().await;
        if let Some(token) = current.token.as_ref()
            && token.is_fresh()
        {
            return Ok(token.clone());
        }
        if let Some((failed_at, error)) = &current.failure
            && *failed_at >= asked_at
        {
            return Err(error.clone());
        }
        match fetch(http, token_url, client_id, client_secret).await {
            Ok(token) => {
                current.token = Some(token.clone());
                current.failure = None;
                Ok(token)
            }
            Err(error) => {
                current.failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Forgets `stale` (unless another caller already replaced it).
    pub async fn invalidate(&self, stale: &Token) {
        let mut current = self.current.lock().await;
        if current
            .token
            .as_ref()
            .is_some_and(|t| t.value == stale.value)
        {
            current.token = None;
        }
    }
}

async fn fetch(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<Token, IntentError> {
    let response = http
        .post(token_url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ])
        .send()
        .await
        .map_err(|error| match crate::error::transport_error(error) {
            // Asking for a token twice is harmless: a lost answer is just unreachable.
            IntentError::AnswerLost(detail) => IntentError::Transport(detail),
            other => other,
        })?;
    let status = response.status();
    if status.is_success() {
        let body: TokenResponse = response
            .json()
            .await
            .map_err(|e| IntentError::Protocol(format!("token response: {e}")))?;
        if let Some(kind) = &body.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(IntentError::Protocol(format!(
                "token type {kind:?} is not Bearer"
            )));
        }
        // Clamped: a lifetime of years (or of u64::MAX seconds) must not overflow the
        // clock, nor keep a token past a day; a zero lifetime is taken as one second.
        let lifetime = body
            .expires_in
            .map(|seconds| Duration::from_secs(seconds.clamp(MIN_LIFETIME_SECS, MAX_LIFETIME_SECS)))
            .unwrap_or(DEFAULT_LIFETIME);
        tracing::debug!(lifetime_s = lifetime.as_secs(), "Intent token obtained");
        return Ok(Token::new(body.access_token, lifetime));
    }
    let retry_after = crate::error::retry_after(response.headers());
    let code = status.as_u16();
    let oauth: Option<OAuthError> = response.json().await.ok();
    let described = oauth
        .map(|e| {
            format!(
                "{}{}",
                e.error.unwrap_or_default(),
                e.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    if status.is_server_error() || code == 429 || code == 408 {
        Err(IntentError::Unavailable {
            status: code,
            retry_after,
        })
    } else {
        Err(IntentError::Authentication(format!(
            "token endpoint answered HTTP {code} {described}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token is stale once either clock says so: the monotonic one may have stood
    /// still through a freeze of the execution environment.
    #[test]
    fn a_token_is_stale_by_the_wall_clock_too() {
        let token = Token::new("t".into(), Duration::from_secs(3600));
        assert!(token.is_fresh());
        let frozen_through_the_night = Token {
            refresh_at_wall: SystemTime::now() - Duration::from_secs(1),
            ..token.clone()
        };
        assert!(!frozen_through_the_night.is_fresh());
        let past = Token {
            refresh_at: Instant::now(),
            ..token
        };
        assert!(!past.is_fresh());
    }

    #[test]
    fn the_refresh_margin_is_a_tenth_capped_at_a_minute() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(100)),
            Duration::from_secs(10)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
    }
}
