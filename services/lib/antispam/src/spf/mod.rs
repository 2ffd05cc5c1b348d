//! SPF: RFC 7208's check_host() over our hickory resolver.
//!
//! - `record`: which TXT record is the policy (exactly one `v=spf1`, §4.5) and its strict
//!   parse: any syntax error anywhere is a permerror (§4.6), unknown modifiers are ignored.
//! - `macros`: macro strings (§7), checked at parse time, expanded with a size bound.
//! - `eval`: the evaluation, with include/redirect recursion and the limits of §4.6.4:
//!   10 DNS-querying terms, 2 void lookups, 10 MX names, 10 PTR names, all per check.
//! - `dns`: the queries. A DNS failure (SERVFAIL, timeout) is temperror; NXDOMAIN and empty
//!   answers are void. A name DNS cannot carry (an empty or over-long label) is a name that
//!   does not exist: no match for a mechanism, "none" for check_host() itself.
//!
//! What it trusts: nothing in the records or the identities; every loop and buffer is bounded
//! by the limits above, `record::MAX_RECORD_LEN` and `macros::MAX_EXPANSION_LEN`, and the
//! whole check by [`CHECK_TIME_LIMIT`]. It never queries the retired SPF record type (§3.1).

mod dns;
mod eval;
mod macros;
mod record;

use hickory_resolver::TokioResolver;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use mail_auth::SpfResult;

/// Most terms that query DNS (include, a, mx, ptr, exists, redirect) in one check (§4.6.4).
pub const MAX_DNS_TERMS: usize = 10;
/// Most lookups answered NXDOMAIN or with nothing in one check (§4.6.4's recommendation).
pub const MAX_VOID_LOOKUPS: usize = 2;
/// Most MX names an `mx` mechanism may have; more is a permerror (§4.6.4).
pub const MAX_MX_NAMES: usize = 10;
/// Most PTR names looked at for `ptr` and `%{p}`; the rest are ignored (§4.6.4).
pub const MAX_PTR_NAMES: usize = 10;
/// Longest a whole check may take; then the result is temperror (§4.6.4 asks for at least 20
/// seconds).
pub const CHECK_TIME_LIMIT: Duration = Duration::from_secs(20);

/// One identity to check (§4.1).
#[derive(Debug, Clone, Copy)]
pub struct SpfRequest<'a> {
    /// The SMTP client's address; an IPv4-mapped IPv6 address counts as the IPv4 one (§5).
    pub ip: IpAddr,
    /// The domain whose policy applies: MAIL FROM's domain, or the HELO name.
    pub domain: &'a str,
    /// MAIL FROM's address (`postmaster@<helo>` for the HELO identity). With no local part
    /// (`@domain`, or no '@' at all) the local part is "postmaster" (§4.3).
    pub sender: &'a str,
    /// The HELO/EHLO argument as the client sent it, `%{h}`.
    pub helo: &'a str,
    /// Our own host name, `%{r}`.
    pub receiver: &'a str,
}

/// The result of check_host().
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfVerdict {
    pub result: SpfResult,
    /// The domain checked, as requested.
    pub domain: String,
    /// The expanded exp= text of a fail (§6.2), when the record has a usable one.
    pub explanation: Option<String>,
}

/// check_host() for `request`, at the current time (`%{t}`).
pub async fn check_host(resolver: &TokioResolver, request: &SpfRequest<'_>) -> SpfVerdict {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    check_host_at(resolver, request, now).await
}

/// check_host() with `now` (seconds since the Unix epoch) as the time.
pub async fn check_host_at(
    resolver: &TokioResolver,
    request: &SpfRequest<'_>,
    now: u64,
) -> SpfVerdict {
    let (local_part, sender_domain) = match request.sender.rsplit_once('@') {
        Some((local_part, domain)) => (local_part, domain),
        None => ("", request.sender),
    };
    let local_part = if local_part.is_empty() {
        "postmaster"
    } else {
        local_part
    };
    let sender = format!("{local_part}@{sender_domain}");
    let verdict = |result, explanation| SpfVerdict {
        result,
        domain: request.domain.to_string(),
        explanation,
    };
    // An address literal is no domain: nothing to look up (§4.3).
    if request.domain.starts_with('[') {
        return verdict(SpfResult::None, None);
    }
    let mut evaluation = eval::Evaluation {
        resolver,
        ip: request.ip.to_canonical(),
        sender: &sender,
        local_part,
        sender_domain,
        helo: request.helo,
        receiver: request.receiver,
        now,
        dns_terms: 0,
        void_lookups: 0,
        validated_names: None,
    };
    let check = evaluation.check_host(request.domain.to_string(), true);
    match tokio::time::timeout(CHECK_TIME_LIMIT, check).await {
        Ok(outcome) => verdict(outcome.result, outcome.explanation),
        Err(_) => {
            tracing::debug!(domain = request.domain, "SPF check over its time limit");
            verdict(SpfResult::TempError, None)
        }
    }
}
