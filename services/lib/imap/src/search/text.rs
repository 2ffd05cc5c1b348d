//! Case-insensitive substring matching for SEARCH string keys.
//!
//! Both sides are lowercased (ASCII fast path, full Unicode lowercasing otherwise), which gives
//! RFC 3501's case-insensitive match for ASCII and a sensible one for decoded non-ASCII text.
//! Key strings that are not UTF-8 are decoded lossily: they can then only match text holding the
//! same replacement characters, never panic.

use std::borrow::Cow;

use memchr::memmem;

/// A search string, lowercased once per evaluation.
pub(super) struct Needle {
    folded: String,
}

impl Needle {
    pub(super) fn new(raw: &[u8]) -> Self {
        Needle {
            folded: fold(&String::from_utf8_lossy(raw)).into_owned(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.folded.is_empty()
    }
}

/// Whether `haystack` contains `needle`, ignoring case. The empty needle is in every haystack.
pub(super) fn contains(haystack: &str, needle: &Needle) -> bool {
    if needle.is_empty() {
        return true;
    }
    let haystack = fold(haystack);
    memmem::find(haystack.as_bytes(), needle.folded.as_bytes()).is_some()
}

fn fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(haystack: &str, needle: &str) -> bool {
        contains(haystack, &Needle::new(needle.as_bytes()))
    }

    #[test]
    fn ascii_match_ignores_case() {
        assert!(has("Hello World", "hello WORLD"));
        assert!(has("Hello World", "lo w"));
        assert!(!has("Hello World", "worlds"));
    }

    #[test]
    fn unicode_match_ignores_case() {
        assert!(has("Grüße aus KÖLN", "köln"));
        assert!(has("ΣΟΦΙΑ", "σοφ"));
        assert!(!has("Grüße", "grüsse"));
    }

    #[test]
    fn empty_needle_matches_everything() {
        assert!(has("", ""));
        assert!(has("anything", ""));
    }

    #[test]
    fn non_utf8_needle_does_not_panic_or_match_plain_text() {
        let needle = Needle::new(&[0xff, 0xfe, b'a']);
        assert!(!contains("plain a text", &needle));
        assert!(contains("\u{fffd}\u{fffd}a", &needle));
    }
}
