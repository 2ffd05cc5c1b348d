//! The `mailcluster-admin` process: configuration errors, migrations by concurrent replicas,
//! ops endpoints, graceful shutdown.

use mc_tests::{AdminProcess, TestDatabase, bin, free_port, http_get, http_status, stderr};
use std::process::Command;

#[test]
fn config_errors_are_all_named_and_exit_64_before_any_port_is_bound() {
    // Hold the port the configuration names: a service that bound before validating would fail
    // with "address in use" (exit 1) instead of reporting the configuration (exit 64).
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"short\"\nfrobnicate = true\n[database]\nmax_connections = \"many\"\n"),
    )
    .unwrap();
    let output = Command::new(bin("mailcluster-admin"))
        .args(["--config", config.path().to_str().unwrap(), "serve"])
        .env_clear()
        .env("MAILCLUSTER_OPS__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    let text = stderr(&output);
    for key in [
        "admin.frobnicate",
        "database.max_connections",
        "ops.listen",
        "admin.token",
        "database.url",
    ] {
        assert!(text.contains(key), "{key} not named in:\n{text}");
    }
    assert!(text.contains("at least 16 characters"), "{text}");
    assert!(
        text.contains("MAILCLUSTER_OPS__LISTEN"),
        "the source of the bad value is named:\n{text}"
    );
    assert!(
        !text.contains("address in use") && !text.to_lowercase().contains("addrinuse"),
        "{text}"
    );
    drop(held);

    let output = Command::new(bin("mailcluster-admin"))
        .arg("check-config")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let text = stderr(&output);
    assert!(
        text.contains("database.url") && text.contains("admin.token"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_starting_together_on_an_empty_database_migrate_once_and_serve() {
    let db = TestDatabase::empty().await;
    let url = db.url.clone();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| AdminProcess::start(&url));
        let b = s.spawn(|| AdminProcess::start(&url));
        (a.join().unwrap(), b.join().unwrap())
    });
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, mc_schema::MIGRATOR.iter().count());
    assert!(
        a.mailctl(&["domain", "add", "example.test"])
            .status
            .success()
    );
    let listed = b.mailctl(&["domain", "list", "--json"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("example.test"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ops_endpoints_report_health_readiness_and_metrics() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);
    assert_eq!(
        http_status(&format!("{}/healthz", admin.ops_url)),
        Some(200)
    );
    assert_eq!(http_status(&format!("{}/readyz", admin.ops_url)), Some(200));
    admin.mailctl(&["domain", "list"]);
    let metrics = http_get(&format!("{}/metrics", admin.ops_url)).unwrap();
    assert!(metrics.contains("mailcluster_build_info{"), "{metrics}");
    assert!(
        metrics.contains("mailcluster_admin_requests_total{method=\"GET\",route=\"/api/v1/domains\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailcluster_admin_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    assert!(metrics.contains("process_open_fds "), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_service_cleanly() {
    let db = TestDatabase::migrated().await;
    let admin = AdminProcess::start(&db.url);
    let api = admin.api_url.clone();
    let status = admin.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        http_status(&format!("{api}/openapi.json")),
        None,
        "the listener is closed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_lines_by_default_and_never_show_the_token_or_passwords() {
    let db = TestDatabase::migrated().await;
    let port = free_port();
    let ops = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(bin("mailcluster-admin"))
        .env_clear()
        .env("MAILCLUSTER_DATABASE__URL", &db.url)
        .env("MAILCLUSTER_ADMIN__TOKEN", mc_tests::ADMIN_TOKEN)
        .env("MAILCLUSTER_ADMIN__LISTEN", format!("127.0.0.1:{port}"))
        .env("MAILCLUSTER_OPS__LISTEN", format!("127.0.0.1:{ops}"))
        .env("RUST_LOG", "debug")
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while http_status(&format!("http://127.0.0.1:{ops}/readyz")) != Some(200) {
        assert!(started.elapsed().as_secs() < 60, "not ready");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        &["domain", "add", "example.test"][..],
        &[
            "account",
            "add",
            "a@example.test",
            "--password",
            "secret-password-xyz",
        ][..],
        &[
            "account",
            "passwd",
            "a@example.test",
            "--password",
            "secret-password-xyz",
        ][..],
    ] {
        let output = mc_tests::mailctl(&url, Some(mc_tests::ADMIN_TOKEN), args, None);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            mc_tests::stderr(&output)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            parsed.get("level").is_some() && parsed.get("timestamp").is_some(),
            "{line}"
        );
    }
    assert!(!text.contains(mc_tests::ADMIN_TOKEN) && !text.contains("secret-password-xyz"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_otlp_endpoint_that_is_down_does_not_stop_the_service() {
    // Trace export is best effort: a collector that is unreachable must not block start-up or
    // requests. (That spans reach a live collector is not covered by this test.)
    let db = TestDatabase::migrated().await;
    let collector = format!("http://127.0.0.1:{}", free_port());
    let admin = AdminProcess::start_with(
        &db.url,
        &[("MAILCLUSTER_TELEMETRY__OTLP_ENDPOINT", collector.as_str())],
    );
    assert!(
        admin
            .mailctl(&["domain", "add", "example.test"])
            .status
            .success(),
        "{}",
        admin.log_text()
    );
    assert_eq!(http_status(&format!("{}/readyz", admin.ops_url)), Some(200));
}
