//! Byte transport of one protocol session (SMTP, IMAP, POP3): a boxed stream (plain TCP or TLS)
//! with an input buffer, line framing with a length bound, exact-length reads, and output
//! batching so that a pipelined group of commands gets its replies in one write. Every wait has
//! a deadline. Also the connection slots every listener takes ([`Limits`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub type BoxStream = Box<dyn Stream>;

/// How a server-side TLS handshake ended (the `result` label of the services'
/// `…_tls_handshakes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Tls13,
    Tls12,
    /// The client sent something that is no acceptable ClientHello, or closed.
    Failed,
    /// Nothing complete within the handshake deadline.
    TimedOut,
}

impl Handshake {
    pub fn as_str(self) -> &'static str {
        match self {
            Handshake::Tls13 => "tls1.3",
            Handshake::Tls12 => "tls1.2",
            Handshake::Failed => "failed",
            Handshake::TimedOut => "timeout",
        }
    }

    pub fn is_established(self) -> bool {
        matches!(self, Handshake::Tls13 | Handshake::Tls12)
    }
}

/// The server side of a TLS handshake on `stream`, within `limit`.
pub async fn accept_tls<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: S,
    limit: Duration,
) -> (Option<tokio_rustls::server::TlsStream<S>>, Handshake) {
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let handshake = match stream.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_2) => Handshake::Tls12,
                // The server configuration allows TLS 1.2 and 1.3 only.
                _ => Handshake::Tls13,
            };
            (Some(stream), handshake)
        }
        Ok(Err(_)) => (None, Handshake::Failed),
        Err(_) => (None, Handshake::TimedOut),
    }
}

/// Most bytes read at once while data streams in (a message, a literal).
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read at once by a session waiting for its next command, and what its buffers shrink
/// back to: thousands of idle sessions (IMAP IDLE) must not each keep 64 KiB.
const IDLE_READ: usize = 4 * 1024;
/// A buffer larger than this is given back once it is empty.
const SHRINK_ABOVE: usize = 16 * 1024;

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
    /// Set while a message's data is being received: shutdown then waits up to
    /// `MESSAGE_DRAIN` for the client to finish it (its 250 comes after), instead of cutting it.
    in_message: bool,
    /// When a message still being received is cut off, once shutdown was seen during it.
    drain_until: Option<Instant>,
    /// The last read filled all the room it had: data is streaming in, read in large chunks.
    streaming: bool,
}

/// How long a message in the middle of its data may still arrive after shutdown is requested
/// (well inside a service's shutdown grace, so the final reply still goes out).
pub const MESSAGE_DRAIN: Duration = Duration::from_secs(5);

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
            in_message: false,
            drain_until: None,
            streaming: false,
        }
    }

    /// Changes how long a read may wait (IMAP: short before login, long after).
    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
    }

    /// Marks the start or end of a message's data (see `MESSAGE_DRAIN`).
    pub fn set_in_message(&mut self, in_message: bool) {
        self.in_message = in_message;
    }

    /// Bytes to send at the next flush.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// The output buffer, for writers that serialise in place.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// Bytes queued but not yet sent.
    pub fn pending_output(&self) -> usize {
        self.output.len()
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await?;
            self.output.clear();
            if self.output.capacity() > SHRINK_ABOVE {
                self.output.shrink_to(IDLE_READ);
            }
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

    /// Upgrades to TLS after STARTTLS/STLS: sends the queued go-ahead reply, drops whatever
    /// the client pipelined after the command in plaintext (never executed inside the TLS
    /// session: the CVE-2011-0411 class), and runs the handshake within `limit`. When it is not
    /// established, the connection must be closed.
    pub async fn start_tls(
        &mut self,
        acceptor: &tokio_rustls::TlsAcceptor,
        limit: Duration,
    ) -> Handshake {
        if self.flush().await.is_err() {
            return Handshake::Failed;
        }
        let dropped = self.discard_buffered();
        if dropped > 0 {
            tracing::info!(dropped, "discarded plaintext pipelined after STARTTLS");
        }
        let placeholder: BoxStream = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.stream, placeholder);
        let (stream, handshake) = accept_tls(acceptor, plain, limit).await;
        if let Some(stream) = stream {
            self.stream = Box::new(stream);
        }
        handshake
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
        // Shutdown ends the wait at once, except during a message's data: then the client has
        // until `drain_until` to finish it.
        let stop_at = if self.in_message && self.shutdown.is_cancelled() {
            Some(*self.drain_until.get_or_insert(now + MESSAGE_DRAIN))
        } else {
            None
        };
        // Already shutting down between commands: stop before reading, whatever the client
        // already sent (a `select!` between a ready read and a ready stop would pick at random).
        if stop_at.is_none() && self.shutdown.is_cancelled() {
            return Err(ReadError::Shutdown);
        }
        let in_message = self.in_message;
        let shutdown = &self.shutdown;
        let stop = async move {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => {
                    shutdown.cancelled().await;
                    if in_message {
                        tokio::time::sleep(MESSAGE_DRAIN).await;
                    }
                }
            }
        };
        // `read_buf` fills spare capacity and only then grows the length, so a read cancelled
        // by a competing branch of a `select!` (IMAP IDLE) leaves the buffer as it was.
        if self.input.is_empty() && self.input.capacity() > SHRINK_ABOVE {
            self.input.shrink_to(IDLE_READ);
        }
        let room = if self.streaming {
            READ_CHUNK
        } else {
            IDLE_READ
        };
        self.input.reserve(room);
        let spare = self.input.capacity() - self.input.len();
        let result = tokio::select! {
            biased;
            () = stop => return Err(ReadError::Shutdown),
            result = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.input)) => result,
        };
        match result {
            Err(_) => {
                if deadline == self.session_deadline && deadline < idle_deadline {
                    Err(ReadError::SessionLimit)
                } else {
                    Err(ReadError::Idle)
                }
            }
            Ok(Ok(0)) => Err(ReadError::Closed),
            Ok(Ok(read)) => {
                self.streaming = read >= spare;
                Ok(())
            }
            Ok(Err(error)) => Err(ReadError::Io(error)),
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

/// Connection slots: a global semaphore and a count per client address.
pub struct Limits {
    total: Option<Arc<Semaphore>>,
    per_ip_max: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

pub struct Slot {
    limits: Arc<Limits>,
    ip: IpAddr,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.limits.per_ip.lock()
            && let Some(count) = map.get_mut(&self.ip)
        {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    pub fn new(max_total: usize, per_ip_max: usize) -> Arc<Self> {
        Arc::new(Self {
            total: (max_total > 0).then(|| Arc::new(Semaphore::new(max_total))),
            per_ip_max,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let permit = match &self.total {
            Some(semaphore) => Some(semaphore.clone().try_acquire_owned().map_err(|_| "total")?),
            None => None,
        };
        let mut map = self.per_ip.lock().map_err(|_| "total")?;
        let count = map.entry(ip).or_insert(0);
        if self.per_ip_max > 0 && *count >= self.per_ip_max {
            return Err("per_ip");
        }
        *count += 1;
        Ok(Slot {
            limits: self.clone(),
            ip,
            _permit: permit,
        })
    }
}

/// Accepts connections until `shutdown`, each handled as its own task in `tasks` (so shutdown
/// can wait for them). Accept errors (EMFILE and friends) back off instead of spinning.
pub async fn accept_loop<F, Fut>(
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
    mut handle: F,
) where
    F: FnMut(tokio::net::TcpStream, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(handle(stream, peer));
    }
}
