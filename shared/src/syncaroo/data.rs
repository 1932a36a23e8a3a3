//! Fetching `apiUrl` and every page after it, under our SSRF rules (docs/PROTOCOL.md,
//! "Webhooks and data sync"): a URL is followed only when it falls under
//! one of the configured data API prefixes (scheme, host, port, path
//! prefix), after resolving dot segments; it is rebuilt on that prefix's
//! origin with only the normalised path and query; redirects are never followed; pages, bytes and
//! time are capped. The bearer token goes nowhere else.

use super::oauth::describe;
use super::{ProviderError, TokenProvider};
use crate::secrets::SecretString;
use crate::url_rules::DataBases;
use backon::{ExponentialBuilder, Retryable};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub max_pages: u64,
    pub max_response_bytes: usize,
    /// The most the pages together may hold, as stored.
    pub max_stored_bytes: usize,
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
    /// The pages hold more than one fetch may store.
    #[error("the data exceeds the {0}-byte limit of one fetch")]
    OverLimit(usize),
    /// Syncaroo answered a definite no (400, 403...).
    #[error("Syncaroo answered HTTP {0}")]
    Rejected(u16),
    /// 404 or 410 for the `apiUrl` itself: the resource was deleted.
    #[error("Syncaroo answered HTTP {0}: deleted")]
    Gone(u16),
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
                | Self::OverLimit(_)
                | Self::Rejected(_)
                | Self::Gone(_)
        )
    }
}

/// The prefixes we call (`SYNCAROO_DATA_BASES`): every URL is rebuilt on
/// one of them or refused.
pub fn rebuild(bases: &DataBases, url: &str) -> Result<String, FetchError> {
    bases.rebuild(url).map_err(FetchError::Refused)
}

/// Everything an `apiUrl` yielded, as it is stored.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Every page's `data` items, in order, as one compact JSON array.
    pub data: String,
    /// How many items `data` holds.
    pub records: usize,
    pub pages: u32,
}

/// What a page is read into: its `data` kept as text (items are never parsed
/// into a tree), `pages` as a small value read leniently.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    pages: Value,
}

/// The stored array, built page by page: each item is transcoded from its
/// text straight into the array (compacted, nothing else kept), and the total
/// is checked as it grows, so a fetch over `max_bytes` stops at the page
/// that crosses it and memory stays near what is stored.
struct Collected {
    json: Vec<u8>,
    records: usize,
    max_bytes: usize,
}

impl Collected {
    fn new(max_bytes: usize) -> Self {
        Self {
            json: b"[".to_vec(),
            records: 0,
            max_bytes,
        }
    }

    fn add_page(&mut self, data: &RawValue) -> Result<(), FetchError> {
        let text = data.get();
        // Room for the page at once (its compact form is rarely longer), not
        // the vector's doubling: that would briefly hold twice the total.
        self.json.reserve_exact(text.len());
        if text.starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(text)
                .map_err(|e| FetchError::Transient(format!("unreadable page data: {e}")))?;
            for item in items {
                self.add_item(item)?;
            }
        } else if text != "null" {
            self.add_item(data)?;
        }
        Ok(())
    }

    fn add_item(&mut self, item: &RawValue) -> Result<(), FetchError> {
        if self.records > 0 {
            self.json.push(b',');
        }
        let mut from = serde_json::Deserializer::from_str(item.get());
        let mut to = serde_json::Serializer::new(&mut self.json);
        serde_transcode::transcode(&mut from, &mut to)
            .map_err(|e| FetchError::Transient(format!("unreadable item: {e}")))?;
        self.records += 1;
        // The closing bracket counts too.
        if self.json.len() + 1 > self.max_bytes {
            return Err(FetchError::OverLimit(self.max_bytes));
        }
        Ok(())
    }

    fn finish(mut self, pages: u32) -> Fetched {
        self.json.push(b']');
        Fetched {
            // serde_json writes UTF-8 only.
            data: String::from_utf8(self.json).expect("serde_json writes UTF-8"),
            records: self.records,
            pages,
        }
    }
}

/// Fetches `api_url` and every page after it; what they hold is returned as
/// it is stored, at most `policy.max_stored_bytes` of it.
pub async fn fetch_all(
    provider: &TokenProvider,
    bases: &DataBases,
    api_url: &str,
    policy: &FetchPolicy,
) -> Result<Fetched, FetchError> {
    let deadline = Instant::now() + policy.deadline;
    let mut url = rebuild(bases, api_url)?;
    let mut seen = HashSet::new();
    let mut collected = Collected::new(policy.max_stored_bytes);
    let mut pages = 0u32;
    // One token read for the whole walk (a 401 replaces it): not one
    // credentials read per page.
    let mut token: SecretString = provider.access_token().await?;
    loop {
        if !seen.insert(url.clone()) {
            return Err(FetchError::Loop);
        }
        if pages as u64 >= policy.max_pages {
            return Err(FetchError::TooManyPages(policy.max_pages));
        }
        let page = match fetch_page(provider, &mut token, &url, policy, deadline).await {
            // Only the first page's absence means the resource is gone; a
            // later page vanishing mid-walk is a failed fetch.
            Err(FetchError::Gone(s)) if pages > 0 => return Err(FetchError::Rejected(s)),
            other => other?,
        };
        pages += 1;
        if let Some(data) = &page.data {
            collected.add_page(data)?;
        }
        let info = &page.pages;
        let next = info
            .get("next")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        let current = info.get("current").and_then(Value::as_u64);
        let count = info.get("count").and_then(Value::as_u64);
        let last = matches!((current, count), (Some(c), Some(n)) if c >= n);
        match next {
            Some(n) if !last => url = rebuild(bases, n)?,
            _ => break,
        }
    }
    Ok(collected.finish(pages))
}

/// Why one GET of a page did not yield it.
enum Try {
    /// Final: the fetch fails with it.
    Final(FetchError),
    /// Worth another GET, after the backoff or what `Retry-After` asked
    /// (capped at 10 s).
    Again {
        why: String,
        retry_after: Option<Duration>,
    },
}

impl From<ProviderError> for Try {
    fn from(e: ProviderError) -> Self {
        Try::Final(e.into())
    }
}

/// GETs one page, up to `policy.page_attempts` times within `deadline`:
/// timeouts, cut-off bodies, 429 and 5xx are tried again with jittered
/// exponential backoff; a 401 refreshes the token once and tries at once.
async fn fetch_page(
    provider: &TokenProvider,
    token: &mut SecretString,
    url: &str,
    policy: &FetchPolicy,
    deadline: Instant,
) -> Result<Page, FetchError> {
    // Shared by the tries, which run one at a time.
    let state = std::sync::Mutex::new(Tries {
        token: token.clone(),
        refreshed: false,
        last: String::from("no attempt"),
    });
    let get = || get_page(provider, &state, url, policy, deadline);
    let result = get
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(policy.backoff_ms))
                .with_max_delay(Duration::from_secs(10))
                .with_max_times(policy.page_attempts.saturating_sub(1) as usize)
                .with_jitter(),
        )
        .when(|t| matches!(t, Try::Again { .. }))
        .adjust(|t, next| {
            let asked = match t {
                Try::Again { retry_after, .. } => *retry_after,
                Try::Final(_) => None,
            };
            // Never past the fetch's deadline (the next try then says so).
            next.map(|d| {
                asked
                    .unwrap_or(d)
                    .min(deadline.saturating_duration_since(Instant::now()))
            })
        })
        .await;
    *token = state.into_inner().unwrap_or_else(|p| p.into_inner()).token;
    match result {
        Ok(page) => Ok(page),
        Err(Try::Final(e)) => Err(e),
        Err(Try::Again { why, .. }) => Err(FetchError::Transient(format!(
            "gave up after {} attempts: {why}",
            policy.page_attempts
        ))),
    }
}

/// What the tries of one page share.
struct Tries {
    /// The bearer token (a 401 replaces it once).
    token: SecretString,
    refreshed: bool,
    /// Why the last try is to be tried again.
    last: String,
}

/// One GET of `url` with the current token.
async fn get_page(
    provider: &TokenProvider,
    state: &std::sync::Mutex<Tries>,
    url: &str,
    policy: &FetchPolicy,
    deadline: Instant,
) -> Result<Page, Try> {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let (token, refreshed) = {
        let s = lock();
        if Instant::now() >= deadline {
            return Err(Try::Final(FetchError::Transient(format!(
                "time budget spent ({})",
                s.last
            ))));
        }
        (s.token.clone(), s.refreshed)
    };
    let again = |why: String, retry_after| {
        lock().last = why.clone();
        Err(Try::Again { why, retry_after })
    };
    let sent = provider
        .oauth()
        .http()
        .get(url)
        .bearer_auth(token.expose())
        .header("accept", "application/json")
        .timeout(deadline.saturating_duration_since(Instant::now()))
        .send()
        .await;
    let mut resp = match sent {
        Err(e) => return again(describe(&e), None),
        Ok(resp) => resp,
    };
    let status = resp.status().as_u16();
    match status {
        200 => match read_capped(&mut resp, policy.max_response_bytes).await {
            Err(e @ FetchError::TooLarge(_)) => Err(Try::Final(e)),
            Err(e) => again(e.to_string(), None),
            Ok(body) => match read_page(&body) {
                Some(page) => Ok(page),
                None => again("unreadable page (not a JSON object)".into(), None),
            },
        },
        401 if !refreshed => {
            let fresh = provider.after_unauthorized(&token).await?;
            let mut s = lock();
            s.token = fresh;
            s.refreshed = true;
            s.last = "401; token refreshed".into();
            Err(Try::Again {
                why: s.last.clone(),
                retry_after: Some(Duration::ZERO),
            })
        }
        401 => again("401 again after a token refresh".into(), None),
        429 | 500..=599 => {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(10)));
            again(format!("HTTP {status}"), retry_after)
        }
        300..=399 => Err(Try::Final(FetchError::Refused(
            "redirects are not followed".into(),
        ))),
        404 | 410 => Err(Try::Final(FetchError::Gone(status))),
        other => Err(Try::Final(FetchError::Rejected(other))),
    }
}

/// A page is a JSON object; its `data` is copied out as text and the body
/// dropped.
fn read_page(body: &[u8]) -> Option<Page> {
    let start = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *start != b'{' {
        return None;
    }
    serde_json::from_slice(body).ok()
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

    fn bases(list: &str) -> DataBases {
        DataBases::parse(list, true).unwrap()
    }

    #[test]
    fn rebuilds_only_under_a_data_prefix() {
        let o = bases(crate::url_rules::DEFAULT_DATA_BASES);
        assert_eq!(
            rebuild(&o, "https://APP.syncaroo.com/api/v1/rates?page=2#x").unwrap(),
            "https://app.syncaroo.com/api/v1/rates?page=2"
        );
        // The guide's apiUrl example.
        assert_eq!(
            rebuild(&o, "https://api.syncaroo.com/v1/resources/?location=1198").unwrap(),
            "https://api.syncaroo.com/v1/resources/?location=1198"
        );
        assert_eq!(
            rebuild(&o, "https://app.syncaroo.com:443/api/./v1/x").unwrap(),
            "https://app.syncaroo.com/api/v1/x"
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
            // Outside the /api/ prefix of the OAuth host, in every spelling.
            "https://app.syncaroo.com/x",
            "https://app.syncaroo.com/api/../x",
            "https://app.syncaroo.com/api/%2e%2e/x",
            "https://app.syncaroo.com/api/%2E%2e/x",
            "https://app.syncaroo.com/api/.%2e/x",
            "https://app.syncaroo.com/apix/y",
        ] {
            assert!(rebuild(&o, bad).is_err(), "{bad}");
        }
        let local = bases("http://127.0.0.1:9090/api/");
        assert!(rebuild(&local, "http://127.0.0.1:9090/api/x").is_ok());
        assert!(rebuild(&local, "http://127.0.0.1:9091/api/x").is_err());
        assert!(rebuild(&local, "http://localhost:9090/api/x").is_err());
        assert!(rebuild(&local, "http://127.0.0.1:9090/api/../admin").is_err());
    }

    #[test]
    fn data_bases_setting_is_checked() {
        for bad in [
            "",
            "http://api.syncaroo.com/",
            "https://api.syncaroo.com",
            "https://api.syncaroo.com/?x=1",
            "ftp://api.syncaroo.com/",
        ] {
            assert!(DataBases::parse(bad, false).is_err(), "{bad:?}");
        }
        assert!(DataBases::parse("http://127.0.0.1:9/api/", false).is_err());
        assert!(DataBases::parse("http://127.0.0.1:9/api/", true).is_ok());
    }
}
