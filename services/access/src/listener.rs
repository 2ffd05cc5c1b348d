//! Accept loops: one per configured address. Each accepted connection passes the connection
//! limits (total and per client address), the PROXY header when it comes from a trusted load
//! balancer, and the TLS handshake on implicit-TLS listeners, then runs as its own task.

use crate::Ctx;
use crate::metrics::ReasonLabels;
use mc_runtime::connection::{BoxStream, Limits};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Imaps,
    Pop3,
    Pop3s,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Pop3 => "pop3",
            Protocol::Pop3s => "pop3s",
        }
    }

    fn implicit_tls(self) -> bool {
        matches!(self, Protocol::Imaps | Protocol::Pop3s)
    }

    fn is_imap(self) -> bool {
        matches!(self, Protocol::Imap | Protocol::Imaps)
    }
}

/// A client connection, before its protocol starts.
pub struct Client {
    pub stream: BoxStream,
    pub ip: IpAddr,
    pub tls: bool,
}

pub async fn serve(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    protocol: Protocol,
    limits: Arc<Limits>,
    tasks: TaskTracker,
) {
    let shutdown = ctx.shutdown.clone();
    mc_runtime::connection::accept_loop(listener, shutdown, tasks, move |stream, peer| {
        connection(ctx.clone(), stream, peer, protocol, limits.clone())
    })
    .await;
}

/// The line a refused client reads before the connection closes: IMAP's or POP3's, on plain
/// listeners only (an implicit-TLS client expects a handshake, not text).
async fn say_before_closing(stream: &mut TcpStream, protocol: Protocol, imap: &str, pop3: &str) {
    if protocol.implicit_tls() {
        return;
    }
    let line = format!("{}\r\n", if protocol.is_imap() { imap } else { pop3 });
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(line.as_bytes())).await;
}

fn refuse(ctx: &Ctx, reason: &'static str) {
    ctx.metrics
        .refused_connections
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

async fn connection(
    ctx: Arc<Ctx>,
    mut stream: TcpStream,
    peer: SocketAddr,
    protocol: Protocol,
    limits: Arc<Limits>,
) {
    let handshake = Duration::from_secs(ctx.config.handshake_timeout_secs);
    let mut ip = mc_policy::canonical_ip(peer.ip());
    if ctx.proxy.is_trusted(peer.ip()) {
        match ctx.proxy.read_header(&mut stream, peer).await {
            Ok(Some(source)) => ip = mc_policy::canonical_ip(source.ip()),
            Ok(None) => {}
            Err(error) => {
                tracing::info!(%error, %peer, "bad PROXY header; closing");
                refuse(&ctx, "proxy");
                return;
            }
        }
    }
    let _slot = match limits.acquire(ip) {
        Ok(slot) => slot,
        Err(which) => {
            refuse(
                &ctx,
                if which == "per_ip" {
                    "per_ip_limit"
                } else {
                    "connection_limit"
                },
            );
            say_before_closing(
                &mut stream,
                protocol,
                "* BYE Too many connections, try again later",
                "-ERR [SYS/TEMP] Too many connections, try again later",
            )
            .await;
            return;
        }
    };
    // IP ranges (and bans, which are ranges): refused here, before any protocol byte.
    let allowed = match ctx
        .ip_ranges
        .governing(ip, time::OffsetDateTime::now_utc())
        .await
    {
        Ok(Some(range)) => {
            if protocol.is_imap() {
                range.allow_imap
            } else {
                range.allow_pop3
            }
        }
        Ok(None) => false,
        Err(error) => {
            tracing::warn!(%error, "IP range lookup failed; connection refused");
            refuse(&ctx, "ip_range_unavailable");
            say_before_closing(
                &mut stream,
                protocol,
                "* BYE [UNAVAILABLE] Temporary failure, try again later",
                "-ERR [SYS/TEMP] Temporary failure, try again later",
            )
            .await;
            return;
        }
    };
    if !allowed {
        refuse(&ctx, "ip_range");
        say_before_closing(
            &mut stream,
            protocol,
            "* BYE Access denied",
            "-ERR Access denied",
        )
        .await;
        return;
    }
    let client = if protocol.implicit_tls() {
        let Some(tls) = &ctx.tls else { return };
        let (tls_stream, result) =
            mc_runtime::connection::accept_tls(&tls.acceptor(), stream, handshake).await;
        ctx.metrics.tls_handshake(protocol.label(), result);
        match tls_stream {
            Some(tls_stream) => Client {
                stream: Box::new(tls_stream),
                ip,
                tls: true,
            },
            None => {
                refuse(&ctx, "tls_handshake");
                return;
            }
        }
    } else {
        Client {
            stream: Box::new(stream),
            ip,
            tls: false,
        }
    };
    if protocol.is_imap() {
        crate::imap::run(ctx.clone(), client).await;
    } else {
        crate::pop3::run(ctx.clone(), client).await;
    }
}
