//! DNS block lists: zones asked about client addresses (DNSBL) or link domains (SURBL), and the
//! `expected` answers that count as listed.

use super::{check_text, unique};
use crate::PolicyError;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::net::Ipv4Addr;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Which DNS block lists a zone belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlacklistKind {
    /// Asked about the client address.
    Dnsbl,
    /// Asked about the domains of links in the body.
    Surbl,
}

impl BlacklistKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dnsbl => "dnsbl",
            Self::Surbl => "surbl",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "surbl" {
            Self::Surbl
        } else {
            Self::Dnsbl
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Blacklist {
    pub kind: BlacklistKind,
    pub zone: String,
    /// Answers that count as listed, e.g. `127.0.0.2-8|127.0.0.10-11`.
    pub expected: String,
    pub score: i32,
    /// Shown to the client when the listing refuses it.
    pub message: String,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBlacklist {
    pub kind: BlacklistKind,
    pub zone: String,
    /// Default `127.0.0.*`.
    pub expected: Option<String>,
    /// 0–1000, default 3.
    pub score: Option<i32>,
    pub message: Option<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// One octet of an expected answer: a value, `*`, or an inclusive range `a-b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Octet {
    Any,
    Range(u8, u8),
}

impl Octet {
    fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Self::Any);
        }
        let number = |t: &str| -> Option<u8> {
            if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        };
        match text.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (number(low)?, number(high)?);
                (low <= high).then_some(Self::Range(low, high))
            }
            None => number(text).map(|n| Self::Range(n, n)),
        }
    }

    fn contains(self, value: u8) -> bool {
        match self {
            Self::Any => true,
            Self::Range(low, high) => (low..=high).contains(&value),
        }
    }
}

/// The `expected` column parsed: alternatives separated by `|`, each four octet patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedAnswers(Vec<[Octet; 4]>);

impl ExpectedAnswers {
    pub fn parse(expected: &str) -> Result<Self, PolicyError> {
        let invalid = || {
            PolicyError::Invalid(format!(
                "expected answers {expected:?}: use IPv4 patterns separated by |, each octet a \
                 number, * or a range a-b (e.g. 127.0.0.2-8|127.0.0.10)"
            ))
        };
        if expected.is_empty() || expected.chars().count() > 200 {
            return Err(invalid());
        }
        let mut alternatives = Vec::new();
        for alternative in expected.split('|') {
            let octets: Vec<Octet> = alternative
                .trim()
                .split('.')
                .map(Octet::parse)
                .collect::<Option<_>>()
                .ok_or_else(invalid)?;
            let octets: [Octet; 4] = octets.try_into().map_err(|_| invalid())?;
            alternatives.push(octets);
        }
        Ok(Self(alternatives))
    }

    pub fn matches(&self, answer: Ipv4Addr) -> bool {
        let answer = answer.octets();
        self.0
            .iter()
            .any(|octets| octets.iter().zip(answer).all(|(o, a)| o.contains(a)))
    }
}

/// Checks `expected` and returns it parsed; an error names the syntax.
pub fn parse_expected(expected: &str) -> Result<ExpectedAnswers, PolicyError> {
    ExpectedAnswers::parse(expected)
}

/// Whether a block list's `answer` counts as listed under `expected`; a pattern that does not
/// parse matches nothing (stored patterns were checked when added).
pub fn answer_matches(expected: &str, answer: Ipv4Addr) -> bool {
    ExpectedAnswers::parse(expected).is_ok_and(|e| e.matches(answer))
}

type BlacklistRow = (String, String, String, i32, String, bool, OffsetDateTime);

fn blacklist(r: BlacklistRow) -> Blacklist {
    Blacklist {
        kind: BlacklistKind::parse(&r.0),
        zone: r.1,
        expected: r.2,
        score: r.3,
        message: r.4,
        active: r.5,
        created_at: r.6,
    }
}

const BLACKLIST_COLUMNS: &str = "kind, zone, expected, score, message, active, created_at";

/// A zone as stored: lower case, without the root's dot, at least two labels of letters,
/// digits, `-` and `_`.
fn normalise_zone(zone: &str) -> Result<String, PolicyError> {
    let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = zone.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if zone.len() > 253 || !zone.contains('.') || !labels_ok {
        return Err(PolicyError::Invalid(format!(
            "{zone:?} is not a DNS zone (e.g. zen.spamhaus.org)"
        )));
    }
    Ok(zone)
}

#[derive(Debug, Clone)]
pub struct DnsBlacklists {
    pool: PgPool,
}

impl DnsBlacklists {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn list(&self, kind: Option<BlacklistKind>) -> Result<Vec<Blacklist>, PolicyError> {
        let rows: Vec<BlacklistRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {BLACKLIST_COLUMNS} FROM dns_blacklists
              WHERE $1::text IS NULL OR kind = $1 ORDER BY kind, zone"
        )))
        .bind(kind.map(BlacklistKind::as_str))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(blacklist).collect())
    }

    /// The lists of `kind` the ingress asks.
    pub async fn active(&self, kind: BlacklistKind) -> Result<Vec<Blacklist>, PolicyError> {
        let rows: Vec<BlacklistRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {BLACKLIST_COLUMNS} FROM dns_blacklists WHERE kind = $1 AND active
              ORDER BY zone"
        )))
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(blacklist).collect())
    }

    pub async fn add(&self, new: &NewBlacklist) -> Result<Blacklist, PolicyError> {
        let zone = normalise_zone(&new.zone)?;
        let expected = new.expected.as_deref().unwrap_or("127.0.0.*").trim();
        parse_expected(expected)?;
        let score = new.score.unwrap_or(3);
        if !(0..=1000).contains(&score) {
            return Err(PolicyError::Invalid(
                "the score must be between 0 and 1000".into(),
            ));
        }
        let message = new.message.as_deref().unwrap_or("");
        check_text("the message", message, 200)?;
        let row: BlacklistRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO dns_blacklists (kind, zone, expected, score, message, active)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {BLACKLIST_COLUMNS}"
        )))
        .bind(new.kind.as_str())
        .bind(&zone)
        .bind(expected)
        .bind(score)
        .bind(message)
        .bind(new.active.unwrap_or(true))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unique(e, format!("the {} zone {zone}", new.kind.as_str())))?;
        Ok(blacklist(row))
    }

    pub async fn remove(&self, kind: BlacklistKind, zone: &str) -> Result<(), PolicyError> {
        let zone = normalise_zone(zone)?;
        let removed = sqlx::query("DELETE FROM dns_blacklists WHERE kind = $1 AND zone = $2")
            .bind(kind.as_str())
            .bind(&zone)
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(not_listed(kind, &zone));
        }
        Ok(())
    }

    pub async fn set_active(
        &self,
        kind: BlacklistKind,
        zone: &str,
        active: bool,
    ) -> Result<Blacklist, PolicyError> {
        let zone = normalise_zone(zone)?;
        let row: Option<BlacklistRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE dns_blacklists SET active = $3 WHERE kind = $1 AND zone = $2
             RETURNING {BLACKLIST_COLUMNS}"
        )))
        .bind(kind.as_str())
        .bind(&zone)
        .bind(active)
        .fetch_optional(&self.pool)
        .await?;
        row.map(blacklist).ok_or_else(|| not_listed(kind, &zone))
    }
}

fn not_listed(kind: BlacklistKind, zone: &str) -> PolicyError {
    PolicyError::NotFound(format!("the {} zone {zone}", kind.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn expected_answers_take_values_stars_ranges_and_alternatives() {
        let spamhaus = "127.0.0.2-8|127.0.0.10-11";
        assert!(answer_matches(spamhaus, ip("127.0.0.2")));
        assert!(answer_matches(spamhaus, ip("127.0.0.8")));
        assert!(answer_matches(spamhaus, ip("127.0.0.11")));
        assert!(!answer_matches(spamhaus, ip("127.0.0.9")));
        assert!(!answer_matches(spamhaus, ip("127.0.0.1")));
        assert!(!answer_matches(spamhaus, ip("127.0.1.2")));
        assert!(answer_matches("127.0.0.*", ip("127.0.0.255")));
        assert!(!answer_matches("127.0.0.*", ip("127.0.1.0")));
        assert!(answer_matches("127.0-1.*.2", ip("127.1.9.2")));
        assert!(answer_matches("127.0.0.2", ip("127.0.0.2")));
        assert!(!answer_matches("127.0.0.2", ip("127.0.0.3")));
        assert!(answer_matches(" 127.0.0.2 | 127.0.0.4 ", ip("127.0.0.4")));
    }

    #[test]
    fn garbage_expected_answers_are_refused_and_match_nothing() {
        for garbage in [
            "",
            "|",
            "127.0.0",
            "127.0.0.0.1",
            "127.0.0.256",
            "127.0.0.8-2",
            "127.0.0.-2",
            "127.0.0.2-",
            "127.0.0.a",
            "127.0.0.+1",
            "127.0.0.0002",
            "127.0.0.**",
            "127.0.0.2||127.0.0.3",
            "::1",
            "127.0.0.1/8",
            &"1".repeat(201),
        ] {
            assert!(parse_expected(garbage).is_err(), "{garbage:?} parsed");
            assert!(!answer_matches(garbage, ip("127.0.0.2")), "{garbage:?}");
        }
    }

    #[test]
    fn zones_are_lower_cased_and_checked() {
        assert_eq!(
            normalise_zone("Zen.Spamhaus.ORG.").unwrap(),
            "zen.spamhaus.org"
        );
        for bad in ["localhost", "", ".", "a..b", "bad zone.org", "x.org/1"] {
            assert!(normalise_zone(bad).is_err(), "{bad:?}");
        }
    }
}
