//! Byte transport of one session: a boxed stream (plain TCP or TLS) with an input buffer, line
//! framing with a length bound, exact-length reads for BDAT, and output batching so that a
//! pipelined group of commands gets its replies in one write. Every wait has a deadline.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub enum ReadError {
    /// No input within the command timeout.
    Idle,
    /// The whole-session limit passed.
    SessionLimit,
    /// The service is shutting down.
    Shutdown,
    /// A line longer than the limit (the rest of it up to LF was discarded).
    TooLong,
    Closed,
    Io(std::io::Error),
}

pub struct Connection {
    pub stream: BoxStream,
    pub input: Vec<u8>,
    /// Start of unconsumed input in `input`.
    pos: usize,
    output: Vec<u8>,
    command_timeout: Duration,
    session_deadline: Instant,
    shutdown: CancellationToken,
}

impl Connection {
    pub fn new(
        stream: BoxStream,
        command_timeout: Duration,
        session_deadline: Instant,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            stream,
            input: Vec::with_capacity(4096),
            pos: 0,
            output: Vec::with_capacity(1024),
            command_timeout,
            session_deadline,
            shutdown,
        }
    }

    pub fn queue_reply(&mut self, reply: &mc_smtp::Reply) {
        reply.write_to(&mut self.output);
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await?;
            self.output.clear();
        }
        Ok(())
    }

    /// Unconsumed input bytes.
    pub fn buffered(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    pub fn consume(&mut self, count: usize) {
        self.pos += count;
        if self.pos >= self.input.len() {
            self.input.clear();
            self.pos = 0;
        }
    }

    /// Drops buffered input (after STARTTLS: plaintext sent before the handshake must never be
    /// read as if it came over TLS).
    pub fn discard_buffered(&mut self) -> usize {
        let dropped = self.input.len() - self.pos;
        self.input.clear();
        self.pos = 0;
        dropped
    }

    /// Reads more input, flushing pending replies first (the client may be waiting for them).
    pub async fn fill(&mut self) -> Result<(), ReadError> {
        self.flush().await.map_err(ReadError::Io)?;
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        let now = Instant::now();
        if now >= self.session_deadline {
            return Err(ReadError::SessionLimit);
        }
        let idle_deadline = now + self.command_timeout;
        let deadline = idle_deadline.min(self.session_deadline);
        let len = self.input.len();
        self.input.resize(len + READ_CHUNK, 0);
        let result = tokio::select! {
            result = tokio::time::timeout_at(deadline, self.stream.read(&mut self.input[len..])) => result,
            () = self.shutdown.cancelled() => {
                self.input.truncate(len);
                return Err(ReadError::Shutdown);
            }
        };
        match result {
            Err(_) => {
                self.input.truncate(len);
                if deadline == self.session_deadline && deadline < idle_deadline {
                    Err(ReadError::SessionLimit)
                } else {
                    Err(ReadError::Idle)
                }
            }
            Ok(Ok(0)) => {
                self.input.truncate(len);
                Err(ReadError::Closed)
            }
            Ok(Ok(read)) => {
                self.input.truncate(len + read);
                Ok(())
            }
            Ok(Err(error)) => {
                self.input.truncate(len);
                Err(ReadError::Io(error))
            }
        }
    }

    /// The next line including its LF, at most `max` bytes. A longer line is consumed up to its
    /// LF and reported as [`ReadError::TooLong`].
    pub async fn read_line(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        let mut discarding = false;
        loop {
            let buffered = self.buffered();
            if let Some(lf) = memchr::memchr(b'\n', buffered) {
                let line = buffered[..=lf].to_vec();
                self.consume(lf + 1);
                if discarding || line.len() > max {
                    return Err(ReadError::TooLong);
                }
                return Ok(line);
            }
            if buffered.len() > max {
                // Keep nothing of an overlong line; wait for its end.
                let len = buffered.len();
                self.consume(len);
                discarding = true;
            }
            self.fill().await?;
        }
    }

    /// Up to `remaining` bytes of input (BDAT chunks), reading if nothing is buffered.
    pub async fn read_some(&mut self, remaining: u64) -> Result<Vec<u8>, ReadError> {
        if self.buffered().is_empty() {
            self.fill().await?;
        }
        let take = (self.buffered().len() as u64).min(remaining) as usize;
        let chunk = self.buffered()[..take].to_vec();
        self.consume(take);
        Ok(chunk)
    }

    /// Reads and drops exactly `count` bytes.
    pub async fn skip(&mut self, mut count: u64) -> Result<(), ReadError> {
        while count > 0 {
            count -= self.read_some(count).await?.len() as u64;
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.stream.shutdown()).await;
    }
}
