//! `healthcheck`, the subcommand Docker's HEALTHCHECK runs in every service image: exit 0 when
//! the probed `/readyz` answers 200, 1 for anything else (Docker reserves other codes), with the
//! address taken from the service's own configuration when no `--url` is given.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

const BINARIES: [&str; 3] = [
    "mailcluster-smtp-ingress",
    "mailcluster-delivery-worker",
    "mailcluster-admin",
];

/// What every service needs for its configuration to load (nothing is contacted).
const VALID_CONFIG: [(&str, &str); 7] = [
    (
        "MAILCLUSTER_DATABASE__URL",
        "postgres://mail@127.0.0.1:1/mail",
    ),
    ("MAILCLUSTER_REDIS__URL", "redis://127.0.0.1:1"),
    ("MAILCLUSTER_BLOB__S3__BUCKET", "mail"),
    ("MAILCLUSTER_BLOB__S3__ACCESS_KEY_ID", "key"),
    ("MAILCLUSTER_BLOB__S3__SECRET_ACCESS_KEY", "secret"),
    ("MAILCLUSTER_SMTP__SUBMISSIONS_LISTEN", "[]"),
    ("MAILCLUSTER_ADMIN__TOKEN", "healthcheck-token-0123456789"),
];

/// A server answering each of `requests` connections with `answer`; returns its address.
fn serve(answer: &'static str, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    address
}

/// Runs `<binary> healthcheck <args>` with only `env` in its environment; returns the exit code.
fn healthcheck(binary: &str, args: &[&str], env: &[(&str, &str)]) -> i32 {
    let output = Command::new(mc_tests::bin(binary))
        .arg("healthcheck")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run the binary");
    output.status.code().expect("an exit code")
}

#[test]
fn nothing_listening_is_exit_1() {
    let url = format!("http://127.0.0.1:{}/readyz", mc_tests::free_port());
    for binary in BINARIES {
        assert_eq!(healthcheck(binary, &["--url", &url], &[]), 1, "{binary}");
    }
}

#[test]
fn a_200_answer_is_exit_0_and_a_503_is_exit_1() {
    let ok = serve("HTTP/1.1 200 OK\r\n\r\nok\n", BINARIES.len());
    let busy = serve("HTTP/1.1 503 Service Unavailable\r\n\r\n", BINARIES.len());
    for binary in BINARIES {
        let url = format!("http://{ok}/readyz");
        assert_eq!(healthcheck(binary, &["--url", &url], &[]), 0, "{binary}");
        let url = format!("http://{busy}/readyz");
        assert_eq!(healthcheck(binary, &["--url", &url], &[]), 1, "{binary}");
    }
}

#[test]
fn without_url_the_configured_ops_listener_is_probed() {
    let ok = serve("HTTP/1.0 200 OK\r\n\r\n", BINARIES.len());
    let mut env = VALID_CONFIG.to_vec();
    env.push(("MAILCLUSTER_OPS__LISTEN", &ok));
    for binary in BINARIES {
        assert_eq!(healthcheck(binary, &[], &env), 0, "{binary}");
    }
}

#[test]
fn an_invalid_configuration_is_exit_1_not_64() {
    for binary in BINARIES {
        assert_eq!(
            healthcheck(binary, &["--timeout-secs", "1"], &[]),
            1,
            "{binary}"
        );
    }
}
