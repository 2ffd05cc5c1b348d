//! The HTTP client of the admin API.

use serde::Serialize;
use serde_json::Value;

/// Why a command failed; decides the exit status.
#[derive(Debug)]
pub enum Failure {
    /// The API refused the request (4xx) or failed (5xx): exit 1.
    Api { status: u16, message: String },
    /// The API could not be reached: exit 69 (EX_UNAVAILABLE).
    Unreachable(String),
    /// Bad input found before anything was sent: exit 2.
    Usage(String),
    /// Anything else (migrations, I/O): exit 1.
    Other(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api { .. } | Self::Other(_) => 1,
            Self::Usage(_) => 2,
            Self::Unreachable(_) => 69,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api { status, message } => write!(f, "{message} (HTTP {status})"),
            Self::Unreachable(message) | Self::Usage(message) | Self::Other(message) => {
                f.write_str(message)
            }
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(base: &str, token: String) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| Failure::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn get_query(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        self.send(self.http.get(self.url(path)).query(query)).await
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<Value, Failure> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &impl Serialize) -> Result<Value, Failure> {
        self.send(self.http.put(self.url(path)).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &impl Serialize) -> Result<Value, Failure> {
        self.send(self.http.patch(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, Failure> {
        self.send(self.http.delete(self.url(path))).await
    }

    pub async fn delete_query(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        self.send(self.http.delete(self.url(path)).query(query))
            .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| {
            Failure::Unreachable(format!("cannot reach the admin API at {}: {e}", self.base))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Unreachable(format!("the admin API connection failed: {e}")))?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        let message = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("the admin API answered {status}"));
        Err(Failure::Api {
            status: status.as_u16(),
            message,
        })
    }
}

/// Percent-encodes one path segment (addresses contain `@`, quoted local parts anything).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@+".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::segment("alice@example.test"), "alice@example.test");
        assert_eq!(super::segment("a/b c"), "a%2Fb%20c");
        assert_eq!(super::segment("\"x y\"@ex.test"), "%22x%20y%22@ex.test");
        assert_eq!(super::segment("jörg@x.test"), "j%C3%B6rg@x.test");
    }
}
