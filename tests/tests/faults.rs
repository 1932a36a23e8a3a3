//! Fault injection on every request path: DynamoDB Local, the Secrets
//! Manager server and the fake Syncaroo sit behind `fault_proxy`, and each
//! step of each path (the Nth request of each operation it makes) gets each
//! fault, once (a blip the retries should absorb) and held (an outage, until
//! lifted). Whatever the path answers, the invariants hold: a success was
//! stored, a failure is a 503 with `Retry-After` (the worker: a retry, the
//! schedule: an error) that stored nothing half-way, and the same request
//! after the fault is lifted succeeds. The outcomes per path and fault are
//! the README's table ("Faults"), compared here row by row.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use syncaroo_shared::aws_http::ReqwestHttpClient;
use syncaroo_shared::clock::ManualClock;
use syncaroo_shared::deadletter::MemoryDeadLetters;
use syncaroo_shared::handlers::{self, sync};
use syncaroo_shared::http_util::Response;
use syncaroo_shared::secrets::{SecretString, SecretsManagerSource};
use syncaroo_shared::store::{DynamoStore, Store};
use syncaroo_shared::syncaroo::{NewCredentials, TokenProvider};
use syncaroo_shared::webhook::Webhook;
use syncaroo_shared::App;
use syncaroo_sim::{FakeConfig, FakeSyncaroo};
use syncaroo_tests::fault_proxy::{self, Fault, Plan, Service};
use syncaroo_tests::{
    body_json, events_creds, events_secrets, local_aws, request, sign, TestApp, EVENTS_NOW,
};

const RATES: &str = "/api/v1/locations/1198/rates";

/// The proxies and the fake of one path's test.
struct Rig {
    plan: Arc<Plan>,
    ddb: String,
    sm: String,
    api: String,
    fake: FakeSyncaroo,
    secret_id: String,
}

async fn rig() -> Option<Arc<Rig>> {
    if !local_aws::dynamodb_available() || !local_aws::secrets_manager_available() {
        return None;
    }
    let env = |k: &str| std::env::var(k).expect(k);
    let plan = Plan::new();
    let fake = FakeSyncaroo::start_local(FakeConfig::default())
        .await
        .unwrap();
    let ddb = fault_proxy::start(
        Service::DynamoDb,
        &env("AWS_ENDPOINT_URL_DYNAMODB"),
        plan.clone(),
    )
    .await;
    let sm = fault_proxy::start(
        Service::SecretsManager,
        &env("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
        plan.clone(),
    )
    .await;
    let api = fault_proxy::start(Service::Syncaroo, &fake.base(), plan.clone()).await;
    let s = secrets(&fake);
    let secret_id = local_aws::unique_table("fault-secret");
    let doc = json!({
        "clientSecret": s.client_secret.expose(),
        "sessionKey": s.session_key.expose(),
        "tokenHashKey": s.token_hash_key.expose(),
        "syncarooClientId": fake.fake.cfg.client_id,
        "syncarooClientSecret": fake.fake.cfg.client_secret,
    });
    local_aws::secrets_client()
        .await?
        .create_secret()
        .name(&secret_id)
        .secret_string(doc.to_string())
        .send()
        .await
        .expect("secret");
    fake.fake.set_pages(RATES, pages());
    Some(Arc::new(Rig {
        plan,
        ddb,
        sm,
        api,
        fake,
        secret_id,
    }))
}

fn secrets(fake: &FakeSyncaroo) -> syncaroo_shared::secrets::BridgeSecrets {
    let mut s = events_secrets();
    s.admin_key = None;
    s.syncaroo_client_id = Some(SecretString::new(fake.fake.cfg.client_id.clone()));
    s.syncaroo_client_secret = Some(SecretString::new(fake.fake.cfg.client_secret.clone()));
    s
}

fn pages() -> Vec<Vec<Value>> {
    vec![
        vec![json!({"rate": "hourly", "amount": 10})],
        vec![json!({"rate": "daily", "amount": 60})],
        vec![json!({"rate": "weekly", "amount": 250})],
    ]
}

/// One run's table, reached two ways: `t` through the proxies (a cold app:
/// its secrets come from Secrets Manager on first use), `direct` straight
/// to DynamoDB Local with the same secrets, for setting up and checking.
struct World {
    t: TestApp,
    direct: TestApp,
}

async fn world(rig: &Rig) -> World {
    let table = local_aws::unique_table("faults");
    let shift = local_aws::ttl_shift_for(EVENTS_NOW);
    let direct_store = DynamoStore::from_env(&table).await.with_ttl_shift(shift);
    direct_store.ensure_table().await.expect("table");
    // Short waits so a run takes well under a second; the retry policy
    // (three attempts, which errors are retried) is the SDK's standard one.
    let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
    let http = aws_sdk_dynamodb::config::SharedHttpClient::new(
        ReqwestHttpClient::new(syncaroo_shared::tls::client_config().unwrap())
            .with_read_idle_timeout(Duration::from_millis(300)),
    );
    let retry = aws_sdk_dynamodb::config::retry::RetryConfig::standard()
        .with_initial_backoff(Duration::from_millis(10));
    let ddb = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(&rig.ddb)
        .http_client(http.clone())
        .retry_config(retry.clone())
        .build();
    let sm = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(&rig.sm)
        .http_client(http)
        .retry_config(retry)
        .build();
    let store =
        DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(ddb), &table).with_ttl_shift(shift);
    let config = syncaroo_tests::config_with_syncaroo(
        &rig.api,
        &[
            ("LOGIN_URL", "https://yourapp.com/login"),
            ("SYNCAROO_HTTP_TIMEOUT_MS", "300"),
            ("SYNC_MAX_ATTEMPTS", "10"),
            // Shorter than a stall (30 s): a stalled page that used up the
            // whole budget would show as "retry" where the table says "ok".
            ("SYNC_DEADLINE_MS", "10000"),
        ],
    );
    let clock = Arc::new(ManualClock::new(EVENTS_NOW));
    let changes = Arc::new(syncaroo_shared::changes::MemorySink::default());
    let dead_letters = Arc::new(syncaroo_shared::deadletter::MemoryDeadLetters::default());
    let app = App::new(
        config.clone(),
        Arc::new(store),
        SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::from_conf(sm),
            &rig.secret_id,
        ),
        clock.clone(),
    )
    .with_changes(changes.clone(), dead_letters.clone());
    app.set_provider(
        TokenProvider::new(
            &config,
            app.store.clone(),
            app.secrets.clone(),
            clock.clone(),
        )
        .with_backoff_ms(10),
    );
    let s = secrets(&rig.fake);
    let direct = TestApp::with_secrets(Arc::new(direct_store), config, s.clone());
    World {
        t: TestApp {
            app,
            clock,
            secrets: s,
            changes,
            dead_letters,
        },
        direct,
    }
}

/// A step: the Nth request of an operation.
type Step = (String, usize);

/// The first answer's kind, or why an invariant broke.
type Outcome = Result<&'static str, String>;

/// How a path answered a request: its success, or a 503 with Retry-After.
fn answered(resp: &Response, success: u16) -> Outcome {
    match resp.status().as_u16() {
        s if s == success => Ok("ok"),
        503 if resp.headers().contains_key("retry-after") => Ok("503"),
        s => Err(format!(
            "answered {s}: {}",
            String::from_utf8_lossy(resp.body())
        )),
    }
}

/// Runs one path under `fault` at `step` (`count` requests from it), or
/// unfaulted; its first outcome (the plan records the requests it made).
type PathRun = fn(Arc<Rig>, Option<(Step, usize, Fault)>) -> PathFuture;
type PathFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>;

/// `act` with the fault armed (the plan's record restarted), then lifted.
async fn arm_then<F, Fut>(rig: &Rig, fault: &Option<(Step, usize, Fault)>, act: F) -> Outcome
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    rig.plan.reset();
    if let Some(((op, nth), count, f)) = fault {
        rig.plan.arm(op, *nth, *count, *f);
    }
    let out = act().await;
    rig.plan.disarm();
    out
}

/// Drives a path through every step x fault x {once, held}; panics with
/// every broken invariant, and unless README.md has the measured row.
async fn matrix(name: &str, run: PathRun) {
    let Some(rig) = rig().await else { return };
    let ops = steps(&rig, run).await;
    let mut cells: BTreeMap<Fault, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    let mut broken = vec![];
    for step in &ops {
        let service = service_of(&step.0);
        for fault in Fault::ALL.into_iter().filter(|f| f.applies_to(service)) {
            for (held, count) in [(false, 1), (true, usize::MAX)] {
                match run(rig.clone(), Some((step.clone(), count, fault))).await {
                    Ok(label) => {
                        let cell = cells.entry(fault).or_default();
                        if held { &mut cell.1 } else { &mut cell.0 }.insert(label);
                    }
                    Err(e) => broken.push(format!(
                        "{name}, {} at {} #{}{}: {e}",
                        fault.name(),
                        step.0,
                        step.1,
                        if held { " (held)" } else { "" }
                    )),
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    let row = readme_row(name, &ops, &cells);
    let readme =
        std::fs::read_to_string(syncaroo_tests::repo_root().join("docs/TESTING.md")).unwrap();
    assert!(
        readme.lines().any(|l| l == row),
        "docs/TESTING.md's fault table should have this row (the outcomes measured):\n{row}"
    );
}

/// The requests an unfaulted run makes, as steps.
async fn steps(rig: &Arc<Rig>, run: PathRun) -> Vec<Step> {
    // The fewest requests of each operation over two unfaulted runs: DynamoDB
    // Local now and then cancels a transaction for a conflict with another
    // test's running beside it, and the SDK's retry of it is no step of the
    // path.
    let mut fewest: Option<BTreeMap<String, usize>> = None;
    for _ in 0..2 {
        rig.plan.reset();
        run(rig.clone(), None)
            .await
            .expect("the path works unfaulted");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for s in rig.plan.seen() {
            *seen.entry(s.op).or_default() += 1;
        }
        fewest = Some(match fewest {
            None => seen,
            Some(f) => f
                .into_iter()
                .filter_map(|(op, n)| seen.get(&op).map(|m| (op, n.min(*m))))
                .collect(),
        });
    }
    fewest
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(op, n)| (1..=n).map(move |i| (op.clone(), i)))
        .collect()
}

fn service_of(op: &str) -> Service {
    if op.contains(' ') {
        Service::Syncaroo
    } else if op == "GetSecretValue" {
        Service::SecretsManager
    } else {
        Service::DynamoDb
    }
}

fn readme_row(
    name: &str,
    steps: &[Step],
    cells: &BTreeMap<Fault, (BTreeSet<&str>, BTreeSet<&str>)>,
) -> String {
    let mut ops: Vec<String> = vec![];
    for (op, _) in steps {
        let short = match op.split_once(' ') {
            Some((m, p)) => format!("{m} {}", p.rsplit('/').next().unwrap_or(p)),
            None => op.clone(),
        };
        let n = steps.iter().filter(|(o, _)| o == op).count();
        let label = if n > 1 {
            format!("{short} x{n}")
        } else {
            short
        };
        if !ops.contains(&label) {
            ops.push(label);
        }
    }
    let mut row = format!("| {name} | {} |", ops.join(", "));
    for f in Fault::ALL {
        let cell = match cells.get(&f) {
            None => "n/a".to_string(),
            Some((once, held)) => format!(
                "{} / {}",
                once.iter().copied().collect::<Vec<_>>().join(", "),
                held.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        };
        row.push_str(&format!(" {cell} |"));
    }
    row
}

/// After a first answer: a success must have been stored (`stored`), a
/// failure must have stored nothing (`unchanged`), and the same request
/// again succeeds (`again`, with its own check).
async fn settle<A, AF, S, SF, U, UF>(first: Outcome, stored: S, unchanged: U, again: A) -> Outcome
where
    A: FnOnce() -> AF,
    AF: std::future::Future<Output = Outcome>,
    S: FnOnce() -> SF,
    SF: std::future::Future<Output = Result<(), String>>,
    U: FnOnce() -> UF,
    UF: std::future::Future<Output = Result<(), String>>,
{
    let label = first?;
    if label == "ok" {
        stored()
            .await
            .map_err(|e| format!("a success that was not stored: {e}"))?;
    } else {
        unchanged()
            .await
            .map_err(|e| format!("a failure that stored something: {e}"))?;
        match again().await {
            Ok("ok") => stored()
                .await
                .map_err(|e| format!("the retry's success was not stored: {e}"))?,
            other => return Err(format!("the retry after the fault: {other:?}")),
        }
    }
    Ok(label)
}

async fn nothing() -> Result<(), String> {
    Ok(())
}

// --- the paths ---------------------------------------------------------

fn consent(rig: Arc<Rig>, fault: Option<(Step, usize, Fault)>) -> PathFuture {
    Box::pin(async move {
        let w = world(&rig).await;
        let cookie = syncaroo_tests::event_json("authorize-consent.json")["cookies"][0]
            .as_str()
            .unwrap()
            .to_string();
        let page = handlers::authorize(
            &w.direct.app,
            syncaroo_tests::event("authorize-consent.json"),
        )
        .await;
        let post = || syncaroo_tests::consent_post(&page, &cookie, "authorize");
        let code = std::sync::Mutex::new(String::new());
        let submit = || async {
            let resp = handlers::authorize(&w.t.app, post()).await;
            if resp.status() == 302 {
                let loc = syncaroo_tests::location(&resp);
                *code.lock().unwrap() = syncaroo_tests::query_of(&loc)
                    .get("code")
                    .cloned()
                    .unwrap_or_default();
            }
            answered(&resp, 302)
        };
        let first = arm_then(&rig, &fault, submit).await;
        settle(
            first,
            || async {
                let code = code.lock().unwrap().clone();
                let resp = handlers::token(&w.direct.app, w.direct.code_request(&code)).await;
                (resp.status() == 200)
                    .then_some(())
                    .ok_or(format!("its code does not redeem: {}", resp.status()))
            },
            nothing,
            submit,
        )
        .await
    })
}

fn token_exchange(rig: Arc<Rig>, fault: Option<(Step, usize, Fault)>) -> PathFuture {
    Box::pin(async move {
        let w = world(&rig).await;
        syncaroo_local::import_listings(w.direct.app.store.as_ref(), syncaroo_local::DEMO_LISTINGS)
            .await
            .unwrap();
        let code = w.direct.issue_code("321", "1").await;
        let access = std::sync::Mutex::new(String::new());
        let exchange = || async {
            let resp = handlers::token(&w.t.app, w.t.code_request(&code)).await;
            if resp.status() == 200 {
                *access.lock().unwrap() = body_json(&resp)["accessToken"]
                    .as_str()
                    .unwrap()
                    .to_string();
            }
            answered(&resp, 200)
        };
        let first = arm_then(&rig, &fault, exchange).await;
        settle(
            first,
            || async {
                let a = access.lock().unwrap().clone();
                let resp =
                    handlers::check_connection(&w.direct.app, w.direct.check_request("321", &a))
                        .await;
                (resp.status() == 200)
                    .then_some(())
                    .ok_or(format!("its access token is refused: {}", resp.status()))
            },
            nothing,
            exchange,
        )
        .await
    })
}

fn refresh_grant(rig: Arc<Rig>, fault: Option<(Step, usize, Fault)>) -> PathFuture {
    Box::pin(async move {
        let w = world(&rig).await;
        w.direct.seed_events_tokens().await;
        let access = std::sync::Mutex::new(String::new());
        let grant = || async {
            let resp = handlers::token(&w.t.app, syncaroo_tests::event("token-refresh.json")).await;
            if resp.status() == 200 {
                *access.lock().unwrap() = body_json(&resp)["accessToken"]
                    .as_str()
                    .unwrap()
                    .to_string();
            }
            answered(&resp, 200)
        };
        let first = arm_then(&rig, &fault, grant).await;
        settle(
            first,
            || async {
                let a = access.lock().unwrap().clone();
                let resp = handlers::check_connection(
                    &w.direct.app,
                    w.direct.check_request(events_creds::CONNECTION, &a),
                )
                .await;
                (resp.status() == 200).then_some(()).ok_or(format!(
                    "the new access token is refused: {}",
                    resp.status()
                ))
            },
            nothing,
            grant,
        )
        .await
    })
}

fn check_connection(rig: Arc<Rig>, fault: Option<(Step, usize, Fault)>) -> PathFuture {
    Box::pin(async move {
        let w = world(&rig).await;
        w.direct.seed_events_tokens().await;
        let check = || async {
            let resp = handlers::check_connection(
                &w.t.app,
                syncaroo_tests::event("check-connection.json"),
            )
            .await;
            if resp.status() == 200 && body_json(&resp)["locations"].as_object().is_none() {
                return Err("a 200 without locations".to_string());
            }
            answered(&resp, 200)
        };
        let first = arm_then(&rig, &fault, check).await;
        settle(first, nothing, nothing, check).await
    })
}

fn data_webhook() -> Value {
    json!({"connectionId": 99, "webhookType": "data", "locationId": "1198",
           "metaData": {"attributeType": "rates", "apiUrl": "https://api.syncaroo.com/v1/rates"}})
}

async fn notifications(store: &dyn Store, body: &Value) -> Result<u64, String> {
    let hook = Webhook::parse(body.to_string().as_bytes()).unwrap();
    let target = sync::target_of(&hook);
    Ok(store
        .get_target(&target)
        .await
        .map_err(|e| e.to_string())?
        .map(|s| s.notifications)
        .unwrap_or(0))
}

fn webhook_ack(rig: Arc<Rig>, fault: Option<(Step, usize, Fault)>) -> PathFuture {
    Box::pin(async move {
        let w = world(&rig).await;
        w.direct.seed_events_tokens().await;
        let body = sign(data_webhook(), w.t.secrets.client_secret.expose());
        let deliver = || async {
            let req = request(
                "POST",
                "/api/update/",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
                ],
                body.clone(),
            );
            answered(&handlers::webhook(&w.t.app, req).await, 202)
        };
        let first = arm_then(&rig, &fault, deliver).await;
        let count = |want: u64| {
            let store = w.direct.app.store.clone();
            async move {
                match notifications(store.as_ref(), &data_webhook()).await? {
                    n if n == want => Ok(()),
                    n => Err(format!("{n} notifications recorded, {want} expected")),
                }
            }
        };
        settle(first, || count(1), || count(0), deliver).await
    })
}

/// The worker on one notified target: the fake's three pages of rates,
/// through the proxy, stored whole.
fn sync_fetch(rig: Arc<Rig>, fault: Option<(Step, usize, Fault)>) -> PathFuture {
    Box::pin(async move {
        let w = world(&rig).await;
        w.direct.seed_events_tokens().await;
        let (access, refresh, _) = rig.fake.fake.issue_pair();
        w.direct
            .app
            .store
            .put_credentials(
                &NewCredentials {
                    access_token: SecretString::new(access),
                    expires_at: w.direct.clock_now() + 3600,
                    refresh_token: SecretString::new(refresh),
                },
                w.direct.clock_now(),
            )
            .await
            .unwrap();
        let mut body = data_webhook();
        body["metaData"]["apiUrl"] =
            json!(format!("{}{}", rig.api.trim_end_matches("/api/"), RATES));
        let signed = sign(body.clone(), w.t.secrets.client_secret.expose());
        let resp = handlers::webhook(
            &w.direct.app,
            request(
                "POST",
                "/api/update/",
                &[("authorization", &format!("Bearer {}", events_creds::ACCESS))],
                signed.clone(),
            ),
        )
        .await;
        assert_eq!(resp.status(), 202);
        let target = sync::target_of(&Webhook::parse(signed.as_bytes()).unwrap());
        let dlq = MemoryDeadLetters::default();
        let work = || async {
            let policy = syncaroo_tests::fast_policy(&w.t.app);
            match sync::process(
                &w.t.app,
                &dlq,
                &sync::Delivered::Target(target.clone()),
                &policy,
            )
            .await
            {
                sync::Outcome::Done => Ok("ok"),
                sync::Outcome::Retry(_) => Ok("retry"),
                other => Err(format!("the worker answered {other:?}")),
            }
        };
        let first = arm_then(&rig, &fault, work).await;
        let store = w.direct.app.store.clone();
        let covered = |want: bool| {
            let store = store.clone();
            let target = target.clone();
            async move {
                let s = store
                    .get_target(&target)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the notification is gone")?;
                let done = s.fetched_through.is_some_and(|f| f >= s.notifications);
                if done != want {
                    return Err(format!("covered {done}, expected {want}: {s:?}"));
                }
                if want {
                    let d = store
                        .get_synced(&target.connection_id, "1198", "rates", None)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("nothing stored")?;
                    let rows: Vec<Value> = serde_json::from_str(&d.data).unwrap();
                    let expect: Vec<Value> = pages().concat();
                    if rows != expect {
                        return Err(format!("stored {rows:?}"));
                    }
                }
                Ok(())
            }
        };
        let label = settle(first, || covered(true), || covered(false), work).await?;
        if !dlq.all().is_empty() {
            return Err("a transient fault was dead-lettered".into());
        }
        Ok(label)
    })
}

/// The scheduled refresh of Syncaroo's token, due now.
fn token_refresh(rig: Arc<Rig>, fault: Option<(Step, usize, Fault)>) -> PathFuture {
    Box::pin(async move {
        let w = world(&rig).await;
        let (access, refresh, _) = rig.fake.fake.issue_pair();
        let now = w.direct.clock_now();
        w.direct
            .app
            .store
            .put_credentials(
                &NewCredentials {
                    access_token: SecretString::new(access.clone()),
                    expires_at: now - 5,
                    refresh_token: SecretString::new(refresh),
                },
                now,
            )
            .await
            .unwrap();
        let tick = || async {
            match handlers::refresh::scheduled(&w.t.app).await {
                // Refreshed now, or by the kept pair's write (then fresh).
                Ok(v) if v["outcome"] == "refreshed" || v["outcome"] == "fresh" => Ok("ok"),
                Ok(v) => Err(format!("the refresh reported {v}")),
                Err(_) => Ok("error"),
            }
        };
        let first = arm_then(&rig, &fault, tick).await;
        let store = w.direct.app.store.clone();
        let fake = &rig.fake.fake;
        // Not lost: after a failure no admin is needed (the old pair still
        // works, or the new one is kept by the process that got it), and
        // after the retry a new working pair is in the store.
        let usable = |refreshed: bool| {
            let store = store.clone();
            let access = access.clone();
            async move {
                let c = store
                    .get_credentials()
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("credentials gone")?;
                if c.status != syncaroo_shared::syncaroo::CredentialStatus::Active {
                    return Err(format!("credentials marked {:?}: {:?}", c.status, c.reason));
                }
                if refreshed
                    && (c.access_token.expose() == access
                        || !fake.access_valid(c.access_token.expose())
                        || !fake.refresh_valid(c.refresh_token.expose()))
                {
                    return Err("no new working pair stored".into());
                }
                Ok(())
            }
        };
        settle(first, || usable(true), || usable(false), tick).await
    })
}

// --- one test per path ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_under_faults() {
    matrix("consent", consent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_under_faults() {
    matrix("token exchange", token_exchange).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_grant_under_faults() {
    matrix("refresh grant", refresh_grant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connection_under_faults() {
    matrix("check_connection", check_connection).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_ack_under_faults() {
    matrix("webhook ack", webhook_ack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_under_faults() {
    matrix("sync", sync_fetch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncaroo_token_refresh_under_faults() {
    matrix("Syncaroo token refresh", token_refresh).await;
}
