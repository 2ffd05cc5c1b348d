//! One SMTP session over TCP: drives the sans-IO [`mc_smtp::Session`] with bytes from the
//! connection, asks [`crate::policy`] and the directory, and stores accepted messages through
//! [`crate::accept`]. Every wait has a deadline (command timeout, session limit); every refusal
//! is counted so that a client sending junk is disconnected.

use crate::Ctx;
use crate::accept::{self, Envelope};
use crate::config::BareLineEndingPolicy;
use crate::message::{Additions, Defect, Limits, MessageBuilder};
use mc_directory::AuthOutcome;
use mc_policy::IpRange;
use mc_runtime::connection::{BoxStream, Connection, ReadError};
use mc_smtp::{Action, BareLineEndings, DataDecoder, Progress, Reply, Session, replies};
use mc_types::Secret;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Mx,
    Submission,
    Submissions,
}

impl ListenerKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Mx => "mx",
            Self::Submission => "submission",
            Self::Submissions => "submissions",
        }
    }
}

/// State of the session the core does not own: who the client is and what it proved.
struct Client {
    ip: IpAddr,
    listener: ListenerKind,
    range: IpRange,
    /// `(account id, credentials stamp)` after a successful AUTH.
    account: Option<(i64, String)>,
    sender_local: bool,
    /// A BDAT message being received across chunks.
    chunked: Option<(Uuid, MessageBuilder)>,
    /// The spam tests of the current transaction.
    screening: Option<crate::antispam::Screening>,
}

enum Flow {
    Continue,
    Close,
}

pub async fn run(ctx: Arc<Ctx>, stream: BoxStream, ip: IpAddr, kind: ListenerKind, tls: bool) {
    let config = &ctx.config;
    let deadline = Instant::now() + Duration::from_secs(config.session_timeout_secs);
    let mut connection = Connection::new(
        stream,
        Duration::from_secs(config.command_timeout_secs),
        deadline,
        ctx.shutdown.clone(),
    );
    let range = match ctx.policy.connection(ip).await {
        Ok(Some(range)) => range,
        Ok(None) => {
            ctx.metrics
                .refused_connections
                .get_or_create(&reason("ip_range"))
                .inc();
            replies::connection_refused().write_to(connection.output());
            connection.shutdown().await;
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "IP range lookup failed");
            replies::temporary_failure().write_to(connection.output());
            connection.shutdown().await;
            return;
        }
    };
    let session_config = mc_smtp::SessionConfig {
        hostname: config.hostname.clone(),
        max_message_bytes: config.max_message_bytes,
        max_recipients: config.max_recipients,
        max_bad_commands: config.max_bad_commands,
        max_auth_failures: config.max_auth_failures,
        vrfy: match config.vrfy {
            crate::config::VrfyReply::Disabled => mc_smtp::VrfyMode::Disabled,
            crate::config::VrfyReply::Ambiguous => mc_smtp::VrfyMode::Ambiguous,
        },
        starttls: ctx.tls.is_some() && kind != ListenerKind::Submissions,
        auth: true,
        allow_plaintext_auth: config.allow_plaintext_auth,
        require_auth: kind != ListenerKind::Mx,
        allow_empty_sender: config.allow_empty_sender,
        postmaster: ctx.postmaster.clone(),
    };
    let mut session = Session::new(session_config, tls);
    let mut client = Client {
        ip,
        listener: kind,
        range,
        account: None,
        sender_local: false,
        chunked: None,
        screening: None,
    };
    session.banner().write_to(connection.output());
    loop {
        let line = match connection.read_line(config.max_line_bytes).await {
            Ok(line) => line,
            Err(ReadError::TooLong) => {
                let action = session.count_error(replies::line_too_long());
                match perform(&ctx, &mut connection, &mut session, &mut client, action).await {
                    Flow::Continue => continue,
                    Flow::Close => break,
                }
            }
            Err(error) => {
                end_on_read_error(&ctx, &mut connection, error).await;
                return;
            }
        };
        if !session.expects_auth_response() {
            ctx.metrics
                .commands
                .get_or_create(&command_label(&line))
                .inc();
        }
        let action = session.line(&line);
        if let Flow::Close = perform(&ctx, &mut connection, &mut session, &mut client, action).await
        {
            break;
        }
    }
    connection.shutdown().await;
}

async fn end_on_read_error(ctx: &Ctx, connection: &mut Connection, error: ReadError) {
    let reply = match error {
        ReadError::Idle => Some(replies::timeout()),
        ReadError::SessionLimit => Some(replies::session_too_long()),
        ReadError::Shutdown => Some(replies::shutting_down(&ctx.config.hostname)),
        ReadError::TooLong | ReadError::Closed | ReadError::Io(_) => None,
    };
    if let Some(reply) = reply {
        reply.write_to(connection.output());
        connection.shutdown().await;
    }
}

/// The connection failed in the middle of a message: the transaction is dropped, nothing stored.
async fn abort(
    ctx: &Ctx,
    connection: &mut Connection,
    session: &mut Session,
    error: ReadError,
) -> Flow {
    session.message_finished();
    end_on_read_error(ctx, connection, error).await;
    Flow::Close
}

fn reason(reason: &'static str) -> crate::metrics::ReasonLabels {
    crate::metrics::ReasonLabels { reason }
}

fn command_label(line: &[u8]) -> crate::metrics::CommandLabels {
    const VERBS: [&str; 16] = [
        "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "EXPN",
        "HELP", "AUTH", "STARTTLS", "TURN", "ETRN",
    ];
    let verb = line
        .split(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or(b"");
    let command = VERBS
        .iter()
        .find(|v| v.as_bytes().eq_ignore_ascii_case(verb))
        .copied()
        .unwrap_or("other");
    crate::metrics::CommandLabels { command }
}

async fn perform(
    ctx: &Arc<Ctx>,
    connection: &mut Connection,
    session: &mut Session,
    client: &mut Client,
    action: Action,
) -> Flow {
    let mut action = action;
    loop {
        // Some actions produce a follow-up action (a refusal that counts toward the limit).
        let next = match action {
            Action::Reply(reply) => {
                reply.write_to(connection.output());
                return Flow::Continue;
            }
            Action::Close(reply) => {
                reply.write_to(connection.output());
                return Flow::Close;
            }
            Action::StartTls => return start_tls(ctx, connection, session, client).await,
            Action::Authenticate(credentials) => {
                authenticate(ctx, session, client, credentials).await
            }
            Action::CheckMail(mail) => check_mail(ctx, session, client, mail).await,
            Action::CheckRecipient(rcpt) => {
                let authenticated = session.authenticated().is_some();
                match ctx
                    .policy
                    .recipient(
                        &client.range,
                        client.sender_local,
                        authenticated,
                        &rcpt.recipient,
                    )
                    .await
                {
                    Ok(Ok(())) => match screen_recipient(ctx, client, &rcpt.recipient).await {
                        Ok(()) => Action::Reply(session.accept_recipient(rcpt)),
                        Err(reply) if reply.is_permanent() => {
                            ctx.metrics
                                .recipients_rejected
                                .get_or_create(&reason("spam"))
                                .inc();
                            session.count_error(reply)
                        }
                        Err(reply) => {
                            ctx.metrics
                                .recipients_rejected
                                .get_or_create(&reason("greylisted"))
                                .inc();
                            Action::Reply(reply)
                        }
                    },
                    Ok(Err(refusal)) => {
                        ctx.metrics
                            .recipients_rejected
                            .get_or_create(&reason(refusal.reason))
                            .inc();
                        session.count_error(refusal.reply)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "recipient check failed");
                        Action::Reply(replies::temporary_failure())
                    }
                }
            }
            Action::StartData => {
                connection.set_in_message(true);
                let flow = receive_data(ctx, connection, session, client).await;
                connection.set_in_message(false);
                return flow;
            }
            Action::ReceiveChunk { size, last } => {
                connection.set_in_message(true);
                let flow = receive_chunk(ctx, connection, session, client, size, last).await;
                connection.set_in_message(false);
                return flow;
            }
            Action::DiscardChunk { size, reply, close } => {
                if let Err(error) = connection.skip(size).await {
                    end_on_read_error(ctx, connection, error).await;
                    return Flow::Close;
                }
                client.chunked = None;
                reply.write_to(connection.output());
                return if close { Flow::Close } else { Flow::Continue };
            }
        };
        action = next;
    }
}

async fn start_tls(
    ctx: &Arc<Ctx>,
    connection: &mut Connection,
    session: &mut Session,
    client: &Client,
) -> Flow {
    let Some(tls) = &ctx.tls else {
        replies::tls_not_available().write_to(connection.output());
        return Flow::Continue;
    };
    replies::ready_for_tls().write_to(connection.output());
    let limit = Duration::from_secs(ctx.config.handshake_timeout_secs);
    let handshake = connection.start_tls(&tls.acceptor(), limit).await;
    ctx.metrics
        .tls_handshake(client.listener.label(), handshake);
    if !handshake.is_established() {
        return Flow::Close;
    }
    session.tls_started();
    Flow::Continue
}

async fn authenticate(
    ctx: &Arc<Ctx>,
    session: &mut Session,
    client: &mut Client,
    credentials: mc_smtp::auth::Credentials,
) -> Action {
    let outcome = ctx
        .policy
        .directory
        .authenticate(&credentials.login, Secret::new(credentials.password))
        .await;
    match outcome {
        Ok(AuthOutcome::Success {
            account_id,
            address,
        }) => match ctx.policy.directory.credentials_stamp(account_id).await {
            Ok(Some(stamp)) => {
                ctx.metrics.auth.get_or_create(&result("success")).inc();
                client.account = Some((account_id, stamp));
                Action::Reply(session.auth_succeeded(address))
            }
            Ok(None) => {
                ctx.metrics.auth.get_or_create(&result("failure")).inc();
                session.auth_failed()
            }
            Err(error) => {
                tracing::warn!(%error, "credentials stamp lookup failed");
                Action::Reply(replies::auth_temporary())
            }
        },
        Ok(AuthOutcome::Failure(failure)) => {
            ctx.metrics.auth.get_or_create(&result("failure")).inc();
            tracing::info!(client = %client.ip, reason = ?failure, "authentication failed");
            let settings = ctx.antispam.settings.get().await;
            let banned = mc_antispam::autoban::record_failure(
                ctx.redis.as_ref(),
                &ctx.antispam.bans,
                &settings,
                client.ip,
                &credentials.login,
            )
            .await;
            // The ban refuses new connections; this session ends at its own failure limit.
            if banned.is_some() {
                ctx.metrics.bans.inc();
            }
            session.auth_failed()
        }
        Err(error) => {
            tracing::warn!(%error, "authentication lookup failed");
            Action::Reply(replies::auth_temporary())
        }
    }
}

fn result(result: &'static str) -> crate::metrics::ResultLabels {
    crate::metrics::ResultLabels { result }
}

async fn check_mail(
    ctx: &Arc<Ctx>,
    session: &mut Session,
    client: &mut Client,
    mail: mc_smtp::MailFrom,
) -> Action {
    // Re-check the account before every message: disabled or re-passworded meanwhile → 550.
    if let Some((account_id, stamp)) = &client.account {
        match ctx.policy.directory.credentials_stamp(*account_id).await {
            Ok(Some(current)) if &current == stamp => {}
            Ok(_) => {
                client.account = None;
                session.revoke_authentication();
                return session.count_error(replies::credentials_no_longer_valid());
            }
            Err(error) => {
                tracing::warn!(%error, "account re-check failed");
                return Action::Reply(replies::temporary_failure());
            }
        }
    }
    let sender_local = match &mail.sender {
        None => false,
        Some(sender) => match ctx.policy.is_local_domain(sender.domain().as_str()).await {
            Ok(local) => local,
            Err(error) => {
                tracing::warn!(%error, "sender domain lookup failed");
                return Action::Reply(replies::temporary_failure());
            }
        },
    };
    client.sender_local = sender_local;
    client.chunked = None;
    client.screening = None;
    if let Some(reply) = rate_limited(ctx, session, client).await {
        return Action::Reply(reply);
    }
    let helo = session
        .greeting()
        .map(|g| g.name.clone())
        .unwrap_or_default();
    let sender = mail
        .sender
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let authenticated = session.authenticated().is_some();
    match ctx
        .antispam
        .on_mail(client.ip, &client.range, &helo, &sender, authenticated)
        .await
    {
        Ok(screening) => client.screening = Some(screening),
        Err(reply) => {
            ctx.metrics
                .messages_rejected
                .get_or_create(&reason("spam"))
                .inc();
            return session.count_error(reply);
        }
    }
    Action::Reply(session.accept_mail(mail))
}

/// Greylisting and the recipient-stage spam tests.
async fn screen_recipient(
    ctx: &Ctx,
    client: &mut Client,
    recipient: &mc_types::EmailAddress,
) -> Result<(), Reply> {
    let Some(screening) = client.screening.as_mut() else {
        return Ok(());
    };
    ctx.antispam
        .on_rcpt(
            screening,
            client.ip,
            &recipient.to_string(),
            ctx.redis.as_ref(),
        )
        .await
}

/// The hourly message limits (`rate_ip_per_hour` for unauthenticated clients,
/// `rate_sender_per_hour` per authenticated user), counted in Redis at MAIL FROM. Without Redis
/// nothing is limited.
async fn rate_limited(ctx: &Ctx, session: &Session, client: &Client) -> Option<Reply> {
    let settings = ctx.antispam.settings.get().await;
    let (limit, key, label) = match session.authenticated() {
        Some(user) => (
            settings.rate_sender_per_hour,
            format!("rate:user:{}", user.to_ascii_lowercase()),
            "sender",
        ),
        None => (
            settings.rate_ip_per_hour,
            format!("rate:ip:{}", mc_policy::canonical_ip(client.ip)),
            "ip",
        ),
    };
    if limit == 0 {
        return None;
    }
    let redis = ctx.redis.as_ref()?;
    let hour = OffsetDateTime::now_utc().unix_timestamp() / 3600;
    let key = redis.key(&format!("{key}:{hour}"));
    let mut connection = redis.connection.clone();
    let counted: redis::RedisResult<(i64, i64)> = mc_runtime::store_metrics::redis(
        mc_runtime::store_metrics::RedisGroup::RateLimit,
        redis::pipe()
            .atomic()
            .incr(&key, 1)
            .expire(&key, 3600)
            .query_async(&mut connection),
    )
    .await;
    match counted {
        Ok((count, _)) if count > i64::from(limit) => {
            ctx.metrics.rate_limited.get_or_create(&reason(label)).inc();
            Some(Reply::new(
                451,
                Some(mc_smtp::Status(4, 7, 0)),
                "Too many messages this hour; try again later",
            ))
        }
        Ok(_) => None,
        Err(error) => {
            tracing::debug!(%error, "rate limit not counted");
            None
        }
    }
}

fn new_builder(ctx: &Ctx, session: &Session, client: &Client, queue_id: Uuid) -> MessageBuilder {
    let config = &ctx.config;
    let now = OffsetDateTime::now_utc();
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let helo = session
        .greeting()
        .map(|g| g.name.as_str())
        .unwrap_or("unknown");
    let transaction = session.transaction();
    let utf8 = transaction.is_some_and(|t| t.mail.smtputf8);
    let esmtp = session.greeting().is_some_and(|g| g.esmtp);
    let (tls, authenticated) = (session.is_tls(), session.authenticated().is_some());
    // RFC 3848 / RFC 6531 "with" names; TLS and AUTH are extensions, so they imply ESMTP.
    let base = if utf8 {
        "UTF8SMTP"
    } else if esmtp || tls || authenticated {
        "ESMTP"
    } else {
        "SMTP"
    };
    let protocol = format!(
        "{base}{}{}",
        if tls { "S" } else { "" },
        if authenticated { "A" } else { "" },
    );
    let for_clause = match transaction.map(|t| t.recipients.as_slice()) {
        Some([only]) => format!("\r\n\tfor <{}>", only.recipient),
        _ => String::new(),
    };
    let trace = format!(
        "Received: from {helo} ([{ip}])\r\n\tby {host} (mailcluster) with {protocol} id {queue_id}{for_clause};\r\n\t{date}\r\n",
        ip = client.ip,
        host = config.hostname,
    );
    let additions = Additions {
        message_id: authenticated.then(|| format!("<{queue_id}@{}>", config.hostname)),
        date: authenticated.then_some(date),
    };
    MessageBuilder::new(
        trace.into_bytes(),
        additions,
        Limits {
            max_message_bytes: config.max_message_bytes,
            max_header_bytes: config.max_header_bytes,
            max_received_headers: config.max_received_headers,
            spool_memory_bytes: config.spool_memory_bytes,
            spool_dir: config.spool_dir.clone(),
        },
    )
}

async fn receive_data(
    ctx: &Arc<Ctx>,
    connection: &mut Connection,
    session: &mut Session,
    client: &mut Client,
) -> Flow {
    replies::start_data().write_to(connection.output());
    let queue_id = mc_queue::Envelope::new_id();
    let mut builder = new_builder(ctx, session, client, queue_id);
    let mode = match ctx.config.bare_line_endings {
        BareLineEndingPolicy::Reject => BareLineEndings::Keep,
        BareLineEndingPolicy::Normalize => BareLineEndings::Normalize,
    };
    let mut decoder = DataDecoder::new(mode);
    let mut decoded = Vec::with_capacity(64 * 1024);
    loop {
        let progress = decoder.feed(connection.buffered(), &mut decoded);
        let consumed = match progress {
            Progress::Done { consumed } => consumed,
            Progress::NeedMore => connection.buffered().len(),
        };
        connection.consume(consumed);
        if let Err(error) = builder.push(&decoded).await {
            tracing::error!(%error, "spooling a message failed");
            session.message_finished();
            // The rest of the data cannot be told apart from commands any more: close.
            replies::store_failed().write_to(connection.output());
            return Flow::Close;
        }
        decoded.clear();
        if matches!(progress, Progress::Done { .. }) {
            break;
        }
        if let Err(error) = connection.fill().await {
            return abort(ctx, connection, session, error).await;
        }
    }
    let bare = decoder.bare_line_endings() > 0
        && ctx.config.bare_line_endings == BareLineEndingPolicy::Reject;
    let reply = finish_message(ctx, session, client, queue_id, builder, bare).await;
    reply.write_to(connection.output());
    Flow::Continue
}

async fn receive_chunk(
    ctx: &Arc<Ctx>,
    connection: &mut Connection,
    session: &mut Session,
    client: &mut Client,
    size: u64,
    last: bool,
) -> Flow {
    let (queue_id, mut builder) = match client.chunked.take() {
        Some(pending) => pending,
        None => {
            let id = mc_queue::Envelope::new_id();
            (id, new_builder(ctx, session, client, id))
        }
    };
    let mut remaining = size;
    let mut failed = None;
    while remaining > 0 {
        let chunk = match connection.read_some(remaining).await {
            Ok(chunk) => chunk,
            Err(error) => return abort(ctx, connection, session, error).await,
        };
        remaining -= chunk.len() as u64;
        if failed.is_none()
            && let Err(error) = builder.push(&chunk).await
        {
            failed = Some(error);
        }
    }
    if let Some(error) = failed {
        tracing::error!(%error, "spooling a message failed");
        session.message_finished();
        replies::store_failed().write_to(connection.output());
        return Flow::Continue;
    }
    if !last {
        client.chunked = Some((queue_id, builder));
        session.chunk_received(size).write_to(connection.output());
        return Flow::Continue;
    }
    let reply = finish_message(ctx, session, client, queue_id, builder, false).await;
    reply.write_to(connection.output());
    Flow::Continue
}

async fn finish_message(
    ctx: &Arc<Ctx>,
    session: &mut Session,
    client: &mut Client,
    queue_id: Uuid,
    builder: MessageBuilder,
    bare_line_endings: bool,
) -> Reply {
    let started = std::time::Instant::now();
    let client_bytes = builder.client_bytes();
    ctx.metrics.received_bytes.inc_by(client_bytes);
    let transaction = session.take_transaction();
    session.message_finished();
    let Some(transaction) = transaction else {
        return replies::sender_and_recipient_first();
    };
    let reject = |label: &'static str, reply: Reply| {
        ctx.metrics
            .messages_rejected
            .get_or_create(&reason(label))
            .inc();
        reply
    };
    if bare_line_endings {
        return reject("bare_line_endings", replies::bare_line_endings());
    }
    let received = match builder.finish().await {
        Ok(Ok(received)) => received,
        Ok(Err(Defect::TooBig)) => {
            let max = ctx.config.max_message_bytes;
            return reject(
                "too_big",
                replies::message_too_big(client_bytes / 1024, max / 1024),
            );
        }
        Ok(Err(Defect::HeadersTooBig)) => {
            return reject("headers_too_big", replies::headers_too_big());
        }
        Ok(Err(Defect::TooManyHops)) => return reject("loop", replies::too_many_hops()),
        Err(error) => {
            tracing::error!(%error, "spooling a message failed");
            return reject("store_failed", replies::store_failed());
        }
    };
    let authenticated = session.authenticated().is_some();
    let verdict = ctx
        .antispam
        .on_data(
            client.screening.as_mut(),
            client.ip,
            &received,
            authenticated,
        )
        .await;
    client.screening = None;
    if let Some(reply) = verdict.reject {
        return reject("spam", reply);
    }
    if verdict.drop {
        // delete_action = drop: the sender is told it was accepted; nothing is stored.
        tracing::info!(queue_id = %queue_id, client = %client.ip, "spam dropped");
        return replies::queued(&queue_id.to_string());
    }
    // Anti-virus and blocked attachments, on the message as it would be stored.
    let settings = ctx.antispam.settings.get().await;
    let assembled = match crate::antivirus::check(
        &ctx.metrics,
        &settings,
        client.range.antivirus,
        &received,
        verdict.head.as_deref(),
    )
    .await
    {
        crate::antivirus::AvOutcome::Reject(reply) => return reject("virus", reply),
        crate::antivirus::AvOutcome::Replace { message, reason } => {
            tracing::info!(queue_id = %queue_id, client = %client.ip, %reason, "message content replaced");
            received
                .assemble_replaced(verdict.prefix.as_bytes(), message)
                .await
        }
        crate::antivirus::AvOutcome::Clean => {
            received
                .assemble(verdict.prefix.as_bytes(), verdict.head)
                .await
        }
    };
    let finished = match assembled {
        Ok(finished) => finished,
        Err(error) => {
            tracing::error!(%error, "spooling a message failed");
            return reject("store_failed", replies::store_failed());
        }
    };
    let size = finished.size;
    let envelope = Envelope {
        queue_id,
        transaction: &transaction,
        client_ip: client.ip,
        helo: session.greeting().map(|g| g.name.as_str()),
        auth_user: session.authenticated(),
        junk: verdict.junk,
    };
    match accept::store(ctx, envelope, finished).await {
        Ok(id) => {
            ctx.metrics.messages_accepted.inc();
            ctx.metrics
                .accept_latency
                .observe(started.elapsed().as_secs_f64());
            tracing::info!(
                queue_id = %id,
                size,
                recipients = transaction.recipients.len(),
                client = %client.ip,
                "message accepted"
            );
            replies::queued(&id.to_string())
        }
        Err(error) => {
            tracing::error!(%error, queue_id = %queue_id, "storing a message failed; answered 451");
            reject("store_failed", replies::store_failed())
        }
    }
}
