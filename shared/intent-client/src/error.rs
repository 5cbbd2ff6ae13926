use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// Why a call to Intent did not succeed. Messages carry status codes and Intent's error
/// codes, never request bodies (they hold tenants' personal data).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntentError {
    /// A 4xx other than 401/408/429: the request itself is wrong; sending it again will
    /// not help.
    /// `message` is kept for the record but never displayed: Intent's messages may echo
    /// the values they refuse (tenants' personal data), and Display ends up in logs.
    #[error("Intent rejected the request with HTTP {status}{}", describe(.code))]
    Rejected {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// 503, 429 or 408: Intent cannot take it now (refused before acting on it).
    #[error("Intent is unavailable: HTTP {status}")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Another 5xx (500, 502, 504…): Intent, or a gateway in front of it, failed once the
    /// request had arrived; a gateway's 502/504 in particular comes while Intent may go on
    /// and apply it. Read back before sending again, as after a lost answer.
    #[error("Intent failed with HTTP {status} (the request may have been applied)")]
    ServerFailed { status: u16 },
    /// The request never reached Intent: connection refused, DNS, TLS.
    #[error("Intent could not be reached: {0}")]
    Transport(String),
    /// The request left but its answer did not come back (a timeout, a connection lost
    /// mid-answer): Intent may have applied it. Never sent again blindly.
    #[error("Intent's answer was lost (the request may have been applied): {0}")]
    AnswerLost(String),
    /// Intent does not know the intervention (yet): its opening may still be on its way.
    #[error("Intent does not know the intervention: HTTP {status}{}", describe(.code))]
    UnknownIntervention { status: u16, code: Option<String> },
    /// Still 401 with a fresh token, or the token endpoint refused our credentials.
    #[error("Intent refused our credentials: {0}")]
    Authentication(String),
    /// A 3xx, never followed (the bearer token or the secret would go along). Whether
    /// Intent applied the request is not known (a 303 after a POST says it did, a gateway
    /// sending callers to a maintenance page that it did not): read back before sending
    /// again, as after a lost answer.
    #[error("Intent answered HTTP {status} (a redirection, not followed)")]
    Redirected { status: u16 },
    /// Intent answered something we cannot understand.
    #[error("unexpected answer from Intent: {0}")]
    Protocol(String),
    /// The document to upload could not be read from its source.
    #[error("the document could not be read: {detail}")]
    DocumentUnreadable { missing: bool, detail: String },
}

/// As `Display`, but for the variant's name: Intent's `message` of a rejection (which may
/// echo the refused values) is left out here too.
impl std::fmt::Debug for IntentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let variant = match self {
            IntentError::Rejected { .. } => "Rejected",
            IntentError::Unavailable { .. } => "Unavailable",
            IntentError::ServerFailed { .. } => "ServerFailed",
            IntentError::Transport(_) => "Transport",
            IntentError::AnswerLost(_) => "AnswerLost",
            IntentError::UnknownIntervention { .. } => "UnknownIntervention",
            IntentError::Authentication(_) => "Authentication",
            IntentError::Redirected { .. } => "Redirected",
            IntentError::Protocol(_) => "Protocol",
            IntentError::DocumentUnreadable { .. } => "DocumentUnreadable",
        };
        write!(f, "{variant}({self})")
    }
}

fn describe(code: &Option<String>) -> String {
    code.as_ref()
        .map(|code| format!(" ({code})"))
        .unwrap_or_default()
}

impl IntentError {
    /// Worth another attempt within the same delivery (after a backoff): nothing reached
    /// Intent. A lost answer is not: the request may have been applied.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IntentError::Unavailable { .. }
                | IntentError::Transport(_)
                | IntentError::DocumentUnreadable { missing: false, .. }
        )
    }

    /// The request may have been applied by Intent although no success came back.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            IntentError::AnswerLost(_)
                | IntentError::Redirected { .. }
                | IntentError::ServerFailed { .. }
        )
    }

    /// Intent refused it as conflicting with what it holds (409): maybe already there.
    pub fn is_conflict(&self) -> bool {
        matches!(self, IntentError::Rejected { status: 409, .. })
    }

    /// The domain's view of this failure after `attempts` HTTP attempts.
    pub fn into_failure(self, attempts: u32) -> oncall_domain::ports::DeliveryFailure {
        oncall_domain::ports::DeliveryFailure {
            retryable: self.is_retryable_later(),
            outcome_unknown: self.outcome_unknown(),
            conflict: self.is_conflict(),
            source_missing: matches!(self, IntentError::DocumentUnreadable { missing: true, .. }),
            attempts,
            detail: self.to_string(),
        }
    }

    /// Worth sending again in a later run: everything but a rejection of the request.
    pub fn is_retryable_later(&self) -> bool {
        !matches!(
            self,
            IntentError::Rejected { .. } | IntentError::DocumentUnreadable { missing: true, .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IntentError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A request that got no HTTP answer: a connection that could not be made never reached
/// Intent; anything else (a timeout, a connection lost after the request left) may have
/// been applied.
pub(crate) fn transport_error(error: reqwest::Error) -> IntentError {
    let never_sent = error.is_connect() || body_not_sent(&error);
    let kind = if error.is_timeout() {
        "timed out"
    } else if never_sent {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's Display names the URL (no body, no credentials): keep the chain short.
    let mut detail = kind.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        source = cause.source();
    }
    if never_sent {
        IntentError::Transport(detail)
    } else {
        IntentError::AnswerLost(detail)
    }
}

/// Whether the request's body could not be written in full (the server answered early and
/// closed, as a hub refusing an upload with 503 does): an incomplete request cannot have
/// been applied. hyper tells it only by its message.
fn body_not_sent(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause
            .to_string()
            .starts_with("error writing a body to connection")
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// `Retry-After` as delay-seconds or an HTTP-date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_rejections_message_is_in_no_rendering() {
        let error = IntentError::Rejected {
            status: 400,
            code: Some("validation_error".into()),
            message: Some("le titre « Pierre DUPONT » est refusé".into()),
        };
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("DUPONT"), "{text}");
            assert!(text.contains("validation_error"), "{text}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a past date means now"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
