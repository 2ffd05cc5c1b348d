//! Virus scanning and attachment blocking of received messages (FEATURES.md section 1.12), at
//! the end of DATA, before the message is stored. Off by default (`antivirus_enabled`,
//! `block_attachments`); an IP range with `antivirus` off skips both (AV-09).
//!
//! - The message goes to clamd ([`mc_antispam::clamd`]). A virus either refuses the message
//!   (`antivirus_action = delete`: `554 5.7.0`, so the sender learns of it and nothing is lost
//!   silently) or strips every attachment (`strip`), after which the message is scanned again and
//!   refused if the virus is still there (in a body text, or in a part that could not be cut out).
//! - Attachments whose names end in a blocked extension become `<name>.txt` notices (AV-08).
//!
//! Only messages of at most `antivirus_max_scan_kb` are read (whole, into memory) and acted on;
//! larger ones pass unscanned. A scanner that fails (down, slow, garbage) must not lose mail:
//! the message is accepted unscanned, with a warning and `virus_scans{result="error"}`.
//!
//! Notifications of the sender or recipients (`antivirus_notify_*`, AV-06) are not sent: a
//! refused message is reported to the sender by the 554 itself.

use crate::message::Received;
use crate::metrics::{Metrics, ResultLabels};
use mc_antispam::attachments::{block_extensions, strip_attachments};
use mc_antispam::clamd::{self, ScanVerdict};
use mc_policy::AntispamSettings;
use mc_policy::antispam::VirusAction;
use mc_smtp::{Reply, Status};
use std::time::Duration;

/// What to do with a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvOutcome {
    /// Store it as received.
    Clean,
    /// Store `message` (header section and body) instead; `reason` is for the log.
    Replace { message: Vec<u8>, reason: String },
    /// Refuse it with this reply.
    Reject(Reply),
}

/// The refusal of an infected message.
pub fn virus_reply(signature: &str) -> Reply {
    Reply::new(
        554,
        Some(Status(5, 7, 0)),
        format!("Message contains a virus ({signature})"),
    )
}

/// Scans `received` as it would be stored: with `head` (the client's header section after the
/// anti-spam edits) in place of the client's when given. A `Replace` holds that head too.
pub async fn check(
    metrics: &Metrics,
    settings: &AntispamSettings,
    range_antivirus: bool,
    received: &Received,
    head: Option<&[u8]>,
) -> AvOutcome {
    if !settings.antivirus_enabled && !settings.block_attachments {
        return AvOutcome::Clean;
    }
    if !range_antivirus {
        count(metrics, settings, "skipped");
        return AvOutcome::Clean;
    }
    let max = settings.antivirus_max_scan_kb.saturating_mul(1024);
    let mut message = match received.whole(max).await {
        Ok(Some(message)) => message,
        Ok(None) => {
            count(metrics, settings, "skipped");
            return AvOutcome::Clean;
        }
        Err(error) => {
            tracing::warn!(%error, "message not read for virus scanning; accepted unscanned");
            count(metrics, settings, "error");
            return AvOutcome::Clean;
        }
    };
    if let Some(head) = head {
        let client_head = received.head.len().min(message.len());
        message.splice(..client_head, head.iter().copied());
    }
    scan(metrics, settings, true, &message).await
}

/// The decision for `message` (header section and body, as it would be stored).
pub async fn scan(
    metrics: &Metrics,
    settings: &AntispamSettings,
    range_antivirus: bool,
    message: &[u8],
) -> AvOutcome {
    if !range_antivirus {
        count(metrics, settings, "skipped");
        return AvOutcome::Clean;
    }
    let mut reasons = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    if settings.antivirus_enabled {
        if message.len() as u64 > settings.antivirus_max_scan_kb.saturating_mul(1024) {
            count(metrics, settings, "skipped");
        } else {
            match clamd_scan(settings, message).await {
                Ok(ScanVerdict::Clean) => count(metrics, settings, "clean"),
                Ok(ScanVerdict::Infected(signature)) => {
                    count(metrics, settings, "infected");
                    match on_virus(settings, message, &signature).await {
                        Ok(stripped) => {
                            reasons.push(format!("virus {signature}: attachments removed"));
                            current = Some(stripped);
                        }
                        Err(reply) => return AvOutcome::Reject(reply),
                    }
                }
                Err(error) => {
                    count(metrics, settings, "error");
                    tracing::warn!(%error, "virus scan failed; message accepted unscanned");
                }
            }
        }
    }
    if settings.block_attachments {
        let input = current.as_deref().unwrap_or(message);
        let blocked = block_extensions(input, &settings.blocked_extensions);
        if blocked.changed() {
            metrics
                .attachments_blocked
                .inc_by(blocked.removed.len() as u64);
            reasons.push(format!(
                "blocked attachments: {}",
                blocked.removed.join(", ")
            ));
            current = Some(blocked.message);
        }
    }
    match current {
        Some(message) => AvOutcome::Replace {
            message,
            reason: reasons.join("; "),
        },
        None => AvOutcome::Clean,
    }
}

/// The infected `message` after the configured action: stripped (and found clean again), or the
/// reply refusing it.
async fn on_virus(
    settings: &AntispamSettings,
    message: &[u8],
    signature: &str,
) -> Result<Vec<u8>, Reply> {
    if settings.antivirus_action == VirusAction::Delete {
        tracing::info!(%signature, "virus found; message refused");
        return Err(virus_reply(signature));
    }
    let stripped = strip_attachments(message);
    if !stripped.changed() {
        tracing::info!(%signature, "virus found outside any attachment; message refused");
        return Err(virus_reply(signature));
    }
    match clamd_scan(settings, &stripped.message).await {
        Ok(ScanVerdict::Clean) => {
            tracing::info!(%signature, removed = ?stripped.removed, "virus found; attachments removed");
            Ok(stripped.message)
        }
        Ok(ScanVerdict::Infected(left)) => {
            tracing::info!(%signature, %left, "virus left after removing the attachments; message refused");
            Err(virus_reply(&left))
        }
        Err(error) => {
            // The attachments are gone; what is left was not scanned again, as with any
            // scanner failure.
            tracing::warn!(%error, %signature, "rescan after removing the attachments failed");
            Ok(stripped.message)
        }
    }
}

async fn clamd_scan(
    settings: &AntispamSettings,
    message: &[u8],
) -> Result<ScanVerdict, clamd::ClamdError> {
    clamd::scan(
        &settings.clamd_host,
        settings.clamd_port,
        message,
        Duration::from_secs(u64::from(settings.clamd_timeout_secs.max(1))),
    )
    .await
}

/// `virus_scans` counts the messages seen while virus scanning is on.
fn count(metrics: &Metrics, settings: &AntispamSettings, result: &'static str) {
    if settings.antivirus_enabled {
        metrics
            .virus_scans
            .get_or_create(&ResultLabels { result })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Additions, Body, Limits, MessageBuilder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const MARKER: &[u8] = b"VIRUS-MARKER";

    /// A clamd stand-in: finds [`MARKER`] in the raw stream (the real clamd, driven by the tests
    /// in tests/tests/smtp_antivirus.rs and below, decodes MIME itself).
    async fn fake_clamd() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut command = [0u8; 10];
                    socket.read_exact(&mut command).await.unwrap();
                    assert_eq!(&command, b"zINSTREAM\0");
                    let mut data = Vec::new();
                    loop {
                        let length = socket.read_u32().await.unwrap() as usize;
                        if length == 0 {
                            break;
                        }
                        let mut chunk = vec![0u8; length];
                        socket.read_exact(&mut chunk).await.unwrap();
                        data.extend_from_slice(&chunk);
                    }
                    let answer: &[u8] = if memchr::memmem::find(&data, MARKER).is_some() {
                        b"stream: Test.Marker FOUND\0"
                    } else {
                        b"stream: OK\0"
                    };
                    socket.write_all(answer).await.unwrap();
                });
            }
        });
        port
    }

    fn settings(port: u16, action: VirusAction) -> AntispamSettings {
        AntispamSettings {
            antivirus_enabled: true,
            clamd_host: "127.0.0.1".into(),
            clamd_port: port,
            clamd_timeout_secs: 5,
            antivirus_action: action,
            ..AntispamSettings::default()
        }
    }

    fn metrics() -> Metrics {
        Metrics::register(&mut prometheus_client::registry::Registry::default())
    }

    fn scans(metrics: &Metrics, result: &'static str) -> u64 {
        metrics
            .virus_scans
            .get_or_create(&ResultLabels { result })
            .get()
    }

    fn with_attachment(name: &str, content: &[u8]) -> Vec<u8> {
        let mut m = b"From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
hello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\""
            .to_vec();
        m.extend_from_slice(name.as_bytes());
        m.extend_from_slice(b"\"\r\n\r\n");
        m.extend_from_slice(content);
        m.extend_from_slice(b"\r\n--b--\r\n");
        m
    }

    #[tokio::test]
    async fn clean_mail_is_clean_and_counted() {
        let m = metrics();
        let s = settings(fake_clamd().await, VirusAction::Delete);
        let outcome = scan(&m, &s, true, b"Subject: hi\r\n\r\nhello\r\n").await;
        assert_eq!(outcome, AvOutcome::Clean);
        assert_eq!(scans(&m, "clean"), 1);
    }

    #[tokio::test]
    async fn delete_refuses_an_infected_message_with_554() {
        let m = metrics();
        let s = settings(fake_clamd().await, VirusAction::Delete);
        let outcome = scan(&m, &s, true, &with_attachment("a.bin", MARKER)).await;
        let AvOutcome::Reject(reply) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(
            reply.to_bytes(),
            b"554 5.7.0 Message contains a virus (Test.Marker)\r\n"
        );
        assert_eq!(scans(&m, "infected"), 1);
    }

    #[tokio::test]
    async fn strip_replaces_the_attachment_and_refuses_a_virus_in_the_body() {
        let m = metrics();
        let s = settings(fake_clamd().await, VirusAction::Strip);
        let outcome = scan(&m, &s, true, &with_attachment("a.bin", MARKER)).await;
        let AvOutcome::Replace { message, reason } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(memchr::memmem::find(&message, MARKER).is_none());
        assert!(memchr::memmem::find(&message, b"Virus found:").is_some());
        assert!(message.starts_with(b"From: a@example.com\r\nSubject: s\r\n"));
        assert_eq!(reason, "virus Test.Marker: attachments removed");

        let body = b"Subject: s\r\n\r\nVIRUS-MARKER in the text\r\n";
        let outcome = scan(&m, &s, true, body).await;
        assert!(matches!(outcome, AvOutcome::Reject(r) if r.code == 554));
        assert_eq!(scans(&m, "infected"), 2);
    }

    #[tokio::test]
    async fn a_failing_scanner_accepts_unscanned_and_counts_an_error() {
        let m = metrics();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let s = settings(port, VirusAction::Delete);
        let outcome = scan(&m, &s, true, &with_attachment("a.bin", MARKER)).await;
        assert_eq!(outcome, AvOutcome::Clean);
        assert_eq!(scans(&m, "error"), 1);
    }

    #[tokio::test]
    async fn ranges_without_antivirus_large_messages_and_the_default_skip() {
        let m = metrics();
        let s = settings(fake_clamd().await, VirusAction::Delete);
        let infected = with_attachment("a.bin", MARKER);
        assert_eq!(scan(&m, &s, false, &infected).await, AvOutcome::Clean);
        let small = AntispamSettings {
            antivirus_max_scan_kb: 0,
            ..s.clone()
        };
        assert_eq!(scan(&m, &small, true, &infected).await, AvOutcome::Clean);
        assert_eq!(scans(&m, "skipped"), 2);
        // Off by default: nothing is scanned or counted.
        let off = AntispamSettings::default();
        assert!(!off.antivirus_enabled && !off.block_attachments);
        assert_eq!(
            check(&m, &off, true, &received(&infected).await, None).await,
            AvOutcome::Clean
        );
        assert_eq!(scans(&m, "skipped"), 2);
    }

    #[tokio::test]
    async fn blocked_extensions_are_replaced_without_a_scanner() {
        let m = metrics();
        let s = AntispamSettings {
            block_attachments: true,
            ..AntispamSettings::default()
        };
        let outcome = scan(&m, &s, true, &with_attachment("Setup.EXE", b"MZ")).await;
        let AvOutcome::Replace { message, reason } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(memchr::memmem::find(&message, b"filename=\"Setup.EXE.txt\"").is_some());
        assert_eq!(reason, "blocked attachments: Setup.EXE");
        assert_eq!(m.attachments_blocked.get(), 1);
        assert_eq!(
            scan(&m, &s, true, &with_attachment("a.pdf", b"%PDF")).await,
            AvOutcome::Clean
        );
    }

    async fn received(message: &[u8]) -> Received {
        let limits = Limits {
            max_message_bytes: 1 << 20,
            max_header_bytes: 64 * 1024,
            max_received_headers: 50,
            spool_memory_bytes: 16,
            spool_dir: None,
        };
        let additions = Additions {
            message_id: None,
            date: None,
        };
        let mut builder = MessageBuilder::new(b"Received: x\r\n".to_vec(), additions, limits);
        builder.push(message).await.unwrap();
        builder.finish().await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn check_scans_the_edited_head_and_the_replacement_is_stored_with_our_headers() {
        let m = metrics();
        let s = settings(fake_clamd().await, VirusAction::Strip);
        let infected = with_attachment("a.bin", MARKER);
        // The body spilled to a file (spool_memory_bytes = 16): whole() reads it back.
        let received = received(&infected).await;
        let edited = b"From: a@example.com\r\nSubject: [SPAM] s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n";
        let outcome = check(&m, &s, true, &received, Some(edited)).await;
        let AvOutcome::Replace { message, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(message.starts_with(edited));
        let finished = received
            .assemble_replaced(b"X-Ours: 1\r\n", message.clone())
            .await
            .unwrap();
        let Body::Memory(stored) = &finished.body else {
            panic!("a replaced message is kept in memory");
        };
        let mut expected = b"Received: x\r\nX-Ours: 1\r\n".to_vec();
        expected.extend_from_slice(&message);
        assert_eq!(stored.as_ref(), expected.as_slice());
        assert_eq!(finished.size, expected.len() as u64);
        use sha2::Digest;
        assert_eq!(
            finished.sha256,
            <[u8; 32]>::from(sha2::Sha256::digest(&expected))
        );
    }

    /// Against the real clamd of `ops/test` (MAILCLUSTER_TEST_CLAMD), when there is one.
    #[tokio::test]
    async fn real_clamd_finds_eicar_and_the_stripped_message_passes() {
        let Ok(address) = std::env::var("MAILCLUSTER_TEST_CLAMD") else {
            eprintln!("MAILCLUSTER_TEST_CLAMD not set (ops/test sets it): skipped");
            return;
        };
        let (host, port) = address.rsplit_once(':').unwrap();
        let s = AntispamSettings {
            clamd_host: host.into(),
            ..settings(port.parse().unwrap(), VirusAction::Strip)
        };
        // EICAR in two pieces, so that this file is not itself a test virus.
        let eicar = [
            &b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"[..],
            b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
        ]
        .concat();
        let m = metrics();
        let outcome = scan(&m, &s, true, &with_attachment("eicar.com", &eicar)).await;
        let AvOutcome::Replace { message, reason } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(reason.contains("Eicar"), "{reason}");
        assert!(memchr::memmem::find(&message, &eicar).is_none());
        assert_eq!(scans(&m, "infected"), 1);
        let delete = AntispamSettings {
            antivirus_action: VirusAction::Delete,
            ..s.clone()
        };
        let outcome = scan(&m, &delete, true, &with_attachment("eicar.com", &eicar)).await;
        assert!(matches!(outcome, AvOutcome::Reject(r) if r.code == 554));
        assert_eq!(
            scan(&m, &s, true, &with_attachment("a.txt", b"harmless")).await,
            AvOutcome::Clean
        );
    }
}
