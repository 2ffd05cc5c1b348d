//! The DATA byte stream (RFC 5321 section 4.1.1.4 and 4.5.2): finds the end of the message and
//! removes dot-stuffing, while refusing to be fooled by the line endings that SMTP smuggling uses.
//!
//! Only `<CR><LF>.<CR><LF>` ends the data, and a line starts only after `<CR><LF>`: a bare LF or
//! a bare CR never starts a line, so `<LF>.<LF>`, `<LF>.<CR><LF>`, `<CR>.<CR>` and their mixes are
//! ordinary content, never an end of message (CVE-2023-51764/5/6). Bare line endings are counted;
//! the caller either rejects the message (the default) or stores it with them normalised to CRLF.
//! Both ways there is exactly one message per DATA.

use memchr::memchr2;

/// What to do with a bare CR or LF in the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareLineEndings {
    /// Keep them as received (the caller rejects the message when any was seen).
    Keep,
    /// Replace each with CRLF in the output.
    Normalize,
}

#[derive(Debug)]
pub struct DataDecoder {
    mode: BareLineEndings,
    /// At the start of a line (after CRLF, or at the start of the data).
    line_start: bool,
    /// The current line began with a dot that was removed and has no other content yet.
    dot_only: bool,
    /// A CR was seen and is held back until the next byte shows what it is.
    pending_cr: bool,
    bare_line_endings: u64,
    finished: bool,
}

/// Result of feeding bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All input consumed; more is needed.
    NeedMore,
    /// The end marker was found after `consumed` input bytes; the rest belongs to the next
    /// command (pipelining).
    Done { consumed: usize },
}

impl DataDecoder {
    pub fn new(mode: BareLineEndings) -> Self {
        Self {
            mode,
            line_start: true,
            dot_only: false,
            pending_cr: false,
            bare_line_endings: 0,
            finished: false,
        }
    }

    /// Bare CRs and LFs seen so far.
    pub fn bare_line_endings(&self) -> u64 {
        self.bare_line_endings
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Decodes `input`, appending message bytes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut i = 0;
        while i < input.len() {
            if self.finished {
                return Progress::Done { consumed: i };
            }
            // Fast path: inside a line with nothing held back, copy up to the next CR or LF.
            if !self.line_start && !self.pending_cr {
                let rest = &input[i..];
                let run = memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                if run > 0 {
                    out.extend_from_slice(&rest[..run]);
                    self.dot_only = false;
                    i += run;
                    continue;
                }
            }
            let byte = input[i];
            i += 1;
            if self.pending_cr {
                self.pending_cr = false;
                if byte == b'\n' {
                    if self.dot_only {
                        self.finished = true;
                        return Progress::Done { consumed: i };
                    }
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                    self.dot_only = false;
                    continue;
                }
                // A bare CR: content, never a line start.
                self.bare(out, b'\r');
                self.line_start = false;
                self.dot_only = false;
                // Reprocess this byte in the middle of a line.
                i -= 1;
                continue;
            }
            match byte {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    self.bare(out, b'\n');
                    self.line_start = false;
                    self.dot_only = false;
                }
                b'.' if self.line_start => {
                    // Dot-stuffing: the leading dot is removed; ".CRLF" alone ends the data.
                    self.line_start = false;
                    self.dot_only = true;
                }
                other => {
                    out.push(other);
                    self.line_start = false;
                    self.dot_only = false;
                }
            }
        }
        if self.finished {
            Progress::Done { consumed: i }
        } else {
            Progress::NeedMore
        }
    }

    fn bare(&mut self, out: &mut Vec<u8>, byte: u8) {
        self.bare_line_endings += 1;
        match self.mode {
            BareLineEndings::Keep => out.push(byte),
            BareLineEndings::Normalize => out.extend_from_slice(b"\r\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(mode: BareLineEndings, input: &[u8]) -> (Vec<u8>, Progress, u64) {
        let mut decoder = DataDecoder::new(mode);
        let mut out = Vec::new();
        let progress = decoder.feed(input, &mut out);
        (out, progress, decoder.bare_line_endings())
    }

    #[test]
    fn crlf_dot_crlf_ends_the_data_and_leaves_the_rest() {
        let input = b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
        let (out, progress, bare) = decode(BareLineEndings::Keep, input);
        assert_eq!(out, b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(
            progress,
            Progress::Done {
                consumed: input.len() - 6
            }
        );
        assert_eq!(bare, 0);
    }

    #[test]
    fn empty_message() {
        let (out, progress, _) = decode(BareLineEndings::Keep, b".\r\n");
        assert!(out.is_empty());
        assert_eq!(progress, Progress::Done { consumed: 3 });
    }

    #[test]
    fn dot_stuffing_is_removed() {
        let (out, progress, _) = decode(BareLineEndings::Keep, b"..leading\r\n...\r\n.\r\n");
        assert_eq!(out, b".leading\r\n..\r\n");
        assert!(matches!(progress, Progress::Done { .. }));
    }

    #[test]
    fn smuggling_variants_never_end_the_data() {
        for variant in [
            &b"a\n.\nMAIL FROM:<x@y.z>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x@y.z>\r\n",
            b"a\r\n.\nMAIL FROM:<x@y.z>\r\n",
            b"a\r.\rMAIL FROM:<x@y.z>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y.z>\r\n",
            b"a\r\n.\rMAIL FROM:<x@y.z>\r\n",
            b"a\r\n\x00.\r\nMAIL FROM:<x@y.z>\r\n",
        ] {
            for mode in [BareLineEndings::Keep, BareLineEndings::Normalize] {
                let (_, progress, _) = decode(mode, variant);
                assert_eq!(progress, Progress::NeedMore, "{variant:?} ended the data");
            }
        }
    }

    #[test]
    fn bare_line_endings_are_counted_and_optionally_normalised() {
        let (out, _, bare) = decode(BareLineEndings::Keep, b"a\nb\rc\r\n.\r\n");
        assert_eq!((out.as_slice(), bare), (&b"a\nb\rc\r\n"[..], 2));
        let (out, _, bare) = decode(BareLineEndings::Normalize, b"a\nb\rc\r\n.\r\n");
        assert_eq!((out.as_slice(), bare), (&b"a\r\nb\r\nc\r\n"[..], 2));
    }

    #[test]
    fn split_at_every_position_gives_the_same_result() {
        let input = b"Subject: t\r\n\r\n..x\r\nline\r\n\r\n.\r\nNEXT";
        let (whole, _, _) = decode(BareLineEndings::Keep, input);
        for cut in 0..input.len() {
            let mut decoder = DataDecoder::new(BareLineEndings::Keep);
            let mut out = Vec::new();
            let first = decoder.feed(&input[..cut], &mut out);
            let consumed = match first {
                Progress::Done { consumed } => consumed,
                Progress::NeedMore => match decoder.feed(&input[cut..], &mut out) {
                    Progress::Done { consumed } => cut + consumed,
                    Progress::NeedMore => panic!("no end at cut {cut}"),
                },
            };
            assert_eq!(out, whole, "cut {cut}");
            assert_eq!(consumed, input.len() - 4, "cut {cut}");
        }
    }
}
