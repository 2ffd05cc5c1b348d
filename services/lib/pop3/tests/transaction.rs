//! Transcript tests of the TRANSACTION and UPDATE states: every command over the default
//! mailbox of `common` (sizes 23, 34 and 36 octets with CRLF line ends), deletion marks, the
//! commit at QUIT and what happens when the store fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use mc_pop3::State;

#[test]
fn stat_counts_messages_and_octets() {
    let mut server = Server::logged_in();
    assert_eq!(server.send("STAT\r\n"), "+OK 3 93\r\n");
}

#[test]
fn list_all_and_one() {
    let mut server = Server::logged_in();
    assert_eq!(
        server.send("LIST\r\n"),
        "+OK 3 messages (93 octets)\r\n1 23\r\n2 34\r\n3 36\r\n.\r\n"
    );
    assert_eq!(server.send("LIST 2\r\n"), "+OK 2 34\r\n");
}

#[test]
fn list_out_of_range_or_zero_is_err() {
    let mut server = Server::logged_in();
    assert_eq!(server.send("LIST 4\r\n"), "-ERR no such message\r\n");
    assert_eq!(server.send("LIST 0\r\n"), "-ERR invalid message number\r\n");
    assert_eq!(server.send("LIST 1 2\r\n"), "-ERR too many arguments\r\n");
    assert_eq!(server.send("RETR 4\r\n"), "-ERR no such message\r\n");
    assert_eq!(server.send("TOP 4 0\r\n"), "-ERR no such message\r\n");
    assert_eq!(server.send("DELE 4\r\n"), "-ERR no such message\r\n");
    assert_eq!(server.send("UIDL 4\r\n"), "-ERR no such message\r\n");
}

#[test]
fn uidl_all_and_one() {
    let mut server = Server::logged_in();
    assert_eq!(
        server.send("UIDL\r\n"),
        "+OK unique-id listing follows\r\n1 uid-1\r\n2 uid-2\r\n3 uid-3\r\n.\r\n"
    );
    assert_eq!(server.send("uidl 3\r\n"), "+OK 3 uid-3\r\n");
}

#[test]
fn retr_sends_the_message_and_its_size() {
    let mut server = Server::logged_in();
    assert_eq!(
        server.send("RETR 1\r\n"),
        "+OK 23 octets\r\nSubject: one\r\n\r\nhello\r\n.\r\n"
    );
}

#[test]
fn retr_normalises_line_ends_and_dot_stuffs() {
    let mut server = Server::logged_in();
    assert_eq!(
        server.send("RETR 2\r\n"),
        "+OK 34 octets\r\nSubject: two\r\n\r\n..dot line\r\n..\r\nbody\r\n.\r\n"
    );
}

#[test]
fn top_sends_the_header_and_n_body_lines() {
    let mut server = Server::logged_in();
    assert_eq!(
        server.send("TOP 3 2\r\n"),
        "+OK top of message follows\r\nSubject: three\r\nX: y\r\n\r\nl1\r\nl2\r\n.\r\n"
    );
    assert_eq!(
        server.send("TOP 3 0\r\n"),
        "+OK top of message follows\r\nSubject: three\r\nX: y\r\n\r\n.\r\n"
    );
    assert_eq!(
        server.send("TOP 1 100\r\n"),
        "+OK top of message follows\r\nSubject: one\r\n\r\nhello\r\n.\r\n"
    );
}

#[test]
fn dele_hides_the_message_from_stat_list_and_uidl() {
    let mut server = Server::logged_in();
    assert_eq!(server.send("DELE 2\r\n"), "+OK message 2 deleted\r\n");
    assert_eq!(server.send("STAT\r\n"), "+OK 2 59\r\n");
    assert_eq!(
        server.send("LIST\r\n"),
        "+OK 2 messages (59 octets)\r\n1 23\r\n3 36\r\n.\r\n"
    );
    assert_eq!(
        server.send("UIDL\r\n"),
        "+OK unique-id listing follows\r\n1 uid-1\r\n3 uid-3\r\n.\r\n"
    );
}

#[test]
fn a_deleted_message_referenced_again_is_err() {
    let mut server = Server::logged_in();
    server.send("DELE 2\r\n");
    for command in ["DELE 2", "RETR 2", "TOP 2 1", "LIST 2", "UIDL 2"] {
        assert_eq!(
            server.send(&format!("{command}\r\n")),
            "-ERR message 2 already deleted\r\n",
            "{command}"
        );
    }
}

#[test]
fn dele_then_rset_restores() {
    let mut server = Server::logged_in();
    server.send("DELE 1\r\nDELE 3\r\n");
    assert_eq!(
        server.send("RSET\r\n"),
        "+OK maildrop has 3 messages (93 octets)\r\n"
    );
    assert_eq!(server.send("STAT\r\n"), "+OK 3 93\r\n");
    assert_eq!(
        server.send("QUIT\r\n"),
        "+OK pop.test POP3 server signing off (3 messages left)\r\n"
    );
    assert_eq!(server.committed, Some(Vec::new()));
    assert_eq!(server.mailbox.len(), 3);
}

#[test]
fn noop_is_ok() {
    let mut server = Server::logged_in();
    assert_eq!(server.send("NOOP\r\n"), "+OK\r\n");
}

#[test]
fn capa_in_transaction_announces_the_authorization_capabilities_too() {
    let mut server = Server::logged_in();
    let capa = server.send("CAPA\r\n");
    assert!(capa.starts_with("+OK capability list follows\r\nTOP\r\nUIDL\r\n"));
    assert!(
        capa.contains("\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\n.\r\n"),
        "{capa}"
    );
}

#[test]
fn quit_in_transaction_commits_deletions() {
    let mut server = Server::logged_in();
    server.send("DELE 1\r\nDELE 3\r\n");
    assert_eq!(
        server.send("QUIT\r\n"),
        "+OK pop.test POP3 server signing off (1 message left)\r\n"
    );
    assert_eq!(server.committed, Some(vec![0, 2]));
    assert_eq!(server.mailbox.len(), 1);
    assert_eq!(server.mailbox[0].0, "uid-2");
    assert!(server.closed && !server.lock_held);
}

#[test]
fn quit_after_deleting_everything_reports_an_empty_maildrop() {
    let mut server = Server::logged_in();
    server.send("DELE 1\r\nDELE 2\r\nDELE 3\r\n");
    assert_eq!(
        server.send("QUIT\r\n"),
        "+OK pop.test POP3 server signing off (maildrop empty)\r\n"
    );
    assert!(server.mailbox.is_empty());
}

#[test]
fn failed_commit_is_sys_temp() {
    let mut server = Server::logged_in();
    server.commit_fails = true;
    server.send("DELE 1\r\n");
    assert_eq!(
        server.send("QUIT\r\n"),
        "-ERR [SYS/TEMP] some deleted messages not removed\r\n"
    );
    assert!(server.closed);
    assert_eq!(server.mailbox.len(), 3);
}

#[test]
fn lines_during_the_commit_are_refused_by_closing() {
    let mut server = Server::logged_in();
    server.send("DELE 1\r\n");
    let action = server.session.on_line(b"QUIT\r\n");
    assert!(matches!(
        server.session.state(),
        State::Update { remaining: 2, .. }
    ));
    assert!(matches!(action, mc_pop3::Action::Commit { ref deleted } if deleted == &[0]));
    let refused = server.session.on_line(b"STAT\r\n");
    assert_eq!(
        refused,
        mc_pop3::Action::Close(mc_pop3::Reply::err(
            Some(mc_pop3::ResponseCode::SysTemp),
            "internal error, closing connection"
        ))
    );
    assert!(server.session.is_closed());
}

#[test]
fn unreadable_message_is_sys_temp_and_session_survives() {
    let mut server = Server::logged_in();
    server.unreadable = vec![1];
    assert_eq!(
        server.send("RETR 2\r\n"),
        "-ERR [SYS/TEMP] message temporarily unavailable\r\n"
    );
    assert_eq!(server.send("STAT\r\n"), "+OK 3 93\r\n");
}

#[test]
fn authorization_commands_in_transaction_are_err() {
    let mut server = Server::logged_in();
    for command in ["USER bob", "PASS x", "AUTH PLAIN", "STLS"] {
        assert_eq!(
            server.send(&format!("{command}\r\n")),
            "-ERR command not valid in this state\r\n",
            "{command}"
        );
    }
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut server = Server::logged_in();
    assert_eq!(
        server.send("STAT\r\nDELE 1\r\nLIST 1\r\nNOOP\r\n"),
        "+OK 3 93\r\n+OK message 1 deleted\r\n-ERR message 1 already deleted\r\n+OK\r\n"
    );
}

#[test]
fn empty_maildrop() {
    let mut server = Server::new(common::plaintext_config());
    server.mailbox.clear();
    server.send(&format!("USER {}\r\n", common::USER));
    assert_eq!(
        server.send(&format!("PASS {}\r\n", common::PASSWORD)),
        "+OK logged in, maildrop has 0 messages (0 octets)\r\n"
    );
    assert_eq!(server.send("STAT\r\n"), "+OK 0 0\r\n");
    assert_eq!(
        server.send("LIST\r\n"),
        "+OK 0 messages (0 octets)\r\n.\r\n"
    );
    assert_eq!(
        server.send("UIDL\r\n"),
        "+OK unique-id listing follows\r\n.\r\n"
    );
    assert_eq!(server.send("RETR 1\r\n"), "-ERR no such message\r\n");
}

#[test]
fn message_bodies_do_not_depend_on_chunk_size() {
    let mut expected = None;
    for chunk_size in [1, 2, 3, 7, 1000] {
        let mut server = Server::logged_in();
        server.chunk_size = chunk_size;
        let output = server.send("RETR 1\r\nRETR 2\r\nRETR 3\r\nTOP 3 1\r\nTOP 2 0\r\n");
        assert_eq!(expected.get_or_insert_with(|| output.clone()), &output);
    }
}
