//! The spam tests of a transaction, in the reference server's two stages (FEATURES.md SPAM-05,
//! SPAM-06), and greylisting.
//!
//! - **After MAIL FROM** (envelope and connection): SPF, the HELO host check, the sender
//!   domain's MX, and the DNS block lists (after RCPT TO instead when
//!   `dnsbl_after_mail_from` is off). A total at the delete threshold refuses the sender at once.
//! - **At each RCPT TO**: greylisting of the triplet.
//! - **After DATA**: DKIM, ARC and DMARC, SURBL, SpamAssassin; the total decides: delete (550
//!   5.7.1, or a silent drop when so configured), mark (headers, subject prefix, Junk), or
//!   nothing. Every scanned message gets one `Authentication-Results` header.
//!
//! Nothing here runs for authenticated clients, for clients whose IP range has anti-spam off,
//! or for whitelisted senders (those skip greylisting too). Mail from an incoming relay (our
//! backup MX) is judged on the address that handed it to the relay, read from `Received:` at
//! the end of DATA; its envelope tests wait until then.
//!
//! The tests fail open: a DNS error, an unreachable spamd or a database error while reading the
//! lists makes a test not fire; it never refuses mail by itself.

use crate::message::Received;
use crate::metrics::{AuthResultLabels, Metrics, ResultLabels, TestLabels};
use mc_antispam::auth::{MessageChecks, SenderAuth, SpfCheck, spf_keyword};
use mc_antispam::greylist;
use mc_antispam::verdict::{Outcome, Verdict, one_line};
use mc_policy::antispam::DeleteAction;
use mc_policy::{
    AntispamSettings, Bans, BlacklistKind, DnsBlacklists, IncomingRelays, IpRange, SettingsCache,
    Whitelist, WhitelistKind,
};
use mc_runtime::stores::RedisStore;
use mc_smtp::{Reply, Status};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct Antispam {
    pub settings: SettingsCache,
    /// The whitelist, incoming relays and active block lists, read with the settings' age.
    pub lists: ListsCache,
    pub auth: SenderAuth,
    pub whitelist: Whitelist,
    pub blacklists: DnsBlacklists,
    pub relays: IncomingRelays,
    pub bans: Bans,
    pub pool: sqlx::PgPool,
    pub metrics: Metrics,
}

/// The anti-spam lists as one snapshot: every MAIL FROM consults them, so they are read from
/// PostgreSQL at most once per settings period (`[smtp] antispam_settings_secs`) rather than
/// per transaction. A failed read keeps the last snapshot (empty before the first).
#[derive(Default)]
pub struct Lists {
    whitelist: Vec<mc_policy::WhitelistEntry>,
    relays: Vec<mc_policy::IncomingRelay>,
    dnsbl: Vec<mc_policy::Blacklist>,
    surbl: Vec<mc_policy::Blacklist>,
}

impl Lists {
    /// Whether a client at `ip` sending as `sender` (empty: `<>`) is whitelisted for `kind`.
    pub fn whitelisted(&self, kind: WhitelistKind, ip: IpAddr, sender: &str) -> bool {
        self.whitelist
            .iter()
            .any(|entry| entry.matches(kind, ip, sender))
    }

    pub fn is_relay(&self, ip: IpAddr) -> bool {
        self.relays.iter().any(|relay| relay.contains(ip))
    }
}

pub struct ListsCache {
    ttl: Duration,
    current: tokio::sync::Mutex<Option<(std::time::Instant, Arc<Lists>)>>,
}

impl ListsCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            current: tokio::sync::Mutex::new(None),
        }
    }

    async fn get(&self, antispam: &Antispam) -> Arc<Lists> {
        let mut current = self.current.lock().await;
        if let Some((at, lists)) = current.as_ref()
            && at.elapsed() < self.ttl
        {
            return lists.clone();
        }
        let read = async {
            Ok::<_, mc_policy::PolicyError>(Lists {
                whitelist: antispam.whitelist.list(None).await?,
                relays: antispam.relays.list().await?,
                dnsbl: antispam.blacklists.active(BlacklistKind::Dnsbl).await?,
                surbl: antispam.blacklists.active(BlacklistKind::Surbl).await?,
            })
        };
        match read.await {
            Ok(lists) => {
                let lists = Arc::new(lists);
                *current = Some((std::time::Instant::now(), lists.clone()));
                lists
            }
            Err(error) => {
                tracing::warn!(%error, "anti-spam lists not read; the last ones stay in force");
                current
                    .as_ref()
                    .map(|(_, lists)| lists.clone())
                    .unwrap_or_default()
            }
        }
    }
}

/// What the tests of one transaction found so far.
pub struct Screening {
    pub settings: Arc<AntispamSettings>,
    /// The spam tests run for this transaction.
    pub scan: bool,
    /// Greylisting does not apply (authenticated, anti-spam off for the range, whitelisted).
    pub greylist_exempt: bool,
    /// The client is one of our incoming relays: the envelope tests wait for DATA.
    pub relayed: bool,
    pub spf: Option<SpfCheck>,
    pub verdict: Verdict,
    pub dnsbl_done: bool,
    pub helo: String,
    pub sender: String,
}

/// The decision at the end of DATA.
pub struct DataOutcome {
    /// Our headers to put in front of the client's (Authentication-Results, spam marks).
    pub prefix: String,
    /// The client's header section after our edits; `None`: unchanged.
    pub head: Option<Vec<u8>>,
    pub junk: bool,
    /// Refuse the message with this reply.
    pub reject: Option<Reply>,
    /// Answer 250 and store nothing (`delete_action = drop`).
    pub drop: bool,
}

fn spam_reply(code: u16, status: Status, text: &str) -> Reply {
    Reply::new(code, Some(status), one_line(text))
}

impl Antispam {
    fn count_test(&self, test: &'static str) {
        self.metrics
            .spam_tests
            .get_or_create(&TestLabels { test })
            .inc();
    }

    fn count_auth(&self, method: &'static str, result: &'static str) {
        self.metrics
            .auth_results
            .get_or_create(&AuthResultLabels { method, result })
            .inc();
    }

    fn count_verdict(&self, result: &'static str) {
        self.metrics
            .spam_verdicts
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Stage one, at MAIL FROM. `Err` is the reply refusing the sender.
    pub async fn on_mail(
        &self,
        ip: IpAddr,
        range: &IpRange,
        helo: &str,
        sender: &str,
        authenticated: bool,
    ) -> Result<Screening, Reply> {
        let settings = self.settings.get().await;
        let mut screening = Screening {
            settings: settings.clone(),
            scan: false,
            greylist_exempt: true,
            relayed: false,
            spf: None,
            verdict: Verdict::default(),
            dnsbl_done: false,
            helo: helo.to_string(),
            sender: sender.to_string(),
        };
        if authenticated || !range.antispam {
            return Ok(screening);
        }
        match self
            .whitelist
            .matches(WhitelistKind::Antispam, ip, sender)
            .await
        {
            Ok(true) => {
                self.count_verdict("whitelisted");
                return Ok(screening);
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "anti-spam whitelist not read"),
        }
        screening.greylist_exempt = false;
        screening.scan = settings.enabled;
        screening.relayed = match self.relays.contains(ip).await {
            Ok(relayed) => relayed,
            Err(error) => {
                tracing::warn!(%error, "incoming relays not read");
                false
            }
        };
        let needs_spf = (settings.enabled && (settings.spf_enabled || settings.dmarc_enabled))
            || (settings.greylist_enabled && settings.greylist_bypass_spf_pass);
        if screening.relayed || !needs_spf && !screening.scan {
            return Ok(screening);
        }
        self.envelope_tests(&mut screening, ip, needs_spf).await?;
        Ok(screening)
    }

    /// SPF, HELO, MX and (after MAIL FROM) the DNSBLs for the client at `ip`.
    async fn envelope_tests(
        &self,
        screening: &mut Screening,
        ip: IpAddr,
        needs_spf: bool,
    ) -> Result<(), Reply> {
        let settings = screening.settings.clone();
        let scan = screening.scan;
        let (spf, helo_ok, mx_ok, listed) = tokio::join!(
            async {
                if needs_spf {
                    Some(self.auth.spf(ip, &screening.helo, &screening.sender).await)
                } else {
                    None
                }
            },
            async {
                if scan && settings.helo_check_enabled {
                    Some(self.helo_matches(ip, &screening.helo).await)
                } else {
                    None
                }
            },
            async {
                if scan && settings.mx_check_enabled && !screening.sender.is_empty() {
                    Some(self.sender_has_mx(&screening.sender).await)
                } else {
                    None
                }
            },
            async {
                if scan && settings.dnsbl_enabled && settings.dnsbl_after_mail_from {
                    Some(self.dnsbl(ip).await)
                } else {
                    None
                }
            },
        );
        if let Some(spf) = &spf {
            let result = spf.result();
            self.count_auth("spf", spf_keyword(result));
            if scan && settings.spf_enabled {
                use mc_antispam::auth::Spf;
                match result {
                    Spf::Fail => {
                        if settings.spf_reject_on_fail {
                            self.count_test("spf");
                            self.count_verdict("rejected");
                            return Err(spam_reply(
                                550,
                                Status(5, 7, 23),
                                &format!(
                                    "Blocked by SPF: {} does not permit {ip} to send for it",
                                    spf.domain()
                                ),
                            ));
                        }
                        screening.verdict.add(
                            "spf",
                            settings.spf_score,
                            format!("Blocked by SPF: {} does not permit {ip}", spf.domain()),
                        );
                    }
                    Spf::SoftFail => screening.verdict.add(
                        "spf",
                        (settings.spf_score + 1) / 2,
                        format!("SPF softfail: {} does not vouch for {ip}", spf.domain()),
                    ),
                    _ => {}
                }
            }
        }
        screening.spf = spf;
        if helo_ok == Some(false) {
            screening.verdict.add(
                "helo",
                settings.helo_score,
                "The host name specified in HELO does not match the IP address",
            );
        }
        if mx_ok == Some(false) {
            screening.verdict.add(
                "mx",
                settings.mx_score,
                "Sender domain does not have any MX records",
            );
        }
        if let Some(listed) = listed {
            screening.dnsbl_done = true;
            for (score, message) in listed {
                screening.verdict.add("dnsbl", score, message);
            }
        }
        self.stage_one_verdict(screening)
    }

    /// A total at the delete threshold after the envelope tests: the sender is refused.
    fn stage_one_verdict(&self, screening: &Screening) -> Result<(), Reply> {
        let s = &screening.settings;
        if screening
            .verdict
            .outcome(s.mark_threshold, s.delete_threshold)
            == Outcome::Delete
        {
            for hit in &screening.verdict.hits {
                self.count_test(hit.test);
            }
            self.count_verdict("rejected");
            let reason = screening
                .verdict
                .main_reason()
                .unwrap_or("Rejected as spam");
            return Err(spam_reply(550, Status(5, 7, 1), reason));
        }
        Ok(())
    }

    /// Stage one's recipient part, at each RCPT TO: the DNSBLs when they wait for RCPT, then
    /// greylisting. `Err` is the reply refusing (or deferring) this recipient.
    pub async fn on_rcpt(
        &self,
        screening: &mut Screening,
        ip: IpAddr,
        recipient: &str,
        redis: Option<&RedisStore>,
    ) -> Result<(), Reply> {
        let settings = screening.settings.clone();
        if screening.scan && !screening.relayed && !screening.dnsbl_done && settings.dnsbl_enabled {
            screening.dnsbl_done = true;
            for (score, message) in self.dnsbl(ip).await {
                screening.verdict.add("dnsbl", score, message);
            }
            self.stage_one_verdict(screening)?;
        }
        if !settings.greylist_enabled || screening.greylist_exempt {
            return Ok(());
        }
        self.greylist(screening, ip, recipient, redis).await
    }

    async fn greylist(
        &self,
        screening: &Screening,
        ip: IpAddr,
        recipient: &str,
        redis: Option<&RedisStore>,
    ) -> Result<(), Reply> {
        let settings = &screening.settings;
        let count = |result: &'static str| {
            self.metrics
                .greylist
                .get_or_create(&ResultLabels { result })
                .inc();
        };
        if settings.greylist_bypass_spf_pass
            && screening
                .spf
                .as_ref()
                .is_some_and(|spf| spf.result() == mc_antispam::auth::Spf::Pass)
        {
            count("spf_pass");
            return Ok(());
        }
        let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d);
        match self.domain_greylisting(domain).await {
            Ok(false) => {
                count("domain_off");
                return Ok(());
            }
            Ok(true) => {}
            Err(error) => tracing::warn!(%error, "domain greylisting switch not read"),
        }
        if self
            .lists
            .get(self)
            .await
            .whitelisted(WhitelistKind::Greylist, ip, &screening.sender)
        {
            count("whitelisted");
            return Ok(());
        }
        let deferred = || {
            Reply::new(
                451,
                Some(Status(4, 7, 1)),
                "Greylisted: please try again later",
            )
        };
        let unavailable = |count: &dyn Fn(&'static str)| {
            if settings.greylist_fail_open {
                count("error_open");
                Ok(())
            } else {
                count("error_closed");
                Err(deferred())
            }
        };
        let Some(redis) = redis else {
            return unavailable(&count);
        };
        let key = greylist::key(
            &greylist::client_part(ip, settings.greylist_scope),
            &screening.sender,
            recipient,
        );
        let timing = greylist::Timing {
            delay_secs: i64::from(settings.greylist_delay_minutes) * 60,
            unused_secs: i64::from(settings.greylist_unused_hours) * 3600,
            used_secs: i64::from(settings.greylist_used_hours) * 3600,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Redis must answer quickly; a stalled Redis counts as unavailable.
        let checked = tokio::time::timeout(
            Duration::from_secs(2),
            greylist::check(redis, &key, now, timing),
        )
        .await;
        match checked {
            Ok(Ok(decision)) => {
                count(decision.label());
                if decision.accepts() {
                    Ok(())
                } else {
                    Err(deferred())
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "greylisting: Redis unavailable");
                unavailable(&count)
            }
            Err(_) => {
                tracing::warn!("greylisting: Redis did not answer in time");
                unavailable(&count)
            }
        }
    }

    /// The recipient domain's greylisting switch (true for names not hosted here).
    async fn domain_greylisting(&self, domain: &str) -> Result<bool, sqlx::Error> {
        let row: Option<(bool,)> = sqlx::query_as(
            "SELECT d.greylisting FROM domains d
              WHERE d.name = $1 OR d.id = (SELECT domain_id FROM domain_aliases WHERE name = $1)",
        )
        .bind(domain.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_none_or(|(on,)| on))
    }

    /// Stage two, at the end of DATA.
    pub async fn on_data(
        &self,
        screening: Option<&mut Screening>,
        ip: IpAddr,
        received: &Received,
        authenticated: bool,
    ) -> DataOutcome {
        let hostname = self.auth.hostname();
        let mut outcome = DataOutcome {
            prefix: String::new(),
            head: None,
            junk: false,
            reject: None,
            drop: false,
        };
        if authenticated {
            return outcome;
        }
        let Some(screening) = screening else {
            return outcome;
        };
        let settings = screening.settings.clone();
        if !screening.scan {
            outcome.head = edited_head(received, hostname, None);
            return outcome;
        }
        let max = settings.max_scan_kb.saturating_mul(1024);
        let message = match received.whole(max).await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "message not read for scanning");
                None
            }
        };
        if screening.relayed {
            let (original, helo) = self.original_client(&received.head).await;
            let original = original.unwrap_or(ip);
            if let Some(helo) = helo {
                screening.helo = helo;
            }
            if let Err(reply) = self.envelope_tests(screening, original, true).await {
                outcome.reject = Some(reply);
                return outcome;
            }
            if !screening.dnsbl_done && settings.dnsbl_enabled {
                for (score, message) in self.dnsbl(original).await {
                    screening.verdict.add("dnsbl", score, message);
                }
            }
        }
        let spf = match &screening.spf {
            Some(spf) => spf.clone(),
            None => self.auth.spf(ip, &screening.helo, &screening.sender).await,
        };
        let checks = MessageChecks {
            dkim: settings.dkim_enabled,
            arc: settings.arc_enabled,
            dmarc: settings.dmarc_enabled,
        };
        let report = self.auth.message(&spf, message.as_deref(), checks).await;
        outcome.prefix.push_str(&report.header);
        let verdict = &mut screening.verdict;
        if let Some(dkim) = report.dkim {
            let result = if dkim.signatures == 0 {
                "none"
            } else if dkim.passed > 0 {
                "pass"
            } else if dkim.failed > 0 {
                "fail"
            } else {
                "temperror"
            };
            self.count_auth("dkim", result);
            if dkim.failed > 0 && dkim.passed == 0 {
                verdict.add("dkim", settings.dkim_score, "DKIM signature did not verify");
            }
        }
        if let Some(arc) = report.arc {
            self.count_auth("arc", arc);
        }
        if let Some(dmarc) = &report.dmarc {
            use mc_antispam::auth::DmarcVerdict;
            self.count_auth(
                "dmarc",
                match dmarc.verdict {
                    DmarcVerdict::Pass => "pass",
                    DmarcVerdict::Fail => "fail",
                    DmarcVerdict::None => "none",
                },
            );
            if dmarc.rejects() && settings.dmarc_honor_reject {
                self.count_test("dmarc");
                self.count_verdict("rejected");
                outcome.reject = Some(spam_reply(
                    550,
                    Status(5, 7, 1),
                    &format!("Rejected by the DMARC policy of {}", dmarc.domain),
                ));
                return outcome;
            }
            if dmarc.quarantines() && settings.dmarc_honor_quarantine {
                verdict.forced = true;
                verdict.add(
                    "dmarc",
                    0,
                    format!("Quarantined by the DMARC policy of {}", dmarc.domain),
                );
            }
        }
        if let Some(message) = &message {
            if settings.surbl_enabled {
                for (score, text) in self.surbl(message).await {
                    verdict.add("surbl", score, text);
                }
            }
            if settings.spamassassin_enabled {
                self.spamassassin(&settings, message, verdict).await;
            }
        }
        for hit in &verdict.hits {
            self.count_test(hit.test);
        }
        let mut subject_prefix = None;
        match verdict.outcome(settings.mark_threshold, settings.delete_threshold) {
            Outcome::Delete => {
                if settings.delete_action == DeleteAction::Drop {
                    self.count_verdict("dropped");
                    outcome.drop = true;
                } else {
                    self.count_verdict("rejected");
                    let reason = verdict.main_reason().unwrap_or("Rejected as spam");
                    outcome.reject = Some(spam_reply(550, Status(5, 7, 1), reason));
                }
            }
            Outcome::Mark => {
                self.count_verdict("marked");
                outcome.junk = true;
                outcome.prefix.push_str(&verdict.headers(
                    settings.mark_threshold,
                    settings.add_spam_header,
                    settings.add_reason_header,
                ));
                if settings.subject_prefix_enabled {
                    subject_prefix = Some(settings.subject_prefix.as_str());
                }
            }
            Outcome::Clean => self.count_verdict("clean"),
        }
        outcome.head = edited_head(received, hostname, subject_prefix);
        outcome
    }

    /// Whether the HELO name's addresses include the client's (an address literal must be it).
    async fn helo_matches(&self, ip: IpAddr, helo: &str) -> bool {
        let ip = mc_policy::canonical_ip(ip);
        let literal = helo
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_start_matches("IPv6:");
        if let Ok(address) = literal.parse::<IpAddr>() {
            return mc_policy::canonical_ip(address) == ip;
        }
        match self
            .auth
            .resolver()
            .lookup_ip(format!("{}.", helo.trim_end_matches('.')))
            .await
        {
            Ok(found) => found.iter().any(|a| mc_policy::canonical_ip(a) == ip),
            // Only a definite "no such name / no address" counts against the client.
            Err(error) => !(error.is_nx_domain() || error.is_no_records_found()),
        }
    }

    /// Whether the sender's domain can receive mail: an MX that is not null, or (implicit MX)
    /// an address. DNS errors other than "no such name/record" count as yes.
    async fn sender_has_mx(&self, sender: &str) -> bool {
        let Some((_, domain)) = sender.rsplit_once('@') else {
            return true;
        };
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let resolver = self.auth.resolver();
        match resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let exchanges: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        hickory_resolver::proto::rr::RData::MX(mx) => Some(mx.exchange.to_ascii()),
                        _ => None,
                    })
                    .collect();
                if !exchanges.is_empty() {
                    // RFC 7505 null MX: the domain says it receives no mail.
                    return !(exchanges.len() == 1 && exchanges[0] == ".");
                }
            }
            Err(error) if error.is_nx_domain() => return false,
            Err(error) if error.is_no_records_found() => {}
            Err(_) => return true,
        }
        match resolver.lookup_ip(fqdn.as_str()).await {
            Ok(found) => found.iter().next().is_some(),
            Err(error) => !(error.is_nx_domain() || error.is_no_records_found()),
        }
    }

    /// The active DNSBLs that list `ip`: (score, message) for each.
    async fn dnsbl(&self, ip: IpAddr) -> Vec<(i32, String)> {
        let snapshot = self.lists.get(self).await;
        let lists = &snapshot.dnsbl;
        let ip = mc_policy::canonical_ip(ip);
        let resolver = self.auth.resolver();
        let answers = futures::future::join_all(lists.iter().map(|list| {
            let name = mc_antispam::dnsbl::client_query(ip, &list.zone);
            async move { mc_antispam::dnsbl::answers(resolver, &name).await }
        }))
        .await;
        lists
            .iter()
            .zip(answers)
            .filter(|(list, answers)| {
                answers
                    .iter()
                    .any(|a| mc_policy::answer_matches(&list.expected, *a))
            })
            .map(|(list, _)| {
                let text = if list.message.is_empty() {
                    format!("Listed by {}", list.zone)
                } else {
                    list.message.clone()
                };
                (list.score, text)
            })
            .collect()
    }

    /// The active SURBLs that list a link domain of the message: one hit per list.
    async fn surbl(&self, message: &[u8]) -> Vec<(i32, String)> {
        let snapshot = self.lists.get(self).await;
        let lists = &snapshot.surbl;
        if lists.is_empty() {
            return Vec::new();
        }
        let domains = mc_antispam::links::domains(message);
        let resolver = self.auth.resolver();
        let mut hits = Vec::new();
        for list in lists {
            let answers = futures::future::join_all(domains.iter().map(|domain| {
                let name = mc_antispam::dnsbl::domain_query(domain, &list.zone);
                async move { mc_antispam::dnsbl::answers(resolver, &name).await }
            }))
            .await;
            if let Some((domain, _)) = domains.iter().zip(answers).find(|(_, answers)| {
                answers
                    .iter()
                    .any(|a| mc_policy::answer_matches(&list.expected, *a))
            }) {
                let text = if list.message.is_empty() {
                    format!("Links to {domain}, listed by {}", list.zone)
                } else {
                    format!("{} ({domain})", list.message)
                };
                hits.push((list.score, text));
            }
        }
        hits
    }

    async fn spamassassin(
        &self,
        settings: &AntispamSettings,
        message: &[u8],
        verdict: &mut Verdict,
    ) {
        let limit = Duration::from_secs(30);
        match mc_antispam::spamd::check(
            &settings.spamassassin_host,
            settings.spamassassin_port,
            message,
            limit,
        )
        .await
        {
            Ok(answer) if answer.spam => {
                let score = if settings.spamassassin_use_score {
                    answer.score.round().clamp(0.0, 1000.0) as i32
                } else {
                    settings.spamassassin_score
                };
                verdict.add(
                    "spamassassin",
                    score,
                    format!("Tagged as spam by SpamAssassin ({:.1})", answer.score),
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "SpamAssassin check skipped"),
        }
    }

    /// The client that handed the message to our incoming relay: the first `Received:` (from
    /// the top) whose `from` address is not one of our relays, and the HELO name it gave.
    async fn original_client(&self, head: &[u8]) -> (Option<IpAddr>, Option<String>) {
        let lists = self.lists.get(self).await;
        for (from, address) in received_clients(head) {
            let Some(address) = address else { continue };
            if !lists.is_relay(address) {
                return (Some(address), from);
            }
        }
        (None, None)
    }
}

/// The client's header section without forged fields and with the subject prefix, if that
/// changes anything.
fn edited_head(
    received: &Received,
    hostname: &str,
    subject_prefix: Option<&str>,
) -> Option<Vec<u8>> {
    let edited = mc_antispam::headers::edit(&received.head, hostname, subject_prefix);
    (edited.removed > 0 || edited.head != received.head).then_some(edited.head)
}

/// The `from <helo>` name and the first bracketed address of each `Received:` field, top first.
pub fn received_clients(head: &[u8]) -> Vec<(Option<String>, Option<IpAddr>)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<String> = Vec::new();
    for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            fields.push(line.to_string());
        }
    }
    fields
        .iter()
        .filter_map(|field| {
            let (name, value) = field.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("received")
                .then(|| value.trim().to_string())
        })
        .map(|value| {
            let mut words = value.split_whitespace();
            let helo = match (words.next(), words.next()) {
                (Some(from), Some(name)) if from.eq_ignore_ascii_case("from") => Some(
                    name.trim_matches(|c| c == '(' || c == ')')
                        .to_ascii_lowercase(),
                ),
                _ => None,
            };
            // The address is in the `from` clause only: stop at `by`.
            let from_clause = value
                .to_ascii_lowercase()
                .find(" by ")
                .map_or(value.as_str(), |at| &value[..at]);
            let address = from_clause.split('[').skip(1).find_map(|rest| {
                let inner = rest.split(']').next()?;
                inner
                    .trim_start_matches("IPv6:")
                    .trim_start_matches("ipv6:")
                    .parse::<IpAddr>()
                    .ok()
            });
            (helo, address)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_clients_are_read_top_first() {
        let head = b"Received: from backup.example.test ([198.51.100.7])\r\n\tby mx.example.test with ESMTP; Sat, 1 Jan 2026 00:00:00 +0000\r\nReceived: from sender.example (sender.example [IPv6:2001:db8::5])\r\n by backup.example.test; date\r\nReceived: by local; date\r\nSubject: x\r\n\r\n";
        let found = received_clients(head);
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[0],
            (
                Some("backup.example.test".into()),
                Some("198.51.100.7".parse().unwrap())
            )
        );
        assert_eq!(
            found[1],
            (
                Some("sender.example".into()),
                Some("2001:db8::5".parse().unwrap())
            )
        );
        assert_eq!(found[2], (None, None));
    }

    #[test]
    fn whitelist_and_relays_match_in_memory() {
        let entry = |kind, range: Option<(&str, &str)>, address: &str| mc_policy::WhitelistEntry {
            id: 1,
            kind,
            description: String::new(),
            lower: range.map(|(l, _)| l.parse().unwrap()),
            upper: range.map(|(_, u)| u.parse().unwrap()),
            address: address.into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let lists = Lists {
            whitelist: vec![
                entry(
                    WhitelistKind::Antispam,
                    Some(("192.0.2.0", "192.0.2.255")),
                    "*@partner.example",
                ),
                entry(WhitelistKind::Greylist, None, "*"),
            ],
            relays: vec![mc_policy::IncomingRelay {
                name: "backup".into(),
                lower: "198.51.100.1".parse().unwrap(),
                upper: "198.51.100.9".parse().unwrap(),
                created_at: time::OffsetDateTime::UNIX_EPOCH,
            }],
            ..Lists::default()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(lists.whitelisted(
            WhitelistKind::Antispam,
            ip("192.0.2.7"),
            "A@Partner.example"
        ));
        assert!(lists.whitelisted(
            WhitelistKind::Antispam,
            ip("::ffff:192.0.2.7"),
            "a@partner.example"
        ));
        assert!(!lists.whitelisted(
            WhitelistKind::Antispam,
            ip("192.0.3.7"),
            "a@partner.example"
        ));
        assert!(!lists.whitelisted(WhitelistKind::Antispam, ip("192.0.2.7"), "a@other.example"));
        assert!(!lists.whitelisted(
            WhitelistKind::Antispam,
            ip("2001:db8::1"),
            "a@partner.example"
        ));
        assert!(lists.whitelisted(WhitelistKind::Greylist, ip("2001:db8::1"), ""));
        assert!(lists.is_relay(ip("198.51.100.9")) && !lists.is_relay(ip("198.51.100.10")));
        assert!(!lists.is_relay(ip("::1")));
    }

    proptest::proptest! {
        #[test]
        fn received_parsing_never_panics(head in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = received_clients(&head);
        }
    }
}
