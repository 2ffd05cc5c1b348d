//! The cases of the SPF suites that do not give the suite's answer here, with the reasons.

use Got::Result as Gives;

/// Cases that cannot be run meaningfully here: (name, why). None at present: the suites' DNS
/// (TIMEOUT included) is all served, and every case runs.
pub const SKIPPED: &[(&str, &str)] = &[];

/// What a known deviation gives instead of the suite's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    Result(&'static str),
    /// The right result, `fail`, with this explanation.
    #[allow(dead_code, reason = "no explanation deviates at present")]
    Explanation(Option<&'static str>),
}

/// Cases where our integration (`mc_antispam::spf` over hickory, through auth.rs) disagrees
/// with the suite: (name, what we get, why). Each must keep giving exactly that, so that a
/// change that fixes or alters one fails here until the list is updated. They apply to both
/// suites (a name is the same case in each), less [`RFC4408_ACCEPTS`] for RFC 4408's. Section
/// numbers are RFC 7208's.
#[rustfmt::skip]
pub const KNOWN_DEVIATIONS: &[(&str, Got, &str)] = &[
    ("null-text", Gives("temperror"), EMPTY_TXT),
];

const EMPTY_TXT: &str = "hickory-proto 0.26.3 refuses a whole DNS message holding a record of no \
    RDATA outside UPDATE (Message::read_records, DecodeError::InvalidEmptyRecord), so a TXT record \
    of no character-string (illegal, RFC 1035 §3.3.14) costs the SPF record beside it: the \
    resolver reports a DNS error, which is temperror (§4.4). The suite wants the empty record \
    ignored (§3.3); no layer above hickory's decoder sees the other records";

/// Cases of [`KNOWN_DEVIATIONS`] whose expectations in the older RFC 4408 suite allow what we
/// give. None at present.
pub const RFC4408_ACCEPTS: &[&str] = &[];

/// Known deviations whose data differ in the RFC 4408 suite; they replace the entries of the
/// same name in [`KNOWN_DEVIATIONS`] there. None at present.
pub const RFC4408_DEVIATIONS: &[(&str, Got, &str)] = &[];
