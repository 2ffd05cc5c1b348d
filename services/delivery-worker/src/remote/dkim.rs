//! DKIM signing of outbound mail (RFC 6376, rsa-sha256, relaxed/relaxed) with the key of the
//! `From:` domain, or else of the envelope sender's domain, when that domain has one
//! (`mailctl dkim generate`).

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use mc_policy::{DeliverySettings, DkimSigningKey};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Header fields signed when present (RFC 6376 5.4.1's recommendations).
const SIGNED: [&str; 12] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// The domains whose key may sign: the `From:` domain first, then the envelope sender's.
fn candidates(message: &[u8], sender: &str) -> Vec<String> {
    let mut domains = Vec::new();
    if let Some(parsed) = mail_parser::MessageParser::new().parse_headers(message)
        && let Some(from) = parsed
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
        && let Some((_, domain)) = from.rsplit_once('@')
    {
        domains.push(domain.trim().to_ascii_lowercase());
    }
    if let Some((_, domain)) = sender.rsplit_once('@') {
        let domain = domain.to_ascii_lowercase();
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    domains
}

/// The `DKIM-Signature:` header field for `message`, if a hosted domain of it has a key.
/// Errors are logged and the message goes unsigned (a missing signature is a weaker message,
/// not a lost one).
pub async fn signature(
    settings: &DeliverySettings,
    sender: &str,
    message: &[u8],
) -> Option<String> {
    for domain in candidates(message, sender) {
        match settings.dkim_signing_key(&domain).await {
            Ok(Some(key)) => match sign(&key, message) {
                Ok(header) => return Some(header),
                Err(error) => {
                    tracing::warn!(%domain, %error, "DKIM signing failed; sending unsigned");
                    return None;
                }
            },
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%domain, %error, "DKIM key unavailable; sending unsigned");
                return None;
            }
        }
    }
    None
}

fn sign(key: &DkimSigningKey, message: &[u8]) -> Result<String, mail_auth::Error> {
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.private_key.as_slice()));
    let rsa = RsaKey::<Sha256>::from_key_der(private)?;
    let signature = DkimSigner::from_key(rsa)
        .domain(key.domain.as_str())
        .selector(key.selector.as_str())
        .headers(SIGNED)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)?;
    Ok(signature.to_header())
}

#[cfg(test)]
mod tests {
    #[test]
    fn from_domain_comes_before_the_envelope_domain() {
        let message = b"From: A <a@Example.ORG>\r\nSubject: x\r\n\r\nbody\r\n";
        assert_eq!(
            super::candidates(message, "bounce@lists.example.net"),
            ["example.org", "lists.example.net"]
        );
        assert_eq!(super::candidates(b"garbage", ""), Vec::<String>::new());
    }
}
