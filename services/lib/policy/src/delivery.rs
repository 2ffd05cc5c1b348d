//! Outbound delivery settings in PostgreSQL, shared by every delivery worker: routes (a fixed
//! next hop per destination domain), the relayer (one smarthost for everything else) and the
//! DKIM signing keys of hosted domains.
//!
//! Passwords for routes and the relayer are stored as given (the worker must present them) and
//! are never returned by the administration side: listings say only whether one is set.

use crate::PolicyError;
use mc_types::Domain;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// How a next hop uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// STARTTLS with a certificate that verifies, or no delivery (the attempt is retried).
    Required,
    /// STARTTLS when offered; the certificate check is recorded, not enforced.
    #[default]
    Optional,
    /// Plain text always.
    None,
}

impl TlsMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::None => "none",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "required" => Self::Required,
            "none" => Self::None,
            _ => Self::Optional,
        }
    }
}

/// A next hop with everything needed to use it (password included): the worker's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// User name and password for SMTP AUTH.
    pub auth: Option<(String, String)>,
    /// Own retry settings (routes only); `None` takes the worker's.
    pub retries: Option<u32>,
    pub retry_minutes: Option<u32>,
}

/// A route as the administration side shows it (no password).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Route {
    /// The destination domain, or `*.domain` for its subdomains.
    pub domain: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub retries: Option<u32>,
    pub retry_minutes: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A route to add or replace.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoute {
    pub domain: String,
    pub host: String,
    pub port: Option<u16>,
    pub tls: Option<TlsMode>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub retries: Option<u32>,
    pub retry_minutes: Option<u32>,
}

/// The relayer as the administration side shows it (no password).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Relayer {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The relayer to set.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRelayer {
    pub host: String,
    pub port: Option<u16>,
    pub tls: Option<TlsMode>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A domain's DKIM key as published: the TXT record to put into DNS.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DkimRecord {
    pub domain: String,
    pub selector: String,
    /// `<selector>._domainkey.<domain>`
    pub txt_name: String,
    /// `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>`
    pub txt_value: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A signing key, for the worker.
#[derive(Clone)]
pub struct DkimSigningKey {
    pub domain: String,
    pub selector: String,
    /// PKCS#8 DER of the RSA private key.
    pub private_key: Vec<u8>,
}

impl std::fmt::Debug for DkimSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigningKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

/// Routes, relayer and DKIM keys over one pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pool: PgPool,
}

type HopRow = (
    String,
    i32,
    String,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<i32>,
);

fn hop((host, port, tls, username, password, retries, retry_minutes): HopRow) -> NextHop {
    NextHop {
        host,
        port: u16::try_from(port).unwrap_or(25),
        tls: TlsMode::parse(&tls),
        auth: username.zip(password),
        retries: retries.and_then(|r| u32::try_from(r).ok()),
        retry_minutes: retry_minutes.and_then(|r| u32::try_from(r).ok()),
    }
}

type RouteRow = (
    String,
    String,
    i32,
    String,
    Option<String>,
    Option<i32>,
    Option<i32>,
    OffsetDateTime,
);

fn route(row: RouteRow) -> Route {
    let (domain, host, port, tls, username, retries, retry_minutes, updated_at) = row;
    Route {
        domain,
        host,
        port: u16::try_from(port).unwrap_or(25),
        tls: TlsMode::parse(&tls),
        username,
        retries: retries.and_then(|r| u32::try_from(r).ok()),
        retry_minutes: retry_minutes.and_then(|r| u32::try_from(r).ok()),
        updated_at,
    }
}

/// `example.org` or `*.example.org`, in lookup form.
fn route_domain(input: &str) -> Result<String, PolicyError> {
    let (wildcard, name) = match input.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let domain = Domain::parse_hosted(name)
        .map_err(|e| PolicyError::Invalid(format!("route domain {input:?}: {e}")))?;
    Ok(if wildcard {
        format!("*.{}", domain.as_str())
    } else {
        domain.as_str().to_string()
    })
}

fn next_hop_host(host: &str) -> Result<String, PolicyError> {
    let host = host.trim();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(host.to_string());
    }
    Domain::parse(host)
        .map(|d| d.as_str().to_string())
        .map_err(|e| PolicyError::Invalid(format!("host {host:?}: {e}")))
}

fn credentials(username: &Option<String>, password: &Option<String>) -> Result<(), PolicyError> {
    match (username, password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Ok(()),
        (None, None) => Ok(()),
        _ => Err(PolicyError::Invalid(
            "username and password go together (both or neither)".into(),
        )),
    }
}

fn port(port: Option<u16>) -> Result<i32, PolicyError> {
    match port.unwrap_or(25) {
        0 => Err(PolicyError::Invalid("port 0 is not a port".into())),
        port => Ok(i32::from(port)),
    }
}

fn bounded(value: Option<u32>, max: u32, what: &str) -> Result<Option<i32>, PolicyError> {
    match value {
        None => Ok(None),
        Some(v) if v <= max => Ok(i32::try_from(v).ok()),
        Some(_) => Err(PolicyError::Invalid(format!(
            "{what} must be at most {max}"
        ))),
    }
}

impl DeliverySettings {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Adds a route, or replaces the one for the same domain.
    pub async fn set_route(&self, new: &NewRoute) -> Result<Route, PolicyError> {
        let domain = route_domain(&new.domain)?;
        let host = next_hop_host(&new.host)?;
        credentials(&new.username, &new.password)?;
        let retries = bounded(new.retries, 1000, "retries")?;
        let retry_minutes = match new.retry_minutes {
            Some(0) => {
                return Err(PolicyError::Invalid(
                    "retry_minutes must be at least 1".into(),
                ));
            }
            minutes => bounded(minutes, 10_080, "retry_minutes")?,
        };
        let row: RouteRow = sqlx::query_as(
            "INSERT INTO routes (domain, host, port, tls, username, password, retries, retry_minutes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (domain) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port,
                 tls = EXCLUDED.tls, username = EXCLUDED.username, password = EXCLUDED.password,
                 retries = EXCLUDED.retries, retry_minutes = EXCLUDED.retry_minutes,
                 updated_at = now()
             RETURNING domain, host, port, tls, username, retries, retry_minutes, updated_at",
        )
        .bind(&domain)
        .bind(&host)
        .bind(port(new.port)?)
        .bind(new.tls.unwrap_or_default().as_str())
        .bind(&new.username)
        .bind(&new.password)
        .bind(retries)
        .bind(retry_minutes)
        .fetch_one(&self.pool)
        .await?;
        Ok(route(row))
    }

    pub async fn routes(&self) -> Result<Vec<Route>, PolicyError> {
        let rows: Vec<RouteRow> = sqlx::query_as(
            "SELECT domain, host, port, tls, username, retries, retry_minutes, updated_at
               FROM routes ORDER BY domain",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(route).collect())
    }

    pub async fn remove_route(&self, domain: &str) -> Result<(), PolicyError> {
        let domain = route_domain(domain)?;
        let done = sqlx::query("DELETE FROM routes WHERE domain = $1")
            .bind(&domain)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(PolicyError::NotFound(format!("route for {domain}")));
        }
        Ok(())
    }

    /// The route for a recipient domain (lookup form): the exact domain first, then the
    /// closest `*.parent` above it.
    pub async fn route_for(&self, domain: &str) -> Result<Option<NextHop>, PolicyError> {
        let mut names = vec![domain.to_string()];
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            names.push(format!("*.{parent}"));
            rest = parent;
        }
        let row: Option<HopRow> = sqlx::query_as(
            "SELECT host, port, tls, username, password, retries, retry_minutes
               FROM routes WHERE domain = ANY($1)
              ORDER BY length(domain) DESC LIMIT 1",
        )
        .bind(&names)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(hop))
    }

    pub async fn set_relayer(&self, new: &NewRelayer) -> Result<Relayer, PolicyError> {
        let host = next_hop_host(&new.host)?;
        credentials(&new.username, &new.password)?;
        let (host, port, tls, username, updated_at): (
            String,
            i32,
            String,
            Option<String>,
            OffsetDateTime,
        ) = sqlx::query_as(
            "INSERT INTO relayer (singleton, host, port, tls, username, password)
                 VALUES (true, $1, $2, $3, $4, $5)
                 ON CONFLICT (singleton) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port,
                     tls = EXCLUDED.tls, username = EXCLUDED.username,
                     password = EXCLUDED.password, updated_at = now()
                 RETURNING host, port, tls, username, updated_at",
        )
        .bind(&host)
        .bind(port(new.port)?)
        .bind(new.tls.unwrap_or_default().as_str())
        .bind(&new.username)
        .bind(&new.password)
        .fetch_one(&self.pool)
        .await?;
        Ok(Relayer {
            host,
            port: u16::try_from(port).unwrap_or(25),
            tls: TlsMode::parse(&tls),
            username,
            updated_at,
        })
    }

    pub async fn relayer(&self) -> Result<Option<Relayer>, PolicyError> {
        let row: Option<(String, i32, String, Option<String>, OffsetDateTime)> =
            sqlx::query_as("SELECT host, port, tls, username, updated_at FROM relayer")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(host, port, tls, username, updated_at)| Relayer {
            host,
            port: u16::try_from(port).unwrap_or(25),
            tls: TlsMode::parse(&tls),
            username,
            updated_at,
        }))
    }

    /// Removes the relayer; true if there was one.
    pub async fn clear_relayer(&self) -> Result<bool, PolicyError> {
        let done = sqlx::query("DELETE FROM relayer")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The relayer with its password, for the worker.
    pub async fn relayer_hop(&self) -> Result<Option<NextHop>, PolicyError> {
        let row: Option<HopRow> = sqlx::query_as(
            "SELECT host, port, tls, username, password, NULL::int, NULL::int FROM relayer",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(hop))
    }

    /// Makes a new RSA-2048 key for a hosted domain (replacing its old one) and returns the
    /// record to publish.
    pub async fn generate_dkim(
        &self,
        domain: &str,
        selector: &str,
    ) -> Result<DkimRecord, PolicyError> {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::KeyPair as _;
        let domain = Domain::parse_hosted(domain)
            .map_err(|e| PolicyError::Invalid(format!("domain {domain:?}: {e}")))?;
        let selector = selector.trim().to_ascii_lowercase();
        if Domain::parse(&selector).is_err() {
            return Err(PolicyError::Invalid(format!(
                "selector {selector:?} is not a DNS name"
            )));
        }
        // Key generation takes a few hundred milliseconds of CPU.
        let (private_key, public_key) = tokio::task::spawn_blocking(|| {
            let pair = KeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| PolicyError::Invalid("RSA key generation failed".into()))?;
            let private: aws_lc_rs::encoding::Pkcs8V1Der = pair
                .as_der()
                .map_err(|_| PolicyError::Invalid("RSA key encoding failed".into()))?;
            let public: aws_lc_rs::encoding::PublicKeyX509Der = pair
                .public_key()
                .as_der()
                .map_err(|_| PolicyError::Invalid("RSA key encoding failed".into()))?;
            Ok::<_, PolicyError>((private.as_ref().to_vec(), public.as_ref().to_vec()))
        })
        .await
        .map_err(|e| PolicyError::Invalid(format!("key generation: {e}")))??;
        let created_at: Option<OffsetDateTime> = sqlx::query_scalar(
            "INSERT INTO dkim_keys (domain_id, selector, private_key, public_key)
             SELECT id, $2, $3, $4 FROM domains WHERE name = $1
             ON CONFLICT (domain_id) DO UPDATE SET selector = EXCLUDED.selector,
                 private_key = EXCLUDED.private_key, public_key = EXCLUDED.public_key,
                 created_at = now()
             RETURNING created_at",
        )
        .bind(domain.as_str())
        .bind(&selector)
        .bind(&private_key)
        .bind(&public_key)
        .fetch_optional(&self.pool)
        .await?;
        let created_at = created_at
            .ok_or_else(|| PolicyError::NotFound(format!("domain {}", domain.as_str())))?;
        Ok(record(domain.as_str(), &selector, &public_key, created_at))
    }

    /// The published record of a domain's key, if it has one.
    pub async fn dkim(&self, domain: &str) -> Result<Option<DkimRecord>, PolicyError> {
        let domain = Domain::parse_hosted(domain)
            .map_err(|e| PolicyError::Invalid(format!("domain {domain:?}: {e}")))?;
        let row: Option<(String, Vec<u8>, OffsetDateTime)> = sqlx::query_as(
            "SELECT k.selector, k.public_key, k.created_at
               FROM dkim_keys k JOIN domains d ON d.id = k.domain_id WHERE d.name = $1",
        )
        .bind(domain.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(selector, public_key, created_at)| {
            record(domain.as_str(), &selector, &public_key, created_at)
        }))
    }

    /// The signing key of a domain (lookup form), for the worker.
    pub async fn dkim_signing_key(
        &self,
        domain: &str,
    ) -> Result<Option<DkimSigningKey>, PolicyError> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT k.selector, k.private_key
               FROM dkim_keys k JOIN domains d ON d.id = k.domain_id WHERE d.name = $1",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(selector, private_key)| DkimSigningKey {
            domain: domain.to_string(),
            selector,
            private_key,
        }))
    }
}

fn record(
    domain: &str,
    selector: &str,
    public_key: &[u8],
    created_at: OffsetDateTime,
) -> DkimRecord {
    use base64::Engine as _;
    DkimRecord {
        domain: domain.to_string(),
        selector: selector.to_string(),
        txt_name: format!("{selector}._domainkey.{domain}"),
        txt_value: format!(
            "v=DKIM1; k=rsa; p={}",
            base64::engine::general_purpose::STANDARD.encode(public_key)
        ),
        created_at,
    }
}
