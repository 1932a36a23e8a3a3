//! Webhooks in, data pulled: the webhook handler's refusals, idempotent
//! recording, and the sync worker against the fake Syncaroo's paginating
//! data API, its failures, and the SSRF rules.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use syncaroo_shared::deadletter::MemoryDeadLetters;
use syncaroo_shared::handlers::{self, sync};
use syncaroo_shared::model::ConnectionId;
use syncaroo_shared::secrets::SecretString;
use syncaroo_shared::store::{CredentialsStore, MemoryStore, TargetState};
use syncaroo_shared::syncaroo::NewCredentials;
use syncaroo_shared::webhook::Webhook;
use syncaroo_sim::{DataFailure, FakeConfig, FakeSyncaroo};
use syncaroo_tests::{body_json, config_with_syncaroo, events_creds, logs, request, sign, TestApp};

const RATES: &str = "/api/v1/locations/1198/rates";

fn conn() -> ConnectionId {
    ConnectionId::parse("99").unwrap()
}

fn data_body(api_url: &str) -> Value {
    json!({
        "connectionId": 99,
        "webhookType": "data",
        "locationId": "1198",
        "metaData": {"attributeType": "rates", "apiUrl": api_url, "currency": "GBP"},
    })
}

fn status_body(status: &str) -> Value {
    json!({"connectionId": 99, "webhookType": "status", "locationId": "1198",
           "metaData": {"status": status, "reason": "lockdown"}})
}

struct World {
    t: TestApp,
    store: Arc<MemoryStore>,
    fake: FakeSyncaroo,
    dlq: MemoryDeadLetters,
}

/// The events' connection (99) with live tokens, the fake Syncaroo as the
/// API with our credentials at it, and three pages of rates.
async fn world(extra: &[(&str, &str)]) -> World {
    let fake = FakeSyncaroo::start_local(FakeConfig::default())
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut t = TestApp::with(store.clone(), config_with_syncaroo(&fake.base(), extra));
    t.secrets.syncaroo_client_id = Some(SecretString::new(fake.fake.cfg.client_id.clone()));
    t.secrets.syncaroo_client_secret = Some(SecretString::new(fake.fake.cfg.client_secret.clone()));
    let t = TestApp::with_secrets(store.clone(), t.app.config.as_ref().clone(), t.secrets);
    t.seed_events_tokens().await;
    let (access, refresh, _) = fake.fake.issue_pair();
    let now = syncaroo_shared::clock::Clock::now(&syncaroo_shared::clock::SystemClock);
    store
        .put_credentials(
            &NewCredentials {
                access_token: SecretString::new(access),
                expires_at: now + 600,
                refresh_token: SecretString::new(refresh),
            },
            now,
        )
        .await
        .unwrap();
    fake.fake.set_pages(
        RATES,
        vec![
            vec![
                json!({"rate": "hourly", "amount": 10}),
                json!({"rate": "daily", "amount": 60}),
            ],
            vec![json!({"rate": "weekly", "amount": 250})],
            vec![
                json!({"rate": "monthly", "amount": 900}),
                json!({"rate": "yearly", "amount": 9000}),
            ],
        ],
    );
    World {
        t,
        store,
        fake,
        dlq: MemoryDeadLetters::default(),
    }
}

impl World {
    /// The rates' next fetch loops: page 1 is served with next = page 2
    /// (fine), page 2 points back to page 1. Returns page 1's URL.
    fn page_loop(&self) -> String {
        let first = self.fake.fake.page_url(RATES, 1);
        self.fake.fake.fail_data([
            DataFailure::NextTo(self.fake.fake.page_url(RATES, 2)),
            DataFailure::NextTo(first.clone()),
        ]);
        first
    }

    fn post(&self, body: &str) -> syncaroo_shared::http_util::Request {
        request(
            "POST",
            "/api/update/",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
            ],
            body.to_string(),
        )
    }

    fn signed(&self, body: Value) -> String {
        sign(body, self.t.secrets.client_secret.expose())
    }

    /// Posts a signed body; what the stream would hand the worker.
    async fn deliver(&self, body: Value) -> sync::Delivered {
        let signed = self.signed(body);
        let resp = handlers::webhook(&self.t.app, self.post(&signed)).await;
        assert_eq!(resp.status(), 202, "{}", syncaroo_tests::body_text(&resp));
        let hook = Webhook::parse(signed.as_bytes()).unwrap();
        sync::Delivered::Target(sync::target_of(&hook))
    }

    async fn process(&self, d: &sync::Delivered) -> sync::Outcome {
        let policy = syncaroo_tests::fast_policy(&self.t.app);
        sync::process(&self.t.app, &self.dlq, d, &policy).await
    }

    /// Posts a signed body and runs the worker on what it recorded.
    async fn deliver_and_process(&self, body: Value) -> sync::Outcome {
        let d = self.deliver(body).await;
        self.process(&d).await
    }

    async fn target_state(&self) -> TargetState {
        let t = sync::target_of(
            &Webhook::parse(data_body("https://x/").to_string().as_bytes()).unwrap(),
        );
        self.t.app.store.get_target(&t).await.unwrap().unwrap()
    }

    async fn stored_rates(&self) -> Option<Vec<Value>> {
        let d = self
            .t
            .app
            .store
            .get_synced(&conn(), "1198", "rates", None)
            .await
            .unwrap()?;
        Some(serde_json::from_str(&d.data).unwrap())
    }
}

#[tokio::test]
async fn webhook_refusals_are_clear_4xx_and_record_nothing() {
    let (cap, _here) = logs::capture_here();
    let w = world(&[]).await;
    let good = data_body(&w.fake.fake.page_url(RATES, 1));
    let bad_hash = {
        let mut v: Value = serde_json::from_str(&w.signed(good.clone())).unwrap();
        v["hash"] = json!("deadbeef-not-the-hash");
        v.to_string()
    };
    let tampered = {
        let mut v: Value = serde_json::from_str(&w.signed(good.clone())).unwrap();
        v["locationId"] = json!("7120");
        v.to_string()
    };
    // A live token of another connection.
    let other_code = w.t.issue_code("100", "1").await;
    let other = body_json(&handlers::token(&w.t.app, w.t.code_request(&other_code)).await)
        ["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let with_bearer = |tok: &str, body: String| {
        request(
            "POST",
            "/api/update/",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {tok}")),
            ],
            body,
        )
    };
    let unknown_type = w.signed(
        json!({"connectionId": 99, "webhookType": "push", "locationId": "1198", "metaData": {}}),
    );
    let cases: Vec<(&str, syncaroo_shared::http_util::Request, u16, &str)> = vec![
        ("bad hash", w.post(&bad_hash), 401, "invalid_signature"),
        ("tampered body", w.post(&tampered), 401, "invalid_signature"),
        ("missing hash", w.post(&good.to_string()), 401, "invalid_signature"),
        ("token of another connection", with_bearer(&other, w.signed(good.clone())), 403, "insufficient_scope"),
        ("unknown token", with_bearer("scb_at_unknown", w.signed(good.clone())), 401, "invalid_token"),
        ("no bearer", request("POST", "/api/update/", &[("content-type", "application/json")], w.signed(good.clone())), 401, "invalid_token"),
        ("malformed JSON", w.post("{\"connectionId\": 99, \"webhookType\": "), 400, "invalid_request"),
        ("not an object", w.post("[1,2]"), 400, "invalid_request"),
        ("unknown webhookType", w.post(&unknown_type), 400, "invalid_request"),
        ("bad attributeType", w.post(&w.signed(json!({"connectionId": 99, "webhookType": "data", "locationId": "1198", "metaData": {"attributeType": "prices", "apiUrl": "https://x/"}}))), 400, "invalid_request"),
        ("data without apiUrl", w.post(&w.signed(json!({"connectionId": 99, "webhookType": "data", "locationId": "1198", "metaData": {"attributeType": "rates"}}))), 400, "invalid_request"),
        ("form content type", request("POST", "/api/update/", &[("content-type", "application/x-www-form-urlencoded"), ("authorization", &format!("Bearer {}", events_creds::ACCESS))], w.signed(good.clone())), 415, "invalid_request"),
        ("multipart content type", request("POST", "/api/update/", &[("content-type", "multipart/form-data; boundary=x"), ("authorization", &format!("Bearer {}", events_creds::ACCESS))], w.signed(good.clone())), 415, "invalid_request"),
        ("huge body", w.post(&format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000))), 413, "invalid_request"),
    ];
    for (name, req, status, code) in cases {
        let resp = handlers::webhook(&w.t.app, req).await;
        assert_eq!(
            resp.status().as_u16(),
            status,
            "{name}: {}",
            syncaroo_tests::body_text(&resp)
        );
        assert_eq!(body_json(&resp)["error"], code, "{name}");
        assert_eq!(w.store.event_count(), 0, "{name}: recorded something");
    }
    // Expired: the same bearer an hour later.
    w.t.clock.advance(3600);
    let resp = handlers::webhook(&w.t.app, w.post(&w.signed(good.clone()))).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(w.store.event_count(), 0);
    let logged = cap.text();
    assert!(logged.contains("webhook refused: hash"));
    for leak in [
        "deadbeef-not-the-hash",
        events_creds::ACCESS,
        "currency",
        "/api/v1/locations",
        &other,
    ] {
        assert!(!logged.contains(leak), "{leak} reached the logs");
    }
    assert_eq!(
        w.fake.fake.data_requests(),
        0,
        "the webhook never calls Syncaroo"
    );
}

/// The same change notified five times before the worker runs: five
/// accepted notifications, one fetch, however often the stream delivers.
#[tokio::test]
async fn notifications_before_a_fetch_coalesce_into_it() {
    let w = world(&[]).await;
    let body = data_body(&w.fake.fake.page_url(RATES, 1));
    let mut delivered = vec![];
    for _ in 0..5 {
        delivered.push(w.deliver(body.clone()).await);
    }
    assert_eq!(w.target_state().await.notifications, 5);
    let mut outcomes = vec![];
    for d in &delivered {
        outcomes.push(w.process(d).await);
    }
    assert_eq!(outcomes[0], sync::Outcome::Done);
    assert!(
        outcomes[1..].iter().all(|o| *o == sync::Outcome::Skipped),
        "{outcomes:?}"
    );
    assert_eq!(w.fake.fake.data_requests(), 3, "three pages, fetched once");
    assert_eq!(w.stored_rates().await.unwrap().len(), 5);
}

/// The second change to the same rates sends the same body as the first:
/// after the first fetch it is fetched again, and the new data stored.
#[tokio::test]
async fn the_same_body_after_a_fetch_is_fetched_again() {
    let w = world(&[]).await;
    let body = data_body(&w.fake.fake.page_url(RATES, 1));
    assert_eq!(
        w.deliver_and_process(body.clone()).await,
        sync::Outcome::Done
    );
    assert_eq!(w.fake.fake.data_requests(), 3);
    w.fake
        .fake
        .set_pages(RATES, vec![vec![json!({"rate": "hourly", "amount": 11})]]);
    assert_eq!(w.deliver_and_process(body).await, sync::Outcome::Done);
    assert_eq!(
        w.fake.fake.data_requests(),
        4,
        "one more fetch (one page now)"
    );
    assert_eq!(
        w.stored_rates().await.unwrap(),
        vec![json!({"rate": "hourly", "amount": 11})]
    );
    let st = w.target_state().await;
    assert_eq!((st.notifications, st.fetched_through), (2, Some(2)));
}

/// Notifications that arrive while a fetch is running cause exactly one
/// more fetch; later deliveries of any of them cause none. Real
/// tasks: the fetch is held at the fake API while the webhook is acked.
#[tokio::test]
async fn notifications_during_a_fetch_cause_exactly_one_more() {
    let w = Arc::new(world(&[]).await);
    let body = data_body(&w.fake.fake.page_url(RATES, 1));
    let first = w.deliver(body.clone()).await;
    let gate = w.fake.fake.hold_data();
    let worker = {
        let w = w.clone();
        let first = first.clone();
        tokio::spawn(async move { w.process(&first).await })
    };
    gate.wait_held().await;
    // The fetch has started and is held on page 1: three identical
    // deliveries arrive while it is pending.
    let mut during = vec![];
    for _ in 0..3 {
        during.push(w.deliver(body.clone()).await);
    }
    gate.release();
    assert_eq!(worker.await.unwrap(), sync::Outcome::Done);
    assert_eq!(w.fake.fake.data_requests(), 3);
    let st = w.target_state().await;
    assert_eq!((st.notifications, st.fetched_through), (4, Some(1)));
    assert!(st.due());
    let mut outcomes = vec![];
    for d in &during {
        outcomes.push(w.process(d).await);
    }
    assert_eq!(
        outcomes,
        [
            sync::Outcome::Done,
            sync::Outcome::Skipped,
            sync::Outcome::Skipped
        ]
    );
    assert_eq!(w.fake.fake.data_requests(), 6, "exactly one more fetch");
    assert_eq!(w.process(&first).await, sync::Outcome::Skipped);
    assert_eq!(w.fake.fake.data_requests(), 6);
}

/// A stream batch with records for two targets fetches them at once: with
/// the first target's fetch held at the fake API (real tasks), the second
/// target's three pages are all served before the first is released.
#[tokio::test]
async fn a_batch_fetches_different_targets_concurrently() {
    // A held request must not time out (and be retried) during the test.
    let w = Arc::new(world(&[("SYNCAROO_HTTP_TIMEOUT_MS", "30000")]).await);
    syncaroo_local::import_listings(
        w.t.app.store.as_ref(),
        &json!({"userId": "1", "locations": {"2001": {"ID": "2001", "name": "Harbour Loft", "status": "active"}}})
            .to_string(),
    )
    .await
    .unwrap();
    const OTHER: &str = "/api/v1/locations/2001/rates";
    w.fake.fake.set_pages(
        OTHER,
        vec![
            vec![json!({"rate": "hourly", "amount": 12})],
            vec![json!({"rate": "daily", "amount": 70})],
            vec![json!({"rate": "weekly", "amount": 300})],
        ],
    );
    let first = w.deliver(data_body(&w.fake.fake.page_url(RATES, 1))).await;
    let mut other = data_body(&w.fake.fake.page_url(OTHER, 1));
    other["locationId"] = json!("2001");
    let second = w.deliver(other).await;
    let gate = w.fake.fake.hold_data();
    let batch = {
        let w = w.clone();
        tokio::spawn(async move {
            let dlq = MemoryDeadLetters::default();
            sync::process_batch(&w.t.app, &dlq, vec![("a", first), ("b", second)], None).await
        })
    };
    gate.wait_held().await;
    // The held request is the first target's page 1 (logged on release);
    // the other target's pages arrive meanwhile, or never if the batch ran
    // one record after the other. The bound only limits a failing run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while w.fake.fake.served(OTHER).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second target was not fetched while the first was held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        w.fake.fake.served(RATES).is_empty(),
        "the first is still held"
    );
    gate.release();
    assert_eq!(batch.await.unwrap(), Vec::<&str>::new());
    assert_eq!(w.stored_rates().await.unwrap().len(), 5);
}

/// Status webhooks apply in the order they were acked, whatever order the
/// worker sees them in: open -> closed -> open ends open. Each processed
/// as it comes is a change announced; processed late, the latest stands
/// and the earlier ones are covered by it (they are older news).
#[tokio::test]
async fn status_changes_apply_in_arrival_order() {
    let stored_status = async |w: &World| {
        let s =
            w.t.app
                .store
                .get_location_status(&conn(), "1198")
                .await
                .unwrap()
                .unwrap();
        let meta: Value = serde_json::from_str(&s.meta).unwrap();
        (meta["status"].as_str().unwrap().to_string(), s.seq)
    };
    let announced = |w: &World| -> Vec<String> {
        w.t.changes
            .entries()
            .iter()
            .filter(|e| e.detail_type == "Syncaroo Location Status Changed")
            .map(|e| {
                let d: Value = serde_json::from_str(&e.detail).unwrap();
                d["metaData"]["status"].as_str().unwrap().to_string()
            })
            .collect()
    };
    // One at a time: three changes, three announcements.
    let w = world(&[]).await;
    for st in ["open", "closed", "open"] {
        assert_eq!(
            w.deliver_and_process(status_body(st)).await,
            sync::Outcome::Done
        );
        w.t.clock.advance(1);
    }
    assert_eq!(stored_status(&w).await, ("open".into(), 3));
    assert_eq!(announced(&w), ["open", "closed", "open"]);
    // All acked first, processed in another order: the last acked stands.
    let w = world(&[]).await;
    let mut delivered = vec![];
    for st in ["open", "closed", "open"] {
        delivered.push(w.deliver(status_body(st)).await);
        w.t.clock.advance(1);
    }
    let outcomes: Vec<sync::Outcome> = {
        let mut v = vec![];
        for i in [2, 0, 1] {
            v.push(w.process(&delivered[i]).await);
        }
        v
    };
    assert_eq!(
        outcomes,
        [
            sync::Outcome::Done,
            sync::Outcome::Skipped,
            sync::Outcome::Skipped
        ]
    );
    assert_eq!(stored_status(&w).await, ("open".into(), 3));
    assert_eq!(announced(&w), ["open"]);
}

/// Two status changes acked in the same millisecond (correctness issue,
/// item 3): the later one stands, whichever delivery the worker handles
/// first, and the last change announced is it. Ordered by a sequence from
/// the ack's one write, not by a clock.
#[tokio::test]
async fn status_changes_in_one_millisecond_apply_in_ack_order() {
    for order in [[0, 1], [1, 0]] {
        let w = world(&[]).await;
        let delivered = [
            w.deliver(status_body("closed")).await,
            w.deliver(status_body("open")).await,
        ];
        for i in order {
            let out = w.process(&delivered[i]).await;
            assert!(
                matches!(out, sync::Outcome::Done | sync::Outcome::Skipped),
                "{out:?}"
            );
        }
        let s =
            w.t.app
                .store
                .get_location_status(&conn(), "1198")
                .await
                .unwrap()
                .unwrap();
        let meta: Value = serde_json::from_str(&s.meta).unwrap();
        assert_eq!(meta["status"], "open", "order {order:?}");
        let announced: Vec<Value> =
            w.t.changes
                .entries()
                .iter()
                .filter(|e| e.detail_type == "Syncaroo Location Status Changed")
                .map(|e| {
                    serde_json::from_str::<Value>(&e.detail).unwrap()["metaData"]["status"].clone()
                })
                .collect();
        assert_eq!(
            announced.last(),
            Some(&json!("open")),
            "order {order:?}: {announced:?}"
        );
    }
}

#[tokio::test]
async fn status_webhook_stores_the_status() {
    let w = world(&[]).await;
    assert_eq!(
        w.deliver_and_process(status_body("closed")).await,
        sync::Outcome::Done
    );
    let s =
        w.t.app
            .store
            .get_location_status(&conn(), "1198")
            .await
            .unwrap()
            .unwrap();
    let meta: Value = serde_json::from_str(&s.meta).unwrap();
    assert_eq!(meta["status"], "closed");
    assert_eq!(w.fake.fake.data_requests(), 0);
}

#[tokio::test]
async fn a_401_forces_one_refresh_and_one_retry() {
    let w = world(&[]).await;
    w.fake.fake.fail_data([DataFailure::Unauthorized]);
    assert_eq!(
        w.deliver_and_process(data_body(&w.fake.fake.page_url(RATES, 1)))
            .await,
        sync::Outcome::Done
    );
    assert_eq!(w.fake.fake.refreshes(), 1);
    assert_eq!(w.stored_rates().await.unwrap().len(), 5);
    let log = w.fake.fake.data_log.lock().unwrap().clone();
    assert_eq!(log.len(), 4, "page 1 twice, then pages 2 and 3");
    assert_ne!(log[0].1, log[1].1, "the retry used the new token");
    assert_eq!((log[0].2, log[1].2), (401, 200));
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let w = world(&[]).await;
    w.fake.fake.fail_data([
        DataFailure::Status(429),
        DataFailure::Status(500),
        DataFailure::Status(500),
    ]);
    // 429 on page 1, then 500 twice: attempts 2 and 3 of page 1 ... page 1 needs
    // a fourth try, beyond SYNC_PAGE_ATTEMPTS=3, so this delivery is retried.
    let first = w
        .deliver_and_process(data_body(&w.fake.fake.page_url(RATES, 1)))
        .await;
    assert!(matches!(first, sync::Outcome::Retry(_)), "{first:?}");
    assert!(w.stored_rates().await.is_none(), "nothing half-stored");
    // The stream delivers the record again.
    let again = w
        .process(&sync::Delivered::Target(w.target_state().await.target))
        .await;
    assert_eq!(again, sync::Outcome::Done);
    assert_eq!(
        w.stored_rates().await.unwrap().len(),
        5,
        "nothing lost, nothing twice"
    );
}

#[tokio::test]
async fn five_hundred_twice_then_200_succeeds_in_one_delivery() {
    let w = world(&[]).await;
    w.fake
        .fake
        .fail_data([DataFailure::Status(500), DataFailure::Status(500)]);
    assert_eq!(
        w.deliver_and_process(data_body(&w.fake.fake.page_url(RATES, 1)))
            .await,
        sync::Outcome::Done
    );
    assert_eq!(w.fake.fake.data_requests(), 5);
    assert_eq!(w.stored_rates().await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_truncated_body_is_fetched_again() {
    let w = world(&[]).await;
    w.fake.fake.fail_data([DataFailure::Truncated]);
    assert_eq!(
        w.deliver_and_process(data_body(&w.fake.fake.page_url(RATES, 1)))
            .await,
        sync::Outcome::Done
    );
    let rates = w.stored_rates().await.unwrap();
    assert_eq!(rates.len(), 5, "each page once: {rates:?}");
    assert_eq!(w.fake.fake.data_requests(), 4);
}

/// A target whose fetch fails for good is given up: a `Syncaroo Sync
/// Failed` entry names it (no token in it), and the connection's health
/// shows it under `failing` until a fetch covers it again.
#[tokio::test]
async fn a_target_given_up_is_announced_and_shown_failing() {
    let w = world(&[]).await;
    let first = w.page_loop();
    let out = w.deliver_and_process(data_body(&first)).await;
    assert!(matches!(&out, sync::Outcome::Failed(_)), "{out:?}");
    let entries = w.t.changes.entries();
    let failed = entries
        .iter()
        .find(|e| e.detail_type == "Syncaroo Sync Failed")
        .expect("a Sync Failed entry");
    let d: Value = serde_json::from_str(&failed.detail).unwrap();
    assert_eq!(
        (
            &d["connectionId"],
            &d["userId"],
            &d["locationId"],
            &d["attributeType"],
            &d["attempts"]
        ),
        (
            &json!("99"),
            &json!(events_creds::USER),
            &json!("1198"),
            &json!("rates"),
            &json!(1)
        )
    );
    assert!(d["reason"].as_str().unwrap().contains("loop"), "{d}");
    assert!(
        d["failedAt"].is_string() && d.get("resourceId").is_none(),
        "{d}"
    );
    for secret in [events_creds::ACCESS, events_creds::REFRESH] {
        assert!(!failed.detail.contains(secret));
    }
    let store = w.t.app.store.as_ref();
    let health = syncaroo_shared::platform_data::connection_health(store, &conn())
        .await
        .unwrap()
        .unwrap();
    let sync = &health["sync"];
    assert_eq!(
        (&sync["targets"], &sync["pending"]),
        (&json!(1), &json!(0)),
        "{health}"
    );
    assert_eq!(sync["failing"][0]["attributeType"], "rates");
    assert_eq!(sync["failing"][0]["attempts"], 1);
    assert!(sync["failing"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("loop"));
    assert_eq!(health["syncarooCredentials"], "ok");

    // A newer notification fetched fine: no longer failing.
    assert_eq!(
        w.deliver_and_process(data_body(&first)).await,
        sync::Outcome::Done
    );
    let health = syncaroo_shared::platform_data::connection_health(store, &conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health["sync"]["failing"], json!([]), "{health}");
    assert!(health["sync"]["lastFetchAt"].is_string());
}

/// Syncaroo refuses our refresh token during a sync: `Syncaroo
/// Credentials Need Reauth` is put once, and every connection's health
/// says `needs_reauth` (the state is platform-wide).
#[tokio::test]
async fn a_refused_refresh_token_shows_as_needs_reauth() {
    let w = world(&[]).await;
    let refresh =
        syncaroo_tests::store_expired_pair(w.store.as_ref(), &w.fake, w.t.clock_now()).await;
    w.fake.fake.fail_next([syncaroo_sim::Failure::InvalidGrant]);
    let out = w
        .deliver_and_process(data_body(&w.fake.fake.page_url(RATES, 1)))
        .await;
    assert!(!matches!(out, sync::Outcome::Done), "{out:?}");
    let reauth: Vec<_> =
        w.t.changes
            .entries()
            .into_iter()
            .filter(|e| e.detail_type == "Syncaroo Credentials Need Reauth")
            .collect();
    assert_eq!(reauth.len(), 1, "{reauth:?}");
    assert!(!reauth[0].detail.contains(&refresh));
    let health = syncaroo_shared::platform_data::connection_health(w.t.app.store.as_ref(), &conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health["syncarooCredentials"], "needs_reauth");
}

#[tokio::test]
async fn a_page_loop_fails_the_event_and_stores_nothing() {
    let w = world(&[]).await;
    let first = w.page_loop();
    let out = w.deliver_and_process(data_body(&first)).await;
    assert!(
        matches!(&out, sync::Outcome::Failed(r) if r.contains("loop")),
        "{out:?}"
    );
    assert!(w.stored_rates().await.is_none());
    assert_eq!(w.dlq.all().len(), 1);
    assert_eq!(w.fake.fake.data_requests(), 2);
}

/// A listener on a second loopback port that counts connections.
async fn trap() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn an_api_url_on_another_host_is_never_requested() {
    let w = world(&[]).await;
    let (trap_url, hits) = trap().await;
    let out = w
        .deliver_and_process(data_body(&format!("{trap_url}{RATES}")))
        .await;
    assert!(
        matches!(&out, sync::Outcome::Failed(r) if r.contains("not under a configured Syncaroo data API prefix")),
        "{out:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no request, so no token, reached the other port"
    );
    assert_eq!(w.dlq.all().len(), 1);
    assert_eq!(w.target_state().await.given_up_through, Some(1));
}

#[tokio::test]
async fn a_next_link_to_another_host_is_never_followed() {
    let w = world(&[]).await;
    let (trap_url, hits) = trap().await;
    w.fake
        .fake
        .fail_data([DataFailure::NextTo(format!("{trap_url}{RATES}?page=2"))]);
    let out = w
        .deliver_and_process(data_body(&w.fake.fake.page_url(RATES, 1)))
        .await;
    assert!(matches!(out, sync::Outcome::Failed(_)), "{out:?}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert!(w.stored_rates().await.is_none());
    // A redirect is not followed either.
    let w2 = world(&[]).await;
    w2.fake
        .fake
        .fail_data([DataFailure::Redirect(format!("{trap_url}/steal"))]);
    let out = w2
        .deliver_and_process(data_body(&w2.fake.fake.page_url(RATES, 1)))
        .await;
    assert!(
        matches!(&out, sync::Outcome::Failed(r) if r.contains("redirect")),
        "{out:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn exhausted_retries_dead_letter_the_event() {
    let w = world(&[]).await;
    w.fake.fake.fail_data(vec![DataFailure::Status(503); 6]);
    let body = data_body(&w.fake.fake.page_url(RATES, 1));
    let d = w.deliver(body.clone()).await;
    let first = w.process(&d).await;
    assert!(matches!(first, sync::Outcome::Retry(_)));
    let second = w.process(&d).await;
    assert!(
        matches!(second, sync::Outcome::Failed(_)),
        "SYNC_MAX_ATTEMPTS=2: {second:?}"
    );
    assert_eq!(w.dlq.all().len(), 1);
    let st = w.target_state().await;
    assert_eq!((st.given_up_through, st.attempts), (Some(1), 0));
    assert!(st.error.is_some());
    // A later redelivery of the same notification does nothing...
    assert_eq!(w.process(&d).await, sync::Outcome::Skipped);
    assert_eq!(w.fake.fake.data_requests(), 6);
    // ...and a new notification is tried again.
    let d = w.deliver(body).await;
    assert!(matches!(
        w.process(&d).await,
        sync::Outcome::Done | sync::Outcome::Retry(_)
    ));
    assert!(w.fake.fake.data_requests() > 6);
}

/// A stream record as Lambda delivers it (the fields aws_lambda_events
/// requires, as in events/sync-stream.json).
fn stream_record(name: &str, seq: &str, image: Value) -> Value {
    json!({
        "eventID": format!("e{seq}"),
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"SequenceNumber": seq, "SizeBytes": 100, "NewImage": image,
                     "StreamViewType": "NEW_IMAGE"},
    })
}

/// One bad event in a stream batch is reported alone; the others are done.
/// Lambda then checkpoints at the lowest failed sequence number and
/// delivers that record and every one after it again (correctness issue,
/// item 11): the status change after the failed record is processed twice,
/// harmlessly, because processing is idempotent (a covered target is
/// skipped, nothing is announced twice), while the failed target is fetched
/// now.
#[tokio::test]
async fn stream_batch_reports_only_the_failing_record() {
    let w = world(&[]).await;
    w.fake.fake.fail_data(vec![DataFailure::Status(503); 3]);
    let mut records = vec![];
    // A notified data target, as its NOTE item's image arrives after the
    // webhook's UpdateItem...
    w.deliver(data_body(&w.fake.fake.page_url(RATES, 1))).await;
    let note = json!({
        "pk": {"S": "TARGET#99#1198#rates#-"}, "sk": {"S": "NOTE"},
        "conn": {"S": "99"}, "location": {"S": "1198"}, "attr": {"S": "rates"},
        "payload": {"S": "{}"}, "notified_at_ms": {"N": "1"}, "notifications": {"N": "1"},
    });
    records.push(stream_record("MODIFY", "100", note));
    // ...and a status change, as its status target's NOTE image.
    w.deliver(status_body("open")).await;
    let status_note = json!({
        "pk": {"S": "TARGET#99#1198#status#-"}, "sk": {"S": "NOTE"},
        "conn": {"S": "99"}, "location": {"S": "1198"}, "attr": {"S": "status"},
        "payload": {"S": "{}"}, "notified_at_ms": {"N": "1"}, "notifications": {"N": "1"},
    });
    records.push(stream_record("INSERT", "101", status_note));
    records.push(stream_record("MODIFY", "300", json!({})));
    let batch = serde_json::from_value(json!({ "Records": records })).expect("a stream batch");
    let out = serde_json::to_value(
        syncaroo_shared::edge::on_stream(&w.t.app, &w.dlq, batch, None)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out["batchItemFailures"], json!([{"itemIdentifier": "100"}]));
    let status = || async {
        w.t.app
            .store
            .get_location_status(&conn(), "1198")
            .await
            .unwrap()
    };
    let stored = status().await.expect("the status is stored");
    let announced = |kind: &str| {
        w.t.changes
            .entries()
            .iter()
            .filter(|e| e.detail_type == kind)
            .count()
    };
    assert_eq!(announced("Syncaroo Location Status Changed"), 1);
    // Redelivered from record 100 on: 100, and 101 and 300 again.
    let batch = serde_json::from_value(json!({ "Records": records })).expect("a stream batch");
    let again = serde_json::to_value(
        syncaroo_shared::edge::on_stream(&w.t.app, &w.dlq, batch, None)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again["batchItemFailures"], json!([]));
    assert_eq!(w.stored_rates().await.unwrap().len(), 5, "fetched now");
    assert_eq!(status().await, Some(stored), "the status as it was");
    assert_eq!(
        announced("Syncaroo Location Status Changed"),
        1,
        "not announced twice"
    );
    assert_eq!(announced("Syncaroo Data Synced"), 1);
}

/// The guide's literal status webhook (no `hash`), under each
/// WEBHOOK_REQUIRE_HASH; a hash that is present must verify whatever the
/// setting; data webhooks need one by default.
#[tokio::test]
async fn hash_requirement_follows_the_setting() {
    let guide_status = r#"{
  "connectionId": 99,
  "webhookType": "status",
  "locationId": "1198",
  "metaData": {
    "xxxx": "xxxx"
  }
}"#;
    let mut wrong: Value = serde_json::from_str(guide_status).unwrap();
    wrong["hash"] = json!("00ff");
    for (setting, status_ok, data_ok) in [
        (None, true, false),
        (Some("data"), true, false),
        (Some("all"), false, false),
        (Some("none"), true, true),
    ] {
        let extra: Vec<(&str, &str)> = setting
            .map(|v| vec![("WEBHOOK_REQUIRE_HASH", v)])
            .unwrap_or_default();
        let w = world(&extra).await;
        let data = data_body(&w.fake.fake.page_url(RATES, 1)).to_string();
        for (name, body, ok) in [
            ("status", guide_status.to_string(), status_ok),
            ("data", data, data_ok),
        ] {
            let resp = handlers::webhook(&w.t.app, w.post(&body)).await;
            let want = if ok { 202 } else { 401 };
            assert_eq!(
                resp.status().as_u16(),
                want,
                "{setting:?} {name} without hash: {}",
                syncaroo_tests::body_text(&resp)
            );
        }
        let resp = handlers::webhook(&w.t.app, w.post(&wrong.to_string())).await;
        assert_eq!(resp.status(), 401, "{setting:?}: a wrong hash is refused");
        assert_eq!(body_json(&resp)["error"], "invalid_signature");
        let anonymous = request("POST", "/api/update", &[], guide_status.to_string());
        let resp = handlers::webhook(&w.t.app, anonymous).await;
        assert_eq!(resp.status(), 401, "{setting:?}: no bearer");
        assert_eq!(body_json(&resp)["error"], "invalid_token");
    }
    let bad = syncaroo_shared::Config::from_lookup(|k| {
        (k == "WEBHOOK_REQUIRE_HASH").then(|| "some".into())
    });
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("use data, all or none"));
}

/// Any body is JSON, whatever its Content-Type says (the guide names none).
#[tokio::test]
async fn any_content_type_but_forms_is_parsed_as_json() {
    let w = world(&[]).await;
    for (i, ct) in [
        None,
        Some("text/plain"),
        Some("application/json"),
        Some("application/vnd.syncaroo+json; charset=utf-8"),
        Some("TEXT/PLAIN"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = w.signed(json!({"connectionId": 99, "webhookType": "status", "locationId": format!("l{i}"), "metaData": {"status": "open"}}));
        let auth = format!("Bearer {}", events_creds::ACCESS);
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = ct {
            headers.push(("content-type", ct));
        }
        let resp =
            handlers::webhook(&w.t.app, request("POST", "/api/update", &headers, body)).await;
        assert_eq!(
            resp.status(),
            202,
            "{ct:?}: {}",
            syncaroo_tests::body_text(&resp)
        );
    }
}

/// `{base}../x` and its percent-encoded forms resolve outside the data
/// prefix: refused before any request, so the token goes nowhere.
#[tokio::test]
async fn dot_segments_cannot_leave_the_data_prefix() {
    for escape in ["../admin/x", "%2e%2e/admin/x", ".%2E/admin/x"] {
        let w = world(&[]).await;
        let url = format!("{}{escape}", w.fake.base());
        let out = w.deliver_and_process(data_body(&url)).await;
        assert!(
            matches!(&out, sync::Outcome::Failed(r) if r.contains("refused URL")),
            "{url}: {out:?}"
        );
        assert_eq!(w.fake.fake.data_requests(), 0, "{url}: nothing requested");
        assert_eq!(w.dlq.all().len(), 1);
    }
}

/// Syncaroo answers 404 for the `apiUrl` itself: the resource was deleted
/// there. Recorded as deleted, not dead-lettered, and not fetched again.
#[tokio::test]
async fn a_deleted_resource_is_recorded_not_dead_lettered() {
    let w = world(&[]).await;
    let gone = "/api/v1/locations/1198/rates-gone";
    let out = w
        .deliver_and_process(data_body(&w.fake.fake.page_url(gone, 1)))
        .await;
    assert_eq!(out, sync::Outcome::Done);
    let d =
        w.t.app
            .store
            .get_synced(&conn(), "1198", "rates", None)
            .await
            .unwrap()
            .unwrap();
    assert_eq!((d.deleted, d.data.as_str(), d.pages), (true, "[]", 0));
    assert!(w.dlq.all().is_empty());
    assert!(!w.target_state().await.due());
    assert_eq!(w.fake.fake.data_requests(), 1);
}

/// A listener on the data prefix's own host and port: `apiUrl`s that
/// leave the prefix (dot segments, plain or percent-encoded, an empty
/// segment) are refused before any connection, so the Syncaroo token never
/// reaches a path outside it.
#[tokio::test]
async fn no_request_reaches_a_path_outside_the_data_prefix() {
    let (trap_url, hits) = trap().await;
    let prefix = format!("{trap_url}/api/");
    let w = world(&[("SYNCAROO_DATA_BASES", prefix.as_str())]).await;
    for escape in [
        format!("{prefix}../x"),
        format!("{prefix}%2e%2e/x"),
        format!("{prefix}%2E%2E/%2e%2e/x"),
        format!("{prefix}.%2e/x"),
        format!("{prefix}..//x"),
        format!("{trap_url}//api/x"),
        format!("{trap_url}/x/../api"),
    ] {
        let out = w.deliver_and_process(data_body(&escape)).await;
        assert!(
            matches!(&out, sync::Outcome::Failed(r) if r.contains("refused URL")),
            "{escape}: {out:?}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no connection reached the listener"
    );
    assert_eq!(w.dlq.all().len(), 7);
}

/// A three-page result of 1 MB in total is fetched, stored and read back
/// whole (the DynamoDB store splits it over chunk items: store_conformance).
#[tokio::test]
async fn a_megabyte_over_three_pages_is_stored_whole() {
    let w = world(&[]).await;
    let path = "/api/v1/locations/1198/rates-big";
    let page = |p: usize| -> Vec<Value> {
        (0..380)
            .map(|i| json!({"page": p, "i": i, "pad": "x".repeat(900)}))
            .collect()
    };
    let pages: Vec<Vec<Value>> = (1..=3).map(page).collect();
    w.fake.fake.set_pages(path, pages.clone());
    let out = w
        .deliver_and_process(data_body(&w.fake.fake.page_url(path, 1)))
        .await;
    assert_eq!(out, sync::Outcome::Done);
    let d =
        w.t.app
            .store
            .get_synced(&conn(), "1198", "rates", None)
            .await
            .unwrap()
            .unwrap();
    assert!(d.data.len() > 1_000_000, "{}", d.data.len());
    let all: Vec<Value> = pages.into_iter().flatten().collect();
    assert_eq!(serde_json::from_str::<Vec<Value>>(&d.data).unwrap(), all);
    assert_eq!(d.pages, 3);
}

/// More than a fetch may store (correctness issue, item 2): the limit is
/// enforced while reading, so the page that crosses it is the last one
/// requested; the fetch fails for good (dead-lettered) and stores nothing.
#[tokio::test]
async fn a_fetch_over_the_stored_limit_stops_at_the_page_that_crosses_it() {
    let w = world(&[]).await;
    let path = "/api/v1/locations/1198/rates-huge";
    // Six pages of about 740 KB: the running total passes 3 MiB on page 5.
    let page = |p: usize| -> Vec<Value> {
        (0..800)
            .map(|i| json!({"page": p, "i": i, "pad": "x".repeat(900)}))
            .collect()
    };
    w.fake.fake.set_pages(path, (1..=6).map(page).collect());
    let out = w
        .deliver_and_process(data_body(&w.fake.fake.page_url(path, 1)))
        .await;
    assert!(
        matches!(&out, sync::Outcome::Failed(r) if r.contains("limit")),
        "{out:?}"
    );
    assert_eq!(
        w.fake.fake.served(path).len(),
        5,
        "page 6 is never requested"
    );
    assert!(w.stored_rates().await.is_none());
    assert_eq!(w.dlq.all().len(), 1);
}

/// Another user's location (correctness issue, item 12): with connection
/// 99's token (user 1), a signed data or status webhook about location
/// 5555, which only user 2 lists, is acked (the ack makes no extra round
/// trip) but quarantined by the worker: not fetched, not stored, not
/// announced. The same webhook about user 1's own location is.
#[tokio::test]
async fn a_webhook_about_another_users_location_is_neither_fetched_nor_announced() {
    let (cap, _here) = logs::capture_here();
    let w = world(&[]).await;
    syncaroo_local::import_listings(
        w.t.app.store.as_ref(),
        &json!({"userId": "2", "locations": {"5555": {"ID": "5555", "name": "Not yours", "status": "active"}}})
            .to_string(),
    )
    .await
    .unwrap();
    let theirs = "/api/v1/locations/5555/rates";
    w.fake
        .fake
        .set_pages(theirs, vec![vec![json!({"rate": "hourly", "amount": 1})]]);
    let mut data = data_body(&w.fake.fake.page_url(theirs, 1));
    data["locationId"] = json!("5555");
    let mut status = status_body("closed");
    status["locationId"] = json!(5555);
    let mut outcomes = vec![];
    for body in [data, status] {
        outcomes.push(w.deliver_and_process(body).await);
    }
    assert_eq!(w.fake.fake.data_requests(), 0, "nothing fetched");
    assert!(w
        .t
        .app
        .store
        .get_synced(&conn(), "5555", "rates", None)
        .await
        .unwrap()
        .is_none());
    assert!(w
        .t
        .app
        .store
        .get_location_status(&conn(), "5555")
        .await
        .unwrap()
        .is_none());
    assert!(
        w.t.changes.entries().is_empty(),
        "nothing announced: {:?}",
        w.t.changes.entries()
    );
    assert!(w.dlq.all().is_empty(), "quarantined, not dead-lettered");
    assert!(cap.text().contains("webhook quarantined"), "logged");
    for out in outcomes {
        assert!(
            matches!(&out, sync::Outcome::Quarantined(r) if r.contains("not one of the user's locations")),
            "{out:?}"
        );
    }
    // The connection's own location goes through.
    assert_eq!(
        w.deliver_and_process(data_body(&w.fake.fake.page_url(RATES, 1)))
            .await,
        sync::Outcome::Done
    );
    assert_eq!(w.t.changes.entries().len(), 1);
}

/// Big integers (item 13): RFC 8785 reads numbers as doubles, so a body
/// hashed with `"locationId": 9007199254740992` verifies when sent with
/// `9007199254740993`. Numeric ids must be safe integers (at most 2^53 - 1,
/// as ECMAScript's Number.isSafeInteger), which no other integer shares a
/// canonical form with; larger ids are sent as strings.
#[tokio::test]
async fn a_big_integer_id_cannot_be_moved_under_a_valid_hash() {
    let w = world(&[]).await;
    let signed = w.signed(json!({"connectionId": 99, "webhookType": "status",
        "locationId": 9_007_199_254_740_992u64, "metaData": {"status": "closed"}}));
    let moved = signed.replace("9007199254740992", "9007199254740993");
    assert_ne!(signed, moved);
    let resource = w.signed(
        json!({"connectionId": 99, "webhookType": "data", "locationId": "1198",
        "metaData": {"attributeType": "resources", "resourceId": 18_014_398_509_481_985u64,
                     "apiUrl": w.fake.fake.page_url(RATES, 1)}}),
    );
    for (what, body) in [
        ("signed", &signed),
        ("moved", &moved),
        ("resource", &resource),
    ] {
        let resp = handlers::webhook(&w.t.app, w.post(body)).await;
        assert_eq!(
            resp.status(),
            400,
            "{what}: {}",
            syncaroo_tests::body_text(&resp)
        );
        assert!(
            body_json(&resp)["error_description"]
                .as_str()
                .unwrap()
                .contains("safe integer"),
            "{what}"
        );
        assert_eq!(w.store.event_count(), 0, "{what}: recorded something");
    }
    // The largest safe integer, and any id as a string, are fine.
    for id in [json!(9_007_199_254_740_991u64), json!("9007199254740993")] {
        let body = w.signed(json!({"connectionId": 99, "webhookType": "status",
            "locationId": id, "metaData": {"status": "closed"}}));
        let resp = handlers::webhook(&w.t.app, w.post(&body)).await;
        assert_eq!(resp.status(), 202, "{id}");
    }
}

/// One token holder cannot spend the platform's Syncaroo rate limit (item
/// 16): a target is fetched at most once per SYNC_MIN_FETCH_INTERVAL_MS.
/// Fifty notifications right after a fetch cause no fetch before the
/// interval has passed, and exactly one after it, which stores the data as
/// it is then: delayed, never dropped.
#[tokio::test]
async fn a_target_is_fetched_at_most_once_per_interval() {
    let w = world(&[("SYNC_MIN_FETCH_INTERVAL_MS", "5000")]).await;
    let body = data_body(&w.fake.fake.page_url(RATES, 1));
    assert_eq!(
        w.deliver_and_process(body.clone()).await,
        sync::Outcome::Done
    );
    assert_eq!(w.fake.fake.data_requests(), 3);
    w.fake
        .fake
        .set_pages(RATES, vec![vec![json!({"rate": "hourly", "amount": 12})]]);
    w.t.clock.advance(1);
    let mut later = vec![];
    for _ in 0..50 {
        later.push(w.deliver(body.clone()).await);
    }
    let fetch_started = (syncaroo_tests::EVENTS_NOW) * 1000;
    for d in &later {
        assert_eq!(
            w.process(d).await,
            sync::Outcome::Deferred {
                until_ms: fetch_started + 5000
            }
        );
    }
    assert_eq!(
        w.fake.fake.data_requests(),
        3,
        "no fetch inside the interval"
    );
    assert!(w.target_state().await.due(), "still owed a fetch");
    w.t.clock.advance(4);
    let mut outcomes = vec![];
    for d in &later {
        outcomes.push(w.process(d).await);
    }
    assert_eq!(outcomes[0], sync::Outcome::Done);
    assert!(outcomes[1..].iter().all(|o| *o == sync::Outcome::Skipped));
    assert_eq!(w.fake.fake.data_requests(), 4, "exactly one more fetch");
    assert_eq!(
        w.stored_rates().await.unwrap(),
        vec![json!({"rate": "hourly", "amount": 12})]
    );
}

/// A data webhook recorded as an event (as versions before targets did) is
/// handed to its target, which then fetches it: one fetching path.
#[tokio::test]
async fn a_data_event_from_before_targets_is_handed_to_its_target() {
    let w = world(&[]).await;
    let body = data_body(&w.fake.fake.page_url(RATES, 1));
    let event = syncaroo_shared::store::EventRecord {
        id: "99:data:1198:1795806000000:legacy".into(),
        connection_id: conn(),
        webhook_type: syncaroo_shared::webhook::WebhookType::Data,
        location_id: "1198".into(),
        payload: body.to_string(),
        received_at_ms: 1_795_806_000_000,
        status: syncaroo_shared::store::EventStatus::Pending,
        attempts: 0,
        error: None,
    };
    w.t.app.store.record_event(&event).await.unwrap();
    assert_eq!(
        w.process(&sync::Delivered::Event(event)).await,
        sync::Outcome::Done
    );
    assert_eq!(w.fake.fake.data_requests(), 0, "not fetched by the event");
    assert_eq!(w.target_state().await.notifications, 1);
    let target = sync::target_of(&Webhook::parse(body.to_string().as_bytes()).unwrap());
    assert_eq!(
        w.process(&sync::Delivered::Target(target)).await,
        sync::Outcome::Done
    );
    assert_eq!(w.stored_rates().await.unwrap().len(), 5);
}

/// A status webhook recorded as an event (as versions before status targets
/// did, still pending at an upgrade) is handed to the location's status
/// target, which applies it: one status path.
#[tokio::test]
async fn a_status_event_from_before_status_targets_is_handed_to_its_target() {
    let w = world(&[]).await;
    let body = status_body("closed");
    let event = syncaroo_shared::store::EventRecord {
        id: "99:status:1198:1795806000000:legacy".into(),
        connection_id: conn(),
        webhook_type: syncaroo_shared::webhook::WebhookType::Status,
        location_id: "1198".into(),
        payload: body.to_string(),
        received_at_ms: 1_795_806_000_000,
        status: syncaroo_shared::store::EventStatus::Pending,
        attempts: 0,
        error: None,
    };
    w.t.app.store.record_event(&event).await.unwrap();
    let delivered = sync::Delivered::Event(event.clone());
    assert_eq!(w.process(&delivered).await, sync::Outcome::Done);
    assert_eq!(
        w.process(&delivered).await,
        sync::Outcome::Skipped,
        "handed over once"
    );
    let target = sync::target_of(&Webhook::parse(body.to_string().as_bytes()).unwrap());
    assert!(target.is_status());
    assert_eq!(
        w.process(&sync::Delivered::Target(target)).await,
        sync::Outcome::Done
    );
    let s =
        w.t.app
            .store
            .get_location_status(&conn(), "1198")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&s.meta).unwrap()["status"],
        "closed"
    );
    assert_eq!(s.seq, 1);
}

/// The sync worker keeps to its invocation's deadline (correctness issue,
/// item 8): a record is started only while the time left covers one
/// fetch's budget (SYNC_DEADLINE_MS); the rest are named in the batch's
/// failures, so Lambda delivers them again instead of timing the whole
/// invocation out. Real tasks: the first target's fetch is held at the fake
/// API until the time left no longer covers a second fetch.
#[tokio::test]
async fn the_worker_starts_no_fetch_its_deadline_cannot_cover() {
    let w = Arc::new(
        world(&[
            ("SYNC_DEADLINE_MS", "2000"),
            ("SYNCAROO_HTTP_TIMEOUT_MS", "10000"),
        ])
        .await,
    );
    let body = data_body(&w.fake.fake.page_url(RATES, 1));
    let first = w.deliver(body.clone()).await;
    let gate = w.fake.fake.hold_data();
    // 3 s left: the first fetch starts (its budget is 2 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let batch = {
        let w = w.clone();
        let first = first.clone();
        tokio::spawn(async move {
            let dlq = MemoryDeadLetters::default();
            sync::process_batch(
                &w.t.app,
                &dlq,
                vec![("a", first.clone()), ("b", first)],
                Some(deadline),
            )
            .await
        })
    };
    gate.wait_held().await;
    // A notification while the fetch is held makes the second record due.
    w.deliver(body.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    gate.release();
    let failed = batch.await.unwrap();
    assert_eq!(
        failed,
        ["b"],
        "the second record is handed back, not started"
    );
    assert_eq!(w.fake.fake.data_requests(), 3, "one fetch of three pages");
    assert!(
        w.target_state().await.due(),
        "still owed a fetch: delivered again"
    );
    // Too little time for any fetch: nothing is started, all handed back.
    let none_left = std::time::Instant::now() + std::time::Duration::from_millis(500);
    let dlq = MemoryDeadLetters::default();
    let d = w.deliver(body).await;
    let failed = sync::process_batch(&w.t.app, &dlq, vec![("c", d)], Some(none_left)).await;
    assert_eq!(failed, ["c"]);
    assert_eq!(w.fake.fake.data_requests(), 3, "no fetch started");
}
