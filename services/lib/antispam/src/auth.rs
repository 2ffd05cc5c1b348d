//! Sender authentication over our resolver: SPF of the HELO name and of MAIL FROM (RFC 7208, our
//! own evaluator in [`crate::spf`]), and with mail-auth DKIM signatures (RFC 6376), the ARC chain
//! (RFC 8617) and DMARC with alignment and policy (RFC 7489); summarised for scoring and written
//! as one `Authentication-Results` header (RFC 8601) under our host name.

use crate::spf::{self, SpfRequest};
use hickory_resolver::TokioResolver;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator,
    SpfOutput, SpfResult,
};
use std::net::IpAddr;

pub use mail_auth::SpfResult as Spf;

/// The SPF results of one transaction.
#[derive(Debug, Clone)]
pub struct SpfCheck {
    /// The HELO identity; `None` when the HELO name is an address literal (nothing to check).
    pub helo: Option<SpfOutput>,
    /// The MAIL FROM identity (`postmaster@<helo>` for the null sender, RFC 7208 §2.4).
    pub mail_from: SpfOutput,
    pub ip: IpAddr,
    pub helo_name: String,
    /// The reverse path without brackets; empty for the null sender.
    pub sender: String,
}

impl SpfCheck {
    /// The result that counts: MAIL FROM's.
    pub fn result(&self) -> SpfResult {
        self.mail_from.result()
    }

    /// The domain whose policy was evaluated.
    pub fn domain(&self) -> &str {
        self.mail_from.domain()
    }
}

/// DKIM in short: did any signature verify, did any fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DkimSummary {
    pub signatures: usize,
    pub passed: usize,
    /// Signatures that were present and did not verify (fail, neutral or permerror).
    pub failed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcVerdict {
    Pass,
    Fail,
    /// No record, or a DNS error: nothing to act on.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcSummary {
    pub verdict: DmarcVerdict,
    /// The policy to apply to failing mail (`sp=` for subdomains is taken into account).
    pub policy: Policy,
    /// The RFC 5322 From domain.
    pub domain: String,
}

impl DmarcSummary {
    pub fn rejects(&self) -> bool {
        self.verdict == DmarcVerdict::Fail && self.policy == Policy::Reject
    }

    pub fn quarantines(&self) -> bool {
        self.verdict == DmarcVerdict::Fail && self.policy == Policy::Quarantine
    }
}

/// What the message checks found, with the header to prepend.
#[derive(Debug, Clone)]
pub struct AuthReport {
    /// `Authentication-Results: <host>; ...\r\n`
    pub header: String,
    pub dkim: Option<DkimSummary>,
    pub dmarc: Option<DmarcSummary>,
    /// `pass`, `fail`, `none` ... of the ARC chain, when checked.
    pub arc: Option<&'static str>,
}

/// Which message checks to run.
#[derive(Debug, Clone, Copy)]
pub struct MessageChecks {
    pub dkim: bool,
    pub arc: bool,
    pub dmarc: bool,
}

pub struct SenderAuth {
    authenticator: MessageAuthenticator,
    hostname: String,
}

impl SenderAuth {
    pub fn new(resolver: TokioResolver, hostname: &str) -> Self {
        Self {
            authenticator: MessageAuthenticator(resolver),
            hostname: hostname.to_string(),
        }
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub fn resolver(&self) -> &TokioResolver {
        &self.authenticator.0
    }

    /// SPF of the HELO name and of the reverse path (`sender` empty for `<>`), each its own
    /// check_host() (RFC 7208 §2.3, §2.4) by our evaluator ([`crate::spf`]).
    pub async fn spf(&self, ip: IpAddr, helo: &str, sender: &str) -> SpfCheck {
        // An IPv4-mapped IPv6 client is the IPv4 client it is (RFC 7208 §5).
        let ip = ip.to_canonical();
        let helo_name = helo.trim_end_matches('.').to_ascii_lowercase();
        let literal = helo_name.starts_with('[') || helo_name.parse::<IpAddr>().is_ok();
        let helo_check = async {
            if literal || helo_name.is_empty() {
                return None;
            }
            let postmaster = format!("postmaster@{helo_name}");
            Some(self.spf_output(ip, &helo_name, &postmaster, helo).await)
        };
        let mail_from_check = async {
            if sender.is_empty() {
                return None;
            }
            // No '@' at all: the whole path is the domain, the local part "postmaster" (§4.3).
            let domain = sender.rsplit_once('@').map_or(sender, |(_, domain)| domain);
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            Some(self.spf_output(ip, &domain, sender, helo).await)
        };
        let (helo_output, mail_from) = tokio::join!(helo_check, mail_from_check);
        // The null sender: MAIL FROM's identity is postmaster@<HELO name>.
        let mail_from = mail_from.unwrap_or_else(|| match &helo_output {
            Some(output) => output.clone(),
            None => SpfOutput::new(helo_name.clone()).with_result(SpfResult::None),
        });
        SpfCheck {
            helo: helo_output,
            mail_from,
            ip,
            helo_name,
            sender: sender.to_string(),
        }
    }

    /// One identity's check_host() as the `SpfOutput` the DMARC and header code take.
    async fn spf_output(&self, ip: IpAddr, domain: &str, sender: &str, helo: &str) -> SpfOutput {
        let request = SpfRequest {
            ip,
            domain,
            sender,
            helo,
            receiver: &self.hostname,
        };
        let verdict = spf::check_host(self.resolver(), &request).await;
        let output = SpfOutput::new(verdict.domain).with_result(verdict.result);
        match verdict.explanation {
            Some(explanation) => output.with_explanation(explanation),
            None => output,
        }
    }

    /// The message checks and the `Authentication-Results` header. `message` is the client's
    /// bytes (our own trace headers not included); `None` when the message was too big to scan,
    /// in which case only SPF is reported.
    pub async fn message(
        &self,
        spf: &SpfCheck,
        message: Option<&[u8]>,
        checks: MessageChecks,
    ) -> AuthReport {
        let mut results = AuthenticationResults::new(&self.hostname);
        if let Some(helo) = &spf.helo {
            results = results.with_spf_ehlo_result(helo, spf.ip, &spf.helo_name);
        }
        if !spf.sender.is_empty() || spf.helo.is_some() {
            results = results.with_spf_mailfrom_result(
                &spf.mail_from,
                spf.ip,
                &spf.sender,
                &spf.helo_name,
            );
        }
        let parsed = message.and_then(AuthenticatedMessage::parse);
        let Some(parsed) = parsed else {
            return AuthReport {
                header: results.to_header(),
                dkim: None,
                dmarc: None,
                arc: None,
            };
        };
        let dkim = if checks.dkim || checks.dmarc {
            self.authenticator.verify_dkim(&parsed).await
        } else {
            Vec::new()
        };
        let mut report = AuthReport {
            header: String::new(),
            dkim: None,
            dmarc: None,
            arc: None,
        };
        if checks.dkim {
            let mut summary = DkimSummary::default();
            for output in &dkim {
                summary.signatures += 1;
                match output.result() {
                    DkimResult::Pass => summary.passed += 1,
                    DkimResult::Fail(_) | DkimResult::Neutral(_) | DkimResult::PermError(_) => {
                        summary.failed += 1
                    }
                    DkimResult::TempError(_) | DkimResult::None => {}
                }
            }
            report.dkim = Some(summary);
            // No signature: `dkim=none` is added below (mail-auth has no output for it).
            results = results.with_dkim_results(&dkim, parsed.from());
        }
        if checks.arc {
            let arc = self.authenticator.verify_arc(&parsed).await;
            report.arc = Some(match arc.result() {
                DkimResult::Pass => "pass",
                DkimResult::None => "none",
                DkimResult::TempError(_) => "temperror",
                DkimResult::PermError(_) => "permerror",
                DkimResult::Fail(_) | DkimResult::Neutral(_) => "fail",
            });
            results = results.with_arc_result(&arc, spf.ip);
        }
        if checks.dmarc {
            let mail_from_domain = if spf.sender.is_empty() {
                spf.helo_name.as_str()
            } else {
                spf.sender.rsplit_once('@').map_or("", |(_, d)| d)
            };
            let dmarc = self
                .authenticator
                .verify_dmarc(DmarcParameters::new(
                    &parsed,
                    &dkim,
                    mail_from_domain,
                    &spf.mail_from,
                ))
                .await;
            // Pass when an aligned identifier passed; Fail when the domain has a record and
            // nothing aligned passed; temporary and permanent errors decide nothing.
            let verdict = match dmarc.result() {
                DmarcResult::Pass => DmarcVerdict::Pass,
                DmarcResult::Fail(_) => DmarcVerdict::Fail,
                _ => DmarcVerdict::None,
            };
            report.dmarc = Some(DmarcSummary {
                verdict,
                policy: dmarc.policy(),
                domain: dmarc.domain().to_string(),
            });
            if !dmarc.domain().is_empty() {
                results = results.with_dmarc_result(&dmarc);
            }
        }
        report.header = results.to_header();
        if checks.dkim && dkim.is_empty() {
            let end = report.header.trim_end_matches("\r\n").len();
            report.header.replace_range(end.., ";\r\n\tdkim=none\r\n");
        }
        report
    }
}

/// The `spf` keyword of a result, as in `Authentication-Results`.
pub fn spf_keyword(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}
