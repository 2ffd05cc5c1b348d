//! Configuration loading: built-in defaults, then a TOML file, then environment variables.
//!
//! * File: `--config PATH` or `MAILCLUSTER_CONFIG`. A named file that does not exist is an error.
//! * Environment: `MAILCLUSTER_<SECTION>__<KEY>` (double underscore between levels), e.g.
//!   `MAILCLUSTER_DATABASE__MAX_CONNECTIONS=32`. Variables without `__` are not configuration
//!   (`MAILCLUSTER_CONFIG`, `MAILCLUSTER_TEST_*`), except that a name which looks like a config key
//!   written with a single underscore is reported, since figment would silently ignore it.
//! * Secrets may be given as `<key>_file` paths (Kubernetes secrets); see [`resolve_secret`].
//!
//! Every problem is collected and reported at once, each naming its key, before any service binds
//! a port; [`EXIT_CONFIG`] is the exit status for that case (`EX_USAGE`).

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use mc_types::Secret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Exit status for configuration errors (sysexits `EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;
/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "MAILCLUSTER_";
/// Environment variable naming the configuration file.
pub const ENV_CONFIG_FILE: &str = "MAILCLUSTER_CONFIG";

/// Sections any mailcluster service may find in a shared configuration file. A service ignores
/// the ones it does not use, so one file can serve the whole cluster; any other unknown section
/// is an error.
pub const CLUSTER_SECTIONS: &[&str] = &[
    "database",
    "redis",
    "blob",
    "log",
    "telemetry",
    "ops",
    "admin",
    "smtp",
    "access",
    "delivery",
    "antispam",
    "tls",
];

/// One configuration problem, tied to the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for error in &self.0 {
            writeln!(f, "  {}: {}", error.key, error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A service's configuration: its defaults, and the checks that need more than one key or the
/// file system (secrets from files, required keys).
pub trait ServiceConfig: Serialize + DeserializeOwned + Default {
    /// Resolves `*_file` secrets and checks what serde cannot; pushes every problem found.
    fn finish(&mut self, errors: &mut Vec<ConfigError>);
}

/// Where the configuration comes from: an optional file and a set of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Sources {
    /// The file from `--config` (if given) or `MAILCLUSTER_CONFIG`, and the process environment.
    pub fn from_process(cli_file: Option<PathBuf>) -> Self {
        let file = cli_file.or_else(|| std::env::var_os(ENV_CONFIG_FILE).map(PathBuf::from));
        // `vars()` would panic on a variable that is not UTF-8; such a variable can't be ours
        // unless its name is, and then its value is reported as unusable.
        let env = std::env::vars_os()
            .filter_map(|(name, value)| {
                let name = name.into_string().ok()?;
                let value = value
                    .into_string()
                    .unwrap_or_else(|v| v.to_string_lossy().into_owned());
                Some((name, value))
            })
            .collect();
        Self { file, env }
    }
}

/// Loads and validates a service configuration, reporting every problem at once.
pub fn load<T: ServiceConfig>(sources: &Sources) -> Result<T, ConfigErrors> {
    let mut errors = Vec::new();
    let (layers, env_origins) = layers(sources, &mut errors);
    let known_sections = section_names::<T>();
    let mut user: Dict = match layers.extract::<Dict>() {
        Ok(dict) => dict,
        Err(error) => {
            // A file that does not parse: nothing below can be trusted.
            errors.push(ConfigError::new(
                sources
                    .file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                error.to_string(),
            ));
            return Err(ConfigErrors(errors));
        }
    };
    user.retain(|section, _| {
        known_sections.iter().any(|k| k == section) || !CLUSTER_SECTIONS.contains(&section.as_str())
    });

    // Environment values stay text; the lossy extraction converts "32" or "true" only where the
    // field wants a number or a flag, so a secret such as "00123" keeps its exact spelling.
    let defaults = || Figment::from(Serialized::defaults(T::default()));
    let mut leaves = Vec::new();
    collect_leaves("", &user, &mut leaves);
    let mut good = defaults();
    for (path, value) in &leaves {
        let attempt = defaults()
            .merge((path.as_str(), value))
            .extract_lossy::<T>();
        // A list can only be written as text in the environment: `["a", "b"]` (TOML syntax) is
        // parsed, but only when the key does not accept the text itself, so strings stay verbatim.
        let list = match (&attempt, value) {
            (Err(_), Value::String(_, text)) if text.trim_start().starts_with('[') => {
                Figment::from(Toml::string(&format!("v = {text}")))
                    .extract_inner::<Value>("v")
                    .ok()
                    .filter(|list| {
                        defaults()
                            .merge((path.as_str(), list))
                            .extract_lossy::<T>()
                            .is_ok()
                    })
            }
            _ => None,
        };
        if let Some(list) = list {
            good = good.merge((path.as_str(), list));
            continue;
        }
        match attempt {
            Ok(_) => good = good.merge((path.as_str(), value)),
            Err(error) => {
                let origin = match env_origins.iter().find(|(key, _)| key == path) {
                    Some((_, var)) => format!(" (from environment variable {var})"),
                    None => sources
                        .file
                        .as_deref()
                        .map(|f| format!(" (from {})", f.display()))
                        .unwrap_or_default(),
                };
                for e in error {
                    let key = if e.path.is_empty() {
                        path.clone()
                    } else {
                        e.path.join(".")
                    };
                    errors.push(ConfigError::new(key, format!("{}{origin}", e.kind)));
                }
            }
        }
    }
    // The checks across keys (required keys, secrets from files) run on every good key even when
    // others were bad, so one run reports everything.
    match good.extract_lossy::<T>() {
        Ok(mut config) => {
            config.finish(&mut errors);
            if errors.is_empty() {
                return Ok(config);
            }
        }
        Err(error) => {
            for e in error {
                errors.push(ConfigError::new(e.path.join("."), e.kind.to_string()));
            }
        }
    }
    errors.sort_by(|a, b| a.key.cmp(&b.key));
    errors.dedup();
    Err(ConfigErrors(errors))
}

/// The file and environment layers (without defaults), the environment variable behind each
/// key they set, and misspelt variables found on the way.
fn layers(sources: &Sources, errors: &mut Vec<ConfigError>) -> (Figment, Vec<(String, String)>) {
    let mut figment = Figment::new();
    if let Some(file) = &sources.file {
        if file.is_file() {
            figment = figment.merge(Toml::file_exact(file));
        } else {
            errors.push(ConfigError::new(
                ENV_CONFIG_FILE,
                format!("the configuration file {} does not exist", file.display()),
            ));
        }
    }
    let mut origins = Vec::new();
    for (name, value) in &sources.env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if rest.starts_with('_') {
            errors.push(ConfigError::new(
                name,
                format!(
                    "use one underscore after the prefix: {ENV_PREFIX}{}",
                    rest.trim_start_matches('_')
                ),
            ));
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        if !rest.contains("__") {
            if let Some(section) = CLUSTER_SECTIONS
                .iter()
                .find(|s| lower.starts_with(&format!("{s}_")))
            {
                errors.push(ConfigError::new(
                    name,
                    format!(
                        "not a configuration variable; separate section and key with two \
                         underscores: {ENV_PREFIX}{}__{}",
                        section.to_ascii_uppercase(),
                        &rest[section.len() + 1..]
                    ),
                ));
            }
            continue;
        }
        let key = lower.replace("__", ".");
        figment = figment.merge((key.clone(), Value::from(value.clone())));
        origins.push((key, name.clone()));
    }
    (figment, origins)
}

fn section_names<T: ServiceConfig>() -> Vec<String> {
    Figment::from(Serialized::defaults(T::default()))
        .extract::<Dict>()
        .map(|dict| dict.into_keys().collect())
        .unwrap_or_default()
}

fn collect_leaves(prefix: &str, dict: &Dict, out: &mut Vec<(String, Value)>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Dict(_, inner) if !inner.is_empty() => collect_leaves(&path, inner, out),
            other => out.push((path, other.clone())),
        }
    }
}

/// Fills `value` from `file` when the `<key>_file` form is used. Both at once, or an unreadable
/// file, is an error naming the key. A trailing newline in the file is dropped.
pub fn resolve_secret(
    key: &str,
    value: &mut Option<Secret<String>>,
    file: &Option<PathBuf>,
    errors: &mut Vec<ConfigError>,
) {
    let Some(path) = file else { return };
    if value.is_some() {
        errors.push(ConfigError::new(
            key,
            format!("set either {key} or {key}_file, not both"),
        ));
        return;
    }
    match read_secret_file(path) {
        Ok(text) => *value = Some(Secret::new(text)),
        Err(message) => errors.push(ConfigError::new(format!("{key}_file"), message)),
    }
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(text.to_string())
}

/// Requires an optional key to be set.
pub fn require<T>(key: &str, value: &Option<T>, errors: &mut Vec<ConfigError>) {
    if value.is_none() {
        errors.push(ConfigError::new(key, "is required"));
    }
}
