//! The simulator's scenario: Syncaroo's whole side of the guide against a
//! deployment, step by step, with a report. Each step says what it expected
//! when it fails.

use crate::browser::{visible_text, Browser};
use crate::fake::Fake;
use crate::sender::Sender;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The deployment's `siteUri` (e.g. `http://127.0.0.1:8080`).
    pub target: String,
    pub auth_path: String,
    pub token_path: String,
    pub check_connection_path: String,
    pub webhook_path: String,
    pub admin_prefix: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub username: String,
    pub password: String,
    /// With an admin key the simulator also connects the platform to its
    /// fake Syncaroo API and checks the data sync.
    pub admin_key: Option<String>,
    pub connection_id: String,
    /// Print a line per step as it finishes.
    pub progress: bool,
    /// How long to wait for the platform to fetch announced data.
    pub sync_wait: Duration,
}

impl SimOptions {
    pub fn new(target: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            target: target.trim_end_matches('/').to_string(),
            auth_path: "/api/oauth/authorize".into(),
            token_path: "/api/oauth/token".into(),
            check_connection_path: "/api/check_connection/".into(),
            webhook_path: "/api/update/".into(),
            admin_prefix: "/api/admin/syncaroo".into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uri: "https://app.syncaroo.com/connection".into(),
            username: "demo".into(),
            password: "demo".into(),
            admin_key: None,
            connection_id: (10_000 + rand::random::<u32>() % 90_000).to_string(),
            progress: false,
            sync_wait: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub millis: u128,
    pub detail: String,
}

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub steps: Vec<Step>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    pub fn failed(&self) -> Vec<&Step> {
        self.steps.iter().filter(|s| !s.ok).collect()
    }

    pub fn table(&self) -> String {
        let w = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:<3} {:<w$}  {:<6} {:>8}  {}\n",
            "#", "step", "result", "ms", "detail"
        );
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!(
                "{:<3} {:<w$}  {:<6} {:>8}  {}\n",
                i + 1,
                s.name,
                if s.ok { "PASS" } else { "FAIL" },
                s.millis,
                s.detail
            ));
        }
        let passed = self.steps.iter().filter(|s| s.ok).count();
        out.push_str(&format!(
            "{} passed, {} failed\n",
            passed,
            self.steps.len() - passed
        ));
        out
    }
}

struct Ctx<'a> {
    o: &'a SimOptions,
    fake: &'a Arc<Fake>,
    http: reqwest::Client,
    report: Report,
    access: Option<String>,
    refresh: Option<String>,
}

type StepResult = Result<String, String>;

impl Ctx<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.o.target)
    }

    fn record(&mut self, name: &str, started: Instant, r: StepResult) -> bool {
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

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<(u16, Value), String> {
        let resp = self
            .http
            .post(self.url(&self.o.token_path))
            .form(form)
            .send()
            .await
            .map_err(|e| format!("token endpoint unreachable: {e}"))?;
        let status = resp.status().as_u16();
        let cache = resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body: Value = resp
            .json()
            .await
            .map_err(|_| format!("token endpoint answered {status} without JSON"))?;
        if status == 200 && !cache.contains("no-store") {
            return Err("expected Cache-Control: no-store on a token response".into());
        }
        Ok((status, body))
    }

    fn take_tokens(&mut self, body: &Value) -> StepResult {
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

    async fn check_connection(&self, access: &str) -> StepResult {
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
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
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
    async fn wait_fetched(&self, path: &str, pages: usize) -> StepResult {
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

fn rates(tag: &str) -> Vec<Vec<Value>> {
    vec![
        vec![
            json!({"rate": "hourly", "amount": 10, "tag": tag}),
            json!({"rate": "daily", "amount": 60, "tag": tag}),
        ],
        vec![json!({"rate": "weekly", "amount": 250, "tag": tag})],
        vec![json!({"rate": "monthly", "amount": 900, "tag": tag})],
    ]
}

/// Runs the whole scenario against `o.target`, with `fake` as the Syncaroo
/// API the target was configured to call.
pub async fn run(o: &SimOptions, fake: &Arc<Fake>) -> Report {
    let http = syncaroo_shared::tls::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut c = Ctx {
        o,
        fake,
        http,
        report: Report::default(),
        access: None,
        refresh: None,
    };

    // 1. The user connects: authorize, login, consent, back to Syncaroo.
    let t = Instant::now();
    let state = format!("sim-{}", rand::random::<u32>());
    let start = format!(
        "{}?connectionId={}&clientId={}&redirectUri={}&response_type=code&state={state}",
        c.url(&o.auth_path),
        o.connection_id,
        o.client_id,
        form_urlencoded::byte_serialize(o.redirect_uri.as_bytes()).collect::<String>()
    );
    let mut code = String::new();
    let r = match Browser::new()
        .connect(
            &start,
            &o.redirect_uri,
            &o.username,
            &o.password,
            "authorize",
        )
        .await
    {
        Err(e) => Err(format!(
            "expected to reach {} after login and consent: {e}",
            o.redirect_uri
        )),
        Ok(back) => {
            let q: std::collections::HashMap<String, String> =
                form_urlencoded::parse(back.split_once('?').map(|x| x.1).unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            if q.get("connectionId") != Some(&o.connection_id) {
                Err(format!(
                    "expected connectionId={} on the redirect, got {back}",
                    o.connection_id
                ))
            } else if q.get("state") != Some(&state) {
                Err("expected the state to come back unchanged".into())
            } else if let Some(cd) = q.get("code").filter(|c| !c.is_empty()) {
                code = cd.clone();
                Ok("redirected with connectionId, code and state".into())
            } else {
                Err(format!(
                    "expected a code on the redirect, got {}",
                    visible_text(&back)
                ))
            }
        }
    };
    if !c.record("authorize: login + consent", t, r) {
        return c.report;
    }

    // 2. Syncaroo exchanges the code, as the guide shows.
    let t = Instant::now();
    let r = match c
        .token_request(&[
            ("clientId", &o.client_id),
            ("clientSecret", &o.client_secret),
            ("code", &code),
            ("grantType", "authorization_code"),
        ])
        .await
    {
        Ok((200, body)) => c.take_tokens(&body),
        Ok((s, body)) => Err(format!("expected 200 with tokens, got {s}: {body}")),
        Err(e) => Err(e),
    };
    if !c.record("token: code exchange (guide dialect)", t, r) {
        return c.report;
    }

    // 3. The code is single-use.
    let t = Instant::now();
    let r = match c
        .token_request(&[
            ("clientId", &o.client_id),
            ("clientSecret", &o.client_secret),
            ("code", &code),
            ("grantType", "authorization_code"),
        ])
        .await
    {
        Ok((400, body)) if body["error"] == "invalid_grant" => {
            Ok("replay refused with invalid_grant".into())
        }
        Ok((s, body)) => Err(format!(
            "expected 400 invalid_grant for a reused code, got {s}: {body}"
        )),
        Err(e) => Err(e),
    };
    c.record("token: reused code refused", t, r);

    // The replay revoked the first tokens: connect again for a clean pair.
    let t = Instant::now();
    let r = match Browser::new()
        .connect(
            &start,
            &o.redirect_uri,
            &o.username,
            &o.password,
            "authorize",
        )
        .await
    {
        Ok(back) => {
            let q: std::collections::HashMap<String, String> =
                form_urlencoded::parse(back.split_once('?').map(|x| x.1).unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            match c
                .token_request(&[
                    ("clientId", &o.client_id),
                    ("clientSecret", &o.client_secret),
                    ("code", q.get("code").map(String::as_str).unwrap_or("")),
                    ("grantType", "authorization_code"),
                ])
                .await
            {
                Ok((200, body)) => c.take_tokens(&body),
                Ok((s, body)) => Err(format!("expected 200, got {s}: {body}")),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    if !c.record("authorize + token again (fresh pair)", t, r) {
        return c.report;
    }

    // 4. check_connection.
    let t = Instant::now();
    let access = c.access.clone().unwrap_or_default();
    let r = c.check_connection(&access).await;
    c.record("check_connection: listings", t, r);

    // 5. Syncaroo refreshes its tokens.
    let t = Instant::now();
    let refresh = c.refresh.clone().unwrap_or_default();
    let r = match c
        .token_request(&[
            ("clientId", &o.client_id),
            ("clientSecret", &o.client_secret),
            ("refreshToken", &refresh),
            ("grantType", "refresh_token"),
        ])
        .await
    {
        Ok((200, body)) => match c.take_tokens(&body) {
            Ok(d) if c.refresh.as_deref() != Some(refresh.as_str()) => {
                let access = c.access.clone().unwrap_or_default();
                c.check_connection(&access)
                    .await
                    .map(|_| format!("rotated; new access token works; {d}"))
            }
            Ok(_) => Err("expected a new refresh token (rotation)".into()),
            Err(e) => Err(e),
        },
        Ok((s, body)) => Err(format!("expected 200, got {s}: {body}")),
        Err(e) => Err(e),
    };
    c.record("token: refresh rotates", t, r);

    let bearer = c.access.clone().unwrap_or_default();
    let sender = Sender::new(c.url(&o.webhook_path), o.client_secret.clone());

    // 6. Webhooks the platform must refuse.
    let t = Instant::now();
    let body = json!({"connectionId": o.connection_id.parse::<u64>().map(Value::from).unwrap_or(Value::from(o.connection_id.clone())),
                      "webhookType": "status", "locationId": "1198", "metaData": {"status": "open"}});
    let mut forged = sender.sign(body.clone());
    forged["hash"] = json!("0000");
    let r = match (
        sender.send_raw(&bearer, &forged).await,
        sender.send(&format!("{bearer}x"), body.clone()).await,
    ) {
        (Ok(a), Ok(b)) if a.status == 401 && b.status == 401 => {
            Ok("bad hash and bad bearer both refused with 401".into())
        }
        (Ok(a), Ok(b)) => Err(format!(
            "expected 401 for a bad hash and for a bad bearer, got {} and {}",
            a.status, b.status
        )),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    c.record("webhook: forged ones refused", t, r);

    // 7. A status webhook.
    let t = Instant::now();
    let r = match sender.send(&bearer, json!({"connectionId": body["connectionId"], "webhookType": "status", "locationId": "1198", "metaData": {"status": "closed", "reason": "simulated lockdown"}})).await {
        Ok(d) if (200..300).contains(&d.status) => Ok(format!("acked {} after {} tries", d.status, d.tries)),
        Ok(d) => Err(format!("expected 2xx, got {}: {}", d.status, d.body)),
        Err(e) => Err(e),
    };
    c.record("webhook: status", t, r);

    let Some(admin_key) = o.admin_key.clone() else {
        return c.report;
    };

    // 8. The platform connects to (our fake) Syncaroo API.
    let t = Instant::now();
    let r = admin_connect(&c, &admin_key).await;
    if !c.record("admin: connect to the Syncaroo API", t, r) {
        return c.report;
    }

    // 9. Data webhook for 3 pages of rates; the platform must fetch them all.
    let path = format!("/api/v1/locations/1198/rates/{}", o.connection_id);
    fake.set_pages(&path, rates("v1"));
    let data = json!({"connectionId": body["connectionId"], "webhookType": "data", "locationId": "1198",
                      "metaData": {"attributeType": "rates", "apiUrl": fake.page_url(&path, 1)}});
    let t = Instant::now();
    let r = match sender.send(&bearer, data.clone()).await {
        Ok(d) if (200..300).contains(&d.status) => c.wait_fetched(&path, 3).await,
        Ok(d) => Err(format!("expected 2xx, got {}: {}", d.status, d.body)),
        Err(e) => Err(e),
    };
    c.record("webhook: data, 3 pages fetched", t, r);

    // 10. The same webhook again, three times: acked, not fetched again.
    let t = Instant::now();
    let mut acks = vec![];
    for _ in 0..3 {
        acks.push(sender.send(&bearer, data.clone()).await.map(|d| d.status));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let fetched = fake.served(&path).len();
    let r = if acks.iter().any(|a| !matches!(a, Ok(200..=299))) {
        Err(format!("expected every duplicate acked 2xx, got {acks:?}"))
    } else if fetched != 3 {
        Err(format!(
            "expected no new fetch for duplicates, saw {fetched} page requests (3 expected)"
        ))
    } else {
        Ok("3 duplicates acked, none fetched again".into())
    };
    c.record("webhook: duplicates processed once", t, r);

    // 11. Out of order: a newer change announced before an older one.
    let t = Instant::now();
    let path2 = format!("/api/v1/locations/1198/resources/7843/{}", o.connection_id);
    fake.set_pages(
        &path2,
        vec![vec![
            json!({"ID": "7843", "name": "Meeting Room", "capacity": 8}),
        ]],
    );
    let newer = json!({"connectionId": body["connectionId"], "webhookType": "data", "locationId": "1198",
                       "metaData": {"resourceId": "7843", "attributeType": "resources", "resourceType": "meeting-room", "apiUrl": fake.page_url(&path2, 1), "revision": 2}});
    let mut older = newer.clone();
    older["metaData"]["revision"] = json!(1);
    let r = match (
        sender.send(&bearer, newer).await,
        sender.send(&bearer, older).await,
    ) {
        (Ok(a), Ok(b)) if (200..300).contains(&a.status) && (200..300).contains(&b.status) => {
            c.wait_fetched(&path2, 2).await
        }
        (a, b) => Err(format!(
            "expected both acked, got {:?} and {:?}",
            a.map(|d| d.status),
            b.map(|d| d.status)
        )),
    };
    c.record("webhook: out-of-order deliveries", t, r);

    // 12. Syncaroo expires the platform's API token: it must refresh.
    let t = Instant::now();
    let before = fake.refreshes();
    fake.expire_access();
    let path3 = format!("/api/v1/locations/7120/rates/{}", o.connection_id);
    fake.set_pages(&path3, vec![vec![json!({"rate": "daily", "amount": 45})]]);
    let r = match sender
        .send(&bearer, json!({"connectionId": body["connectionId"], "webhookType": "data", "locationId": "7120", "metaData": {"attributeType": "rates", "apiUrl": fake.page_url(&path3, 1)}}))
        .await
    {
        Ok(d) if (200..300).contains(&d.status) => match c.wait_fetched(&path3, 1).await {
            Ok(_) if fake.refreshes() > before => Ok("401 answered by one token refresh, then fetched".into()),
            Ok(_) => Err("expected the platform to refresh its Syncaroo token".into()),
            Err(e) => Err(e),
        },
        Ok(d) => Err(format!("expected 2xx, got {}", d.status)),
        Err(e) => Err(e),
    };
    c.record("syncaroo token: refresh on 401", t, r);
    c.report
}

async fn admin_connect(c: &Ctx<'_>, key: &str) -> StepResult {
    let connect = c.url(&format!("{}/connect", c.o.admin_prefix));
    let anon = c
        .http
        .get(&connect)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if anon.status() != 401 {
        return Err(format!(
            "expected 401 for an anonymous admin call, got {}",
            anon.status()
        ));
    }
    let resp = c
        .http
        .get(&connect)
        .basic_auth("admin", Some(key))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let to_syncaroo = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(to_syncaroo) = to_syncaroo else {
        return Err(format!(
            "expected a redirect to Syncaroo's authorize URL, got {}",
            resp.status()
        ));
    };
    let resp = c
        .http
        .get(&to_syncaroo)
        .send()
        .await
        .map_err(|e| format!("{to_syncaroo}: {e}"))?;
    let back = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| format!("the fake Syncaroo refused the authorize request ({}): is the target's Syncaroo client id the fake's?", resp.status()))?;
    let resp = c
        .http
        .get(&back)
        .basic_auth("admin", Some(key))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status == 200 {
        Ok("credentials stored".into())
    } else {
        Err(format!(
            "expected 200 from confirm, got {status}: {}",
            visible_text(&text)
        ))
    }
}
