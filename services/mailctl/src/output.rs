//! Human-readable tables (the default) for what the API returns; `--json` bypasses this.

use crate::quota::human;
use serde_json::Value;

/// Prints rows under headers, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    if rows.is_empty() {
        println!("(none)");
    }
    for row in rows {
        line(row);
    }
}

/// Prints one object as `key: value` lines.
pub fn record(fields: Vec<(&str, String)>) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        println!("{key:<width$}  {value}");
    }
}

pub fn s(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        Some(Value::Array(items)) => {
            let texts: Vec<String> = items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect();
            if texts.is_empty() {
                "-".to_string()
            } else {
                texts.join(", ")
            }
        }
        Some(other) => other.to_string(),
    }
}

/// A byte limit where 0 means unlimited.
pub fn limit(value: &Value, key: &str) -> String {
    match value.get(key).and_then(Value::as_i64) {
        Some(0) | None => "unlimited".to_string(),
        Some(bytes) => human(bytes),
    }
}

pub fn bytes(value: &Value, key: &str) -> String {
    human(value.get(key).and_then(Value::as_i64).unwrap_or(0))
}

fn items(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

pub fn domains(value: &Value) {
    let rows = items(value)
        .iter()
        .map(|d| {
            vec![
                s(d, "name"),
                s(d, "active"),
                s(d, "accounts"),
                s(d, "aliases"),
                s(d, "catch_all"),
            ]
        })
        .collect();
    table(
        &["DOMAIN", "ACTIVE", "ACCOUNTS", "ALIASES", "CATCH-ALL"],
        rows,
    );
}

pub fn domain(d: &Value) {
    record(vec![
        ("domain", s(d, "name")),
        ("active", s(d, "active")),
        ("aliases", s(d, "aliases")),
        ("catch-all", s(d, "catch_all")),
        ("accounts", s(d, "accounts")),
        ("max message size", limit(d, "max_message_size_bytes")),
        ("max domain size", limit(d, "max_size_bytes")),
        ("max total of quotas", limit(d, "max_account_size_bytes")),
        ("plus addressing", s(d, "plus_addressing")),
        ("greylisting", s(d, "greylisting")),
        ("created", s(d, "created_at")),
    ]);
}

pub fn accounts(value: &Value) {
    let rows = items(value)
        .iter()
        .map(|a| {
            vec![
                s(a, "address"),
                s(a, "active"),
                limit(a, "quota_bytes"),
                bytes(a, "used_bytes"),
                s(a, "admin_level"),
            ]
        })
        .collect();
    table(&["ADDRESS", "ACTIVE", "QUOTA", "USED", "ADMIN"], rows);
}

pub fn account(a: &Value) {
    record(vec![
        ("address", s(a, "address")),
        ("active", s(a, "active")),
        ("quota", limit(a, "quota_bytes")),
        ("used", bytes(a, "used_bytes")),
        ("admin level", s(a, "admin_level")),
        (
            "forwarding",
            if a["forward_enabled"] == Value::Bool(true) {
                s(a, "forward_address")
            } else {
                "off".into()
            },
        ),
        (
            "auto-reply",
            if a["autoreply_enabled"] == Value::Bool(true) {
                s(a, "autoreply_subject")
            } else {
                "off".into()
            },
        ),
        ("last login", s(a, "last_login_at")),
        ("created", s(a, "created_at")),
    ]);
}

pub fn aliases(value: &Value) {
    let rows = items(value)
        .iter()
        .map(|a| vec![s(a, "address"), s(a, "target"), s(a, "active")])
        .collect();
    table(&["ALIAS", "TARGET", "ACTIVE"], rows);
}

pub fn list(l: &Value) {
    record(vec![
        ("list", s(l, "address")),
        ("active", s(l, "active")),
        ("mode", s(l, "mode")),
        ("announce from", s(l, "announce_address")),
        ("require auth", s(l, "require_auth")),
        (
            "members",
            l["members"]
                .as_array()
                .map(|m| m.len())
                .unwrap_or(0)
                .to_string(),
        ),
    ]);
    for member in items(&l["members"]) {
        println!("  {}", member.as_str().unwrap_or_default());
    }
}

pub fn ip_ranges(value: &Value) {
    let categories = [
        ("local_to_local", "L>L"),
        ("local_to_external", "L>E"),
        ("external_to_local", "E>L"),
        ("external_to_external", "E>E"),
    ];
    let flags = |r: &Value, prefix: &str| {
        let set: Vec<&str> = categories
            .iter()
            .filter(|(key, _)| r[format!("{prefix}{key}")] == Value::Bool(true))
            .map(|(_, short)| *short)
            .collect();
        if set.is_empty() {
            "-".to_string()
        } else {
            set.join(",")
        }
    };
    let protocols = |r: &Value| {
        let set: Vec<&str> = [
            ("allow_smtp", "smtp"),
            ("allow_pop3", "pop3"),
            ("allow_imap", "imap"),
        ]
        .iter()
        .filter(|(key, _)| r[*key] == Value::Bool(true))
        .map(|(_, name)| *name)
        .collect();
        if set.is_empty() {
            "-".to_string()
        } else {
            set.join(",")
        }
    };
    let rows = items(value)
        .iter()
        .map(|r| {
            vec![
                s(r, "name"),
                s(r, "priority"),
                s(r, "lower"),
                s(r, "upper"),
                protocols(r),
                flags(r, "allow_"),
                flags(r, "require_auth_"),
                s(r, "expires_at"),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "PRIORITY",
            "LOWER",
            "UPPER",
            "PROTOCOLS",
            "RELAY",
            "AUTH",
            "EXPIRES",
        ],
        rows,
    );
}

pub fn routes(value: &Value) {
    let rows = items(value)
        .iter()
        .map(|r| {
            vec![
                s(r, "domain"),
                s(r, "host"),
                s(r, "port"),
                s(r, "tls"),
                s(r, "username"),
                default(r, "retries"),
                default(r, "retry_minutes"),
            ]
        })
        .collect();
    table(
        &[
            "DOMAIN",
            "HOST",
            "PORT",
            "TLS",
            "USER",
            "RETRIES",
            "RETRY-MINUTES",
        ],
        rows,
    );
}

pub fn relayer(r: &Value) {
    record(vec![
        ("host", s(r, "host")),
        ("port", s(r, "port")),
        ("tls", s(r, "tls")),
        ("user", s(r, "username")),
        ("updated", s(r, "updated_at")),
    ]);
}

/// A setting where absent means the worker's own.
fn default(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::Null) | None => "default".to_string(),
        Some(_) => s(value, key),
    }
}

/// A timestamp without its fraction of a second: `2026-01-02T03:04:05Z`.
pub fn when(value: &Value, key: &str) -> String {
    let text = s(value, key);
    match (text.find('.'), text.rfind(['Z', '+'])) {
        (Some(dot), Some(zone)) if dot < zone => format!("{}{}", &text[..dot], &text[zone..]),
        _ => text,
    }
}

/// At most `max` characters of a cell (errors can be long remote replies).
fn clip(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

fn sender(value: &Value) -> String {
    match value.get("sender").and_then(Value::as_str) {
        Some("") => "<>".to_string(),
        _ => s(value, "sender"),
    }
}

pub fn queue(value: &Value) {
    let rows = items(value)
        .iter()
        .map(|e| {
            let counts = &e["recipients"];
            let total: u64 = ["queued", "delivered", "failed", "held"]
                .iter()
                .filter_map(|k| counts[*k].as_u64())
                .sum();
            vec![
                s(e, "id"),
                sender(e),
                when(e, "received_at"),
                bytes(e, "size_bytes"),
                format!("{}/{total}", counts["queued"].as_u64().unwrap_or(0)),
                s(e, "attempts"),
                when(e, "next_attempt_at"),
                clip(s(e, "last_error"), 60),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "SENDER",
            "RECEIVED",
            "SIZE",
            "WAITING",
            "TRIES",
            "NEXT ATTEMPT",
            "LAST ERROR",
        ],
        rows,
    );
}

pub fn queue_entry(e: &Value) {
    record(vec![
        ("id", s(e, "id")),
        ("sender", sender(e)),
        ("client", s(e, "client_ip")),
        ("helo", s(e, "client_helo")),
        ("auth user", s(e, "auth_user")),
        ("size", bytes(e, "size_bytes")),
        ("received", when(e, "received_at")),
        ("expires", when(e, "expires_at")),
    ]);
    println!();
    let rows = items(&e["recipients"])
        .iter()
        .map(|r| {
            vec![
                s(r, "address"),
                s(r, "state"),
                s(r, "attempts"),
                when(r, "next_attempt_at"),
                when(r, "last_attempt_at"),
                s(r, "in_flight"),
                s(r, "last_error"),
            ]
        })
        .collect();
    table(
        &[
            "RECIPIENT",
            "STATE",
            "TRIES",
            "NEXT ATTEMPT",
            "LAST ATTEMPT",
            "IN FLIGHT",
            "LAST ERROR",
        ],
        rows,
    );
}

pub fn queue_stats(q: &Value) {
    record(vec![
        ("waiting recipients", s(q, "queued_recipients")),
        ("deferred", s(q, "deferred_recipients")),
        ("in flight", s(q, "in_flight")),
        (
            "oldest waiting",
            match q["oldest_queued_age_secs"].as_u64() {
                Some(secs) => format!("{secs} s"),
                None => "-".to_string(),
            },
        ),
    ]);
}
