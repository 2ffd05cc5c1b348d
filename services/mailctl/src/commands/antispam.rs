//! `mailctl antispam`: the anti-spam knobs (thresholds, scores, which tests run, greylisting,
//! auto-ban, rate limits, anti-virus). Every replica picks a change up within seconds.

use super::show;
use crate::client::{Client, Failure, segment};
use crate::output::{s, table};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum AntispamCmd {
    /// Every knob with the value in force and whether it was set (or is the default).
    Show,
    /// Set a knob. VALUE is JSON when it parses as JSON (7, true, ["exe","js"]), else text
    /// (drop, [JUNK]); quote text that looks like JSON: '"[1]"'.
    Set { key: String, value: String },
    /// Return a knob to its default.
    Reset { key: String },
}

/// VALUE as typed on the command line: JSON if it parses, otherwise a string.
pub(super) fn knob_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A knob's value for a table: text without quotes, anything else as compact JSON.
pub(super) fn knob_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn knobs(value: &Value) {
    let rows = value
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|k| vec![s(k, "name"), knob_text(&k["value"]), s(k, "set")])
        .collect();
    table(&["NAME", "VALUE", "SET"], rows);
}

fn knob(k: &Value) {
    let origin = if k["set"] == Value::Bool(true) {
        ""
    } else {
        " (default)"
    };
    println!("{} = {}{origin}", s(k, "name"), knob_text(&k["value"]));
}

pub(super) async fn set(c: &Client, key: &str, value: Value) -> Result<Value, Failure> {
    c.put(
        &format!("/antispam/{}", segment(key)),
        &json!({ "value": value }),
    )
    .await
}

pub(super) async fn antispam(c: &Client, cmd: AntispamCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        AntispamCmd::Show => show(json, &c.get("/antispam").await?, knobs),
        AntispamCmd::Set { key, value } => {
            show(json, &set(c, &key, knob_value(&value)).await?, knob);
        }
        AntispamCmd::Reset { key } => {
            let value = c.delete(&format!("/antispam/{}", segment(&key))).await?;
            show(json, &value, knob);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::knob_value;
    use serde_json::json;

    #[test]
    fn values_are_json_when_they_parse_and_text_otherwise() {
        assert_eq!(knob_value("7"), json!(7));
        assert_eq!(knob_value("true"), json!(true));
        assert_eq!(knob_value(r#"["exe","js"]"#), json!(["exe", "js"]));
        assert_eq!(knob_value("drop"), json!("drop"));
        assert_eq!(knob_value("[JUNK]"), json!("[JUNK]"));
        assert_eq!(knob_value(r#""[1]""#), json!("[1]"));
        assert_eq!(knob_value(""), json!(""));
    }
}
