//! The one configuration reader of the functions, the local run and the operator's
//! command. One rule everywhere:
//! - a variable that is unset, empty or only blanks is unset (its default applies);
//! - a set value is trimmed;
//! - a number must parse and lie within its documented range, else the error names the
//!   variable, the range and the value (a function then refuses to start rather than run
//!   on a value it would misread); nothing is clamped or replaced silently.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("{name} is required")]
    Missing { name: String },
    #[error("{name} must be {expected}, not {value:?}")]
    Invalid {
        name: String,
        expected: String,
        value: String,
    },
}

/// Looks a variable up (`None`: unset).
type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Where settings come from: the process environment, or a lookup (tests, the operator's
/// command).
pub struct Settings<'a> {
    lookup: Box<Lookup<'a>>,
}

impl Default for Settings<'static> {
    fn default() -> Self {
        Self::from_process()
    }
}

impl<'a> Settings<'a> {
    /// The process environment.
    pub fn from_process() -> Settings<'static> {
        Settings {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    /// Values from `lookup` (`None`: unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// The trimmed value; `None` when unset or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    }

    pub fn text_or(&self, name: &str, default: &str) -> String {
        self.text(name).unwrap_or_else(|| default.to_string())
    }

    pub fn required(&self, name: &str) -> Result<String, SettingError> {
        self.text(name).ok_or_else(|| SettingError::Missing {
            name: name.to_string(),
        })
    }

    /// A value parsed by `parse`; `expected` describes a valid value for the error.
    pub fn parsed<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, SettingError> {
        let Some(value) = self.text(name) else {
            return Ok(None);
        };
        parse(&value)
            .map(Some)
            .ok_or_else(|| SettingError::Invalid {
                name: name.to_string(),
                expected: expected.to_string(),
                value,
            })
    }

    /// A number within `range`, if set.
    pub fn optional_number<T>(
        &self,
        name: &str,
        range: RangeInclusive<T>,
    ) -> Result<Option<T>, SettingError>
    where
        T: FromStr + PartialOrd + Display,
    {
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        self.parsed(name, &expected, |value| {
            value.parse::<T>().ok().filter(|n| range.contains(n))
        })
    }

    /// A number within `range`, `default` when unset.
    pub fn number<T>(
        &self,
        name: &str,
        range: RangeInclusive<T>,
        default: T,
    ) -> Result<T, SettingError>
    where
        T: FromStr + PartialOrd + Display,
    {
        Ok(self.optional_number(name, range)?.unwrap_or(default))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), `default` when unset.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, SettingError> {
        Ok(self
            .parsed(name, "true or false", |value| {
                match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => Some(true),
                    "false" | "0" | "no" => Some(false),
                    _ => None,
                }
            })?
            .unwrap_or(default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &'static [(&'static str, &'static str)]) -> Settings<'static> {
        Settings::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let s = settings(&[("A", "  "), ("B", " x "), ("N", " ")]);
        assert_eq!(s.text("A"), None);
        assert_eq!(s.text("B").as_deref(), Some("x"));
        assert_eq!(s.text_or("A", "d"), "d");
        assert_eq!(
            s.required("A"),
            Err(SettingError::Missing { name: "A".into() })
        );
        assert_eq!(s.number("N", 1..=5, 3u32), Ok(3));
    }

    #[test]
    fn numbers_are_checked_against_their_range_never_clamped() {
        let s = settings(&[
            ("LOW", "0"),
            ("OK", " 7 "),
            ("BAD", "seven"),
            ("HUGE", "99999999999999999999"),
        ]);
        assert_eq!(s.number("OK", 1..=10, 1u32), Ok(7));
        let error = s.number("LOW", 1..=10, 1u32).unwrap_err();
        assert_eq!(
            error.to_string(),
            "LOW must be a whole number from 1 to 10, not \"0\""
        );
        assert!(s.number("BAD", 1..=10, 1u32).is_err());
        assert!(s.number("HUGE", 1..=3650, 395i64).is_err());
    }

    #[test]
    fn flags() {
        let s = settings(&[("T", "TRUE"), ("F", "0"), ("X", "maybe")]);
        assert_eq!(s.flag("T", false), Ok(true));
        assert_eq!(s.flag("F", true), Ok(false));
        assert_eq!(s.flag("UNSET", true), Ok(true));
        assert!(s.flag("X", false).is_err());
    }
}
