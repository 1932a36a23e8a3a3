//! The simulator's running state and the requests several steps make:
//! the token endpoint, check_connection with its schema checks, and the
//! wait for the platform's fetches.

use crate::fake::Fake;
use crate::run::{Report, SimOptions, Step};
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.o.target)
    }

    pub fn record(&mut self, name: &str, started: Instant, r: StepResult) -> bool {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        let step = Step {
            name: name.into(),
            ok,
            millis: started.elapsed().as_millis(),
            detail,
        };
        if self.o.progress {
            let n = self.report.steps.len() + 1;
            println!(
                "[{n:>2}] {} {:<40} {:>6} ms  {}",
                if ok { "PASS" } else { "FAIL" },
                step.name,
                step.millis,
                step.detail
            );
        }
        self.report.steps.push(step);
        ok
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> Result<(u16, Value), String> {
        let resp = self
            .http
            .post(self.url(&self.o.token_path))
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

    pub fn take_tokens(&mut self, body: &Value) -> StepResult {
        let access = body["accessToken"]
            .as_str()
            .ok_or("expected accessToken in the guide's dialect")?;
        let refresh = body["refreshToken"]
            .as_str()
            .ok_or("expected refreshToken")?;
        let expires = body["expires"].as_str().ok_or("expected expires")?;
        if !is_guide_datetime(expires) {
            return Err(format!(
                "expected expires as YYYY-MM-DDTHH:MM:SS (UTC, no zone), got {expires:?}"
            ));
        }
        self.access = Some(access.to_string());
        self.refresh = Some(refresh.to_string());
        Ok(format!("expires {expires}"))
    }

    pub async fn check_connection(&self, access: &str) -> StepResult {
        let url = format!(
            "{}?connectionId={}",
            self.url(&self.o.check_connection_path),
            self.o.connection_id
        );
        let resp = self
            .http
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let status = resp.status().as_u16();
        let ct = header(&resp, "content-type");
        let body: Value = resp
            .json()
            .await
            .map_err(|_| format!("expected JSON, got HTTP {status}"))?;
        if status != 200 {
            return Err(format!("expected 200, got {status}: {body}"));
        }
        if !ct.eq_ignore_ascii_case("application/json; charset=UTF-8") {
            return Err(format!(
                "expected Content-Type: application/json; charset=UTF-8, got {ct:?}"
            ));
        }
        let conn_ok = match &body["connectionId"] {
            Value::Number(n) => n.to_string() == self.o.connection_id,
            Value::String(s) => s == &self.o.connection_id,
            _ => false,
        };
        if !conn_ok {
            return Err(format!(
                "expected connectionId {}, got {}",
                self.o.connection_id, body["connectionId"]
            ));
        }
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
