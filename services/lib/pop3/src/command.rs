//! POP3 command lines to [`Command`]s: RFC 1939 sections 4–7 (USER, PASS, STAT, LIST, RETR, DELE,
//! NOOP, RSET, QUIT, TOP, UIDL), RFC 2449 (CAPA), RFC 2595 (STLS) and RFC 5034 (AUTH).
//!
//! Lines come straight from the network and nothing in them is trusted. A line longer than
//! [`MAX_LINE_LEN`], holding a control character or not UTF-8 is refused before its keyword is
//! looked at. Keywords are case-insensitive; arguments are separated by single spaces (trailing
//! spaces are tolerated); argument counts and numbers are checked here, so the session only ever
//! sees well-formed commands. APOP is not supported and parses as an unknown command.

use crate::sasl::Password;
use std::fmt;
use std::num::NonZeroUsize;

/// Longest command line accepted, CRLF excluded. RFC 2449 section 4 limits clients to 255 octets
/// with CRLF; the margin is for long SASL initial responses (RFC 5034 section 4).
pub const MAX_LINE_LEN: usize = 512;

/// Longest SASL mechanism name (RFC 4422 section 3.1).
const MAX_MECHANISM_LEN: usize = 20;

/// A message number as clients write it: 1-based, never 0 (RFC 1939 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageNumber(NonZeroUsize);

impl MessageNumber {
    pub fn new(number: usize) -> Option<Self> {
        NonZeroUsize::new(number).map(Self)
    }

    /// The number of the message at 0-based `index` in the maildrop.
    pub fn from_index(index: usize) -> Option<Self> {
        index.checked_add(1).and_then(Self::new)
    }

    pub fn get(self) -> usize {
        self.0.get()
    }

    /// The 0-based position in the maildrop listing.
    pub fn index(self) -> usize {
        self.0.get() - 1
    }
}

impl fmt::Display for MessageNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    /// The rest of the line after `PASS `, spaces included (RFC 1939 section 7).
    Pass(Password),
    /// `AUTH` alone asks for the mechanism list; the mechanism is upper-cased.
    Auth {
        mechanism: Option<String>,
        initial_response: Option<String>,
    },
    Stls,
    Capa,
    Stat,
    List(Option<MessageNumber>),
    Uidl(Option<MessageNumber>),
    Top {
        message: MessageNumber,
        lines: u64,
    },
    Retr(MessageNumber),
    Dele(MessageNumber),
    Rset,
    Noop,
    Quit,
}

/// Why a line is not a command. The texts are sent to the client after `-ERR `.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty command")]
    Empty,
    #[error("line too long")]
    TooLong,
    #[error("invalid characters in command")]
    InvalidCharacter,
    #[error("unknown command")]
    UnknownCommand,
    #[error("missing argument")]
    MissingArgument,
    #[error("too many arguments")]
    TooManyArguments,
    #[error("invalid message number")]
    InvalidMessageNumber,
    #[error("invalid number of lines")]
    InvalidLineCount,
    #[error("invalid argument")]
    InvalidArgument,
}

impl Command {
    /// Parses one line; a trailing CRLF or LF, if still present, is ignored.
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = strip_line_ending(line);
        if line.len() > MAX_LINE_LEN {
            return Err(ParseError::TooLong);
        }
        if line.is_empty() {
            return Err(ParseError::Empty);
        }
        if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(ParseError::InvalidCharacter);
        }
        let text = std::str::from_utf8(line).map_err(|_| ParseError::InvalidCharacter)?;
        let (keyword, rest) = match text.split_once(' ') {
            Some((keyword, rest)) => (keyword, Some(rest)),
            None => (text, None),
        };
        if keyword.len() > 4 {
            return Err(ParseError::UnknownCommand);
        }
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "PASS" {
            return match rest {
                Some(password) if !password.is_empty() => {
                    Ok(Command::Pass(Password::new(password.to_string())))
                }
                _ => Err(ParseError::MissingArgument),
            };
        }
        let args = arguments(rest)?;
        match keyword.as_str() {
            "USER" => one(&args).map(|user| Command::User(user.to_string())),
            "AUTH" => auth(&args),
            "STLS" => none(&args, Command::Stls),
            "CAPA" => none(&args, Command::Capa),
            "STAT" => none(&args, Command::Stat),
            "LIST" => optional_number(&args).map(Command::List),
            "UIDL" => optional_number(&args).map(Command::Uidl),
            "TOP" => match args.as_slice() {
                [message, lines] => Ok(Command::Top {
                    message: message_number(message)?,
                    lines: digits(lines).ok_or(ParseError::InvalidLineCount)?,
                }),
                [] | [_] => Err(ParseError::MissingArgument),
                _ => Err(ParseError::TooManyArguments),
            },
            "RETR" => message_number(one(&args)?).map(Command::Retr),
            "DELE" => message_number(one(&args)?).map(Command::Dele),
            "RSET" => none(&args, Command::Rset),
            "NOOP" => none(&args, Command::Noop),
            "QUIT" => none(&args, Command::Quit),
            _ => Err(ParseError::UnknownCommand),
        }
    }
}

/// Removes one trailing CRLF or LF.
pub(crate) fn strip_line_ending(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

fn arguments(rest: Option<&str>) -> Result<Vec<&str>, ParseError> {
    let rest = rest.unwrap_or("").trim_end_matches(' ');
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let args: Vec<&str> = rest.split(' ').collect();
    if args.iter().any(|arg| arg.is_empty()) {
        return Err(ParseError::InvalidArgument);
    }
    Ok(args)
}

fn none(args: &[&str], command: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::TooManyArguments)
    }
}

fn one<'a>(args: &[&'a str]) -> Result<&'a str, ParseError> {
    match args {
        [arg] => Ok(arg),
        [] => Err(ParseError::MissingArgument),
        _ => Err(ParseError::TooManyArguments),
    }
}

fn optional_number(args: &[&str]) -> Result<Option<MessageNumber>, ParseError> {
    match args {
        [] => Ok(None),
        [arg] => message_number(arg).map(Some),
        _ => Err(ParseError::TooManyArguments),
    }
}

/// Plain decimal digits only: `str::parse` would also take a sign.
fn digits<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn message_number(text: &str) -> Result<MessageNumber, ParseError> {
    digits(text)
        .and_then(MessageNumber::new)
        .ok_or(ParseError::InvalidMessageNumber)
}

fn auth(args: &[&str]) -> Result<Command, ParseError> {
    let (mechanism, initial_response) = match args {
        [] => (None, None),
        [mechanism] => (Some(*mechanism), None),
        [mechanism, response] => (Some(*mechanism), Some(response.to_string())),
        _ => return Err(ParseError::TooManyArguments),
    };
    let mechanism = match mechanism {
        Some(name) => {
            let valid = name.len() <= MAX_MECHANISM_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(ParseError::InvalidArgument);
            }
            Some(name.to_ascii_uppercase())
        }
        None => None,
    };
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, ParseError> {
        Command::parse(line.as_bytes())
    }

    fn number(n: usize) -> MessageNumber {
        MessageNumber::new(n).expect("non-zero")
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse("stat"), Ok(Command::Stat));
        assert_eq!(parse("Quit\r\n"), Ok(Command::Quit));
        assert_eq!(parse("rEtR 7"), Ok(Command::Retr(number(7))));
        assert_eq!(parse("capa"), Ok(Command::Capa));
    }

    #[test]
    fn message_numbers_are_one_based_and_bounded() {
        assert_eq!(parse("LIST"), Ok(Command::List(None)));
        assert_eq!(parse("LIST 2"), Ok(Command::List(Some(number(2)))));
        assert_eq!(parse("DELE 0"), Err(ParseError::InvalidMessageNumber));
        assert_eq!(parse("DELE -1"), Err(ParseError::InvalidMessageNumber));
        assert_eq!(parse("DELE +1"), Err(ParseError::InvalidMessageNumber));
        assert_eq!(
            parse("RETR 99999999999999999999999"),
            Err(ParseError::InvalidMessageNumber)
        );
        assert_eq!(parse("RETR"), Err(ParseError::MissingArgument));
        assert_eq!(parse("RETR 1 2"), Err(ParseError::TooManyArguments));
        assert_eq!(parse("UIDL 1 2"), Err(ParseError::TooManyArguments));
        assert_eq!(parse("STAT 1"), Err(ParseError::TooManyArguments));
        assert_eq!(parse("LIST  1"), Err(ParseError::InvalidArgument));
        assert_eq!(parse("NOOP "), Ok(Command::Noop));
    }

    #[test]
    fn top_takes_a_message_and_a_line_count() {
        let top = |message, lines| {
            Ok(Command::Top {
                message: number(message),
                lines,
            })
        };
        assert_eq!(parse("TOP 1 0"), top(1, 0));
        assert_eq!(parse("top 2 10"), top(2, 10));
        assert_eq!(parse("TOP 1"), Err(ParseError::MissingArgument));
        assert_eq!(parse("TOP 1 x"), Err(ParseError::InvalidLineCount));
        assert_eq!(
            parse("TOP 1 99999999999999999999999"),
            Err(ParseError::InvalidLineCount)
        );
        assert_eq!(parse("TOP 1 2 3"), Err(ParseError::TooManyArguments));
    }

    #[test]
    fn pass_keeps_spaces_and_user_takes_one_word() {
        assert_eq!(
            parse("PASS  two words "),
            Ok(Command::Pass(Password::new(" two words ".into())))
        );
        assert_eq!(parse("PASS"), Err(ParseError::MissingArgument));
        assert_eq!(parse("PASS "), Err(ParseError::MissingArgument));
        assert_eq!(parse("USER a@b"), Ok(Command::User("a@b".into())));
        assert_eq!(parse("USER a b"), Err(ParseError::TooManyArguments));
    }

    #[test]
    fn auth_forms() {
        let auth = |mechanism: Option<&str>, response: Option<&str>| {
            Ok(Command::Auth {
                mechanism: mechanism.map(String::from),
                initial_response: response.map(String::from),
            })
        };
        assert_eq!(parse("AUTH"), auth(None, None));
        assert_eq!(parse("auth plain"), auth(Some("PLAIN"), None));
        assert_eq!(
            parse("auth plain dGVzdA=="),
            auth(Some("PLAIN"), Some("dGVzdA=="))
        );
        assert_eq!(parse("AUTH PL@IN"), Err(ParseError::InvalidArgument));
        assert_eq!(parse("AUTH PLAIN a b"), Err(ParseError::TooManyArguments));
    }

    #[test]
    fn hostile_lines_are_refused() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("\r\n"), Err(ParseError::Empty));
        assert_eq!(parse("USER a\rb"), Err(ParseError::InvalidCharacter));
        assert_eq!(parse("USER a\0"), Err(ParseError::InvalidCharacter));
        assert_eq!(parse("USER\ta"), Err(ParseError::InvalidCharacter));
        assert_eq!(
            Command::parse(b"USER \xff"),
            Err(ParseError::InvalidCharacter)
        );
        assert_eq!(parse("APOP a b"), Err(ParseError::UnknownCommand));
        assert_eq!(parse("XYZZY"), Err(ParseError::UnknownCommand));
        let long = format!("USER {}", "a".repeat(MAX_LINE_LEN));
        assert_eq!(parse(&long), Err(ParseError::TooLong));
        let fits = format!("USER {}", "a".repeat(MAX_LINE_LEN - 5));
        assert!(parse(&fits).is_ok());
    }
}
