//! The evaluation of check_host() (RFC 7208 §4.3–§6) for one identity: records fetched and
//! parsed, mechanisms matched in order, include and redirect evaluated recursively under one
//! set of limits, and the explanation of a fail.

use super::dns::{self, DnsFailure};
use super::macros::{Context, MacroString, TooLong, Values};
use super::record::{self, DualCidr, Mechanism, Qualifier, Record};
use super::{MAX_DNS_TERMS, MAX_MX_NAMES, MAX_PTR_NAMES, MAX_VOID_LOOKUPS};
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::Name;
use mail_auth::SpfResult;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// The result of one check_host(), with the explanation of a top-level fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub result: SpfResult,
    pub explanation: Option<String>,
}

impl From<SpfResult> for Outcome {
    fn from(result: SpfResult) -> Self {
        Self {
            result,
            explanation: None,
        }
    }
}

/// What stays the same across the recursive evaluations of one check, and the limits they
/// share (§4.6.4: the counts are global, not per record).
pub struct Evaluation<'a> {
    pub resolver: &'a TokioResolver,
    /// Canonical: an IPv4-mapped address is the IPv4 address (§5).
    pub ip: IpAddr,
    pub sender: &'a str,
    pub local_part: &'a str,
    pub sender_domain: &'a str,
    pub helo: &'a str,
    pub receiver: &'a str,
    pub now: u64,
    pub dns_terms: usize,
    pub void_lookups: usize,
    /// The validated names of `ip`, fetched once for `%{p}`.
    pub validated_names: Option<Vec<Name>>,
}

type Boxed<'f> = Pin<Box<dyn Future<Output = Outcome> + Send + 'f>>;

/// A term's evaluation stopped the check with this result.
type Stop = SpfResult;

impl Evaluation<'_> {
    /// check_host() of `domain` (§4); `explain` when a fail here is the final result (not
    /// inside an include), so that exp= is worth fetching.
    pub fn check_host(&mut self, domain: String, explain: bool) -> Boxed<'_> {
        Box::pin(async move {
            let domain = domain.strip_suffix('.').unwrap_or(&domain);
            // A malformed or single-label domain has no policy (§4.3).
            let Some(name) = dns::name(domain).filter(|name| name.num_labels() >= 2) else {
                return SpfResult::None.into();
            };
            let Ok(records) = dns::txt(self.resolver, &name).await else {
                return SpfResult::TempError.into();
            };
            let mut spf = records.iter().filter(|text| record::is_spf(text));
            let text = match (spf.next(), spf.next()) {
                (None, _) => return SpfResult::None.into(),
                (Some(text), None) => text,
                (Some(_), Some(_)) => {
                    tracing::debug!(domain, "more than one SPF record: permerror");
                    return SpfResult::PermError.into();
                }
            };
            match Record::parse(text) {
                Ok(record) => self.evaluate(&record, domain, explain).await,
                Err(error) => {
                    tracing::debug!(domain, reason = %error.0, "SPF record syntax error");
                    SpfResult::PermError.into()
                }
            }
        })
    }

    async fn evaluate(&mut self, record: &Record, domain: &str, explain: bool) -> Outcome {
        for directive in &record.directives {
            match self.matches(&directive.mechanism, domain).await {
                Ok(false) => {}
                Ok(true) => {
                    let result = match directive.qualifier {
                        Qualifier::Pass => SpfResult::Pass,
                        Qualifier::Fail => SpfResult::Fail,
                        Qualifier::SoftFail => SpfResult::SoftFail,
                        Qualifier::Neutral => SpfResult::Neutral,
                    };
                    let explanation = match &record.explanation {
                        Some(exp) if explain && result == SpfResult::Fail => {
                            self.explain(exp, domain).await
                        }
                        _ => None,
                    };
                    return Outcome {
                        result,
                        explanation,
                    };
                }
                Err(stop) => return stop.into(),
            }
        }
        // redirect= is ignored in a record with `all` (§6.1); as `all` always matches, this
        // only guards the rule.
        let redirect = record.redirect.as_ref().filter(|_| !record.has_all());
        let Some(redirect) = redirect else {
            return SpfResult::Neutral.into();
        };
        if let Err(stop) = self.count_dns_term() {
            return stop.into();
        }
        let Some(target) = self.target(Some(redirect), domain).await else {
            return SpfResult::PermError.into();
        };
        let outcome = self.check_host(target, explain).await;
        if outcome.result == SpfResult::None {
            // No policy at the target, or a malformed target: permerror (§6.1).
            return SpfResult::PermError.into();
        }
        outcome
    }

    async fn matches(&mut self, mechanism: &Mechanism, domain: &str) -> Result<bool, Stop> {
        if mechanism.queries_dns() {
            self.count_dns_term()?;
        }
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(network, prefix) => {
                Ok(record::in_network(self.ip, IpAddr::V4(*network), *prefix))
            }
            Mechanism::Ip6(network, prefix) => {
                Ok(record::in_network(self.ip, IpAddr::V6(*network), *prefix))
            }
            Mechanism::A(spec, cidr) => {
                // A target DNS cannot carry does not exist: no match (§4.3, §4.8).
                let Some(name) = self.target_name(spec.as_ref(), domain).await else {
                    return Ok(false);
                };
                let addresses = dns::addresses(self.resolver, &name, self.ip)
                    .await
                    .map_err(temperror)?;
                if addresses.is_empty() {
                    self.count_void_lookup()?;
                }
                Ok(addresses
                    .iter()
                    .any(|address| self.in_cidr(*address, *cidr)))
            }
            Mechanism::Mx(spec, cidr) => {
                let Some(name) = self.target_name(spec.as_ref(), domain).await else {
                    return Ok(false);
                };
                let exchanges = dns::mx(self.resolver, &name).await.map_err(temperror)?;
                if exchanges.is_empty() {
                    self.count_void_lookup()?;
                }
                if exchanges.len() > MAX_MX_NAMES {
                    tracing::debug!(domain, "more than {MAX_MX_NAMES} MX names: permerror");
                    return Err(SpfResult::PermError);
                }
                for exchange in exchanges.iter().filter(|exchange| !exchange.is_root()) {
                    let addresses = dns::addresses(self.resolver, exchange, self.ip)
                        .await
                        .map_err(temperror)?;
                    if addresses
                        .iter()
                        .any(|address| self.in_cidr(*address, *cidr))
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let Some(target) = self.target_name(spec.as_ref(), domain).await else {
                    return Ok(false);
                };
                // A failed PTR lookup is no match, not temperror (§5.5).
                let Ok(names) = dns::ptr(self.resolver, self.ip).await else {
                    return Ok(false);
                };
                if names.is_empty() {
                    self.count_void_lookup()?;
                }
                // Only names at or below the target could match: validate those alone.
                for name in names.iter().take(MAX_PTR_NAMES) {
                    if target.zone_of(name) && self.validates(name).await {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Exists(spec) => {
                let Some(name) = self.target_name(Some(spec), domain).await else {
                    return Ok(false);
                };
                let exists = dns::has_ipv4(self.resolver, &name)
                    .await
                    .map_err(temperror)?;
                if !exists {
                    self.count_void_lookup()?;
                }
                Ok(exists)
            }
            Mechanism::Include(spec) => {
                let Some(target) = self.target(Some(spec), domain).await else {
                    return Err(SpfResult::PermError);
                };
                match self.check_host(target, false).await.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
                    SpfResult::TempError => Err(SpfResult::TempError),
                    // "none" included is a permerror too (§5.2).
                    SpfResult::PermError | SpfResult::None => Err(SpfResult::PermError),
                }
            }
        }
    }

    fn in_cidr(&self, address: IpAddr, cidr: DualCidr) -> bool {
        let prefix = match address {
            IpAddr::V4(_) => cidr.v4,
            IpAddr::V6(_) => cidr.v6,
        };
        record::in_network(self.ip, address, prefix)
    }

    fn count_dns_term(&mut self) -> Result<(), Stop> {
        self.dns_terms += 1;
        if self.dns_terms > MAX_DNS_TERMS {
            tracing::debug!("more than {MAX_DNS_TERMS} DNS-querying terms: permerror");
            return Err(SpfResult::PermError);
        }
        Ok(())
    }

    fn count_void_lookup(&mut self) -> Result<(), Stop> {
        self.void_lookups += 1;
        if self.void_lookups > MAX_VOID_LOOKUPS {
            tracing::debug!("more than {MAX_VOID_LOOKUPS} void lookups: permerror");
            return Err(SpfResult::PermError);
        }
        Ok(())
    }

    /// Whether `name` has an address equal to the client's (§5.5).
    async fn validates(&self, name: &Name) -> bool {
        // Failed lookups skip the name (§5.5).
        dns::addresses(self.resolver, name, self.ip)
            .await
            .is_ok_and(|addresses| addresses.contains(&self.ip))
    }

    /// `%{p}` for `domain` (§7.3): the validated name equal to it, else one below it, else any,
    /// else "unknown".
    async fn validated_name(&mut self, domain: &str) -> String {
        if self.validated_names.is_none() {
            let mut validated = Vec::new();
            if let Ok(names) = dns::ptr(self.resolver, self.ip).await {
                for name in names.into_iter().take(MAX_PTR_NAMES) {
                    if self.validates(&name).await {
                        validated.push(name);
                    }
                }
            }
            self.validated_names = Some(validated);
        }
        let names = self.validated_names.as_deref().unwrap_or_default();
        let domain = dns::name(domain);
        // 0: the domain itself, 1: a name below it, 2: any other.
        let preference = |name: &&Name| match &domain {
            Some(domain) if domain.zone_of(name) => {
                usize::from(domain.num_labels() != name.num_labels())
            }
            _ => 2,
        };
        names
            .iter()
            .min_by_key(preference)
            .map_or_else(|| "unknown".to_string(), dns::text)
    }

    async fn expand(&mut self, spec: &MacroString, domain: &str) -> Result<String, TooLong> {
        let validated_name = if spec.uses_validated_name() {
            self.validated_name(domain).await
        } else {
            String::new()
        };
        spec.expand(&Values {
            sender: self.sender,
            local_part: self.local_part,
            sender_domain: self.sender_domain,
            domain,
            ip: self.ip,
            validated_name: &validated_name,
            helo: self.helo,
            receiver: self.receiver,
            now: self.now,
        })
    }

    /// The target name of a term: its domain-spec expanded (and cut to length, §7.3), or the
    /// current domain. `None` when the expansion grew too long.
    async fn target(&mut self, spec: Option<&MacroString>, domain: &str) -> Option<String> {
        match spec {
            None => Some(domain.to_string()),
            Some(spec) => {
                let expanded = self.expand(spec, domain).await.ok()?;
                Some(dns::truncate(&expanded).to_string())
            }
        }
    }

    async fn target_name(&mut self, spec: Option<&MacroString>, domain: &str) -> Option<Name> {
        let target = self.target(spec, domain).await?;
        dns::name(&target)
    }

    /// The explanation exp= points at (§6.2); any problem with it means none.
    async fn explain(&mut self, exp: &MacroString, domain: &str) -> Option<String> {
        let name = self.target_name(Some(exp), domain).await?;
        let records = dns::txt(self.resolver, &name).await.ok()?;
        let [text] = records.as_slice() else {
            return None;
        };
        let text = std::str::from_utf8(text).ok()?;
        let explanation = MacroString::parse(text, Context::Explanation).ok()?;
        let expanded = self.expand(&explanation, domain).await.ok()?;
        // The text is printable ASCII, but %{p} and the identities need not be: whoever shows
        // it (an SMTP reply, a header) must not get control characters.
        Some(expanded.chars().map(printable).collect())
    }
}

fn printable(c: char) -> char {
    if c == ' ' || c.is_ascii_graphic() {
        c
    } else {
        '?'
    }
}

fn temperror(_: DnsFailure) -> Stop {
    SpfResult::TempError
}
