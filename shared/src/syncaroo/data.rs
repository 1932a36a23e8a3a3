//! Fetching `apiUrl` and every page after it, under our SSRF rules (README,
//! "Webhooks and data sync"): a URL is followed only when its scheme and host are exactly
//! our configured Syncaroo base's; it is rebuilt from our base with only the
//! payload's path and query; redirects are never followed; pages, bytes and
//! time are capped. The bearer token goes nowhere else.

use super::oauth::describe;
use super::{ProviderError, TokenProvider};
use crate::secrets::SecretString;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub max_pages: u64,
    pub max_response_bytes: usize,
    pub page_attempts: u64,
    pub deadline: Duration,
    pub backoff_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL breaks the rules: never requested.
    #[error("refused URL: {0}")]
    Refused(String),
    #[error("pagination loops back to a page already fetched")]
    Loop,
    #[error("more than {0} pages")]
    TooManyPages(u64),
    #[error("a page is larger than {0} bytes")]
    TooLarge(usize),
    /// Syncaroo answered a definite no (404, 400...).
    #[error("Syncaroo answered HTTP {0}")]
    Rejected(u16),
    /// Worth another attempt later (timeouts, 429, 5xx, cut-off bodies).
    #[error("Syncaroo unavailable: {0}")]
    Transient(String),
    #[error(transparent)]
    Credentials(#[from] ProviderError),
}

impl FetchError {
    /// Retrying cannot help: the event fails now.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Refused(_)
                | Self::Loop
                | Self::TooManyPages(_)
                | Self::TooLarge(_)
                | Self::Rejected(_)
        )
    }
}

/// Scheme and authority of the configured base: the only origin we call.
#[derive(Debug, Clone)]
pub struct ApiOrigin {
    scheme: String,
    authority: String,
}

/// `(scheme, authority, path-and-query)` of an absolute URL, without any
/// fragment; `None` when it is not one.
fn split(url: &str) -> Option<(String, String, String)> {
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let tail = rest[end..].split('#').next().unwrap_or("");
    let path_query = if tail.starts_with('/') {
        tail.to_string()
    } else {
        format!("/{tail}")
    };
    Some((
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase(),
        path_query,
    ))
}

impl ApiOrigin {
    /// From a base that passed [`super::check_base`].
    pub fn from_base(base: &str) -> Self {
        let (scheme, authority, _) = split(base).expect("checked base is absolute");
        Self { scheme, authority }
    }

    /// `url` rebuilt on our origin, or why it is refused.
    pub fn rebuild(&self, url: &str) -> Result<String, FetchError> {
        let (scheme, authority, path_query) =
            split(url).ok_or_else(|| FetchError::Refused("not an absolute URL".into()))?;
        if scheme != self.scheme || authority != self.authority {
            return Err(FetchError::Refused(format!(
                "{scheme}://{authority} is not the configured Syncaroo API host"
            )));
        }
        Ok(format!(
            "{}://{}{}",
            self.scheme, self.authority, path_query
        ))
    }
}

/// Everything an `apiUrl` yielded.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub items: Vec<Value>,
    pub pages: u32,
}

pub async fn fetch_all(
    provider: &TokenProvider,
    origin: &ApiOrigin,
    api_url: &str,
    policy: &FetchPolicy,
) -> Result<Fetched, FetchError> {
    let deadline = Instant::now() + policy.deadline;
    let mut url = origin.rebuild(api_url)?;
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    let mut pages = 0u32;
    loop {
        if !seen.insert(url.clone()) {
            return Err(FetchError::Loop);
        }
        if pages as u64 >= policy.max_pages {
            return Err(FetchError::TooManyPages(policy.max_pages));
        }
        let page = fetch_page(provider, &url, policy, deadline).await?;
        pages += 1;
        match page.get("data") {
            Some(Value::Array(a)) => items.extend(a.iter().cloned()),
            Some(Value::Null) | None => {}
            Some(other) => items.push(other.clone()),
        }
        let info = page.get("pages");
        let next = info
            .and_then(|p| p.get("next"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        let current = info.and_then(|p| p.get("current")).and_then(Value::as_u64);
        let count = info.and_then(|p| p.get("count")).and_then(Value::as_u64);
        let last = matches!((current, count), (Some(c), Some(n)) if c >= n);
        match next {
            Some(n) if !last => url = origin.rebuild(n)?,
            _ => break,
        }
    }
    Ok(Fetched { items, pages })
}

async fn fetch_page(
    provider: &TokenProvider,
    url: &str,
    policy: &FetchPolicy,
    deadline: Instant,
) -> Result<Value, FetchError> {
    let mut token: SecretString = provider.access_token().await?;
    let mut refreshed = false;
    let mut last = String::from("no attempt");
    for attempt in 1..=policy.page_attempts {
        if Instant::now() >= deadline {
            return Err(FetchError::Transient(format!("time budget spent ({last})")));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let sent = provider
            .oauth()
            .http()
            .get(url)
            .bearer_auth(token.expose())
            .header("accept", "application/json")
            .timeout(remaining)
            .send()
            .await;
        let mut retry_after = None;
        match sent {
            Err(e) => last = describe(&e),
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                match status {
                    200 => match read_capped(&mut resp, policy.max_response_bytes).await {
                        Err(e @ FetchError::TooLarge(_)) => return Err(e),
                        Err(e) => last = e.to_string(),
                        Ok(body) => match serde_json::from_slice::<Value>(&body) {
                            Ok(v @ Value::Object(_)) => return Ok(v),
                            _ => last = "unreadable page (not a JSON object)".into(),
                        },
                    },
                    401 if !refreshed => {
                        token = provider.after_unauthorized(&token).await?;
                        refreshed = true;
                        continue;
                    }
                    401 => last = "401 again after a token refresh".into(),
                    429 | 500..=599 => {
                        last = format!("HTTP {status}");
                        retry_after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .map(|s| Duration::from_secs(s.min(10)));
                    }
                    300..=399 => {
                        return Err(FetchError::Refused("redirects are not followed".into()))
                    }
                    other => return Err(FetchError::Rejected(other)),
                }
            }
        }
        if attempt < policy.page_attempts {
            let base = policy.backoff_ms << (attempt - 1);
            let jitter = rand::random::<u64>() % base.max(1);
            let pause = retry_after.unwrap_or(Duration::from_millis(base + jitter));
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
    Err(FetchError::Transient(format!(
        "gave up after {} attempts: {last}",
        policy.page_attempts
    )))
}

async fn read_capped(resp: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, FetchError> {
    if resp.content_length().is_some_and(|n| n as usize > cap) {
        return Err(FetchError::TooLarge(cap));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > cap {
                    return Err(FetchError::TooLarge(cap));
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(FetchError::Transient(format!(
                    "body cut off: {}",
                    describe(&e)
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_only_on_our_origin() {
        let o = ApiOrigin::from_base("https://app.syncaroo.com/api/");
        assert_eq!(
            o.rebuild("https://APP.syncaroo.com/api/v1/rates?page=2#x")
                .unwrap(),
            "https://app.syncaroo.com/api/v1/rates?page=2"
        );
        for bad in [
            "http://app.syncaroo.com/api/v1",
            "https://app.syncaroo.com.evil.com/api",
            "https://evil.com/https://app.syncaroo.com/",
            "https://user@app.syncaroo.com/api",
            "https://app.syncaroo.com:8443/api",
            "//app.syncaroo.com/api",
            "/api/v1/rates",
            "https://app.syncaroo.com/api\n/x",
            "https://app.syncaroo.com\\@evil.com/",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(o.rebuild(bad).is_err(), "{bad}");
        }
        let local = ApiOrigin::from_base("http://127.0.0.1:9090/api/");
        assert!(local.rebuild("http://127.0.0.1:9090/api/x").is_ok());
        assert!(local.rebuild("http://127.0.0.1:9091/api/x").is_err());
        assert!(local.rebuild("http://localhost:9090/api/x").is_err());
    }
}
