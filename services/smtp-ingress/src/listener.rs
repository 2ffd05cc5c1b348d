//! Accept loops: one per configured address. Each accepted connection passes the connection
//! limits (total and per client address), the PROXY header when it comes from a trusted load
//! balancer, and the TLS handshake on implicit-TLS listeners, then runs as its own task.

use crate::Ctx;
use crate::io::BoxStream;
use crate::session::{self, ListenerKind};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Connection slots: a global semaphore and a count per client address.
pub struct Limits {
    total: Option<Arc<Semaphore>>,
    per_ip_max: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

pub struct Slot {
    limits: Arc<Limits>,
    ip: IpAddr,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.limits.per_ip.lock()
            && let Some(count) = map.get_mut(&self.ip)
        {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    pub fn new(max_total: usize, per_ip_max: usize) -> Arc<Self> {
        Arc::new(Self {
            total: (max_total > 0).then(|| Arc::new(Semaphore::new(max_total))),
            per_ip_max,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let permit = match &self.total {
            Some(semaphore) => Some(semaphore.clone().try_acquire_owned().map_err(|_| "total")?),
            None => None,
        };
        let mut map = self.per_ip.lock().map_err(|_| "total")?;
        let count = map.entry(ip).or_insert(0);
        if self.per_ip_max > 0 && *count >= self.per_ip_max {
            return Err("per_ip");
        }
        *count += 1;
        Ok(Slot {
            limits: self.clone(),
            ip,
            _permit: permit,
        })
    }
}

pub async fn serve(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    kind: ListenerKind,
    limits: Arc<Limits>,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ctx.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let limits = limits.clone();
        tasks.spawn(async move { connection(ctx, stream, peer, kind, limits).await });
    }
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
            Some(tls) => match tokio::time::timeout(handshake, tls.acceptor().accept(stream)).await
            {
                Ok(Ok(tls_stream)) => Some((Box::new(tls_stream), true)),
                _ => None,
            },
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
