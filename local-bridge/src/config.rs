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

/// Where domain events go, from `EVENTS_FILE`: that file, standard output for `-` (`None`),
/// `DATA_DIR/domain-events.jsonl` when unset. The local run and `bridge-admin --local`
/// read it the same way.
pub fn events_file(value: Option<&str>, data_dir: &std::path::Path) -> Option<PathBuf> {
    match value {
        Some("-") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => Some(data_dir.join("domain-events.jsonl")),
    }
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
    /// Listening beyond loopback was asked for (`ALLOW_REMOTE_ACCESS=true`).
    pub allow_remote_access: bool,
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
            events_file: events_file(settings.text("EVENTS_FILE").as_deref(), &data_dir),
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
            allow_remote_access: settings
                .flag("ALLOW_REMOTE_ACCESS", false)
                .map_err(|e| e.to_string())?,
        })
        .and_then(Self::safe)
    }

    /// Loopback only, unless asked: the demo tokens and the simulator's admin routes are
    /// not for a network. Asked, it is allowed with a warning.
    fn safe(self) -> Result<Self, String> {
        for (name, address) in [
            ("LISTEN_ADDR", self.listen),
            ("SIMULATOR_ADDR", self.simulator_listen),
        ] {
            if address.ip().is_loopback() {
                continue;
            }
            if !self.allow_remote_access {
                return Err(format!(
                    "{name} {address} is not a loopback address: the local run is for this machine (set ALLOW_REMOTE_ACCESS=true to listen beyond it)"
                ));
            }
            tracing::warn!(%address, variable = name, "listening beyond loopback, as ALLOW_REMOTE_ACCESS asks: anyone who can reach it can use the demo tokens");
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &'static [(&'static str, &'static str)]) -> Result<LocalConfig, String> {
        LocalConfig::from_settings(&Settings::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }))
    }

    #[test]
    fn events_go_to_a_file_or_standard_output() {
        let data = std::path::Path::new("data");
        assert_eq!(events_file(Some("-"), data), None);
        assert_eq!(
            events_file(Some("/tmp/e.jsonl"), data),
            Some(PathBuf::from("/tmp/e.jsonl"))
        );
        assert_eq!(
            events_file(None, data),
            Some(PathBuf::from("data/domain-events.jsonl"))
        );
    }

    #[test]
    fn the_local_run_listens_on_loopback_unless_asked() {
        assert!(with(&[]).is_ok());
        let error = with(&[("LISTEN_ADDR", "0.0.0.0:3000")]).unwrap_err();
        assert!(
            error.contains("LISTEN_ADDR 0.0.0.0:3000 is not a loopback address"),
            "{error}"
        );
        assert!(error.contains("ALLOW_REMOTE_ACCESS"), "{error}");
        assert!(with(&[("SIMULATOR_ADDR", "0.0.0.0:4010")]).is_err());
        assert!(
            with(&[
                ("LISTEN_ADDR", "0.0.0.0:3000"),
                ("ALLOW_REMOTE_ACCESS", "true")
            ])
            .is_ok()
        );
    }
}
