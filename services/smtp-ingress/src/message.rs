//! Assembles an accepted message as it streams in: our `Received:` header (and, for submission,
//! `Message-ID:`/`Date:` when the client left them out) in front of the client's bytes, a sha256
//! over exactly the stored bytes, and a bounded memory buffer that spills to a temporary file.
//!
//! The client's header section is held in memory (up to `max_header_bytes`) until its end, so
//! that the headers we add can be decided before any byte is hashed; the body then streams
//! straight into the spool. Nothing is ever held in memory beyond the header limit plus the
//! memory spool limit.

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Why a message cannot be accepted, found while it streamed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    TooBig,
    HeadersTooBig,
    TooManyHops,
}

pub struct Limits {
    pub max_message_bytes: u64,
    pub max_header_bytes: usize,
    pub max_received_headers: usize,
    pub spool_memory_bytes: usize,
    pub spool_dir: Option<PathBuf>,
}

/// Headers we may add once the client's header section is known.
pub struct Additions {
    /// Added when missing (submission only).
    pub message_id: Option<String>,
    pub date: Option<String>,
}

pub enum Body {
    Memory(bytes::Bytes),
    File(tempfile::TempPath),
}

pub struct Finished {
    pub sha256: [u8; 32],
    pub size: u64,
    pub body: Body,
}

pub struct MessageBuilder {
    trace: Vec<u8>,
    additions: Additions,
    limits: Limits,
    header: Option<Vec<u8>>,
    client_bytes: u64,
    defect: Option<Defect>,
    hasher: Sha256,
    memory: Vec<u8>,
    file: Option<(tokio::fs::File, tempfile::TempPath)>,
    stored: u64,
}

impl MessageBuilder {
    pub fn new(trace: Vec<u8>, additions: Additions, limits: Limits) -> Self {
        Self {
            trace,
            additions,
            limits,
            header: Some(Vec::new()),
            client_bytes: 0,
            defect: None,
            hasher: Sha256::new(),
            memory: Vec::new(),
            file: None,
            stored: 0,
        }
    }

    pub fn defect(&self) -> Option<Defect> {
        self.defect
    }

    /// Bytes the client sent so far (after un-dot-stuffing), for the size limit and reports.
    pub fn client_bytes(&self) -> u64 {
        self.client_bytes
    }

    /// Appends client bytes. After a defect the bytes are counted and dropped.
    pub async fn push(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        self.client_bytes += bytes.len() as u64;
        let max = self.limits.max_message_bytes;
        if max > 0 && self.client_bytes > max && self.defect.is_none() {
            self.defect = Some(Defect::TooBig);
        }
        if self.defect.is_some() {
            return Ok(());
        }
        if let Some(header) = &mut self.header {
            // Look for the blank line that ends the header section, across push boundaries.
            let start = header.len().saturating_sub(3);
            header.extend_from_slice(bytes);
            let end = if header.starts_with(b"\r\n") {
                Some(2)
            } else {
                memchr::memmem::find(&header[start..], b"\r\n\r\n").map(|p| start + p + 4)
            };
            match end {
                Some(end) => {
                    let rest_from = end - (header.len() - bytes.len());
                    let mut head = std::mem::take(header);
                    head.truncate(end);
                    self.header = None;
                    self.emit_header(&head).await?;
                    bytes = &bytes[rest_from..];
                }
                None => {
                    if header.len() > self.limits.max_header_bytes {
                        self.defect = Some(Defect::HeadersTooBig);
                        self.header = None;
                    }
                    return Ok(());
                }
            }
        }
        if self.defect.is_none() {
            self.store(bytes).await?;
        }
        Ok(())
    }

    async fn emit_header(&mut self, head: &[u8]) -> std::io::Result<()> {
        let scan = scan_header(head);
        if scan.received >= self.limits.max_received_headers {
            self.defect = Some(Defect::TooManyHops);
            return Ok(());
        }
        let mut prefix = std::mem::take(&mut self.trace);
        if !scan.has_message_id
            && let Some(id) = self.additions.message_id.take()
        {
            prefix.extend_from_slice(format!("Message-ID: {id}\r\n").as_bytes());
        }
        if !scan.has_date
            && let Some(date) = self.additions.date.take()
        {
            prefix.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
        }
        self.store(&prefix).await?;
        self.store(head).await
    }

    async fn store(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.hasher.update(bytes);
        self.stored += bytes.len() as u64;
        if let Some((file, _)) = &mut self.file {
            return file.write_all(bytes).await;
        }
        if self.memory.len() + bytes.len() <= self.limits.spool_memory_bytes {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        // Spill: from now on the body goes to a file that is removed when dropped.
        let named = match &self.limits.spool_dir {
            Some(dir) => tempfile::NamedTempFile::new_in(dir)?,
            None => tempfile::NamedTempFile::new()?,
        };
        let (std_file, path) = named.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        file.write_all(&self.memory).await?;
        file.write_all(bytes).await?;
        self.memory = Vec::new();
        self.file = Some((file, path));
        Ok(())
    }

    /// Ends the message: a header section without a blank line is emitted as it is.
    pub async fn finish(mut self) -> std::io::Result<Result<Finished, Defect>> {
        if let Some(header) = self.header.take()
            && self.defect.is_none()
        {
            self.emit_header(&header).await?;
        }
        if let Some(defect) = self.defect {
            return Ok(Err(defect));
        }
        let sha256: [u8; 32] = self.hasher.finalize().into();
        let body = match self.file {
            Some((mut file, path)) => {
                file.flush().await?;
                file.sync_data().await?;
                Body::File(path)
            }
            None => Body::Memory(bytes::Bytes::from(self.memory)),
        };
        Ok(Ok(Finished {
            sha256,
            size: self.stored,
            body,
        }))
    }
}

struct HeaderScan {
    received: usize,
    has_message_id: bool,
    has_date: bool,
}

fn scan_header(head: &[u8]) -> HeaderScan {
    let mut scan = HeaderScan {
        received: 0,
        has_message_id: false,
        has_date: false,
    };
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"received") {
            scan.received += 1;
        } else if name.eq_ignore_ascii_case(b"message-id") {
            scan.has_message_id = true;
        } else if name.eq_ignore_ascii_case(b"date") {
            scan.has_date = true;
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(memory: usize) -> Limits {
        Limits {
            max_message_bytes: 10_000,
            max_header_bytes: 4096,
            max_received_headers: 3,
            spool_memory_bytes: memory,
            spool_dir: None,
        }
    }

    fn additions() -> Additions {
        Additions {
            message_id: Some("<id@host>".into()),
            date: Some("Sat, 21 Nov 2026 10:00:00 +0000".into()),
        }
    }

    async fn build(chunks: &[&[u8]], memory: usize) -> (Vec<u8>, Finished) {
        let mut builder =
            MessageBuilder::new(b"Received: x\r\n".to_vec(), additions(), limits(memory));
        for chunk in chunks {
            builder.push(chunk).await.unwrap();
        }
        let finished = builder.finish().await.unwrap().unwrap();
        let bytes = match &finished.body {
            Body::Memory(b) => b.to_vec(),
            Body::File(path) => std::fs::read(path).unwrap(),
        };
        (bytes, finished)
    }

    #[tokio::test]
    async fn trace_and_missing_headers_are_prepended_and_hashed() {
        let (bytes, finished) = build(&[b"Subject: hi\r\n", b"\r\nbody\r\n"], 1 << 20).await;
        assert_eq!(
            bytes,
            b"Received: x\r\nMessage-ID: <id@host>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\nSubject: hi\r\n\r\nbody\r\n"
        );
        assert_eq!(finished.size, bytes.len() as u64);
        assert_eq!(finished.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
    }

    #[tokio::test]
    async fn present_headers_are_not_duplicated_and_split_blank_line_is_found() {
        let (bytes, _) = build(&[b"Date: x\r\nMessage-Id: <a@b>\r\n\r", b"\nbody"], 1 << 20).await;
        assert_eq!(
            bytes,
            b"Received: x\r\nDate: x\r\nMessage-Id: <a@b>\r\n\r\nbody"
        );
    }

    #[tokio::test]
    async fn large_bodies_spill_to_a_file_with_the_same_bytes() {
        let body = vec![b'a'; 5000];
        let (in_memory, a) = build(&[b"S: 1\r\n\r\n", &body], 1 << 20).await;
        let (spilled, b) = build(&[b"S: 1\r\n\r\n", &body], 100).await;
        assert!(matches!(b.body, Body::File(_)));
        assert_eq!(in_memory, spilled);
        assert_eq!(a.sha256, b.sha256);
    }

    #[tokio::test]
    async fn defects() {
        let mut builder = MessageBuilder::new(Vec::new(), additions(), limits(100));
        builder.push(&vec![b'x'; 10_001]).await.unwrap();
        assert_eq!(builder.finish().await.unwrap().err(), Some(Defect::TooBig));
        let mut builder = MessageBuilder::new(Vec::new(), additions(), limits(100));
        builder.push(&vec![b'x'; 5000]).await.unwrap();
        assert_eq!(
            builder.finish().await.unwrap().err(),
            Some(Defect::HeadersTooBig)
        );
        let mut builder = MessageBuilder::new(Vec::new(), additions(), limits(100));
        builder
            .push(b"Received: a\r\nReceived: b\r\nreceived: c\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            builder.finish().await.unwrap().err(),
            Some(Defect::TooManyHops)
        );
    }
}
