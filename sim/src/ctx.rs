//! The simulator's running state and the requests several steps make:
//! the token endpoint, check_connection with its schema checks, and the
//! wait for the platform's fetches.

use crate::checks::{find, Finding, Status};
use crate::fake::Fake;
use crate::run::{Report, SimOptions};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct Ctx<'a> {
    pub o: &'a SimOptions,
    pub fake: &'a Arc<Fake>,
    pub http: reqwest::Client,
    pub report: Report,
    pub access: Option<String>,
    pub refresh: Option<String>,
}

pub(crate) type StepResult = Result<String, String>;

impl<'a> Ctx<'a> {
    pub fn new(o: &'a SimOptions, fake: &'a Arc<Fake>) -> Self {
        let http = syncaroo_shared::tls::http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            o,
            fake,
            http,
            report: Report::default(),
            access: None,
            refresh: None,
        }
    }

    /// A path of our own layout (`--target`) on the target.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.o.target)
    }

    /// Records check `id`'s result (PASS or FAIL) with its time; whether
    /// it passed.
    pub fn record(&mut self, id: &str, started: Instant, r: StepResult) -> bool {
        let (status, detail) = match r {
            Ok(d) => (Status::Pass, d),
            Err(d) => (Status::Fail, d),
        };
        self.record_status(id, started, status, detail);
        status == Status::Pass
    }

    pub fn record_status(&mut self, id: &str, started: Instant, status: Status, detail: String) {
        let check = find(id).unwrap_or_else(|| panic!("{id} is not in the catalogue"));
        let f = Finding {
            check,
            status,
            millis: started.elapsed().as_millis(),
            detail,
        };
        // An area not asked for is left out, unless its check failed (one
        // the rest needed: the reason must show).
        let area = check.id.split('.').next().unwrap_or("");
        if !self.o.runs(area) && status != Status::Fail {
            return;
        }
        if self.o.progress {
            println!(
                "{} {:<32} {:>6} ms  {}",
                f.status.as_str(),
                f.check.id,
                f.millis,
                f.detail
            );
        }
        self.report.findings.push(f);
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> Result<(u16, Value), String> {
        let resp = self
            .http
            .post(&self.o.urls.token)
            .form(form)
            .send()
            .await
            .map_err(|e| format!("token endpoint unreachable: {e}"))?;
        let status = resp.status().as_u16();
        let cache = header(&resp, "cache-control");
        let body: Value = resp
            .json()
            .await
            .map_err(|_| format!("token endpoint answered {status} without JSON"))?;
        if status == 200 && !cache.contains("no-store") {
            return Err("expected Cache-Control: no-store on a token response".into());
        }
        Ok((status, body))
    }

    /// The guide's refresh grant for `token`.
    pub async fn refresh_grant(&self, token: &str) -> Result<(u16, Value), String> {
        let o = self.o;
        self.token_request(&[
            ("clientId", &o.client_id),
            ("clientSecret", &o.client_secret),
            ("refreshToken", token),
            ("grantType", "refresh_token"),
        ])
        .await
    }

    /// Keeps the pair the answer holds, whatever its `expires`.
    pub fn keep_tokens(&mut self, body: &Value) -> StepResult {
        response_fields(body)?;
        self.access = body["accessToken"].as_str().map(str::to_string);
        self.refresh = body["refreshToken"].as_str().map(str::to_string);
        Ok("a token pair".into())
    }

    /// check_connection for this run's connection, with `bearer` (none:
    /// no Authorization header): status, Content-Type, body.
    pub async fn fetch_check(&self, bearer: Option<&str>) -> Result<(u16, String, Value), String> {
        let url = format!(
            "{}?connectionId={}",
            self.o.urls.check_connection, self.o.connection_id
        );
        let mut req = self.http.get(url);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.send().await.map_err(|e| format!("unreachable: {e}"))?;
        let status = resp.status().as_u16();
        let ct = header(&resp, "content-type");
        let text = resp.text().await.unwrap_or_default();
        Ok((
            status,
            ct,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        ))
    }

    /// check_connection answers 200 with the guide's header and schema.
    pub async fn check_connection(&self, access: &str) -> StepResult {
        let (status, ct, body) = self.fetch_check(Some(access)).await?;
        if status != 200 {
            return Err(format!("expected 200, got {status}: {body}"));
        }
        content_type(&ct)?;
        echoed(&body, &self.o.connection_id)?;
        schema(&body)
    }

    /// Waits until the fake served every page of `path` at least `pages` times in total.
    pub async fn wait_fetched(&self, path: &str, pages: usize) -> StepResult {
        let deadline = Instant::now() + self.o.sync_wait;
        loop {
            let served = self.fake.served(path);
            if served.len() >= pages {
                return Ok(format!("{} page requests served", served.len()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "expected the platform to fetch {pages} pages of {path} within {:?}, it fetched {}",
                    self.o.sync_wait,
                    served.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn is_guide_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// A response header as text ("" when absent or not text).
fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The guide's header, the charset compared case-insensitively.
pub(crate) fn content_type(ct: &str) -> StepResult {
    let normal = ct.to_ascii_lowercase().replace(' ', "");
    if normal == "application/json;charset=utf-8" {
        Ok(format!("Content-Type: {ct}"))
    } else {
        Err(format!(
            "expected Content-Type: application/json; charset=UTF-8, got {ct:?}"
        ))
    }
}

/// The answer's connectionId is the one asked for (a number or a string).
pub(crate) fn echoed(body: &Value, connection: &str) -> StepResult {
    let ok = match &body["connectionId"] {
        Value::Number(n) => n.to_string() == connection,
        Value::String(s) => s == connection,
        _ => false,
    };
    if ok {
        Ok(format!("connectionId {connection} echoed"))
    } else {
        Err(format!(
            "expected connectionId {connection}, got {}",
            body["connectionId"]
        ))
    }
}

/// The guide's schema: userId, and each location with ID (its key), name,
/// a status from the guide's list, and resources with ID, name, status,
/// type.
pub(crate) fn schema(body: &Value) -> StepResult {
    if !body["userId"].is_string() {
        return Err("expected userId as a string".into());
    }
    let locs = body["locations"]
        .as_object()
        .ok_or("expected locations as an object keyed by ID")?;
    for (k, l) in locs {
        if l["ID"].as_str() != Some(k) || !l["name"].is_string() {
            return Err(format!(
                "location {k}: expected ID equal to its key and a name"
            ));
        }
        let st = l["status"].as_str().unwrap_or("");
        if !["draft", "active", "private", "pending", "deleted"].contains(&st) {
            return Err(format!("location {k}: unexpected status {st:?}"));
        }
        for r in l
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !(r["ID"].is_string()
                && r["name"].is_string()
                && r["status"].is_string()
                && r["type"].is_string())
            {
                return Err(format!(
                    "location {k}: a resource lacks ID, name, status or type"
                ));
            }
        }
    }
    Ok(format!(
        "{} locations for user {}",
        locs.len(),
        body["userId"].as_str().unwrap_or("")
    ))
}

/// The answer holds the guide's three fields as strings.
pub(crate) fn response_fields(body: &Value) -> StepResult {
    for f in ["accessToken", "refreshToken", "expires"] {
        if !body[f].is_string() {
            return Err(format!(
                "expected {f} as a string in the guide's dialect, got {}",
                body[f]
            ));
        }
    }
    Ok("accessToken, refreshToken, expires".into())
}

/// `expires` in the guide's format: UTC, no zone.
pub(crate) fn expires_format(body: &Value) -> StepResult {
    let expires = body["expires"].as_str().unwrap_or("");
    if is_guide_datetime(expires) {
        Ok(format!("expires {expires}"))
    } else {
        Err(format!(
            "expected expires as YYYY-MM-DDTHH:MM:SS (UTC, no zone), got {expires:?}"
        ))
    }
}
