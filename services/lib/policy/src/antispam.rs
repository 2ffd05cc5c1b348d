//! Anti-spam and anti-abuse settings shared by every replica: one flat set of named knobs kept in
//! the `settings` table under `antispam.<name>`. A knob that was never set takes the default
//! below (the reference server's, FEATURES.md Appendix A, where it has one). Setting a knob
//! checks its name and the type of its value, so a typo cannot be stored.
//!
//! Replicas read the settings through [`SettingsCache`]: at most `ttl` old, so a change made with
//! `mailctl antispam set` reaches every replica within seconds without a restart.

use crate::PolicyError;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// What happens to mail at or above the delete threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeleteAction {
    /// Refused at the end of DATA with `550 5.7.1`: the sender learns of it.
    Reject,
    /// Answered 250 and thrown away (the reference's "delete").
    Drop,
}

/// Which part of the client address keys a greylisting triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GreylistScope {
    /// The exact address.
    Address,
    /// Its /24 (IPv4) or /64 (IPv6): senders that retry from another host of the same farm pass.
    Network,
}

/// The virus action (the reference's two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VirusAction {
    /// The message is not accepted (`554 5.7.0` at the end of DATA).
    Delete,
    /// The message is delivered with its attachments replaced by a notice.
    Strip,
}

/// Every knob, with its default. Scores are whole points, as in the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AntispamSettings {
    /// Master switch of the spam tests (greylisting and auto-ban have their own).
    pub enabled: bool,
    /// A total at or above this marks the message as spam (headers, Junk folder).
    pub mark_threshold: i32,
    /// A total at or above this deletes the message (see `delete_action`).
    pub delete_threshold: i32,
    pub delete_action: DeleteAction,
    /// Larger messages skip the content tests (DKIM, SURBL, SpamAssassin, DMARC).
    pub max_scan_kb: u64,
    /// `X-Spam-Flag`/`X-Spam-Status` on marked mail.
    pub add_spam_header: bool,
    /// One `X-Spam-Reason` per test that fired, on marked mail.
    pub add_reason_header: bool,
    pub subject_prefix_enabled: bool,
    pub subject_prefix: String,

    /// SPF of MAIL FROM (or of HELO for the null sender).
    pub spf_enabled: bool,
    pub spf_score: i32,
    /// SPF `fail` refuses the sender at once (`550 5.7.23`), whatever the score.
    pub spf_reject_on_fail: bool,
    /// The HELO name's addresses must include the client's (off by default, as in the reference).
    pub helo_check_enabled: bool,
    pub helo_score: i32,
    /// The sender's domain must have an MX (or an address, the implicit MX).
    pub mx_check_enabled: bool,
    pub mx_score: i32,
    /// A DKIM signature that fails to verify.
    pub dkim_enabled: bool,
    pub dkim_score: i32,
    /// DMARC evaluation (with alignment) and the domain's policy.
    pub dmarc_enabled: bool,
    /// `p=reject` and a failing message: `550 5.7.1` at the end of DATA.
    pub dmarc_honor_reject: bool,
    /// `p=quarantine` and a failing message: marked as spam.
    pub dmarc_honor_quarantine: bool,
    /// ARC chains are verified and reported in Authentication-Results.
    pub arc_enabled: bool,
    pub dnsbl_enabled: bool,
    /// DNSBLs are asked after MAIL FROM (the reference's default); otherwise after RCPT TO.
    pub dnsbl_after_mail_from: bool,
    pub surbl_enabled: bool,
    pub spamassassin_enabled: bool,
    pub spamassassin_host: String,
    pub spamassassin_port: u16,
    /// Add SpamAssassin's own score instead of `spamassassin_score` when it says spam.
    pub spamassassin_use_score: bool,
    pub spamassassin_score: i32,

    pub greylist_enabled: bool,
    pub greylist_delay_minutes: u32,
    /// A triplet never retried is forgotten after this long.
    pub greylist_unused_hours: u32,
    /// A triplet that passed is forgotten this long after its last use.
    pub greylist_used_hours: u32,
    pub greylist_bypass_spf_pass: bool,
    pub greylist_scope: GreylistScope,
    /// Redis unreachable: accept (true) or answer 451 (false).
    pub greylist_fail_open: bool,

    pub autoban_enabled: bool,
    /// Failed logins from one address within `autoban_window_minutes` that cause a ban.
    pub autoban_max_attempts: u32,
    pub autoban_window_minutes: u32,
    pub autoban_minutes: u32,

    /// Messages accepted per client address per hour (0: no limit). Authenticated clients are
    /// limited by `rate_sender_per_hour` instead.
    pub rate_ip_per_hour: u32,
    /// Messages submitted per authenticated user per hour (0: no limit).
    pub rate_sender_per_hour: u32,

    pub antivirus_enabled: bool,
    pub clamd_host: String,
    pub clamd_port: u16,
    pub clamd_timeout_secs: u32,
    pub antivirus_action: VirusAction,
    pub antivirus_max_scan_kb: u64,
    /// Tell the sender that a message was deleted for a virus.
    pub antivirus_notify_sender: bool,
    /// Tell the recipients that a message was deleted for a virus.
    pub antivirus_notify_recipients: bool,
    /// Attachments whose names end in one of `blocked_extensions` are replaced by a notice.
    pub block_attachments: bool,
    pub blocked_extensions: Vec<String>,
}

impl Default for AntispamSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            mark_threshold: 5,
            delete_threshold: 20,
            delete_action: DeleteAction::Reject,
            max_scan_kb: 1024,
            add_spam_header: true,
            add_reason_header: true,
            subject_prefix_enabled: false,
            subject_prefix: "[SPAM]".into(),
            spf_enabled: true,
            spf_score: 3,
            spf_reject_on_fail: false,
            helo_check_enabled: false,
            helo_score: 2,
            mx_check_enabled: true,
            mx_score: 2,
            dkim_enabled: true,
            dkim_score: 5,
            dmarc_enabled: true,
            dmarc_honor_reject: true,
            dmarc_honor_quarantine: true,
            arc_enabled: true,
            dnsbl_enabled: true,
            dnsbl_after_mail_from: true,
            surbl_enabled: true,
            spamassassin_enabled: false,
            spamassassin_host: "127.0.0.1".into(),
            spamassassin_port: 783,
            spamassassin_use_score: false,
            spamassassin_score: 5,
            greylist_enabled: false,
            greylist_delay_minutes: 30,
            greylist_unused_hours: 24,
            greylist_used_hours: 864,
            greylist_bypass_spf_pass: true,
            greylist_scope: GreylistScope::Network,
            greylist_fail_open: true,
            autoban_enabled: true,
            autoban_max_attempts: 3,
            autoban_window_minutes: 30,
            autoban_minutes: 60,
            rate_ip_per_hour: 0,
            rate_sender_per_hour: 0,
            antivirus_enabled: false,
            clamd_host: "127.0.0.1".into(),
            clamd_port: 3310,
            clamd_timeout_secs: 30,
            antivirus_action: VirusAction::Delete,
            antivirus_max_scan_kb: 10240,
            antivirus_notify_sender: false,
            antivirus_notify_recipients: false,
            block_attachments: false,
            blocked_extensions: [
                "bat", "cmd", "com", "cpl", "csh", "exe", "inf", "lnk", "msi", "msp", "pif", "reg",
                "scf", "scr",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

const PREFIX: &str = "antispam.";

/// One knob as stored and shown: `name` and its JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Knob {
    pub name: String,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// False when the value is the built-in default.
    pub set: bool,
}

impl AntispamSettings {
    /// The settings in force: the stored knobs over the defaults. A stored knob that no longer
    /// parses (written by another version) is ignored with a warning rather than failing mail.
    pub async fn load(pool: &PgPool) -> Result<Self, PolicyError> {
        let rows = stored(pool).await?;
        let mut map = defaults_map();
        for (name, value) in rows {
            let mut candidate = map.clone();
            candidate.insert(name.clone(), value);
            if serde_json::from_value::<Self>(serde_json::Value::Object(candidate.clone())).is_ok()
            {
                map = candidate;
            } else {
                tracing::warn!(knob = %name, "stored anti-spam setting ignored: unknown or malformed");
            }
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| PolicyError::Invalid(format!("anti-spam settings: {e}")))
    }

    /// Every knob with its value in force, in declaration order.
    pub async fn knobs(pool: &PgPool) -> Result<Vec<Knob>, PolicyError> {
        let stored: std::collections::HashSet<String> = stored(pool)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let current = Self::load(pool).await?;
        let serde_json::Value::Object(map) =
            serde_json::to_value(&current).map_err(|e| PolicyError::Invalid(e.to_string()))?
        else {
            return Ok(Vec::new());
        };
        Ok(map
            .into_iter()
            .map(|(name, value)| Knob {
                set: stored.contains(&name),
                name,
                value,
            })
            .collect())
    }

    /// Stores one knob after checking its name and value against the others.
    pub async fn set(
        pool: &PgPool,
        name: &str,
        value: serde_json::Value,
    ) -> Result<Knob, PolicyError> {
        let mut map = defaults_map();
        if !map.contains_key(name) {
            return Err(PolicyError::NotFound(format!("anti-spam setting {name}")));
        }
        map.insert(name.to_string(), value.clone());
        let parsed: Self = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| PolicyError::Invalid(format!("{name}: {e}")))?;
        parsed.validate()?;
        // Re-serialise so the stored form is canonical (e.g. 5.0 → 5 is refused above anyway).
        let serde_json::Value::Object(canonical) =
            serde_json::to_value(&parsed).map_err(|e| PolicyError::Invalid(e.to_string()))?
        else {
            return Err(PolicyError::Invalid("anti-spam settings".into()));
        };
        let value = canonical.get(name).cloned().unwrap_or(value);
        // The whole combination must stay consistent with what is stored (thresholds).
        let mut current = Self::load(pool).await?;
        let serde_json::Value::Object(mut merged) =
            serde_json::to_value(&current).map_err(|e| PolicyError::Invalid(e.to_string()))?
        else {
            return Err(PolicyError::Invalid("anti-spam settings".into()));
        };
        merged.insert(name.to_string(), value.clone());
        current = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| PolicyError::Invalid(format!("{name}: {e}")))?;
        current.validate()?;
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        )
        .bind(format!("{PREFIX}{name}"))
        .bind(sqlx::types::Json(&value))
        .execute(pool)
        .await?;
        Ok(Knob {
            name: name.to_string(),
            value,
            set: true,
        })
    }

    /// Returns one knob to its default.
    pub async fn reset(pool: &PgPool, name: &str) -> Result<(), PolicyError> {
        if !defaults_map().contains_key(name) {
            return Err(PolicyError::NotFound(format!("anti-spam setting {name}")));
        }
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(format!("{PREFIX}{name}"))
            .execute(pool)
            .await?;
        Ok(())
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: &str| Err(PolicyError::Invalid(m.to_string()));
        if self.mark_threshold < 1 {
            return invalid("mark_threshold must be at least 1");
        }
        if self.delete_threshold < self.mark_threshold {
            return invalid("delete_threshold must not be below mark_threshold");
        }
        if self.subject_prefix.chars().count() > 60 || self.subject_prefix.contains(['\r', '\n']) {
            return invalid("subject_prefix must be one line of at most 60 characters");
        }
        if self.autoban_max_attempts == 0 || self.autoban_window_minutes == 0 {
            return invalid("autoban_max_attempts and autoban_window_minutes must be at least 1");
        }
        if self.autoban_minutes == 0 {
            return invalid("autoban_minutes must be at least 1");
        }
        if self.greylist_unused_hours == 0 || self.greylist_used_hours == 0 {
            return invalid("greylist lifetimes must be at least 1 hour");
        }
        if self.clamd_timeout_secs == 0 {
            return invalid("clamd_timeout_secs must be at least 1");
        }
        if self
            .blocked_extensions
            .iter()
            .any(|e| e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return invalid("blocked_extensions are letters and digits without the dot");
        }
        Ok(())
    }
}

fn defaults_map() -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(AntispamSettings::default()) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

async fn stored(pool: &PgPool) -> Result<Vec<(String, serde_json::Value)>, PolicyError> {
    let rows: Vec<(String, sqlx::types::Json<serde_json::Value>)> =
        sqlx::query_as("SELECT key, value FROM settings WHERE key LIKE 'antispam.%' ORDER BY key")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, value)| key.strip_prefix(PREFIX).map(|n| (n.to_string(), value.0)))
        .collect())
}

/// The settings, re-read from PostgreSQL when older than `ttl`. A failed read keeps serving the
/// last good settings (or the defaults before the first), so a database blip does not change
/// how mail is judged.
pub struct SettingsCache {
    pool: PgPool,
    ttl: Duration,
    current: Mutex<Option<(Instant, std::sync::Arc<AntispamSettings>)>>,
}

impl SettingsCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            current: Mutex::new(None),
        }
    }

    pub async fn get(&self) -> std::sync::Arc<AntispamSettings> {
        let cached = self
            .current
            .lock()
            .ok()
            .and_then(|guard| guard.as_ref().map(|(at, s)| (*at, s.clone())));
        if let Some((at, settings)) = &cached
            && at.elapsed() < self.ttl
        {
            return settings.clone();
        }
        match AntispamSettings::load(&self.pool).await {
            Ok(settings) => {
                let settings = std::sync::Arc::new(settings);
                if let Ok(mut guard) = self.current.lock() {
                    *guard = Some((Instant::now(), settings.clone()));
                }
                settings
            }
            Err(error) => {
                tracing::warn!(%error, "anti-spam settings not read; the last ones stay in force");
                cached
                    .map(|(_, s)| s)
                    .unwrap_or_else(|| std::sync::Arc::new(AntispamSettings::default()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_values_and_valid() {
        let d = AntispamSettings::default();
        assert_eq!((d.mark_threshold, d.delete_threshold), (5, 20));
        assert_eq!(
            (d.spf_score, d.helo_score, d.mx_score, d.dkim_score),
            (3, 2, 2, 5)
        );
        assert_eq!(
            (
                d.greylist_delay_minutes,
                d.greylist_unused_hours,
                d.greylist_used_hours
            ),
            (30, 24, 864)
        );
        assert_eq!(
            (
                d.autoban_max_attempts,
                d.autoban_window_minutes,
                d.autoban_minutes
            ),
            (3, 30, 60)
        );
        assert!(!d.greylist_enabled && !d.helo_check_enabled && !d.antivirus_enabled);
        d.validate().unwrap();
    }

    #[test]
    fn unknown_or_mistyped_knobs_do_not_parse() {
        let mut map = defaults_map();
        map.insert("mark_threshold".into(), serde_json::json!("five"));
        assert!(
            serde_json::from_value::<AntispamSettings>(serde_json::Value::Object(map)).is_err()
        );
        let mut map = defaults_map();
        map.insert("no_such_knob".into(), serde_json::json!(1));
        assert!(
            serde_json::from_value::<AntispamSettings>(serde_json::Value::Object(map)).is_err()
        );
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let s = AntispamSettings {
            delete_threshold: 4,
            ..AntispamSettings::default()
        };
        assert!(s.validate().is_err());
    }
}
