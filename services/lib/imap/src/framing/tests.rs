use super::*;
use imap_codec::imap_types::command::CommandBody;
use proptest::prelude::*;

fn small() -> Limits {
    Limits {
        line_bytes: 200,
        literal_bytes: 100,
        append_bytes: 1000,
    }
}

fn command(framer: &mut Framer) -> Command<'static> {
    match framer.next_input() {
        Input::Command(command) => *command,
        other => panic!("expected a command, got {other:?}"),
    }
}

#[test]
fn a_complete_line_is_one_command() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"a1 NOOP\r\n");
    let command = command(&mut framer);
    assert_eq!(command.tag.as_ref(), "a1");
    assert!(matches!(command.body, CommandBody::Noop));
    assert!(matches!(framer.next_input(), Input::NeedMore));
}

#[test]
fn pipelined_commands_come_out_in_order() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"a1 NOOP\r\na2 CAPABILITY\r\na3 LOG");
    assert_eq!(command(&mut framer).tag.as_ref(), "a1");
    assert_eq!(command(&mut framer).tag.as_ref(), "a2");
    assert!(matches!(framer.next_input(), Input::NeedMore));
    framer.enqueue(b"OUT\r\n");
    assert!(matches!(command(&mut framer).body, CommandBody::Logout));
}

#[test]
fn sync_literal_asks_for_continuation_then_completes() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"a1 LOGIN {5}\r\n");
    assert!(matches!(framer.next_input(), Input::Continue));
    assert!(matches!(framer.next_input(), Input::NeedMore));
    framer.enqueue(b"alice secret\r\n");
    let command = command(&mut framer);
    assert!(matches!(command.body, CommandBody::Login { .. }));
}

#[test]
fn non_sync_literal_needs_no_continuation() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"a1 LOGIN {5+}\r\nalice secret\r\n");
    assert!(matches!(
        command(&mut framer).body,
        CommandBody::Login { .. }
    ));
}

#[test]
fn oversized_sync_literal_is_refused_before_its_bytes_arrive() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"a1 LOGIN {101}\r\n");
    match framer.next_input() {
        Input::Refused { tag, too_big, .. } => {
            assert_eq!(tag.map(|t| t.as_ref().to_string()).as_deref(), Some("a1"));
            assert!(too_big);
        }
        other => panic!("{other:?}"),
    }
    // The session goes on with the next command.
    framer.enqueue(b"a2 NOOP\r\n");
    assert_eq!(command(&mut framer).tag.as_ref(), "a2");
}

#[test]
fn append_may_carry_a_larger_literal() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"a1 APPEND INBOX {500}\r\n");
    assert!(matches!(framer.next_input(), Input::Continue));
    framer.enqueue(&[b'x'; 500]);
    framer.enqueue(b"\r\n");
    assert!(matches!(
        command(&mut framer).body,
        CommandBody::Append { .. }
    ));
    framer.enqueue(b"a2 APPEND INBOX {1001}\r\n");
    assert!(matches!(
        framer.next_input(),
        Input::Refused { too_big: true, .. }
    ));
}

#[test]
fn oversized_non_sync_literal_closes_the_connection() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"a1 LOGIN {4294967295+}\r\n");
    assert!(matches!(framer.next_input(), Input::Close { .. }));
}

#[test]
fn a_line_without_end_is_bounded() {
    let mut framer = Framer::new(small());
    for _ in 0..3 {
        framer.enqueue(&[b'a'; 100]);
    }
    assert!(matches!(framer.next_input(), Input::Close { .. }));
}

#[test]
fn garbage_is_refused_with_its_tag() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"x7 FROBNICATE now\r\n");
    match framer.next_input() {
        Input::Refused { tag, too_big, .. } => {
            assert_eq!(tag.map(|t| t.as_ref().to_string()).as_deref(), Some("x7"));
            assert!(!too_big);
        }
        other => panic!("{other:?}"),
    }
    framer.enqueue(b"\r\n");
    assert!(matches!(
        framer.next_input(),
        Input::Refused { tag: None, .. }
    ));
}

#[test]
fn idle_done_and_authenticate_lines() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"done\r\nAGFsaWNlAHNlY3JldA==\r\n*\r\n");
    let Line::Complete(done) = framer.next_line() else {
        panic!()
    };
    assert!(is_idle_done(&done));
    let Line::Complete(data) = framer.next_line() else {
        panic!()
    };
    assert_eq!(
        authenticate_data(&data),
        Ok(Some(b"\0alice\0secret".to_vec()))
    );
    let Line::Complete(cancel) = framer.next_line() else {
        panic!()
    };
    assert_eq!(authenticate_data(&cancel), Ok(None));
    assert!(!is_idle_done(b"DONE NOW"));
    assert_eq!(framer.next_line(), Line::NeedMore);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut framer = Framer::new(small());
        for chunk in chunks {
            framer.enqueue(&chunk);
            for _ in 0..64 {
                match framer.next_input() {
                    Input::NeedMore | Input::Close { .. } => break,
                    _ => {}
                }
            }
            let _ = framer.next_line();
        }
    }

    #[test]
    fn command_like_input_never_panics(lines in proptest::collection::vec(
        "[a-z0-9]{1,4} (NOOP|LOGIN|SELECT|FETCH|APPEND|SEARCH|STORE|UID FETCH) [ -~{}0-9+\\r\\n]{0,60}",
        0..10)) {
        let mut framer = Framer::new(small());
        for line in lines {
            framer.enqueue(line.as_bytes());
            framer.enqueue(b"\r\n");
            for _ in 0..64 {
                match framer.next_input() {
                    Input::NeedMore | Input::Close { .. } => break,
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn list_commands_decode() {
    for line in [
        &b"a1 LIST \"\" *\r\n"[..],
        b"a2 LIST \"\" Work*\r\n",
        b"a3 LIST \"\" %\r\n",
        b"a4 LSUB \"\" \"Work*\"\r\n",
    ] {
        let mut framer = Framer::new(small());
        framer.enqueue(line);
        assert!(
            matches!(framer.next_input(), Input::Command(_)),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn done_after_idle_is_recognised() {
    let mut framer = Framer::new(small());
    framer.enqueue(b"i IDLE\r\n");
    assert!(matches!(framer.next_input(), Input::Command(_)));
    assert_eq!(framer.next_line(), Line::NeedMore);
    framer.enqueue(b"DONE\r\n");
    let Line::Complete(line) = framer.next_line() else {
        panic!("no line")
    };
    assert!(is_idle_done(&line), "{}", String::from_utf8_lossy(&line));
}
