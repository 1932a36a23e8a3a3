//! Soak: 10,000 webhooks over 20 connections through the local runner on
//! DynamoDB Local, 30% of them duplicates and 10% out of order, while 2% of
//! the requests the runner makes (to DynamoDB and to the fake Syncaroo) fail
//! by injection; then quiet. Every target must end fetched after its latest
//! notification, with the newest data stored; no delivery lost; no 5xx but
//! the injected faults; the process's memory bounded.

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syncaroo_shared::model::ConnectionId;
use syncaroo_shared::store::SyncTarget;
use syncaroo_sim::sender::Sender;
use syncaroo_sim::{FakeConfig, FakeSyncaroo};
use syncaroo_tests::fault_proxy::{self, Fault, Plan, Service};
use syncaroo_tests::local_aws;

const CONNECTIONS: usize = 20;
const LOCATIONS: usize = 5;
const DELIVERIES: usize = 10_000;
const PER_CONNECTION: usize = DELIVERIES / CONNECTIONS;
/// Of each connection's deliveries: repeats of an earlier body (30%).
const DUPLICATES: usize = PER_CONNECTION * 3 / 10;
/// Adjacent pairs swapped in each connection's send order (10% of deliveries).
const SWAPS: usize = PER_CONNECTION / 10;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn data_path(conn: usize, loc: usize) -> String {
    format!("/api/v1/soak/{conn}/L{loc}/rates")
}

fn pages(revision: u64) -> Vec<Vec<Value>> {
    vec![
        vec![json!({"revision": revision, "page": 1})],
        vec![json!({"revision": revision, "page": 2})],
    ]
}

/// One connection's deliveries: (location, revision), revisions rising per
/// location; then duplicates of earlier ones and swapped neighbours.
fn schedule(conn: usize) -> Vec<(usize, u64)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(conn as u64);
    let mut revision = [0u64; LOCATIONS];
    let mut out: Vec<(usize, u64)> = (0..PER_CONNECTION - DUPLICATES)
        .map(|i| {
            let loc = i % LOCATIONS;
            revision[loc] += 1;
            (loc, revision[loc])
        })
        .collect();
    for _ in 0..DUPLICATES {
        let i = rng.random_range(0..out.len());
        out.insert(i + 1, out[i]);
    }
    for _ in 0..SWAPS {
        let i = rng.random_range(0..out.len() - 1);
        out.swap(i, i + 1);
    }
    out
}

#[derive(Default, Debug)]
struct Sent {
    accepted: usize,
    retried_tries: usize,
    refused: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_webhooks_with_duplicates_reordering_and_faults() {
    if !local_aws::dynamodb_available() {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap();
    let plan = Plan::new();
    let fake = FakeSyncaroo::start_local(FakeConfig::default())
        .await
        .unwrap();
    let ddb = fault_proxy::start(Service::DynamoDb, &endpoint, plan.clone()).await;
    let api = fault_proxy::start(Service::Syncaroo, &fake.base(), plan.clone()).await;
    let client = fault_proxy::dynamodb_client(
        &ddb,
        Duration::from_millis(500),
        Some(Duration::from_millis(20)),
    )
    .await;
    let r = syncaroo_local::start(syncaroo_local::Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        store: syncaroo_local::StoreKind::Dynamodb,
        table: local_aws::unique_table("soak"),
        syncaroo_base: api.clone(),
        syncaroo_client_id: fake.fake.cfg.client_id.clone(),
        syncaroo_client_secret: fake.fake.cfg.client_secret.clone(),
        settings: vec![("SYNCAROO_HTTP_TIMEOUT_MS".into(), "1000".into())],
        dynamodb_client: Some(client),
        ..syncaroo_local::Options::default()
    })
    .await
    .expect("runner");
    syncaroo_tests::seed::fake_credentials(r.store.as_ref(), &fake).await;
    let bearers = syncaroo_tests::seed::connect_many(&r, CONNECTIONS).await;
    let origin = api.trim_end_matches("/api/").to_string();
    let webhook_url = format!("{}{}", r.setup.api_uri, r.setup.webhook_path);
    let fake = Arc::new(fake);
    let rss_start = rss_kib("VmRSS:");

    // 2% of the runner's requests fail from here on (the soak's own reads
    // after the quiet period are made with the faults off).
    plan.reset();
    // Every fault but the stall (the matrix covers it; here each would
    // hold the single worker for a timeout).
    let faults: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| *f != Fault::Stall)
        .collect();
    plan.random(0.02, &faults, 16);
    let started = Instant::now();
    let mut tasks = vec![];
    let rss_mid = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (c, bearer) in bearers.iter().cloned().enumerate() {
        let (fake, origin, url) = (fake.clone(), origin.clone(), webhook_url.clone());
        let key = r.setup.your_client_secret.clone();
        let (rss_mid, done) = (rss_mid.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let sender = Sender::new(url, key);
            let mut served = [0u64; LOCATIONS];
            let mut sent = Sent::default();
            for (loc, revision) in schedule(c) {
                // Syncaroo holds the data a notification announces before
                // sending it; an older notification sent late finds newer.
                if revision > served[loc] {
                    served[loc] = revision;
                    fake.fake.set_pages(&data_path(c, loc), pages(revision));
                }
                let body = json!({
                    "connectionId": 7000 + c,
                    "webhookType": "data",
                    "locationId": format!("L{loc}"),
                    "metaData": {"attributeType": "rates",
                                 "apiUrl": format!("{origin}{}", data_path(c, loc)),
                                 "revision": revision},
                });
                match sender.send_raw(&bearer, &sender.sign(body)).await {
                    Ok(d) if d.status == 202 => {
                        sent.accepted += 1;
                        sent.retried_tries += d.tries as usize - 1;
                    }
                    other => sent.refused.push(format!("{other:?}")),
                }
                if done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == DELIVERIES / 2 {
                    rss_mid.store(rss_kib("VmRSS:"), std::sync::atomic::Ordering::SeqCst);
                }
            }
            (sent, served)
        }));
    }
    let mut accepted = 0;
    let mut retried = 0;
    let mut latest = vec![];
    for (c, t) in tasks.into_iter().enumerate() {
        let (sent, served) = t.await.unwrap();
        assert!(
            sent.refused.is_empty(),
            "connection {c}: {:?}",
            sent.refused
        );
        accepted += sent.accepted;
        retried += sent.retried_tries;
        latest.push(served);
    }
    let sending = started.elapsed();
    let rss_sent = rss_kib("VmRSS:");

    // Quiet: the worker drains what it was told; each target must end
    // fetched after its latest notification.
    let targets: Vec<(usize, usize, SyncTarget)> = (0..CONNECTIONS)
        .flat_map(|c| {
            (0..LOCATIONS).map(move |l| {
                (
                    c,
                    l,
                    SyncTarget {
                        connection_id: ConnectionId::parse(&format!("{}", 7000 + c)).unwrap(),
                        location_id: format!("L{l}"),
                        attribute_type: "rates".into(),
                        resource_id: None,
                    },
                )
            })
        })
        .collect();
    let quiet_deadline = Instant::now() + Duration::from_secs(240);
    let stale = loop {
        let mut stale = vec![];
        plan.disarm();
        for (c, l, t) in &targets {
            let s = r.store.get_target(t).await.unwrap().expect("notified");
            let fresh = s.fetched_through.is_some_and(|f| f >= s.notifications);
            let data = r
                .store
                .get_synced(&t.connection_id, &t.location_id, "rates", None)
                .await
                .unwrap();
            let newest = data.is_some_and(|d| {
                let rows: Vec<Value> = serde_json::from_str(&d.data).unwrap();
                rows.len() == 2 && rows.iter().all(|row| row["revision"] == latest[*c][*l])
            });
            if !(fresh && newest) {
                stale.push((*c, *l, s.notifications, s.fetched_through));
            }
        }
        if stale.is_empty() || Instant::now() > quiet_deadline {
            break stale;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let quiet = started.elapsed() - sending;
    let injected = plan.injected();
    let by_service = |svc: Service| {
        plan.seen()
            .iter()
            .filter(|s| s.service == svc && s.fault.is_some())
            .count()
    };
    let notifications: u64 = {
        let mut n = 0;
        for (_, _, t) in &targets {
            n += r.store.get_target(t).await.unwrap().unwrap().notifications;
        }
        n
    };
    let page_requests = fake.fake.data_requests();
    let rss_end = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    let summary = format!(
        "soak: {DELIVERIES} webhooks ({} duplicates, {} swapped pairs) over {CONNECTIONS} connections x {LOCATIONS} targets: \
         {accepted} accepted, {notifications} notifications recorded, {retried} sender retries; \
         {injected} faults injected ({} DynamoDB, {} Syncaroo) in {} requests; \
         {page_requests} Syncaroo page requests ({} fetches of 2 pages at most); targets stale at the end: {}; \
         dead letters: {}; sending {:.1} s, quiet {:.1} s; RSS start {} MiB, half-way {} MiB, sent {} MiB, end {} MiB, peak {} MiB",
        DUPLICATES * CONNECTIONS,
        SWAPS * CONNECTIONS,
        by_service(Service::DynamoDb),
        by_service(Service::Syncaroo),
        plan.seen().len(),
        page_requests / 2,
        stale.len(),
        r.dead_letters.all().len(),
        sending.as_secs_f64(),
        quiet.as_secs_f64(),
        rss_start / 1024,
        rss_mid.load(std::sync::atomic::Ordering::SeqCst) / 1024,
        rss_sent / 1024,
        rss_end / 1024,
        peak / 1024,
    );
    eprintln!("{summary}");
    let _ = std::fs::write(
        syncaroo_tests::repo_root().join("target/soak.txt"),
        &summary,
    );
    assert_eq!(accepted, DELIVERIES, "every delivery accepted in the end");
    assert_eq!(
        notifications, DELIVERIES as u64,
        "each accepted delivery counted once: none lost, none doubled"
    );
    assert!(stale.is_empty(), "stale targets: {stale:?}");
    assert!(
        retried <= injected,
        "{retried} sender retries but only {injected} faults injected: a 5xx nobody injected"
    );
    assert!(
        r.dead_letters.all().is_empty(),
        "{:?}",
        r.dead_letters.all()
    );
    // Bounded: the second half of the run does not grow the process by
    // more than the first half did, plus slack for allocator noise.
    let mid = rss_mid.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        rss_sent.saturating_sub(mid) <= mid.saturating_sub(rss_start) + 32 * 1024,
        "{summary}"
    );
    assert!(peak < 512 * 1024, "{summary}");
}
