//! The local runner: every endpoint of the bundle in one process, on the
//! embedded store (or DynamoDB), plus a stand-in for the platform's login
//! page. It exists because Lambda functions cannot be served together
//! without a container runtime; it serves the very router the Lambdas serve
//! (`syncaroo_shared::router`), every row of the route table at once.

#![forbid(unsafe_code)]

use askama::Template;
use std::net::SocketAddr;
use std::sync::Arc;
use syncaroo_shared::changes::ChangeSink;
use syncaroo_shared::clock::{Clock, SystemClock};
use syncaroo_shared::crypto::{self, SessionClaims};
use syncaroo_shared::handlers::sync::{target_of, Delivered};
use syncaroo_shared::http_util::{self, Params, Request, Response};
use syncaroo_shared::router;
use syncaroo_shared::routes::{self, Endpoint};
use syncaroo_shared::secrets::{BridgeSecrets, PreviousSecret, RotatingSecrets, SecretString};
use syncaroo_shared::store::{DynamoStore, MemoryStore, Store};
use syncaroo_shared::webhook::Webhook;
use syncaroo_shared::{handlers, App, Config, Error};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The guide's example listings, owned by the demo user.
pub const DEMO_LISTINGS: &str = include_str!("../demo-listings.json");
pub const DEMO_USERNAME: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo";
pub const DEMO_USER_ID: &str = "1";

pub use syncaroo_shared::public_url::SetupBlock;
pub use syncaroo_shared::public_url::{
    ADMIN_CONFIRM_PATH, ADMIN_CONNECT_PATH, ADMIN_STATUS_PATH, AUTHORIZE_PATH as AUTH_PATH,
    CHECK_CONNECTION_PATH, TOKEN_PATH, WEBHOOK_PATH,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Dynamodb,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub addr: SocketAddr,
    pub store: StoreKind,
    pub table: String,
    pub client_id: String,
    /// Generated when absent.
    pub client_secret: Option<String>,
    /// The client secret a rotation replaced: accepted too, for
    /// `CLIENT_SECRET_GRACE_SECONDS` from the runner's start.
    pub previous_client_secret: Option<String>,
    pub redirect_uri: String,
    /// Extra listings to load at start, beside the demo user's.
    pub listings: Option<String>,
    /// Syncaroo API base; a loopback `http://` base is allowed here.
    pub syncaroo_base: String,
    pub syncaroo_client_id: String,
    pub syncaroo_client_secret: String,
    /// Password of the admin routes (user `admin`); generated when absent.
    pub admin_key: Option<String>,
    /// Further settings (environment variable names of `Config`), e.g. a
    /// webhook hash profile; they win over the runner's own.
    pub settings: Vec<(String, String)>,
    /// With `StoreKind::Dynamodb`: this client instead of one from the AWS
    /// environment (tests: DynamoDB Local behind the fault proxy).
    pub dynamodb_client: Option<aws_sdk_dynamodb::Client>,
    /// Appends every change event to this file, one PutEvents entry (JSON)
    /// a line, as EventBridge would receive it.
    pub events_out: Option<std::path::PathBuf>,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".parse().expect("valid"),
            store: StoreKind::Memory,
            table: "syncaroo-bridge".into(),
            client_id: "syncaroo-local".into(),
            client_secret: None,
            previous_client_secret: None,
            redirect_uri: "https://app.syncaroo.com/connection".into(),
            listings: None,
            syncaroo_base: "https://app.syncaroo.com/api/".into(),
            syncaroo_client_id: syncaroo_sim::fake::DEFAULT_CLIENT_ID.into(),
            syncaroo_client_secret: syncaroo_sim::fake::DEFAULT_CLIENT_SECRET.into(),
            admin_key: None,
            settings: Vec::new(),
            dynamodb_client: None,
            events_out: None,
            max_connections: syncaroo_sim::server::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

pub struct Running {
    /// Where the in-process worker puts events it gives up on, and change
    /// events that could not be put.
    pub dead_letters: Arc<syncaroo_shared::deadletter::MemoryDeadLetters>,
    /// Every change event put so far (also in `events_out` when given).
    pub change_events: Arc<syncaroo_shared::changes::MemorySink>,
    worker: JoinHandle<()>,
    pub addr: SocketAddr,
    pub setup: SetupBlock,
    /// The admin routes' password (user `admin`).
    pub admin_key: String,
    pub app: App,
    pub store: Arc<dyn Store>,
    server: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

impl Running {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn stop(self) {
        self.server.abort();
        self.worker.abort();
        self.ticker.abort();
    }
}

struct State {
    app: App,
    session_ttl: i64,
    /// What webhooks recorded, for the in-process worker (the stream's role).
    events: tokio::sync::mpsc::UnboundedSender<Delivered>,
}

/// The sync worker in-process: what the DynamoDB stream and the sync
/// Lambda do in AWS. One task, so one target is never fetched twice at
/// once (as one stream shard is processed in order); a retry comes back
/// after a pause, like a redelivery.
fn spawn_worker(
    app: App,
    dlq: Arc<syncaroo_shared::deadletter::MemoryDeadLetters>,
    tx: tokio::sync::mpsc::UnboundedSender<Delivered>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Delivered>,
) -> JoinHandle<()> {
    use syncaroo_shared::handlers::sync::{fetch_policy, process, Outcome};
    tokio::spawn(async move {
        let policy = fetch_policy(&app);
        let mut retries: std::collections::HashMap<String, u64> = Default::default();
        while let Some(d) = rx.recv().await {
            let key = match &d {
                Delivered::Target(t) => t.id(),
                Delivered::Event(e) => e.id.clone(),
            };
            let pause = match process(&app, dlq.as_ref(), &d, &policy).await {
                Outcome::Retry(_) => {
                    let n = retries.entry(key).or_default();
                    *n += 1;
                    Some(std::time::Duration::from_millis(500 * *n))
                }
                // Inside the target's fetch interval: again when it ends,
                // without holding up the other targets.
                Outcome::Deferred { until_ms } => Some(std::time::Duration::from_millis(
                    (until_ms - app.clock.now_ms()).max(0) as u64,
                )),
                _ => {
                    retries.remove(&key);
                    None
                }
            };
            if let Some(pause) = pause {
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(pause).await;
                    let _ = tx.send(d);
                });
            }
        }
    })
}

pub async fn make_store(opts: &Options) -> Result<Arc<dyn Store>, Error> {
    Ok(match opts.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Dynamodb => {
            let s = match &opts.dynamodb_client {
                Some(client) => DynamoStore::new(client.clone(), &opts.table),
                None => DynamoStore::from_env(&opts.table).await,
            };
            s.ensure_table().await?;
            Arc::new(s)
        }
    })
}

/// Adds an import file's listings (see `platform_ops::import_listings`).
pub async fn import_listings(store: &dyn Store, json: &str) -> Result<usize, Error> {
    syncaroo_shared::platform_ops::import_listings(store, json, false).await
}

/// Each user in the file ends with exactly the file's locations.
pub async fn replace_listings_from(store: &dyn Store, json: &str) -> Result<usize, Error> {
    syncaroo_shared::platform_ops::import_listings(store, json, true).await
}

/// Binds, seeds the demo user, and serves until the returned handle stops.
/// The runner's secrets: generated, with the options' client secret, admin
/// key and Syncaroo client.
fn local_secrets(opts: &Options) -> Result<BridgeSecrets, Error> {
    let mut secrets = BridgeSecrets::generate();
    if let Some(s) = &opts.client_secret {
        secrets.client_secret = SecretString::new(s.clone());
    }
    if let Some(k) = &opts.admin_key {
        secrets.admin_key = Some(SecretString::new(k.clone()));
    }
    secrets.syncaroo_client_id = Some(SecretString::new(opts.syncaroo_client_id.clone()));
    secrets.syncaroo_client_secret = Some(SecretString::new(opts.syncaroo_client_secret.clone()));
    secrets.validate()?;
    Ok(secrets)
}

/// The local profile's settings for a runner at `site`; `--set` overrides.
fn local_config(opts: &Options, site: &str) -> Result<Config, Error> {
    // A terminal, not CloudWatch Logs: metrics are logged, not printed.
    syncaroo_shared::metrics::print_emf(false);
    let env = [
        ("OAUTH_CLIENT_ID", opts.client_id.clone()),
        ("OAUTH_REDIRECT_URI", opts.redirect_uri.clone()),
        ("PUBLIC_BASE_URL", site.to_string()),
        ("LOGIN_URL", format!("{site}/login")),
        ("PLATFORM_NAME", "Demo Platform".to_string()),
        ("TABLE_NAME", opts.table.clone()),
        ("SYNCAROO_API_BASE", opts.syncaroo_base.clone()),
        // The fake Syncaroo serves its data API under the same base.
        ("SYNCAROO_DATA_BASES", opts.syncaroo_base.clone()),
        ("SYNCAROO_ALLOW_LOOPBACK", "true".to_string()),
        // No API Gateway here to verify an IAM caller: the platform API
        // takes the admin key instead.
        ("PLATFORM_API_AUTH", "basic".to_string()),
        // A second's wait between fetches of one target, so a local run
        // shows a change soon (deployed: SyncMinFetchIntervalMs).
        ("SYNC_MIN_FETCH_INTERVAL_MS", "1000".to_string()),
        // A second's refresh retry window (deployed: 10 s), so the
        // conformance kit's reuse check waits a second, not ten.
        ("REFRESH_REUSE_GRACE_SECONDS", "1".to_string()),
    ];
    Config::from_lookup(|k| {
        opts.settings
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
    })
}

/// What to enter in Syncaroo's integration setup for a runner at `site`.
/// The refresh function's schedule, in-process: once a minute.
fn spawn_refresh_schedule(app: App) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        every.tick().await;
        loop {
            every.tick().await;
            let _ = handlers::refresh::scheduled(&app).await;
        }
    })
}

pub async fn start(opts: Options) -> Result<Running, Error> {
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", opts.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(e.to_string()))?;
    let site = format!("http://{addr}");
    let store = make_store(&opts).await?;
    import_listings(store.as_ref(), DEMO_LISTINGS).await?;
    if let Some(path) = &opts.listings {
        let json = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {path}: {e}")))?;
        import_listings(store.as_ref(), &json).await?;
    }
    let secrets = local_secrets(&opts)?;
    let admin_key = secrets
        .admin_key
        .as_ref()
        .map(|k| k.expose().to_string())
        .unwrap_or_default();
    let setup = SetupBlock::new(&site, &opts.client_id, secrets.client_secret.expose());
    let config = local_config(&opts, &site)?;
    let dead_letters = Arc::new(syncaroo_shared::deadletter::MemoryDeadLetters::default());
    let change_events = Arc::new(syncaroo_shared::changes::MemorySink::default());
    let mut sinks: Vec<Arc<dyn ChangeSink>> = vec![change_events.clone()];
    if let Some(path) = &opts.events_out {
        sinks.push(Arc::new(syncaroo_shared::changes::FileSink::new(path)));
    }
    let previous = opts
        .previous_client_secret
        .as_ref()
        .map(|s| PreviousSecret {
            secret: SecretString::new(s.clone()),
            rotated_at: SystemClock.now(),
        });
    let app = App::new(
        config,
        store.clone(),
        RotatingSecrets {
            current: secrets,
            previous,
        },
        Arc::new(SystemClock),
    )
    .with_changes(
        Arc::new(syncaroo_shared::changes::Tee(sinks)),
        dead_letters.clone(),
    );
    let ticker = spawn_refresh_schedule(app.clone());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = spawn_worker(app.clone(), dead_letters.clone(), tx.clone(), rx);
    let state = Arc::new(State {
        app: app.clone(),
        session_ttl: 3600,
        events: tx,
    });
    let router = local_router(state);
    let server = syncaroo_sim::server::spawn_limited(
        listener,
        syncaroo_sim::server::handler(move |req| {
            let router = router.clone();
            async move { router::call(&router, req).await }
        }),
        syncaroo_sim::server::Timeouts::default(),
        opts.max_connections,
    );
    Ok(Running {
        dead_letters,
        change_events,
        worker,
        addr,
        setup,
        admin_key,
        app,
        store,
        server,
        ticker,
    })
}

/// Every route of the table (the shared router, as the Lambdas serve
/// it), the runner's own pages (the stand-in login and an index), and the
/// stream's part: what an accepted webhook recorded goes to the worker.
fn local_router(state: Arc<State>) -> axum::Router {
    use axum::routing::get;
    let own = axum::Router::new()
        .route("/login", get(login_route).post(login_route))
        .route("/", get(index))
        .with_state(state.clone());
    router::router(state.app.clone(), None)
        .merge(own)
        .layer(axum::middleware::from_fn_with_state(state, stream_stand_in))
}

async fn index() -> axum::response::Response {
    http_util::html_response(
        http::StatusCode::OK,
        "<!doctype html><title>syncaroo-bridge local</title><h1>syncaroo-bridge, local runner</h1><p>Endpoints: <code>/api/oauth/authorize</code>, <code>/api/oauth/token</code>, <code>/api/check_connection/</code>, <code>/login</code>.</p>".into(),
    )
    .map(axum::body::Body::from)
}

async fn login_route(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let resp = match router::buffered(req).await {
        Ok(req) => login(&state, req).await,
        Err(e) => e.to_html_response(),
    };
    resp.map(axum::body::Body::from)
}

/// What the table's stream does in AWS: a webhook answered 202 hands the
/// target it notified to the worker.
async fn stream_stand_in(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let matched = req.extensions().get::<axum::extract::MatchedPath>();
    let is_webhook = matched.is_some_and(|m| {
        routes::ROUTES
            .iter()
            .any(|r| r.endpoint == Endpoint::Webhook && r.path == m.as_str())
    });
    if !is_webhook {
        return next.run(req).await;
    }
    let req = match router::buffered(req).await {
        Ok(r) => r,
        Err(e) => {
            return Endpoint::Webhook
                .error_response(e)
                .map(axum::body::Body::from)
        }
    };
    let body = req.body().clone();
    let resp = next.run(req.map(axum::body::Body::from)).await;
    if resp.status() == http::StatusCode::ACCEPTED {
        if let Some(d) = delivered(&body) {
            let _ = state.events.send(d);
        }
    }
    resp
}

/// What an accepted webhook recorded, as the stream would deliver it: the
/// target it notified.
fn delivered(body: &[u8]) -> Option<Delivered> {
    let hook = Webhook::parse(body).ok()?;
    Some(Delivered::Target(target_of(&hook)))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    platform_name: &'a str,
    return_to: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
}

/// The login form's CSRF cookie: the form's hidden `csrf` must equal it
/// (double submit; another site can neither read nor set it).
const LOGIN_CSRF_COOKIE: &str = "login_csrf";

fn login_page(
    state: &State,
    return_to: &str,
    error: Option<&str>,
    status: http::StatusCode,
) -> Response {
    let csrf = crypto::random_b64(16);
    let page = LoginPage {
        platform_name: &state.app.config.platform_name,
        return_to,
        csrf: &csrf,
        error,
    };
    let mut resp = http_util::html_response(status, page.render().unwrap_or_default());
    let cookie =
        format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=600");
    match http_util::set_header(&mut resp, "set-cookie", &cookie) {
        Ok(()) => resp,
        Err(_) => {
            Error::Config("the login form's cookie is not a header value".into()).to_html_response()
        }
    }
}

/// Only our own authorize URL is a valid place to return to after login:
/// same origin, and the authorize path itself once dot segments are
/// resolved (its query is kept); anything else returns to `/`.
fn safe_return(app: &App, to: &str) -> String {
    let ours = app
        .config
        .public_base_url
        .as_deref()
        .and_then(|b| url::Url::parse(b).ok());
    let ok = url::Url::parse(to).ok().filter(|u| {
        ours.as_ref().is_some_and(|b| b.origin() == u.origin())
            && syncaroo_shared::public_url::normalize_path(u.path()) == AUTH_PATH
            && u.username().is_empty()
            && u.fragment().is_none()
    });
    match ok {
        Some(u) => u.to_string(),
        None => "/".into(),
    }
}

async fn login(state: &State, req: Request) -> Response {
    let app = &state.app;
    // The router routes GET (and HEAD, as GET) and POST here.
    if req.method() != http::Method::POST {
        let p = Params::from_query(&req).unwrap_or_default();
        let to = p.one_of(&["return_to"]).ok().flatten().unwrap_or("/");
        return login_page(state, &safe_return(app, to), None, http::StatusCode::OK);
    }
    let p = match http_util::form_body(&req) {
        Ok(p) => p,
        Err(e) => return e.to_html_response(),
    };
    let get = |k: &str| p.one_of(&[k]).ok().flatten().unwrap_or("");
    let to = safe_return(app, get("return_to"));
    let cookie = http_util::cookie(&req, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie.is_empty() || !crypto::ct_eq(get("csrf"), cookie) {
        tracing::info!("local login refused: missing or wrong CSRF token");
        return login_page(
            state,
            &to,
            Some("This login form expired or came from elsewhere: log in again."),
            http::StatusCode::FORBIDDEN,
        );
    }
    let ok = crypto::ct_eq(get("username"), DEMO_USERNAME)
        & crypto::ct_eq(get("password"), DEMO_PASSWORD);
    if !ok {
        return login_page(
            state,
            &to,
            Some("Unknown username or wrong password."),
            http::StatusCode::UNAUTHORIZED,
        );
    }
    let Ok(secrets) = app.secrets.get().await else {
        return Error::Secrets(syncaroo_shared::error::Fault::transient("unavailable"))
            .to_html_response();
    };
    let now = SystemClock.now();
    let claims = SessionClaims {
        sub: DEMO_USER_ID.into(),
        iat: now,
        exp: now + state.session_ttl,
    };
    let jwt = crypto::sign_jwt(secrets.session_key.expose().as_bytes(), &claims);
    let mut resp = http_util::redirect(&to);
    *resp.status_mut() = http::StatusCode::SEE_OTHER;
    let cookie = format!(
        "{}={jwt}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        app.config.session_cookie, state.session_ttl
    );
    if http_util::set_header(&mut resp, "set-cookie", &cookie).is_err() {
        return Error::Config("SESSION_COOKIE cannot be put in a cookie header".into())
            .to_html_response();
    }
    tracing::info!(user = DEMO_USER_ID, "local login");
    resp
}
