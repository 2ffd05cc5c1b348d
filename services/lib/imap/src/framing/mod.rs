//! Framing of client input (RFC 3501 section 4.3, RFC 7888 LITERAL+): lines and literals are
//! split by imap-codec's `Fragmentizer` before anything is parsed, so a malformed command is
//! discarded whole and literal bytes are never read as a command.
//!
//! Every byte that enters is bounded: a line (without its literals) by `Limits::line_bytes`, a
//! literal by `Limits::literal_bytes`, or `Limits::append_bytes` when the command is APPEND,
//! and a whole command by the sum. A synchronising literal over its bound is refused before the
//! client sends it (`NO [TOOBIG]`, nothing buffered); a non-synchronising one over its bound
//! cannot be refused in time, so the connection is closed (RFC 7888 section 4).

use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::Command;
use imap_codec::imap_types::core::{LiteralMode, Tag};
use imap_codec::{AuthenticateDataCodec, CommandCodec, IdleDoneCodec};

/// Bounds on client input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line, literals excluded.
    pub line_bytes: u32,
    /// Largest literal in a command other than APPEND.
    pub literal_bytes: u32,
    /// Largest literal in APPEND (the message).
    pub append_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            line_bytes: 64 * 1024,
            literal_bytes: 64 * 1024,
            append_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What the connection has to do next.
#[derive(Debug)]
pub enum Input {
    /// A complete command.
    Command(Box<Command<'static>>),
    /// A synchronising literal was accepted: send a continuation request (`+ ...`), then more
    /// bytes may be read.
    Continue,
    /// The command was discarded: answer `tag BAD/NO text` (no tag: `* BAD`) and go on.
    Refused {
        tag: Option<Tag<'static>>,
        too_big: bool,
        text: &'static str,
    },
    /// The connection must be closed after `* BYE text`.
    Close { text: &'static str },
    /// Nothing complete yet: read more bytes (at most `Framer::wanted`).
    NeedMore,
}

/// A line read outside the command grammar (IDLE's `DONE`, AUTHENTICATE's responses).
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Complete(Vec<u8>),
    NeedMore,
    TooLong,
}

/// Splits and decodes the client's byte stream.
pub struct Framer {
    fragments: Fragmentizer,
    limits: Limits,
    /// Bytes enqueued for the line being read (literals excluded).
    line_pending: usize,
    /// The current fragment is a literal being received.
    in_literal: bool,
}

impl Framer {
    pub fn new(limits: Limits) -> Self {
        // The fragmentizer's own cap is the largest command we could accept at all.
        let max = limits
            .append_bytes
            .saturating_add(limits.line_bytes.saturating_mul(4));
        Self {
            fragments: Fragmentizer::new(max),
            limits,
            line_pending: 0,
            in_literal: false,
        }
    }

    /// Feeds bytes read from the connection.
    pub fn enqueue(&mut self, bytes: &[u8]) {
        if !self.in_literal {
            self.line_pending += bytes.len();
        }
        self.fragments.enqueue_bytes(bytes);
    }

    /// Advances to the next thing to do.
    pub fn next_input(&mut self) -> Input {
        loop {
            let Some(fragment) = self.fragments.progress() else {
                if !self.in_literal && self.line_pending > self.limits.line_bytes as usize {
                    return Input::Close {
                        text: "Line too long",
                    };
                }
                return Input::NeedMore;
            };
            match fragment {
                FragmentInfo::Line {
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                } => {
                    self.line_pending = 0;
                    let bound = if self.is_append() {
                        self.limits.append_bytes
                    } else {
                        self.limits.literal_bytes
                    };
                    if length > bound {
                        let tag = self.fragments.decode_tag().map(IntoStatic::into_static);
                        return match mode {
                            LiteralMode::Sync => {
                                self.fragments.skip_message();
                                Input::Refused {
                                    tag,
                                    too_big: true,
                                    text: "Literal too large",
                                }
                            }
                            LiteralMode::NonSync => Input::Close {
                                text: "Non-synchronizing literal too large",
                            },
                        };
                    }
                    self.in_literal = true;
                    if mode == LiteralMode::Sync {
                        return Input::Continue;
                    }
                }
                FragmentInfo::Line { .. } => {
                    self.line_pending = 0;
                    return self.decode();
                }
                FragmentInfo::Literal { .. } => {
                    self.in_literal = false;
                    self.line_pending = 0;
                    if self.fragments.is_message_complete() {
                        return self.decode();
                    }
                }
            }
        }
    }

    /// Reads one line outside the command grammar (continuation responses, `DONE`), bounded by
    /// the line limit. The line ending is stripped.
    pub fn next_line(&mut self) -> Line {
        let Some(fragment) = self.fragments.progress() else {
            if self.line_pending > self.limits.line_bytes as usize {
                return Line::TooLong;
            }
            return Line::NeedMore;
        };
        self.line_pending = 0;
        match fragment {
            FragmentInfo::Line {
                announcement: None, ..
            } => {
                let bytes = self.fragments.message_bytes();
                let end = bytes
                    .strip_suffix(b"\r\n")
                    .or_else(|| bytes.strip_suffix(b"\n"))
                    .unwrap_or(bytes);
                Line::Complete(end.to_vec())
            }
            // A literal where a plain line was expected: refuse the whole thing.
            _ => {
                self.fragments.skip_message();
                Line::TooLong
            }
        }
    }

    /// Is the command being read an APPEND (`tag APPEND ...`, possibly `UID`-less)?
    fn is_append(&self) -> bool {
        let bytes = self.fragments.message_bytes();
        let mut words = bytes.splitn(3, |b| *b == b' ');
        let _tag = words.next();
        words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case(b"APPEND"))
    }

    fn decode(&mut self) -> Input {
        let tag = self
            .fragments
            .decode_tag()
            .map(IntoStatic::into_static)
            .or_else(|| bare_tag(self.fragments.message_bytes()));
        match self.fragments.decode_message(&CommandCodec::default()) {
            Ok(command) => Input::Command(Box::new(command.into_static())),
            Err(_) => Input::Refused {
                tag,
                too_big: false,
                text: "Syntax error in command",
            },
        }
    }
}

/// The tag of a line that is nothing but a tag (`lonely\r\n`), so that even it is answered
/// with a tagged BAD (RFC 3501 section 7.1.3 keeps `* BAD` for lines without a known tag).
fn bare_tag(line: &[u8]) -> Option<Tag<'static>> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    Tag::try_from(line).ok().map(IntoStatic::into_static)
}

/// Decodes an IDLE terminator line (`DONE`, case-insensitive).
pub fn is_idle_done(line: &[u8]) -> bool {
    let mut with_ending = line.to_vec();
    with_ending.extend_from_slice(b"\r\n");
    imap_codec::decode::Decoder::decode(&IdleDoneCodec::default(), &with_ending).is_ok()
}

/// Decodes one AUTHENTICATE continuation response: base64 data, or `None` for `*` (cancel).
pub fn authenticate_data(line: &[u8]) -> Result<Option<Vec<u8>>, NotBase64> {
    use imap_codec::imap_types::auth::AuthenticateData;
    let mut with_ending = line.to_vec();
    with_ending.extend_from_slice(b"\r\n");
    match imap_codec::decode::Decoder::decode(&AuthenticateDataCodec::default(), &with_ending) {
        Ok((_, AuthenticateData::Continue(data))) => Ok(Some(data.declassify().to_vec())),
        Ok((_, AuthenticateData::Cancel)) => Ok(None),
        Err(_) => Err(NotBase64),
    }
}

/// An AUTHENTICATE response that is neither base64 nor `*`.
#[derive(Debug, PartialEq, Eq)]
pub struct NotBase64;

#[cfg(test)]
mod tests;
