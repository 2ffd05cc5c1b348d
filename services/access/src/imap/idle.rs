//! IDLE (RFC 2177): the session waits for `DONE` while reporting changes to its mailbox as they
//! happen. A change notice (from this replica, another one or the delivery worker, through
//! Redis) makes it look at once; it also looks every `idle_poll_secs` in case a notice was lost.

use super::{Flow, Session, State};
use imap_codec::imap_types::core::Tag;
use mc_imap::framing::{Line, is_idle_done};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub async fn idle(session: &mut Session, tag: &Tag<'_>) -> Flow {
    session.queue(b"+ idling\r\n");
    if let Err(error) = session.sync().await {
        return session.internal_error(tag, &error);
    }
    session.ctx.metrics.idle_sessions.inc();
    let flow = wait(session, tag).await;
    session.ctx.metrics.idle_sessions.dec();
    flow
}

async fn wait(session: &mut Session, tag: &Tag<'_>) -> Flow {
    let poll = Duration::from_secs(session.ctx.config.idle_poll_secs);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(session.ctx.config.idle_max_secs);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
    loop {
        // A complete line may already be buffered (pipelined right after IDLE).
        match session.framer.next_line() {
            Line::Complete(line) => {
                if is_idle_done(&line) {
                    session.tagged_ok(tag, None, "IDLE terminated");
                } else {
                    session.tagged_bad(tag, "Expected DONE");
                }
                return Flow::Continue;
            }
            Line::TooLong => {
                session.tagged_bad(tag, "Expected DONE");
                return Flow::Close;
            }
            Line::NeedMore => {}
        }
        let selected = match &session.state {
            State::Selected(_, selected) => Some(selected.id),
            _ => None,
        };
        let mut look = false;
        tokio::select! {
            read = session.connection.fill() => match read {
                Ok(()) => {
                    let buffered = session.connection.buffered().to_vec();
                    session.connection.consume(buffered.len());
                    session.framer.enqueue(&buffered);
                }
                Err(_) => return Flow::Close,
            },
            notice = session.changes.recv() => match notice {
                Ok(Some(id)) => look = Some(id) == selected,
                Ok(None) | Err(RecvError::Lagged(_)) => look = selected.is_some(),
                Err(RecvError::Closed) => {}
            },
            _ = ticker.tick() => look = selected.is_some(),
            () = tokio::time::sleep_until(deadline) => {
                session.queue(b"* BYE IDLE for too long, reconnect\r\n");
                return Flow::Close;
            }
        }
        if look {
            if let Err(error) = session.sync().await {
                return session.internal_error(tag, &error);
            }
            if session.connection.flush().await.is_err() {
                return Flow::Close;
            }
        }
    }
}
