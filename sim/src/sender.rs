//! Syncaroo as webhook sender: signs each body with the hash profile, sends
//! it with the bearer token the platform issued, and retries on 5xx and
//! timeouts the way a webhook sender does (never on 4xx: that is an answer).

use serde_json::Value;
use std::time::Duration;
use syncaroo_shared::webhook::HashProfile;

pub struct Sender {
    http: reqwest::Client,
    pub url: String,
    pub profile: HashProfile,
    pub key: String,
    pub attempts: u32,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub status: u16,
    pub body: Value,
    pub tries: u32,
}

impl Sender {
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            http: syncaroo_shared::tls::http_client_builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            url: url.into(),
            profile: HashProfile::default(),
            key: key.into(),
            attempts: 4,
        }
    }

    /// The body with its `hash`.
    pub fn sign(&self, mut body: Value) -> Value {
        let map = body.as_object().cloned().unwrap_or_default();
        body["hash"] = Value::String(self.profile.compute(self.key.as_bytes(), &map));
        body
    }

    /// Sends `body` (already signed or deliberately not) with `bearer`.
    pub async fn send_raw(&self, bearer: &str, body: &Value) -> Result<Delivery, String> {
        let mut last = String::new();
        for try_no in 1..=self.attempts {
            let res = self
                .http
                .post(&self.url)
                .bearer_auth(bearer)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_server_error() => {
                    last = format!("HTTP {}", r.status().as_u16())
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = r.json().await.unwrap_or(Value::Null);
                    return Ok(Delivery {
                        status,
                        body,
                        tries: try_no,
                    });
                }
                Err(e) => {
                    last = if e.is_timeout() {
                        "timed out".into()
                    } else {
                        "connection failed".into()
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(try_no - 1))).await;
        }
        Err(format!("no answer after {} tries: {last}", self.attempts))
    }

    pub async fn send(&self, bearer: &str, body: Value) -> Result<Delivery, String> {
        let signed = self.sign(body);
        self.send_raw(bearer, &signed).await
    }
}
