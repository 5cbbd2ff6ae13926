//! Configuration of the local run, with embedded defaults: no file and no variable is
//! needed to start it.

use oncall_domain::calendar::CalendarConfig;
use partner_api::PartnerDirectory;
use serde::Deserialize;
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl LocalConfig {
    /// `LISTEN_ADDR` (127.0.0.1:3000), `DATA_DIR` (./local-bridge-data), `INBOX_DIR`
    /// (DATA_DIR/inbox), `EVENTS_FILE` (DATA_DIR/domain-events.jsonl, `-` for stdout),
    /// `PARTNERS_FILE` (the demo partner), `SIMULATOR_ADDR` (127.0.0.1:4010),
    /// `INBOX_POLL_MS` (1000), `INBOX_SETTLE_MS` (2000), `CLOSER_EVERY_SECS` (60), and the
    /// calendar's
    /// `ONCALL_TIME_ZONE`, `ONCALL_PERIOD_START`, `ONCALL_PERIOD_END`,
    /// `ONCALL_EXTRA_NON_WORKING_DAYS`.
    pub fn from_env() -> Result<Self, String> {
        let parse_addr = |name: &str, default: &str| {
            env(name)
                .unwrap_or_else(|| default.to_string())
                .parse::<SocketAddr>()
                .map_err(|e| format!("{name}: {e}"))
        };
        let data_dir = PathBuf::from(env("DATA_DIR").unwrap_or_else(|| "local-bridge-data".into()));
        let partners = match env("PARTNERS_FILE") {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("PARTNERS_FILE {path}: {e}"))?;
                serde_json::from_str(&text).map_err(|e| format!("PARTNERS_FILE {path}: {e}"))?
            }
            None => PartnersConfig::demo(),
        };
        let millis = |name: &str, default: u64| -> Result<Duration, String> {
            env(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{name} must be a whole number"))
                })
                .transpose()
                .map(|v| Duration::from_millis(v.unwrap_or(default)))
        };
        Ok(Self {
            listen: parse_addr("LISTEN_ADDR", "127.0.0.1:3000")?,
            inbox_dir: env("INBOX_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("inbox")),
            events_file: match env("EVENTS_FILE").as_deref() {
                Some("-") => None,
                Some(path) => Some(PathBuf::from(path)),
                None => Some(data_dir.join("domain-events.jsonl")),
            },
            data_dir,
            partners,
            calendar: CalendarConfig::from_env_values(
                env("ONCALL_TIME_ZONE").as_deref(),
                env("ONCALL_PERIOD_START").as_deref(),
                env("ONCALL_PERIOD_END").as_deref(),
                env("ONCALL_EXTRA_NON_WORKING_DAYS").as_deref(),
            )
            .map_err(|e| e.to_string())?,
            inbox_poll: millis("INBOX_POLL_MS", 1_000)?,
            inbox_settle: millis("INBOX_SETTLE_MS", 2_000)?,
            closer_every: Duration::from_secs(millis("CLOSER_EVERY_SECS", 60)?.as_millis() as u64),
            simulator_listen: parse_addr("SIMULATOR_ADDR", "127.0.0.1:4010")?,
        })
    }
}
