//! The closer's configuration, from the environment through the one configuration reader.

use aws_wiring::CoreConfig;
use jiff::SignedDuration;
use lambda_runtime::Error;
use oncall_domain::calendar::{CalendarConfig, CalendarConfigError};
use oncall_domain::closure::ClosurePolicy;
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::lifecycle::Outcome;
use oncall_domain::oncall::CloserPolicy;
use settings::Settings;
use std::collections::HashSet;

pub struct CloserConfig {
    pub core: CoreConfig,
    /// Refused, the closer still starts: its ticks re-send, forward and publish, end no
    /// period, and fail naming the calendar (see `run_tick`).
    pub calendar: Result<CalendarConfig, CalendarConfigError>,
    pub policy: CloserPolicy,
    pub documents: DocumentPolicy,
    pub contracts: HashSet<String>,
    pub tolerance: SignedDuration,
    pub s3_force_path_style: bool,
}

impl CloserConfig {
    /// `TABLE_NAME`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, the `INTENT_*` variables;
    /// `RECONCILE_CONTRACTS` (comma-separated); calendar: `ONCALL_TIME_ZONE`
    /// (Europe/Paris), `ONCALL_PERIOD_START` (18:00), `ONCALL_PERIOD_END` (08:00),
    /// `ONCALL_EXTRA_NON_WORKING_DAYS` (`2026-12-24,2026-12-28..2026-12-31`); closing:
    /// `AUTO_CLOSE_OUTCOME` (`partial_repair` or `done`), `AUTO_CLOSE_DESCRIPTION`,
    /// `CLOSER_CONCURRENCY` (1–500, default 50), `CLOSED_FILE_RETENTION_DAYS` (1–3650,
    /// default 395), `TICK_TOLERANCE_MINUTES` (0–720, default 30); waiting documents:
    /// `MAX_DOCUMENT_BYTES`, `S3_FORCE_PATH_STYLE`.
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        let calendar = CalendarConfig::from_env_values(
            settings.text("ONCALL_TIME_ZONE").as_deref(),
            settings.text("ONCALL_PERIOD_START").as_deref(),
            settings.text("ONCALL_PERIOD_END").as_deref(),
            settings.text("ONCALL_EXTRA_NON_WORKING_DAYS").as_deref(),
        );
        if let Err(error) = &calendar {
            tracing::error!(%error, "the on-call calendar is refused: no period is ended until it is fixed; re-sending goes on");
        }
        let mut policy = CloserPolicy::default();
        if let Some(outcome) =
            settings.parsed("AUTO_CLOSE_OUTCOME", "partial_repair or done", |value| {
                match Outcome::parse(value) {
                    Some(outcome @ (Outcome::PartialRepair | Outcome::Done)) => Some(outcome),
                    _ => None,
                }
            })?
        {
            policy.outcome = outcome;
        }
        if let Some(description) = settings.text("AUTO_CLOSE_DESCRIPTION") {
            policy.description = description;
        }
        policy.concurrency = settings.number("CLOSER_CONCURRENCY", 1..=500, policy.concurrency)?;
        policy.closure = ClosurePolicy::with_retention_days(aws_wiring::retention_days(settings)?);
        let tolerance = settings.number("TICK_TOLERANCE_MINUTES", 0..=720, 30)?;
        let core = CoreConfig::from_settings(settings)?;
        policy.attempts_per_run = core.intent.retry.max_attempts;
        Ok(Self {
            core,
            calendar,
            policy,
            documents: aws_wiring::document_policy(settings)?,
            s3_force_path_style: settings.flag("S3_FORCE_PATH_STYLE", false)?,
            contracts: settings
                .text("RECONCILE_CONTRACTS")
                .unwrap_or_default()
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            tolerance: SignedDuration::from_mins(tolerance),
        })
    }
}
