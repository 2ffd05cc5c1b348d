//! Assembles an accepted message as it streams in. The client's header section is held in
//! memory (up to `max_header_bytes`) and its body streams into a bounded memory buffer that
//! spills to a temporary file. When the message is complete, [`Received`] gives both to the
//! checks (sender authentication, spam tests), and [`Received::assemble`] writes what is stored:
//! our headers (the `Received:` trace, `Authentication-Results`, spam marks, and for submission
//! `Message-ID:`/`Date:` when the client left them out) in front of the client's (possibly
//! edited) header section and body, with a sha256 over exactly the stored bytes.
//!
//! Nothing is ever held in memory beyond the header limit plus the memory spool limit (and,
//! at assembly, one copy of a body that was small enough to stay in memory).

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    /// Our `Received:` field, first in the stored message.
    trace: Vec<u8>,
    additions: Additions,
    limits: Limits,
    /// The header section while it is being read; `None` once it ended.
    reading_header: Option<Vec<u8>>,
    /// The complete header section (with the blank line that ended it, if any).
    head: Vec<u8>,
    client_bytes: u64,
    defect: Option<Defect>,
    memory: Vec<u8>,
    file: Option<(tokio::fs::File, tempfile::TempPath)>,
    body_bytes: u64,
}

/// A complete message as the client sent it, before anything of ours is added.
pub struct Received {
    /// The client's header section, ending with its blank line (if it had one).
    pub head: Vec<u8>,
    body: Body,
    body_bytes: u64,
    trace: Vec<u8>,
    additions: Additions,
    spool_dir: Option<PathBuf>,
}

impl MessageBuilder {
    pub fn new(trace: Vec<u8>, additions: Additions, limits: Limits) -> Self {
        Self {
            trace,
            additions,
            limits,
            reading_header: Some(Vec::new()),
            head: Vec::new(),
            client_bytes: 0,
            defect: None,
            memory: Vec::new(),
            file: None,
            body_bytes: 0,
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
        if let Some(header) = &mut self.reading_header {
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
                    self.reading_header = None;
                    self.end_header(head);
                    bytes = &bytes[rest_from..];
                }
                None => {
                    if header.len() > self.limits.max_header_bytes {
                        self.defect = Some(Defect::HeadersTooBig);
                        self.reading_header = None;
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

    fn end_header(&mut self, head: Vec<u8>) {
        if scan_header(&head).received >= self.limits.max_received_headers {
            self.defect = Some(Defect::TooManyHops);
            return;
        }
        self.head = head;
    }

    async fn store(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.body_bytes += bytes.len() as u64;
        if let Some((file, _)) = &mut self.file {
            return file.write_all(bytes).await;
        }
        if self.memory.len() + bytes.len() <= self.limits.spool_memory_bytes {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        // Spill: from now on the body goes to a file that is removed when dropped.
        let named = spool_file(self.limits.spool_dir.as_deref())?;
        let (std_file, path) = named.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        file.write_all(&self.memory).await?;
        file.write_all(bytes).await?;
        self.memory = Vec::new();
        self.file = Some((file, path));
        Ok(())
    }

    /// Ends the message: a header section without a blank line is taken as it is.
    pub async fn finish(mut self) -> std::io::Result<Result<Received, Defect>> {
        if let Some(header) = self.reading_header.take()
            && self.defect.is_none()
        {
            self.end_header(header);
        }
        if let Some(defect) = self.defect {
            return Ok(Err(defect));
        }
        let body = match self.file {
            Some((mut file, path)) => {
                file.flush().await?;
                Body::File(path)
            }
            None => Body::Memory(bytes::Bytes::from(self.memory)),
        };
        Ok(Ok(Received {
            head: self.head,
            body,
            body_bytes: self.body_bytes,
            trace: self.trace,
            additions: self.additions,
            spool_dir: self.limits.spool_dir,
        }))
    }
}

fn spool_file(dir: Option<&std::path::Path>) -> std::io::Result<tempfile::NamedTempFile> {
    match dir {
        Some(dir) => tempfile::NamedTempFile::new_in(dir),
        None => tempfile::NamedTempFile::new(),
    }
}

impl Received {
    /// Size of the client's message (header section and body).
    pub fn size(&self) -> u64 {
        self.head.len() as u64 + self.body_bytes
    }

    /// The whole client message in memory, if it is at most `max` bytes (for the checks that
    /// need all of it: DKIM, content tests).
    pub async fn whole(&self, max: u64) -> std::io::Result<Option<Vec<u8>>> {
        if self.size() > max {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.size() as usize);
        out.extend_from_slice(&self.head);
        match &self.body {
            Body::Memory(bytes) => out.extend_from_slice(bytes),
            Body::File(path) => {
                tokio::fs::File::open(path)
                    .await?
                    .read_to_end(&mut out)
                    .await?;
            }
        }
        Ok(Some(out))
    }

    /// What is stored: our `Received:`, `prefix` (more of our headers, each ending in CRLF), the
    /// missing submission
    /// headers, `head` (the client's header section, edited by the caller or as received), then
    /// the body. A body that spilled to a file is copied once into the stored file, hashed on
    /// the way.
    pub async fn assemble(self, prefix: &[u8], head: Option<Vec<u8>>) -> std::io::Result<Finished> {
        let head = head.unwrap_or(self.head);
        let scan = scan_header(&head);
        let mut front = self.trace;
        front.extend_from_slice(prefix);
        let mut additions = self.additions;
        if !scan.has_message_id
            && let Some(id) = additions.message_id.take()
        {
            front.extend_from_slice(format!("Message-ID: {id}\r\n").as_bytes());
        }
        if !scan.has_date
            && let Some(date) = additions.date.take()
        {
            front.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
        }
        front.extend_from_slice(&head);
        let mut hasher = Sha256::new();
        hasher.update(&front);
        match self.body {
            Body::Memory(body) => {
                hasher.update(&body);
                let mut all = front;
                all.extend_from_slice(&body);
                Ok(Finished {
                    sha256: hasher.finalize().into(),
                    size: all.len() as u64,
                    body: Body::Memory(bytes::Bytes::from(all)),
                })
            }
            Body::File(spooled) => {
                let named = spool_file(self.spool_dir.as_deref())?;
                let (std_file, path) = named.into_parts();
                let mut out = tokio::fs::File::from_std(std_file);
                out.write_all(&front).await?;
                let mut size = front.len() as u64;
                let mut input = tokio::fs::File::open(&spooled).await?;
                let mut buffer = vec![0u8; 256 * 1024];
                loop {
                    let n = input.read(&mut buffer).await?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                    out.write_all(&buffer[..n]).await?;
                    size += n as u64;
                }
                out.flush().await?;
                out.sync_data().await?;
                drop(spooled);
                Ok(Finished {
                    sha256: hasher.finalize().into(),
                    size,
                    body: Body::File(path),
                })
            }
        }
    }
}

impl Received {
    /// [`Received::assemble`] with `message` (a whole message: header section and body, e.g.
    /// with attachments replaced by the anti-virus) stored in place of the client's. Its header
    /// section ends at its first blank line (all of it is header without one); the body is kept
    /// in memory, since the replacement already is.
    pub async fn assemble_replaced(
        mut self,
        prefix: &[u8],
        mut message: Vec<u8>,
    ) -> std::io::Result<Finished> {
        let head_len = if message.starts_with(b"\r\n") {
            2
        } else {
            memchr::memmem::find(&message, b"\r\n\r\n").map_or(message.len(), |p| p + 4)
        };
        let body = message.split_off(head_len);
        self.body_bytes = body.len() as u64;
        self.body = Body::Memory(bytes::Bytes::from(body));
        self.assemble(prefix, Some(message)).await
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
        let received = builder.finish().await.unwrap().unwrap();
        let finished = received.assemble(b"", None).await.unwrap();
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
    async fn our_headers_and_an_edited_head_are_stored_for_spilled_and_memory_bodies() {
        for memory in [1 << 20, 10] {
            let mut builder =
                MessageBuilder::new(b"Received: x\r\n".to_vec(), additions(), limits(memory));
            let sent: &[u8] = b"Subject: hi\r\nDate: d\r\nMessage-ID: <m>\r\n\r\nbody line\r\n";
            builder.push(sent).await.unwrap();
            let received = builder.finish().await.unwrap().unwrap();
            let len = sent.len() as u64;
            assert_eq!(received.size(), len);
            assert_eq!(received.whole(len).await.unwrap().unwrap(), sent);
            assert!(received.whole(len - 1).await.unwrap().is_none());
            let finished = received
                .assemble(
                    b"Authentication-Results: h; none\r\n",
                    Some(b"Subject: [SPAM] hi\r\nDate: d\r\nMessage-ID: <m>\r\n\r\n".to_vec()),
                )
                .await
                .unwrap();
            let bytes = match &finished.body {
                Body::Memory(b) => b.to_vec(),
                Body::File(path) => std::fs::read(path).unwrap(),
            };
            let expected: &[u8] = b"Received: x\r\nAuthentication-Results: h; none\r\nSubject: [SPAM] hi\r\nDate: d\r\nMessage-ID: <m>\r\n\r\nbody line\r\n";
            assert_eq!(bytes, expected, "memory limit {memory}");
            assert_eq!(finished.size, expected.len() as u64);
            assert_eq!(finished.sha256, <[u8; 32]>::from(Sha256::digest(expected)));
        }
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
