//! Line endings of a message arriving over IMAP APPEND: RFC 5322 lines end in CRLF, and both IMAP
//! (RFC822.SIZE, BODY[]) and POP3 (sizes in LIST and STAT, RFC 1939 section 11) count octets
//! with CRLF. A message written by a client with bare LF or CR (or without a final line end) is
//! stored normalised, so every size the server reports is the size it sends.

use std::borrow::Cow;

/// The message with every bare LF or CR turned into CRLF and a final CRLF added if missing
/// (borrowed when nothing changes).
pub fn normalize_line_endings(message: &[u8]) -> Cow<'_, [u8]> {
    let well_formed = message.is_empty()
        || (message.ends_with(b"\r\n")
            && message.iter().enumerate().all(|(i, byte)| match byte {
                b'\n' => i > 0 && message[i - 1] == b'\r',
                b'\r' => message.get(i + 1) == Some(&b'\n'),
                _ => true,
            }));
    if well_formed {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 2);
    let mut bytes = message.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\r' => {
                if bytes.peek() == Some(&b'\n') {
                    bytes.next();
                }
                out.extend_from_slice(b"\r\n");
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            other => out.push(other),
        }
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::normalize_line_endings;
    use proptest::prelude::*;

    #[test]
    fn crlf_messages_are_kept_as_they_are() {
        let message = b"Subject: a\r\n\r\nbody\r\n";
        assert!(matches!(
            normalize_line_endings(message),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bare_line_ends_become_crlf_and_a_final_one_is_added() {
        assert_eq!(
            normalize_line_endings(b"Subject: a\n\nbody\rmore").as_ref(),
            b"Subject: a\r\n\r\nbody\r\nmore\r\n"
        );
        assert_eq!(normalize_line_endings(b"").as_ref(), b"");
    }

    proptest! {
        #[test]
        fn output_has_only_crlf_line_ends_and_is_idempotent(input in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a')], 0..64)) {
            let once = normalize_line_endings(&input).into_owned();
            for (i, byte) in once.iter().enumerate() {
                if *byte == b'\n' { prop_assert!(i > 0 && once[i - 1] == b'\r'); }
                if *byte == b'\r' { prop_assert_eq!(once.get(i + 1), Some(&b'\n')); }
            }
            let twice = normalize_line_endings(&once).into_owned();
            prop_assert_eq!(twice, once);
        }
    }
}
