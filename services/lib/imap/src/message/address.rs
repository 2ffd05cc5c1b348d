//! RFC 5322 section 3.4 address lists (with the obsolete routes of section 4.4) turned into RFC
//! 3501 address structures, group syntax included.
//!
//! mail-parser decodes encoded-words in display names, but ENVELOPE must return them raw, so this
//! small parser works on the unfolded raw value instead. It never fails: stray specials are
//! skipped, an unterminated quote, comment or angle address runs to the end of the value, and an
//! unterminated group is closed.

use super::model::Address;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Atom, dot-atom or domain literal, as written.
    Word(String),
    /// Quoted string: content unescaped, and the raw form for local parts.
    Quoted {
        text: String,
        raw: String,
    },
    Comment(String),
    Special(char),
}

fn tokenize(value: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '"' => {
                let (mut text, mut raw) = (String::new(), String::from('"'));
                while let Some(c) = chars.next() {
                    raw.push(c);
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                raw.push(escaped);
                                text.push(escaped);
                            }
                        }
                        _ => text.push(c),
                    }
                }
                tokens.push(Token::Quoted { text, raw });
            }
            '(' => {
                let (mut text, mut depth) = (String::new(), 1usize);
                while let Some(c) = chars.next() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                text.push(escaped);
                            }
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    text.push(c);
                }
                tokens.push(Token::Comment(text.trim().to_owned()));
            }
            '[' => {
                let mut literal = String::from('[');
                for c in chars.by_ref() {
                    literal.push(c);
                    if c == ']' {
                        break;
                    }
                }
                tokens.push(Token::Word(literal));
            }
            '<' | '>' | '@' | ',' | ';' | ':' | ')' | ']' | '\\' => tokens.push(Token::Special(c)),
            _ => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if " \t\r\n\"()<>@,;:[]\\".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    tokens
}

/// Parses an unfolded raw address-list value into IMAP address structures.
pub(crate) fn parse_address_list(value: &str) -> Vec<Address> {
    let tokens = tokenize(value);
    let mut out = Vec::new();
    let mut pending: Vec<Token> = Vec::new();
    let mut in_group = false;
    let mut iter = tokens.into_iter();
    while let Some(token) = iter.next() {
        match token {
            Token::Special(':') if !in_group => {
                out.push(Address {
                    mailbox: Some(phrase(&pending).unwrap_or_default()),
                    ..Address::default()
                });
                pending.clear();
                in_group = true;
            }
            Token::Special('<') => {
                let name = phrase(&pending);
                pending.clear();
                let angle: Vec<Token> = iter
                    .by_ref()
                    .take_while(|token| *token != Token::Special('>'))
                    .collect();
                let mut address = angle_address(&angle);
                address.name = name;
                out.push(address);
            }
            Token::Special(',') => flush(&mut pending, &mut out),
            Token::Special(';') => {
                flush(&mut pending, &mut out);
                if in_group {
                    out.push(Address::default());
                    in_group = false;
                }
            }
            Token::Special(_) if pending.is_empty() => {}
            other => pending.push(other),
        }
    }
    flush(&mut pending, &mut out);
    if in_group {
        out.push(Address::default());
    }
    out
}

/// Ends an address written without angle brackets (`user@host (Name)`).
fn flush(pending: &mut Vec<Token>, out: &mut Vec<Address>) {
    let comment = pending.iter().rev().find_map(|token| match token {
        Token::Comment(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    });
    let spec: Vec<Token> = pending
        .drain(..)
        .filter(|token| !matches!(token, Token::Comment(_)))
        .collect();
    if spec.is_empty() {
        return;
    }
    let mut address = addr_spec(&spec);
    address.name = comment;
    out.push(address);
}

/// The inside of `<...>`: an optional route (`@a,@b:`) and an addr-spec.
fn angle_address(tokens: &[Token]) -> Address {
    let tokens: Vec<Token> = tokens
        .iter()
        .filter(|token| !matches!(token, Token::Comment(_)))
        .cloned()
        .collect();
    let route_end = tokens
        .iter()
        .position(|token| *token == Token::Special(':'));
    match route_end {
        Some(colon) if tokens.first() == Some(&Token::Special('@')) => {
            let route = tokens.get(..colon).map(join_raw).unwrap_or_default();
            let mut address = addr_spec(tokens.get(colon + 1..).unwrap_or_default());
            address.adl = Some(route).filter(|route| !route.is_empty());
            address
        }
        _ => addr_spec(&tokens),
    }
}

/// `local@domain`, split at the last `@`; without one the whole is the mailbox and the host is
/// empty (not NIL, which would mean a group).
fn addr_spec(tokens: &[Token]) -> Address {
    let at = tokens
        .iter()
        .rposition(|token| *token == Token::Special('@'));
    let (local, domain) = match at {
        Some(at) => (
            tokens.get(..at).unwrap_or_default(),
            tokens.get(at + 1..).unwrap_or_default(),
        ),
        None => (tokens, &[][..]),
    };
    Address {
        name: None,
        adl: None,
        mailbox: Some(join_raw(local)),
        host: Some(join_raw(domain)),
    }
}

fn join_raw(tokens: &[Token]) -> String {
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Word(word) => out.push_str(word),
            Token::Quoted { raw, .. } => out.push_str(raw),
            Token::Special(c) => out.push(*c),
            Token::Comment(_) => {}
        }
    }
    out
}

/// A display name: words and quoted strings joined by single spaces; `None` when empty.
fn phrase(tokens: &[Token]) -> Option<String> {
    let words: Vec<&str> = tokens
        .iter()
        .filter_map(|token| match token {
            Token::Word(word) => Some(word.as_str()),
            Token::Quoted { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    Some(words.join(" ")).filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(str::to_owned),
            adl: None,
            mailbox: mailbox.map(str::to_owned),
            host: host.map(str::to_owned),
        }
    }

    #[test]
    fn display_names_stay_raw_and_quotes_are_removed() {
        assert_eq!(
            parse_address_list(
                "=?utf-8?q?J=C3=B6rg?= <j@example.com>, \"Doe, John\" <john@example.org>"
            ),
            [
                addr(
                    Some("=?utf-8?q?J=C3=B6rg?="),
                    Some("j"),
                    Some("example.com")
                ),
                addr(Some("Doe, John"), Some("john"), Some("example.org")),
            ]
        );
    }

    #[test]
    fn groups_become_start_and_end_markers() {
        assert_eq!(
            parse_address_list("Team: a@x.org, B <b@y.org>; c@z.org, undisclosed-recipients:;"),
            [
                addr(None, Some("Team"), None),
                addr(None, Some("a"), Some("x.org")),
                addr(Some("B"), Some("b"), Some("y.org")),
                addr(None, None, None),
                addr(None, Some("c"), Some("z.org")),
                addr(None, Some("undisclosed-recipients"), None),
                addr(None, None, None),
            ]
        );
    }

    #[test]
    fn comments_routes_and_missing_domains() {
        assert_eq!(
            parse_address_list("pete@example.net (Pete Smith)"),
            [addr(Some("Pete Smith"), Some("pete"), Some("example.net"))]
        );
        let routed = parse_address_list("<@relay.a,@relay.b:joe@example.com>");
        assert_eq!(routed[0].adl.as_deref(), Some("@relay.a,@relay.b"));
        assert_eq!(routed[0].mailbox.as_deref(), Some("joe"));
        assert_eq!(
            parse_address_list("root"),
            [addr(None, Some("root"), Some(""))]
        );
        assert_eq!(parse_address_list("<>"), [addr(None, Some(""), Some(""))]);
    }

    #[test]
    fn garbage_never_panics() {
        for value in ["<<<", "\"unterminated", "(((", ":::;;;", "@@@", ">a<", "\\"] {
            let _ = parse_address_list(value);
        }
    }
}
