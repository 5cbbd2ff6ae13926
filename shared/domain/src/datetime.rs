//! Intent's date-times. Partners send `2020-03-06T10:45:23` (no offset: Paris local time,
//! by every example's context), `…T10:00:00.000`, `…Z` or `…+01:00`. We keep the instant and
//! always send it with an explicit Paris offset, e.g. `2020-03-06T10:45:23+01:00`.
//!
//! Local times that do not exist (the spring-forward gap) or exist twice (the autumn
//! fold) are resolved the "compatible" way, as RFC 5545 and most calendars do: a time in
//! the gap moves forward by the gap's length, a time in the fold takes the first (summer
//! time) occurrence, unless the event is a closure that would then fall before its
//! opening: such a time remembers its second occurrence, which the closure takes then
//! ([`IntentDateTime::not_before`]); and a date Intent gives back without offset in the
//! fold matches either ([`IntentDateTime::occurrences`]).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The time zone of dates without offset, and of the dates we send.
pub const LOCAL_TIME_ZONE: &str = "Europe/Paris";

/// Europe/Paris ([`LOCAL_TIME_ZONE`]), built at compile time from the same time-zone
/// database the binary bundles (no dependency on the execution environment's
/// /usr/share/zoneinfo, and nothing to parse at run time: reading it from the bundle cost
/// a first claim, and the closer's start, about 0.29 million instructions).
pub fn paris() -> &'static TimeZone {
    static PARIS: TimeZone = jiff::tz::get!("Europe/Paris");
    &PARIS
}

/// An instant as Intent exchanges it. Equal, ordered and hashed as its instant.
#[derive(Clone, Copy)]
pub struct IntentDateTime {
    instant: Timestamp,
    /// Read from a Paris time without offset that happens twice (the autumn fold):
    /// the second occurrence, an hour after `instant` (the first).
    second_occurrence: Option<Timestamp>,
}

impl PartialEq for IntentDateTime {
    fn eq(&self, other: &Self) -> bool {
        self.instant == other.instant
    }
}

impl Eq for IntentDateTime {}

impl PartialOrd for IntentDateTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IntentDateTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.instant.cmp(&other.instant)
    }
}

impl std::hash::Hash for IntentDateTime {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.instant.hash(state);
    }
}

/// 2000-01-01T00:00:00Z.
const EARLIEST: Timestamp = Timestamp::constant(946_684_800, 0);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a date-time from the year 2000 on, such as 2020-03-06T10:45:23 or 2020-03-06T10:45:23+01:00"
)]
pub struct DateTimeParseError;

impl IntentDateTime {
    pub fn from_timestamp(timestamp: Timestamp) -> Self {
        Self {
            instant: timestamp,
            second_occurrence: None,
        }
    }

    pub fn timestamp(&self) -> Timestamp {
        self.instant
    }

    /// The instants this date may be: its own, and its second occurrence when it was read
    /// from a Paris time without offset in the autumn fold.
    pub fn occurrences(&self) -> impl Iterator<Item = Timestamp> + use<> {
        std::iter::once(self.instant).chain(self.second_occurrence)
    }

    /// This date, or, when it was a Paris time without offset in the autumn fold read as
    /// its first occurrence and that one is before `floor`, its second occurrence if that
    /// one is not (the partner's clock went back an hour between the two events).
    pub fn not_before(self, floor: IntentDateTime) -> IntentDateTime {
        match self.second_occurrence {
            Some(second) if self.instant < floor.instant && second >= floor.instant => {
                Self::from_timestamp(second)
            }
            _ => self,
        }
    }

    /// Parses any of the forms seen on Intent; without offset, the time is Paris local time.
    /// Nothing before the year 2000 is an intervention's date (the year 0 would even be
    /// sent with Paris' local mean time offset, +00:09).
    pub fn parse(text: &str) -> Result<Self, DateTimeParseError> {
        let parsed = Self::parse_any(text)?;
        if parsed.instant < EARLIEST {
            return Err(DateTimeParseError);
        }
        Ok(parsed)
    }

    fn parse_any(text: &str) -> Result<Self, DateTimeParseError> {
        let text = text.trim();
        // RFC 9557's bracketed time zone (`…T10:00:00[America/New_York]`): read as a civil
        // time it would be taken for Paris time, silently hours off; with an offset, the
        // zone could hide a second one past ±14:00. Intent's dates carry none.
        if text.contains('[') {
            return Err(DateTimeParseError);
        }
        if let Ok(timestamp) = text.parse::<Timestamp>() {
            // An offset past ±14:00 is no place's (jiff accepts up to ±25:59:59).
            if !offset_is_plausible(text) {
                return Err(DateTimeParseError);
            }
            return Ok(Self::from_timestamp(timestamp));
        }
        let civil: DateTime = text.parse().map_err(|_| DateTimeParseError)?;
        // A bare date ("2020-03-06") parses as a civil DateTime at midnight; Intent wants
        // a time of day, so insist on one.
        if !text.contains(['T', 't', ' ']) {
            return Err(DateTimeParseError);
        }
        let ambiguous = paris().to_ambiguous_timestamp(civil);
        let second_occurrence = match ambiguous.offset() {
            jiff::tz::AmbiguousOffset::Fold { after, .. } => {
                Some(after.to_timestamp(civil).map_err(|_| DateTimeParseError)?)
            }
            _ => None,
        };
        let first = ambiguous.compatible().map_err(|_| DateTimeParseError)?;
        Ok(Self {
            instant: first,
            second_occurrence,
        })
    }

    /// The instant in Paris time, for calendars and display.
    pub fn in_paris(&self) -> ZonedDateTime {
        self.instant.to_zoned_datetime(paris().clone())
    }

    /// RFC 3339 with the Paris offset of that instant, as sent to Intent.
    pub fn to_intent_string(&self) -> String {
        let offset = paris().to_offset(self.instant);
        self.instant.display_with_offset(offset).to_string()
    }
}

impl fmt::Display for IntentDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_intent_string())
    }
}

impl fmt::Debug for IntentDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_intent_string())
    }
}

impl Serialize for IntentDateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_intent_string())
    }
}

impl<'de> Deserialize<'de> for IntentDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(text: &str) -> String {
        IntentDateTime::parse(text).unwrap().to_intent_string()
    }

    /// A bracketed time zone is refused: read as a civil time it would be taken for Paris
    /// time, six hours off for New York; after an offset, it could hide one past ±14:00.
    #[test]
    fn a_bracketed_time_zone_is_refused() {
        for text in [
            "2026-11-01T10:00:00[America/New_York]",
            "2026-11-01T10:00:00+20:00[Etc/GMT-1]",
            "2026-11-01T10:00:00+01:00[Europe/Paris]",
        ] {
            assert!(IntentDateTime::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn the_compiled_in_paris_is_the_bundled_databases() {
        let bundled = TimeZone::get(LOCAL_TIME_ZONE).unwrap();
        assert_eq!(paris().iana_name(), Some(LOCAL_TIME_ZONE));
        // Every hour over 2000-2040 (DST changes included) has the same offset in both.
        let mut at = Timestamp::constant(946_684_800, 0);
        let end = Timestamp::constant(2_208_988_800, 0);
        while at < end {
            assert_eq!(paris().to_offset(at), bundled.to_offset(at), "at {at}");
            at = at.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
        }
    }

    #[test]
    fn no_offset_is_paris_local_time_in_winter_and_summer() {
        assert_eq!(sent("2020-03-06T10:45:23"), "2020-03-06T10:45:23+01:00");
        assert_eq!(sent("2020-07-06T10:45:23"), "2020-07-06T10:45:23+02:00");
        assert_eq!(sent("2020-03-06T10:00:00.000"), "2020-03-06T10:00:00+01:00");
        assert_eq!(
            sent("2020-03-06T10:00:00.250"),
            "2020-03-06T10:00:00.25+01:00"
        );
    }

    #[test]
    fn explicit_offsets_keep_the_instant_and_are_sent_in_paris_offset() {
        assert_eq!(sent("2020-03-06T09:45:23Z"), "2020-03-06T10:45:23+01:00");
        assert_eq!(
            sent("2020-03-06T10:45:23+01:00"),
            "2020-03-06T10:45:23+01:00"
        );
        assert_eq!(
            sent("2020-03-06T12:45:23+03:00"),
            "2020-03-06T10:45:23+01:00"
        );
    }

    #[test]
    fn dst_changes_of_2026() {
        // Spring forward 2026-03-29 02:00 -> 03:00: 01:59 is winter, 03:00 summer, and
        // 02:30 does not exist (moved forward by the gap).
        assert_eq!(sent("2026-03-29T01:59:00"), "2026-03-29T01:59:00+01:00");
        assert_eq!(sent("2026-03-29T03:00:00"), "2026-03-29T03:00:00+02:00");
        assert_eq!(sent("2026-03-29T02:30:00"), "2026-03-29T03:30:00+02:00");
        // Fall back 2026-10-25 03:00 -> 02:00: 02:30 happens twice; the first is kept.
        assert_eq!(sent("2026-10-25T02:30:00"), "2026-10-25T02:30:00+02:00");
        assert_eq!(sent("2026-10-25T03:30:00"), "2026-10-25T03:30:00+01:00");
        // With an explicit offset, the second 02:30 is expressible and kept.
        assert_eq!(
            sent("2026-10-25T02:30:00+01:00"),
            "2026-10-25T02:30:00+01:00"
        );
    }

    #[test]
    fn a_time_in_the_fold_takes_its_second_pass_only_to_stay_after_a_floor() {
        let at = |text: &str| IntentDateTime::parse(text).unwrap();
        let fold = at("2026-10-25T02:10:00");
        assert_eq!(fold.to_intent_string(), "2026-10-25T02:10:00+02:00");
        // After a floor in the first pass, before its own: the second pass.
        let moved = fold.not_before(at("2026-10-25T02:40:00+02:00"));
        assert_eq!(moved.to_intent_string(), "2026-10-25T02:10:00+01:00");
        // Already after the floor, or the second pass still before it: unchanged.
        for floor in ["2026-10-25T02:00:00+02:00", "2026-10-25T02:20:00+01:00"] {
            assert_eq!(
                fold.not_before(at(floor)).to_intent_string(),
                "2026-10-25T02:10:00+02:00"
            );
        }
        // Not in the fold, or with an offset: nothing to choose.
        for text in ["2026-10-25T03:10:00", "2026-10-25T02:10:00+02:00"] {
            let date = at(text);
            assert_eq!(date.not_before(at("2026-10-25T05:00:00+01:00")), date);
        }
    }

    #[test]
    fn garbage_and_bare_dates_are_rejected() {
        for bad in [
            "",
            "yesterday",
            "2020-03-06",
            "2020-13-06T10:00:00",
            "10:45:23",
        ] {
            assert!(IntentDateTime::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn serde_round_trip() {
        let date = IntentDateTime::parse("2020-03-06T10:45:23").unwrap();
        let json = serde_json::to_string(&date).unwrap();
        assert_eq!(json, "\"2020-03-06T10:45:23+01:00\"");
        let back: IntentDateTime = serde_json::from_str(&json).unwrap();
        assert_eq!(back, date);
    }
}

/// Whether a date's trailing `±hh:mm` offset (if any) lies within ±14:00, the widest a
/// time zone uses.
fn offset_is_plausible(text: &str) -> bool {
    let Some(time) = text.split(['T', 't', ' ']).nth(1) else {
        return true;
    };
    let Some(sign) = time.rfind(['+', '-']) else {
        return true;
    };
    let offset = &time[sign + 1..];
    let hours: u32 = offset.get(..2).and_then(|h| h.parse().ok()).unwrap_or(0);
    let minutes: u32 = offset
        .get(2..)
        .map(|rest| rest.trim_start_matches(':'))
        .and_then(|m| m.get(..2))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    hours * 60 + minutes <= 14 * 60
}

#[cfg(test)]
mod offset_tests {
    use super::*;

    #[test]
    fn offsets_past_fourteen_hours_are_no_place_s() {
        assert!(IntentDateTime::parse("2026-11-01T10:00:00+25:00").is_err());
        assert!(IntentDateTime::parse("2026-11-01T10:00:00-14:30").is_err());
        assert!(IntentDateTime::parse("2026-11-01T10:00:00+14:00").is_ok());
        assert!(IntentDateTime::parse("2026-11-01T10:00:00+01:00").is_ok());
        assert!(IntentDateTime::parse("2026-11-01T10:00:00.000-05:00").is_ok());
        assert!(IntentDateTime::parse("2026-11-01T10:00:00Z").is_ok());
        assert!(IntentDateTime::parse("2026-11-01T10:00:00").is_ok());
        assert!(IntentDateTime::parse("0000-01-01T00:00:00Z").is_err());
        assert!(IntentDateTime::parse("1999-12-31T23:59:59Z").is_err());
        assert!(IntentDateTime::parse("2000-01-01T00:00:00Z").is_ok());
    }
}
