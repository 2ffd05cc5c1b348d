//! The spam verdict: the tests that fired with their points, the total against the mark and
//! delete thresholds, and the headers written on marked mail.

/// One test that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Short test name, also the metric label: `spf`, `helo`, `mx`, `dnsbl`, `dkim`, `dmarc`,
    /// `surbl`, `spamassassin`.
    pub test: &'static str,
    pub score: i32,
    /// Why, for `X-Spam-Reason` and the rejection text.
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub hits: Vec<Hit>,
    /// Forces the message to be treated as spam whatever its score (DMARC quarantine).
    pub forced: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    Mark,
    Delete,
}

impl Verdict {
    pub fn add(&mut self, test: &'static str, score: i32, reason: impl Into<String>) {
        self.hits.push(Hit {
            test,
            score,
            reason: reason.into(),
        });
    }

    pub fn total(&self) -> i32 {
        self.hits.iter().map(|h| h.score).sum()
    }

    pub fn outcome(&self, mark: i32, delete: i32) -> Outcome {
        let total = self.total();
        if total >= delete {
            Outcome::Delete
        } else if total >= mark || self.forced {
            Outcome::Mark
        } else {
            Outcome::Clean
        }
    }

    /// The reason of the test with the highest score, for a rejection text.
    pub fn main_reason(&self) -> Option<&str> {
        self.hits
            .iter()
            .max_by_key(|h| h.score)
            .map(|h| h.reason.as_str())
    }

    /// `X-Spam-Flag`, `X-Spam-Status` and (with `reasons`) one `X-Spam-Reason` per hit.
    pub fn headers(&self, mark: i32, status: bool, reasons: bool) -> String {
        let mut out = String::new();
        if status {
            let tests: Vec<&str> = self.hits.iter().map(|h| h.test).collect();
            out.push_str("X-Spam-Flag: YES\r\n");
            out.push_str(&format!(
                "X-Spam-Status: Yes, score={} required={} tests={}\r\n",
                self.total(),
                mark,
                if tests.is_empty() {
                    "none".to_string()
                } else {
                    tests.join(",")
                }
            ));
        }
        if reasons {
            for hit in &self.hits {
                out.push_str(&format!(
                    "X-Spam-Reason: {} - (Score: {})\r\n",
                    one_line(&hit.reason),
                    hit.score
                ));
            }
        }
        out
    }
}

/// Header-safe text: no line ends or control characters, at most 200 characters.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_headers() {
        let mut v = Verdict::default();
        assert_eq!(v.outcome(5, 20), Outcome::Clean);
        v.add("spf", 3, "SPF fail for b.test");
        assert_eq!(v.outcome(5, 20), Outcome::Clean);
        v.add("mx", 2, "no MX\r\nInjected: x");
        assert_eq!(v.outcome(5, 20), Outcome::Mark);
        assert_eq!(
            v.headers(5, true, true),
            "X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=5 required=5 tests=spf,mx\r\nX-Spam-Reason: SPF fail for b.test - (Score: 3)\r\nX-Spam-Reason: no MX  Injected: x - (Score: 2)\r\n"
        );
        v.add("dnsbl", 15, "listed");
        assert_eq!(v.outcome(5, 20), Outcome::Delete);
        assert_eq!(v.main_reason(), Some("listed"));
        let forced = Verdict {
            hits: vec![],
            forced: true,
        };
        assert_eq!(forced.outcome(5, 20), Outcome::Mark);
    }
}
