use std::time::Duration;

/// Why a call to Intent did not succeed. Messages carry status codes and Intent's error
/// codes, never request bodies (they hold tenants' personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// 429, 408 or 5xx: Intent cannot take it now.
    #[error("Intent is unavailable: HTTP {status}")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Connection refused or dropped, DNS, TLS, timeout.
    #[error("Intent could not be reached: {0}")]
    Transport(String),
    /// Still 401 with a fresh token, or the token endpoint refused our credentials.
    #[error("Intent refused our credentials: {0}")]
    Authentication(String),
    /// Intent answered something we cannot understand.
    #[error("unexpected answer from Intent: {0}")]
    Protocol(String),
    /// The document to upload could not be read from its source.
    #[error("the document could not be read: {detail}")]
    DocumentUnreadable { missing: bool, detail: String },
}

fn describe(code: &Option<String>) -> String {
    code.as_ref()
        .map(|code| format!(" ({code})"))
        .unwrap_or_default()
}

impl IntentError {
    /// Worth another attempt within the same delivery (after a backoff).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IntentError::Unavailable { .. }
                | IntentError::Transport(_)
                | IntentError::DocumentUnreadable { missing: false, .. }
        )
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
