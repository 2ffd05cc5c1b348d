//! The RFC 5256 section 2.1 base subject, used by SORT SUBJECT and THREAD=REFERENCES.
//!
//! Input is the Subject with encoded-words already decoded (step 1's charset conversion). The
//! result keeps its letter case: RFC 5256 compares base subjects with the i;unicode-casemap
//! collation (RFC 5051), which is the caller's job.

/// Strips reply/forward markers and list tags per RFC 5256 section 2.1 steps (1) to (6).
pub(crate) fn base_subject(subject: &str) -> String {
    // (1) Tabs and continuations become spaces; runs of blanks become one space.
    let mut text = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        // (2) Trailing "(fwd)" and blanks.
        loop {
            let trimmed = text.trim_end();
            match strip_suffix_ignore_case(trimmed, "(fwd)") {
                Some(rest) => text = rest.to_owned(),
                None => {
                    text = trimmed.to_owned();
                    break;
                }
            }
        }
        // (3)-(5) Leading "re:", "fw:", "fwd:", blobs and blanks, until nothing changes.
        loop {
            let before = text.len();
            text = text.trim_start().to_owned();
            if let Some(rest) = strip_refwd(&text) {
                text = rest.to_owned();
            }
            if let Some(rest) = strip_blob(&text).filter(|rest| !rest.trim().is_empty()) {
                text = rest.to_owned();
            }
            if text.len() == before {
                break;
            }
        }
        // (6) "[fwd: ...]" wrapping the whole subject.
        let unwrapped = strip_prefix_ignore_case(&text, "[fwd:")
            .and_then(|rest| rest.strip_suffix(']'))
            .map(str::to_owned);
        match unwrapped {
            Some(inner) => text = inner,
            None => return text,
        }
    }
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`, possibly preceded by blobs.
fn strip_refwd(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(after) = strip_blob(rest) {
        rest = after;
    }
    let lower = rest
        .get(..3)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let marker = if lower.starts_with("re") {
        2
    } else if lower == "fwd" {
        3
    } else if lower.starts_with("fw") {
        2
    } else {
        return None;
    };
    let mut after = rest.get(marker..)?.trim_start();
    if let Some(blob) = strip_blob(after) {
        after = blob;
    }
    after.strip_prefix(':')
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`, where BLOBCHAR excludes "[" and "]".
fn strip_blob(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    let close = inner.find([']', '['])?;
    match inner.get(close..)?.strip_prefix(']') {
        Some(rest) => Some(rest.trim_start()),
        None => None,
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    let tail = text.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix)
        .then(|| text.get(..cut))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::base_subject;

    #[test]
    fn reply_and_forward_markers_are_removed() {
        assert_eq!(base_subject("Re: hello"), "hello");
        assert_eq!(base_subject("RE: Fwd: re[2]: hello (fwd)"), "hello");
        assert_eq!(base_subject("[list] Re: [list] hello"), "hello");
        assert_eq!(base_subject("[Fwd: Re: hello]"), "hello");
        assert_eq!(base_subject("  hello\t  world  "), "hello world");
    }

    #[test]
    fn a_blob_alone_is_kept() {
        assert_eq!(base_subject("[announce]"), "[announce]");
        assert_eq!(base_subject("Re: [announce]"), "[announce]");
        assert_eq!(base_subject(""), "");
        assert_eq!(base_subject("Réponse"), "Réponse");
        assert_eq!(base_subject("[ünï"), "[ünï");
    }
}
