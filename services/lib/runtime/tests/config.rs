//! Configuration loading: layering, every error reported at once and named, secrets from files.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how a test fails

use mc_runtime::config::{ConfigError, ServiceConfig, Sources, load};
use mc_runtime::sections::{DatabaseConfig, LogConfig, LogFormat, OpsConfig};
use serde::{Deserialize, Serialize};
use std::io::Write;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Sample {
    database: DatabaseConfig,
    log: LogConfig,
    ops: OpsConfig,
    admin: AdminSection,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AdminSection {
    listen: std::net::SocketAddr,
    workers: u16,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().unwrap(),
            workers: 4,
        }
    }
}

impl Default for Sample {
    fn default() -> Self {
        Self {
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            ops: OpsConfig::on_port(9104),
            admin: AdminSection::default(),
        }
    }
}

impl ServiceConfig for Sample {
    fn finish(&mut self, errors: &mut Vec<ConfigError>) {
        self.database.finish(errors);
    }
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn keys(errors: &[ConfigError]) -> Vec<&str> {
    errors.iter().map(|e| e.key.as_str()).collect()
}

#[test]
fn defaults_then_file_then_environment() {
    let f = file(
        "[database]\nurl = \"postgres://file/db\"\nmax_connections = 4\n[log]\nformat = \"text\"\n",
    );
    let sources = Sources {
        file: Some(f.path().to_path_buf()),
        env: env(&[
            ("MAILCLUSTER_DATABASE__MAX_CONNECTIONS", "32"),
            ("MAILCLUSTER_CONFIG", "ignored"),
            ("MAILCLUSTER_TEST_DATABASE_URL", "ignored"),
            ("PATH", "/bin"),
        ]),
    };
    let config: Sample = load(&sources).unwrap();
    assert_eq!(config.database.url.unwrap().expose(), "postgres://file/db");
    assert_eq!(
        config.database.max_connections, 32,
        "environment overrides the file"
    );
    assert_eq!(
        config.database.acquire_timeout_secs, 5,
        "untouched keys keep their defaults"
    );
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.ops.listen.port(), 9104);
}

#[test]
fn every_bad_key_and_value_is_reported_at_once_by_name() {
    let f = file(
        "[database]\nurl = \"postgres://x/y\"\nmax_conections = 4\nacquire_timeout_secs = \"soon\"\n\
         [log]\nformat = \"xml\"\n[bogus]\nx = 1\n",
    );
    let sources = Sources {
        file: Some(f.path().to_path_buf()),
        env: env(&[
            ("MAILCLUSTER_ADMIN__WORKERS", "many"),
            ("MAILCLUSTER_ADMIN__LISTEN", "nowhere"),
        ]),
    };
    let errors = load::<Sample>(&sources).unwrap_err().0;
    assert_eq!(
        keys(&errors),
        vec![
            "admin.listen",
            "admin.workers",
            "bogus",
            "database.acquire_timeout_secs",
            "database.max_conections",
            "log.format",
        ],
        "{errors:#?}"
    );
    let workers = errors.iter().find(|e| e.key == "admin.workers").unwrap();
    assert!(
        workers.message.contains("MAILCLUSTER_ADMIN__WORKERS"),
        "the message names where the value came from: {}",
        workers.message
    );
}

#[test]
fn sections_of_other_services_are_ignored_but_checked_sections_are_not() {
    let f = file(
        "[database]\nurl = \"postgres://x/y\"\n[smtp]\nanything = 1\n[blob]\nbackend = \"s3\"\n",
    );
    let sources = Sources {
        file: Some(f.path().to_path_buf()),
        env: vec![],
    };
    assert!(load::<Sample>(&sources).is_ok());
}

#[test]
fn misspelt_environment_variables_are_reported() {
    let sources = Sources {
        file: None,
        env: env(&[
            ("MAILCLUSTER_DATABASE__URL", "postgres://x/y"),
            ("MAILCLUSTER_DATABASE_MAX_CONNECTIONS", "3"),
            ("MAILCLUSTER__LOG__FORMAT", "text"),
        ]),
    };
    let errors = load::<Sample>(&sources).unwrap_err().0;
    assert_eq!(
        keys(&errors),
        vec![
            "MAILCLUSTER_DATABASE_MAX_CONNECTIONS",
            "MAILCLUSTER__LOG__FORMAT"
        ],
        "{errors:#?}"
    );
    assert!(
        errors[0]
            .message
            .contains("MAILCLUSTER_DATABASE__MAX_CONNECTIONS")
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let sources = Sources {
        file: Some("/nonexistent/mailcluster.toml".into()),
        env: vec![],
    };
    let errors = load::<Sample>(&sources).unwrap_err().0;
    assert_eq!(keys(&errors), vec!["MAILCLUSTER_CONFIG", "database.url"]);
}

#[test]
fn a_file_that_does_not_parse_is_an_error() {
    let f = file("[database\nurl = ");
    let sources = Sources {
        file: Some(f.path().to_path_buf()),
        env: vec![],
    };
    assert_eq!(load::<Sample>(&sources).unwrap_err().0.len(), 1);
}

#[test]
fn secrets_come_from_files_and_environment_secrets_are_verbatim() {
    let secret = file("postgres://u:p@h/db\n");
    let sources = Sources {
        file: None,
        env: env(&[(
            "MAILCLUSTER_DATABASE__URL_FILE",
            secret.path().to_str().unwrap(),
        )]),
    };
    let config: Sample = load(&sources).unwrap();
    assert_eq!(config.database.url.unwrap().expose(), "postgres://u:p@h/db");

    for exact in [
        "00123",
        "12345678901234567890123",
        "\"quoted\"",
        "[x]",
        "true",
    ] {
        let sources = Sources {
            file: None,
            env: env(&[("MAILCLUSTER_DATABASE__URL", exact)]),
        };
        let config: Sample = load(&sources).unwrap();
        assert_eq!(
            config.database.url.unwrap().expose(),
            exact,
            "environment secrets are taken verbatim"
        );
    }
}

#[test]
fn checks_across_keys_still_run_when_other_keys_are_bad() {
    let sources = Sources {
        file: None,
        env: env(&[("MAILCLUSTER_DATABASE__MAX_CONNECTIONS", "lots")]),
    };
    let errors = load::<Sample>(&sources).unwrap_err().0;
    assert_eq!(
        keys(&errors),
        vec!["database.max_connections", "database.url"],
        "{errors:#?}"
    );
}

#[test]
fn required_and_conflicting_secrets_are_named() {
    let errors = load::<Sample>(&Sources::default()).unwrap_err().0;
    assert_eq!(keys(&errors), vec!["database.url"]);

    let secret = file("postgres://u:p@h/db\n");
    let sources = Sources {
        file: None,
        env: env(&[
            ("MAILCLUSTER_DATABASE__URL", "postgres://x/y"),
            (
                "MAILCLUSTER_DATABASE__URL_FILE",
                secret.path().to_str().unwrap(),
            ),
        ]),
    };
    let errors = load::<Sample>(&sources).unwrap_err().0;
    assert_eq!(keys(&errors), vec!["database.url"]);

    let sources = Sources {
        file: None,
        env: env(&[("MAILCLUSTER_DATABASE__URL_FILE", "/nonexistent/secret")]),
    };
    let errors = load::<Sample>(&sources).unwrap_err().0;
    assert_eq!(keys(&errors), vec!["database.url", "database.url_file"]);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let sources = Sources {
        file: None,
        env: env(&[("MAILCLUSTER_DATABASE__URL", "postgres://u:hunter2@h/db")]),
    };
    let config: Sample = load(&sources).unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
}
