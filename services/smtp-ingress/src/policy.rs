//! Who may connect, send and receive: the IP range that governs the client (highest priority
//! wins; no range or SMTP switched off means no service), the relay matrix of that range
//! (local/external sender × local/external recipient, each allowed or not and needing AUTH or
//! not), and recipient resolution in the directory.
//!
//! "Local sender" means the MAIL FROM domain is hosted here (a domain or a domain alias), so a
//! client that claims a local sender without authenticating meets the range's local→* auth rule:
//! spoofing a hosted domain from outside is refused. Delivery *to* local recipients from outside
//! needs no AUTH under the default ranges (other servers never authenticate).

use mc_directory::{Directory, DirectoryCache, Rejection, Resolved};
use mc_policy::{IpRange, IpRanges};
use mc_smtp::{Reply, Status};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
pub struct Policy {
    pub directory: Directory,
    pub ip_ranges: IpRanges,
    /// Hosted domains and resolutions, while change notices are heard (see `mc_directory::cache`).
    pub cache: Arc<DirectoryCache>,
    pub metrics: crate::metrics::Metrics,
}

/// The outcome of a refused recipient: the reply and a metric label.
pub struct Refusal {
    pub reply: Reply,
    pub reason: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyFailure {
    #[error("directory: {0}")]
    Directory(#[from] mc_directory::DirectoryError),
    #[error("ip ranges: {0}")]
    Ranges(#[from] mc_policy::PolicyError),
}

impl Policy {
    /// The range governing `ip` if it allows SMTP.
    pub async fn connection(&self, ip: IpAddr) -> Result<Option<IpRange>, PolicyFailure> {
        let now = time::OffsetDateTime::now_utc();
        Ok(self
            .ip_ranges
            .governing(ip, now)
            .await?
            .filter(|range| range.allow_smtp))
    }

    pub async fn is_local_domain(&self, domain: &str) -> Result<bool, PolicyFailure> {
        let key = domain.to_ascii_lowercase();
        if let Some(hosted) = self.cache.hosted(&key, Instant::now()) {
            self.cache_lookup("hit");
            return Ok(hosted);
        }
        self.cache_lookup("miss");
        let ticket = self.cache.ticket();
        let hosted = self.directory.is_hosted(domain).await?;
        // Both answers are kept: this only classifies the sender. A stale "not hosted" for a
        // domain added a moment ago treats its senders as outsiders (no refusal of mail to us;
        // the local-sender AUTH rule applies once the answer expires or a notice arrives).
        self.cache
            .store_hosted(ticket, &key, hosted, Instant::now());
        Ok(hosted)
    }

    async fn resolve(&self, address: &str) -> Result<Resolved, PolicyFailure> {
        if let Some(resolved) = self.cache.resolved(address, Instant::now()) {
            self.cache_lookup("hit");
            return Ok(resolved);
        }
        self.cache_lookup("miss");
        let ticket = self.cache.ticket();
        let resolved = self.directory.resolve(address).await?;
        // Only deliverable answers are kept. A stale "deliver" costs at worst a bounce (the
        // worker resolves again); a stale refusal would be a 5xx the sender never retries.
        if matches!(resolved, Resolved::Deliver { .. }) {
            self.cache
                .store_resolved(ticket, address, resolved.clone(), Instant::now());
        }
        Ok(resolved)
    }

    fn cache_lookup(&self, result: &'static str) {
        self.metrics
            .directory_cache
            .get_or_create(&crate::metrics::ResultLabels { result })
            .inc();
    }

    /// Decides one RCPT. `sender_local` is `None` for the null sender (treated as external).
    pub async fn recipient(
        &self,
        range: &IpRange,
        sender_local: bool,
        authenticated: bool,
        recipient: &mc_types::EmailAddress,
    ) -> Result<Result<(), Refusal>, PolicyFailure> {
        let resolved = self.resolve(&recipient.to_string()).await?;
        let recipient_local = !matches!(resolved, Resolved::NotHosted);
        let (allowed, needs_auth) = match (sender_local, recipient_local) {
            (true, true) => (
                range.allow_local_to_local,
                range.require_auth_local_to_local,
            ),
            (true, false) => (
                range.allow_local_to_external,
                range.require_auth_local_to_external,
            ),
            (false, true) => (
                range.allow_external_to_local,
                range.require_auth_external_to_local,
            ),
            (false, false) => (
                range.allow_external_to_external,
                range.require_auth_external_to_external,
            ),
        };
        // An authenticated client passes the auth rule; the allow rule binds everyone.
        if !allowed {
            return Ok(Err(refusal(
                mc_smtp::replies::relay_denied(),
                "relay_denied",
            )));
        }
        if needs_auth && !authenticated {
            return Ok(Err(refusal(
                mc_smtp::replies::auth_required(),
                "auth_required",
            )));
        }
        Ok(match resolved {
            Resolved::NotHosted | Resolved::Deliver { .. } => Ok(()),
            Resolved::Rejected(rejection) => Err(rejected(rejection)),
        })
    }
}

fn refusal(reply: Reply, reason: &'static str) -> Refusal {
    Refusal { reply, reason }
}

fn rejected(rejection: Rejection) -> Refusal {
    let (status, reason) = match rejection {
        Rejection::UnknownUser => (Status(5, 1, 1), "unknown_user"),
        Rejection::AccountDisabled => (Status(5, 2, 1), "account_disabled"),
        Rejection::AliasDisabled => (Status(5, 2, 1), "alias_disabled"),
        Rejection::ListDisabled => (Status(5, 2, 1), "list_disabled"),
        Rejection::DomainDisabled => (Status(5, 2, 1), "domain_disabled"),
        Rejection::TooManyRecursiveForwards => (Status(5, 4, 6), "forward_loop"),
    };
    Refusal {
        reply: Reply::new(550, Some(status), rejection.to_string()),
        reason,
    }
}
