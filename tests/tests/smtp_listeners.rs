//! smtp-ingress listeners end to end: an IPv6 listener, and the PROXY protocol (the client
//! address a trusted load balancer reports is the one policy and the queue see; an untrusted
//! peer cannot choose its address; a trusted peer must send the header).

use mc_tests::TestDatabase;
use mc_tests::smtp::{IngressProcess, RawClient, queued_id, seed_directory};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends one message to alice on an open session; returns the queue id.
fn send_to_alice(client: &mut RawClient) -> String {
    assert_eq!(client.cmd("EHLO client.test").code, 250);
    assert_eq!(client.cmd("MAIL FROM:<sender@remote.test>").code, 250);
    assert_eq!(client.cmd("RCPT TO:<alice@example.test>").code, 250);
    assert_eq!(client.cmd("DATA").code, 354);
    let reply = client.cmd("Subject: listeners\r\n\r\nhello\r\n.");
    assert_eq!(reply.code, 250, "{reply:?}");
    queued_id(&reply.line()).expect("a queue id")
}

/// The client address the queue recorded for entry `id`.
async fn client_ip(db: &TestDatabase, id: &str) -> String {
    sqlx::query_scalar("SELECT host(client_ip) FROM queue_entries WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .expect("the queue entry")
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_listener_accepts_mail_from_the_ipv6_loopback() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let port = mc_tests::free_port();
    let listen = format!("[\"[::1]:{port}\"]");
    let ingress = IngressProcess::start(&db, &[("MAILCLUSTER_SMTP__MX_LISTEN", &listen)]);
    let address: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let (mut client, banner) = RawClient::connect_to(address, b"");
    assert_eq!(banner.code, 220);
    let id = send_to_alice(&mut client);
    assert_eq!(client_ip(&db, &id).await, "::1");
    drop(ingress);
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_header_from_a_trusted_balancer_sets_the_client_address() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(
        &db,
        &[(
            "MAILCLUSTER_SMTP__PROXY_PROTOCOL_TRUSTED",
            "[\"127.0.0.1/32\"]",
        )],
    );
    let address = SocketAddr::from(([127, 0, 0, 1], ingress.mx_port));
    let header = b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 25\r\n";
    let (mut client, banner) = RawClient::connect_to(address, header);
    assert_eq!(banner.code, 220);
    let id = send_to_alice(&mut client);
    assert_eq!(client_ip(&db, &id).await, "192.0.2.10");
    let entries = mc_tests::smtp::queued(&db).await;
    let body = String::from_utf8(ingress.body(&entries[0]).await).unwrap();
    assert!(
        body.starts_with("Received: from client.test ([192.0.2.10])"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_peer_without_a_proxy_header_gets_no_session() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    let ingress = IngressProcess::start(
        &db,
        &[(
            "MAILCLUSTER_SMTP__PROXY_PROTOCOL_TRUSTED",
            "[\"127.0.0.1/32\"]",
        )],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", ingress.mx_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"EHLO client.test\r\n").unwrap();
    let mut received = Vec::new();
    // The server closes without a banner (or resets); either way no SMTP reply arrives.
    let _ = stream.read_to_end(&mut received);
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_peer_cannot_choose_its_address_with_a_proxy_header() {
    let db = TestDatabase::migrated().await;
    seed_directory(&db).await;
    // Only a network the test client is not in may send PROXY headers.
    let ingress = IngressProcess::start(
        &db,
        &[(
            "MAILCLUSTER_SMTP__PROXY_PROTOCOL_TRUSTED",
            "[\"10.0.0.0/8\"]",
        )],
    );
    let (mut client, banner) = RawClient::connect(ingress.mx_port);
    assert_eq!(banner.code, 220);
    let refused = client.cmd("PROXY TCP4 192.0.2.10 127.0.0.1 40000 25");
    assert_eq!(refused.code, 500, "{refused:?}");
    let id = send_to_alice(&mut client);
    assert_eq!(client_ip(&db, &id).await, "127.0.0.1");
}
