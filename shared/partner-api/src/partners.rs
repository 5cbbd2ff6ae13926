//! Which partner may act on which contracts: configuration, not code.
//!
//! `PARTNER_CONTRACTS` is a JSON object mapping a partner's client id (the Cognito app
//! client id for the Lambda deployment) to its contract references:
//! `{"4l1c3clientid": ["contract1", "contract2"], "b0bclientid": ["contract3"]}`.

use crate::problem::ApiError;
use oncall_domain::PartnerId;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Default)]
pub struct PartnerDirectory {
    contracts: HashMap<String, HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("PARTNER_CONTRACTS must be a JSON object of client id → array of contract references: {0}")]
pub struct PartnerConfigError(String);

impl PartnerDirectory {
    pub fn from_json(text: &str) -> Result<Self, PartnerConfigError> {
        let map: HashMap<String, Vec<String>> =
            serde_json::from_str(text).map_err(|e| PartnerConfigError(e.to_string()))?;
        Ok(Self {
            contracts: map
                .into_iter()
                .map(|(client, contracts)| (client, contracts.into_iter().collect()))
                .collect(),
        })
    }

    /// Adds (or replaces) a partner and its contracts.
    pub fn insert(&mut self, client_id: &str, contracts: impl IntoIterator<Item = String>) {
        self.contracts
            .insert(client_id.to_string(), contracts.into_iter().collect());
    }

    pub fn with_partner<const N: usize>(mut self, client_id: &str, contracts: [&str; N]) -> Self {
        self.contracts.insert(
            client_id.to_string(),
            contracts.iter().map(|c| c.to_string()).collect(),
        );
        self
    }

    /// The partner behind `caller`, if it may act on `contract`.
    pub fn authorize(&self, caller: Option<&str>, contract: &str) -> Result<PartnerId, ApiError> {
        let caller = caller.ok_or(ApiError::Unauthenticated)?;
        match self.contracts.get(caller) {
            Some(contracts) if contracts.contains(contract) => Ok(PartnerId(caller.to_string())),
            _ => Err(ApiError::ForbiddenContract {
                contract: contract.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contract refused is named back only when it is an identifier (a name or a phone
    /// put in its place is not quoted).
    #[test]
    fn a_refused_contract_is_named_only_when_it_is_an_identifier() {
        let directory = PartnerDirectory::from_json(r#"{"alice": ["contract1"]}"#).unwrap();
        let refused = |contract: &str| {
            directory
                .authorize(Some("alice"), contract)
                .unwrap_err()
                .to_string()
        };
        assert!(refused("contract2").contains("\"contract2\""));
        let personal = refused("Pierre DUPONT 0685874445");
        assert!(!personal.contains("DUPONT"), "{personal}");
        assert!(personal.contains("not one of this partner's contracts"));
    }

    #[test]
    fn a_partner_acts_only_on_its_contracts() {
        let directory =
            PartnerDirectory::from_json(r#"{"alice": ["contract1"], "bob": ["contract2"]}"#)
                .unwrap();
        assert_eq!(
            directory.authorize(Some("alice"), "contract1").unwrap(),
            PartnerId("alice".into())
        );
        assert!(matches!(
            directory.authorize(Some("alice"), "contract2"),
            Err(ApiError::ForbiddenContract { .. })
        ));
        assert!(matches!(
            directory.authorize(Some("mallory"), "contract1"),
            Err(ApiError::ForbiddenContract { .. })
        ));
        assert!(matches!(
            directory.authorize(None, "contract1"),
            Err(ApiError::Unauthenticated)
        ));
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(PartnerDirectory::from_json(r#"{"alice": "contract1"}"#).is_err());
        assert!(PartnerDirectory::from_json("").is_err());
    }
}
