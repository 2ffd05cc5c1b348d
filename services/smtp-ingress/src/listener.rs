//! Accept loops: one per configured address. Each accepted connection passes the connection
//! limits (total and per client address), the PROXY header when it comes from a trusted load
//! balancer, and the TLS handshake on implicit-TLS listeners, then runs as its own task.

use crate::Ctx;
use crate::session::{self, ListenerKind};
use mc_runtime::connection::{BoxStream, Limits};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

pub async fn serve(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    kind: ListenerKind,
    limits: Arc<Limits>,
    tasks: TaskTracker,
) {
    let shutdown = ctx.shutdown.clone();
    mc_runtime::connection::accept_loop(listener, shutdown, tasks, move |stream, peer| {
        connection(ctx.clone(), stream, peer, kind, limits.clone())
    })
    .await;
}

async fn connection(
    ctx: Arc<Ctx>,
    mut stream: TcpStream,
    peer: SocketAddr,
    kind: ListenerKind,
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
                ctx.metrics
                    .refused_connections
                    .get_or_create(&crate::metrics::ReasonLabels { reason: "proxy" })
                    .inc();
                return;
            }
        }
    }
    let _slot = match limits.acquire(ip) {
        Ok(slot) => slot,
        Err(which) => {
            ctx.metrics
                .refused_connections
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: if which == "per_ip" {
                        "per_ip_limit"
                    } else {
                        "connection_limit"
                    },
                })
                .inc();
            if kind != ListenerKind::Submissions {
                let reply = mc_smtp::replies::too_many_connections().to_bytes();
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), stream.write_all(&reply)).await;
            }
            return;
        }
    };
    ctx.metrics
        .sessions
        .get_or_create(&crate::metrics::ListenerLabels {
            listener: kind.label(),
        })
        .inc();
    ctx.metrics.active_sessions.inc();
    let boxed: Option<(BoxStream, bool)> = if kind == ListenerKind::Submissions {
        match &ctx.tls {
            Some(tls) => {
                let (tls_stream, result) =
                    mc_runtime::connection::accept_tls(&tls.acceptor(), stream, handshake).await;
                ctx.metrics.tls_handshake(kind.label(), result);
                tls_stream.map(|tls_stream| (Box::new(tls_stream) as BoxStream, true))
            }
            None => None,
        }
    } else {
        Some((Box::new(stream), false))
    };
    if let Some((stream, tls)) = boxed {
        session::run(ctx.clone(), stream, ip, kind, tls).await;
    }
    ctx.metrics.active_sessions.dec();
}
