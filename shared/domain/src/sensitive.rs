//! Tenants' personal data (names, phones, addresses, e-mails, free-text descriptions) is
//! wrapped in [`Sensitive`], whose `Debug` and `Display` never show the value. A `tracing`
//! field or a `{:?}` in an error message therefore cannot leak it by accident.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A value that is personal data. Serialises transparently (Intent needs the value), but
/// formats as `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the adapters that must send or store it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value_but_serde_keeps_it() {
        let phone = Sensitive::new("0685874445".to_string());
        assert_eq!(format!("{phone:?}"), "[redacted]");
        assert_eq!(format!("{phone}"), "[redacted]");
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"0685874445\"");
        let back: Sensitive<String> = serde_json::from_str("\"0685874445\"").unwrap();
        assert_eq!(back.expose(), "0685874445");
    }
}
