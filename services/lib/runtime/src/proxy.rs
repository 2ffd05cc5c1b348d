//! PROXY protocol v1 (text) and v2 (binary) on accepted TCP connections, as specified by HAProxy
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>), so that a service behind a
//! load balancer sees the client's address rather than the balancer's.
//!
//! * Only peers in the configured trusted networks may send a header, and from them it is
//!   mandatory: a trusted peer that does not send one is refused, since a missing header would
//!   otherwise make every client look like the balancer (one IP for rate limits and bans).
//! * From any other peer nothing is read: a `PROXY` line is then just a bad command for the
//!   protocol layer, and an untrusted client can never choose its own address.
//! * The header is read byte-exactly (v1 byte by byte up to CRLF; v2 its 16-byte fixed part, then
//!   the announced length), so the protocol bytes that follow stay in the stream; reading is
//!   bounded in size (v1: 107 bytes, v2: 16 + 216 bytes) and in time.
//!
//! Must never: read from an untrusted peer, buffer past the header, or accept an address from a
//! header that did not parse completely. Parsing is `ppp`'s; this module adds the framing.

use ipnet::IpNet;
use ppp::v2;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

#[cfg(test)]
mod tests;

/// Longest v1 header, CRLF included (spec section 2.1).
pub const V1_MAX_LENGTH: usize = 107;
/// Fixed part of a v2 header: signature, version/command, family/protocol, length.
pub const V2_FIXED_LENGTH: usize = 16;
/// Longest v2 address block we accept: the spec's 216 bytes (room for two UNIX paths), which
/// also leaves room for small TLVs after TCP addresses. Anything longer is refused unread.
pub const V2_MAX_PAYLOAD: usize = 216;

const V1_PREFIX: &[u8] = b"PROXY ";

/// Why a connection from a trusted peer must be closed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no complete PROXY header within {0:?}")]
    Timeout(Duration),
    #[error("connection closed inside the PROXY header")]
    Eof,
    #[error("a trusted peer did not start with a PROXY header")]
    Missing,
    #[error("PROXY header longer than {0} bytes")]
    TooLong(usize),
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    #[error("reading the PROXY header: {0}")]
    Io(#[source] std::io::Error),
}

impl From<std::io::Error> for ProxyError {
    fn from(error: std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::UnexpectedEof => Self::Eof,
            _ => Self::Io(error),
        }
    }
}

/// Which peers may speak the PROXY protocol, and how long they get to do it.
#[derive(Debug, Clone)]
pub struct ProxyProtocol {
    trusted: Vec<IpNet>,
    timeout: Duration,
}

impl ProxyProtocol {
    pub fn new(trusted: Vec<IpNet>, timeout: Duration) -> Self {
        Self { trusted, timeout }
    }

    /// Whether any peer is trusted at all; without one, headers are never read.
    pub fn is_enabled(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// IPv4-mapped IPv6 peers (dual-stack sockets) are compared as IPv4.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let canonical = peer.to_canonical();
        self.trusted
            .iter()
            .any(|net| net.contains(&canonical) || net.contains(&peer))
    }

    /// Reads the PROXY header of a connection from `peer`. `Ok(Some(source))` is the client's
    /// address; `Ok(None)` means keep `peer` (untrusted peer, v1 `UNKNOWN`, v2 `LOCAL` or an
    /// unspecified family). An error means the connection must be closed.
    pub async fn read_header<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
    ) -> Result<Option<SocketAddr>, ProxyError> {
        if !self.is_trusted(peer.ip()) {
            return Ok(None);
        }
        let source = tokio::time::timeout(self.timeout, read_any(stream))
            .await
            .map_err(|_| ProxyError::Timeout(self.timeout))??;
        Ok(source.map(|address| SocketAddr::new(address.ip().to_canonical(), address.port())))
    }
}

async fn read_any<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<SocketAddr>, ProxyError> {
    match stream.read_u8().await? {
        b'P' => read_v1(stream).await,
        b'\r' => read_v2(stream).await,
        _ => Err(ProxyError::Missing),
    }
}

/// Reads the rest of a v1 line one byte at a time: a buffered read could swallow the bytes of
/// the protocol that follows.
async fn read_v1<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<SocketAddr>, ProxyError> {
    let mut line = Vec::with_capacity(V1_MAX_LENGTH);
    line.push(b'P');
    loop {
        let byte = stream.read_u8().await?;
        line.push(byte);
        // Give up at the first byte that cannot begin a PROXY line (e.g. `PING`), without
        // waiting for 107 bytes or the deadline.
        if line.len() <= V1_PREFIX.len() && !V1_PREFIX.starts_with(&line) {
            return Err(ProxyError::Missing);
        }
        if byte == b'\n' {
            break;
        }
        if line.len() >= V1_MAX_LENGTH {
            return Err(ProxyError::TooLong(V1_MAX_LENGTH));
        }
    }
    let header = ppp::v1::Header::try_from(line.as_slice())
        .map_err(|error| ProxyError::Malformed(error.to_string()))?;
    // ppp stops at the first CR; everything read must be the header, or bytes were skipped.
    if header.header.len() != line.len() {
        return Err(ProxyError::Malformed("bytes after CRLF".into()));
    }
    Ok(match header.addresses {
        ppp::v1::Addresses::Tcp4(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        ppp::v1::Addresses::Tcp6(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        ppp::v1::Addresses::Unknown => None,
    })
}

async fn read_v2<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<SocketAddr>, ProxyError> {
    let signature = v2::PROTOCOL_PREFIX.len();
    let mut header = vec![0u8; V2_FIXED_LENGTH];
    header[0] = b'\r';
    // The signature first, so that a stray CR from a client is refused without waiting for more.
    stream.read_exact(&mut header[1..signature]).await?;
    if header[..signature] != *v2::PROTOCOL_PREFIX {
        return Err(ProxyError::Missing);
    }
    stream.read_exact(&mut header[signature..]).await?;
    let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if length > V2_MAX_PAYLOAD {
        return Err(ProxyError::TooLong(V2_FIXED_LENGTH + length));
    }
    header.resize(V2_FIXED_LENGTH + length, 0);
    stream.read_exact(&mut header[V2_FIXED_LENGTH..]).await?;
    let header = v2::Header::try_from(header.as_slice())
        .map_err(|error| ProxyError::Malformed(error.to_string()))?;
    if header.command == v2::Command::Local {
        // Health checks from the balancer itself.
        return Ok(None);
    }
    let source = match header.addresses {
        v2::Addresses::IPv4(ip) => SocketAddr::from((ip.source_address, ip.source_port)),
        v2::Addresses::IPv6(ip) => SocketAddr::from((ip.source_address, ip.source_port)),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => return Ok(None),
    };
    match header.protocol {
        v2::Protocol::Stream => Ok(Some(source)),
        // The spec lets a receiver use the real endpoints for an unspecified protocol.
        v2::Protocol::Unspecified => Ok(None),
        v2::Protocol::Datagram => Err(ProxyError::Malformed(
            "UDP addresses on a TCP connection".into(),
        )),
    }
}
