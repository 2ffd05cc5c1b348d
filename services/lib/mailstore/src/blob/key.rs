//! Names of blobs: [`BlobKey`] (what a caller asks for) and [`BlobPrefix`] (where one store
//! instance keeps its keys).
//!
//! Message bodies are content-addressed: `blobs/<sha256 hex of the bytes>`, so every recipient of one
//! message shares one blob and a retried PUT writes the same bytes to the same name.
//!
//! Both types are validated once, here, so that the S3 and filesystem backends can turn them into an
//! object name or a relative path without further checks. A key must never be able to leave the
//! store's root (`..`, a leading `/`) or name the filesystem backend's temporary files (a segment
//! starting with `.`), and it must mean the same thing on S3 and on disk (one lowercase alphabet, no
//! empty segments), so the alphabet is deliberately narrow.

use std::fmt;

use sha2::{Digest, Sha256};

use super::BlobError;

/// Longest accepted key. S3 allows 1024 bytes for the whole object name; this leaves room for a
/// prefix while being far longer than `blobs/` + 64 hex digits.
pub const MAX_KEY_LEN: usize = 512;

/// Longest accepted prefix (see [`MAX_KEY_LEN`]).
pub const MAX_PREFIX_LEN: usize = 256;

/// The folder that holds content-addressed message bodies (see ARCHITECTURE.md).
const CONTENT_FOLDER: &str = "blobs/";

/// A validated blob name: lowercase ASCII letters, digits, `-`, `_`, `.` and `/`; no leading or
/// trailing `/`, no empty segment and no segment starting with `.` (so neither `..` nor temporary
/// files of the filesystem backend can be named).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// The content address of `body`: `blobs/<sha256 hex>`.
    pub fn for_content(body: &[u8]) -> Self {
        Self::from_sha256(&Sha256::digest(body).into())
    }

    /// The content address for a digest computed elsewhere, e.g. while streaming SMTP DATA into a
    /// spool file, so the body need not be read twice.
    pub fn from_sha256(digest: &[u8; 32]) -> Self {
        Self(format!("{CONTENT_FOLDER}{}", hex::encode(digest)))
    }

    /// Validates a key read back from storage (e.g. the message index in PostgreSQL).
    pub fn parse(text: &str) -> Result<Self, BlobError> {
        if text.is_empty() || text.len() > MAX_KEY_LEN {
            return Err(BlobError::internal(format!(
                "invalid blob key {text:?}: length must be 1..={MAX_KEY_LEN}"
            )));
        }
        check_segments(text)
            .map_err(|why| BlobError::internal(format!("invalid blob key {text:?}: {why}")))?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobKey({})", self.0)
    }
}

/// The part of every object name that a store instance adds in front of a key: empty, or one or
/// more key segments followed by `/`. Tests use a unique prefix per test; operators use one to share
/// a bucket (or a folder) between installations.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct BlobPrefix(String);

impl BlobPrefix {
    /// Accepts `""`, `"mail"` or `"mail/"` (the trailing `/` is added when missing, so that prefix
    /// `a` can never see keys of prefix `ab`).
    pub fn parse(text: &str) -> Result<Self, BlobError> {
        let trimmed = text.strip_suffix('/').unwrap_or(text);
        if trimmed.is_empty() {
            return Ok(Self::default());
        }
        if trimmed.len() >= MAX_PREFIX_LEN {
            return Err(BlobError::internal(format!(
                "invalid blob prefix {text:?}: longer than {MAX_PREFIX_LEN} bytes"
            )));
        }
        check_segments(trimmed)
            .map_err(|why| BlobError::internal(format!("invalid blob prefix {text:?}: {why}")))?;
        Ok(Self(format!("{trimmed}/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full object name of `key` under this prefix.
    pub fn join(&self, key: &BlobKey) -> String {
        format!("{}{}", self.0, key.0)
    }
}

impl fmt::Debug for BlobPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobPrefix({:?})", self.0)
    }
}

fn check_segments(text: &str) -> Result<(), &'static str> {
    if let Some(bad) = text.chars().find(|c| !is_key_char(*c)) {
        return Err(if bad.is_ascii_uppercase() {
            "upper-case letters are not allowed"
        } else {
            "only a-z 0-9 - _ . / are allowed"
        });
    }
    for segment in text.split('/') {
        if segment.is_empty() {
            return Err("empty segment (leading, trailing or double '/')");
        }
        if segment.starts_with('.') {
            return Err("a segment must not start with '.'");
        }
    }
    Ok(())
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_key_is_blobs_slash_sha256_hex() {
        let key = BlobKey::for_content(b"abc");
        assert_eq!(
            key.as_str(),
            "blobs/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(BlobKey::parse(key.as_str()).ok(), Some(key));
    }

    #[test]
    fn parse_accepts_plain_paths() {
        for ok in ["a", "blobs/ab12", "x/y_z-1.eml", "a.b/c"] {
            assert!(BlobKey::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn parse_rejects_escapes_and_odd_shapes() {
        for bad in [
            "",
            "/abs",
            "trailing/",
            "a//b",
            "..",
            "a/../b",
            "a/./b",
            ".hidden",
            "a/.partial-x",
            "Upper",
            "sp ace",
            "a\\b",
            "é",
            "a\0b",
        ] {
            let err = BlobKey::parse(bad).expect_err(bad);
            assert_eq!(err.kind(), super::super::BlobErrorKind::Internal);
        }
        assert!(BlobKey::parse(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn prefix_is_normalised_to_end_with_slash() {
        assert_eq!(BlobPrefix::parse("").map(|p| p.0).ok(), Some(String::new()));
        assert_eq!(
            BlobPrefix::parse("/").map(|p| p.0).ok(),
            Some(String::new())
        );
        assert_eq!(
            BlobPrefix::parse("t-1").map(|p| p.0).ok(),
            Some("t-1/".into())
        );
        assert_eq!(
            BlobPrefix::parse("a/b/").map(|p| p.0).ok(),
            Some("a/b/".into())
        );
        assert!(BlobPrefix::parse("../x").is_err());
        assert!(BlobPrefix::parse("/x").is_err());
    }

    #[test]
    fn join_puts_prefix_in_front() {
        let key = BlobKey::parse("blobs/ab").expect("valid");
        let prefix = BlobPrefix::parse("tenant").expect("valid");
        assert_eq!(prefix.join(&key), "tenant/blobs/ab");
        assert_eq!(BlobPrefix::default().join(&key), "blobs/ab");
    }
}
