//! A fake Syncaroo API on loopback, faithful to the guide: `/api/authorize`
//! (approves at once, as if the admin clicked Approve), `/api/token` (codes
//! and refresh tokens are single-use, access tokens live `access_ttl`
//! seconds), counters, and failures on demand for the next refreshes.

use crate::server::{self, Request, Response};
use bytes::Bytes;
use rand::RngCore;
use serde_json::json;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const DEFAULT_CLIENT_ID: &str = "syncaroo-local-platform";
pub const DEFAULT_CLIENT_SECRET: &str = "fake-syncaroo-client-secret-0123456789";

#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub client_id: String,
    pub client_secret: String,
    pub access_ttl: i64,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            access_ttl: 600,
        }
    }
}

/// What the next refresh request suffers.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Answer this status with a server_error body; the token is kept.
    Status(u16),
    /// Answer invalid_grant; the token is kept (but refused).
    InvalidGrant,
    /// Rotate the token, then answer 200 with a body that is not JSON.
    Malformed,
    /// Hold the request this long, then answer 504 without rotating: the
    /// client has timed out by then.
    Stall(Duration),
}

#[derive(Default)]
struct Tokens {
    codes: HashMap<String, String>,
    access: HashMap<String, i64>,
    refresh: HashSet<String>,
}

/// What the next data request suffers.
#[derive(Debug, Clone)]
pub enum DataFailure {
    /// Answer this status (429, 500...).
    Status(u16),
    /// Answer 401 as if the token had been revoked.
    Unauthorized,
    /// Answer 200 with the page's JSON cut in half.
    Truncated,
    /// Serve the page normally but with `pages.next` set to this URL.
    NextTo(String),
    /// Answer 302 to this URL.
    Redirect(String),
}

pub struct Fake {
    pub cfg: FakeConfig,
    tokens: Mutex<Tokens>,
    failures: Mutex<VecDeque<Failure>>,
    pub refresh_calls: AtomicUsize,
    pub code_exchanges: AtomicUsize,
    datasets: Mutex<HashMap<String, Vec<Vec<serde_json::Value>>>>,
    data_failures: Mutex<VecDeque<DataFailure>>,
    /// Every data request: (path and query, bearer token, status answered).
    pub data_log: Mutex<Vec<(String, String, u16)>>,
    base: std::sync::OnceLock<String>,
    /// Holds the next data request until released (tests of what happens
    /// while a fetch is running).
    hold: Mutex<Option<Arc<DataGate>>>,
}

/// A held data request: the test waits until the request is held, acts,
/// then releases it.
#[derive(Default)]
pub struct DataGate {
    held: tokio::sync::Notify,
    released: tokio::sync::Notify,
    is_held: std::sync::atomic::AtomicBool,
    is_released: std::sync::atomic::AtomicBool,
}

impl DataGate {
    /// Returns once a data request is held here.
    pub async fn wait_held(&self) {
        loop {
            // Registered before the check, so no wake-up is missed.
            let n = self.held.notified();
            if self.is_held.load(Ordering::SeqCst) {
                return;
            }
            n.await;
        }
    }

    pub fn release(&self) {
        self.is_released.store(true, Ordering::SeqCst);
        self.released.notify_waiters();
    }

    async fn hold(&self) {
        let released = self.released.notified();
        self.is_held.store(true, Ordering::SeqCst);
        self.held.notify_waiters();
        if !self.is_released.load(Ordering::SeqCst) {
            released.await;
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random(prefix: &str) -> String {
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}{hex}")
}

fn json_resp(status: u16, v: serde_json::Value) -> Response {
    let mut r = http::Response::new(Bytes::from(v.to_string()));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn params(raw: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(raw).into_owned().collect()
}

impl Fake {
    /// Issues a pair directly (as if a handshake had happened).
    pub fn issue_pair(&self) -> (String, String, i64) {
        let mut t = self.tokens.lock().unwrap();
        let access = random("sya_");
        let refresh = random("syr_");
        let exp = now() + self.cfg.access_ttl;
        t.access.insert(access.clone(), exp);
        t.refresh.insert(refresh.clone());
        (access, refresh, exp)
    }

    /// Whether Syncaroo would accept this bearer token now.
    pub fn access_valid(&self, token: &str) -> bool {
        self.tokens
            .lock()
            .unwrap()
            .access
            .get(token)
            .is_some_and(|&e| e > now())
    }

    pub fn refresh_valid(&self, token: &str) -> bool {
        self.tokens.lock().unwrap().refresh.contains(token)
    }

    /// Queues failures for the next refresh requests, in order.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.failures.lock().unwrap().extend(failures);
    }

    pub fn refreshes(&self) -> usize {
        self.refresh_calls.load(Ordering::SeqCst)
    }

    /// Serves `pages` (each a `data` array) at `path` (e.g. `/api/v1/rates/1198`).
    pub fn set_pages(&self, path: &str, pages: Vec<Vec<serde_json::Value>>) {
        self.datasets
            .lock()
            .unwrap()
            .insert(path.to_string(), pages);
    }

    /// Queues failures for the next data requests, in order.
    pub fn fail_data(&self, failures: impl IntoIterator<Item = DataFailure>) {
        self.data_failures.lock().unwrap().extend(failures);
    }

    /// Holds the next data request until the returned gate is released.
    pub fn hold_data(&self) -> Arc<DataGate> {
        let gate = Arc::new(DataGate::default());
        *self.hold.lock().unwrap() = Some(gate.clone());
        gate
    }

    pub fn data_requests(&self) -> usize {
        self.data_log.lock().unwrap().len()
    }

    /// The absolute URL of page `page` of `path`.
    pub fn page_url(&self, path: &str, page: usize) -> String {
        let base = self.base.get().cloned().unwrap_or_default();
        if page <= 1 {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?page={page}")
        }
    }

    /// Expires every access token at once (Syncaroo revoking them): the
    /// platform must refresh on its next call.
    pub fn expire_access(&self) {
        self.tokens.lock().unwrap().access.clear();
    }

    /// Data requests for `path` (any page) answered 200.
    pub fn served(&self, path: &str) -> Vec<String> {
        self.data_log
            .lock()
            .unwrap()
            .iter()
            .filter(|(pq, _, st)| *st == 200 && (pq == path || pq.starts_with(&format!("{path}?"))))
            .map(|(pq, _, _)| pq.clone())
            .collect()
    }

    fn data(&self, req: &Request) -> Response {
        let resp = self.data_inner(req);
        if let Some(last) = self.data_log.lock().unwrap().last_mut() {
            last.2 = resp.status().as_u16();
        }
        resp
    }

    fn data_inner(&self, req: &Request) -> Response {
        let path = req.uri().path().to_string();
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_string();
        self.data_log.lock().unwrap().push((pq, bearer.clone(), 0));
        let failure = self.data_failures.lock().unwrap().pop_front();
        match &failure {
            Some(DataFailure::Status(s)) => return json_resp(*s, json!({"error": "unavailable"})),
            Some(DataFailure::Unauthorized) => {
                return json_resp(401, json!({"error": "invalid_token"}))
            }
            Some(DataFailure::Redirect(to)) => {
                let mut r = http::Response::new(Bytes::new());
                *r.status_mut() = http::StatusCode::FOUND;
                r.headers_mut()
                    .insert("location", http::HeaderValue::from_str(to).unwrap());
                return r;
            }
            _ => {}
        }
        if !self.access_valid(&bearer) {
            return json_resp(401, json!({"error": "invalid_token"}));
        }
        let q = params(req.uri().query().unwrap_or("").as_bytes());
        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let sets = self.datasets.lock().unwrap();
        let Some(pages) = sets.get(&path) else {
            return json_resp(404, json!({"error": "not_found"}));
        };
        let count = pages.len().max(1);
        if page == 0 || page > count {
            return json_resp(404, json!({"error": "no such page"}));
        }
        let data = pages.get(page - 1).cloned().unwrap_or_default();
        let next = match &failure {
            Some(DataFailure::NextTo(to)) => to.clone(),
            _ => self.next_link(req, &path, page, count),
        };
        let body = json!({
            "data": data,
            "pages": {
                "count": count,
                "current": page,
                "first": self.page_url(&path, 1),
                "next": next,
                "prev": if page > 1 { self.page_url(&path, page - 1) } else { String::new() },
                "last": self.page_url(&path, count),
            }
        });
        if matches!(failure, Some(DataFailure::Truncated)) {
            let text = body.to_string();
            let mut r = http::Response::new(Bytes::from(text[..text.len() / 2].to_string()));
            r.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            return r;
        }
        json_resp(200, body)
    }

    /// Page `page + 1`'s link, or `""` after the last. Links name the host
    /// the client asked for, as a server behind a proxy does (the
    /// fault-injection proxy keeps the Host header).
    fn next_link(&self, req: &Request, path: &str, page: usize, count: usize) -> String {
        if page >= count {
            return String::new();
        }
        match req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
        {
            Some(host) => format!("http://{host}{path}?page={}", page + 1),
            None => self.page_url(path, page + 1),
        }
    }

    fn authorize(&self, req: &Request) -> Response {
        let q = params(req.uri().query().unwrap_or("").as_bytes());
        let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
        if get("clientId") != self.cfg.client_id
            || get("responseType") != "code"
            || get("redirectUri").is_empty()
        {
            return json_resp(400, json!({"error": "invalid_request"}));
        }
        let code = random("syc_");
        self.tokens
            .lock()
            .unwrap()
            .codes
            .insert(code.clone(), get("redirectUri").to_string());
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.append_pair("code", &code)
            .append_pair("state", get("state"));
        let sep = if get("redirectUri").contains('?') {
            '&'
        } else {
            '?'
        };
        let mut r = http::Response::new(Bytes::new());
        *r.status_mut() = http::StatusCode::FOUND;
        let loc = format!("{}{sep}{}", get("redirectUri"), ser.finish());
        r.headers_mut()
            .insert("location", http::HeaderValue::from_str(&loc).unwrap());
        r
    }

    fn pair_response(&self, t: &mut Tokens) -> Response {
        let access = random("sya_");
        let refresh = random("syr_");
        t.access.insert(access.clone(), now() + self.cfg.access_ttl);
        t.refresh.insert(refresh.clone());
        json_resp(
            200,
            json!({
                "tokenType": "Bearer",
                "expiresIn": self.cfg.access_ttl,
                "accessToken": access,
                "refreshToken": refresh,
            }),
        )
    }

    async fn token(&self, req: &Request) -> Response {
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return json_resp(
                400,
                json!({"error": "invalid_request", "error_description": "form body expected"}),
            );
        }
        let p = params(req.body());
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        if get("clientId") != self.cfg.client_id || get("clientSecret") != self.cfg.client_secret {
            return json_resp(401, json!({"error": "invalid_client"}));
        }
        match get("grantType") {
            "authorization_code" => {
                self.code_exchanges.fetch_add(1, Ordering::SeqCst);
                let mut t = self.tokens.lock().unwrap();
                match t.codes.remove(get("code")) {
                    Some(redirect) if redirect == get("redirectUri") => self.pair_response(&mut t),
                    _ => json_resp(400, json!({"error": "invalid_grant"})),
                }
            }
            "refresh_token" => {
                self.refresh_calls.fetch_add(1, Ordering::SeqCst);
                let failure = self.failures.lock().unwrap().pop_front();
                match failure {
                    Some(Failure::Status(s)) => {
                        return json_resp(s, json!({"error": "server_error"}))
                    }
                    Some(Failure::InvalidGrant) => {
                        return json_resp(400, json!({"error": "invalid_grant"}))
                    }
                    Some(Failure::Stall(d)) => {
                        tokio::time::sleep(d).await;
                        return json_resp(504, json!({"error": "timeout"}));
                    }
                    Some(Failure::Malformed) | None => {}
                }
                let mut t = self.tokens.lock().unwrap();
                if !t.refresh.remove(get("refreshToken")) {
                    return json_resp(400, json!({"error": "invalid_grant"}));
                }
                let resp = self.pair_response(&mut t);
                if matches!(failure, Some(Failure::Malformed)) {
                    let mut r = http::Response::new(Bytes::from_static(b"<html>upstream hiccup"));
                    *r.status_mut() = http::StatusCode::OK;
                    return r;
                }
                resp
            }
            _ => json_resp(400, json!({"error": "unsupported_grant_type"})),
        }
    }

    async fn handle(self: Arc<Self>, req: Request) -> Response {
        match (req.method().as_str(), req.uri().path()) {
            ("GET", "/api/authorize") => self.authorize(&req),
            ("POST", "/api/token") => self.token(&req).await,
            ("GET", p) if p.starts_with("/api/") => {
                let gate = self.hold.lock().unwrap().take();
                if let Some(gate) = gate {
                    gate.hold().await;
                }
                self.data(&req)
            }
            // Syncaroo's app receiving the user back (the connect flow's redirectUri).
            ("GET", "/connection") => {
                let q = params(req.uri().query().unwrap_or("").as_bytes());
                let got = q.contains_key("code");
                let html = format!(
                    "<!doctype html><title>Syncaroo</title><h1>{}</h1><p>connection {}</p>",
                    if got {
                        "Syncaroo received the authorization code"
                    } else {
                        "Syncaroo received no code"
                    },
                    q.get("connectionId").map(String::as_str).unwrap_or("?")
                );
                let mut r = http::Response::new(Bytes::from(html));
                r.headers_mut().insert(
                    "content-type",
                    http::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
            _ => json_resp(404, json!({"error": "not_found"})),
        }
    }
}

/// A running fake Syncaroo.
pub struct FakeSyncaroo {
    pub addr: SocketAddr,
    pub fake: Arc<Fake>,
    task: JoinHandle<()>,
}

impl FakeSyncaroo {
    pub async fn start(cfg: FakeConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let fake = Arc::new(Fake {
            cfg,
            tokens: Mutex::new(Tokens::default()),
            failures: Mutex::new(VecDeque::new()),
            refresh_calls: AtomicUsize::new(0),
            code_exchanges: AtomicUsize::new(0),
            datasets: Mutex::new(HashMap::new()),
            data_failures: Mutex::new(VecDeque::new()),
            data_log: Mutex::new(Vec::new()),
            base: std::sync::OnceLock::new(),
            hold: Mutex::new(None),
        });
        let _ = fake.base.set(format!("http://{addr}"));
        let f = fake.clone();
        let task = server::spawn(listener, server::handler(move |req| f.clone().handle(req)));
        Ok(Self { addr, fake, task })
    }

    /// On a free loopback port.
    pub async fn start_local(cfg: FakeConfig) -> std::io::Result<Self> {
        Self::start(cfg, "127.0.0.1:0".parse().expect("addr")).await
    }

    /// The API base to configure (`SYNCAROO_API_BASE`).
    pub fn base(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    pub fn stop(self) {
        self.task.abort();
    }
}
