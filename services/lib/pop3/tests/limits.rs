//! Transcript tests of the bounds: refused commands, lines before login, overlong lines, and
//! driver calls made out of order or after the session closed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, config, plaintext_config};
use mc_pop3::{
    Action, LoginFailure, MAX_BAD_COMMANDS, MAX_COMMANDS_BEFORE_LOGIN, Maildrop, Reply,
    ResponseCode,
};

fn out_of_sequence() -> Action {
    Action::Close(Reply::err(
        Some(ResponseCode::SysTemp),
        "internal error, closing connection",
    ))
}

#[test]
fn unknown_commands_close_the_session_at_the_limit() {
    let mut server = Server::logged_in();
    for _ in 1..MAX_BAD_COMMANDS {
        assert_eq!(server.send("XYZZY\r\n"), "-ERR unknown command\r\n");
    }
    assert_eq!(
        server.send("XYZZY\r\n"),
        "-ERR too many errors, closing connection\r\n"
    );
    assert!(server.closed);
    assert_eq!(
        server.committed, None,
        "a session that did not QUIT deletes nothing"
    );
}

#[test]
fn refused_commands_of_every_kind_count() {
    let mut server = Server::new(config());
    let refused = [
        "", "LIST 0", "RETR 1", "USER a", "PASS b", "AUTH", "NOOP", "STAT x", "\x01",
    ];
    for line in refused {
        assert!(
            server.send(&format!("{line}\r\n")).starts_with("-ERR"),
            "{line:?}"
        );
    }
    assert!(!server.closed);
    assert_eq!(
        server.send("TOP\r\n"),
        "-ERR too many errors, closing connection\r\n"
    );
}

#[test]
fn lines_before_login_are_bounded() {
    let mut server = Server::new(config());
    for _ in 0..MAX_COMMANDS_BEFORE_LOGIN {
        assert!(server.send("CAPA\r\n").starts_with("+OK"));
    }
    assert_eq!(
        server.send("CAPA\r\n"),
        "-ERR too many commands without logging in, closing connection\r\n"
    );
    assert!(server.closed);
}

#[test]
fn overlong_line_is_err_and_the_session_survives() {
    let mut server = Server::logged_in();
    let action = server.session.on_overlong_line();
    assert_eq!(action, Action::Reply(Reply::err(None, "line too long")));
    let long = format!("LIST {}\r\n", "1".repeat(mc_pop3::MAX_LINE_LEN));
    assert_eq!(server.send(&long), "-ERR line too long\r\n");
    assert_eq!(server.send("STAT\r\n"), "+OK 3 93\r\n");
}

#[test]
fn overlong_sasl_response_ends_the_exchange() {
    let mut server = Server::new(plaintext_config());
    assert_eq!(server.send("AUTH PLAIN\r\n"), "+ \r\n");
    let action = server.session.on_overlong_line();
    assert_eq!(action, Action::Reply(Reply::err(None, "line too long")));
    assert!(!server.session.expects_sasl_response());
}

#[test]
fn driver_calls_out_of_order_close_the_session() {
    let mut server = Server::new(config());
    let maildrop = Maildrop::new(Vec::new()).unwrap();
    assert_eq!(server.session.login_succeeded(maildrop), out_of_sequence());
    assert!(server.session.is_closed());

    let mut server = Server::logged_in();
    assert_eq!(
        server.session.login_failed(LoginFailure::BadCredentials),
        out_of_sequence()
    );

    let mut server = Server::logged_in();
    assert_eq!(server.session.commit_done(true), out_of_sequence());
}

#[test]
fn lines_while_the_login_is_checked_close_the_session() {
    let mut server = Server::new(plaintext_config());
    server.send("USER a\r\n");
    let action = server.session.on_line(b"PASS b");
    assert!(matches!(action, Action::Authenticate { .. }));
    assert_eq!(server.session.on_line(b"STAT"), out_of_sequence());
}

#[test]
fn lines_during_the_tls_handshake_close_the_session() {
    let mut server = Server::new(config());
    assert!(matches!(
        server.session.on_line(b"STLS"),
        Action::StartTls(_)
    ));
    assert_eq!(server.session.on_line(b"CAPA"), out_of_sequence());
    // A late tls_started cannot reopen a closed session.
    server.session.tls_started();
    assert!(server.session.is_closed());
}

#[test]
fn lines_after_close_are_answered_by_closing_again() {
    let mut server = Server::new(config());
    server.send("QUIT\r\n");
    assert_eq!(
        server.session.on_line(b"NOOP"),
        Action::Close(Reply::err(None, "session closed"))
    );
}

#[test]
fn authenticate_action_does_not_show_the_password_in_debug_output() {
    let mut server = Server::new(plaintext_config());
    server.send("USER a\r\n");
    let action = server.session.on_line(b"PASS hunter2");
    let shown = format!("{action:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
