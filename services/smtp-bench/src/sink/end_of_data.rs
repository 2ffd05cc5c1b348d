//! Finding the end of the message data, `CRLF . CRLF` (RFC 5321 4.1.1.4), in data that arrives
//! in chunks of any size, without keeping the data: the scanner carries across chunks only how
//! much of the terminator the bytes seen so far end with.

/// The line ends are CRLF only: a bare LF does not end a line (RFC 5321 2.3.8).
const TERMINATOR: &[u8] = b"\r\n.\r\n";

/// Scans message data for its terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndOfData {
    /// How many leading bytes of [`TERMINATOR`] the data seen so far ends with.
    matched: usize,
}

impl EndOfData {
    /// At the start of the data, i.e. right after the CRLF of the DATA command: a first line
    /// "." ends an empty message.
    pub fn new() -> Self {
        Self { matched: 2 }
    }

    /// Scans the next chunk of data. Returns the length of its part up to and including the
    /// terminator (what follows is the next command, pipelined), or `None` when the chunk is
    /// all data.
    pub fn scan(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut at = 0;
        while at < chunk.len() {
            if self.matched == 0 {
                // Most of the data: skip to the next CR.
                at += chunk[at..].iter().position(|&b| b == b'\r')?;
            }
            self.matched = next(self.matched, chunk[at]);
            at += 1;
            if self.matched == TERMINATOR.len() {
                return Some(at);
            }
        }
        None
    }
}

/// The matched length after one more byte. Only a CR can restart a match, since no proper
/// suffix of a partial match other than a lone CR is a prefix of the terminator.
fn next(matched: usize, byte: u8) -> usize {
    match (matched, byte) {
        (3, b'\r') => 4,
        (_, b'\r') => 1,
        (1 | 4, b'\n') => matched + 1,
        (2, b'.') => 3,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the chunks in order; the chunk index and offset where the data ended.
    fn end_in(chunks: &[&[u8]]) -> Option<(usize, usize)> {
        let mut scanner = EndOfData::new();
        chunks
            .iter()
            .enumerate()
            .find_map(|(i, chunk)| scanner.scan(chunk).map(|at| (i, at)))
    }

    #[test]
    fn terminator_in_one_chunk_ends_after_its_crlf() {
        assert_eq!(
            end_in(&[b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"]),
            Some((0, 23))
        );
    }

    #[test]
    fn terminator_split_after_the_dot_is_found_in_the_next_chunk() {
        assert_eq!(end_in(&[b"body\r\n.", b"\r\nQUIT\r\n"]), Some((1, 2)));
    }

    #[test]
    fn terminator_split_at_every_position_is_found() {
        let data = b"line one\r\nline two\r\n.\r\nNOOP\r\n";
        let end = 23;
        for cut in 0..=data.len() {
            let (a, b) = data.split_at(cut);
            let found = end_in(&[a, b]).map(|(i, at)| if i == 0 { at } else { cut + at });
            assert_eq!(found, Some(end), "cut at {cut}");
        }
    }

    #[test]
    fn terminator_fed_byte_by_byte_is_found() {
        let data = b"a\r\n..b\r\n.\r\n";
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(end_in(&chunks), Some((data.len() - 1, 1)));
    }

    #[test]
    fn dot_stuffed_lines_do_not_end_the_data() {
        assert_eq!(end_in(&[b"a\r\n..\r\n...\r\n..x\r\n"]), None);
        assert_eq!(end_in(&[b"a\r\n.", b".\r\n"]), None);
        assert_eq!(end_in(&[b"a\r\n", b"..", b"\r\n"]), None);
    }

    #[test]
    fn dot_line_first_ends_an_empty_message() {
        assert_eq!(end_in(&[b".\r\nQUIT\r\n"]), Some((0, 3)));
        assert_eq!(end_in(&[b".", b"\r", b"\n"]), Some((2, 1)));
    }

    #[test]
    fn bare_line_feeds_and_dots_mid_line_do_not_end_the_data() {
        assert_eq!(end_in(&[b"a\n.\n", b"b.\r\n", b"x\r\n.y\r\n"]), None);
        assert_eq!(end_in(&[b"a\r\n.\rb\r\n"]), None);
    }

    #[test]
    fn carriage_returns_restart_a_partial_match() {
        assert_eq!(end_in(&[b"a\r\r\n.\r\n"]), Some((0, 7)));
        assert_eq!(end_in(&[b"a\r\n.\r\r\n.\r\n"]), Some((0, 10)));
        assert_eq!(end_in(&[b"a\r\n\r\n.\r\n"]), Some((0, 8)));
    }
}
