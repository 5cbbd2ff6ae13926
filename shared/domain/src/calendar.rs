//! The on-call calendar (astreinte): when the on-call service covers the buildings, and
//! which on-call period ends at a given instant.
//!
//! The regular maintenance provider works on working days, during the day. The on-call
//! service covers everything else, in **periods**:
//!
//! - A *working day* is Monday to Friday, except the eleven French public holidays
//!   ([`OnCallCalendar::french_public_holidays`]) and the company closures configured in
//!   [`CalendarConfig::extra_non_working_days`].
//! - A period starts at [`CalendarConfig::period_start`] (local time, default 18:00) on a
//!   working day `D`, and ends at [`CalendarConfig::period_end`] (default 08:00) on the
//!   next working day after `D`. The non-working days in between are covered whole: a
//!   period that starts on Friday evening ends on Monday morning, or on Tuesday morning
//!   when Monday is a holiday, and the period that starts on Thursday 24 December 2026
//!   ends on Monday 28 December.
//! - Every working day therefore ends exactly one period (in the morning) and starts
//!   exactly one (in the evening); non-working days neither start nor end one. Periods
//!   never overlap: the end time must be earlier in the day than the start time.
//!
//! Local times are converted to instants with the configured time zone (Europe/Paris by
//! default) on the day they apply, so a period that spans a DST change is an hour
//! shorter or longer than its wall-clock length. A local time that does not exist (in a
//! spring-forward gap) or exists twice (in an autumn fold) is resolved the "compatible"
//! way, as in [`crate::datetime`]: forward by the gap's length, or the first occurrence.
//!
//! The calendar is pure: no clock reads, no I/O. Callers pass the instant, typically the
//! time of an EventBridge Scheduler tick, and ask [`OnCallCalendar::period_ending_at`].
//! Since Scheduler cron expressions are coarse, ticks may also fire on days when no
//! period ends (a Saturday 08:00 tick), and the answer is then `None`.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// Default start of a period on a working day's evening.
pub const DEFAULT_PERIOD_START: Time = Time::constant(18, 0, 0, 0);

/// Default end of a period on a working day's morning.
pub const DEFAULT_PERIOD_END: Time = Time::constant(8, 0, 0, 0);

/// The longest closure accepted as one `first..last` range in
/// [`CalendarConfig::from_env_values`], to catch typos such as a wrong year.
pub const MAX_CLOSURE_RANGE_DAYS: i32 = 366;

/// How the on-call periods are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarConfig {
    /// The zone of the local start and end times (and of the dates). Default Europe/Paris.
    pub time_zone: TimeZone,
    /// Local time a period starts on a working day's evening. Default 18:00.
    pub period_start: Time,
    /// Local time a period ends on a working day's morning. Default 08:00. Must be earlier
    /// than `period_start`.
    pub period_end: Time,
    /// Company closures: dates treated as non-working on top of weekends and French
    /// public holidays (e.g. the days between Christmas and New Year, or local holidays
    /// such as 26 December in Alsace-Moselle).
    pub extra_non_working_days: BTreeSet<Date>,
}

/// A configuration value that cannot be used; the message names the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarConfigError {
    #[error("unknown on-call time zone {value:?} (expected an IANA name such as Europe/Paris)")]
    UnknownTimeZone { value: String },
    #[error("invalid on-call period {setting} time {value:?} (expected HH:MM such as 18:00)")]
    InvalidTime {
        /// `"start"` or `"end"`.
        setting: &'static str,
        value: String,
    },
    #[error(
        "invalid non-working day {value:?} (expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD)"
    )]
    InvalidDate { value: String },
    #[error(
        "invalid non-working day range {value:?} (the first day must not be after the last, \
         and a range covers at most {MAX_CLOSURE_RANGE_DAYS} days)"
    )]
    InvalidDateRange { value: String },
    #[error("on-call period end time {end} must be earlier in the day than its start time {start}")]
    EndNotBeforeStart { start: Time, end: Time },
}

impl Default for CalendarConfig {
    /// Europe/Paris, 18:00 to 08:00, no company closure.
    fn default() -> Self {
        Self {
            time_zone: crate::datetime::paris().clone(),
            period_start: DEFAULT_PERIOD_START,
            period_end: DEFAULT_PERIOD_END,
            extra_non_working_days: BTreeSet::new(),
        }
    }
}

impl CalendarConfig {
    /// Builds the configuration from environment-variable values; a missing or blank
    /// value keeps the default.
    ///
    /// - `time_zone`: an IANA name, e.g. `Europe/Paris`.
    /// - `start`, `end`: local times, e.g. `18:00` and `08:00` (seconds allowed).
    /// - `extra_days`: comma-separated dates and inclusive ranges, e.g.
    ///   `2026-12-24,2026-12-28..2026-12-31`.
    pub fn from_env_values(
        time_zone: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        extra_days: Option<&str>,
    ) -> Result<Self, CalendarConfigError> {
        let mut config = Self::default();
        if let Some(name) = non_blank(time_zone)
            && name != crate::datetime::LOCAL_TIME_ZONE
        {
            config.time_zone =
                TimeZone::get(name).map_err(|_| CalendarConfigError::UnknownTimeZone {
                    value: name.to_owned(),
                })?;
        }
        if let Some(value) = non_blank(start) {
            config.period_start = parse_time("start", value)?;
        }
        if let Some(value) = non_blank(end) {
            config.period_end = parse_time("end", value)?;
        }
        if let Some(list) = non_blank(extra_days) {
            for item in list
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
            {
                add_closure(&mut config.extra_non_working_days, item)?;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks that periods cannot overlap: the end time comes before the start time.
    pub fn validate(&self) -> Result<(), CalendarConfigError> {
        if self.period_end < self.period_start {
            Ok(())
        } else {
            Err(CalendarConfigError::EndNotBeforeStart {
                start: self.period_start,
                end: self.period_end,
            })
        }
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

/// `HH:MM` or `HH:MM:SS`. jiff alone would also take a whole date-time or an offset.
fn parse_time(setting: &'static str, value: &str) -> Result<Time, CalendarConfigError> {
    let invalid = || CalendarConfigError::InvalidTime {
        setting,
        value: value.to_owned(),
    };
    if !value.contains(':') || !value.chars().all(|c| c.is_ascii_digit() || c == ':') {
        return Err(invalid());
    }
    value.parse().map_err(|_| invalid())
}

/// `YYYY-MM-DD`. jiff alone would also take a date-time and keep its date.
fn parse_date(value: &str) -> Option<Date> {
    let well_formed = value.len() == 10
        && value.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    if well_formed {
        value.parse().ok()
    } else {
        None
    }
}

fn add_closure(days: &mut BTreeSet<Date>, item: &str) -> Result<(), CalendarConfigError> {
    let invalid_date = || CalendarConfigError::InvalidDate {
        value: item.to_owned(),
    };
    let Some((first, last)) = item.split_once("..") else {
        days.insert(parse_date(item).ok_or_else(invalid_date)?);
        return Ok(());
    };
    let first = parse_date(first.trim()).ok_or_else(invalid_date)?;
    let last = parse_date(last.trim()).ok_or_else(invalid_date)?;
    let length = first.duration_until(last).as_hours() / 24 + 1;
    if !(1..=i64::from(MAX_CLOSURE_RANGE_DAYS)).contains(&length) {
        return Err(CalendarConfigError::InvalidDateRange {
            value: item.to_owned(),
        });
    }
    days.extend(first.series(1.day()).take_while(|day| *day <= last));
    Ok(())
}

/// One on-call period: from a working day's evening to the next working day's morning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallPeriod {
    /// Stable identifier, from the local date the period ends: `oncall-2026-05-15`. Each
    /// working day ends exactly one period, so the same period always gets the same id
    /// (useful as an idempotency key when a tick is retried or re-run).
    pub id: String,
    /// First instant covered.
    pub start: Timestamp,
    /// First instant no longer covered (the period is `start..end`).
    pub end: Timestamp,
}

impl OnCallPeriod {
    /// Elapsed time from start to end (DST changes included).
    pub fn duration(&self) -> SignedDuration {
        self.start.duration_until(self.end)
    }

    /// Whether `instant` is covered: `start <= instant < end`.
    pub fn contains(&self, instant: Timestamp) -> bool {
        self.start <= instant && instant < self.end
    }
}

/// The on-call calendar for one configuration. See the [module documentation](self).
///
/// Queries return `None` rather than panic at the edges of the supported date range
/// (years -9999 to 9999).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnCallCalendar {
    config: CalendarConfig,
}

impl OnCallCalendar {
    /// A calendar for a configuration whose end time is earlier than its start time.
    pub fn new(config: CalendarConfig) -> Result<Self, CalendarConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    pub fn config(&self) -> &CalendarConfig {
        &self.config
    }

    /// Monday to Friday, and neither a French public holiday nor a configured closure.
    pub fn is_working_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.config.extra_non_working_days.contains(&date)
            && Self::french_public_holiday(date).is_none()
    }

    /// The eleven French public holidays of `year`, by date, with their French names.
    ///
    /// Ascension can fall on 1 or 8 May (as in 2008): both entries are then kept. Empty
    /// for a year outside -9999..=9999.
    pub fn french_public_holidays(year: i16) -> Vec<(Date, &'static str)> {
        let fixed = |month, day, name| Some((Date::new(year, month, day).ok()?, name));
        let easter = easter_sunday(year);
        let after_easter = |days: i32, name| {
            let date = easter?.checked_add(days.days()).ok()?;
            Some((date, name))
        };
        let mut holidays: Vec<_> = [
            fixed(1, 1, "Jour de l'an"),
            after_easter(1, "Lundi de Pâques"),
            fixed(5, 1, "Fête du Travail"),
            fixed(5, 8, "Victoire 1945"),
            after_easter(39, "Ascension"),
            after_easter(50, "Lundi de Pentecôte"),
            fixed(7, 14, "Fête nationale"),
            fixed(8, 15, "Assomption"),
            fixed(11, 1, "Toussaint"),
            fixed(11, 11, "Armistice 1918"),
            fixed(12, 25, "Noël"),
        ]
        .into_iter()
        .flatten()
        .collect();
        holidays.sort_by_key(|(date, _)| *date);
        holidays
    }

    /// The name of the French public holiday on `date`, if it is one.
    pub fn french_public_holiday(date: Date) -> Option<&'static str> {
        Self::french_public_holidays(date.year())
            .into_iter()
            .find(|(holiday, _)| *holiday == date)
            .map(|(_, name)| name)
    }

    /// The period that ends at `instant`, allowing the tick to be up to `tolerance` late:
    /// the period ended at or before `instant`, and at most `tolerance` before it. A tick
    /// that fires early does not end the period. `None` when no period ends then (e.g. a
    /// Saturday morning tick); a negative tolerance matches nothing.
    pub fn period_ending_at(
        &self,
        instant: Timestamp,
        tolerance: SignedDuration,
    ) -> Option<OnCallPeriod> {
        let period = self.last_period_ended_by(instant)?;
        let earliest = instant.checked_sub(tolerance).ok()?;
        (period.end >= earliest).then_some(period)
    }

    /// The period covering `instant` (`start <= instant < end`), if any.
    pub fn period_containing(&self, instant: Timestamp) -> Option<OnCallPeriod> {
        // The first period that ends after `instant` is the only one that can contain it.
        // It cannot end before the local date of `instant`; start a day earlier anyway.
        let local_date = self.config.time_zone.to_datetime(instant).date();
        let mut day = local_date.yesterday().unwrap_or(local_date);
        loop {
            if self.is_working_day(day) {
                let end = self.local_instant(day, self.config.period_end)?;
                if end > instant {
                    let period = self.period_ending_on(day)?;
                    return period.contains(instant).then_some(period);
                }
            }
            day = day.tomorrow().ok()?;
        }
    }

    /// The most recent period that ended at or before `instant`, e.g. to re-run a missed
    /// tick. `None` only at the start of the supported date range.
    pub fn last_period_ended_by(&self, instant: Timestamp) -> Option<OnCallPeriod> {
        // It cannot end after the local date of `instant`; start a day later anyway.
        let local_date = self.config.time_zone.to_datetime(instant).date();
        let mut day = local_date.tomorrow().unwrap_or(local_date);
        loop {
            if self.is_working_day(day) {
                let end = self.local_instant(day, self.config.period_end)?;
                if end <= instant {
                    return self.period_ending_on(day);
                }
            }
            day = day.yesterday().ok()?;
        }
    }

    /// The period that ends on the morning of working day `end_day`.
    fn period_ending_on(&self, end_day: Date) -> Option<OnCallPeriod> {
        let start_day = self.previous_working_day(end_day)?;
        Some(OnCallPeriod {
            id: format!("oncall-{end_day}"),
            start: self.local_instant(start_day, self.config.period_start)?,
            end: self.local_instant(end_day, self.config.period_end)?,
        })
    }

    /// The last working day before `date`. The loop ends: closures are a finite set.
    fn previous_working_day(&self, date: Date) -> Option<Date> {
        let mut day = date.yesterday().ok()?;
        while !self.is_working_day(day) {
            day = day.yesterday().ok()?;
        }
        Some(day)
    }

    /// `time` on `date` in the configured zone; gaps and folds resolved "compatibly".
    fn local_instant(&self, date: Date, time: Time) -> Option<Timestamp> {
        self.config
            .time_zone
            .to_ambiguous_timestamp(date.to_datetime(time))
            .compatible()
            .ok()
    }
}

/// Easter Sunday in the Gregorian calendar (anonymous algorithm of Meeus, Jones and
/// Butcher). `None` for a year outside jiff's range.
fn easter_sunday(year: i16) -> Option<Date> {
    let y = i32::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const TOLERANCE: SignedDuration = SignedDuration::from_mins(15);

    fn calendar() -> OnCallCalendar {
        OnCallCalendar::default()
    }

    fn instant(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Paris local time, resolved like the calendar does.
    fn paris(text: &str) -> Timestamp {
        crate::datetime::paris()
            .to_ambiguous_timestamp(text.parse().unwrap())
            .compatible()
            .unwrap()
    }

    fn assert_period(period: Option<OnCallPeriod>, start: &str, end: &str) -> OnCallPeriod {
        let period = period.expect("a period");
        assert_eq!(
            (period.start, period.end),
            (instant(start), instant(end)),
            "{period:?}"
        );
        period
    }

    #[test]
    fn easter_sundays() {
        for (year, expected) in [
            (2026, date(2026, 4, 5)),
            (2027, date(2027, 3, 28)),
            (2000, date(2000, 4, 23)),
            (2008, date(2008, 3, 23)),
            (2011, date(2011, 4, 24)),
            (2024, date(2024, 3, 31)),
            (2025, date(2025, 4, 20)),
            (2038, date(2038, 4, 25)),
            (2285, date(2285, 3, 22)),
        ] {
            assert_eq!(easter_sunday(year), Some(expected), "{year}");
        }
        assert_eq!(easter_sunday(10_000), None);
    }

    #[test]
    fn the_eleven_holidays_of_2026() {
        assert_eq!(
            OnCallCalendar::french_public_holidays(2026),
            vec![
                (date(2026, 1, 1), "Jour de l'an"),
                (date(2026, 4, 6), "Lundi de Pâques"),
                (date(2026, 5, 1), "Fête du Travail"),
                (date(2026, 5, 8), "Victoire 1945"),
                (date(2026, 5, 14), "Ascension"),
                (date(2026, 5, 25), "Lundi de Pentecôte"),
                (date(2026, 7, 14), "Fête nationale"),
                (date(2026, 8, 15), "Assomption"),
                (date(2026, 11, 1), "Toussaint"),
                (date(2026, 11, 11), "Armistice 1918"),
                (date(2026, 12, 25), "Noël"),
            ]
        );
        let holiday = OnCallCalendar::french_public_holiday;
        assert_eq!(holiday(date(2027, 3, 29)), Some("Lundi de Pâques"));
        assert_eq!(holiday(date(2026, 4, 5)), None, "Easter Sunday itself");
        assert_eq!(holiday(date(2026, 12, 26)), None);
        // Ascension on 1 May 2008: both kept.
        let holidays_2008 = OnCallCalendar::french_public_holidays(2008);
        assert_eq!(holidays_2008.len(), 11);
        assert_eq!(
            holidays_2008
                .iter()
                .filter(|(day, _)| *day == date(2008, 5, 1))
                .count(),
            2
        );
        assert!(OnCallCalendar::french_public_holidays(i16::MAX).is_empty());
    }

    #[test]
    fn working_days() {
        let calendar = calendar();
        assert!(calendar.is_working_day(date(2026, 11, 23)), "a Monday");
        assert!(calendar.is_working_day(date(2026, 11, 27)), "a Friday");
        assert!(!calendar.is_working_day(date(2026, 11, 28)), "a Saturday");
        assert!(!calendar.is_working_day(date(2026, 11, 29)), "a Sunday");
        assert!(!calendar.is_working_day(date(2026, 5, 14)), "Ascension");
        assert!(!calendar.is_working_day(date(2026, 11, 11)), "Armistice");
        assert!(calendar.is_working_day(date(2026, 12, 24)));
        let closed = OnCallCalendar::new(CalendarConfig {
            extra_non_working_days: BTreeSet::from([date(2026, 12, 24)]),
            ..CalendarConfig::default()
        })
        .unwrap();
        assert!(!closed.is_working_day(date(2026, 12, 24)));
    }

    #[test]
    fn a_weeknight() {
        let period = calendar().period_ending_at(paris("2026-11-24T08:00"), TOLERANCE);
        let period = assert_period(period, "2026-11-23T17:00Z", "2026-11-24T07:00Z");
        assert_eq!(period.id, "oncall-2026-11-24");
        assert_eq!(period.duration(), SignedDuration::from_hours(14));
    }

    #[test]
    fn weekend_ticks_end_nothing() {
        let calendar = calendar();
        for tick in ["2026-11-28T08:00", "2026-11-29T08:00"] {
            assert_eq!(calendar.period_ending_at(paris(tick), TOLERANCE), None);
        }
    }

    #[test]
    fn friday_to_monday() {
        let period = calendar().period_ending_at(paris("2026-11-30T08:00"), TOLERANCE);
        let period = assert_period(period, "2026-11-27T17:00Z", "2026-11-30T07:00Z");
        assert_eq!(period.id, "oncall-2026-11-30");
        assert_eq!(period.duration(), SignedDuration::from_hours(62));
    }

    #[test]
    fn friday_before_whit_monday_ends_on_tuesday() {
        let calendar = calendar();
        assert_eq!(
            calendar.period_ending_at(paris("2026-05-25T08:00"), TOLERANCE),
            None
        );
        let period = calendar.period_ending_at(paris("2026-05-26T08:00"), TOLERANCE);
        assert_period(period, "2026-05-22T16:00Z", "2026-05-26T06:00Z");
    }

    #[test]
    fn ascension_thursday() {
        let calendar = calendar();
        assert_eq!(
            calendar.period_ending_at(paris("2026-05-14T08:00"), TOLERANCE),
            None
        );
        let period = calendar.period_ending_at(paris("2026-05-15T08:00"), TOLERANCE);
        let period = assert_period(period, "2026-05-13T16:00Z", "2026-05-15T06:00Z");
        assert_eq!(period.id, "oncall-2026-05-15");
        // Friday is a working day: the next period starts that evening.
        let next = calendar.period_containing(paris("2026-05-16T12:00"));
        assert_period(next, "2026-05-15T16:00Z", "2026-05-18T06:00Z");
    }

    #[test]
    fn christmas_and_new_year_2026() {
        let calendar = calendar();
        let christmas = calendar.period_ending_at(paris("2026-12-28T08:00"), TOLERANCE);
        assert_period(christmas, "2026-12-24T17:00Z", "2026-12-28T07:00Z");
        let new_year = calendar.period_ending_at(paris("2027-01-04T08:00"), TOLERANCE);
        assert_period(new_year, "2026-12-31T17:00Z", "2027-01-04T07:00Z");
        assert_eq!(
            calendar.period_ending_at(paris("2027-01-01T08:00"), TOLERANCE),
            None
        );
    }

    #[test]
    fn company_closure_between_christmas_and_new_year() {
        let config =
            CalendarConfig::from_env_values(None, None, None, Some("2026-12-28..2026-12-31"))
                .unwrap();
        assert_eq!(config.extra_non_working_days.len(), 4);
        let calendar = OnCallCalendar::new(config).unwrap();
        for tick in ["2026-12-28T08:00", "2026-12-29T08:00", "2027-01-01T08:00"] {
            assert_eq!(calendar.period_ending_at(paris(tick), TOLERANCE), None);
        }
        let period = calendar.period_ending_at(paris("2027-01-04T08:00"), TOLERANCE);
        let period = assert_period(period, "2026-12-24T17:00Z", "2027-01-04T07:00Z");
        assert_eq!(period.id, "oncall-2027-01-04");
        let during = calendar.period_containing(paris("2026-12-30T12:00"));
        assert_eq!(during, Some(period));
    }

    #[test]
    fn spring_forward_weekend() {
        let calendar = calendar();
        let period = calendar.period_ending_at(paris("2026-03-30T08:00"), TOLERANCE);
        let period = assert_period(period, "2026-03-27T17:00Z", "2026-03-30T06:00Z");
        // 62 hours of wall clock, one of which does not happen.
        assert_eq!(period.duration(), SignedDuration::from_hours(61));
        let tz = crate::datetime::paris();
        assert_eq!(
            period.start.to_zoned_datetime(tz.clone()).to_string(),
            "2026-03-27T18:00:00+01:00[Europe/Paris]"
        );
        assert_eq!(
            period.end.to_zoned_datetime(tz.clone()).to_string(),
            "2026-03-30T08:00:00+02:00[Europe/Paris]"
        );
    }

    #[test]
    fn fall_back_weekend() {
        let period = calendar().period_containing(paris("2026-10-25T02:30"));
        let period = assert_period(period, "2026-10-23T16:00Z", "2026-10-26T07:00Z");
        assert_eq!(period.duration(), SignedDuration::from_hours(63));
        assert_eq!(period.id, "oncall-2026-10-26");
        // The second 02:30 (in winter time) is in the same period.
        let second = calendar().period_containing(instant("2026-10-25T02:30+01:00"));
        assert_eq!(second, Some(period));
    }

    #[test]
    fn tolerance_for_late_and_early_ticks() {
        let calendar = calendar();
        let end = paris("2026-11-24T08:00");
        let late = end.checked_add(SignedDuration::from_mins(3)).unwrap();
        let period = calendar.period_ending_at(late, TOLERANCE);
        assert_period(period, "2026-11-23T17:00Z", "2026-11-24T07:00Z");
        let at_limit = end.checked_add(TOLERANCE).unwrap();
        assert!(calendar.period_ending_at(at_limit, TOLERANCE).is_some());

        let early = end.checked_sub(SignedDuration::from_mins(1)).unwrap();
        assert_eq!(calendar.period_ending_at(early, TOLERANCE), None);
        // One minute early, the period is still running.
        let running = calendar.period_containing(early);
        assert_period(running, "2026-11-23T17:00Z", "2026-11-24T07:00Z");

        let too_late = end.checked_add(SignedDuration::from_hours(2)).unwrap();
        assert_eq!(calendar.period_ending_at(too_late, TOLERANCE), None);
        let missed = calendar.last_period_ended_by(too_late);
        assert_period(missed, "2026-11-23T17:00Z", "2026-11-24T07:00Z");

        assert_eq!(
            calendar.period_ending_at(end, -SignedDuration::from_mins(1)),
            None
        );
        assert!(
            calendar
                .period_ending_at(end, SignedDuration::ZERO)
                .is_some()
        );
    }

    #[test]
    fn last_period_ended_by_looks_back_over_weekends() {
        let calendar = calendar();
        // Sunday noon: the last period that ended is Thursday evening to Friday morning.
        let period = calendar.last_period_ended_by(paris("2026-11-29T12:00"));
        assert_period(period, "2026-11-26T17:00Z", "2026-11-27T07:00Z");
        // Exactly at an end, that period counts as ended.
        let period = calendar.last_period_ended_by(paris("2026-11-30T08:00"));
        assert_period(period, "2026-11-27T17:00Z", "2026-11-30T07:00Z");
    }

    #[test]
    fn period_containing() {
        let calendar = calendar();
        let weekend = calendar.period_containing(paris("2026-11-29T12:00"));
        assert_period(weekend, "2026-11-27T17:00Z", "2026-11-30T07:00Z");
        assert_eq!(calendar.period_containing(paris("2026-11-24T12:00")), None);
        // Half-open: the start is covered, the end is not.
        let at_start = calendar.period_containing(paris("2026-11-24T18:00"));
        assert_period(at_start, "2026-11-24T17:00Z", "2026-11-25T07:00Z");
        assert_eq!(calendar.period_containing(paris("2026-11-25T08:00")), None);
    }

    /// Every hour of 2026 and 2027: periods chain without overlap, each one is what the
    /// other queries agree on, and the covered hours are exactly the non-working ones.
    #[test]
    fn queries_agree_hour_by_hour() {
        let calendar = calendar();
        let tz = crate::datetime::paris();
        let mut now = paris("2026-01-01T00:00");
        let stop = paris("2028-01-01T00:00");
        while now < stop {
            let last = calendar.last_period_ended_by(now).unwrap();
            assert!(last.end <= now);
            if let Some(current) = calendar.period_containing(now) {
                assert!(current.contains(now));
                assert!(last.end < current.start, "{last:?} then {current:?}");
                assert_eq!(calendar.last_period_ended_by(current.end), Some(current));
            }
            let local = tz.to_datetime(now);
            let working_hours = calendar.is_working_day(local.date())
                && local.time() >= DEFAULT_PERIOD_END
                && local.time() < DEFAULT_PERIOD_START;
            assert_eq!(
                calendar.period_containing(now).is_none(),
                working_hours,
                "{local}"
            );
            now = now.checked_add(SignedDuration::from_hours(1)).unwrap();
        }
    }

    #[test]
    fn martinique_without_dst_and_custom_times() {
        let config = CalendarConfig::from_env_values(
            Some("America/Martinique"),
            Some("19:00"),
            Some("07:30"),
            Some(" 2026-05-22 , "),
        )
        .unwrap();
        assert_eq!(config.period_start, Time::constant(19, 0, 0, 0));
        assert_eq!(config.period_end, Time::constant(7, 30, 0, 0));
        let calendar = OnCallCalendar::new(config).unwrap();
        // UTC-04:00 all year round.
        let tick = instant("2026-11-24T07:30-04:00");
        let period = calendar.period_ending_at(tick, TOLERANCE);
        assert_period(period, "2026-11-23T23:00Z", "2026-11-24T11:30Z");
        // Abolition of slavery on Friday 22 May (configured), then the weekend and Whit
        // Monday: one period from Thursday evening to Tuesday morning.
        let period = calendar.period_containing(instant("2026-05-22T12:00-04:00"));
        let period = assert_period(period, "2026-05-21T23:00Z", "2026-05-26T11:30Z");
        let tick = instant("2026-05-26T07:30-04:00");
        assert_eq!(calendar.period_ending_at(tick, TOLERANCE), Some(period));
    }

    #[test]
    fn end_time_in_a_dst_gap_moves_forward() {
        // Israel springs forward on Friday 2026-03-27 at 02:00: 02:30 does not exist.
        let config =
            CalendarConfig::from_env_values(Some("Asia/Jerusalem"), None, Some("02:30"), None)
                .unwrap();
        let calendar = OnCallCalendar::new(config).unwrap();
        let tick = instant("2026-03-27T03:30+03:00");
        let period = calendar.period_ending_at(tick, TOLERANCE);
        let period = assert_period(period, "2026-03-26T16:00Z", "2026-03-27T00:30Z");
        // The end is shown after the gap: the clock read 02:00 +02:00, then 03:00 +03:00.
        let tz = calendar.config().time_zone.clone();
        assert_eq!(
            period.end.to_zoned_datetime(tz).to_string(),
            "2026-03-27T03:30:00+03:00[Asia/Jerusalem]"
        );
        let early = instant("2026-03-27T01:59+02:00");
        assert_eq!(calendar.period_ending_at(early, TOLERANCE), None);
    }

    #[test]
    fn defaults_and_blank_values() {
        let config = CalendarConfig::from_env_values(None, Some(" "), Some(""), None).unwrap();
        assert_eq!(config, CalendarConfig::default());
        assert_eq!(config.time_zone.iana_name(), Some("Europe/Paris"));
        assert_eq!(config.period_start, Time::constant(18, 0, 0, 0));
        assert_eq!(config.period_end, Time::constant(8, 0, 0, 0));
        let config = CalendarConfig::from_env_values(
            Some("Europe/Paris"),
            Some("18:00"),
            Some("08:00:00"),
            Some("2026-12-24,2026-12-31"),
        )
        .unwrap();
        assert_eq!(
            config.extra_non_working_days,
            BTreeSet::from([date(2026, 12, 24), date(2026, 12, 31)])
        );
    }

    #[test]
    fn bad_values_are_named_in_errors() {
        let error = |tz: Option<&str>, start, end, days| {
            CalendarConfig::from_env_values(tz, start, end, days)
                .unwrap_err()
                .to_string()
        };
        let message = error(Some("Europe/Pariss"), None, None, None);
        assert!(message.contains("\"Europe/Pariss\""), "{message}");
        let message = error(None, Some("6pm"), None, None);
        assert!(message.contains("start time \"6pm\""), "{message}");
        let message = error(None, None, Some("25:00"), None);
        assert!(message.contains("end time \"25:00\""), "{message}");
        let message = error(None, None, Some("2026-01-01T08:00"), None);
        assert!(message.contains("\"2026-01-01T08:00\""), "{message}");
        let message = error(None, None, None, Some("2026-12-24,2026-13-01"));
        assert!(message.contains("\"2026-13-01\""), "{message}");
        let message = error(None, None, None, Some("24/12/2026"));
        assert!(message.contains("\"24/12/2026\""), "{message}");
        let message = error(None, None, None, Some("2026-12-24T00:00"));
        assert!(message.contains("\"2026-12-24T00:00\""), "{message}");
        let message = error(None, None, None, Some("2026-12-31..2026-12-28"));
        assert!(message.contains("\"2026-12-31..2026-12-28\""), "{message}");
        let message = error(None, None, None, Some("2026-08-01..2027-08-21"));
        assert!(message.contains("range"), "{message}");
        let message = error(None, Some("08:00"), Some("18:00"), None);
        assert!(
            message.contains("18:00") && message.contains("08:00"),
            "{message}"
        );
        assert!(matches!(
            OnCallCalendar::new(CalendarConfig {
                period_end: DEFAULT_PERIOD_START,
                ..CalendarConfig::default()
            }),
            Err(CalendarConfigError::EndNotBeforeStart { .. })
        ));
    }

    #[test]
    fn period_serializes_with_its_id() {
        let period = calendar()
            .period_ending_at(paris("2026-11-24T08:00"), TOLERANCE)
            .unwrap();
        let json = serde_json::to_value(&period).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "oncall-2026-11-24",
                "start": "2026-11-23T17:00:00Z",
                "end": "2026-11-24T07:00:00Z",
            })
        );
    }
}
