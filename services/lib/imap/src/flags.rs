//! Message flags in a compact form (a session holds one per message of its selected mailbox):
//! the five system flags as bits, anything else (keywords, `\Extension` flags) as strings in
//! their stored spelling. Stored in PostgreSQL as a sorted `text[]` of canonical spellings
//! (`\Seen`, `$Forwarded`), which is what `to_stored` returns.

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::flag::{Flag, FlagFetch};

const SYSTEM: [(&str, u8); 5] = [
    ("\\Answered", 1),
    ("\\Deleted", 2),
    ("\\Draft", 4),
    ("\\Flagged", 8),
    ("\\Seen", 16),
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    system: u8,
    others: Vec<Box<str>>,
}

impl Flags {
    /// From the stored spellings (unknown system-looking names are kept as they are).
    pub fn from_stored<S: AsRef<str>>(stored: &[S]) -> Self {
        let mut flags = Flags::default();
        for name in stored {
            flags.insert(name.as_ref());
        }
        flags
    }

    fn insert(&mut self, name: &str) {
        if let Some((_, bit)) = SYSTEM.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            self.system |= bit;
        } else if !self.others.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            self.others.push(name.into());
            self.others.sort();
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match SYSTEM.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, bit)) => self.system & bit != 0,
            None => self.others.iter().any(|o| o.eq_ignore_ascii_case(name)),
        }
    }

    pub fn is_seen(&self) -> bool {
        self.system & 16 != 0
    }

    pub fn is_deleted(&self) -> bool {
        self.system & 2 != 0
    }

    /// The canonical spellings, sorted (the stored form).
    pub fn to_stored(&self) -> Vec<String> {
        let mut out: Vec<String> = SYSTEM
            .iter()
            .filter(|(_, bit)| self.system & bit != 0)
            .map(|(name, _)| (*name).to_string())
            .chain(self.others.iter().map(|o| o.to_string()))
            .collect();
        out.sort();
        out
    }

    /// For FETCH FLAGS responses. Names that are not valid atoms (never written by us) are
    /// left out rather than sent malformed.
    pub fn to_fetch(&self) -> Vec<FlagFetch<'static>> {
        self.to_stored()
            .iter()
            .filter_map(|name| to_flag(name))
            .map(FlagFetch::Flag)
            .collect()
    }
}

/// A stored spelling as an imap-types flag.
pub fn to_flag(name: &str) -> Option<Flag<'static>> {
    Flag::try_from(name).ok().map(IntoStatic::into_static)
}

/// The stored spelling of a flag from a client (system flags canonical, keywords as sent).
pub fn stored_name(flag: &Flag<'_>) -> String {
    flag.to_string()
}

/// Is this a keyword a client may set (an atom; not `\Recent`)?
pub fn is_settable(flag: &Flag<'_>) -> bool {
    match flag {
        Flag::Extension(_) => !flag.to_string().eq_ignore_ascii_case("\\Recent"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_round_trip_is_canonical_and_sorted() {
        let flags = Flags::from_stored(&["\\seen", "$Forwarded", "\\Deleted", "$Forwarded"]);
        assert_eq!(flags.to_stored(), vec!["$Forwarded", "\\Deleted", "\\Seen"]);
        assert!(flags.is_seen() && flags.is_deleted());
        assert!(flags.contains("$forwarded"));
        assert!(!flags.contains("\\Flagged"));
    }

    #[test]
    fn fetch_form_keeps_every_flag() {
        let flags = Flags::from_stored(&["\\Answered", "Junk"]);
        let rendered: Vec<String> = flags
            .to_fetch()
            .iter()
            .map(|f| match f {
                FlagFetch::Flag(flag) => flag.to_string(),
                FlagFetch::Recent => "\\Recent".into(),
            })
            .collect();
        assert_eq!(rendered, vec!["Junk", "\\Answered"]);
    }
}
