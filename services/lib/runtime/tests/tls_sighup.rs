//! SIGHUP reaches every handler in the process, so this test has a process of its own: in the
//! unit-test binary it would also reload the polling test's watcher and hide a polling bug.
#![allow(clippy::unwrap_used)]

use mc_runtime::tls::{TlsConfig, TlsReloader};
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

fn write_pair(dir: &std::path::Path) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), generated.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), generated.signing_key.serialize_pem()).unwrap();
}

#[tokio::test]
async fn tls_watcher_reloads_on_sighup_without_polling() {
    mc_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    write_pair(dir.path());
    let config = TlsConfig {
        cert_file: Some(dir.path().join("cert.pem")),
        key_file: Some(dir.path().join("key.pem")),
        reload_check_secs: 0,
    };
    let reloader = TlsReloader::load(&config).unwrap().unwrap();
    // Installed before anything can send the signal, so SIGHUP never kills the test process.
    let _handler = signal(SignalKind::hangup()).unwrap();
    let cancel = CancellationToken::new();
    let watcher = reloader.spawn_watcher(cancel.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    write_pair(dir.path());
    assert_eq!(reloader.reloads(), 0, "reload_check_secs = 0 must not poll");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    while reloader.reloads() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "no reload after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    watcher.await.unwrap();
}
