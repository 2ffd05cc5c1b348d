//! SMTP command lines to [`Command`]s. The grammar is smtp-proto's (RFC 5321 plus the ESMTP
//! parameters of SIZE, 8BITMIME, SMTPUTF8, DSN, CHUNKING and AUTH); this module adds what a server
//! must check on top of it: control characters in arguments, address syntax by our own rules
//! (the same ones the directory uses), and the mapping of every parse error to its reply.

use crate::reply::{Reply, replies};
use mc_types::EmailAddress;
use smtp_proto::{Error as ProtoError, Request};

/// `BODY=` of MAIL FROM (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// `RET=` of MAIL FROM (RFC 3461).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnReturn {
    Full,
    Headers,
}

impl DsnReturn {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Headers => "HDRS",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// `None` for the null reverse-path `<>`.
    pub sender: Option<EmailAddress>,
    /// Declared size (RFC 1870), 0 when not given.
    pub size: u64,
    pub body: Body,
    pub smtputf8: bool,
    pub dsn_return: Option<DsnReturn>,
    pub dsn_envid: Option<String>,
}

/// `NOTIFY=` of RCPT TO (RFC 3461) as written: `NEVER` or a subset of SUCCESS, FAILURE, DELAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DsnNotify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl DsnNotify {
    /// The RFC 3461 spelling, e.g. `SUCCESS,FAILURE`.
    pub fn to_param(self) -> String {
        if self.never {
            return "NEVER".into();
        }
        let mut parts = Vec::new();
        if self.success {
            parts.push("SUCCESS");
        }
        if self.failure {
            parts.push("FAILURE");
        }
        if self.delay {
            parts.push("DELAY");
        }
        parts.join(",")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    pub recipient: EmailAddress,
    pub notify: Option<DsnNotify>,
    pub orcpt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail(MailFrom),
    Rcpt(RcptTo),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Auth {
        mechanism: Option<Mechanism>,
        initial_response: Option<String>,
    },
    StartTls,
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy,
    Expn,
    Turn,
    /// A verb this server does not implement (ETRN, ATRN, BURL, LHLO, ...).
    Unimplemented,
}

/// Parses one command line, which must end with LF (CRLF or a bare LF: clients that send bare
/// LF in commands are tolerated; only DATA is strict about line endings). `RCPT TO:<Postmaster>`
/// (no domain, any case; RFC 5321 section 4.5.1) becomes `postmaster`.
pub fn parse(line: &[u8], postmaster: &EmailAddress) -> Result<Command, Reply> {
    let Some(content) = line.strip_suffix(b"\n") else {
        return Err(replies::unrecognized());
    };
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    // A CR or NUL inside the line (or any other control byte but TAB) is never legitimate and is
    // how header injection through envelope arguments starts.
    if content
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(replies::no_crlf_in_argument());
    }
    if starts_with_verb(content, b"TURN") {
        return Ok(Command::Turn);
    }
    let request = match Request::parse(&mut line.iter()) {
        Ok(request) => request,
        Err(error) => return Err(map_error(content, error)),
    };
    Ok(match request {
        Request::Ehlo { host } => Command::Ehlo(check_helo(&host, replies::ehlo_invalid())?),
        Request::Helo { host } => Command::Helo(check_helo(&host, replies::helo_invalid())?),
        Request::Mail { from } => Command::Mail(mail_from(from, raw_path(content))?),
        Request::Rcpt { to } => Command::Rcpt(rcpt_to(to, raw_path(content), postmaster)?),
        Request::Data => Command::Data,
        Request::Bdat {
            chunk_size,
            is_last,
        } => Command::Bdat {
            size: chunk_size as u64,
            last: is_last,
        },
        Request::Auth {
            mechanism,
            initial_response,
        } => {
            let mechanism = match mechanism {
                smtp_proto::AUTH_PLAIN => Some(Mechanism::Plain),
                smtp_proto::AUTH_LOGIN => Some(Mechanism::Login),
                _ => None,
            };
            let initial = initial_response.trim();
            Command::Auth {
                mechanism,
                initial_response: (!initial.is_empty()).then(|| initial.to_string()),
            }
        }
        Request::StartTls => Command::StartTls,
        Request::Rset => Command::Rset,
        Request::Noop { .. } => Command::Noop,
        Request::Quit => Command::Quit,
        Request::Help { .. } => Command::Help,
        Request::Vrfy { .. } => Command::Vrfy,
        Request::Expn { .. } => Command::Expn,
        Request::Lhlo { .. }
        | Request::Etrn { .. }
        | Request::Atrn { .. }
        | Request::Burl { .. } => Command::Unimplemented,
    })
}

fn starts_with_verb(content: &[u8], verb: &[u8]) -> bool {
    content.len() >= verb.len()
        && content[..verb.len()].eq_ignore_ascii_case(verb)
        && content.get(verb.len()).is_none_or(|b| *b == b' ')
}

fn map_error(content: &[u8], error: ProtoError) -> Reply {
    match error {
        ProtoError::UnknownCommand => {
            if content.is_empty() {
                replies::unrecognized()
            } else if known_but_unimplemented(content) {
                replies::unimplemented()
            } else {
                replies::unrecognized()
            }
        }
        ProtoError::InvalidSenderAddress => replies::invalid_sender(),
        ProtoError::InvalidRecipientAddress => replies::invalid_recipient(),
        ProtoError::SyntaxError { syntax } => {
            if syntax.starts_with("MAIL") {
                replies::mail_syntax()
            } else if syntax.starts_with("EHLO") {
                replies::ehlo_invalid()
            } else if syntax.starts_with("HELO") {
                replies::helo_invalid()
            } else if syntax.starts_with("AUTH") {
                replies::auth_type_missing()
            } else {
                replies::syntax(syntax)
            }
        }
        ProtoError::InvalidParameter { param } => replies::invalid_parameter(param),
        ProtoError::UnsupportedParameter { .. } => replies::unsupported_parameter(),
        ProtoError::NeedsMoreData { .. }
        | ProtoError::ResponseTooLong
        | ProtoError::InvalidResponse { .. } => replies::unrecognized(),
    }
}

fn known_but_unimplemented(content: &[u8]) -> bool {
    const VERBS: [&[u8]; 6] = [b"SEND", b"SOML", b"SAML", b"VERB", b"ONEX", b"XCLIENT"];
    VERBS.iter().any(|verb| starts_with_verb(content, verb))
}

fn check_helo(host: &str, invalid: Reply) -> Result<String, Reply> {
    let host = host.trim();
    if host.is_empty() || host.len() > 255 {
        return Err(invalid);
    }
    // A domain or an address literal; anything with characters a domain never has is refused so
    // that it cannot reach the Received: header.
    let ok = if let Some(literal) = host.strip_prefix('[') {
        literal.strip_suffix(']').is_some_and(|inner| {
            !inner.is_empty()
                && inner.bytes().all(|b| {
                    b.is_ascii_hexdigit() || matches!(b, b'.' | b':') || b.is_ascii_alphanumeric()
                })
        })
    } else {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') || b >= 0x80)
    };
    if ok {
        Ok(host.to_string())
    } else {
        Err(invalid)
    }
}

/// The reverse- or forward-path as the client wrote it: the text between the first `<` and the
/// `>` that closes it outside a quoted string, without a source route (`@a,@b:`, which RFC 5321
/// says to ignore). smtp-proto hands over addresses with quoted local parts already unquoted
/// (`"a b"@x` as `a b@x`, which is no longer an address), so those are parsed from here.
fn raw_path(content: &[u8]) -> Option<&str> {
    let start = content.iter().position(|&b| b == b'<')? + 1;
    let (mut quoted, mut escaped) = (false, false);
    let mut end = None;
    for (i, &b) in content[start..].iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'>' if !quoted => {
                end = Some(start + i);
                break;
            }
            _ => {}
        }
    }
    let path = std::str::from_utf8(&content[start..end?]).ok()?;
    Some(match path.strip_prefix('@') {
        Some(routed) => routed.split_once(':').map_or(path, |(_, mailbox)| mailbox),
        None => path,
    })
}

/// The address of a MAIL or RCPT: smtp-proto's, unless the client quoted its local part.
fn path_address(parsed: &str, raw: Option<&str>) -> Result<Option<EmailAddress>, ()> {
    match raw {
        Some(raw) if raw.starts_with('"') => EmailAddress::parse(raw).map(Some).map_err(|_| ()),
        _ if parsed.is_empty() => Ok(None),
        _ => EmailAddress::parse(parsed).map(Some).map_err(|_| ()),
    }
}

fn mail_from(
    from: smtp_proto::MailFrom<std::borrow::Cow<'_, str>>,
    raw: Option<&str>,
) -> Result<MailFrom, Reply> {
    let sender = path_address(&from.address, raw).map_err(|_| replies::invalid_sender())?;
    let body = if from.flags & smtp_proto::MAIL_BODY_BINARYMIME != 0 {
        return Err(replies::invalid_parameter("BODY"));
    } else if from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0 {
        Body::EightBitMime
    } else {
        Body::SevenBit
    };
    let unsupported = smtp_proto::MAIL_REQUIRETLS
        | smtp_proto::MAIL_CONPERM
        | smtp_proto::MAIL_BY_NOTIFY
        | smtp_proto::MAIL_BY_RETURN
        | smtp_proto::MAIL_BY_TRACE;
    if from.flags & unsupported != 0
        || from.trans_id.is_some()
        || from.solicit.is_some()
        || from.mtrk.is_some()
        || from.hold_for != 0
        || from.hold_until != 0
    {
        return Err(replies::unsupported_parameter());
    }
    let dsn_return = if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
        Some(DsnReturn::Full)
    } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
        Some(DsnReturn::Headers)
    } else {
        None
    };
    let dsn_envid = from.env_id.map(|v| v.into_owned());
    if dsn_envid.as_ref().is_some_and(|v| v.len() > 100) {
        return Err(replies::invalid_parameter("ENVID"));
    }
    let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
    if let Some(sender) = &sender
        && sender.needs_smtputf8()
        && !smtputf8
    {
        return Err(replies::smtputf8_required());
    }
    Ok(MailFrom {
        sender,
        size: from.size as u64,
        body,
        smtputf8,
        dsn_return,
        dsn_envid,
    })
}

fn rcpt_to(
    to: smtp_proto::RcptTo<std::borrow::Cow<'_, str>>,
    raw: Option<&str>,
    postmaster: &EmailAddress,
) -> Result<RcptTo, Reply> {
    let recipient = match raw {
        Some(raw) if raw.eq_ignore_ascii_case("postmaster") => postmaster.clone(),
        _ => path_address(&to.address, raw)
            .ok()
            .flatten()
            .ok_or_else(replies::invalid_recipient)?,
    };
    let notify_bits = smtp_proto::RCPT_NOTIFY_NEVER
        | smtp_proto::RCPT_NOTIFY_SUCCESS
        | smtp_proto::RCPT_NOTIFY_FAILURE
        | smtp_proto::RCPT_NOTIFY_DELAY;
    if to.flags & !notify_bits != 0 || to.rrvs != 0 {
        return Err(replies::unsupported_parameter());
    }
    let notify = (to.flags & notify_bits != 0).then_some(DsnNotify {
        never: to.flags & smtp_proto::RCPT_NOTIFY_NEVER != 0,
        success: to.flags & smtp_proto::RCPT_NOTIFY_SUCCESS != 0,
        failure: to.flags & smtp_proto::RCPT_NOTIFY_FAILURE != 0,
        delay: to.flags & smtp_proto::RCPT_NOTIFY_DELAY != 0,
    });
    Ok(RcptTo {
        recipient,
        notify,
        orcpt: to.orcpt.map(|v| v.into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postmaster() -> EmailAddress {
        EmailAddress::parse("postmaster@mx.test").unwrap()
    }
    fn ok(line: &str) -> Command {
        parse(line.as_bytes(), &postmaster()).unwrap_or_else(|r| panic!("{line:?} refused: {r}"))
    }
    fn code(line: &str) -> u16 {
        match parse(line.as_bytes(), &postmaster()) {
            Ok(c) => panic!("{line:?} accepted as {c:?}"),
            Err(reply) => reply.code,
        }
    }

    #[test]
    fn mail_from_with_dsn_and_size_parameters() {
        let Command::Mail(mail) =
            ok("MAIL FROM:<a@example.com> SIZE=1000 RET=HDRS ENVID=abc BODY=8BITMIME\r\n")
        else {
            panic!("not MAIL")
        };
        assert_eq!(
            mail.sender.map(|s| s.to_string()),
            Some("a@example.com".into())
        );
        assert_eq!(mail.size, 1000);
        assert_eq!(mail.dsn_return, Some(DsnReturn::Headers));
        assert_eq!(mail.dsn_envid.as_deref(), Some("abc"));
        assert_eq!(mail.body, Body::EightBitMime);
    }

    #[test]
    fn null_sender_is_none() {
        let Command::Mail(mail) = ok("MAIL FROM:<>\r\n") else {
            panic!()
        };
        assert_eq!(mail.sender, None);
    }

    #[test]
    fn rcpt_with_notify_and_orcpt() {
        let Command::Rcpt(rcpt) =
            ok("RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com\r\n")
        else {
            panic!()
        };
        let notify = rcpt.notify.expect("notify");
        assert!(notify.success && notify.failure && !notify.delay && !notify.never);
        assert_eq!(notify.to_param(), "SUCCESS,FAILURE");
        assert_eq!(rcpt.orcpt.as_deref(), Some("b@example.com"));
    }

    #[test]
    fn source_route_is_dropped_to_the_final_mailbox() {
        let Command::Rcpt(rcpt) = ok("RCPT TO:<@relay.example:user@example.com>\r\n") else {
            panic!()
        };
        assert_eq!(rcpt.recipient.to_string(), "user@example.com");
    }

    #[test]
    fn bad_addresses_get_the_reference_texts() {
        assert_eq!(code("RCPT TO:<no-at-sign>\r\n"), 550);
        assert_eq!(code("MAIL FROM:<no-at-sign>\r\n"), 550);
        assert_eq!(code("MAIL FROM:a@b.c\r\n"), 550);
        assert_eq!(code("RCPT TO:<>\r\n"), 550);
        assert_eq!(code("RCPT TO:<a@[127.0.0.1]>\r\n"), 550);
    }

    #[test]
    fn verbs_and_syntax() {
        assert_eq!(code("FOO\r\n"), 500);
        assert_eq!(code("\r\n"), 500);
        assert_eq!(ok("TURN\r\n"), Command::Turn);
        assert_eq!(ok("ETRN example.com\r\n"), Command::Unimplemented);
        assert_eq!(code("EHLO\r\n"), 501);
        assert_eq!(code("EHLO bad<host>\r\n"), 501);
        assert_eq!(code("MAIL FROM:<a@b.example> FOO=BAR\r\n"), 555);
        assert_eq!(code("MAIL FROM:<a@b.example> SIZE=abc\r\n"), 501);
        assert_eq!(
            ok("EHLO [127.0.0.1]\r\n"),
            Command::Ehlo("[127.0.0.1]".into())
        );
        assert_eq!(
            ok("bdat 10 last\r\n"),
            Command::Bdat {
                size: 10,
                last: true
            }
        );
    }

    #[test]
    fn control_characters_in_arguments_are_refused() {
        assert_eq!(code("MAIL FROM:<a@b.example>\rX-Injected: 1\r\n"), 501);
        assert_eq!(code("EHLO a\0b\r\n"), 501);
    }

    #[test]
    fn non_ascii_sender_needs_smtputf8() {
        assert_eq!(code("MAIL FROM:<jörg@example.com>\r\n"), 553);
        let Command::Mail(mail) = ok("MAIL FROM:<jörg@example.com> SMTPUTF8\r\n") else {
            panic!()
        };
        assert!(mail.smtputf8);
    }

    #[test]
    fn auth_mechanisms() {
        assert_eq!(
            ok("AUTH PLAIN AGEAYg==\r\n"),
            Command::Auth {
                mechanism: Some(Mechanism::Plain),
                initial_response: Some("AGEAYg==".into())
            }
        );
        assert_eq!(
            ok("AUTH LOGIN\r\n"),
            Command::Auth {
                mechanism: Some(Mechanism::Login),
                initial_response: None
            }
        );
        assert!(matches!(
            ok("AUTH CRAM-MD5\r\n"),
            Command::Auth {
                mechanism: None,
                ..
            }
        ));
    }
}
