//! The guide's two token requests to Syncaroo, with the failure classes the
//! token provider acts on.

use super::NewCredentials;
use crate::secrets::SecretString;
use serde::Deserialize;
use std::time::Duration;

/// Bodies larger than this are not read: a token response is ~200 bytes.
const MAX_TOKEN_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Syncaroo refused the grant: the refresh token or code is dead.
    #[error("Syncaroo refused the grant (invalid_grant)")]
    InvalidGrant,
    /// Any other refusal (invalid_client, a 4xx): needs an admin.
    #[error("Syncaroo refused the request: HTTP {status} {code}")]
    Rejected { status: u16, code: String },
    /// 200, but not the token JSON: the grant may be spent.
    #[error("Syncaroo answered with an unreadable token response")]
    Malformed,
    /// Timeout, connection failure, 429 or 5xx: worth retrying.
    #[error("Syncaroo is unavailable: {0}")]
    Transient(String),
}

#[derive(Clone)]
pub struct SyncarooOAuth {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(alias = "access_token")]
    #[serde(rename = "accessToken")]
    access_token: String,
    #[serde(alias = "refresh_token")]
    #[serde(rename = "refreshToken")]
    refresh_token: String,
    #[serde(alias = "expires_in")]
    #[serde(rename = "expiresIn")]
    expires_in: i64,
}

impl SyncarooOAuth {
    /// `base` has passed [`super::check_base`]. Redirects are never followed.
    /// `timeout` bounds a whole token request, and any wait for the next
    /// byte of any answer: a data page may take longer in all (its request
    /// sets the fetch's remaining budget) but never stall longer than this.
    pub fn new(base: &str, timeout: Duration) -> Self {
        let http = crate::tls::http_client_builder()
            .timeout(timeout)
            .read_timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("HTTP client");
        Self {
            http,
            base: base.to_string(),
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn authorize_url(&self, client_id: &str, redirect_uri: &str, state: &str) -> String {
        // The guide's own order and names, `scope` left empty.
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.append_pair("clientId", client_id)
            .append_pair("redirectUri", redirect_uri)
            .append_pair("responseType", "code")
            .append_pair("scope", "")
            .append_pair("state", state);
        format!("{}authorize?{}", self.base, ser.finish())
    }

    pub async fn exchange_code(
        &self,
        client: (&str, &str),
        redirect_uri: &str,
        code: &str,
        now: i64,
    ) -> Result<NewCredentials, OAuthError> {
        self.post(
            &[
                ("clientId", client.0),
                ("redirectUri", redirect_uri),
                ("clientSecret", client.1),
                ("code", code),
                ("grantType", "authorization_code"),
            ],
            now,
        )
        .await
    }

    pub async fn refresh(
        &self,
        client: (&str, &str),
        refresh_token: &SecretString,
        now: i64,
    ) -> Result<NewCredentials, OAuthError> {
        self.post(
            &[
                ("clientId", client.0),
                ("clientSecret", client.1),
                ("refreshToken", refresh_token.expose()),
                ("grantType", "refresh_token"),
            ],
            now,
        )
        .await
    }

    async fn post(&self, form: &[(&str, &str)], now: i64) -> Result<NewCredentials, OAuthError> {
        let mut resp = self
            .http
            .post(format!("{}token", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| OAuthError::Transient(describe(&e)))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_TOKEN_BODY {
                        return Err(if status == 200 {
                            OAuthError::Malformed
                        } else {
                            OAuthError::Transient(format!("HTTP {status}, oversized body"))
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if status == 200 => {
                    // The grant went through but we could not read its
                    // result: treat like an unreadable answer.
                    tracing::warn!(error = %describe(&e), "token response cut off");
                    return Err(OAuthError::Malformed);
                }
                Err(e) => return Err(OAuthError::Transient(describe(&e))),
            }
        }
        match status {
            200 => {
                let t: TokenBody =
                    serde_json::from_slice(&body).map_err(|_| OAuthError::Malformed)?;
                if t.access_token.is_empty() || t.refresh_token.is_empty() || t.expires_in <= 0 {
                    return Err(OAuthError::Malformed);
                }
                Ok(NewCredentials {
                    access_token: SecretString::new(t.access_token),
                    refresh_token: SecretString::new(t.refresh_token),
                    expires_at: now + t.expires_in,
                })
            }
            429 | 500..=599 => Err(OAuthError::Transient(format!("HTTP {status}"))),
            _ => {
                #[derive(Deserialize)]
                struct Err {
                    error: String,
                }
                let code = serde_json::from_slice::<Err>(&body)
                    .map(|e| e.error)
                    .unwrap_or_default();
                if code == "invalid_grant" {
                    Err(OAuthError::InvalidGrant)
                } else {
                    // The code is Syncaroo's word, kept short and printable.
                    let code: String = code
                        .chars()
                        .filter(|c| c.is_ascii_graphic())
                        .take(40)
                        .collect();
                    Err(OAuthError::Rejected { status, code })
                }
            }
        }
    }
}

/// A reqwest error without its URL (which could carry a query secret).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "body unreadable"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    kind.to_string()
}
