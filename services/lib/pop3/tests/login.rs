//! Transcript tests of logging in: USER/PASS, AUTH PLAIN with an initial response and with a
//! continuation, cancelled and malformed SASL responses, the driver's verdicts ([AUTH],
//! [IN-USE], [SYS/TEMP], [SYS/PERM]) and the limit on wrong credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, Server, USER, plain, plaintext_config, tls_server};
use mc_pop3::{Action, LoginFailure, MAX_AUTH_FAILURES, State};

#[test]
fn user_pass_logs_in_when_plaintext_allowed() {
    let mut server = Server::new(plaintext_config());
    assert_eq!(
        server.send(&format!("user {USER}\r\n")),
        "+OK send PASS\r\n"
    );
    assert_eq!(
        server.send(&format!("pass {PASSWORD}\r\n")),
        "+OK logged in, maildrop has 3 messages (93 octets)\r\n"
    );
}

#[test]
fn pass_without_user_is_err() {
    let mut server = Server::new(plaintext_config());
    assert_eq!(server.send("PASS secret\r\n"), "-ERR send USER first\r\n");
}

#[test]
fn wrong_password_is_auth_err_and_user_must_be_sent_again() {
    let mut server = Server::new(plaintext_config());
    server.send(&format!("USER {USER}\r\n"));
    assert_eq!(
        server.send("PASS wrong\r\n"),
        "-ERR [AUTH] authentication failed\r\n"
    );
    assert_eq!(
        server.send(&format!("PASS {PASSWORD}\r\n")),
        "-ERR send USER first\r\n"
    );
    assert!(!server.lock_held);
}

#[test]
fn unknown_user_gets_the_same_reply_as_a_wrong_password() {
    let mut server = Server::new(plaintext_config());
    assert_eq!(
        server.send("USER nobody@example.com\r\n"),
        "+OK send PASS\r\n"
    );
    assert_eq!(
        server.send(&format!("PASS {PASSWORD}\r\n")),
        "-ERR [AUTH] authentication failed\r\n"
    );
}

#[test]
fn third_auth_failure_closes_the_session() {
    let mut server = Server::new(plaintext_config());
    for _ in 1..MAX_AUTH_FAILURES {
        server.send(&format!("USER {USER}\r\nPASS wrong\r\n"));
        assert!(!server.closed);
    }
    let auth = format!("AUTH PLAIN {}\r\n", plain("", USER, "wrong"));
    assert_eq!(
        server.send(&auth),
        "-ERR [AUTH] authentication failed, too many attempts, closing connection\r\n"
    );
    assert!(server.closed);
    assert!(server.session.is_closed());
}

#[test]
fn locked_maildrop_is_in_use() {
    let mut server = Server::new(plaintext_config());
    server.locked_elsewhere = true;
    server.send(&format!("USER {USER}\r\n"));
    assert_eq!(
        server.send(&format!("PASS {PASSWORD}\r\n")),
        "-ERR [IN-USE] maildrop already locked by another session\r\n"
    );
    assert!(matches!(
        server.session.state(),
        State::Authorization { .. }
    ));
}

#[test]
fn store_failures_are_sys_temp_and_sys_perm() {
    let mut server = Server::new(plaintext_config());
    server.store_down = true;
    server.send(&format!("USER {USER}\r\n"));
    assert_eq!(
        server.send(&format!("PASS {PASSWORD}\r\n")),
        "-ERR [SYS/TEMP] maildrop unavailable, try again later\r\n"
    );
    server.send(&format!("USER {USER}\r\n"));
    let action = server
        .session
        .on_line(format!("PASS {PASSWORD}").as_bytes());
    assert!(matches!(action, Action::Authenticate { .. }));
    assert_eq!(server.session.user(), Some(USER));
    let action = server.session.login_failed(LoginFailure::Permanent);
    server.perform(action);
    assert_eq!(
        server.replies.last().unwrap().as_str(),
        "-ERR [SYS/PERM] maildrop unavailable\r\n"
    );
}

#[test]
fn auth_plain_with_initial_response() {
    let mut server = tls_server();
    let auth = format!("AUTH PLAIN {}\r\n", plain("", USER, PASSWORD));
    assert_eq!(
        server.send(&auth),
        "+OK logged in, maildrop has 3 messages (93 octets)\r\n"
    );
}

#[test]
fn auth_plain_continuation() {
    let mut server = tls_server();
    assert_eq!(server.send("auth plain\r\n"), "+ \r\n");
    assert!(server.session.expects_sasl_response());
    let response = format!("{}\r\n", plain(USER, USER, PASSWORD));
    assert_eq!(
        server.send(&response),
        "+OK logged in, maildrop has 3 messages (93 octets)\r\n"
    );
}

#[test]
fn auth_plain_star_cancels() {
    let mut server = tls_server();
    assert_eq!(server.send("AUTH PLAIN\r\n"), "+ \r\n");
    assert_eq!(server.send("*\r\n"), "-ERR authentication cancelled\r\n");
    assert!(matches!(
        server.session.state(),
        State::Authorization { .. }
    ));
}

#[test]
fn auth_plain_bad_base64_is_err() {
    let mut server = tls_server();
    assert_eq!(
        server.send("AUTH PLAIN %%%\r\n"),
        "-ERR invalid base64 in SASL response\r\n"
    );
    server.send("AUTH PLAIN\r\n");
    assert_eq!(
        server.send("not base64\r\n"),
        "-ERR invalid base64 in SASL response\r\n"
    );
    assert!(!server.session.expects_sasl_response());
}

#[test]
fn auth_plain_malformed_responses_are_err() {
    let mut server = tls_server();
    let proxy = format!("AUTH PLAIN {}\r\n", plain("admin", USER, PASSWORD));
    assert_eq!(
        server.send(&proxy),
        "-ERR malformed SASL PLAIN response\r\n"
    );
    assert_eq!(
        server.send("AUTH PLAIN =\r\n"),
        "-ERR malformed SASL PLAIN response\r\n"
    );
    server.send("AUTH PLAIN\r\n");
    assert_eq!(
        server.send("\r\n"),
        "-ERR malformed SASL PLAIN response\r\n"
    );
}

#[test]
fn auth_with_unknown_mechanism_is_err() {
    let mut server = tls_server();
    assert_eq!(
        server.send("AUTH CRAM-MD5\r\n"),
        "-ERR unsupported authentication mechanism\r\n"
    );
}

#[test]
fn auth_without_mechanism_lists_plain() {
    let mut server = tls_server();
    assert_eq!(
        server.send("AUTH\r\n"),
        "+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n"
    );
}
