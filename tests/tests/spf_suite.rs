//! The openspf SPF test suites (pyspf's `test/`, see `tests/data/spf-rfc7208/ORIGIN.txt` and the
//! LICENSE files beside them) run through our SPF integration, `mc_antispam::auth::SenderAuth::spf`,
//! against the in-harness DNS server (`mc_tests::dns`): RFC 7208's (release 2014.04) and the older
//! RFC 4408 one, whose cases mostly overlap.
//!
//! Each YAML document's `zonedata` is served by one `DnsServer`, the way pyspf's own driver
//! (`test/testspf.py`) serves it:
//! - `SPF` records are served as type 99 and, at names that have no `TXT` entry, also as TXT
//!   (RFC 7208 implementations only look at TXT, so the suite relies on that copy);
//! - `TXT: NONE` serves nothing but stops that copy;
//! - a bare `TIMEOUT` entry makes every type not listed before it fail, and hides what follows it;
//!   a failure is a SERVFAIL here, which the resolver reports at once as the DNS error that
//!   check_host() turns into `temperror` (RFC 7208 §4.4, §5), as it would a timeout;
//! - `\xNN` escapes in records are bytes, not the UTF-8 of U+00NN.
//!
//! SPF there is our own check_host() (`mc_antispam::spf`). Every case must give one of its
//! expected results (and, for `fail`, its explanation: pyspf's `DEFAULT` is "no explanation"),
//! except those in `known::SKIPPED` (not applicable to this setup) and `known::KNOWN_DEVIATIONS`
//! (our evaluator, hickory or auth.rs disagree with the suite; each must still give exactly the
//! recorded answer, so that a change is noticed). Needs no PostgreSQL, Redis or S3.

#[path = "spf_suite/known.rs"]
mod known;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hickory_proto::rr::RecordType;
use known::{Got, KNOWN_DEVIATIONS, RFC4408_ACCEPTS, RFC4408_DEVIATIONS, SKIPPED};
use mc_antispam::auth::{SenderAuth, spf_keyword};
use mc_tests::dns::{DnsServer, SPF_RECORD_TYPE, Zone};
use serde::Deserialize;

const RFC7208_SUITE: &str = include_str!("../data/spf-rfc7208/rfc7208-tests.yml");
const RFC4408_SUITE: &str = include_str!("../data/spf-rfc7208/rfc4408-tests.yml");

/// Our host name, `%{r}` in macros (RFC 7208 §7.3).
const RECEIVER: &str = "mx.receiver.test";

/// The share of all cases that must pass, in percent, so that the lists in `known` cannot grow to
/// hide a broken integration (202 of 203 pass in RFC 7208's suite and 191 of 191 in RFC 4408's;
/// with mail-auth 0.13.3's SPF it was 138 and 132).
const MIN_PASSED_PERCENT: usize = 99;

#[derive(Debug, Deserialize)]
struct Scenario {
    description: String,
    tests: BTreeMap<String, Case>,
    zonedata: BTreeMap<String, Vec<Entry>>,
}

#[derive(Debug, Deserialize)]
struct Case {
    host: String,
    helo: String,
    mailfrom: String,
    result: Expected,
    explanation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expected {
    One(String),
    AnyOf(Vec<String>),
}

impl Expected {
    fn accepts(&self, result: &str) -> bool {
        match self {
            Self::One(one) => one == result,
            Self::AnyOf(any) => any.iter().any(|one| one == result),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Entry {
    /// `TIMEOUT`, the only bare word the suite uses.
    Marker(String),
    Record(BTreeMap<String, serde_norway::Value>),
}

/// What one case gave.
#[derive(Debug)]
struct Outcome {
    result: &'static str,
    explanation: Option<String>,
}

impl Outcome {
    fn is(&self, got: Got) -> bool {
        match got {
            Got::Result(result) => self.result == result,
            Got::Explanation(text) => self.result == "fail" && self.explanation.as_deref() == text,
        }
    }
}

#[tokio::test]
async fn rfc7208_suite_through_sender_auth() {
    let scenarios = parse(RFC7208_SUITE);
    let names = case_names(&scenarios);
    let listed = SKIPPED.iter().map(|(name, _)| name);
    for name in listed.chain(KNOWN_DEVIATIONS.iter().map(|(name, _, _)| name)) {
        assert!(
            names.contains(name),
            "listed case {name} is not in the suite"
        );
    }
    let deviations: Vec<_> = KNOWN_DEVIATIONS.iter().collect();
    run_suite("rfc7208", &scenarios, &deviations).await;
}

/// RFC 4408's suite, for what RFC 7208 left unchanged: the same deviations apply, less those its
/// expectations allow ([`RFC4408_ACCEPTS`]) and those with other data ([`RFC4408_DEVIATIONS`]).
#[tokio::test]
async fn rfc4408_suite_through_sender_auth() {
    let scenarios = parse(RFC4408_SUITE);
    let names = case_names(&scenarios);
    let replaced = |name: &str| {
        RFC4408_ACCEPTS.contains(&name) || RFC4408_DEVIATIONS.iter().any(|(own, _, _)| *own == name)
    };
    for name in RFC4408_ACCEPTS
        .iter()
        .chain(RFC4408_DEVIATIONS.iter().map(|(name, _, _)| name))
    {
        assert!(names.contains(name), "{name} is not in the RFC 4408 suite");
        let known = KNOWN_DEVIATIONS.iter().any(|(known, _, _)| known == name);
        assert!(known, "{name} is no known deviation");
    }
    let deviations: Vec<_> = KNOWN_DEVIATIONS
        .iter()
        .filter(|(name, _, _)| !replaced(name))
        .chain(RFC4408_DEVIATIONS)
        .collect();
    run_suite("rfc4408", &scenarios, &deviations).await;
}

fn case_names(scenarios: &[Scenario]) -> BTreeSet<&str> {
    scenarios
        .iter()
        .flat_map(|s| s.tests.keys().map(String::as_str))
        .collect()
}

/// Runs every case, prints a summary and fails on any answer neither right nor recorded in
/// `deviations`.
async fn run_suite(suite: &str, scenarios: &[Scenario], deviations: &[&(&str, Got, &str)]) {
    let (mut total, mut passed, mut skipped, mut deviated) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for scenario in scenarios {
        let server = DnsServer::start(zone(&scenario.zonedata));
        let auth = SenderAuth::new(server.resolver(), RECEIVER);
        for (name, case) in &scenario.tests {
            total += 1;
            if SKIPPED.iter().any(|(skip, _)| skip == name) {
                skipped += 1;
                continue;
            }
            let outcome = run(&auth, case).await;
            let deviation = deviations.iter().find(|(known, _, _)| known == name);
            match (deviation, check(case, &outcome)) {
                (None, Ok(())) => passed += 1,
                (None, Err(why)) => {
                    failures.push(format!("{name} ({}): {why}", scenario.description));
                }
                (Some((_, got, _)), Err(_)) if outcome.is(*got) => deviated += 1,
                (Some((_, got, _)), _) => failures.push(format!(
                    "{name}: a known deviation giving {got:?} now gives {outcome:?} (the suite \
                     wants {:?}, explanation {:?}): update KNOWN_DEVIATIONS",
                    case.result, case.explanation
                )),
            }
        }
    }
    println!(
        "{suite} suite: {passed} passed, {skipped} skipped, {deviated} known deviations, \
         {} unexpected, of {total} cases",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "unexpected results:\n{}",
        failures.join("\n")
    );
    assert!(
        passed * 100 >= total * MIN_PASSED_PERCENT,
        "only {passed} of {total} cases passed"
    );
}

fn parse(suite: &str) -> Vec<Scenario> {
    serde_norway::Deserializer::from_str(suite)
        .map(|document| Scenario::deserialize(document).expect("a suite document"))
        .collect()
}

/// SPF of the case's connection; the result is MAIL FROM's, which for the null sender is the
/// HELO identity's (RFC 7208 §2.4).
async fn run(auth: &SenderAuth, case: &Case) -> Outcome {
    let ip: IpAddr = case.host.parse().expect("host is an IP address");
    let check = auth.spf(ip, &case.helo, &case.mailfrom).await;
    Outcome {
        result: spf_keyword(check.result()),
        explanation: check.mail_from.explanation().map(str::to_string),
    }
}

fn check(case: &Case, outcome: &Outcome) -> Result<(), String> {
    if !case.result.accepts(outcome.result) {
        return Err(format!(
            "expected {:?}, got {}",
            case.result, outcome.result
        ));
    }
    // pyspf's driver sets the default explanation to "DEFAULT": no usable exp= record.
    let expected = match case.explanation.as_deref() {
        _ if outcome.result != "fail" => return Ok(()),
        None => return Ok(()),
        Some("DEFAULT") => None,
        Some(text) => Some(text),
    };
    if outcome.explanation.as_deref() == expected {
        Ok(())
    } else {
        Err(format!(
            "result {}, explanation {:?} instead of {expected:?}",
            outcome.result, outcome.explanation
        ))
    }
}

/// Record types a `TIMEOUT` marker makes fail when the name has none of them before it.
const TIMEOUT_TYPES: [RecordType; 7] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
    RecordType::TXT,
    RecordType::PTR,
    RecordType::CNAME,
    SPF_RECORD_TYPE,
];

/// The DNS of one scenario, as pyspf's driver serves it (see the module comment).
fn zone(zonedata: &BTreeMap<String, Vec<Entry>>) -> Zone {
    let mut zone = Zone::default();
    for (name, entries) in zonedata {
        let has_txt = entries
            .iter()
            .any(|entry| matches!(entry, Entry::Record(record) if record.contains_key("TXT")));
        let mut served = BTreeSet::new();
        let mut spf_copies = Vec::new();
        let mut timed_out = false;
        for entry in entries {
            let record = match entry {
                Entry::Marker(word) if word == "TIMEOUT" => {
                    timed_out = true;
                    break;
                }
                Entry::Marker(word) => panic!("{name}: unknown entry {word:?}"),
                Entry::Record(record) => record,
            };
            for (kind, value) in record {
                if value.as_str() == Some("NONE") {
                    continue;
                }
                let record_type = add_record(&mut zone, name, kind, value);
                served.insert(record_type);
                if record_type == SPF_RECORD_TYPE {
                    spf_copies.push(value);
                }
            }
        }
        if timed_out {
            for record_type in TIMEOUT_TYPES.iter().filter(|t| !served.contains(*t)) {
                zone.servfail_type(name, *record_type);
            }
        } else if !has_txt {
            for value in spf_copies {
                zone.txt_strings(name, &character_strings(value));
            }
        }
    }
    zone
}

/// Adds one `{TYPE: value}` record (or that type's failure, for the value `TIMEOUT`); returns
/// its type.
fn add_record(zone: &mut Zone, name: &str, kind: &str, value: &serde_norway::Value) -> RecordType {
    let record_type = match kind {
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        "MX" => RecordType::MX,
        "PTR" => RecordType::PTR,
        "CNAME" => RecordType::CNAME,
        "TXT" => RecordType::TXT,
        "SPF" => SPF_RECORD_TYPE,
        other => panic!("{name}: unknown record type {other}"),
    };
    let text = || {
        value
            .as_str()
            .unwrap_or_else(|| panic!("{name} {kind}: not a string: {value:?}"))
    };
    if value.as_str() == Some("TIMEOUT") {
        zone.servfail_type(name, record_type);
        return record_type;
    }
    match kind {
        "A" => zone.a(name, text().parse().expect("an IPv4 address")),
        "AAAA" => zone.aaaa(name, text().parse().expect("an IPv6 address")),
        "MX" => {
            let pair = value.as_sequence().expect("MX is [preference, exchange]");
            let preference = pair[0].as_u64().and_then(|p| u16::try_from(p).ok());
            let exchange = pair[1].as_str().expect("MX exchange");
            zone.mx(name, preference.expect("MX preference"), exchange)
        }
        "PTR" => zone.ptr_at(name, text()),
        "CNAME" => zone.cname(name, text()),
        "TXT" => zone.txt_strings(name, &character_strings(value)),
        _ => zone.spf_type(name, &character_strings(value)),
    };
    record_type
}

/// The character-strings of a TXT or SPF value: a list is one string per item; a single string
/// is cut into 255-byte strings as a publisher would. `\xNN` escapes are the byte NN.
fn character_strings(value: &serde_norway::Value) -> Vec<Vec<u8>> {
    match value {
        serde_norway::Value::String(text) => {
            let bytes = latin1(text);
            if bytes.is_empty() {
                vec![bytes]
            } else {
                bytes.chunks(255).map(<[u8]>::to_vec).collect()
            }
        }
        serde_norway::Value::Sequence(items) => items
            .iter()
            .map(|item| latin1(item.as_str().expect("a TXT string")))
            .collect(),
        other => panic!("not TXT data: {other:?}"),
    }
}

/// YAML has no byte strings: `"\x96"` is U+0096. The suite means the byte.
fn latin1(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(byte) => bytes.push(byte),
            Err(_) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    bytes
}
