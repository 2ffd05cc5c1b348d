//! The independent tools of the delivery tests behave as the tests expect: the aiosmtpd sink
//! scripts its replies by local part and spools exactly what it received, and the dkimpy
//! verifier passes a good signature and fails an altered message.

use mc_tests::sink::{SinkOptions, SinkProcess, dkim_verify, venv_python};
use mc_tests::smtp::{RawClient, swaks};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn sink() -> SinkProcess {
    SinkProcess::start(SinkOptions {
        hostname: "mx.remote.test".into(),
        ..SinkOptions::default()
    })
}

/// Sends `message` (already dot-stuffed, without the final dot) after DATA; returns both replies.
fn data(client: &mut RawClient, message: &[u8]) -> (String, String) {
    let go_ahead = client.cmd("DATA").line();
    client.send(message);
    client.send(b".\r\n");
    let done = client.reply().expect("reply to the final dot").line();
    (go_ahead, done)
}

#[test]
fn reject_local_part_is_550_5_1_1_and_the_other_recipient_gets_the_exact_bytes() {
    let sink = sink();
    let (mut client, banner) = RawClient::connect(sink.port());
    assert_eq!(banner.line(), "220 mx.remote.test smtp_sink");
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(
        client
            .cmd("MAIL FROM:<sender@origin.test> BODY=8BITMIME")
            .line(),
        "250 OK"
    );
    assert_eq!(
        client.cmd("RCPT TO:<user@remote.test>").line(),
        "250 2.1.5 OK"
    );
    assert_eq!(
        client.cmd("RCPT TO:<reject-me@remote.test>").line(),
        "550 5.1.1 No such user here"
    );
    let sent = b"Subject: one\r\n\r\n..a dot-stuffed line\r\n8-bit: \xe9t\xe9\r\n";
    assert_eq!(
        data(&mut client, sent),
        (
            "354 End data with <CR><LF>.<CR><LF>".to_string(),
            "250 2.0.0 OK queued as 1".to_string()
        )
    );

    // A second transaction on the same connection, after RSET.
    assert_eq!(client.cmd("MAIL FROM:<x@origin.test>").line(), "250 OK");
    assert_eq!(client.cmd("RSET").line(), "250 OK");
    assert_eq!(client.cmd("MAIL FROM:<>").line(), "250 OK");
    assert_eq!(client.cmd("RCPT TO:<a@remote.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<b@remote.test>").code, 250);
    assert_eq!(
        data(&mut client, b"Subject: two\r\n\r\nbody\r\n").1,
        "250 2.0.0 OK queued as 2"
    );
    assert_eq!(client.cmd("QUIT").line(), "221 Bye");

    let received = sink.wait_for(2, WAIT);
    assert_eq!(received.len(), 2);
    let first = &received[0];
    assert_eq!(first.mail_from, "sender@origin.test");
    assert_eq!(first.rcpt_tos, ["user@remote.test"]);
    assert_eq!(
        first.data,
        b"Subject: one\r\n\r\n.a dot-stuffed line\r\n8-bit: \xe9t\xe9\r\n"
    );
    assert_eq!(first.mail_options, ["BODY=8BITMIME"]);
    assert_eq!(first.helo, "client.test");
    assert!(!first.tls);
    assert_eq!(first.auth_user, None);
    let second = &received[1];
    assert_eq!(second.mail_from, "");
    assert_eq!(second.rcpt_tos, ["a@remote.test", "b@remote.test"]);
    assert_eq!(second.data, b"Subject: two\r\n\r\nbody\r\n");
}

#[test]
fn tempfail_local_part_is_451_4_3_0_for_the_first_attempts_then_accepted() {
    let sink = SinkProcess::start(SinkOptions {
        tempfail_times: 2,
        ..SinkOptions::default()
    });
    // The count is per address over all connections.
    for _ in 0..2 {
        let (mut client, _) = RawClient::connect(sink.port());
        client.cmd("EHLO client.test");
        client.cmd("MAIL FROM:<sender@origin.test>");
        assert_eq!(
            client.cmd("RCPT TO:<tempfail@remote.test>").line(),
            "451 4.3.0 Try again later"
        );
        client.cmd("QUIT");
    }
    let (mut client, _) = RawClient::connect(sink.port());
    client.cmd("EHLO client.test");
    client.cmd("MAIL FROM:<sender@origin.test>");
    assert_eq!(
        client.cmd("RCPT TO:<tempfail@remote.test>").line(),
        "250 2.1.5 OK"
    );
    assert_eq!(
        client.cmd("RCPT TO:<tempfail-other@remote.test>").line(),
        "451 4.3.0 Try again later"
    );
    assert_eq!(
        data(&mut client, b"Subject: retried\r\n\r\n").1,
        "250 2.0.0 OK queued as 1"
    );
    assert_eq!(sink.wait_for(1, WAIT)[0].rcpt_tos, ["tempfail@remote.test"]);
}

#[test]
fn datafail_local_part_makes_data_554_5_6_0_and_nothing_is_spooled() {
    let sink = sink();
    let (mut client, _) = RawClient::connect(sink.port());
    client.cmd("EHLO client.test");
    client.cmd("MAIL FROM:<sender@origin.test>");
    assert_eq!(client.cmd("RCPT TO:<user@remote.test>").code, 250);
    assert_eq!(
        client.cmd("RCPT TO:<datafail@remote.test>").line(),
        "250 2.1.5 OK"
    );
    assert_eq!(
        data(&mut client, b"Subject: refused\r\n\r\n").1,
        "554 5.6.0 Content rejected"
    );
    assert_eq!(client.cmd("NOOP").line(), "250 OK");
    assert!(sink.messages().is_empty());
}

#[test]
fn auth_is_offered_only_after_starttls_and_both_are_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()])
        .expect("self-signed certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    let sink = SinkProcess::start(SinkOptions {
        tls: Some((cert, key)),
        auth: Some(("relay".into(), "secret".into())),
        ..SinkOptions::default()
    });

    let (mut client, _) = RawClient::connect(sink.port());
    let ehlo = client.cmd("EHLO client.test");
    assert!(ehlo.lines.iter().any(|line| line == "STARTTLS"), "{ehlo:?}");
    assert!(
        !ehlo.lines.iter().any(|line| line.starts_with("AUTH")),
        "{ehlo:?}"
    );
    assert_eq!(
        client.cmd("MAIL FROM:<sender@origin.test>").line(),
        "530 5.7.0 Authentication required"
    );

    let run = swaks(
        sink.port(),
        &[
            "--from",
            "sender@origin.test",
            "--to",
            "user@remote.test",
            "-tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "relay",
            "--auth-password",
            "secret",
        ],
    );
    assert!(
        run.finals()
            .contains(&"235 2.7.0 Authentication successful"),
        "{}",
        run.transcript
    );
    let received = &sink.wait_for(1, WAIT)[0];
    assert!(received.tls);
    assert_eq!(received.auth_user.as_deref(), Some("relay"));
    assert_eq!(received.rcpt_tos, ["user@remote.test"]);
}

/// Signs with dkimpy (selector `sel`, domain `origin.test`) and returns signature + message.
fn dkimpy_sign(private_key_pem: &str, message: &[u8]) -> Vec<u8> {
    const SIGN: &str = "import sys, dkim\n\
        key = open(sys.argv[1], 'rb').read()\n\
        message = sys.stdin.buffer.read()\n\
        sys.stdout.buffer.write(dkim.sign(message, b'sel', b'origin.test', key) + message)\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("dkim.pem");
    std::fs::write(&key, private_key_pem).expect("write key");
    let mut child = Command::new(venv_python())
        .args(["-c", SIGN])
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), message)
        .expect("write message");
    let output = child.wait_with_output().expect("dkim.sign");
    assert!(output.status.success(), "dkim.sign failed");
    output.stdout
}

#[test]
fn dkim_verify_passes_a_good_signature_and_fails_an_altered_body_or_unknown_key() {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("RSA key");
    // The p= tag is the base64 SubjectPublicKeyInfo: the body of the public key's PEM.
    let public: String = key
        .public_key_pem()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let record = format!("v=DKIM1; k=rsa; p={public}");
    let txt = [("sel._domainkey.origin.test", record.as_str())];

    let message = b"From: <sender@origin.test>\r\nTo: <user@remote.test>\r\n\
        Subject: signed\r\n\r\nHello.\r\n";
    let signed = dkimpy_sign(&key.serialize_pem(), message);
    assert_eq!(
        dkim_verify(&signed, &txt),
        Ok("pass d=origin.test s=sel".to_string())
    );

    let mut altered = signed.clone();
    let at = altered.len() - 3;
    altered[at] = b'?';
    let error = dkim_verify(&altered, &txt).expect_err("altered body");
    assert!(error.contains("body hash mismatch"), "{error}");

    let error = dkim_verify(&signed, &[("other._domainkey.origin.test", &record)])
        .expect_err("no key for selector sel");
    assert!(error.contains("missing public key"), "{error}");
}
