//! Auto-ban across replicas and protocols: wrong passwords over IMAP on access replica A, from
//! 127.0.0.2, ban that address on every replica; SMTP (the ingress) and POP3 (replica B) refuse
//! it at connect while 127.0.0.1 is still served. The ban is an expiring IP range in
//! PostgreSQL: it lapses when its time is over (moved back here, not waited for), and
//! `mailctl ban remove` lifts it.

use mc_tests::access::AccessProcess;
use mc_tests::smtp::{IngressProcess, PASSWORD, seed_directory};
use mc_tests::{AdminProcess, TestDatabase};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A TCP connection from `source` (a loopback address other than 127.0.0.1) to `port`.
fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind the source address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// The first line the server sends, or "" when it closes without a word.
fn greeting(source: [u8; 4], port: u16) -> String {
    let stream = connect_from(source, port);
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line.trim_end().to_string()
}

/// IMAP LOGINs with a wrong password from `source`; the tagged replies.
fn imap_bad_logins(source: [u8; 4], port: u16, attempts: usize) -> Vec<String> {
    let stream = connect_from(source, port);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    assert!(line.starts_with("* OK"), "{line}");
    let mut replies = Vec::new();
    for n in 0..attempts {
        write!(writer, "a{n} LOGIN alice@example.test \"wrong {n}\"\r\n").expect("send");
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return replies;
            }
            if line.starts_with(&format!("a{n} ")) {
                replies.push(line.trim_end().to_string());
                break;
            }
        }
    }
    replies
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_imap_logins_on_one_replica_ban_the_address_for_smtp_and_pop3_on_others() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let s3 = mc_testkit::unique_prefix("ban");
    let redis_prefix = mc_testkit::unique_prefix("cluster");
    let plaintext = [("MAILCLUSTER_ACCESS__ALLOW_PLAINTEXT_AUTH", "true")];
    let replica_a = AccessProcess::start_shared(&db, &s3, &redis_prefix, &plaintext);
    let replica_b = AccessProcess::start_shared(&db, &s3, &redis_prefix, &plaintext);
    let ingress = IngressProcess::start(
        &db,
        &[
            ("MAILCLUSTER_REDIS__KEY_PREFIX", &redis_prefix),
            ("MAILCLUSTER_SMTP__ALLOW_PLAINTEXT_AUTH", "true"),
        ],
    );
    let banned = [127, 0, 0, 2];
    let other = [127, 0, 0, 1];

    // Before: 127.0.0.2 is an ordinary Internet client everywhere.
    assert!(greeting(banned, replica_b.pop3_port).starts_with("+OK"));
    assert!(greeting(banned, ingress.mx_port).starts_with("220 "));

    // Three wrong passwords (the default limit) over IMAP on replica A.
    let replies = imap_bad_logins(banned, replica_a.imap_port, 3);
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|r| r.contains("NO [AUTHENTICATIONFAILED]")),
        "{replies:?}"
    );

    // Recorded durably: one expiring range at priority 20, every protocol off.
    let bans = mc_policy::Bans::new(db.pool.clone())
        .list(time::OffsetDateTime::now_utc())
        .await
        .expect("bans");
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0].ip.to_string(), "127.0.0.2");
    assert_eq!(bans[0].priority, 20);
    assert!(
        bans[0].name.starts_with("Auto-ban: alice@example.test "),
        "{}",
        bans[0].name
    );
    let minutes =
        (bans[0].expires_at.expect("expiry") - time::OffsetDateTime::now_utc()).whole_minutes();
    assert!(
        (58..=60).contains(&minutes),
        "banned for the default hour: {minutes}"
    );

    // Refused at connect on the other replica and on the ingress; IMAP on A too.
    assert_eq!(greeting(banned, replica_b.pop3_port), "-ERR Access denied");
    assert_eq!(greeting(banned, replica_b.imap_port), "* BYE Access denied");
    assert_eq!(greeting(banned, replica_a.imap_port), "* BYE Access denied");
    assert_eq!(greeting(banned, ingress.mx_port), "554 5.7.1 Access denied");
    // Other addresses are served as before.
    assert!(greeting(other, replica_b.pop3_port).starts_with("+OK"));
    assert!(greeting(other, ingress.mx_port).starts_with("220 "));

    // The ban expires: its end moved into the past, the address is served again.
    sqlx::query("UPDATE ip_ranges SET expires_at = now() - interval '1 second' WHERE ban")
        .execute(&db.pool)
        .await
        .expect("expire the ban");
    assert!(greeting(banned, replica_b.pop3_port).starts_with("+OK"));
    assert!(greeting(banned, ingress.mx_port).starts_with("220 "));

    // The count started afresh with the ban: two wrong passwords over SMTP AUTH on the ingress
    // and one over IMAP on replica B (one count for all protocols) ban it again...
    for n in 0..2 {
        let stream = connect_from(banned, ingress.mx_port);
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line).expect("banner");
        write!(writer, "EHLO client.example.net\r\n").expect("send");
        loop {
            line.clear();
            reader.read_line(&mut line).expect("ehlo");
            if line.starts_with("250 ") {
                break;
            }
        }
        use base64::Engine;
        let plain = base64::engine::general_purpose::STANDARD
            .encode(format!("\0alice@example.test\0wrong {n}"));
        write!(writer, "AUTH PLAIN {plain}\r\n").expect("send");
        line.clear();
        reader.read_line(&mut line).expect("auth reply");
        assert!(line.starts_with("535 5.7.8"), "{line}");
    }
    assert!(
        greeting(banned, replica_a.pop3_port).starts_with("+OK"),
        "two failures: no ban yet"
    );
    let replies = imap_bad_logins(banned, replica_b.imap_port, 1);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(greeting(banned, replica_a.pop3_port), "-ERR Access denied");
    assert_eq!(greeting(banned, ingress.mx_port), "554 5.7.1 Access denied");

    // ...and the administrator lifts it.
    let admin = AdminProcess::start_with(
        &db.url,
        &[
            ("MAILCLUSTER_REDIS__URL", &mc_testkit::redis_url()),
            ("MAILCLUSTER_REDIS__KEY_PREFIX", &redis_prefix),
        ],
    );
    let out = admin.mailctl(&["ban", "remove", "127.0.0.2"]);
    assert!(out.status.success(), "{}", mc_tests::stderr(&out));
    assert!(greeting(banned, replica_a.pop3_port).starts_with("+OK"));
    assert!(greeting(banned, ingress.mx_port).starts_with("220 "));
    // A correct password works from there again.
    let stream = connect_from(banned, replica_b.imap_port);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    write!(writer, "a1 LOGIN alice@example.test \"{PASSWORD}\"\r\n").expect("send");
    loop {
        line.clear();
        reader.read_line(&mut line).expect("reply");
        if line.starts_with("a1 ") {
            break;
        }
    }
    assert!(line.starts_with("a1 OK"), "{line}");
}
