//! Base subject extraction, RFC 5256 section 2.1, for SORT SUBJECT (and later THREAD).
//!
//! The input is the decoded (UTF-8) Subject value. Every step removes at least one character,
//! so the loops end on any input; all slicing happens at ASCII positions found by this code.

/// RFC 5256 section 2.1: strips `Re:`/`Fwd:` leaders, `[blob]` prefixes, `(fwd)` trailers and
/// `[fwd: ...]` wrappers, and collapses whitespace. Case is kept; compare case-insensitively.
pub fn base_subject(subject: &str) -> String {
    // Step 1: tabs and continuations become single spaces.
    let mut base = collapse_whitespace(subject);
    loop {
        // Step 2: trailing subj-trailer = "(fwd)" / WSP.
        loop {
            if base.ends_with(' ') {
                base.pop();
            } else if ends_with_ignore_case(&base, "(fwd)") {
                base.truncate(base.len() - "(fwd)".len());
            } else {
                break;
            }
        }
        // Steps 3 to 5: leaders, then one blob if something remains after it, until stable.
        loop {
            let before = base.len();
            while let Some(length) = leader_length(&base) {
                base.drain(..length);
            }
            if let Some(length) = blob_length(&base)
                && length < base.len()
            {
                base.drain(..length);
            }
            if base.len() == before {
                break;
            }
        }
        // Step 6: "[fwd:" ... "]" wrapper, then back to step 2.
        if starts_with_ignore_case(&base, "[fwd:") && base.ends_with(']') {
            base.truncate(base.len() - 1);
            base.drain(.."[fwd:".len());
        } else {
            return base;
        }
    }
}

fn collapse_whitespace(subject: &str) -> String {
    let mut collapsed = String::with_capacity(subject.len());
    let mut in_space = false;
    for character in subject.chars() {
        if matches!(character, ' ' | '\t' | '\r' | '\n') {
            if !in_space {
                collapsed.push(' ');
            }
            in_space = true;
        } else {
            collapsed.push(character);
            in_space = false;
        }
    }
    collapsed
}

/// subj-leader = (*subj-blob subj-refwd) / WSP
fn leader_length(text: &str) -> Option<usize> {
    if text.starts_with(' ') {
        return Some(1);
    }
    let mut offset = 0;
    while let Some(length) = text.get(offset..).and_then(blob_length) {
        offset += length;
    }
    refwd_length(text.get(offset..)?).map(|length| offset + length)
}

/// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
fn refwd_length(text: &str) -> Option<usize> {
    let mut offset = if starts_with_ignore_case(text, "re") {
        2
    } else if starts_with_ignore_case(text, "fwd") {
        3
    } else if starts_with_ignore_case(text, "fw") {
        2
    } else {
        return None;
    };
    offset += spaces(text.get(offset..)?);
    if let Some(length) = text.get(offset..).and_then(blob_length) {
        offset += length;
    }
    text.get(offset..)?.starts_with(':').then_some(offset + 1)
}

/// subj-blob = "[" *BLOBCHAR "]" *WSP, where BLOBCHAR is any character except "[" and "]".
fn blob_length(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('[')?;
    let close = rest.find(['[', ']'])?;
    if !rest.get(close..)?.starts_with(']') {
        return None;
    }
    let offset = 1 + close + 1;
    Some(offset + spaces(text.get(offset..)?))
}

fn spaces(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len()
        .checked_sub(suffix.len())
        .and_then(|start| text.as_bytes().get(start..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::base_subject;

    #[test]
    fn reply_and_forward_leaders_are_removed() {
        assert_eq!(base_subject("Re: hello"), "hello");
        assert_eq!(base_subject("RE: Re: re:hello"), "hello");
        assert_eq!(base_subject("Fwd: hello"), "hello");
        assert_eq!(base_subject("FW: hello"), "hello");
        assert_eq!(base_subject("Re [2]: hello"), "hello");
    }

    #[test]
    fn list_tags_and_trailers_are_removed() {
        assert_eq!(base_subject("[list] Re: hello (fwd)"), "hello");
        assert_eq!(base_subject("[a][b] Re: [c] hello"), "hello");
        assert_eq!(base_subject("hello (FWD)  (fwd)"), "hello");
    }

    #[test]
    fn whitespace_is_collapsed() {
        assert_eq!(base_subject("  hello\t\r\n  world  "), "hello world");
    }

    #[test]
    fn forward_wrapper_is_unwrapped() {
        assert_eq!(base_subject("[Fwd: Re: hello]"), "hello");
        assert_eq!(base_subject("Re: [fwd: [list] hello (fwd)]"), "hello");
    }

    #[test]
    fn blob_alone_is_kept() {
        assert_eq!(base_subject("[only a blob]"), "[only a blob]");
        assert_eq!(base_subject("Re: [only]"), "[only]");
    }

    #[test]
    fn words_that_merely_start_like_leaders_stay() {
        assert_eq!(base_subject("Report"), "Report");
        assert_eq!(base_subject("Fwiw: x"), "Fwiw: x");
        assert_eq!(base_subject("Re"), "Re");
        assert_eq!(base_subject(""), "");
    }

    #[test]
    fn non_ascii_subjects_survive() {
        assert_eq!(base_subject("Re: Grüße [ä] ü"), "Grüße [ä] ü");
        assert_eq!(base_subject("[ß]Fwd:Ωmega"), "Ωmega");
    }

    proptest! {
        #[test]
        fn never_panics_and_is_idempotent_on_subject_like_text(
            subject in "([Rr][Ee]|[Ff][Ww][Dd]?|\\[|\\]|:|\\(fwd\\)| |\t|x|ä|ß)*"
        ) {
            let once = base_subject(&subject);
            prop_assert!(once.len() <= subject.len());
            prop_assert_eq!(base_subject(&once), once.clone());
        }
    }
}
