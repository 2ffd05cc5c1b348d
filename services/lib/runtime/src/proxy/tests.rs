//! Headers fed through in-memory pipes (and one real socket); every case also checks that the
//! bytes after the header are still in the stream.
#![allow(clippy::unwrap_used)]

use super::*;
use tokio::io::{AsyncWriteExt, DuplexStream, duplex};

const NEXT: &[u8] = b"EHLO x\r\n";

fn proxy() -> ProxyProtocol {
    let trusted = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
    ProxyProtocol::new(trusted, Duration::from_millis(200))
}

fn balancer() -> SocketAddr {
    "10.1.2.3:40000".parse().unwrap()
}

/// A stream holding `bytes`, closed after them unless `keep_open`.
async fn stream(bytes: &[u8], keep_open: bool) -> (DuplexStream, Option<DuplexStream>) {
    let (mut client, server) = duplex(4096);
    client.write_all(bytes).await.unwrap();
    (server, keep_open.then_some(client))
}

/// Reads `input` + [`NEXT`] as a trusted peer; returns the result and what was left unread.
async fn read(input: &[u8]) -> (Result<Option<SocketAddr>, ProxyError>, Vec<u8>) {
    let (mut server, _client) = stream(&[input, NEXT].concat(), false).await;
    let result = proxy().read_header(&mut server, balancer()).await;
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    (result, rest)
}

fn v2(command: u8, family_protocol: u8, addresses: &[u8]) -> Vec<u8> {
    let mut bytes = v2::PROTOCOL_PREFIX.to_vec();
    bytes.extend([command, family_protocol]);
    bytes.extend(u16::try_from(addresses.len()).unwrap().to_be_bytes());
    bytes.extend(addresses);
    bytes
}

#[tokio::test]
async fn v1_tcp4_gives_source_and_leaves_the_rest() {
    let (result, rest) = read(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\n").await;
    assert_eq!(result.unwrap(), Some("192.0.2.7:51234".parse().unwrap()));
    assert_eq!(rest, NEXT);
}

#[tokio::test]
async fn v1_tcp6_gives_source() {
    let (result, rest) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 587\r\n").await;
    assert_eq!(
        result.unwrap(),
        Some("[2001:db8::7]:51234".parse().unwrap())
    );
    assert_eq!(rest, NEXT);
}

#[tokio::test]
async fn v1_unknown_keeps_the_peer() {
    let (result, rest) = read(b"PROXY UNKNOWN\r\n").await;
    assert_eq!(result.unwrap(), None);
    assert_eq!(rest, NEXT);
    let worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(worst.len(), V1_MAX_LENGTH);
    let (result, rest) = read(worst.as_bytes()).await;
    assert_eq!(result.unwrap(), None);
    assert_eq!(rest, NEXT);
}

#[tokio::test]
async fn v2_ipv4_and_ipv6_give_source() {
    let ipv4 = v2(0x21, 0x11, &[192, 0, 2, 7, 10, 0, 0, 1, 0xc8, 0x22, 0, 25]);
    let (result, rest) = read(&ipv4).await;
    assert_eq!(result.unwrap(), Some("192.0.2.7:51234".parse().unwrap()));
    assert_eq!(rest, NEXT);

    let source: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
    let mut addresses = source.octets().to_vec();
    addresses.extend([0u8; 16]);
    addresses.extend([0xc8, 0x22, 0x02, 0x4b]);
    addresses.extend([0x04, 0x00, 0x01, 0x2a]); // a NOOP TLV after the addresses
    let (result, rest) = read(&v2(0x21, 0x21, &addresses)).await;
    assert_eq!(
        result.unwrap(),
        Some("[2001:db8::7]:51234".parse().unwrap())
    );
    assert_eq!(rest, NEXT);
}

#[tokio::test]
async fn v2_from_ppp_builder_with_mapped_source_is_ipv4() {
    let source: SocketAddr = "[::ffff:192.0.2.7]:51234".parse().unwrap();
    let destination: SocketAddr = "[2001:db8::1]:25".parse().unwrap();
    let header = v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        (source, destination),
    )
    .build()
    .unwrap();
    let (result, rest) = read(&header).await;
    assert_eq!(result.unwrap(), Some("192.0.2.7:51234".parse().unwrap()));
    assert_eq!(rest, NEXT);
}

#[tokio::test]
async fn v2_local_and_unspecified_keep_the_peer() {
    for header in [
        v2(0x20, 0x00, &[]),
        v2(0x20, 0x11, &[0; 12]),
        v2(0x21, 0x00, &[]),
    ] {
        let (result, rest) = read(&header).await;
        assert_eq!(result.unwrap(), None, "{header:?}");
        assert_eq!(rest, NEXT);
    }
}

#[tokio::test]
async fn untrusted_peer_is_not_read() {
    let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\n";
    let (mut server, _client) = stream(line, true).await;
    let peer = "192.0.2.99:40000".parse().unwrap();
    assert_eq!(proxy().read_header(&mut server, peer).await.unwrap(), None);
    let mut first = vec![0; line.len()];
    server.read_exact(&mut first).await.unwrap();
    assert_eq!(first, line);
    assert!(!ProxyProtocol::new(Vec::new(), Duration::from_secs(1)).is_enabled());
}

#[test]
fn mapped_ipv6_peer_is_trusted_as_ipv4() {
    assert!(proxy().is_trusted("::ffff:10.9.9.9".parse().unwrap()));
    assert!(proxy().is_trusted("fd12::1".parse().unwrap()));
    assert!(!proxy().is_trusted("::ffff:192.0.2.1".parse().unwrap()));
}

#[tokio::test]
async fn trusted_peer_without_header_is_refused_at_once() {
    let (result, _) = read(b"").await;
    assert!(matches!(result, Err(ProxyError::Missing)), "{result:?}");
    let (result, _) = read(b"PING\r\n").await;
    assert!(matches!(result, Err(ProxyError::Missing)), "{result:?}");
    let (result, _) = read(b"\r\nQUIT\r\n").await;
    assert!(matches!(result, Err(ProxyError::Missing)), "{result:?}");
}

#[tokio::test]
async fn malformed_headers_are_refused() {
    for line in [
        &b"PROXY TCP4 192.0.2.7 10.0.0.1 51234\r\n"[..],
        b"PROXY TCP4 2001:db8::7 10.0.0.1 51234 25\r\n",
        b"PROXY TCP5 192.0.2.7 10.0.0.1 51234 25\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 051234 25\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\n",
        b"PROXY TCP4 192.0.2.7\r 10.0.0.1 51234 25\r\n",
        b"PROXY \xff\r\n",
    ] {
        let (result, _) = read(line).await;
        assert!(
            matches!(result, Err(ProxyError::Malformed(_))),
            "{line:?}: {result:?}"
        );
    }
    for header in [
        v2(0x11, 0x11, &[0; 12]), // version 1 in a v2 signature
        v2(0x22, 0x11, &[0; 12]), // command 2
        v2(0x21, 0x11, &[0; 8]),  // too short for IPv4 addresses
        v2(0x21, 0x12, &[0; 12]), // UDP
        v2(0x21, 0x41, &[0; 12]), // family 4
    ] {
        let (result, _) = read(&header).await;
        assert!(
            matches!(result, Err(ProxyError::Malformed(_))),
            "{header:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn oversized_headers_are_refused_unread() {
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(300, b'a');
    let (mut server, _client) = stream(&long, true).await;
    let result = proxy().read_header(&mut server, balancer()).await;
    assert!(
        matches!(result, Err(ProxyError::TooLong(V1_MAX_LENGTH))),
        "{result:?}"
    );

    let mut huge = v2(0x21, 0x11, &[]);
    huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    let (mut server, _client) = stream(&huge, true).await;
    let result = proxy().read_header(&mut server, balancer()).await;
    assert!(matches!(result, Err(ProxyError::TooLong(_))), "{result:?}");
    let (result, _) = read(&v2(0x21, 0x11, &[0; V2_MAX_PAYLOAD + 1])).await;
    assert!(matches!(result, Err(ProxyError::TooLong(_))), "{result:?}");
}

#[tokio::test]
async fn truncated_header_is_eof() {
    let header = v2(0x21, 0x11, &[192, 0, 2, 7, 10, 0, 0, 1, 0xc8, 0x22, 0, 25]);
    for input in [&b"PROXY TCP4 192.0.2.7"[..], &header[..10], &header[..20]] {
        let (mut server, _) = stream(input, false).await;
        let result = proxy().read_header(&mut server, balancer()).await;
        assert!(
            matches!(result, Err(ProxyError::Eof)),
            "{input:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn slow_sender_times_out() {
    let (mut server, _client) = stream(b"PROXY TCP4 192.0.2.7 ", true).await;
    let started = std::time::Instant::now();
    let result = proxy().read_header(&mut server, balancer()).await;
    assert!(matches!(result, Err(ProxyError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn garbage_never_panics() {
    // A fixed linear congruential sequence: reproducible without a random-number crate.
    let mut state: u32 = 12345;
    for round in 0..500 {
        let length = round % 260;
        let mut input = Vec::with_capacity(length + 16);
        if round % 3 == 0 {
            input.extend(v2::PROTOCOL_PREFIX);
        } else if round % 3 == 1 {
            input.extend(b"PROXY ");
        }
        for _ in 0..length {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            input.push((state >> 16) as u8);
        }
        let (mut server, _) = stream(&input, false).await;
        let _ = proxy().read_header(&mut server, balancer()).await;
    }
}

#[tokio::test]
async fn real_tcp_connection_keeps_following_bytes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        tcp.write_all(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 25\r\nEHLO x\r\n")
            .await
            .unwrap();
        tcp.shutdown().await.unwrap();
    });
    let (mut tcp, peer) = listener.accept().await.unwrap();
    let local = ProxyProtocol::new(vec!["127.0.0.0/8".parse().unwrap()], Duration::from_secs(2));
    let source = local.read_header(&mut tcp, peer).await.unwrap();
    assert_eq!(source, Some("192.0.2.7:51234".parse().unwrap()));
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, NEXT);
    client.await.unwrap();
}
