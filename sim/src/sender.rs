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

/// The webhook signature as `--hash ALG:ENCODING:KEY[:jcs]` gives it:
/// ALG `hmac-sha256` | `hmac-sha512` | `sha256`, ENCODING `hex` |
/// `base64`, KEY `client-secret` (yourClientSecret) or the key itself;
/// the hash always covers the body's RFC 8785 canonical JSON without
/// `hash` (`jcs`, the only canonicalization the kit sends so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub profile: HashProfile,
    /// `None`: yourClientSecret.
    pub key: Option<String>,
}

impl Signature {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() < 3 {
            return Err(format!(
                "--hash {spec:?}: expected ALG:ENCODING:KEY[:CANON]"
            ));
        }
        let key_end = match parts.last() {
            Some(&"jcs") if parts.len() > 3 => parts.len() - 1,
            Some(&"raw") if parts.len() > 3 => {
                return Err(format!(
                    "--hash {spec:?}: the kit signs RFC 8785 canonical JSON (jcs) only, so far"
                ))
            }
            _ => parts.len(),
        };
        let key = parts[2..key_end].join(":");
        let profile = HashProfile::parse(parts[0], parts[1], "client_secret")
            .map_err(|e| format!("--hash {spec:?}: {e}"))?;
        Ok(Self {
            profile,
            key: (key != "client-secret").then_some(key),
        })
    }
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

    /// Signs as `sig` says (its key, or `client_secret` for KEY
    /// `client-secret`).
    pub fn with_signature(mut self, sig: &Signature, client_secret: &str) -> Self {
        self.profile = sig.profile.clone();
        self.key = sig.key.clone().unwrap_or_else(|| client_secret.to_string());
        self
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

#[cfg(test)]
mod tests {
    use super::*;
    use syncaroo_shared::webhook::{HashAlgorithm, HashEncoding};

    #[test]
    fn a_signature_spec_names_algorithm_encoding_and_key() {
        let ours = Signature::parse("hmac-sha256:hex:client-secret:jcs").unwrap();
        assert_eq!((ours.profile, ours.key), (HashProfile::default(), None));
        let theirs = Signature::parse("hmac-sha512:base64:k:with:colons").unwrap();
        assert_eq!(theirs.profile.algorithm, HashAlgorithm::HmacSha512);
        assert_eq!(theirs.profile.encoding, HashEncoding::Base64);
        assert_eq!(theirs.key.as_deref(), Some("k:with:colons"));
        for bad in [
            "hmac-sha256:hex",
            "md5:hex:client-secret",
            "sha256:b32:k",
            "sha256:hex:k:raw",
        ] {
            assert!(Signature::parse(bad).is_err(), "{bad}");
        }
    }
}
