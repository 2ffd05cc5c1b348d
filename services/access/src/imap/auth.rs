//! STARTTLS, LOGIN and AUTHENTICATE PLAIN (RFC 3501 sections 6.2, RFC 4616, RFC 4959 SASL-IR).
//! Passwords are refused before TLS unless the configuration allows them for the client
//! (LOGINDISABLED is then advertised); failures are counted per session and per client address.

use super::{Flow, Session, State};
use crate::auth::{Login, login as check_login};
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::{AString, Tag};
use imap_codec::imap_types::secret::Secret;
use mc_imap::framing::{Framer, Line, authenticate_data};
use std::borrow::Cow;
use std::time::Duration;

pub async fn starttls(session: &mut Session, tag: &Tag<'_>) -> Flow {
    let Some(tls) = session.ctx.tls.clone() else {
        session.tagged_bad(tag, "STARTTLS not available");
        return Flow::Continue;
    };
    if session.tls {
        session.tagged_bad(tag, "TLS already active");
        return Flow::Continue;
    }
    session.tagged_ok(tag, None, "Begin TLS negotiation now");
    let limit = Duration::from_secs(session.ctx.config.handshake_timeout_secs);
    // Bytes the framer already holds came in plaintext too: it starts afresh.
    session.framer = Framer::new(session.ctx.config.imap_limits());
    let handshake = session.connection.start_tls(&tls.acceptor(), limit).await;
    session.ctx.metrics.tls_handshake("imap", handshake);
    if !handshake.is_established() {
        return Flow::Close;
    }
    session.tls = true;
    Flow::Continue
}

/// Refuses a password sent in clear when that is not allowed here.
fn privacy_required(session: &mut Session, tag: &Tag<'_>) -> bool {
    if session.tls || session.ctx.config.plaintext_auth_allowed(session.ip) {
        return false;
    }
    session.tagged_no(
        tag,
        Some("PRIVACYREQUIRED"),
        "Use STARTTLS before logging in",
    );
    true
}

pub async fn login(
    session: &mut Session,
    tag: &Tag<'_>,
    username: AString<'_>,
    password: Secret<AString<'_>>,
) -> Flow {
    if privacy_required(session, tag) {
        return session.bad_command();
    }
    let user = String::from_utf8_lossy(username.as_ref()).into_owned();
    let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
    finish_login(session, tag, &user, password).await
}

pub async fn authenticate(
    session: &mut Session,
    tag: &Tag<'_>,
    mechanism: AuthMechanism<'_>,
    initial_response: Option<Secret<Cow<'_, [u8]>>>,
) -> Flow {
    if !matches!(mechanism, AuthMechanism::Plain) {
        session.tagged_no(tag, Some("CANNOT"), "Unsupported authentication mechanism");
        return Flow::Continue;
    }
    if privacy_required(session, tag) {
        return session.bad_command();
    }
    let response = match initial_response {
        Some(data) => data.declassify().to_vec(),
        None => {
            session.queue(b"+ \r\n");
            let line = loop {
                match session.framer.next_line() {
                    Line::Complete(line) => break line,
                    Line::TooLong => {
                        session.tagged_bad(tag, "Response too long");
                        return session.bad_command();
                    }
                    Line::NeedMore => {
                        if session.read().await.is_err() {
                            return Flow::Close;
                        }
                    }
                }
            };
            match authenticate_data(&line) {
                Ok(Some(data)) => data,
                Ok(None) => {
                    session.tagged_bad(tag, "Authentication cancelled");
                    return Flow::Continue;
                }
                Err(_) => {
                    session.tagged_bad(tag, "Invalid base64 response");
                    return session.bad_command();
                }
            }
        }
    };
    // authzid NUL authcid NUL password; an authzid must name the same user.
    let mut parts = response.split(|b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        session.tagged_bad(tag, "Malformed PLAIN response");
        return session.bad_command();
    };
    if !authzid.is_empty() && authzid != authcid {
        session.tagged_no(
            tag,
            Some("AUTHORIZATIONFAILED"),
            "Cannot act as another user",
        );
        return Flow::Continue;
    }
    let user = String::from_utf8_lossy(authcid).into_owned();
    let password = String::from_utf8_lossy(password).into_owned();
    finish_login(session, tag, &user, password).await
}

async fn finish_login(session: &mut Session, tag: &Tag<'_>, user: &str, password: String) -> Flow {
    let ctx = session.ctx.clone();
    match check_login(
        &ctx,
        session.ip,
        super::PROTOCOL,
        user,
        mc_types::Secret::new(password),
    )
    .await
    {
        Login::Success(account) => {
            if let Err(error) = ctx.mailstore.ensure_special_mailboxes(account.id).await {
                return session.internal_error(tag, &error);
            }
            tracing::info!(account = %account.address, ip = %session.ip, "IMAP login");
            session.state = State::Authenticated(account);
            session
                .connection
                .set_command_timeout(Duration::from_secs(ctx.config.idle_timeout_secs));
            let code = format!("CAPABILITY {}", session.capabilities());
            session.tagged_ok(tag, Some(&code), "Logged in");
            Flow::Continue
        }
        Login::Refused => {
            session.auth_failures += 1;
            session.tagged_no(tag, Some("AUTHENTICATIONFAILED"), "Authentication failed");
            if session.auth_failures >= ctx.config.max_auth_failures {
                session.queue(b"* BYE Too many failed logins\r\n");
                return Flow::Close;
            }
            Flow::Continue
        }
        Login::Unavailable => {
            session.tagged_no(
                tag,
                Some("UNAVAILABLE"),
                "Temporary failure, try again later",
            );
            Flow::Continue
        }
    }
}
