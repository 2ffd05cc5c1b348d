//! One sink session, sans-IO: bytes in, replies out, and the messages and recipients accepted.
//! Every command is accepted (in the order RFC 5321 requires: MAIL, RCPT, DATA) and the message
//! data is skipped, not kept. Input may hold several pipelined commands, or end anywhere.

use crate::end_of_data::EndOfData;

/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4 says 512; a margin for extensions).
/// A longer line is refused and skipped, so a session holds at most this much unconsumed input.
pub const MAX_COMMAND_LINE: usize = 4096;

pub const GREETING: &[u8] = b"220 sink ESMTP\r\n";
const EHLO: &[u8] = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n";
const HELO: &[u8] = b"250 sink\r\n";
const OK: &[u8] = b"250 2.0.0 ok\r\n";
const MAIL_OK: &[u8] = b"250 2.1.0 ok\r\n";
const RCPT_OK: &[u8] = b"250 2.1.5 ok\r\n";
const START_DATA: &[u8] = b"354 end data with <CR><LF>.<CR><LF>\r\n";
const BYE: &[u8] = b"221 2.0.0 bye\r\n";
const NESTED_MAIL: &[u8] = b"503 5.5.1 MAIL already given\r\n";
const NEED_MAIL: &[u8] = b"503 5.5.1 MAIL first\r\n";
const NEED_RCPT: &[u8] = b"503 5.5.1 RCPT first\r\n";
const UNKNOWN: &[u8] = b"500 5.5.2 command not recognized\r\n";
const TOO_LONG: &[u8] = b"500 5.5.6 line too long\r\n";

#[derive(Debug)]
enum State {
    /// No transaction.
    Idle,
    /// After MAIL, counting recipients.
    Mail { recipients: u64 },
    /// Skipping message data until its terminator.
    Data { recipients: u64, end: EndOfData },
    /// Skipping the rest of an over-long command line (the transaction was dropped).
    SkipLine,
    /// After QUIT.
    Closed,
}

/// What one [`Session::feed`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input acted on; the rest is an incomplete command line to feed again.
    pub consumed: usize,
    /// Messages accepted (250 after the data) and their recipients.
    pub messages: u64,
    pub recipients: u64,
    /// The client said QUIT: send the replies, then close.
    pub close: bool,
}

#[derive(Debug)]
pub struct Session {
    state: State,
}

impl Session {
    pub fn new() -> Self {
        Self { state: State::Idle }
    }

    /// Acts on every complete command and on all message data in `input`, appending the replies
    /// to `out`. Unconsumed input (an incomplete command line, shorter than
    /// [`MAX_COMMAND_LINE`]) must be fed again with what arrives next.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Fed {
        let mut fed = Fed::default();
        loop {
            let rest = &input[fed.consumed..];
            if rest.is_empty() {
                break;
            }
            match &mut self.state {
                State::Closed => break,
                State::Data { recipients, end } => {
                    let recipients = *recipients;
                    let Some(length) = end.scan(rest) else {
                        fed.consumed = input.len();
                        break;
                    };
                    fed.consumed += length;
                    fed.messages += 1;
                    fed.recipients += recipients;
                    out.extend_from_slice(OK);
                    self.state = State::Idle;
                }
                State::SkipLine => match find_line_feed(rest) {
                    Some(at) => {
                        fed.consumed += at + 1;
                        self.state = State::Idle;
                    }
                    None => fed.consumed = input.len(),
                },
                State::Idle | State::Mail { .. } => match find_line_feed(rest) {
                    Some(at) if at < MAX_COMMAND_LINE => {
                        fed.consumed += at + 1;
                        let line = &rest[..at];
                        self.command(line.strip_suffix(b"\r").unwrap_or(line), out);
                        if matches!(self.state, State::Closed) {
                            fed.close = true;
                            break;
                        }
                    }
                    None if rest.len() < MAX_COMMAND_LINE => break,
                    _ => {
                        out.extend_from_slice(TOO_LONG);
                        self.state = State::SkipLine;
                    }
                },
            }
        }
        fed
    }

    fn command(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let verb = line.get(..4).unwrap_or(line);
        let is =
            |name: &[u8]| verb.eq_ignore_ascii_case(name) && line.get(4).is_none_or(|b| *b == b' ');
        let (reply, next) = match std::mem::replace(&mut self.state, State::Idle) {
            _ if is(b"EHLO") => (EHLO, State::Idle),
            _ if is(b"HELO") => (HELO, State::Idle),
            _ if is(b"RSET") => (OK, State::Idle),
            _ if is(b"QUIT") => (BYE, State::Closed),
            State::Idle if is(b"MAIL") => (MAIL_OK, State::Mail { recipients: 0 }),
            state @ State::Mail { .. } if is(b"MAIL") => (NESTED_MAIL, state),
            State::Mail { recipients } if is(b"RCPT") => (
                RCPT_OK,
                State::Mail {
                    recipients: recipients + 1,
                },
            ),
            state if is(b"RCPT") => (NEED_MAIL, state),
            State::Mail { recipients } if is(b"DATA") && recipients > 0 => (
                START_DATA,
                State::Data {
                    recipients,
                    end: EndOfData::new(),
                },
            ),
            state if is(b"DATA") => (NEED_RCPT, state),
            state if is(b"NOOP") => (OK, state),
            state => (UNKNOWN, state),
        };
        out.extend_from_slice(reply);
        self.state = next;
    }
}

fn find_line_feed(input: &[u8]) -> Option<usize> {
    input.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the chunks in order (each with what was left unconsumed before it); the replies
    /// and the totals.
    fn run(chunks: &[&[u8]]) -> (String, Fed) {
        let mut session = Session::new();
        let mut out = Vec::new();
        let mut pending = Vec::new();
        let mut total = Fed::default();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            let fed = session.feed(&pending, &mut out);
            pending.drain(..fed.consumed);
            total.consumed += fed.consumed;
            total.messages += fed.messages;
            total.recipients += fed.recipients;
            total.close |= fed.close;
        }
        (String::from_utf8(out).unwrap(), total)
    }

    fn codes(replies: &str) -> Vec<&str> {
        replies
            .lines()
            .filter(|l| l.as_bytes().get(3) == Some(&b' '))
            .map(|l| &l[..3])
            .collect()
    }

    #[test]
    fn ehlo_advertises_pipelining_8bitmime_and_size() {
        let (replies, _) = run(&[b"EHLO client\r\n"]);
        assert_eq!(
            replies,
            "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n"
        );
    }

    #[test]
    fn pipelined_transactions_in_one_chunk_are_all_answered_and_counted() {
        let input =
            b"EHLO c\r\nMAIL FROM:<a@x> SIZE=5\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n\
            hi\r\n..dot\r\n.\r\nMAIL FROM:<a@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n.\r\nQUIT\r\nNOOP\r\n";
        let (replies, fed) = run(&[input]);
        assert_eq!(
            codes(&replies),
            [
                "250", "250", "250", "250", "354", "250", "250", "250", "354", "250", "221"
            ]
        );
        assert!(replies.contains("250 2.0.0 ok\r\n"));
        assert_eq!((fed.messages, fed.recipients, fed.close), (2, 3, true));
        assert_eq!(fed.consumed, input.len() - b"NOOP\r\n".len());
    }

    #[test]
    fn commands_and_data_split_anywhere_give_the_same_replies() {
        let input: &[u8] =
            b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nx\r\n.\r\n.\r\nRSET\r\nQUIT\r\n";
        let whole = run(&[input]);
        assert_eq!(
            codes(&whole.0),
            ["250", "250", "250", "354", "250", "500", "250", "221"]
        );
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(run(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes), whole);
    }

    #[test]
    fn out_of_order_commands_are_503_and_change_nothing() {
        let (replies, fed) = run(&[
            b"RCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<a@x>\r\nDATA\r\nMAIL FROM:<a@x>\r\n\
              RCPT TO:<b@y>\r\nDATA\r\n.\r\n",
        ]);
        assert_eq!(
            codes(&replies),
            ["503", "503", "250", "503", "503", "250", "354", "250"]
        );
        assert_eq!((fed.messages, fed.recipients), (1, 1));
    }

    #[test]
    fn rset_drops_the_transaction() {
        let (replies, fed) = run(&[b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRSET\r\nDATA\r\n"]);
        assert_eq!(codes(&replies), ["250", "250", "250", "503"]);
        assert_eq!(fed.messages, 0);
    }

    #[test]
    fn verbs_are_case_insensitive_and_unknown_ones_are_500() {
        let (replies, _) = run(&[b"noop\r\nmail from:<a@x>\r\nVRFY x\r\nMAILX\r\nNOOPS\r\n"]);
        assert_eq!(codes(&replies), ["250", "250", "500", "500", "500"]);
    }

    #[test]
    fn over_long_line_is_500_then_skipped_and_the_session_goes_on() {
        let long = vec![b'A'; MAX_COMMAND_LINE * 3];
        let (replies, fed) = run(&[b"MAIL FROM:<a@x>\r\n", &long, &long, b"\r\nNOOP\r\n"]);
        assert_eq!(codes(&replies), ["250", "500", "250"]);
        assert_eq!(fed.consumed, 17 + 2 * long.len() + 8);
    }

    #[test]
    fn incomplete_command_line_is_left_for_the_next_feed() {
        let mut session = Session::new();
        let mut out = Vec::new();
        let fed = session.feed(b"NOOP\r\nMAIL FR", &mut out);
        assert_eq!(fed.consumed, 6);
        assert_eq!(out, b"250 2.0.0 ok\r\n");
    }
}
