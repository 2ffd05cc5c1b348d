//! The POP3 session driver (RFC 1939, 2449, 2595, 5034) around `mc_pop3::Session`: it reads
//! lines, checks logins, holds the maildrop lock, streams messages from the object store and
//! applies deletions at QUIT.
//!
//! The maildrop is the account's INBOX. A message's unique id is `<UIDVALIDITY>.<UID>`, stable
//! for as long as the message exists. One session per maildrop at a time across the cluster: a
//! Redis lease (`pop3lock:<account id>`, renewed with every command, expiring after
//! `pop3_lock_secs` if its holder died) that `mailctl account unlock` can clear. Without Redis the
//! lock cannot be taken and is skipped (deletions stay safe: they name UIDs, not positions).

use crate::Ctx;
use crate::auth::{Account, Login, login};
use crate::listener::Client;
use crate::metrics::ProtocolLabels;
use mc_mailstore::blob::BlobKey;
use mc_pop3::{Action, Config, LoginFailure, Maildrop, MaildropEntry, MessageEncoder, Session};
use mc_runtime::connection::{Connection, ReadError};
use mc_runtime::stores::RedisStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROTOCOL: &str = "pop3";

/// Message bytes read from the object store per ranged read while streaming RETR.
const RETR_CHUNK: u64 = 256 * 1024;

/// Idle time allowed in a POP3 session: RFC 1939 section 3 wants at least ten minutes.
const AUTOLOGOUT: Duration = Duration::from_secs(600);

/// A held maildrop lock: the token proves it is ours when renewing and releasing. A task renews
/// it every third of its lifetime for as long as the session lives, however idle the client.
struct Lock {
    redis: RedisStore,
    key: String,
    token: String,
    renewer: tokio::task::JoinHandle<()>,
}

const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('EXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) else return 0 end";

impl Lock {
    /// `Ok(None)`: another session holds it.
    async fn take(ctx: &Ctx, account_id: i64) -> Result<Option<Option<Lock>>, redis::RedisError> {
        let Some(redis) = &ctx.redis else {
            return Ok(Some(None));
        };
        let key = redis.key(&mc_mailstore::mailboxes::pop3_lock_key(account_id));
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut connection = redis.connection.clone();
        let taken: Option<String> = mc_runtime::store_metrics::redis(
            mc_runtime::store_metrics::RedisGroup::Pop3Lock,
            redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("EX")
                .arg(ctx.config.pop3_lock_secs)
                .query_async(&mut connection),
        )
        .await?;
        if taken.is_none() {
            return Ok(None);
        }
        let renewer = tokio::spawn(renew(
            redis.clone(),
            key.clone(),
            token.clone(),
            ctx.config.pop3_lock_secs,
        ));
        Ok(Some(Some(Lock {
            redis: redis.clone(),
            key,
            token,
            renewer,
        })))
    }

    async fn release(self) {
        self.renewer.abort();
        let mut connection = self.redis.connection.clone();
        let _: redis::RedisResult<i64> = mc_runtime::store_metrics::redis(
            mc_runtime::store_metrics::RedisGroup::Pop3Lock,
            redis::Script::new(RELEASE)
                .key(&self.key)
                .arg(&self.token)
                .invoke_async(&mut connection),
        )
        .await;
    }
}

/// Keeps a lock alive until it is released (the task is aborted) or found taken away (an
/// administrator's unlock).
async fn renew(redis: RedisStore, key: String, token: String, seconds: u64) {
    let period =
        Duration::from_millis(seconds.saturating_mul(1000) / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(period).await;
        let mut connection = redis.connection.clone();
        let renewed: redis::RedisResult<i64> = mc_runtime::store_metrics::redis(
            mc_runtime::store_metrics::RedisGroup::Pop3Lock,
            redis::Script::new(RENEW)
                .key(&key)
                .arg(&token)
                .arg(seconds)
                .invoke_async(&mut connection),
        )
        .await;
        match renewed {
            Ok(0) => {
                tracing::info!("POP3 maildrop lock was cleared while held");
                return;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "POP3 maildrop lock not renewed"),
        }
    }
}

/// The maildrop of a logged-in session.
struct Drop {
    account: Account,
    mailbox_id: i64,
    uid_validity: i64,
    /// `(uid, size)` in listing order.
    messages: Vec<(i64, i64)>,
    lock: Option<Lock>,
}

pub async fn run(ctx: Arc<Ctx>, client: Client) {
    let config = Config {
        tls_available: ctx.tls.is_some(),
        allow_plaintext_auth: ctx.config.plaintext_auth_allowed(client.ip),
        max_bad_commands: ctx.config.max_bad_commands,
        max_auth_failures: ctx.config.max_auth_failures,
        ..Config::new(ctx.config.hostname.clone())
    };
    let mut session = Session::new(config, client.tls);
    let mut connection = Connection::new(
        client.stream,
        Duration::from_secs(ctx.config.login_timeout_secs),
        tokio::time::Instant::now() + Duration::from_secs(24 * 3600),
        ctx.shutdown.clone(),
    );
    ctx.metrics
        .transition(PROTOCOL, None, Some("not_authenticated"));
    let mut state = "not_authenticated";
    send(&ctx, &mut connection, session.greeting().as_bytes());
    let mut maildrop: Option<Drop> = None;
    loop {
        let line = match connection.read_line(mc_pop3::MAX_LINE_LEN + 2).await {
            Ok(line) => Some(line),
            Err(ReadError::TooLong) => None,
            Err(ReadError::Shutdown) => {
                send(
                    &ctx,
                    &mut connection,
                    b"-ERR [SYS/TEMP] Server shutting down\r\n",
                );
                break;
            }
            Err(_) => break,
        };
        let started = Instant::now();
        let mut action = match &line {
            Some(line) => session.on_line(line),
            None => session.on_overlong_line(),
        };
        let name = line.as_deref().map_or("overlong", command_name);
        let closing = loop {
            match action {
                Action::Reply(reply) => {
                    send(&ctx, &mut connection, reply.as_bytes());
                    break false;
                }
                Action::Close(reply) => {
                    send(&ctx, &mut connection, reply.as_bytes());
                    break true;
                }
                Action::StartTls(reply) => {
                    send(&ctx, &mut connection, reply.as_bytes());
                    if start_tls(&ctx, &mut connection).await {
                        session.tls_started();
                        break false;
                    }
                    break true;
                }
                Action::Authenticate { user, password } => {
                    let password = mc_types::Secret::new(password.expose().to_string());
                    action = match login(&ctx, client.ip, PROTOCOL, &user, password).await {
                        Login::Success(account) => match open(&ctx, account).await {
                            Ok(drop) => {
                                let listing = drop
                                    .messages
                                    .iter()
                                    .map(|(uid, size)| MaildropEntry {
                                        size: *size as u64,
                                        uid: format!("{}.{uid}", drop.uid_validity),
                                    })
                                    .collect();
                                match Maildrop::new(listing) {
                                    Ok(listed) => {
                                        connection.set_command_timeout(AUTOLOGOUT);
                                        maildrop = Some(drop);
                                        session.login_succeeded(listed)
                                    }
                                    Err(_) => {
                                        if let Some(lock) = drop.lock {
                                            lock.release().await;
                                        }
                                        session.login_failed(LoginFailure::Permanent)
                                    }
                                }
                            }
                            Err(failure) => session.login_failed(failure),
                        },
                        Login::Refused => session.login_failed(LoginFailure::BadCredentials),
                        Login::Unavailable => session.login_failed(LoginFailure::Temporary),
                    };
                }
                Action::SendMessage {
                    index,
                    top_lines,
                    reply,
                } => {
                    let Some(drop) = &maildrop else {
                        break true;
                    };
                    match send_message(&ctx, &mut connection, drop, index, top_lines, reply).await {
                        Ok(()) => break false,
                        Err(SendError::Before) => {
                            send(&ctx, &mut connection, session.retrieval_failed().as_bytes());
                            break false;
                        }
                        Err(SendError::Gone) => {
                            let reply =
                                mc_pop3::Reply::err(None, "message was deleted by another session");
                            send(&ctx, &mut connection, reply.as_bytes());
                            break false;
                        }
                        Err(SendError::After) => break true,
                    }
                }
                Action::Commit { deleted } => {
                    let ok = match maildrop.take() {
                        Some(drop) => commit(&ctx, drop, &deleted).await,
                        None => true,
                    };
                    action = session.commit_done(ok);
                }
            }
        };
        ctx.metrics
            .command(PROTOCOL, name, started.elapsed().as_secs_f64());
        let now = if maildrop.is_some() {
            "transaction"
        } else {
            "not_authenticated"
        };
        if now != state {
            ctx.metrics.transition(PROTOCOL, Some(state), Some(now));
            state = now;
        }
        if closing {
            break;
        }
    }
    // Leaving without QUIT: nothing is deleted (RFC 1939 section 6); the lock goes.
    if let Some(drop) = maildrop
        && let Some(lock) = drop.lock
    {
        lock.release().await;
    }
    connection.shutdown().await;
    ctx.metrics.transition(PROTOCOL, Some(state), None);
}

fn count_sent(ctx: &Ctx, bytes: u64) {
    ctx.metrics
        .sent_bytes
        .get_or_create(&ProtocolLabels { protocol: PROTOCOL })
        .inc_by(bytes);
}

/// Queues bytes for the client, counted as sent (everything sent goes through here or through
/// the message encoder, which counts its own output).
fn send(ctx: &Ctx, connection: &mut Connection, bytes: &[u8]) {
    count_sent(ctx, bytes.len() as u64);
    connection.queue(bytes);
}

/// The command verb for metrics (a fixed vocabulary; anything else is "other").
fn command_name(line: &[u8]) -> &'static str {
    const VERBS: [&str; 15] = [
        "USER", "PASS", "AUTH", "STLS", "CAPA", "STAT", "LIST", "UIDL", "TOP", "RETR", "DELE",
        "RSET", "NOOP", "QUIT", "APOP",
    ];
    let verb = line
        .split(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or(b"");
    VERBS
        .iter()
        .find(|v| v.as_bytes().eq_ignore_ascii_case(verb))
        .copied()
        .unwrap_or("other")
}

async fn start_tls(ctx: &Ctx, connection: &mut Connection) -> bool {
    let Some(tls) = &ctx.tls else {
        return false;
    };
    let limit = Duration::from_secs(ctx.config.handshake_timeout_secs);
    let handshake = connection.start_tls(&tls.acceptor(), limit).await;
    ctx.metrics.tls_handshake("pop3", handshake);
    handshake.is_established()
}

/// Locks and lists the account's INBOX.
async fn open(ctx: &Ctx, account: Account) -> Result<Drop, LoginFailure> {
    let lock = match Lock::take(ctx, account.id).await {
        Ok(Some(lock)) => lock,
        Ok(None) => return Err(LoginFailure::MaildropLocked),
        Err(error) => {
            tracing::warn!(%error, "POP3 lock not taken (Redis error); going on without it");
            None
        }
    };
    let listed = async {
        ctx.mailstore
            .ensure_special_mailboxes(account.id)
            .await
            .map_err(|e| e.to_string())?;
        let inbox = ctx
            .mailstore
            .mailbox(account.id, mc_mailstore::INBOX)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no INBOX")?;
        let messages = ctx
            .mailstore
            .listing(inbox.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((inbox, messages))
    };
    match listed.await {
        Ok((inbox, messages)) => {
            tracing::info!(account = %account.address, "POP3 login");
            Ok(Drop {
                account,
                mailbox_id: inbox.id,
                uid_validity: inbox.uid_validity,
                messages,
                lock,
            })
        }
        Err(error) => {
            tracing::warn!(%error, "POP3 maildrop not listed");
            if let Some(lock) = lock {
                lock.release().await;
            }
            Err(LoginFailure::Temporary)
        }
    }
}

enum SendError {
    /// Nothing was written yet: answer `-ERR [SYS/TEMP]` and go on.
    Before,
    /// The message was expunged (over IMAP) since the listing: a plain `-ERR`.
    Gone,
    /// The reply was written: the connection must close.
    After,
}

async fn send_message(
    ctx: &Ctx,
    connection: &mut Connection,
    drop: &Drop,
    index: usize,
    top_lines: Option<u64>,
    reply: mc_pop3::Reply,
) -> Result<(), SendError> {
    let Some((uid, _)) = drop.messages.get(index) else {
        return Err(SendError::Before);
    };
    let rows = ctx
        .mailstore
        .fetch_rows(drop.mailbox_id, &[*uid])
        .await
        .map_err(|_| SendError::Before)?;
    let Some(row) = rows.into_iter().next() else {
        // Expunged through IMAP meanwhile.
        return Err(SendError::Gone);
    };
    let key = BlobKey::parse(&row.blob_key).map_err(|_| SendError::Before)?;
    let (base, size) = (row.blob_offset.max(0) as u64, row.size_bytes.max(0) as u64);
    let mut encoder = MessageEncoder::new(top_lines);
    let mut offset = 0;
    let mut first = true;
    while offset < size && !encoder.is_complete() {
        let end = (offset + RETR_CHUNK).min(size);
        let chunk = ctx
            .blobs
            .get_range(&key, base + offset..base + end)
            .await
            .map_err(|_| {
                if first {
                    SendError::Before
                } else {
                    SendError::After
                }
            })?;
        if first {
            send(ctx, connection, reply.as_bytes());
            first = false;
        }
        let before = connection.pending_output();
        encoder.encode(&chunk, connection.output());
        count_sent(ctx, (connection.pending_output() - before) as u64);
        connection.flush().await.map_err(|_| SendError::After)?;
        offset = end;
    }
    if first {
        send(ctx, connection, reply.as_bytes());
    }
    let before = connection.pending_output();
    encoder.finish(connection.output());
    count_sent(ctx, (connection.pending_output() - before) as u64);
    Ok(())
}

/// Applies the deletions of a QUIT and releases the lock.
async fn commit(ctx: &Ctx, drop: Drop, deleted: &[usize]) -> bool {
    let uids: Vec<i64> = deleted
        .iter()
        .filter_map(|index| drop.messages.get(*index).map(|(uid, _)| *uid))
        .collect();
    let ok = if uids.is_empty() {
        true
    } else {
        match ctx
            .mailstore
            .remove(drop.account.id, drop.mailbox_id, &uids)
            .await
        {
            Ok(_) => {
                ctx.changes.publish(drop.mailbox_id);
                true
            }
            Err(error) => {
                tracing::warn!(%error, "POP3 deletions not applied");
                false
            }
        }
    };
    if let Some(lock) = drop.lock {
        lock.release().await;
    }
    ok
}
