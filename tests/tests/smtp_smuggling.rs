//! SMTP smuggling (CVE-2023-51764 class): only `<CR><LF>.<CR><LF>` ends DATA, so an end marker
//! built from bare CR or LF never lets a second, smuggled transaction through; and STARTTLS
//! command injection (CVE-2011-0411 class): plaintext pipelined after STARTTLS is never executed
//! inside TLS.

use mc_tests::TestDatabase;
use mc_tests::smtp::{HOSTNAME, IngressProcess, RawClient, queued, queued_id, seed_directory};
use std::process::Command;

/// End-of-data look-alikes a vulnerable server (or its upstream) might accept.
const FAKE_ENDS: [&str; 7] = [
    "\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n", "\r\n.\n", "\r\n.\r", "\n.\r",
];

/// Sends one message from sender@remote.test to alice whose body hides, behind `fake_end`, a
/// second transaction from evil@remote.test to bob; then a real end marker and QUIT. Returns the
/// replies after the 354 (`"<code> <text>"`).
fn smuggle(port: u16, fake_end: &str) -> Vec<String> {
    let (mut client, _) = RawClient::connect(port);
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(client.cmd("DATA").code, 354);
    let payload = format!(
        "From: sender@remote.test\r\nSubject: first\r\n\r\nfirst message{fake_end}\
         MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n\
         From: evil@remote.test\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n\
         \r\n.\r\nQUIT\r\n"
    );
    client.send(payload.as_bytes());
    client
        .replies_until_close()
        .iter()
        .map(|r| r.line())
        .collect()
}

/// What follows the message's own reply: the two lines after the real end marker are junk
/// commands, then QUIT.
fn tail() -> [String; 3] {
    let junk = "500 5.5.2 Syntax error, command unrecognized".to_string();
    [
        junk.clone(),
        junk,
        format!("221 2.0.0 {HOSTNAME} closing connection"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bare_line_ending_end_markers_never_end_data_and_the_message_is_554_5_6_0() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    for fake_end in FAKE_ENDS {
        let replies = smuggle(ingress.mx_port, fake_end);
        let mut expected = vec!["554 5.6.0 Rejected message using bare LF's or CR's".to_string()];
        expected.extend(tail());
        assert_eq!(replies, expected, "{fake_end:?}");
    }
    let entries = queued(&db).await;
    assert!(entries.is_empty(), "{entries:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn normalized_bare_line_endings_queue_exactly_one_message_per_data() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress =
        IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__BARE_LINE_ENDINGS", "normalize")]);
    let mut ids = Vec::new();
    for fake_end in FAKE_ENDS {
        let replies = smuggle(ingress.mx_port, fake_end);
        assert_eq!(replies.len(), 4, "{fake_end:?}: {replies:?}");
        ids.push(queued_id(&replies[0]).unwrap_or_else(|| panic!("{fake_end:?}: {replies:?}")));
        assert_eq!(replies[1..], tail(), "{fake_end:?}");
    }
    let entries = queued(&db).await;
    let queued_ids: Vec<_> = entries.iter().map(|e| e.id.clone()).collect();
    assert_eq!(queued_ids, ids, "one entry per connection, none smuggled");
    for entry in &entries {
        assert_eq!(entry.sender, "sender@remote.test");
        assert_eq!(entry.recipients, ["alice@example.test"]);
        let body = ingress.body(entry).await;
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("smuggled\r\n"), "{text:?}");
        // Every CR is followed by LF and every LF preceded by CR.
        for (i, byte) in body.iter().enumerate() {
            match byte {
                b'\r' => assert_eq!(body.get(i + 1), Some(&b'\n'), "{text:?}"),
                b'\n' => assert_eq!(body[i - 1], b'\r', "{text:?}"),
                _ => {}
            }
        }
    }
}

/// Plain socket: EHLO, then "STARTTLS\r\nRSET\r\n" in one write; TLS handshake; EHLO inside TLS.
/// Prints the replies as JSON: {"starttls": [...], "tls": [[first reply lines], [second]]}.
const STARTTLS_INJECTION: &str = r#"
import json, socket, ssl, sys
def reply(f):
    lines = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb", buffering=0)
reply(f)
s.sendall(b"EHLO client.test\r\n")
reply(f)
s.sendall(b"STARTTLS\r\nRSET\r\n")
out = {"starttls": reply(f), "tls": []}
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="localhost")
tf = t.makefile("rb", buffering=0)
t.sendall(b"EHLO client.test\r\n")
out["tls"].append(reply(tf))
t.sendall(b"NOOP\r\n")
out["tls"].append(reply(tf))
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_pipelined_after_starttls_is_not_executed_inside_tls() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(&db, &[]);
    for port in [ingress.mx_port, ingress.submission_port] {
        let output = Command::new("python3")
            .arg("-c")
            .arg(STARTTLS_INJECTION)
            .arg(port.to_string())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let value: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&output.stderr)));
        assert_eq!(
            value["starttls"],
            serde_json::json!(["220 2.0.0 Ready to start TLS"])
        );
        let ehlo = &value["tls"][0];
        assert_eq!(ehlo[0], format!("250-{HOSTNAME}"), "{value}");
        assert!(
            ehlo.as_array()
                .unwrap()
                .contains(&serde_json::json!("250-AUTH PLAIN LOGIN")),
            "{value}"
        );
        // The next reply inside TLS answers NOOP, not a leftover RSET.
        assert_eq!(
            value["tls"][1],
            serde_json::json!(["250 2.0.0 OK"]),
            "{value}"
        );
    }
}
