//! The anti-spam side of the SMTP ingress, apart from its session plumbing:
//!
//! - [`auth`]: sender authentication over our resolver: SPF (HELO and MAIL FROM), DKIM, ARC and
//!   DMARC, and the one `Authentication-Results` header we prepend.
//! - [`spf`]: our RFC 7208 `check_host()` (record syntax, mechanisms, macros, lookup limits).
//! - [`dnsbl`]: DNS block lists for the client address and (SURBL) for the domains of links.
//! - [`links`]: the link domains of a message body.
//! - [`verdict`]: the tests that fired, their scores and the headers of marked mail.
//! - [`greylist`]: the triplet decision, kept in Redis.
//! - [`spamd`]: a SpamAssassin (spamd) client.
//! - [`clamd`]: a ClamAV (clamd) client.
//! - [`attachments`]: attachments replaced by notices (virus stripping, blocked file names).
//! - [`autoban`]: failed logins counted in Redis, bans written to PostgreSQL.
//! - [`resolver`]: the hickory resolver built from configured servers (shared with delivery).
#![forbid(unsafe_code)]

pub mod attachments;
pub mod auth;
pub mod autoban;
pub mod clamd;
pub mod dnsbl;
pub mod greylist;
pub mod headers;
pub mod links;
pub mod resolver;
pub mod spamd;
pub mod spf;
pub mod verdict;

/// Helpers of this crate's unit tests.
#[cfg(test)]
pub(crate) mod test_servers {
    /// A server on a free loopback port that accepts one connection and never says a word (for
    /// 30 s): a client's deadline must end the wait. Keep the handle alive while testing.
    pub(crate) async fn silent() -> (u16, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            drop(socket);
        });
        (port, hold)
    }
}
