//! Connection and relay policy shared by the protocol services.
//!
//! For now: IP ranges (the reference server's model). A range has a priority (0–1000, highest
//! wins), inclusive lower/upper addresses, per-protocol switches, the relay matrix (which
//! sender→recipient categories may be delivered, and which need SMTP authentication), anti-spam
//! and anti-virus switches, and an optional expiry (auto-ban uses it). An address that matches no
//! live range gets no service at all. Greylisting, auto-ban and rate limits join this crate later.
#![forbid(unsafe_code)]

pub mod antispam;
mod bans;
mod delivery;
mod filters;
mod ip_ranges;

pub use antispam::{AntispamSettings, SettingsCache};
pub use bans::{ADMIN_BAN_PRIORITY, AUTO_BAN_PRIORITY, Ban, Bans, auth_failure_key};
pub use delivery::{
    DeliverySettings, DkimRecord, DkimSigningKey, NewRelayer, NewRoute, NextHop, Relayer, Route,
    TlsMode,
};
pub use filters::{
    Blacklist, BlacklistKind, DnsBlacklists, ExpectedAnswers, IncomingRelay, IncomingRelays,
    NewBlacklist, NewIncomingRelay, NewWhitelistEntry, Whitelist, WhitelistEntry, WhitelistKind,
    answer_matches, parse_expected, wildcard_match,
};
pub use ip_ranges::{IpRange, IpRanges, NewIpRange, PolicyError, canonical_ip};
