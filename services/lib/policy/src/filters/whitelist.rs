//! The whitelist: senders (client address ranges and/or envelope-sender patterns) that skip
//! every anti-spam test or only greylisting.

use super::{check_text, checked_range};
use crate::PolicyError;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::net::IpAddr;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Which tests a whitelist entry skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WhitelistKind {
    /// Every anti-spam test.
    Antispam,
    /// Greylisting only.
    Greylist,
}

impl WhitelistKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Antispam => "antispam",
            Self::Greylist => "greylist",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "greylist" {
            Self::Greylist
        } else {
            Self::Antispam
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WhitelistEntry {
    pub id: i64,
    pub kind: WhitelistKind,
    pub description: String,
    /// First client address; with `upper`, or both absent for any address.
    #[schema(value_type = Option<String>)]
    pub lower: Option<IpAddr>,
    #[schema(value_type = Option<String>)]
    pub upper: Option<IpAddr>,
    /// Envelope sender pattern; `*` stands for any run of characters.
    pub address: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWhitelistEntry {
    pub kind: WhitelistKind,
    #[serde(default)]
    pub description: String,
    /// Both or neither; neither: any client address.
    #[schema(value_type = Option<String>)]
    pub lower: Option<IpAddr>,
    #[schema(value_type = Option<String>)]
    pub upper: Option<IpAddr>,
    /// Envelope sender pattern (default `*`: any sender, the null sender included).
    pub address: Option<String>,
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none included)
/// and every other character for itself, ignoring case. Greedy with one resumption point, so a
/// pattern with many stars costs at most |pattern|·|text| steps, never exponential time.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    // After a star: where the pattern resumes, and where in the text the star's run ends.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                p += 1;
                resume = Some((p, t));
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                // The last star swallows one more character and matching starts over after it.
                // Earlier stars never need to: the last one can absorb whatever they would.
                Some((after_star, run_end)) => {
                    p = after_star;
                    t = run_end + 1;
                    resume = Some((after_star, run_end + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

type WhitelistRow = (
    i64,
    String,
    String,
    Option<IpNet>,
    Option<IpNet>,
    String,
    OffsetDateTime,
);

fn whitelist_entry(r: WhitelistRow) -> WhitelistEntry {
    WhitelistEntry {
        id: r.0,
        kind: WhitelistKind::parse(&r.1),
        description: r.2,
        lower: r.3.map(|n| n.addr()),
        upper: r.4.map(|n| n.addr()),
        address: r.5,
        created_at: r.6,
    }
}

#[derive(Debug, Clone)]
pub struct Whitelist {
    pool: PgPool,
}

impl Whitelist {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Entries of one kind (or all), oldest first.
    pub async fn list(
        &self,
        kind: Option<WhitelistKind>,
    ) -> Result<Vec<WhitelistEntry>, PolicyError> {
        let rows: Vec<WhitelistRow> = sqlx::query_as(
            "SELECT id, kind, description, lower_ip, upper_ip, address, created_at FROM whitelist
              WHERE $1::text IS NULL OR kind = $1 ORDER BY kind, id",
        )
        .bind(kind.map(WhitelistKind::as_str))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(whitelist_entry).collect())
    }

    pub async fn add(&self, new: &NewWhitelistEntry) -> Result<WhitelistEntry, PolicyError> {
        check_text("the description", &new.description, 200)?;
        let range = match (new.lower, new.upper) {
            (Some(lower), Some(upper)) => Some(checked_range(lower, upper)?),
            (None, None) => None,
            _ => {
                return Err(PolicyError::Invalid(
                    "give both lower and upper, or neither (any address)".into(),
                ));
            }
        };
        let address = new.address.as_deref().unwrap_or("*");
        if address.is_empty()
            || address.chars().count() > 320
            || address.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(PolicyError::Invalid(
                "the address pattern must have 1 to 320 characters, without spaces".into(),
            ));
        }
        let row: WhitelistRow = sqlx::query_as(
            "INSERT INTO whitelist (kind, description, lower_ip, upper_ip, address)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, kind, description, lower_ip, upper_ip, address, created_at",
        )
        .bind(new.kind.as_str())
        .bind(&new.description)
        .bind(range.map(|r| r.0))
        .bind(range.map(|r| r.1))
        .bind(address)
        .fetch_one(&self.pool)
        .await?;
        Ok(whitelist_entry(row))
    }

    pub async fn remove(&self, id: i64) -> Result<(), PolicyError> {
        let removed = sqlx::query("DELETE FROM whitelist WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(PolicyError::NotFound(format!("whitelist entry {id}")));
        }
        Ok(())
    }

    /// Whether a client at `ip` sending as `sender` (empty: the null sender) is whitelisted for
    /// `kind` (see [`WhitelistEntry::matches`]).
    pub async fn matches(
        &self,
        kind: WhitelistKind,
        ip: IpAddr,
        sender: &str,
    ) -> Result<bool, PolicyError> {
        Ok(self
            .list(Some(kind))
            .await?
            .iter()
            .any(|entry| entry.matches(kind, ip, sender)))
    }
}

impl WhitelistEntry {
    /// Whether this entry whitelists a client at `ip` sending as `sender` for `kind`: the
    /// address in its range (no range: any address) and the sender matching its pattern.
    pub fn matches(&self, kind: WhitelistKind, ip: IpAddr, sender: &str) -> bool {
        self.kind == kind
            && match (self.lower, self.upper) {
                (Some(lower), Some(upper)) => super::in_range(ip, lower, upper),
                _ => true,
            }
            && wildcard_match(&self.address, sender)
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn a_lone_star_matches_everything_including_the_null_sender() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anyone@example.org"));
        assert!(wildcard_match("**", ""));
    }

    #[test]
    fn stars_stand_for_any_run_and_case_is_ignored() {
        assert!(wildcard_match("*@example.org", "Alice@Example.ORG"));
        assert!(wildcard_match("alice@*", "alice@example.org"));
        assert!(wildcard_match("a*e@*.org", "alice@example.org"));
        assert!(wildcard_match("*@*example.org", "bob@mail.example.org"));
        assert!(wildcard_match("bounce-*@*", "bounce-@x"));
        assert!(wildcard_match("JÖRG@*", "jörg@example.org"));
        assert!(!wildcard_match("*@example.org", "alice@example.org.evil"));
        assert!(!wildcard_match("alice@example.org", "alice@example.orgx"));
        assert!(!wildcard_match("alice@example.org", ""));
        assert!(!wildcard_match("a*b", "ac"));
        assert!(!wildcard_match("", "x"));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("?", "a"), "only * is special");
    }

    #[test]
    fn pathological_patterns_take_polynomial_time() {
        let text = "a".repeat(20_000);
        let started = std::time::Instant::now();
        assert!(!wildcard_match("*a*a*a*a*a*a*a*a*a*b", &text));
        assert!(wildcard_match("*a*a*a*a*a*a*a*a*a*", &text));
        let pattern = "*a".repeat(150) + "b";
        assert!(!wildcard_match(&pattern, &text));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
}
