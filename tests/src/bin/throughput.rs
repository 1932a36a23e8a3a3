//! Throughput benchmark (benches/throughput.sh): the webhook ack path under
//! bursts of concurrent deliveries, and the sync worker against a Syncaroo
//! API that answers in 50 ms, each behind the latency proxy.
//!
//! Ack: the local runner (in this process) on DynamoDB Local behind a proxy
//! adding `--rtt-ms` (default 2) to every request; 20 connections; rounds
//! of `--burst` (default 200) deliveries sent at once. Reported: p50, p99
//! and max ack latency seen by the sender, deliveries per second, and how
//! many were lost (sent minus notifications recorded).
//!
//! Sync: one target whose data is 10 pages, each answered after
//! `--api-ms` (default 50); then a batch of 10 such targets through the
//! stream-batch entry point. The physical floor is pages x api-ms (pages
//! follow `next` links, so they are sequential).

use std::sync::Arc;
use std::time::{Duration, Instant};
use syncaroo_shared::clock::{Clock, SystemClock};
use syncaroo_shared::deadletter::MemoryDeadLetters;
use syncaroo_shared::handlers::sync;
use syncaroo_shared::secrets::SecretString;
use syncaroo_shared::store::SyncTarget;
use syncaroo_shared::webhook::{HashProfile, Webhook};
use syncaroo_sim::{FakeConfig, FakeSyncaroo};
use syncaroo_tests::fault_proxy::{self, Plan, Service};
use syncaroo_tests::local_aws;

const CONNECTIONS: usize = 20;
const PAGES: usize = 10;
const BATCH: usize = 10;

/// What benches/throughput.sh passes on.
#[derive(clap::Parser)]
#[command(
    name = "throughput",
    about = "The webhook ack path and the sync worker behind a latency proxy"
)]
struct Cli {
    /// Added to every DynamoDB request.
    #[arg(long, default_value_t = 2)]
    rtt_ms: u64,
    /// How long the fake Syncaroo API takes to answer a page.
    #[arg(long, default_value_t = 50)]
    api_ms: u64,
    /// Deliveries sent at once.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Bursts.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn ddb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    fault_proxy::dynamodb_client(endpoint, Duration::from_secs(10), None).await
}

fn body(conn: usize, loc: usize, api: &str) -> serde_json::Value {
    serde_json::json!({"connectionId": 7000 + conn, "webhookType": "data", "locationId": format!("L{loc}"),
                       "metaData": {"attributeType": "rates", "apiUrl": format!("{api}v1/bench/{conn}/{loc}")}})
}

fn sign(mut b: serde_json::Value, key: &str) -> String {
    let map = b.as_object().unwrap().clone();
    b["hash"] = serde_json::Value::String(HashProfile::default().compute(key.as_bytes(), &map));
    b.to_string()
}

#[tokio::main]
async fn main() {
    if !local_aws::dynamodb_available() {
        eprintln!("start DynamoDB Local first (benches/throughput.sh does)");
        std::process::exit(2);
    }
    let cli = <Cli as clap::Parser>::parse();
    let rtt = Duration::from_millis(cli.rtt_ms);
    let api_ms = Duration::from_millis(cli.api_ms);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap();
    let ddb_plan = Plan::new();
    ddb_plan.set_delay(rtt);
    let ddb = fault_proxy::start(Service::DynamoDb, &endpoint, ddb_plan.clone()).await;
    let api_plan = Plan::new();
    api_plan.set_delay(api_ms);
    let fake = FakeSyncaroo::start_local(FakeConfig::default())
        .await
        .unwrap();
    let api = fault_proxy::start(Service::Syncaroo, &fake.base(), api_plan.clone()).await;
    let (ack, ack_json) = ack_path(&cli, &fake, &ddb, &api).await;
    println!("{ack}");
    let (sync_line, sync_json) = sync_worker(&cli, &fake, &ddb, &api).await;
    println!("{sync_line}");
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/throughput.txt", format!("{ack}\n{sync_line}\n"));
    // What benches/report.py renders into docs/PERFORMANCE.md.
    let results = serde_json::json!({"ack": [ack_json], "sync": sync_json});
    let _ = std::fs::write("target/throughput.json", results.to_string());
}

/// Bursts of signed deliveries to the local runner on DynamoDB (behind
/// `ddb`): latency, rate, and how many were not recorded.
async fn ack_path(
    cli: &Cli,
    fake: &FakeSyncaroo,
    ddb: &str,
    api: &str,
) -> (String, serde_json::Value) {
    let (burst, rounds) = (cli.burst, cli.rounds);
    let r = syncaroo_local::start(syncaroo_local::Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        store: syncaroo_local::StoreKind::Dynamodb,
        table: local_aws::unique_table("bench-ack"),
        syncaroo_base: api.to_string(),
        syncaroo_client_id: fake.fake.cfg.client_id.clone(),
        syncaroo_client_secret: fake.fake.cfg.client_secret.clone(),
        dynamodb_client: Some(ddb_client(ddb).await),
        ..syncaroo_local::Options::default()
    })
    .await
    .expect("runner");
    let bearers = syncaroo_tests::seed::connect_many(&r, CONNECTIONS).await;
    let url = format!("{}{}", r.setup.api_uri, r.setup.webhook_path);
    let http = syncaroo_shared::tls::http_client_builder()
        .pool_max_idle_per_host(burst)
        .build()
        .unwrap();
    let key = r.setup.your_client_secret.clone();
    let mut lat = vec![];
    let mut errors = 0;
    let started = Instant::now();
    for round in 0..rounds {
        let tasks: Vec<_> = (0..burst)
            .map(|i| {
                let conn = i % CONNECTIONS;
                let (http, url, bearer) = (http.clone(), url.clone(), bearers[conn].clone());
                let b = sign(body(conn, (i / CONNECTIONS + round) % 5, api), &key);
                tokio::spawn(async move {
                    let t = Instant::now();
                    let resp = http.post(url).bearer_auth(bearer).body(b).send().await;
                    let ok = resp.is_ok_and(|r| r.status() == 202);
                    (t.elapsed(), ok)
                })
            })
            .collect();
        for t in tasks {
            let (d, ok) = t.await.unwrap();
            lat.push(d);
            errors += usize::from(!ok);
        }
    }
    let wall = started.elapsed();
    lat.sort();
    let sent = burst * rounds;
    let recorded = notifications(&r).await;
    r.stop();
    let per_second = sent as f64 / wall.as_secs_f64();
    let json = serde_json::json!({
        "rttMs": cli.rtt_ms, "burst": burst, "sent": sent,
        "p50Ms": ms(pct(&lat, 0.50)), "p99Ms": ms(pct(&lat, 0.99)), "maxMs": ms(*lat.last().unwrap()),
        "perSecond": per_second, "non202": errors, "lost": sent - recorded,
    });
    let line = format!(
        "ack path: {sent} deliveries in {rounds} bursts of {burst}, DynamoDB RTT {} ms: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} deliveries/s, non-202 {errors}, lost {} (floor: 2 sequential round trips = {} ms)",
        cli.rtt_ms,
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap()),
        per_second,
        sent - recorded,
        2 * cli.rtt_ms,
    );
    (line, json)
}

/// The notifications the runner's store recorded for the bench targets.
async fn notifications(r: &syncaroo_local::Running) -> usize {
    let mut recorded = 0;
    for c in 0..CONNECTIONS {
        for l in 0..5 {
            let t = SyncTarget {
                connection_id: syncaroo_shared::model::ConnectionId::parse(&format!(
                    "{}",
                    7000 + c
                ))
                .unwrap(),
                location_id: format!("L{l}"),
                attribute_type: "rates".into(),
                resource_id: None,
            };
            if let Some(s) = r.store.get_target(&t).await.unwrap() {
                recorded += s.notifications as usize;
            }
        }
    }
    recorded
}

/// One target of `PAGES` slow pages, then a batch of `BATCH` such targets,
/// through the worker on DynamoDB (behind `ddb`).
async fn sync_worker(
    cli: &Cli,
    fake: &FakeSyncaroo,
    ddb: &str,
    api: &str,
) -> (String, serde_json::Value) {
    let (app, targets) = sync_app(fake, ddb, api).await;
    let dlq = MemoryDeadLetters::default();
    let policy = sync::fetch_policy(&app);
    let t = Instant::now();
    let one = sync::process(
        &app,
        &dlq,
        &sync::Delivered::Target(targets[0].clone()),
        &policy,
    )
    .await;
    let single = t.elapsed();
    let batch: Vec<(usize, sync::Delivered)> = targets[1..]
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, t)| (i, sync::Delivered::Target(t)))
        .collect();
    let t = Instant::now();
    let failed = sync::process_batch(&app, &dlq, batch, None).await;
    let many = t.elapsed();
    let floor = Duration::from_millis(cli.api_ms) * PAGES as u32;
    let json = serde_json::json!({
        "pages": PAGES, "apiMs": cli.api_ms, "rttMs": cli.rtt_ms, "batch": BATCH,
        "oneMs": ms(single), "batchMs": ms(many), "floorMs": ms(floor), "failed": failed.len(),
    });
    let line = format!(
        "sync: one target of {PAGES} pages, API {} ms a page, DynamoDB RTT {} ms: {:.0} ms ({:?}; floor {} ms, ratio {:.2}); \
         a batch of {BATCH} such targets: {:.0} ms ({} failed; {:.2}x one target)",
        cli.api_ms,
        cli.rtt_ms,
        ms(single),
        one,
        floor.as_millis(),
        single.as_secs_f64() / floor.as_secs_f64(),
        ms(many),
        failed.len(),
        many.as_secs_f64() / single.as_secs_f64(),
    );
    (line, json)
}

/// The worker's app on a fresh table with Syncaroo credentials, and
/// `BATCH + 1` notified targets, each of `PAGES` pages at the fake.
async fn sync_app(
    fake: &FakeSyncaroo,
    ddb: &str,
    api: &str,
) -> (syncaroo_shared::App, Vec<SyncTarget>) {
    let table = local_aws::unique_table("bench-sync");
    let store = syncaroo_shared::store::DynamoStore::new(ddb_client(ddb).await, &table);
    store.ensure_table().await.unwrap();
    let config = syncaroo_tests::config_with_syncaroo(
        api,
        &[
            ("SYNCAROO_HTTP_TIMEOUT_MS", "5000"),
            ("SYNC_MAX_PAGES", "50"),
        ],
    );
    let mut s = syncaroo_tests::events_secrets();
    s.syncaroo_client_id = Some(SecretString::new(fake.fake.cfg.client_id.clone()));
    s.syncaroo_client_secret = Some(SecretString::new(fake.fake.cfg.client_secret.clone()));
    let app = syncaroo_shared::App::new(
        config,
        Arc::new(store),
        syncaroo_shared::secrets::StaticSecrets(s.clone()),
        Arc::new(SystemClock),
    )
    .with_changes(
        Arc::new(syncaroo_shared::changes::MemorySink::default()),
        Arc::new(MemoryDeadLetters::default()),
    );
    syncaroo_tests::seed::fake_credentials(app.store.as_ref(), fake).await;
    syncaroo_tests::seed::seed_locations(app.store.as_ref()).await;
    let mut targets = vec![];
    for i in 0..=BATCH {
        syncaroo_tests::seed::connected(
            app.store.as_ref(),
            s.token_hash_key.expose(),
            &app.config.client_id,
            i,
        )
        .await;
        let path = format!("/api/v1/bench/{i}/0");
        fake.fake.set_pages(
            &path,
            (0..PAGES)
                .map(|p| vec![serde_json::json!({"page": p, "target": i})])
                .collect(),
        );
        let raw = sign(body(i, 0, api), s.client_secret.expose());
        let hook = Webhook::parse(raw.as_bytes()).unwrap();
        let target = sync::target_of(&hook);
        app.store
            .notify_target(&syncaroo_shared::store::TargetNote {
                target: target.clone(),
                payload: body(i, 0, api).to_string(),
                notified_at_ms: SystemClock.now_ms(),
            })
            .await
            .unwrap();
        targets.push(target);
    }
    (app, targets)
}
