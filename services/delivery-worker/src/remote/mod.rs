//! Remote delivery: the recipients of one message at one remote domain go to the domain's next
//! hop (route, relayer or MX, `hops`) in as few transactions as the recipient limit allows,
//! DKIM-signed when the sender's domain has a key (`dkim`), over STARTTLS when offered (`tls`).
//!
//! Each recipient gets the server's own answer: 2xx delivered, 4xx or a network failure
//! deferred (the next host is tried first), 5xx failed with the server's reply in the bounce.
//! Connections are kept open for a few seconds and reused for the next message to the same
//! host.

mod client;
mod dkim;
mod hops;
mod limits;
pub mod tls;

use crate::Ctx;
use crate::bounce::Failure;
use crate::deliver::Outcome;
use client::{ClientError, Connection, Opened, Opening, Reply};
use hickory_resolver::TokioResolver;
use mc_mailstore::blob::BlobKey;
use mc_policy::{DeliverySettings, TlsMode};
use mc_queue::lease::Claimed;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What remote delivery shares: resolver, TLS trust, settings, idle connections.
pub struct Remote {
    resolver: TokioResolver,
    tls: Arc<tls::TlsClient>,
    settings: DeliverySettings,
    remote_port: u16,
    own_names: Vec<String>,
    own_networks: Vec<ipnet::IpNet>,
    idle: Mutex<HashMap<PoolKey, Vec<IdleConnection>>>,
    limits: limits::Limits,
}

/// A connection waiting for reuse, and since when.
type IdleConnection = (Box<Connection>, Instant);

/// Connections are shared only between identical uses: same server, same name, same login.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    peer: SocketAddr,
    host: String,
    tls: &'static str,
    user: Option<String>,
}

/// How to retry what this delivery deferred.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub retry_minutes: u32,
}

impl Remote {
    pub fn new(
        config: &crate::config::DeliverySection,
        settings: DeliverySettings,
        redis: Option<mc_runtime::stores::RedisStore>,
    ) -> anyhow::Result<Self> {
        // hickory's default query deadline (5 s), as before the builder was shared.
        let resolver =
            mc_antispam::resolver::build(&config.dns_servers, std::time::Duration::from_secs(5))?;
        let mut own_names = vec![config.hostname.to_ascii_lowercase()];
        if let Some(helo) = &config.helo_name {
            own_names.push(helo.to_ascii_lowercase());
        }
        Ok(Self {
            resolver,
            tls: Arc::new(tls::TlsClient::new(config.tls_ca_file.as_deref())?),
            settings,
            remote_port: config.remote_port,
            own_names,
            own_networks: config.own_networks.clone(),
            idle: Mutex::new(HashMap::new()),
            limits: limits::Limits::new(
                redis,
                config.max_connections_per_destination,
                Duration::from_secs(
                    config.connect_timeout_secs + 4 * config.command_timeout_secs + 60,
                ),
                Duration::from_secs(config.destination_wait_secs),
            ),
        })
    }

    /// Whether a host is this cluster (by name or address): the loop guard.
    fn is_own(&self, name: &str, addrs: &[IpAddr]) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.own_names.contains(&name)
            || addrs
                .iter()
                .any(|ip| self.own_networks.iter().any(|net| net.contains(ip)))
    }

    fn take_idle(&self, key: &PoolKey, max_age: Duration) -> Option<Box<Connection>> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(key)?;
        while let Some((connection, since)) = list.pop() {
            if since.elapsed() < max_age {
                return Some(connection);
            }
        }
        None
    }

    fn put_idle(&self, key: PoolKey, connection: Box<Connection>, max_age: Duration) {
        if let Ok(mut idle) = self.idle.lock() {
            // Old connections of every destination go now (they would only be refused later).
            idle.retain(|_, list| {
                list.retain(|(_, since)| since.elapsed() < max_age);
                !list.is_empty()
            });
            idle.entry(key)
                .or_default()
                .push((connection, Instant::now()));
        }
    }
}

/// Delivers `recipients` (one message, one remote domain); one outcome per recipient, in order.
pub async fn deliver(
    ctx: &Ctx,
    domain: &str,
    recipients: &[&Claimed],
) -> (Vec<Outcome>, RetryPolicy) {
    let remote = &ctx.remote;
    let mut policy = RetryPolicy {
        retries: ctx.config.retries,
        retry_minutes: u32::try_from(ctx.config.retry_minutes).unwrap_or(60),
    };
    let all = |outcome: Outcome| {
        recipients
            .iter()
            .map(|_| outcome.clone())
            .collect::<Vec<_>>()
    };
    let hops = match hops::plan(remote, domain).await {
        hops::Plan::Hops {
            hops,
            retries,
            retry_minutes,
        } => {
            policy.retries = retries.unwrap_or(policy.retries);
            policy.retry_minutes = retry_minutes.unwrap_or(policy.retry_minutes);
            hops
        }
        hops::Plan::Fail(status, diagnostic) => {
            return (
                all(Outcome::Failed(Failure::new(status, diagnostic))),
                policy,
            );
        }
        hops::Plan::Defer(reason) => return (all(Outcome::Deferred(reason)), policy),
    };
    let Some(first) = recipients.first() else {
        return (Vec::new(), policy);
    };
    let message = match read_message(ctx, first).await {
        Ok(message) => message,
        Err(reason) => return (all(Outcome::Deferred(reason)), policy),
    };
    let received = count_received(&message);
    if received > ctx.config.max_received_headers {
        let diagnostic = format!(
            "554 5.4.6 mail loop: the message has {received} Received: header fields (at most {})",
            ctx.config.max_received_headers
        );
        return (
            all(Outcome::Failed(Failure::new("5.4.6", diagnostic))),
            policy,
        );
    }
    let message = match dkim::signature(&remote.settings, &first.sender, &message).await {
        Some(header) => {
            ctx.metrics.dkim_signed.inc();
            let mut signed = header.into_bytes();
            signed.extend_from_slice(&message);
            signed
        }
        None => message,
    };
    let mut outcomes = Vec::with_capacity(recipients.len());
    for chunk in recipients.chunks(ctx.config.max_recipients_per_transaction) {
        outcomes.extend(transfer(ctx, &hops, chunk, &message).await);
    }
    (outcomes, policy)
}

async fn read_message(ctx: &Ctx, recipient: &Claimed) -> Result<Vec<u8>, String> {
    let key = BlobKey::parse(&recipient.blob_key).map_err(|e| format!("4.3.0 body key: {e}"))?;
    let offset = u64::try_from(recipient.blob_offset).map_err(|e| e.to_string())?;
    let size = u64::try_from(recipient.size_bytes).map_err(|e| e.to_string())?;
    let body = ctx
        .blobs
        .get_range(&key, offset..offset + size)
        .await
        .map_err(|e| format!("4.3.0 message body unavailable: {e}"))?;
    Ok(body.to_vec())
}

/// `Received:` fields in the header section (the loop guard across servers and forwards).
fn count_received(message: &[u8]) -> usize {
    mc_smtp::dsn::header_section(message)
        .split(|&b| b == b'\n')
        .filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

/// One transaction for `chunk`, trying each host and address until one answers.
async fn transfer(
    ctx: &Ctx,
    hops: &[hops::Hop],
    chunk: &[&Claimed],
    message: &[u8],
) -> Vec<Outcome> {
    let mut last_problem = String::from("4.4.1 no mail host could be reached");
    for hop in hops {
        for ip in &hop.addrs {
            let peer = SocketAddr::new(*ip, hop.port);
            let started = Instant::now();
            let slot = match ctx.remote.limits.acquire(&hop.name).await {
                Ok(slot) => slot,
                Err(limits::Busy) => {
                    ctx.metrics.connections("limited");
                    last_problem = format!(
                        "4.4.5 {}: the limit of {} concurrent deliveries to this host is reached",
                        hop.name, ctx.config.max_connections_per_destination
                    );
                    continue;
                }
            };
            let result = session(ctx, hop, peer, chunk, message).await;
            if let Some(slot) = slot {
                slot.release().await;
            }
            ctx.metrics
                .attempt_seconds
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok((replies, dsn)) => {
                    return replies
                        .into_iter()
                        .map(|reply| outcome(&hop.name, reply, dsn))
                        .collect();
                }
                Err(problem) => {
                    tracing::info!(host = %hop.name, %peer, %problem, "remote host not usable; trying the next");
                    last_problem = problem;
                }
            }
        }
    }
    chunk
        .iter()
        .map(|_| Outcome::Deferred(last_problem.clone()))
        .collect()
}

/// `dsn`: the server took DSN parameters (and so reports success itself, if asked).
fn outcome(host: &str, reply: Reply, dsn: bool) -> Outcome {
    if reply.is_positive() {
        if dsn {
            Outcome::Delivered
        } else {
            Outcome::Relayed(host.to_string())
        }
    } else if reply.is_permanent() {
        let mut failure = Failure::new_owned(reply.status(), reply.one_line());
        failure.remote_mta = Some(host.to_string());
        Outcome::Failed(failure)
    } else {
        Outcome::Deferred(format!("{} (from {host})", reply.one_line()))
    }
}

/// Opens (or reuses) a session to one address and runs the transaction; `Err` means "try the
/// next address" (nothing was accepted).
async fn session(
    ctx: &Ctx,
    hop: &hops::Hop,
    peer: SocketAddr,
    chunk: &[&Claimed],
    message: &[u8],
) -> Result<(Vec<Reply>, bool), String> {
    let remote = &ctx.remote;
    let key = PoolKey {
        peer,
        host: hop.name.clone(),
        tls: match hop.tls {
            TlsMode::Required => "required",
            TlsMode::Optional => "optional",
            TlsMode::None => "none",
        },
        user: hop.auth.as_ref().map(|(user, _)| user.clone()),
    };
    let idle_for = Duration::from_secs(ctx.config.connection_idle_secs);
    // A reused connection that turns out dead is replaced once by a fresh one.
    if let Some(connection) = remote.take_idle(&key, idle_for) {
        ctx.metrics.connections("reused");
        if let Ok(result) = run(ctx, connection, &key, chunk, message).await {
            return Ok(result);
        }
    }
    let helo = ctx
        .config
        .helo_name
        .as_deref()
        .unwrap_or(&ctx.config.hostname);
    let opened = Connection::open(Opening {
        peer,
        host: &hop.name,
        helo,
        connect_timeout: Duration::from_secs(ctx.config.connect_timeout_secs),
        timeout: Duration::from_secs(ctx.config.command_timeout_secs),
        starttls: hop.tls != TlsMode::None,
        tls: &remote.tls,
    })
    .await
    .map_err(|e| format!("4.4.1 {}: {e}", hop.name))?;
    let mut connection = match opened {
        Opened::Ready(connection) => connection,
        Opened::Refused(reply) => {
            ctx.metrics.connections("refused");
            return Err(format!(
                "4.4.1 {} refused the session: {}",
                hop.name,
                reply.one_line()
            ));
        }
    };
    ctx.metrics.connections("opened");
    ctx.metrics.tls(connection.tls.label());
    if let Err(why) = tls::acceptable(hop.tls, &connection.tls) {
        connection.quit().await;
        return Err(format!("4.7.5 {}: {why}", hop.name));
    }
    if let tls::TlsOutcome::Unverified(why) = &connection.tls {
        tracing::info!(host = %hop.name, %peer, reason = %why, "TLS certificate not verified (opportunistic TLS)");
    }
    if let Some((user, password)) = &hop.auth {
        if connection.tls == tls::TlsOutcome::None && hop.tls != TlsMode::None {
            connection.quit().await;
            return Err(format!(
                "4.7.0 {}: not sending the password without TLS (the server did not offer STARTTLS)",
                hop.name
            ));
        }
        match connection.authenticate(user, password).await {
            Ok(None) => {}
            Ok(Some(refused)) => {
                connection.quit().await;
                return Err(format!(
                    "4.7.0 {} refused our login as {user}: {}",
                    hop.name,
                    refused.one_line()
                ));
            }
            Err(error) => return Err(format!("4.4.2 {}: {error}", hop.name)),
        }
    }
    run(ctx, connection, &key, chunk, message)
        .await
        .map_err(|e| format!("4.4.2 {}: {e}", hop.name))
}

/// Runs one transaction; a connection that ends in a clean state goes back to the idle pool.
async fn run(
    ctx: &Ctx,
    mut connection: Box<Connection>,
    key: &PoolKey,
    chunk: &[&Claimed],
    message: &[u8],
) -> Result<(Vec<Reply>, bool), ClientError> {
    let dsn = connection.capabilities.dsn;
    let replies = transaction(&mut connection, chunk, message).await?;
    if ctx.config.connection_idle_secs > 0 {
        // RSET proves the session is still in order before anyone reuses it.
        if let Ok(reply) = connection.command("RSET").await
            && reply.code == 250
        {
            ctx.remote.put_idle(
                key.clone(),
                connection,
                Duration::from_secs(ctx.config.connection_idle_secs),
            );
            return Ok((replies, dsn));
        }
    }
    connection.quit().await;
    Ok((replies, dsn))
}

fn needs_smtputf8(chunk: &[&Claimed]) -> bool {
    chunk
        .iter()
        .any(|r| !r.address.is_ascii() || !r.sender.is_ascii())
}

/// MAIL, RCPT for each recipient, DATA: one reply per recipient.
async fn transaction(
    connection: &mut Connection,
    chunk: &[&Claimed],
    message: &[u8],
) -> Result<Vec<Reply>, ClientError> {
    let Some(first) = chunk.first() else {
        return Ok(Vec::new());
    };
    let caps = connection.capabilities.clone();
    let same = |reply: &Reply| chunk.iter().map(|_| reply.clone()).collect::<Vec<_>>();
    if needs_smtputf8(chunk) && !caps.smtputf8 {
        return Ok(same(&Reply {
            code: 553,
            lines: vec![
                "5.6.7 the receiving server does not support SMTPUTF8 (non-ASCII addresses)".into(),
            ],
        }));
    }
    if let Some(limit) = caps.size
        && limit > 0
        && message.len() as u64 > limit
    {
        return Ok(same(&Reply {
            code: 552,
            lines: vec![format!(
                "5.3.4 the message ({} bytes) is larger than the receiving server accepts ({limit} bytes)",
                message.len()
            )],
        }));
    }
    let mut mail = format!("MAIL FROM:<{}>", first.sender);
    if caps.esmtp {
        if caps.size.is_some() {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if caps.eight_bit_mime && !message.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        if needs_smtputf8(chunk) {
            mail.push_str(" SMTPUTF8");
        }
        if caps.dsn {
            if let Some(ret) = &first.dsn_ret {
                mail.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = &first.dsn_envid {
                mail.push_str(&format!(" ENVID={envid}"));
            }
        }
    }
    let reply = connection.command(&mail).await?;
    if !reply.is_positive() {
        let _ = connection.command("RSET").await;
        return Ok(same(&reply));
    }
    let mut replies = Vec::with_capacity(chunk.len());
    for recipient in chunk {
        let mut rcpt = format!("RCPT TO:<{}>", recipient.address);
        if caps.dsn {
            if let Some(notify) = &recipient.dsn_notify {
                rcpt.push_str(&format!(" NOTIFY={notify}"));
            }
            if let Some(orcpt) = &recipient.dsn_orcpt {
                rcpt.push_str(&format!(" ORCPT={orcpt}"));
            }
        }
        replies.push(connection.command(&rcpt).await?);
    }
    if !replies.iter().any(Reply::is_positive) {
        let _ = connection.command("RSET").await;
        return Ok(replies);
    }
    let reply = connection.command("DATA").await?;
    let final_reply = if reply.code == 354 {
        connection.send_data(message).await?
    } else {
        reply
    };
    for reply in replies.iter_mut() {
        if reply.is_positive() {
            *reply = final_reply.clone();
        }
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    #[test]
    fn received_fields_are_counted_in_the_header_only() {
        let message = b"Received: a\r\nreceived: b\r\nSubject: x\r\n\r\nReceived: in the body\r\n";
        assert_eq!(super::count_received(message), 2);
        assert_eq!(super::count_received(b""), 0);
    }
}
