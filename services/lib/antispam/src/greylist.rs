//! Greylisting (FEATURES.md GREY-01..10): a triplet (client address or its network, envelope
//! sender, recipient) seen for the first time is answered `451 4.7.1`; a retry after the delay
//! passes, and the triplet is then remembered for `used` hours after its last use. A triplet
//! never retried is forgotten after `unused` hours.
//!
//! Records live in Redis as `greylist:<sha256 of the triplet>` = `first:last:passed` (Unix
//! seconds). The decision is made on the stored times, not on Redis expiry (which only
//! collects garbage), so a test can move a record back in time instead of sleeping. Two
//! replicas racing on one triplet can at worst both defer or both pass: no lock is needed.

use mc_policy::antispam::GreylistScope;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub first: i64,
    pub last: i64,
    pub passed: bool,
}

impl Record {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let first = parts.next()?.parse().ok()?;
        let last = parts.next()?.parse().ok()?;
        let passed = match parts.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        parts.next().is_none().then_some(Self {
            first,
            last,
            passed,
        })
    }

    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.first, self.last, u8::from(self.passed))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub delay_secs: i64,
    pub unused_secs: i64,
    pub used_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// First attempt (or the record expired): deferred, a new record stored.
    New,
    /// Retried before the delay: deferred, the record unchanged.
    TooEarly,
    /// Retried after the delay: passes, the record marked used.
    Passed,
    /// Already passed before: passes, last use refreshed.
    Known,
}

impl Decision {
    pub fn accepts(self) -> bool {
        matches!(self, Self::Passed | Self::Known)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::New => "deferred_new",
            Self::TooEarly => "deferred_early",
            Self::Passed => "passed",
            Self::Known => "known",
        }
    }
}

/// The decision for a triplet whose record is `record`, at `now`, and the record to store with
/// its time to live (seconds); `None` when the record stays as it is.
pub fn decide(
    record: Option<Record>,
    now: i64,
    timing: Timing,
) -> (Decision, Option<(Record, i64)>) {
    let live = record.filter(|r| {
        if r.passed {
            now - r.last < timing.used_secs
        } else {
            now - r.first < timing.unused_secs
        }
    });
    match live {
        None => (
            Decision::New,
            Some((
                Record {
                    first: now,
                    last: now,
                    passed: false,
                },
                timing.unused_secs,
            )),
        ),
        Some(r) if r.passed => (
            Decision::Known,
            Some((Record { last: now, ..r }, timing.used_secs)),
        ),
        Some(r) if now - r.first >= timing.delay_secs => (
            Decision::Passed,
            Some((
                Record {
                    first: r.first,
                    last: now,
                    passed: true,
                },
                timing.used_secs,
            )),
        ),
        Some(_) => (Decision::TooEarly, None),
    }
}

/// The network part of the triplet.
pub fn client_part(ip: IpAddr, scope: GreylistScope) -> String {
    let ip = mc_policy::canonical_ip(ip);
    match (scope, ip) {
        (GreylistScope::Address, ip) => ip.to_string(),
        (GreylistScope::Network, IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        (GreylistScope::Network, IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The Redis key (before the deployment prefix) of a triplet.
pub fn key(client: &str, sender: &str, recipient: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [
        client,
        &sender.to_ascii_lowercase(),
        &recipient.to_ascii_lowercase(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    format!("greylist:{}", hex::encode(hasher.finalize()))
}

/// Looks up and updates one triplet in Redis. An error means Redis could not be asked; the
/// caller applies the fail-open setting.
pub async fn check(
    redis: &mc_runtime::stores::RedisStore,
    key: &str,
    now: i64,
    timing: Timing,
) -> redis::RedisResult<Decision> {
    let key = redis.key(key);
    let mut connection = redis.connection.clone();
    let stored: Option<String> = mc_runtime::store_metrics::redis(
        mc_runtime::store_metrics::RedisGroup::Greylist,
        redis::cmd("GET").arg(&key).query_async(&mut connection),
    )
    .await?;
    let (decision, write) = decide(stored.as_deref().and_then(Record::parse), now, timing);
    if let Some((record, ttl)) = write {
        let _: () = mc_runtime::store_metrics::redis(
            mc_runtime::store_metrics::RedisGroup::Greylist,
            redis::cmd("SET")
                .arg(&key)
                .arg(record.encode())
                .arg("EX")
                .arg(ttl.max(1))
                .query_async(&mut connection),
        )
        .await?;
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        delay_secs: 30 * 60,
        unused_secs: 24 * 3600,
        used_secs: 864 * 3600,
    };

    #[test]
    fn first_attempt_defers_then_retry_after_delay_passes() {
        let (d, w) = decide(None, 1000, T);
        assert_eq!(d, Decision::New);
        let (r, ttl) = w.unwrap();
        assert_eq!(
            (r, ttl),
            (
                Record {
                    first: 1000,
                    last: 1000,
                    passed: false
                },
                T.unused_secs
            )
        );
        assert_eq!(
            decide(Some(r), 1000 + 29 * 60, T),
            (Decision::TooEarly, None)
        );
        let (d, w) = decide(Some(r), 1000 + 30 * 60, T);
        assert_eq!(d, Decision::Passed);
        let (used, ttl) = w.unwrap();
        assert!(used.passed && ttl == T.used_secs);
        // Later mail of the same triplet passes and refreshes the last use (counted from it).
        let (d, w) = decide(Some(used), 1000 + 800 * 3600, T);
        assert_eq!(d, Decision::Known);
        let refreshed = w.unwrap().0;
        assert_eq!(refreshed.last, 1000 + 800 * 3600);
        assert_eq!(
            decide(Some(refreshed), refreshed.last + 863 * 3600, T).0,
            Decision::Known
        );
    }

    #[test]
    fn expired_records_start_again() {
        let unused = Record {
            first: 0,
            last: 0,
            passed: false,
        };
        assert_eq!(decide(Some(unused), 24 * 3600, T).0, Decision::New);
        let used = Record {
            first: 0,
            last: 100,
            passed: true,
        };
        assert_eq!(decide(Some(used), 100 + 864 * 3600, T).0, Decision::New);
        assert_eq!(
            decide(Some(used), 100 + 864 * 3600 - 1, T).0,
            Decision::Known
        );
    }

    #[test]
    fn records_and_keys() {
        let r = Record {
            first: 5,
            last: 7,
            passed: true,
        };
        assert_eq!(Record::parse(&r.encode()), Some(r));
        for bad in ["", "1:2", "1:2:3", "a:b:0", "1:2:0:4"] {
            assert_eq!(Record::parse(bad), None, "{bad}");
        }
        assert_eq!(
            client_part("192.0.2.77".parse().unwrap(), GreylistScope::Network),
            "192.0.2.0/24"
        );
        assert_eq!(
            client_part("::ffff:192.0.2.77".parse().unwrap(), GreylistScope::Address),
            "192.0.2.77"
        );
        assert_eq!(
            client_part("2001:db8:1:2:3::9".parse().unwrap(), GreylistScope::Network),
            "2001:db8:1:2::/64"
        );
        assert_eq!(key("a", "X@Y", "r@s"), key("a", "x@y", "R@S"));
        assert_ne!(key("a", "x@y", "r@s"), key("a", "x@y", "r@t"));
    }
}
