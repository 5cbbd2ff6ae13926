//! Configuration of the local run, with embedded defaults: no file and no variable is
//! needed to start it.

use oncall_domain::calendar::CalendarConfig;
use partner_api::PartnerDirectory;
use serde::Deserialize;
use settings::Settings;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Partners and their static bearer tokens (`PARTNERS_FILE`, JSON):
/// `{"adminToken": "…", "partners": [{"clientId": "…", "token": "…", "contracts": ["…"]}]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnersConfig {
    pub admin_token: String,
    pub partners: Vec<PartnerEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerEntry {
    pub client_id: String,
    pub token: String,
    pub contracts: Vec<String>,
}

impl PartnersConfig {
    /// The demo partner: token `demo-partner-token`, contract `contract1` (the seed's);
    /// operator token `demo-admin-token`.
    pub fn demo() -> Self {
        Self {
            admin_token: "demo-admin-token".into(),
            partners: vec![PartnerEntry {
                client_id: "demo-partner".into(),
                token: "demo-partner-token".into(),
                contracts: vec!["contract1".into()],
            }],
        }
    }

    pub fn client_of(&self, token: &str) -> Option<String> {
        self.partners
            .iter()
            .find(|partner| partner.token == token)
            .map(|partner| partner.client_id.clone())
    }

    pub fn directory(&self) -> PartnerDirectory {
        let mut directory = PartnerDirectory::default();
        for partner in &self.partners {
            directory.insert(&partner.client_id, partner.contracts.iter().cloned());
        }
        directory
    }

    pub fn contracts(&self) -> HashSet<String> {
        self.partners
            .iter()
            .flat_map(|partner| partner.contracts.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub inbox_dir: PathBuf,
    /// `None`: standard output.
    pub events_file: Option<PathBuf>,
    pub partners: PartnersConfig,
    pub calendar: CalendarConfig,
    pub inbox_poll: Duration,
    /// How long an inbox file must stay unchanged before it is forwarded.
    pub inbox_settle: Duration,
    pub closer_every: Duration,
    /// Where the in-process Intent simulator listens when no Intent is configured.
    pub simulator_listen: SocketAddr,
}

impl LocalConfig {
    /// `LISTEN_ADDR` (127.0.0.1:3000), `DATA_DIR` (./local-bridge-data), `INBOX_DIR`
    /// (DATA_DIR/inbox), `EVENTS_FILE` (DATA_DIR/domain-events.jsonl, `-` for stdout),
    /// `PARTNERS_FILE` (the demo partner), `SIMULATOR_ADDR` (127.0.0.1:4010),
    /// `INBOX_POLL_MS` (10–60000, default 1000), `INBOX_SETTLE_MS` (0–600000, default
    /// 2000), `CLOSER_EVERY_SECS` (1–86400, default 60), and the calendar's
    /// `ONCALL_TIME_ZONE`, `ONCALL_PERIOD_START`, `ONCALL_PERIOD_END`,
    /// `ONCALL_EXTRA_NON_WORKING_DAYS`.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let address = |name: &str, default: &str| -> Result<SocketAddr, String> {
            Ok(settings
                .parsed(name, "an address like 127.0.0.1:3000", |v| v.parse().ok())
                .map_err(|e| e.to_string())?
                .unwrap_or_else(|| default.parse().expect("a valid default address")))
        };
        let millis = |name: &str, range: std::ops::RangeInclusive<u64>, default: u64| {
            settings
                .number(name, range, default)
                .map(Duration::from_millis)
                .map_err(|e| e.to_string())
        };
        let data_dir = PathBuf::from(settings.text_or("DATA_DIR", "local-bridge-data"));
        let partners = match settings.text("PARTNERS_FILE") {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("PARTNERS_FILE {path}: {e}"))?;
                serde_json::from_str(&text).map_err(|e| format!("PARTNERS_FILE {path}: {e}"))?
            }
            None => PartnersConfig::demo(),
        };
        Ok(Self {
            listen: address("LISTEN_ADDR", "127.0.0.1:3000")?,
            inbox_dir: settings
                .text("INBOX_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("inbox")),
            events_file: match settings.text("EVENTS_FILE").as_deref() {
                Some("-") => None,
                Some(path) => Some(PathBuf::from(path)),
                None => Some(data_dir.join("domain-events.jsonl")),
            },
            data_dir,
            partners,
            calendar: CalendarConfig::from_env_values(
                settings.text("ONCALL_TIME_ZONE").as_deref(),
                settings.text("ONCALL_PERIOD_START").as_deref(),
                settings.text("ONCALL_PERIOD_END").as_deref(),
                settings.text("ONCALL_EXTRA_NON_WORKING_DAYS").as_deref(),
            )
            .map_err(|e| e.to_string())?,
            inbox_poll: millis("INBOX_POLL_MS", 10..=60_000, 1_000)?,
            inbox_settle: millis("INBOX_SETTLE_MS", 0..=600_000, 2_000)?,
            closer_every: Duration::from_secs(
                settings
                    .number("CLOSER_EVERY_SECS", 1..=86_400, 60)
                    .map_err(|e| e.to_string())?,
            ),
            simulator_listen: address("SIMULATOR_ADDR", "127.0.0.1:4010")?,
        })
    }
}
