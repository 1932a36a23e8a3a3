//! Helpers shared by the integration tests: apps on the in-memory store with
//! known secrets, the events/ files as requests, the local AWS stand-ins,
//! log capture, and a small browser-like client for the connect flow.

#![forbid(unsafe_code)]

pub use syncaroo_sim::browser;
pub mod ddb_proxy;

/// One contract, two stores: each `case` (an `async fn(Arc<dyn Store>)` in
/// the calling module) runs as a test on the in-memory store and on
/// DynamoDB Local (skipped with a notice when it is not running, a failure
/// when SYNCAROO_REQUIRE_LOCAL_AWS=1), whose handlers' clock reads `now`.
#[macro_export]
macro_rules! store_conformance {
    ($now:expr; $($case:ident),* $(,)?) => {
        mod memory {
            #[allow(unused_imports)]
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case(::std::sync::Arc::new(
                    ::syncaroo_shared::store::MemoryStore::new(),
                ))
                .await;
            })*
        }
        mod dynamodb {
            #[allow(unused_imports)]
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(s) = $crate::local_aws::dynamo_store("conf", $now).await else {
                    return;
                };
                super::$case(::std::sync::Arc::new(s)).await;
            })*
        }
    };
}
pub mod fault_proxy;
pub mod ktime;
pub mod local_aws;
pub mod logs;
pub mod seed;

use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use syncaroo_shared::changes::MemorySink;
use syncaroo_shared::clock::ManualClock;
use syncaroo_shared::deadletter::MemoryDeadLetters;
use syncaroo_shared::http_util::{Request, Response};
use syncaroo_shared::secrets::{BridgeSecrets, SecretString, StaticSecrets};
use syncaroo_shared::store::{MemoryStore, Store};
use syncaroo_shared::{App, Config};

/// The secrets the `events/` files were made with (see events/README.md).
pub fn events_secrets() -> BridgeSecrets {
    BridgeSecrets {
        client_secret: SecretString::new("events-client-secret-0123456789abcdef0123"),
        session_key: SecretString::new("events-session-key-0123456789abcdef01234"),
        token_hash_key: SecretString::new("events-token-hash-key-0123456789abcdef012"),
        admin_key: Some(SecretString::new(
            "events-admin-key-0123456789abcdef0123456",
        )),
        syncaroo_client_id: Some(SecretString::new("platform-at-syncaroo")),
        syncaroo_client_secret: Some(SecretString::new(
            "syncaroo-issued-client-secret-0123456789",
        )),
        webhook_hash_key: None,
    }
}

/// 2026-11-27T19:00:00Z, the time the events/ files were made at.
pub const EVENTS_NOW: i64 = 1_795_806_000;

pub fn test_config() -> Config {
    Config::from_lookup(|k| match k {
        "LOGIN_URL" => Some("https://yourapp.com/login".into()),
        _ => None,
    })
    .expect("default config is valid")
}

pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub secrets: BridgeSecrets,
    /// The change events the handlers announced.
    pub changes: Arc<MemorySink>,
    /// Dead letters (change events that could not be put, work given up).
    pub dead_letters: Arc<MemoryDeadLetters>,
}

impl TestApp {
    pub fn with_store(store: Arc<dyn Store>) -> Self {
        Self::with(store, test_config())
    }

    pub fn with(store: Arc<dyn Store>, config: Config) -> Self {
        Self::with_secrets(store, config, events_secrets())
    }

    pub fn with_secrets(store: Arc<dyn Store>, config: Config, secrets: BridgeSecrets) -> Self {
        Self::with_source(store, config, secrets.clone(), StaticSecrets(secrets))
    }

    /// An app reading its secrets from `source`, whose current secrets are
    /// `secrets`.
    pub fn with_source(
        store: Arc<dyn Store>,
        config: Config,
        secrets: BridgeSecrets,
        source: impl syncaroo_shared::secrets::SecretSource + 'static,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(EVENTS_NOW));
        let changes = Arc::new(MemorySink::default());
        let dead_letters = Arc::new(MemoryDeadLetters::default());
        let app = App::new(config, store, source, clock.clone())
            .with_changes(changes.clone(), dead_letters.clone());
        Self {
            app,
            clock,
            secrets,
            changes,
            dead_letters,
        }
    }

    pub fn memory() -> (Self, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        (Self::with_store(store.clone()), store)
    }

    pub fn hash(&self, raw: &str) -> String {
        self.secrets.token_hash(raw)
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// An `events/` file, parsed the way lambda_http parses a real invocation.
pub fn event(name: &str) -> Request {
    let path = repo_root().join("events").join(name);
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lambda_request(lambda_http::request::from_str(&json).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// A request as lambda_http hands it to the router (its request context,
/// with API Gateway's IAM verdict, in the extensions), with the body read.
pub fn lambda_request(req: lambda_http::Request) -> Request {
    let (parts, body) = req.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(t) => Bytes::from(t),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

/// One request through the router with every row of the route table, as
/// the deployed function serving its route (or the local runner) routes it:
/// method routing, path parameters, the platform routes' caller check.
pub async fn route(app: &App, req: Request) -> Response {
    let router = syncaroo_shared::router::router(app.clone(), None);
    syncaroo_shared::router::call(&router, req).await
}

/// One request through the router `function` (a template.yaml resource
/// name) serves when deployed: its rows of the route table only.
pub async fn route_as(app: &App, function: &str, req: Request) -> Response {
    let router = syncaroo_shared::router::router(app.clone(), Some(function));
    syncaroo_shared::router::call(&router, req).await
}

pub fn event_json(name: &str) -> serde_json::Value {
    let path = repo_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("event file")).expect("json")
}

pub fn body_json(resp: &Response) -> serde_json::Value {
    serde_json::from_slice(resp.body()).unwrap_or_else(|_| {
        panic!(
            "not JSON ({}): {}",
            resp.status(),
            String::from_utf8_lossy(resp.body())
        )
    })
}

pub fn body_text(resp: &Response) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

pub fn location(resp: &Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location header ({})", resp.status()))
        .to_string()
}

/// Query parameters of a URL as a map (last one wins).
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let q = q.split('#').next().unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// A request built by hand.
pub fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).expect("valid request")
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The credentials written into the `events/` files.
pub mod events_creds {
    pub const CODE: &str = "scb_code_eyJjIjo5OSwidSI6IjEiLCJmIjoiZXZlbnRzLWZhbWlseSJ9.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    pub const REFRESH: &str = "scb_rt_eyJjIjo5OSwidSI6IjEiLCJmIjoiZXZlbnRzLWZhbWlseSJ9.AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
    pub const ACCESS: &str = "scb_at_AgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICE";
    pub const FAMILY: &str = "events-family";
    pub const CONNECTION: &str = "99";
    pub const USER: &str = "1";
}

use syncaroo_shared::model::{AuthCodeRecord, ConnectionId, TokenKind, TokenRecord, UserId};
use syncaroo_shared::store::CodeRedemption;

impl TestApp {
    /// Stores the events' code as if the demo user had just consented.
    pub async fn seed_events_code(&self) {
        let now = self.clock_now();
        let rec = AuthCodeRecord {
            hash: self.hash(events_creds::CODE),
            connection_id: ConnectionId::parse(events_creds::CONNECTION).unwrap(),
            user_id: UserId::parse(events_creds::USER).unwrap(),
            client_id: self.app.config.client_id.clone(),
            redirect_uri: self.app.config.redirect_uri.clone(),
            family: events_creds::FAMILY.into(),
            expires_at: now + 300,
        };
        self.app
            .store
            .begin_authorization(&rec, now)
            .await
            .expect("seed code");
    }

    /// Stores the events' code, redeemed for the events' access and refresh
    /// tokens, and the demo listings: the state check_connection and the
    /// refresh grant start from.
    pub async fn seed_events_tokens(&self) {
        self.seed_events_code().await;
        let now = self.clock_now();
        let tok = |raw: &str, kind, ttl: i64| TokenRecord {
            hash: self.hash(raw),
            kind,
            connection_id: ConnectionId::parse(events_creds::CONNECTION).unwrap(),
            user_id: UserId::parse(events_creds::USER).unwrap(),
            client_id: self.app.config.client_id.clone(),
            family: events_creds::FAMILY.into(),
            expires_at: now + ttl,
            revoked: false,
            used_at: None,
        };
        let r = CodeRedemption {
            code_hash: self.hash(events_creds::CODE),
            client_id: self.app.config.client_id.clone(),
            redirect_uri: None,
            connection_id: ConnectionId::parse(events_creds::CONNECTION).unwrap(),
            user_id: UserId::parse(events_creds::USER).unwrap(),
            family: events_creds::FAMILY.into(),
            now,
            access: tok(events_creds::ACCESS, TokenKind::Access, 3600),
            refresh: tok(events_creds::REFRESH, TokenKind::Refresh, 86_400),
        };
        self.app.store.redeem_code(&r).await.expect("seed tokens");
        syncaroo_local::import_listings(self.app.store.as_ref(), syncaroo_local::DEMO_LISTINGS)
            .await
            .expect("seed listings");
    }

    pub fn clock_now(&self) -> i64 {
        use syncaroo_shared::clock::Clock;
        self.clock.now()
    }
}

impl TestApp {
    /// A fresh code for `connection`, stored as if `user` had consented.
    pub async fn issue_code(&self, connection: &str, user: &str) -> String {
        use syncaroo_shared::crypto;
        use syncaroo_shared::model::{GrantPayload, CODE_PREFIX};
        let family = crypto::random_b64(16);
        let payload = GrantPayload {
            c: ConnectionId::parse(connection).unwrap(),
            u: UserId::parse(user).unwrap(),
            f: family.clone(),
        };
        let code = crypto::mint(CODE_PREFIX, Some(&payload));
        let now = self.clock_now();
        let rec = AuthCodeRecord {
            hash: self.hash(&code),
            connection_id: payload.c.clone(),
            user_id: payload.u.clone(),
            client_id: self.app.config.client_id.clone(),
            redirect_uri: self.app.config.redirect_uri.clone(),
            family,
            expires_at: now + syncaroo_shared::clock::secs(self.app.config.code_ttl),
        };
        self.app
            .store
            .begin_authorization(&rec, now)
            .await
            .expect("store code");
        code
    }

    /// The guide's token request for `code`.
    pub fn code_request(&self, code: &str) -> syncaroo_shared::http_util::Request {
        request(
            "POST",
            "/api/oauth/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            form(&[
                ("clientId", &self.app.config.client_id),
                ("clientSecret", self.secrets.client_secret.expose()),
                ("code", code),
                ("grantType", "authorization_code"),
            ]),
        )
    }

    pub fn check_request(
        &self,
        connection: &str,
        access: &str,
    ) -> syncaroo_shared::http_util::Request {
        request(
            "GET",
            &format!("/api/check_connection/?connectionId={connection}"),
            &[("authorization", &format!("Bearer {access}"))],
            bytes::Bytes::new(),
        )
    }
}

/// The POST a browser makes when the user presses `decision` on the
/// consent `page`, with the session `cookie` it was shown with.
pub fn consent_post(page: &Response, cookie: &str, decision: &str) -> Request {
    let mut fields = browser::parse_form(&body_text(page))
        .expect("a consent form")
        .fields;
    fields.push(("decision".into(), decision.into()));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    request(
        "POST",
        "/api/oauth/authorize",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", cookie),
        ],
        form(&pairs),
    )
}

/// Signs a webhook body with the default hash profile.
pub fn sign(mut body: serde_json::Value, key: &str) -> String {
    let map = body.as_object().expect("object").clone();
    let hash = syncaroo_shared::webhook::HashProfile::default().compute(key.as_bytes(), &map);
    body["hash"] = serde_json::Value::String(hash);
    body.to_string()
}

/// A config whose Syncaroo API is `base` (a loopback fake), with short
/// retry budgets so failure tests stay fast.
pub fn config_with_syncaroo(base: &str, extra: &[(&str, &str)]) -> Config {
    let base = base.to_string();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| {
        if let Some((_, v)) = extra.iter().find(|(n, _)| n == k) {
            return Some(v.clone());
        }
        match k {
            "SYNCAROO_API_BASE" | "SYNCAROO_DATA_BASES" => Some(base.clone()),
            "SYNCAROO_ALLOW_LOOPBACK" => Some("true".into()),
            "SYNCAROO_HTTP_TIMEOUT_MS" => Some("2000".into()),
            "SYNC_PAGE_ATTEMPTS" => Some("3".into()),
            "SYNC_MAX_ATTEMPTS" => Some("2".into()),
            // The coalescing rules alone; the interval has its own tests.
            "SYNC_MIN_FETCH_INTERVAL_MS" => Some("0".into()),
            _ => None,
        }
    })
    .expect("valid test config")
}

/// Walks the connect flow against a running local runner as the demo user
/// and returns Syncaroo's access token for `connection`.
pub async fn connect_over_http(r: &syncaroo_local::Running, connection: &str) -> String {
    let redirect = "https://app.syncaroo.com/connection";
    let url = format!(
        "{}?connectionId={connection}&clientId={}&redirectUri={}&response_type=code",
        r.setup.auth_uri,
        r.setup.your_client_id,
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let back = browser::Browser::new()
        .connect(&url, redirect, "demo", "demo", "authorize")
        .await
        .expect("connect flow");
    let code = query_of(&back)["code"].clone();
    let tokens: serde_json::Value = syncaroo_shared::tls::http_client_builder()
        .build()
        .unwrap()
        .post(&r.setup.auth_token_uri)
        .form(&[
            ("clientId", r.setup.your_client_id.as_str()),
            ("clientSecret", r.setup.your_client_secret.as_str()),
            ("code", code.as_str()),
            ("grantType", "authorization_code"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    tokens["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string()
}

/// Stores a pair `fake` issued as our Syncaroo API credentials, already
/// expired at `now` (so the next use refreshes); returns its refresh token.
pub async fn store_expired_pair(
    store: &dyn syncaroo_shared::store::CredentialsStore,
    fake: &syncaroo_sim::FakeSyncaroo,
    now: i64,
) -> String {
    let (access, refresh, _) = fake.fake.issue_pair();
    store
        .put_credentials(
            &syncaroo_shared::syncaroo::NewCredentials {
                access_token: syncaroo_shared::secrets::SecretString::new(access),
                expires_at: now - 5,
                refresh_token: syncaroo_shared::secrets::SecretString::new(refresh.clone()),
            },
            now,
        )
        .await
        .expect("store credentials");
    refresh
}

/// A fake Syncaroo API and a local runner (on `store`, its own table) that
/// calls it; `settings` and `admin_key` go to the runner.
pub async fn runner_with_fake(
    store: syncaroo_local::StoreKind,
    table_prefix: &str,
    admin_key: Option<&str>,
    settings: &[(&str, &str)],
) -> (syncaroo_local::Running, syncaroo_sim::FakeSyncaroo) {
    let fake = syncaroo_sim::FakeSyncaroo::start_local(syncaroo_sim::FakeConfig::default())
        .await
        .expect("fake Syncaroo starts");
    let r = syncaroo_local::start(syncaroo_local::Options {
        addr: "127.0.0.1:0".parse().expect("addr"),
        store,
        table: local_aws::unique_table(table_prefix),
        syncaroo_base: fake.base(),
        admin_key: admin_key.map(str::to_string),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..syncaroo_local::Options::default()
    })
    .await
    .expect("local runner starts");
    (r, fake)
}

/// Runs the `openssl` command (Debian's openssl package) with `args` in
/// `dir` and returns its standard output; panics with its standard error
/// when it fails. The tests and the benchmark make throwaway keys and
/// certificates with it: an independent implementation, not ours.
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The configured fetch policy with short pauses between page retries.
pub fn fast_policy(app: &App) -> syncaroo_shared::syncaroo::data::FetchPolicy {
    syncaroo_shared::syncaroo::data::FetchPolicy {
        backoff_ms: 5,
        ..syncaroo_shared::handlers::sync::fetch_policy(app)
    }
}
