//! `mailctl dkim`: the DKIM signing key of a hosted domain, shown as the TXT record to publish.
//! The private key never leaves the cluster.

use super::show;
use crate::client::{Client, Failure, segment};
use crate::output;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub(super) enum DkimCmd {
    /// Make a new RSA-2048 key (replacing the old one) and print its TXT record.
    Generate {
        domain: String,
        /// The selector: the record is published at SELECTOR._domainkey.DOMAIN [default: mail].
        #[arg(long)]
        selector: Option<String>,
    },
    /// Print the TXT record of the current key.
    Show { domain: String },
}

pub(super) async fn dkim(c: &Client, cmd: DkimCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        DkimCmd::Generate { domain, selector } => {
            let body = match selector {
                Some(selector) => json!({ "selector": selector }),
                None => json!({}),
            };
            let path = format!("/domains/{}/dkim", segment(&domain));
            show(json, &c.post(&path, &body).await?, print);
        }
        DkimCmd::Show { domain } => show(
            json,
            &c.get(&format!("/domains/{}/dkim", segment(&domain)))
                .await?,
            print,
        ),
    }
    Ok(())
}

/// The record of a DKIM key, then the TXT record in zone-file syntax: once as one string (what
/// most DNS providers' forms take), once split into strings of at most 255 characters (what a
/// zone file needs for a value that long; RFC 1035 §3.3, RFC 6376 §3.6.2.2).
fn print(d: &Value) {
    let name = format!("{}.", output::s(d, "txt_name"));
    let value = output::s(d, "txt_value");
    output::record(vec![
        ("domain", output::s(d, "domain")),
        ("selector", output::s(d, "selector")),
        ("created", output::s(d, "created_at")),
        ("name", name.clone()),
        ("value", value.clone()),
    ]);
    println!();
    println!("{}", txt_record(&name, std::slice::from_ref(&value)));
    let strings = txt_strings(&value);
    if strings.len() > 1 {
        println!();
        println!("In a zone file, as strings of at most {TXT_STRING_MAX} characters:");
        println!("{}", txt_record(&name, &strings));
    }
}

/// The longest character-string a TXT record holds (RFC 1035 §3.3).
const TXT_STRING_MAX: usize = 255;

fn txt_strings(value: &str) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    chars
        .chunks(TXT_STRING_MAX)
        .map(|chunk| chunk.iter().collect())
        .collect()
}

fn txt_record(name: &str, strings: &[String]) -> String {
    let quoted: Vec<String> = strings
        .iter()
        .map(|text| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name} IN TXT {}", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn txt_values_split_into_strings_of_at_most_255_characters() {
        let value = format!("v=DKIM1; k=rsa; p={}", "A".repeat(392));
        let strings = super::txt_strings(&value);
        assert_eq!(
            strings.iter().map(String::len).collect::<Vec<_>>(),
            [255, 155]
        );
        assert_eq!(strings.concat(), value);
        assert_eq!(super::txt_strings("short"), ["short"]);
        assert_eq!(
            super::txt_record("a._domainkey.x.test.", &["v=\"1\"".into(), "b".into()]),
            r#"a._domainkey.x.test. IN TXT "v=\"1\"" "b""#
        );
    }
}
