//! Transcript tests of the AUTHORIZATION state before any login: greeting, CAPA, STLS, the
//! plaintext policy, and the commands that need a login or do not exist. Logins are in
//! `login.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{HOST, PASSWORD, Server, USER, config, plain, plaintext_config, tls_server};
use mc_pop3::{Config, State};

const CAPA_BASE: &str = "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n\
                         AUTH-RESP-CODE\r\nPIPELINING\r\n";
const PLAINTEXT_REFUSED: &str = "-ERR [AUTH] plaintext authentication disallowed on non-secure \
                                 connections, use STLS first\r\n";

#[test]
fn greeting_names_the_host() {
    let server = Server::new(config());
    assert_eq!(server.output, b"+OK pop.test POP3 server ready\r\n");
}

#[test]
fn greeting_uses_the_configured_welcome_text() {
    let welcome = Config {
        welcome: Some("Mail\r\nservice".into()),
        ..config()
    };
    assert_eq!(Server::new(welcome).output, b"+OK Mail  service\r\n");
}

#[test]
fn capa_before_tls_offers_only_stls_when_plaintext_disallowed() {
    let mut server = Server::new(config());
    assert_eq!(server.send("CAPA\r\n"), format!("{CAPA_BASE}STLS\r\n.\r\n"));
}

#[test]
fn capa_lists_user_and_plain_when_plaintext_allowed() {
    let mut server = Server::new(plaintext_config());
    assert_eq!(
        server.send("capa\r\n"),
        format!("{CAPA_BASE}USER\r\nSASL PLAIN\r\nSTLS\r\n.\r\n")
    );
}

#[test]
fn capa_after_stls_lists_user_and_plain_but_not_stls() {
    let mut server = tls_server();
    assert_eq!(
        server.send("CAPA\r\n"),
        format!("{CAPA_BASE}USER\r\nSASL PLAIN\r\n.\r\n")
    );
}

#[test]
fn capa_without_certificate_does_not_offer_stls() {
    let mut server = Server::new(Config::new(HOST));
    assert_eq!(server.send("CAPA\r\n"), format!("{CAPA_BASE}.\r\n"));
}

#[test]
fn user_refused_before_stls_when_plaintext_disallowed() {
    let mut server = Server::new(config());
    assert_eq!(server.send(&format!("USER {USER}\r\n")), PLAINTEXT_REFUSED);
}

#[test]
fn pass_and_auth_refused_before_stls_when_plaintext_disallowed() {
    let mut server = Server::new(config());
    assert_eq!(server.send("PASS x\r\n"), PLAINTEXT_REFUSED);
    let auth = format!("AUTH PLAIN {}\r\n", plain("", USER, PASSWORD));
    assert_eq!(server.send(&auth), PLAINTEXT_REFUSED);
    assert_eq!(server.send("AUTH\r\n"), PLAINTEXT_REFUSED);
    assert!(!server.lock_held);
}

#[test]
fn plaintext_refusal_without_certificate_does_not_mention_stls() {
    let mut server = Server::new(Config::new(HOST));
    assert_eq!(
        server.send("USER a\r\n"),
        "-ERR [AUTH] plaintext authentication disallowed on non-secure connections\r\n"
    );
}

#[test]
fn stls_then_user_pass_logs_in() {
    let mut server = tls_server();
    assert_eq!(
        server.send(&format!("USER {USER}\r\n")),
        "+OK send PASS\r\n"
    );
    assert_eq!(
        server.send(&format!("PASS {PASSWORD}\r\n")),
        "+OK logged in, maildrop has 3 messages (93 octets)\r\n"
    );
    assert!(server.lock_held);
    assert_eq!(server.session.user(), Some(USER));
}

#[test]
fn stls_discards_pipelined_plaintext() {
    let mut server = Server::new(plaintext_config());
    let output = server.send("USER injected\r\nSTLS\r\nPASS injected\r\nCAPA\r\n");
    assert_eq!(
        output, "+OK send PASS\r\n+OK Begin TLS negotiation\r\n",
        "nothing after STLS may be read as a command"
    );
    assert!(matches!(
        server.session.state(),
        State::Authorization { user: None }
    ));
    assert_eq!(server.send("PASS x\r\n"), "-ERR send USER first\r\n");
}

#[test]
fn stls_when_tls_is_active_is_err() {
    let mut server = tls_server();
    assert_eq!(server.send("STLS\r\n"), "-ERR TLS already active\r\n");
    let mut implicit = Server::with_tls(config(), true);
    assert_eq!(implicit.send("STLS\r\n"), "-ERR TLS already active\r\n");
    assert_eq!(implicit.handshakes, 0);
}

#[test]
fn stls_without_certificate_is_err() {
    let mut server = Server::new(Config::new(HOST));
    assert_eq!(server.send("STLS\r\n"), "-ERR STLS not available\r\n");
}

#[test]
fn retr_before_login_is_err() {
    let mut server = Server::new(plaintext_config());
    assert_eq!(
        server.send("RETR 1\r\n"),
        "-ERR command not valid in this state\r\n"
    );
}

#[test]
fn transaction_commands_before_login_are_err() {
    let mut server = Server::new(plaintext_config());
    for command in [
        "STAT", "LIST", "UIDL 1", "TOP 1 1", "DELE 1", "RSET", "NOOP",
    ] {
        assert_eq!(
            server.send(&format!("{command}\r\n")),
            "-ERR command not valid in this state\r\n",
            "{command}"
        );
    }
}

#[test]
fn quit_before_login_signs_off_without_commit() {
    let mut server = Server::new(config());
    assert_eq!(
        server.send("QUIT\r\n"),
        "+OK pop.test POP3 server signing off\r\n"
    );
    assert!(server.closed);
    assert_eq!(server.committed, None);
}

#[test]
fn apop_is_not_supported() {
    let mut server = Server::new(config());
    assert_eq!(
        server.send("APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n"),
        "-ERR unknown command\r\n"
    );
}
