//! Contacts travel as vCard 3.0 texts (plain names are also seen). They are tenants'
//! personal data: kept verbatim for Intent, never shown by `Debug`.
//!
//! Parsing uses `calcard` (Stalwart's maintained vCard/iCalendar parser) in its tolerant
//! mode, after normalising the line ends: the seed's own contact starts
//! `BEGIN:VCARD\n\nVERSION:3\r\n…` (mixed line ends and a blank line).

use crate::sensitive::Sensitive;
use calcard::vcard::VCardProperty;
use calcard::{Entry, Parser};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Contact(Sensitive<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("is empty")]
    Empty,
    #[error("starts like a vCard but does not parse as one (BEGIN:VCARD … END:VCARD)")]
    MalformedVCard,
    #[error("is a vCard without a name (FN or N)")]
    VCardWithoutName,
}

impl Contact {
    /// Checks a contact text without ever echoing it: a vCard must parse and carry a name;
    /// anything else must be a non-empty plain name.
    pub fn parse(text: &str) -> Result<Self, ContactError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ContactError::Empty);
        }
        if starts_like_vcard(trimmed) {
            check_vcard(trimmed)?;
        }
        Ok(Self(Sensitive::new(text.to_string())))
    }

    pub fn is_vcard(&self) -> bool {
        starts_like_vcard(self.0.expose().trim())
    }

    /// The text as received, for Intent.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_vcard() {
            "Contact(vCard [redacted])"
        } else {
            "Contact([redacted])"
        })
    }
}

fn starts_like_vcard(text: &str) -> bool {
    text.get(..11)
        .is_some_and(|head| head.eq_ignore_ascii_case("BEGIN:VCARD"))
}

fn check_vcard(text: &str) -> Result<(), ContactError> {
    // Tolerance: unify line ends and drop blank lines before handing it to the parser.
    let normalised: String = text
        .split(['\n', '\r'])
        .filter(|line| !line.trim().is_empty())
        .flat_map(|line| [line, "\r\n"])
        .collect();
    // CR alone ends a line too (old Mac files), as in the normalised text.
    let terminated = text
        .split(['\n', '\r'])
        .rev()
        .find(|line| !line.trim().is_empty())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("END:VCARD"));
    if !terminated {
        return Err(ContactError::MalformedVCard);
    }
    match Parser::new(&normalised).entry() {
        Entry::VCard(card) => {
            let named = card
                .entries
                .iter()
                .any(|entry| matches!(entry.name, VCardProperty::Fn | VCardProperty::N));
            if named {
                Ok(())
            } else {
                Err(ContactError::VCardWithoutName)
            }
        }
        _ => Err(ContactError::MalformedVCard),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SEED_VCARD: &str = "BEGIN:VCARD\n\nVERSION:3\r\nFN;CHARSET=UTF-8:Pierre DUPONT\r\nN;CHARSET=UTF-8:DUPONT;Pierre\r\nTEL;TYPE=WORK,VOICE:0734220902\r\nTEL;TYPE=HOME,VOICE:0685874445\r\nADR;TYPE=WORK:165 Avenue de Bretagne;59000;LILLE;France\r\nROLE;CHARSET=UTF-8:Locataire\r\nEMAIL;CHARSET=UTF-8;TYPE=WORK,INTERNET:p.dupont@internet.fr\r\nEND:VCARD";

    #[test]
    fn the_seed_vcard_parses_and_is_kept_verbatim() {
        let contact = Contact::parse(SEED_VCARD).unwrap();
        assert!(contact.is_vcard());
        assert_eq!(contact.expose(), SEED_VCARD);
        assert_eq!(
            serde_json::to_value(&contact).unwrap(),
            serde_json::Value::String(SEED_VCARD.into())
        );
    }

    #[test]
    fn debug_never_shows_personal_data() {
        let contact = Contact::parse(SEED_VCARD).unwrap();
        let shown = format!("{contact:?} {:?}", vec![contact.clone()]);
        for secret in ["DUPONT", "0685874445", "Bretagne", "p.dupont", "Pierre"] {
            assert!(!shown.contains(secret), "{shown} leaks {secret}");
        }
    }

    /// Old Mac line ends (CR only) are line ends too, as the parser is told after
    /// normalising; kept verbatim.
    #[test]
    fn a_vcard_with_cr_only_line_ends_is_accepted() {
        let cr_only = SEED_VCARD.replace("\r\n", "\r").replace('\n', "\r");
        let contact = Contact::parse(&cr_only).unwrap();
        assert!(contact.is_vcard());
        assert_eq!(contact.expose(), cr_only);
        assert_eq!(
            Contact::parse("BEGIN:VCARD\rVERSION:3.0\rFN:Jo"),
            Err(ContactError::MalformedVCard)
        );
    }

    #[test]
    fn plain_names_are_accepted() {
        assert!(!Contact::parse("Mme Martin").unwrap().is_vcard());
    }

    #[test]
    fn broken_vcards_are_rejected() {
        assert_eq!(Contact::parse("  "), Err(ContactError::Empty));
        assert_eq!(
            Contact::parse("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jo"),
            Err(ContactError::MalformedVCard)
        );
        assert_eq!(
            Contact::parse("BEGIN:VCARD\r\nVERSION:3.0\r\nTEL:0102030405\r\nEND:VCARD"),
            Err(ContactError::VCardWithoutName)
        );
    }
}
