//! The metrics contract between the services and what watches them: every metric name that the
//! Grafana dashboards (`ops/grafana/dashboards/*.json`) and the alerting rules
//! (`ops/prometheus/rules.yaml`, the chart's PrometheusRule in
//! `charts/mailcluster/templates/monitoring.yaml`) query is exported by a running service, and each
//! service's `/metrics` passes `promtool check metrics`.
//!
//! The four services run as real processes against the test stores. Traffic goes through each of
//! them first (SMTP AUTH, a sender over its hourly limit, a message to a local and a remote
//! recipient with the spam tests and greylisting (whitelisted) on, a refused connection, an
//! unknown recipient and a refused message; an IMAP session with a failed login and an APPEND, a
//! client that is no TLS client; admin API requests with and without the token; a housekeeping
//! pass): prometheus-client 0.25 writes no `# TYPE` line for a family without samples
//! (`Registry::encode` skips empty metrics), so on an idle service every labelled family is missing
//! from the scrape, just as it is missing from Prometheus until its first event. With this traffic
//! every family the services register shows up, so promtool lints all of them.
//!
//! What a scrape exports is read from its `# TYPE` lines: an OpenMetrics counter `x` is stored by
//! Prometheus as `x_total`, a histogram `x` as `x_bucket`, `x_sum` and `x_count`. The names a query
//! uses come from a small PromQL tokenizer (labels, functions, keywords, strings, numbers,
//! durations and Grafana variables are not metric names).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Series that Prometheus writes itself (per scrape target, and for alerts): no exporter has them.
const PROMETHEUS_SERIES: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// Metrics of exporters this test does not run (node_exporter, postgres_exporter, kube-state-metrics,
/// ...), as `(name, exporter)`. Each entry needs a comment saying which panel or alert uses it and
/// why our own services cannot export it. Empty: every query is served by our services (the
/// `process_*` metrics included, which `mc_runtime::metrics::registry` exports).
const FOREIGN_EXPORTERS: &[(&str, &str)] = &[];

/// When set to 1, the promtool checks are skipped if `.state/promtool` is missing (a developer
/// machine that never ran `ops/validate-deploy`). `ops/test` always installs promtool first.
const SKIP_PROMTOOL: &str = "MAILCLUSTER_SKIP_PROMTOOL";

/// How long the scrapes may take to show every queried family after the traffic.
const SETTLE: Duration = Duration::from_secs(30);

/// The repository root (the tests crate is `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

// --- what the dashboards and rules query -------------------------------------------------------

/// The metric names the dashboards and rules use, each with the files that use it, and the names
/// the rules record themselves.
#[derive(Debug, Default)]
struct Queries {
    used: BTreeMap<String, BTreeSet<String>>,
    recorded: BTreeSet<String>,
}

impl Queries {
    /// Every dashboard and rule file of the repository.
    fn of_repository() -> Self {
        let root = repo();
        let mut queries = Self::default();
        let dashboards = root.join("ops/grafana/dashboards");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dashboards)
            .unwrap_or_else(|e| panic!("{}: {e}", dashboards.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "no dashboards in {}",
            dashboards.display()
        );
        for path in files {
            let name = format!(
                "ops/grafana/dashboards/{}",
                path.file_name().expect("file name").to_string_lossy()
            );
            let text = std::fs::read_to_string(&path).expect("read a dashboard");
            queries
                .add_dashboard(&name, &text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for name in [
            "ops/prometheus/rules.yaml",
            "charts/mailcluster/templates/monitoring.yaml",
        ] {
            let text = std::fs::read_to_string(root.join(name)).expect("read a rules file");
            let found = queries.add_rules(name, &text);
            assert!(found > 0, "{name}: no `expr:` found");
        }
        queries
    }

    fn add_dashboard(&mut self, file: &str, json: &str) -> Result<(), String> {
        let dashboard: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        for query in dashboard_queries(&dashboard) {
            self.add_expr(file, &query);
        }
        Ok(())
    }

    /// Adds the `expr:` of every rule (and the names of recording rules); returns how many
    /// expressions it found.
    fn add_rules(&mut self, file: &str, yaml: &str) -> usize {
        self.recorded.extend(yaml_values(yaml, "record"));
        let exprs = yaml_values(yaml, "expr");
        for expr in &exprs {
            self.add_expr(file, &strip_helm_actions(expr));
        }
        exprs.len()
    }

    fn add_expr(&mut self, file: &str, expr: &str) {
        for name in promql::metric_names(expr) {
            self.used.entry(name).or_default().insert(file.to_string());
        }
    }
}

/// The PromQL of a dashboard: every `expr` (panels, rows and their nested panels, annotations)
/// of a Prometheus datasource, and the queries of `query` template variables.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut queries = Vec::new();
    collect_exprs(dashboard, &mut queries);
    let variables = dashboard
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for variable in variables {
        // `datasource`, `custom`, `interval`, `constant`, `textbox` and `adhoc` variables hold no
        // PromQL (a datasource variable's `query` is a plugin id such as "prometheus").
        if variable.get("type").and_then(Value::as_str) != Some("query") {
            continue;
        }
        let query = variable.get("query");
        let texts = [
            query.and_then(Value::as_str),
            query.and_then(|q| q.get("query")).and_then(Value::as_str),
            variable.get("definition").and_then(Value::as_str),
        ];
        queries.extend(texts.into_iter().flatten().filter_map(variable_promql));
    }
    queries
}

fn collect_exprs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            // A Loki or Elasticsearch query is no PromQL; `datasource` is the "-- Mixed --" one.
            let kind = map
                .get("datasource")
                .and_then(|d| d.get("type"))
                .and_then(Value::as_str);
            if kind.is_some_and(|k| k != "prometheus" && k != "datasource") {
                return;
            }
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    (_, value) => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

/// The PromQL inside a Grafana query-variable query: `label_values(<selector>, <label>)` queries
/// the selector (its last argument is a label), `label_values(<label>)` and `metrics(<regex>)`
/// query no metric, `query_result(<query>)` and `label_names(<selector>)` query their argument.
fn variable_promql(query: &str) -> Option<String> {
    let query = query.trim();
    let call = |name: &str| -> Option<String> {
        let rest = query.strip_prefix(name)?.trim_start();
        let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.to_string())
    };
    if let Some(args) = call("label_values") {
        let args = split_top_level(&args, ',');
        return (args.len() > 1).then(|| args[..args.len() - 1].join(","));
    }
    if call("metrics").is_some() {
        return None;
    }
    if let Some(args) = call("query_result").or_else(|| call("label_names")) {
        return Some(args);
    }
    Some(query.to_string())
}

/// `text` split at `separator`s outside brackets and strings.
fn split_top_level(text: &str, separator: char) -> Vec<String> {
    let (mut parts, mut current, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => depth -= 1,
                c if c == separator && depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            },
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// The values of every `key:` in a YAML file, read line by line (the tests crate has no YAML
/// parser): plain scalars (with continuation lines and `#` comments), quoted scalars and block
/// scalars (`|`, `>`, with chomping indicators).
fn yaml_values(yaml: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut values = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let content = line.trim_start();
        let content = content.strip_prefix("- ").map_or(content, str::trim_start);
        let Some(rest) = content.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            continue;
        }
        let indent = line.len() - content.len();
        // The lines after the key that belong to its value: more indented, or blank.
        let following: Vec<&str> = lines[index + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .copied()
            .collect();
        let rest = rest.trim();
        let value = if rest.starts_with(['|', '>']) {
            following
                .iter()
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join("\n")
        } else if let Some(quoted) = rest.strip_prefix('"') {
            let text = std::iter::once(quoted)
                .chain(following.iter().map(|l| l.trim()))
                .collect::<Vec<_>>()
                .join(" ");
            double_quoted(&text)
        } else if let Some(quoted) = rest.strip_prefix('\'') {
            let text = std::iter::once(quoted)
                .chain(following.iter().map(|l| l.trim()))
                .collect::<Vec<_>>()
                .join(" ");
            let end = single_quote_end(&text);
            text[..end].replace("''", "'")
        } else {
            std::iter::once(rest)
                .chain(following.iter().map(|l| l.trim()))
                .map(strip_yaml_comment)
                .collect::<Vec<_>>()
                .join("\n")
        };
        values.push(value.trim().to_string());
    }
    values
}

fn double_quoted(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

/// Where a single-quoted YAML scalar ends (`''` is an escaped quote).
fn single_quote_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    text.len()
}

/// A plain YAML scalar line without its comment (` #` starts one, even inside PromQL quotes).
fn strip_yaml_comment(line: &str) -> &str {
    if line.starts_with('#') {
        return "";
    }
    line.find(" #").map_or(line, |at| &line[..at]).trim_end()
}

/// A Helm template's text without its `{{ ... }}` actions (they only fill in label values here).
fn strip_helm_actions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A lexical reading of PromQL that keeps only the metric names.
mod promql {
    /// Aggregation operators, binary operators, modifiers and number words: never metric names
    /// (compared in lower case, as PromQL does).
    const KEYWORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        "and",
        "or",
        "unless",
        "atan2",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "start",
        "end",
    ];

    /// Keywords whose parenthesised list holds label names.
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];

    fn is_name_start(c: char) -> bool {
        c.is_ascii_alphabetic() || c == '_' || c == ':'
    }

    fn is_name_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_' || c == ':'
    }

    /// The metric names `expr` selects, in order of appearance (with repeats).
    pub fn metric_names(expr: &str) -> Vec<String> {
        let chars: Vec<char> = expr.chars().collect();
        let mut names = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i = match c {
                '#' => skip_while(&chars, i, |c| c != '\n'),
                '"' | '\'' | '`' => read_string(&chars, i).1,
                '{' => matchers(&chars, i, &mut names),
                // Ranges, subqueries and Grafana's [[variable]].
                '[' => skip_group(&chars, i, '[', ']'),
                '$' => variable_end(&chars, i),
                c if c.is_ascii_digit()
                    || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
                {
                    number_end(&chars, i)
                }
                c if is_name_start(c) => {
                    let end = skip_while(&chars, i, is_name_char);
                    let word: String = chars[i..end].iter().collect();
                    let next = skip_while(&chars, end, char::is_whitespace);
                    let call = chars.get(next) == Some(&'(');
                    let lower = word.to_ascii_lowercase();
                    if call && LABEL_LISTS.contains(&lower.as_str()) {
                        skip_group(&chars, next, '(', ')')
                    } else {
                        // A word before `(` is a function (rate, histogram_quantile, ...).
                        if !call && !KEYWORDS.contains(&lower.as_str()) {
                            names.push(word);
                        }
                        end
                    }
                }
                _ => i + 1,
            };
        }
        names
    }

    fn skip_while(chars: &[char], mut i: usize, keep: impl Fn(char) -> bool) -> usize {
        while i < chars.len() && keep(chars[i]) {
            i += 1;
        }
        i
    }

    /// A quoted string at `i`: its unescaped content and the index after its closing quote.
    fn read_string(chars: &[char], i: usize) -> (String, usize) {
        let quote = chars[i];
        let mut value = String::new();
        let mut j = i + 1;
        while j < chars.len() {
            match chars[j] {
                '\\' if quote != '`' => {
                    if let Some(&next) = chars.get(j + 1) {
                        value.push(next);
                    }
                    j += 2;
                }
                c if c == quote => return (value, j + 1),
                c => {
                    value.push(c);
                    j += 1;
                }
            }
        }
        (value, j)
    }

    /// The index after the group that opens at `i`, nested groups and strings included.
    fn skip_group(chars: &[char], i: usize, open: char, close: char) -> usize {
        let mut depth = 0;
        let mut j = i;
        while j < chars.len() {
            match chars[j] {
                '"' | '\'' | '`' => {
                    j = read_string(chars, j).1;
                    continue;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        j
    }

    /// `$name`, `$__rate_interval` or `${name:format}`: a Grafana variable, never a metric name.
    fn variable_end(chars: &[char], i: usize) -> usize {
        if chars.get(i + 1) == Some(&'{') {
            skip_group(chars, i + 1, '{', '}')
        } else {
            skip_while(chars, i + 1, |c| c.is_ascii_alphanumeric() || c == '_')
        }
    }

    /// A number (`0.95`, `1e-3`, `0x1f`) or a duration (`5m`, `1h30m`).
    fn number_end(chars: &[char], i: usize) -> usize {
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            let exponent_sign = (c == '+' || c == '-')
                && j > i
                && matches!(chars[j - 1], 'e' | 'E')
                && !(chars[i] == '0' && matches!(chars.get(i + 1), Some('x' | 'X')));
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
                j += 1;
            } else {
                break;
            }
        }
        j
    }

    /// Label matchers `{...}` at `i`: label names are skipped; `__name__="x"` selects metric `x`.
    fn matchers(chars: &[char], i: usize, names: &mut Vec<String>) -> usize {
        let mut j = i + 1;
        let (mut label, mut operator) = (String::new(), String::new());
        while j < chars.len() {
            match chars[j] {
                '}' => return j + 1,
                '"' | '\'' | '`' => {
                    let (value, end) = read_string(chars, j);
                    if label == "__name__" && operator == "=" {
                        names.push(value);
                    }
                    label.clear();
                    j = end;
                }
                c if is_name_start(c) => {
                    let end = skip_while(chars, j, is_name_char);
                    label = chars[j..end].iter().collect();
                    operator.clear();
                    j = end;
                }
                c @ ('=' | '!' | '~') => {
                    operator.push(c);
                    j += 1;
                }
                _ => j += 1,
            }
        }
        j
    }
}

// --- what the services export ----------------------------------------------------------------

/// One service's `/metrics`.
struct Scrape {
    service: &'static str,
    text: String,
}

/// The series names a scrape gives Prometheus, from its `# TYPE` lines.
fn exported_series(scrape: &str) -> BTreeSet<String> {
    // OpenMetrics names a counter family without `_total` (its samples have it); the Prometheus
    // text format names the family after its samples.
    let openmetrics = scrape.lines().any(|line| line.trim_end() == "# EOF");
    let mut series = BTreeSet::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        // `_created` series are left out: Prometheus drops them unless a feature flag is set.
        let suffixes: &[&str] = match kind {
            "counter" if openmetrics => &["_total"],
            "info" if openmetrics => &["_info"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "gaugehistogram" => &["_bucket", "_gsum", "_gcount"],
            "summary" => &["", "_sum", "_count"],
            _ => &[""],
        };
        series.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
    }
    series
}

/// A queried name no scrape exports.
#[derive(Debug)]
struct Mismatch {
    name: String,
    files: BTreeSet<String>,
    /// The closest exported names, with the services that export them.
    nearest: Vec<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<&str> = self.files.iter().map(String::as_str).collect();
        write!(f, "{} (used by {})", self.name, files.join(", "))?;
        if self.nearest.is_empty() {
            write!(f, ": nothing similar is exported")
        } else {
            write!(f, ": exported instead: {}", self.nearest.join(", "))
        }
    }
}

/// Every queried name that neither a scrape, Prometheus, a recording rule nor an allowed foreign
/// exporter provides.
fn mismatches(queries: &Queries, scrapes: &[Scrape]) -> Vec<Mismatch> {
    let mut exported: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for scrape in scrapes {
        for name in exported_series(&scrape.text) {
            exported.entry(name).or_default().push(scrape.service);
        }
    }
    queries
        .used
        .iter()
        .filter(|(name, _)| {
            !exported.contains_key(name.as_str())
                && !PROMETHEUS_SERIES.contains(&name.as_str())
                && !queries.recorded.contains(name.as_str())
                && !FOREIGN_EXPORTERS.iter().any(|(foreign, _)| foreign == name)
        })
        .map(|(name, files)| {
            let mut near: Vec<(usize, &String)> = exported
                .keys()
                .map(|candidate| (edit_distance(name, candidate), candidate))
                .filter(|(distance, _)| *distance <= name.len() / 3)
                .collect();
            near.sort();
            Mismatch {
                name: name.clone(),
                files: files.clone(),
                nearest: near
                    .into_iter()
                    .take(3)
                    .map(|(_, n)| format!("{n} ({})", exported[n].join(", ")))
                    .collect(),
            }
        })
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

// --- promtool ----------------------------------------------------------------------------------

/// `.state/promtool/usr/bin/promtool` (installed by `ops/validate-deploy`, which `ops/test` runs
/// before the tests); `None` only when it is missing and MAILCLUSTER_SKIP_PROMTOOL=1.
fn promtool() -> Option<PathBuf> {
    let path = repo().join(".state/promtool/usr/bin/promtool");
    if path.exists() {
        return Some(path);
    }
    if std::env::var(SKIP_PROMTOOL).is_ok_and(|v| v == "1") {
        eprintln!("{} is missing; skipped ({SKIP_PROMTOOL}=1)", path.display());
        return None;
    }
    panic!(
        "{} is missing: run ops/validate-deploy once (ops/test does), or set {SKIP_PROMTOOL}=1 \
         to skip the promtool checks",
        path.display()
    );
}

/// `promtool check metrics` on `exposition` (stdin): whether it passed, and what it said.
fn check_metrics(promtool: &Path, exposition: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said.trim().to_string())
}

/// An OpenMetrics exposition in the Prometheus text format 0.0.4, the only format
/// `promtool check metrics` (2.42) parses: a counter family takes its samples' `_total` name, and
/// the `# UNIT` and `# EOF` lines go. Given as is, promtool files every `x_total` sample under a
/// family of its own without HELP and reports "no help text" for each counter, although the
/// services say `application/openmetrics-text` and Prometheus parses them as OpenMetrics. Nothing
/// else changes, so every other complaint (names, units, help, suffixes) still comes through.
fn text_format(openmetrics: &str) -> String {
    let counters: BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(
            |rest| match rest.split_whitespace().collect::<Vec<_>>()[..] {
                [name, "counter"] if !name.ends_with("_total") => Some(name),
                _ => None,
            },
        )
        .collect();
    let mut out = String::new();
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line.trim_end() == "# EOF" {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        if let Some((prefix, rest)) = descriptor {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if counters.contains(name) {
                out.push_str(&format!("{prefix}{name}_total {tail}\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

// --- the running cluster -----------------------------------------------------------------------

/// The four services against one test database, with traffic driven through them.
struct Cluster {
    admin: mc_tests::AdminProcess,
    ingress: mc_tests::smtp::IngressProcess,
    worker: mc_tests::delivery::WorkerProcess,
    access: mc_tests::access::AccessProcess,
    _sink: mc_tests::sink::SinkProcess,
    _dns: mc_tests::dns::DnsServer,
    _db: mc_tests::TestDatabase,
}

impl Cluster {
    async fn start() -> Self {
        use mc_tests::smtp::{loopback_may_relay, seed_directory};
        let db = mc_tests::TestDatabase::migrated().await;
        seed_directory(&db).await;
        loopback_may_relay(&db).await;
        // Anti-abuse families: greylisting on with every sender whitelisted (decisions are
        // counted, nothing is deferred), and one message per hour for an authenticated sender.
        for (knob, value) in [
            ("greylist_enabled", serde_json::json!(true)),
            ("rate_sender_per_hour", serde_json::json!(1)),
        ] {
            mc_policy::AntispamSettings::set(&db.pool, knob, value)
                .await
                .expect("anti-spam setting");
        }
        mc_policy::Whitelist::new(db.pool.clone())
            .add(&mc_policy::NewWhitelistEntry {
                kind: mc_policy::WhitelistKind::Greylist,
                description: "everyone".into(),
                lower: None,
                upper: None,
                address: None,
            })
            .await
            .expect("greylist whitelist");
        // Remote mail for remote.test goes to an independent SMTP receiver (aiosmtpd).
        let sink = mc_tests::sink::SinkProcess::start(mc_tests::sink::SinkOptions::default());
        mc_tests::delivery::route(
            &db,
            "remote.test",
            "127.0.0.1",
            sink.port(),
            mc_policy::TlsMode::None,
            None,
            None,
        )
        .await;
        let dns = mc_tests::dns::DnsServer::start(mc_tests::dns::Zone::default());
        let admin = mc_tests::AdminProcess::start(&db.url);
        // One connection per address, so that a second one is refused.
        let ingress = mc_tests::smtp::IngressProcess::start(
            &db,
            &[("MAILCLUSTER_SMTP__MAX_CONNECTIONS_PER_IP", "1")],
        );
        let dns_servers = format!("[\"{}\"]", dns.addr());
        let worker = mc_tests::delivery::WorkerProcess::start(
            &db,
            &ingress.s3_prefix,
            &[
                ("MAILCLUSTER_DELIVERY__DNS_SERVERS", dns_servers.as_str()),
                // Loopback is the sink here, not this cluster.
                ("MAILCLUSTER_DELIVERY__OWN_NETWORKS", "[]"),
                // A housekeeping pass within the test (it records even when nothing is removed).
                ("MAILCLUSTER_DELIVERY__HOUSEKEEPING_INTERVAL_SECS", "1"),
            ],
        );
        let access = mc_tests::access::AccessProcess::start(&db, &ingress.s3_prefix, &[]);
        let cluster = Self {
            admin,
            ingress,
            worker,
            access,
            _sink: sink,
            _dns: dns,
            _db: db,
        };
        cluster.drive_traffic().await;
        cluster
    }

    async fn drive_traffic(&self) {
        use std::io::{Read, Write};
        // SMTP: a failed and a good AUTH (smtplib); one message to a local and a remote
        // recipient; a second connection while the first is open (over the limit of one per
        // address); an unknown recipient; a message with a bare LF (refused).
        let auth = mc_tests::smtp::smtplib(
            self.ingress.submissions_port,
            mc_tests::smtp::Tls::Implicit,
            serde_json::json!([
                ["auth", "PLAIN", "alice@example.test", "wrong"],
                [
                    "auth",
                    "PLAIN",
                    "alice@example.test",
                    mc_tests::smtp::PASSWORD
                ],
                ["mail", "alice@example.test"],
                ["cmd", "RSET"],
                // Over rate_sender_per_hour (1): refused.
                ["mail", "alice@example.test"],
            ]),
        );
        let codes: Vec<&str> = auth.steps.iter().map(|s| &s[..3]).collect();
        assert_eq!(codes, ["535", "235", "250", "250", "451"], "{auth:?}");
        self.wait_for_no_smtp_session();
        let (mut client, banner) = mc_tests::smtp::RawClient::connect(self.ingress.mx_port);
        assert_eq!(banner.code, 220);
        let mut second = std::net::TcpStream::connect(("127.0.0.1", self.ingress.mx_port))
            .expect("connect to the MX port");
        second
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut refused = String::new();
        let _ = second.read_to_string(&mut refused);
        assert!(refused.starts_with("421"), "{refused:?}");
        assert_eq!(client.cmd("EHLO client.test").code, 250);
        assert_eq!(client.cmd("MAIL FROM:<alice@example.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<bob@example.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<someone@remote.test>").code, 250);
        assert_eq!(client.cmd("DATA").code, 354);
        let reply = client.cmd(
            "From: <alice@example.test>\r\nTo: <bob@example.test>, <someone@remote.test>\r\n\
             Subject: metrics\r\nMessage-ID: <metrics@example.test>\r\n\r\nHello.\r\n.",
        );
        assert_eq!(reply.code, 250, "{reply:?}");
        assert_eq!(client.cmd("MAIL FROM:<alice@example.test>").code, 250);
        assert_eq!(client.cmd("RCPT TO:<nobody@example.test>").code, 550);
        assert_eq!(client.cmd("RCPT TO:<bob@example.test>").code, 250);
        assert_eq!(client.cmd("DATA").code, 354);
        let reply = client.cmd("Subject: bare\r\n\r\nbare\nline\r\n.");
        assert_eq!(reply.code, 554, "{reply:?}");
        assert_eq!(client.cmd("QUIT").code, 221);
        self._sink.wait_for(1, Duration::from_secs(20));
        mc_tests::delivery::wait_for_inbox(&self._db, "bob@example.test", 1, &self.worker).await;

        // IMAP (Python's imaplib): a wrong password, a login, FETCH and an APPEND.
        let out = self.access.python(
            r#"
import imaplib, json, os, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA_FILE"])
ctx.check_hostname = False
out = {}
m = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["IMAPS_PORT"]), ssl_context=ctx)
try:
    m.login("bob@example.test", "wrong")
    out["wrong"] = "accepted"
except imaplib.IMAP4.error as e:
    out["wrong"] = "refused"
out["login"] = m.login("bob@example.test", os.environ["PASSWORD"])[0]
out["select"] = m.select("INBOX")[0]
out["fetch"] = m.fetch("1", "(BODY.PEEK[])")[0]
out["append"] = m.append("INBOX", None, None, b"Subject: appended\r\n\r\nHi.\r\n")[0]
m.logout()
print(json.dumps(out))
"#,
        );
        for (step, expected) in [
            ("wrong", "refused"),
            ("login", "OK"),
            ("select", "OK"),
            ("fetch", "OK"),
            ("append", "OK"),
        ] {
            assert_eq!(out[step], expected, "{step}: {out}");
        }

        // A client that speaks no TLS on the implicit-TLS port: a refused connection.
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.access.imaps_port))
            .expect("connect to IMAPS");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .write_all(b"A1 CAPABILITY\r\n")
            .expect("write to IMAPS");
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);

        // The admin API: a request with the token, one without.
        let listed = self.admin.mailctl(&["domain", "list"]);
        assert!(listed.status.success(), "{}", mc_tests::stderr(&listed));
        let refused = mc_tests::mailctl(&self.admin.api_url, None, &["domain", "list"], None);
        assert!(!refused.status.success(), "{}", mc_tests::stdout(&refused));
    }

    /// Waits until the ingress has no session open (the limit of one per address is free).
    fn wait_for_no_smtp_session(&self) {
        let started = Instant::now();
        let url = format!("{}/metrics", self.ingress.ops_url);
        while !mc_tests::http_get(&url)
            .unwrap_or_default()
            .lines()
            .any(|line| line == "mailcluster_smtp_active_sessions 0")
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "an SMTP session stays open"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn scrapes(&self) -> Vec<Scrape> {
        [
            ("admin", &self.admin.ops_url),
            ("smtp-ingress", &self.ingress.ops_url),
            ("delivery-worker", &self.worker.ops_url),
            ("access", &self.access.ops_url),
        ]
        .into_iter()
        .map(|(service, url)| Scrape {
            service,
            text: mc_tests::http_get(&format!("{url}/metrics"))
                .unwrap_or_else(|| panic!("{service}: no answer on {url}/metrics")),
        })
        .collect()
    }

    /// The scrapes once every queried name shows (or after [`SETTLE`]; some families record
    /// asynchronously: change notices come back through Redis, housekeeping runs on a timer).
    fn settled_scrapes(&self, queries: &Queries) -> Vec<Scrape> {
        let started = Instant::now();
        loop {
            let scrapes = self.scrapes();
            if mismatches(queries, &scrapes).is_empty() || started.elapsed() > SETTLE {
                return scrapes;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The contract itself. A failure lists each unknown name, the files that query it and the closest
/// names the services do export.
#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_dashboards_and_alerts_query_is_exported_by_a_running_service() {
    let queries = Queries::of_repository();
    for (name, files) in &queries.used {
        eprintln!(
            "queried: {name} ({})",
            files.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let cluster = Cluster::start().await;
    let scrapes = cluster.settled_scrapes(&queries);
    let missing = mismatches(&queries, &scrapes);
    let exported: BTreeSet<String> = scrapes
        .iter()
        .flat_map(|s| exported_series(&s.text))
        .collect();
    assert!(
        missing.is_empty(),
        "{} queried metric name(s) are exported by no service (after traffic through all four; a \
         labelled family appears only with its first sample):\n  {}\n\nexported: {}",
        missing.len(),
        missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  "),
        exported.into_iter().collect::<Vec<_>>().join(" ")
    );
}

/// Each live `/metrics` is OpenMetrics and, in the text format promtool reads (see
/// [`text_format`]), draws no complaint at all from `promtool check metrics`.
#[tokio::test(flavor = "multi_thread")]
async fn every_service_metrics_endpoint_passes_promtool_check_metrics() {
    let Some(promtool) = promtool() else { return };
    let queries = Queries::of_repository();
    let cluster = Cluster::start().await;
    let mut failures = Vec::new();
    for scrape in cluster.settled_scrapes(&queries) {
        assert!(
            scrape.text.trim_end().ends_with("# EOF"),
            "{}: not OpenMetrics:\n{}",
            scrape.service,
            scrape.text
        );
        let (passed, said) = check_metrics(&promtool, &text_format(&scrape.text));
        if !passed || !said.is_empty() {
            failures.push(format!(
                "{}:\n{said}\n--- scrape:\n{}",
                scrape.service, scrape.text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "promtool check metrics:\n{}",
        failures.join("\n")
    );
}

/// The store metrics follow the real traffic: each role counts the PostgreSQL operations, object
/// storage requests and Redis commands its part of the traffic made, none of them failed, and each
/// reports its connection pool.
#[tokio::test(flavor = "multi_thread")]
async fn store_metrics_count_what_each_role_asked_of_the_stores() {
    let queries = Queries::of_repository();
    let cluster = Cluster::start().await;
    let scrapes = cluster.settled_scrapes(&queries);
    let value = |service: &str, series: String| -> f64 {
        let scrape = scrapes
            .iter()
            .find(|s| s.service == service)
            .expect("a scrape per service");
        mc_tests::sample(&scrape.text, &series)
            .unwrap_or_else(|| panic!("{service} does not export {series}:\n{}", scrape.text))
    };
    let db = |service: &str, operation: &str, result: &str| {
        value(
            service,
            format!(
                "mailcluster_db_operations_total{{operation=\"{operation}\",result=\"{result}\"}}"
            ),
        )
    };
    let blob = |service: &str, op: &str, result: &str| {
        value(
            service,
            format!("mailcluster_blob_operations_total{{op=\"{op}\",result=\"{result}\"}}"),
        )
    };
    for (service, operation) in [
        ("smtp-ingress", "authenticate"),
        ("smtp-ingress", "directory_lookup"),
        ("smtp-ingress", "queue_intake"),
        ("delivery-worker", "queue_claim"),
        ("delivery-worker", "mailbox_delivery"),
        ("delivery-worker", "queue_finish"),
        ("access", "authenticate"),
        ("access", "mailbox_sync"),
        ("access", "message_fetch"),
        ("access", "message_append"),
    ] {
        assert!(
            db(service, operation, "ok") >= 1.0,
            "{service}: no {operation} counted"
        );
        let count =
            format!("mailcluster_db_operation_duration_seconds_count{{operation=\"{operation}\"}}");
        assert!(
            value(service, count) >= 1.0,
            "{service}: {operation} not timed"
        );
    }
    // The message stored by the ingress, read by the worker for the remote recipient; the IMAP
    // FETCH read it, the APPEND stored one.
    for (service, op) in [
        ("smtp-ingress", "put"),
        ("delivery-worker", "get"),
        ("access", "get"),
        ("access", "put"),
    ] {
        assert!(blob(service, op, "ok") >= 1.0, "{service}: no blob {op}");
    }
    let bytes = |service: &str, direction: &str| {
        value(
            service,
            format!("mailcluster_blob_bytes_total{{direction=\"{direction}\"}}"),
        )
    };
    assert!(bytes("smtp-ingress", "upload") > 0.0);
    assert!(bytes("access", "download") > 0.0);
    // The authenticated sender's hourly count.
    assert!(
        value(
            "smtp-ingress",
            "mailcluster_redis_commands_total{group=\"rate_limit\",result=\"ok\"}".into()
        ) >= 2.0
    );
    for service in ["admin", "smtp-ingress", "delivery-worker", "access"] {
        for operation in mc_runtime::store_metrics::DbOp::ALL {
            for result in ["error", "timeout"] {
                assert_eq!(
                    db(service, operation.as_str(), result),
                    0.0,
                    "{service}: {operation:?} {result}"
                );
            }
        }
        for op in mc_runtime::store_metrics::BlobOp::ALL {
            assert_eq!(
                blob(service, op.as_str(), "error"),
                0.0,
                "{service}: blob {op:?}"
            );
        }
        let max = value(service, "mailcluster_db_pool_max_connections".into());
        let in_use = value(
            service,
            "mailcluster_db_pool_connections{state=\"in_use\"}".into(),
        );
        let idle = value(
            service,
            "mailcluster_db_pool_connections{state=\"idle\"}".into(),
        );
        assert!(max >= 1.0, "{service}: pool of {max}");
        assert!(
            in_use >= 0.0 && idle >= 0.0 && in_use + idle <= max,
            "{service}: {in_use} + {idle} > {max}"
        );
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        promql::metric_names(expr)
    }

    #[test]
    fn the_real_queries_yield_only_their_metric_names() {
        // Copied from ops/grafana/dashboards/*.json, ops/prometheus/rules.yaml and the chart.
        let cases: &[(&str, &[&str])] = &[
            (
                r#"histogram_quantile(0.95, sum by (protocol, command, le) (rate(mailcluster_access_command_duration_seconds_bucket{command!="IDLE", instance=~"$instance"}[$__rate_interval])))"#,
                &["mailcluster_access_command_duration_seconds_bucket"],
            ),
            (
                r#"sum by (protocol) (rate(mailcluster_access_logins_total{result="failure", instance=~"$instance"}[$__rate_interval])) / sum by (protocol) (rate(mailcluster_access_logins_total{instance=~"$instance"}[$__rate_interval]))"#,
                &[
                    "mailcluster_access_logins_total",
                    "mailcluster_access_logins_total",
                ],
            ),
            (
                r#"count by (version) (mailcluster_build_info{role="access", instance=~"$instance"})"#,
                &["mailcluster_build_info"],
            ),
            (
                "max by (state) (mailcluster_admin_queue_recipients)",
                &["mailcluster_admin_queue_recipients"],
            ),
            (
                r#"rate(process_cpu_seconds_total{job=~"$job"}[$__rate_interval])"#,
                &["process_cpu_seconds_total"],
            ),
            (
                "absent(up{job=\"smtp-ingress\"}) or absent(up{job=\"access\"}) or absent(up{job=\"delivery-worker\"})\nor absent(up{job=\"admin\"})",
                &["up", "up", "up", "up"],
            ),
            (
                r#"sum by (service) (up{namespace="", service=~"-.*-metrics"}) == 0"#,
                &["up"],
            ),
            ("vector(1) == 0", &[]),
        ];
        for (expr, expected) in cases {
            assert_eq!(names(expr), *expected, "{expr}");
        }
    }

    #[test]
    fn labels_functions_keywords_strings_numbers_durations_and_variables_are_no_metric_names() {
        let cases: &[(&str, &[&str])] = &[
            (
                "a_total * on (instance) group_left (version) b_info",
                &["a_total", "b_info"],
            ),
            (
                "sum without (le) (x) > bool 1e-3 unless ignoring(job) y or on() vector(0)",
                &["x", "y"],
            ),
            (
                "sum(x) by (job) and max_over_time(y[1h30m:5m])",
                &["x", "y"],
            ),
            ("SUM BY (job) (X) OFFSET 5m", &["X"]),
            ("topk(5, x) / 0x1F + .5 - Inf * NaN + 2.5e+3", &["x"]),
            (
                "time() - process_start_time_seconds @ start()",
                &["process_start_time_seconds"],
            ),
            (
                r#"label_replace(x, "dst", "$1", "src", "(.*)") # a comment naming y"#,
                &["x"],
            ),
            (
                "rate(x[[[interval]]]) + $metric + ${other:regex} + [[var]]",
                &["x"],
            ),
            (
                r#"x{a="}{[(", b=~'it''s', c!~`raw\`} * job:requests:rate5m"#,
                &["x", "job:requests:rate5m"],
            ),
            ("count_values(\"version\", build) by (version)", &["build"]),
        ];
        for (expr, expected) in cases {
            assert_eq!(names(expr), *expected, "{expr}");
        }
    }

    #[test]
    fn a_name_matcher_selects_its_metric() {
        assert_eq!(
            names(r#"{__name__="foo_total", job="x"} + {__name__=~"bar.*"}"#),
            ["foo_total"]
        );
    }

    #[test]
    fn grafana_variable_functions_yield_their_selector_only() {
        assert_eq!(
            variable_promql(
                r#"label_values(up{job=~"smtp-ingress|access|delivery-worker|admin"}, job)"#
            )
            .as_deref(),
            Some(r#"up{job=~"smtp-ingress|access|delivery-worker|admin"}"#)
        );
        assert_eq!(variable_promql("label_values(instance)"), None);
        assert_eq!(variable_promql("metrics(mailcluster_.*)"), None);
        assert_eq!(
            variable_promql("query_result(topk(3, x_total))").as_deref(),
            Some("topk(3, x_total)")
        );
        assert_eq!(
            variable_promql(r#"label_values(x{a="1", b="2"}, instance)"#).as_deref(),
            Some(r#"x{a="1", b="2"}"#)
        );
    }

    #[test]
    fn the_dashboard_walk_reaches_nested_rows_annotations_and_query_variables() {
        let dashboard = serde_json::json!({
            "annotations": {"list": [{"datasource": {"type": "prometheus"}, "expr": "changes(a[1h])"}]},
            "panels": [
                {"type": "row", "collapsed": true, "panels": [
                    {"targets": [{"expr": "b"}, {"expr": "c"}]}
                ]},
                {"datasource": {"type": "loki"}, "targets": [{"expr": "{app=\"x\"} |= \"error\""}]},
                {"targets": [{"datasource": {"type": "prometheus", "uid": "${datasource}"}, "expr": "d"}]}
            ],
            "rows": [{"panels": [{"targets": [{"expr": "e"}]}]}],
            "templating": {"list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "interval", "type": "interval", "query": "1m,5m"},
                {"name": "role", "type": "query", "query": {"query": "label_values(f, role)"},
                 "definition": "label_values(f, role)"},
                {"name": "pod", "type": "query", "query": "label_values(g{role=\"$role\"}, pod)"}
            ]}
        });
        let mut queries = Queries::default();
        queries
            .add_dashboard("x.json", &dashboard.to_string())
            .expect("valid JSON");
        let used: Vec<&str> = queries.used.keys().map(String::as_str).collect();
        assert_eq!(used, ["a", "b", "c", "d", "e", "f", "g"]);
    }

    #[test]
    fn rule_exprs_are_read_from_plain_quoted_and_block_scalars() {
        let yaml = r#"groups:
  - name: g
    rules:
      - record: job:a:rate5m
        expr: sum by (job) (rate(a_total[5m]))  # a comment with b
      - alert: Folded
        expr: >-
          absent(c{job="x"})
          or absent(d)
        for: 5m
      - alert: Literal
        expr: |
          e
            / f
        labels: {severity: warning}
      - alert: Quoted
        expr: "g{x=\"1\"} > 0"
      - alert: Single
        expr: 'h{x=''1''} > 0'
      - alert: Continued
        expr: i
          + j
        annotations:
          description: "expr: not_a_query"
"#;
        let mut queries = Queries::default();
        assert_eq!(queries.add_rules("rules.yaml", yaml), 6);
        let used: Vec<&str> = queries.used.keys().map(String::as_str).collect();
        assert_eq!(used, ["a_total", "c", "d", "e", "f", "g", "h", "i", "j"]);
        assert!(queries.recorded.contains("job:a:rate5m"));
    }

    #[test]
    fn helm_actions_in_the_chart_rules_are_ignored() {
        let line = r#"          expr: sum by (protocol) (rate(mailcluster_access_logins_total{namespace="{{ .Release.Namespace }}", service="{{ $fullname }}-access-metrics", result="failure"}[5m])) > 1"#;
        let mut queries = Queries::default();
        queries.add_rules("monitoring.yaml", line);
        let used: Vec<&str> = queries.used.keys().map(String::as_str).collect();
        assert_eq!(used, ["mailcluster_access_logins_total"]);
        assert_eq!(strip_helm_actions("a{{ $x }}b{{- y -}}c"), "abc");
    }

    #[test]
    fn type_lines_give_the_series_names_prometheus_stores() {
        let openmetrics = "# TYPE c counter\nc_total 1\n# TYPE h histogram\n# TYPE g gauge\n\
                           # TYPE s summary\n# TYPE i info\n# EOF\n";
        let series: Vec<String> = exported_series(openmetrics).into_iter().collect();
        assert_eq!(
            series,
            [
                "c_total", "g", "h_bucket", "h_count", "h_sum", "i_info", "s", "s_count", "s_sum"
            ]
        );
        let text = "# TYPE c_total counter\nc_total 1\n# TYPE d counter\nd 1\n";
        let series: Vec<String> = exported_series(text).into_iter().collect();
        assert_eq!(series, ["c_total", "d"]);
    }

    /// The self-test: the comparison reports a misspelled name, with its file and the right name.
    #[test]
    fn a_misspelled_dashboard_metric_is_reported_with_its_file() {
        let dashboard = r#"{"panels": [{"targets": [
            {"expr": "sum(rate(mailcluster_smtp_sesions_total[5m]))"},
            {"expr": "sum by (listener) (rate(mailcluster_smtp_sessions_total[5m]))"}
        ]}]}"#;
        let mut queries = Queries::default();
        queries.add_dashboard("smtp.json", dashboard).expect("JSON");
        let scrapes = [Scrape {
            service: "smtp-ingress",
            text: "# TYPE mailcluster_smtp_sessions counter\n\
                   mailcluster_smtp_sessions_total{listener=\"mx\"} 1\n# EOF\n"
                .into(),
        }];
        let missing = mismatches(&queries, &scrapes);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(
            missing[0].to_string(),
            "mailcluster_smtp_sesions_total (used by smtp.json): exported instead: \
             mailcluster_smtp_sessions_total (smtp-ingress)"
        );
    }

    #[test]
    fn a_histogram_or_counter_queried_by_its_family_name_is_reported() {
        let mut queries = Queries::default();
        queries.add_rules(
            "rules.yaml",
            "expr: histogram_quantile(0.9, rate(latency_seconds[5m])) > rate(requests[5m])\n\
             expr: up == 0 or ALERTS or foreign_metric or recorded:x",
        );
        queries.recorded.insert("recorded:x".into());
        let scrapes = [Scrape {
            service: "s",
            text: "# TYPE latency_seconds histogram\n# TYPE requests counter\n# EOF\n".into(),
        }];
        let missing: Vec<String> = mismatches(&queries, &scrapes)
            .into_iter()
            .map(|m| m.name)
            .collect();
        // `up` and `ALERTS` come from Prometheus, `recorded:x` from a rule; `foreign_metric` is
        // in no allow-list.
        assert_eq!(missing, ["foreign_metric", "latency_seconds", "requests"]);
    }

    #[test]
    fn openmetrics_counters_become_total_families_in_the_text_format() {
        let openmetrics = "# HELP x Things.\n# TYPE x counter\n# UNIT x bytes\nx_total 1\n\
                           # HELP g Now.\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            text_format(openmetrics),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 1\n\
             # HELP g Now.\n# TYPE g gauge\ng 2\n"
        );
    }

    /// The promtool check can fail: an abbreviated unit and a missing help text are reported.
    #[test]
    fn promtool_reports_an_abbreviated_unit_and_a_missing_help() {
        let Some(promtool) = promtool() else { return };
        let good = "# HELP mailcluster_x_seconds Time.\n# TYPE mailcluster_x_seconds gauge\n\
                    mailcluster_x_seconds 1\n# EOF\n";
        assert_eq!(
            check_metrics(&promtool, &text_format(good)),
            (true, String::new())
        );
        let bad = "# HELP mailcluster_x_duration_ms Time.\n# TYPE mailcluster_x_duration_ms gauge\n\
                   mailcluster_x_duration_ms 1\n# TYPE mailcluster_y counter\n\
                   mailcluster_y_total 1\n# EOF\n";
        let (passed, said) = check_metrics(&promtool, &text_format(bad));
        assert!(!passed, "{said}");
        assert!(
            said.contains("mailcluster_x_duration_ms") && said.contains("abbreviated units"),
            "{said}"
        );
        assert!(said.contains("mailcluster_y_total no help text"), "{said}");
    }
}
