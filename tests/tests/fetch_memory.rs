//! The largest allowed fetch's peak memory (correctness issue, item 2).
//!
//! Its own test binary, because it counts every heap allocation of the
//! process (`peak_alloc` as the global allocator) and so must run alone. The
//! page server answers with prebuilt `Bytes` (hyper sends them without
//! copying), so what the count sees is the worker: reading pages, keeping
//! what is stored, storing it in the in-memory store.

use bytes::Bytes;
use peak_alloc::PeakAlloc;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use syncaroo_shared::deadletter::MemoryDeadLetters;
use syncaroo_shared::handlers::{self, sync};
use syncaroo_shared::model::ConnectionId;
use syncaroo_shared::secrets::SecretString;
use syncaroo_shared::store::{MemoryStore, Store};
use syncaroo_shared::syncaroo::NewCredentials;
use syncaroo_shared::webhook::Webhook;
use syncaroo_tests::{
    config_with_syncaroo, events_creds, local_aws, request, sign, TestApp, EVENTS_NOW,
};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const PAGES: usize = 3;

/// Page `p` of `PAGES`: small rate objects (the shape whose parsed form
/// costs most per stored byte), just under the 1 MiB page cap, so the three
/// pages store just under the 3 MiB a fetch may store.
fn page_body(base: &str, p: usize) -> (Bytes, usize) {
    let mut items = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < 1_010_000 {
        let item = json!({"id": p * 1_000_000 + i, "rate": "hourly", "amount": i % 997});
        len += item.to_string().len() + 1;
        items.push(item);
        i += 1;
    }
    let next = (p < PAGES).then(|| format!("{base}/api/v1/big?page={}", p + 1));
    let count = items.len();
    let body = serde_json::to_vec(&json!({
        "data": items,
        "pages": {"current": p, "count": PAGES, "next": next},
    }))
    .unwrap();
    (Bytes::from(body), count)
}

/// The server's base URL, its count of pages served, and how many items
/// the pages hold in all.
async fn page_server() -> (String, Arc<AtomicUsize>, usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let built: Vec<(Bytes, usize)> = (1..=PAGES).map(|p| page_body(&base, p)).collect();
    let total = built.iter().map(|(_, n)| n).sum();
    let pages: Arc<Vec<Bytes>> = Arc::new(built.into_iter().map(|(b, _)| b).collect());
    for p in pages.iter() {
        assert!(p.len() < 1_048_576, "a page fits the page cap: {}", p.len());
    }
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    syncaroo_sim::server::spawn(
        listener,
        syncaroo_sim::server::handler(move |req| {
            let pages = pages.clone();
            let count = count.clone();
            async move {
                let p: usize = req
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("page="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                count.fetch_add(1, Ordering::SeqCst);
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(pages[p - 1].clone())
                    .unwrap()
            }
        }),
    );
    (base, served, total)
}

/// Delivers the largest allowed fetch to the worker on `store` and returns
/// the bytes stored and the process's peak heap growth while it ran.
async fn largest_fetch_on(store: Arc<dyn Store>) -> (usize, usize) {
    let (base, served, total) = page_server().await;
    let t = TestApp::with(
        store.clone(),
        config_with_syncaroo(&format!("{base}/"), &[]),
    );
    t.seed_events_tokens().await;
    let now = t.clock_now();
    store
        .put_credentials(
            &NewCredentials {
                access_token: SecretString::new("syncaroo-access"),
                expires_at: now + 3600,
                refresh_token: SecretString::new("syncaroo-refresh"),
            },
            now,
        )
        .await
        .unwrap();
    let body = json!({
        "connectionId": 99,
        "webhookType": "data",
        "locationId": "1198",
        "metaData": {"attributeType": "rates", "apiUrl": format!("{base}/api/v1/big")},
    });
    let signed = sign(body, t.secrets.client_secret.expose());
    let resp = handlers::webhook(
        &t.app,
        request(
            "POST",
            "/api/update/",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
            ],
            signed.clone(),
        ),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let target = sync::target_of(&Webhook::parse(signed.as_bytes()).unwrap());
    let delivered = sync::Delivered::Target(target);
    let policy = sync::fetch_policy(&t.app);
    let dlq = MemoryDeadLetters::default();

    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let out = sync::process(&t.app, &dlq, &delivered, &policy).await;
    let peak = HEAP.peak_usage() - before;

    assert_eq!(out, sync::Outcome::Done, "{:?}", dlq.all());
    assert_eq!(served.load(Ordering::SeqCst), PAGES);
    let stored = store
        .get_synced(&ConnectionId::parse("99").unwrap(), "1198", "rates", None)
        .await
        .unwrap()
        .unwrap();
    let size = stored.data.len();
    let items: Vec<Value> = serde_json::from_str(&stored.data).unwrap();
    assert_eq!(items.len(), total, "every item of every page is stored");
    assert_eq!(items[0]["id"], 1_000_000);
    assert_eq!(items[total - 1]["id"].as_u64().unwrap() / 1_000_000, 3);
    assert!(
        size > 3_000_000 && size <= sync::MAX_STORED_BYTES,
        "the fetch is the largest allowed: {size} bytes stored"
    );
    (size, peak)
}

/// One test, so nothing else allocates while it counts: the in-memory
/// store, then DynamoDB Local when `scripts/test.sh` runs it.
#[tokio::test]
async fn the_largest_allowed_fetch_peaks_under_three_times_what_it_stores() {
    let mut runs = vec![(
        "in-memory store",
        largest_fetch_on(Arc::new(MemoryStore::new())).await,
    )];
    if let Some(d) = local_aws::dynamo_store("memory", EVENTS_NOW).await {
        runs.push(("DynamoDB Local", largest_fetch_on(Arc::new(d)).await));
    }
    for (store, (size, peak)) in runs {
        let ratio = peak as f64 / size as f64;
        println!(
            "largest allowed fetch on the {store}: {size} bytes stored, \
             peak heap growth {peak} bytes ({ratio:.2}x)"
        );
        assert!(
            ratio <= 3.0,
            "{store}: peak heap growth {peak} bytes is {ratio:.2}x the {size} bytes stored"
        );
    }
}
