//! Real handshakes over loopback TCP against certificates generated per test.
#![allow(clippy::unwrap_used)]

use super::*;
use rustls::pki_types::ServerName;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn generate() -> Pair {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    Pair {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
        der: generated.cert.der().clone(),
    }
}

struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn new(pair: &Pair) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Self {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        };
        files.write(pair);
        files
    }

    fn write(&self, pair: &Pair) {
        std::fs::write(&self.cert, &pair.cert_pem).unwrap();
        std::fs::write(&self.key, &pair.key_pem).unwrap();
    }

    fn config(&self, reload_check_secs: u64) -> TlsConfig {
        TlsConfig {
            cert_file: Some(self.cert.clone()),
            key_file: Some(self.key.clone()),
            reload_check_secs,
        }
    }
}

/// Connects a client trusting `roots` and returns the certificate the server presented.
async fn presented(
    acceptor: tokio_rustls::TlsAcceptor,
    roots: &[&Pair],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<CertificateDer<'static>> {
    crate::install_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        tls.write_all(b"220 ready\r\n").await?;
        tls.shutdown().await
    });
    let mut store = rustls::RootCertStore::empty();
    for pair in roots {
        store.add(pair.der.clone()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(store)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(address).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let mut greeting = String::new();
    tls.read_to_string(&mut greeting).await?;
    assert_eq!(greeting, "220 ready\r\n");
    server.await.unwrap()?;
    let connection = tls.get_ref().1;
    assert_eq!(connection.protocol_version(), Some(versions[0].version));
    Ok(connection.peer_certificates().unwrap()[0].clone())
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[test]
fn good_pem_loads() {
    let pair = generate();
    let files = Files::new(&pair);
    server_config(&files.cert, &files.key).unwrap();
    let mut errors = Vec::new();
    files.config(30).finish("smtp.tls", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn garbage_pem_is_an_error_naming_the_file() {
    let files = Files::new(&generate());
    std::fs::write(&files.cert, "not a certificate\n").unwrap();
    let error = server_config(&files.cert, &files.key).unwrap_err();
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&*files.cert.to_string_lossy()),
        "{error}"
    );

    let files = Files::new(&generate());
    std::fs::write(
        &files.key,
        "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = server_config(&files.cert, &files.key).unwrap_err();
    assert!(matches!(error, TlsError::PrivateKey { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&*files.key.to_string_lossy()),
        "{error}"
    );
}

#[test]
fn mismatched_key_is_rejected_without_printing_it() {
    let pair = generate();
    let files = Files::new(&pair);
    std::fs::write(&files.key, generate().key_pem).unwrap();
    let error = server_config(&files.cert, &files.key).unwrap_err();
    assert!(matches!(error, TlsError::Rejected { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&*files.key.to_string_lossy()), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[test]
fn finish_reports_every_problem_under_its_key() {
    let mut errors = Vec::new();
    let only_cert = TlsConfig {
        cert_file: Some("/nonexistent/cert.pem".into()),
        ..TlsConfig::default()
    };
    only_cert.finish("smtp.tls", &mut errors);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key, "smtp.tls.key_file");

    let mut errors = Vec::new();
    let missing = TlsConfig {
        cert_file: Some("/nonexistent/cert.pem".into()),
        key_file: Some("/nonexistent/key.pem".into()),
        ..TlsConfig::default()
    };
    missing.finish("smtp.tls", &mut errors);
    let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["smtp.tls.cert_file", "smtp.tls.key_file"]);
    assert!(
        errors[0].message.contains("/nonexistent/cert.pem"),
        "{errors:?}"
    );

    let mut errors = Vec::new();
    TlsConfig::default().finish("smtp.tls", &mut errors);
    assert!(errors.is_empty());
    assert!(!TlsConfig::default().is_enabled());
    assert!(TlsReloader::load(&TlsConfig::default()).unwrap().is_none());
}

#[tokio::test]
async fn handshake_presents_the_certificate_with_tls13_and_tls12() {
    let pair = generate();
    let files = Files::new(&pair);
    let reloader = TlsReloader::load(&files.config(0)).unwrap().unwrap();
    let cert = presented(reloader.acceptor(), &[&pair], BOTH)
        .await
        .unwrap();
    assert_eq!(cert, pair.der);
    let tls12 = &[&rustls::version::TLS12];
    let cert = presented(reloader.acceptor(), &[&pair], tls12)
        .await
        .unwrap();
    assert_eq!(cert, pair.der);
}

/// rustls has no TLS 1.0/1.1 code, so no client built on it can even ask. A hand-written
/// TLS 1.1 ClientHello (no supported_versions extension) must be answered with a
/// `protocol_version` alert.
#[tokio::test]
async fn tls11_client_hello_gets_protocol_version_alert() {
    let files = Files::new(&generate());
    let reloader = TlsReloader::load(&files.config(0)).unwrap().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = reloader.acceptor();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.map(drop)
    });
    // ClientHello body: version 3.2, random, empty session id, one CBC suite, null compression,
    // and signature_algorithms (ecdsa_secp256r1_sha256), without which rustls refuses earlier
    // with handshake_failure.
    let mut body = vec![0x03, 0x02];
    body.extend([7u8; 32]);
    body.extend([0x00, 0x00, 0x02, 0xc0, 0x09, 0x01, 0x00]);
    body.extend([0x00, 0x08, 0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]);
    let mut hello = vec![
        0x16,
        0x03,
        0x01,
        0x00,
        (body.len() + 4) as u8,
        0x01,
        0x00,
        0x00,
    ];
    hello.push(body.len() as u8);
    hello.extend(body);
    let mut tcp = TcpStream::connect(address).await.unwrap();
    tcp.write_all(&hello).await.unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.unwrap();
    let error = server.await.unwrap().unwrap_err();
    assert!(error.to_string().contains("Tls12NotOffered"), "{error}");
    // Alert record: type 21, version, length 2, level fatal (2), protocol_version (70).
    assert_eq!(reply.first(), Some(&21), "{reply:?}");
    assert_eq!(&reply[3..], &[0, 2, 2, 70], "{reply:?}");
}

#[tokio::test]
async fn reload_swaps_certificate_and_failed_reload_keeps_the_old_one() {
    let (old, new) = (generate(), generate());
    let files = Files::new(&old);
    let reloader = TlsReloader::load(&files.config(0)).unwrap().unwrap();
    assert!(
        !reloader.reload().unwrap(),
        "unchanged files are not a change"
    );

    files.write(&new);
    assert!(reloader.reload().unwrap());
    assert_eq!(reloader.reloads(), 1);
    let cert = presented(reloader.acceptor(), &[&old, &new], BOTH)
        .await
        .unwrap();
    assert_eq!(cert, new.der);

    std::fs::write(&files.cert, "garbage").unwrap();
    let error = reloader.reload().unwrap_err();
    assert!(error.to_string().contains(&*files.cert.to_string_lossy()));
    // A half-written pair (new certificate, old key) is refused as well.
    std::fs::write(&files.cert, &old.cert_pem).unwrap();
    assert!(matches!(reloader.reload(), Err(TlsError::Rejected { .. })));
    let cert = presented(reloader.acceptor(), &[&old, &new], BOTH)
        .await
        .unwrap();
    assert_eq!(cert, new.der);
    assert_eq!(reloader.reloads(), 1);
}

#[tokio::test]
async fn watcher_picks_up_changed_files() {
    let (old, new) = (generate(), generate());
    let files = Files::new(&old);
    let reloader = TlsReloader::load(&files.config(1)).unwrap().unwrap();
    let cancel = CancellationToken::new();
    let watcher = reloader.spawn_watcher(cancel.clone());
    // Let the watcher take its first stamp of the old files.
    tokio::time::sleep(Duration::from_millis(100)).await;
    files.write(&new);
    let started = Instant::now();
    while reloader.reloads() == 0 {
        assert!(started.elapsed() < Duration::from_secs(4), "no reload seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cert = presented(reloader.acceptor(), &[&old, &new], BOTH)
        .await
        .unwrap();
    assert_eq!(cert, new.der);
    cancel.cancel();
    watcher.await.unwrap();
}

/// A pair whose certificate is valid until `not_after` (Unix seconds).
fn generate_until(not_after: i64) -> Pair {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

#[test]
fn the_expiry_of_the_served_certificate_is_exported_and_follows_a_reload() {
    let (first, second) = (2_000_000_000, 2_100_000_000);
    let files = Files::new(&generate_until(first));
    let reloader = TlsReloader::load(&files.config(0)).unwrap().unwrap();
    assert_eq!(reloader.not_after(), Some(first));
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(reloader.expiry_collector());
    let scrape = crate::metrics::encode(&registry);
    assert!(
        scrape.contains("mailcluster_tls_certificate_not_after_timestamp_seconds 2000000000"),
        "{scrape}"
    );
    files.write(&generate_until(second));
    assert!(reloader.reload().unwrap());
    let scrape = crate::metrics::encode(&registry);
    assert!(
        scrape.contains("mailcluster_tls_certificate_not_after_timestamp_seconds 2100000000"),
        "{scrape}"
    );
}
