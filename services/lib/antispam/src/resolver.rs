//! One way to build the DNS resolver: the configured servers (`ip:port`, UDP then TCP), or the
//! system's configuration when none are given.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::net::SocketAddr;
use std::time::Duration;

pub fn build(servers: &[SocketAddr], timeout: Duration) -> anyhow::Result<TokioResolver> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio()
            .map_err(|e| anyhow::anyhow!("reading the system's DNS configuration: {e}"))?
    } else {
        let servers = servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    builder.options_mut().timeout = timeout;
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))
}
