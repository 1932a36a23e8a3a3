//! Change events for the platform, on the in-memory store and fed by the
//! files in `events/`: each of the four kinds once per change with its
//! fields, nothing for a non-change, a failed put retried and
//! dead-lettered, a dead letter replayed, and no token or secret in any
//! entry. The expected times are formatted by chrono, not by our code.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use syncaroo_shared::changes::{ChangeSink, Entry, MemorySink};
use syncaroo_shared::deadletter::{DeadLetter, MemoryDeadLetters};
use syncaroo_shared::handlers::sync::{self, Delivered, Outcome};
use syncaroo_shared::handlers::{self};
use syncaroo_shared::platform_ops::{self, Replayed};
use syncaroo_shared::secrets::SecretString;
use syncaroo_shared::store::MemoryStore;
use syncaroo_shared::webhook::Webhook;
use syncaroo_shared::Error;
use syncaroo_sim::{FakeConfig, FakeSyncaroo};
use syncaroo_tests::{
    body_json, body_text, config_with_syncaroo, event, events_creds, request, sign, TestApp,
    EVENTS_NOW,
};

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Fails its first `fail` puts, then keeps what it is given.
#[derive(Default)]
struct Flaky {
    fail: AtomicUsize,
    calls: AtomicUsize,
    kept: MemorySink,
}

impl Flaky {
    fn failing(n: usize) -> Arc<Self> {
        let f = Self::default();
        f.fail.store(n, Ordering::SeqCst);
        Arc::new(f)
    }
}

#[async_trait]
impl ChangeSink for Flaky {
    async fn put(&self, entry: &Entry) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let left = self.fail.load(Ordering::SeqCst);
        if left > 0 {
            self.fail.store(left - 1, Ordering::SeqCst);
            return Err(Error::upstream("PutEvents: ThrottlingException"));
        }
        self.kept.put(entry).await
    }
}

struct World {
    t: TestApp,
    fake: FakeSyncaroo,
}

/// The events' connection (99, user 1) with live tokens, the fake Syncaroo
/// with our credentials and three pages of rates; change events to `sink`.
async fn world(sink: Option<Arc<dyn ChangeSink>>) -> World {
    let fake = FakeSyncaroo::start_local(FakeConfig::default())
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut secrets = syncaroo_tests::events_secrets();
    secrets.syncaroo_client_id = Some(SecretString::new(fake.fake.cfg.client_id.clone()));
    secrets.syncaroo_client_secret = Some(SecretString::new(fake.fake.cfg.client_secret.clone()));
    let mut t = TestApp::with_secrets(store, config_with_syncaroo(&fake.base(), &[]), secrets);
    if let Some(sink) = sink {
        t.app = t.app.with_changes(sink, t.dead_letters.clone());
    }
    t.seed_events_tokens().await;
    syncaroo_tests::seed::fake_credentials(t.app.store.as_ref(), &fake).await;
    syncaroo_tests::seed::rates_in_three_pages(&fake);
    World { t, fake }
}

impl World {
    /// Posts a signed data webhook for the rates; what the stream hands
    /// the worker.
    async fn data_webhook(&self) -> Delivered {
        let body = json!({
            "connectionId": 99, "webhookType": "data", "locationId": "1198",
            "metaData": {"attributeType": "rates", "apiUrl": format!("{}v1/locations/1198/rates", self.fake.base())},
        });
        let signed = sign(body, self.t.secrets.client_secret.expose());
        let req = request(
            "POST",
            "/api/update/",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
            ],
            signed.clone(),
        );
        let resp = handlers::webhook(&self.t.app, req).await;
        assert_eq!(resp.status(), 202, "{}", body_text(&resp));
        Delivered::Target(sync::target_of(&Webhook::parse(signed.as_bytes()).unwrap()))
    }

    /// The status webhook of `events/webhook-status.json`, as delivered.
    async fn status_webhook(&self) -> Delivered {
        let resp = handlers::webhook(&self.t.app, event("webhook-status.json")).await;
        assert_eq!(resp.status(), 202, "{}", body_text(&resp));
        assert_eq!(body_json(&resp)["targetId"], "99#1198#status#-");
        Delivered::Target(sync::target_of(
            &Webhook::parse(event("webhook-status.json").body()).unwrap(),
        ))
    }

    async fn process(&self, d: &Delivered) -> Outcome {
        let policy = syncaroo_tests::fast_policy(&self.t.app);
        sync::process(&self.t.app, self.t.dead_letters.as_ref(), d, &policy).await
    }
}

fn details(entries: &[Entry], detail_type: &str) -> Vec<Value> {
    entries
        .iter()
        .filter(|e| e.detail_type == detail_type)
        .map(|e| serde_json::from_str(&e.detail).expect("Detail is a JSON object"))
        .collect()
}

#[tokio::test]
async fn each_change_is_announced_once_with_its_fields() {
    let w = world(None).await;
    let app = &w.t.app;

    // Syncaroo checks the connection twice: confirmed once.
    for _ in 0..2 {
        let resp = handlers::check_connection(app, event("check-connection.json")).await;
        assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    }
    // A data webhook and its sync; a status webhook and its sync.
    let data = w.data_webhook().await;
    assert_eq!(w.process(&data).await, Outcome::Done);
    assert_eq!(w.process(&data).await, Outcome::Skipped, "nothing new");
    let status = w.status_webhook().await;
    assert_eq!(w.process(&status).await, Outcome::Done);
    // The platform revokes the connection (the events/ file, IAM-signed).
    let resp = syncaroo_tests::route_as(
        app,
        "AdminFunction",
        event("platform-revoke-connection.json"),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));

    let entries = w.t.changes.entries();
    let types: Vec<&str> = entries.iter().map(|e| e.detail_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "Syncaroo Connection Confirmed",
            "Syncaroo Data Synced",
            "Syncaroo Location Status Changed",
            "Syncaroo Connection Revoked"
        ]
    );
    for e in &entries {
        assert_eq!(
            (e.source.as_str(), e.event_bus_name.as_str()),
            ("syncaroo-bridge", "default")
        );
    }
    let now = at(EVENTS_NOW * 1000);
    assert_eq!(
        details(&entries, "Syncaroo Connection Confirmed"),
        [json!({"connectionId": "99", "userId": "1", "confirmedAt": now})]
    );
    assert_eq!(
        details(&entries, "Syncaroo Data Synced"),
        [json!({
            "connectionId": "99", "userId": "1", "locationId": "1198",
            "attributeType": "rates", "fetchedAt": now, "pages": 3,
            "deleted": false, "recordCount": 3,
            "records": [
                {"rate": "hourly", "amount": 10},
                {"rate": "daily", "amount": 60},
                {"rate": "weekly", "amount": 250}
            ],
        })]
    );
    assert_eq!(
        details(&entries, "Syncaroo Location Status Changed"),
        [json!({
            "connectionId": "99", "userId": "1", "locationId": "1198",
            "receivedAt": now,
            "metaData": {"status": "closed", "reason": "lockdown", "until": "2026-12-01"},
        })]
    );
    assert_eq!(
        details(&entries, "Syncaroo Connection Revoked"),
        [json!({"connectionId": "99", "userId": "1", "revokedAt": now})]
    );
    assert!(w.t.dead_letters.all().is_empty());
}

/// Only a status newer than the stored one is a change: one delivered out
/// of order (acked earlier, processed later) is covered by the newer one,
/// and no event.
#[tokio::test]
async fn an_older_status_processed_late_is_no_change() {
    let w = world(None).await;
    let older = w.status_webhook().await;
    w.t.clock.advance(5);
    let newer = w.status_webhook().await;
    assert_eq!(w.process(&newer).await, Outcome::Done);
    assert_eq!(w.process(&older).await, Outcome::Skipped);
    let found = details(&w.t.changes.entries(), "Syncaroo Location Status Changed");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["receivedAt"], at((EVENTS_NOW + 5) * 1000));
}

/// The sync worker puts its entry before it records the fetch done: a
/// failed put (the sink's own retries spent) fails the attempt, which is
/// retried with the fetch, and puts nothing more itself (no retries
/// stacked on the sink's); a put that fails once then works is one entry.
#[tokio::test]
async fn a_failed_put_is_retried_with_the_fetch_then_dead_lettered() {
    let flaky = Flaky::failing(1);
    let w = world(Some(flaky.clone())).await;
    let data = w.data_webhook().await;
    let out = w.process(&data).await;
    assert!(matches!(out, Outcome::Retry(_)), "{out:?}");
    assert_eq!(w.process(&data).await, Outcome::Done);
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 2, "one put per attempt");
    assert_eq!(flaky.kept.entries().len(), 1, "one entry");

    let flaky = Flaky::failing(usize::MAX);
    let w = world(Some(flaky.clone())).await;
    let data = w.data_webhook().await;
    let max = w.t.app.config.sync_max_attempts;
    for attempt in 1..max {
        let out = w.process(&data).await;
        assert!(
            matches!(out, Outcome::Retry(ref r) if r.contains("ThrottlingException")),
            "attempt {attempt}: {out:?}"
        );
    }
    assert!(matches!(w.process(&data).await, Outcome::Failed(_)));
    // One put per attempt, then the give-up's own `Sync Failed` entry.
    assert_eq!(flaky.calls.load(Ordering::SeqCst) as u64, max + 1);
    // Dead-lettered like a failed fetch; the `Sync Failed` entry EventBridge
    // refused too goes to the dead-letter queue after it. Replayed, the
    // webhook is fetched and announced again.
    let messages = w.t.dead_letters.messages();
    assert_eq!(messages.len(), 2);
    let letter = DeadLetter::parse(&messages[0]);
    assert!(matches!(&letter, DeadLetter::Webhook { reason, .. } if reason.contains("PutEvents")));
    assert!(
        matches!(DeadLetter::parse(&messages[1]), DeadLetter::Change { ref entry, .. } if entry.detail_type == "Syncaroo Sync Failed"),
        "{}",
        messages[1]
    );
    flaky.fail.store(0, Ordering::SeqCst);
    let replayed = platform_ops::replay(&w.t.app, &letter).await.unwrap();
    assert!(
        matches!(replayed, Replayed::Recorded(ref r) if r.contains("99#1198#rates#-")),
        "{replayed:?}"
    );
    assert_eq!(w.process(&data).await, Outcome::Done);
    assert_eq!(
        details(&flaky.kept.entries(), "Syncaroo Data Synced").len(),
        1
    );
}

/// A status whose change event cannot be put is dead-lettered like a failed
/// fetch. Replayed while it is still the location's latest status webhook,
/// it is applied and announced; once a later one came, the replay is
/// refused as superseded (it would stand over the later status).
#[tokio::test]
async fn a_status_dead_letter_is_replayed_unless_a_later_status_came() {
    let flaky = Flaky::failing(usize::MAX);
    let w = world(Some(flaky.clone())).await;
    let status = w.status_webhook().await;
    let max = w.t.app.config.sync_max_attempts;
    for _ in 1..max {
        assert!(matches!(w.process(&status).await, Outcome::Retry(_)));
    }
    assert!(matches!(w.process(&status).await, Outcome::Failed(_)));
    let letter = DeadLetter::parse(&w.t.dead_letters.messages()[0]);
    assert!(
        matches!(&letter, DeadLetter::Webhook { hook, .. } if hook.webhook_type() == syncaroo_shared::webhook::WebhookType::Status),
        "{letter:?}"
    );
    flaky.fail.store(0, Ordering::SeqCst);
    let replayed = platform_ops::replay(&w.t.app, &letter).await.unwrap();
    assert_eq!(
        replayed,
        Replayed::Recorded(
            json!({"status": "accepted", "targetId": "99#1198#status#-"}).to_string()
        )
    );
    assert_eq!(w.process(&status).await, Outcome::Done);
    assert_eq!(
        details(&flaky.kept.entries(), "Syncaroo Location Status Changed").len(),
        1
    );
    // A later status webhook since the dead letter: its replay is refused.
    w.t.clock.advance(1);
    w.status_webhook().await;
    assert_eq!(
        platform_ops::replay(&w.t.app, &letter).await.unwrap(),
        Replayed::Superseded("99#1198#status#-".into())
    );
}

/// A confirmation is stored whatever EventBridge says: the answer is 200,
/// the entry goes to the dead-letter queue, and its replay puts the very
/// same entry.
#[tokio::test]
async fn a_confirmation_whose_put_fails_is_dead_lettered_and_replayed() {
    let flaky = Flaky::failing(usize::MAX);
    let w = world(Some(flaky.clone())).await;
    let resp = handlers::check_connection(&w.t.app, event("check-connection.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        1,
        "one put: the SDK retried it"
    );
    let messages = w.t.dead_letters.messages();
    assert_eq!(messages.len(), 1);
    let DeadLetter::Change { entry, reason } = DeadLetter::parse(&messages[0]) else {
        panic!("a change-event dead letter: {}", messages[0]);
    };
    assert_eq!(entry.detail_type, "Syncaroo Connection Confirmed");
    assert!(reason.contains("ThrottlingException"), "{reason}");

    flaky.fail.store(0, Ordering::SeqCst);
    let letter = DeadLetter::parse(&messages[0]);
    assert_eq!(
        platform_ops::replay(&w.t.app, &letter).await.unwrap(),
        Replayed::Put("Syncaroo Connection Confirmed".into())
    );
    assert_eq!(flaky.kept.entries(), vec![entry]);
}

/// Not a dead letter of ours (Lambda's record of a stream batch it gave
/// up on, or garbage): shown, refused by replay, nothing written.
#[tokio::test]
async fn a_dead_letter_that_is_not_ours_is_refused() {
    let w = world(None).await;
    let before =
        w.t.app
            .store
            .list_connections(None, None, 10)
            .await
            .unwrap();
    for body in [
        r#"{"requestContext":{},"DDBStreamBatchInfo":{"shardId":"s","startSequenceNumber":"1"}}"#,
        "not json",
        r#"{"kind":"changeEvent","entry":{"Source":1}}"#,
    ] {
        let letter = DeadLetter::parse(body);
        assert!(matches!(letter, DeadLetter::Other { .. }), "{body}");
        let err = platform_ops::replay(&w.t.app, &letter).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid_request: cannot replay"),
            "{err}"
        );
    }
    assert_eq!(
        w.t.app
            .store
            .list_connections(None, None, 10)
            .await
            .unwrap(),
        before
    );
    assert!(w.t.changes.entries().is_empty());
}

/// What the platform receives holds ids, times and Syncaroo's data: no
/// token of ours or Syncaroo's, no secret.
#[tokio::test]
async fn no_entry_or_dead_letter_carries_a_token_or_secret() {
    let w = world(None).await;
    handlers::check_connection(&w.t.app, event("check-connection.json")).await;
    let d = w.data_webhook().await;
    w.process(&d).await;
    let s = w.status_webhook().await;
    w.process(&s).await;
    syncaroo_tests::route_as(
        &w.t.app,
        "AdminFunction",
        event("platform-revoke-connection.json"),
    )
    .await;
    let creds = syncaroo_shared::store::CredentialsStore::get_credentials(w.t.app.store.as_ref())
        .await
        .unwrap()
        .unwrap();
    let mut all: Vec<String> =
        w.t.changes
            .entries()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
    all.extend(w.t.dead_letters.messages());
    assert_eq!(w.t.changes.entries().len(), 4);
    let secrets = [
        events_creds::ACCESS.to_string(),
        events_creds::REFRESH.to_string(),
        w.t.secrets.client_secret.expose().to_string(),
        w.t.secrets.session_key.expose().to_string(),
        creds.access_token.expose().to_string(),
        creds.refresh_token.expose().to_string(),
        w.fake.fake.cfg.client_secret.clone(),
    ];
    for text in &all {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a secret in {text}");
        }
        assert!(
            !text.contains("scb_at_") && !text.contains("scb_rt_"),
            "{text}"
        );
    }
}

/// The dead-letter message of a given-up webhook parses back to what was
/// sent, so a replay records the same notification.
#[tokio::test]
async fn a_webhook_dead_letter_round_trips() {
    let dlq = MemoryDeadLetters::default();
    let w = world(None).await;
    // What the worker dead-letters when it gives a status target up.
    let Delivered::Target(target) = w.status_webhook().await else {
        panic!("a status target")
    };
    let state = w.t.app.store.get_target(&target).await.unwrap().unwrap();
    let e = syncaroo_shared::deadletter::GivenUp {
        id: target.id(),
        connection_id: target.connection_id.clone(),
        webhook_type: syncaroo_shared::webhook::WebhookType::Status,
        location_id: target.location_id.clone(),
        payload: state.payload.clone(),
        received_at_ms: state.notified_at_ms,
        attempts: 1,
    };
    syncaroo_shared::deadletter::DeadLetters::send(&dlq, &e, "gave up")
        .await
        .unwrap();
    let DeadLetter::Webhook {
        hook,
        received_at_ms,
        reason,
    } = DeadLetter::parse(&dlq.messages()[0])
    else {
        panic!("a webhook dead letter");
    };
    assert_eq!(
        (received_at_ms, reason.as_str()),
        (e.received_at_ms, "gave up")
    );
    assert_eq!(hook.stored_payload(), e.payload);
}

/// On moto: a bus with a rule whose SQS target is a queue, as a platform
/// subscribes. After confirmation, a webhook and its sync, a status change
/// and a revocation, the test reads the four entries off the queue in
/// EventBridge's envelope.
mod on_moto {
    use super::*;
    use syncaroo_tests::local_aws;

    struct Rig {
        sdk: aws_config::SdkConfig,
        bus: String,
        queue_url: String,
    }

    /// A fresh bus, and a queue its rule for our four detail types targets.
    async fn rig() -> Option<Rig> {
        if !local_aws::eventbridge_available() {
            return None;
        }
        let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
        let types: Vec<&str> = syncaroo_shared::changes::Change::ALL
            .iter()
            .map(|c| c.detail_type())
            .collect();
        let pattern = json!({"source": ["syncaroo-bridge"], "detail-type": types});
        let (bus, queue_url) = local_aws::bus_with_queue(&sdk, &pattern.to_string()).await;
        Some(Rig {
            sdk,
            bus,
            queue_url,
        })
    }

    async fn queue(sdk: &aws_config::SdkConfig, prefix: &str) -> String {
        local_aws::sqs_queue(sdk, prefix).await.0
    }

    async fn drain(sdk: &aws_config::SdkConfig, url: &str, n: usize) -> Vec<String> {
        local_aws::drain(sdk, url, n, 20).await
    }

    /// The app of `world`, putting to `bus` on moto, dead letters to `dlq`.
    async fn world_on(bus: &str, sdk: &aws_config::SdkConfig, dlq: &str) -> World {
        let w = world(None).await;
        let mut config = w.t.app.config.as_ref().clone();
        config.event_bus_name = bus.into();
        config.dead_letter_queue_url = dlq.into();
        let mut t = TestApp::with_secrets(w.t.app.store.clone(), config, w.t.secrets.clone());
        t.app = t.app.with_aws_changes(sdk);
        World { t, fake: w.fake }
    }

    #[tokio::test]
    async fn the_four_events_reach_a_rules_sqs_target() {
        let Some(rig) = rig().await else { return };
        let dlq = queue(&rig.sdk, "dlq").await;
        let w = world_on(&rig.bus, &rig.sdk, &dlq).await;
        let resp = handlers::check_connection(&w.t.app, event("check-connection.json")).await;
        assert_eq!(resp.status(), 200);
        let d = w.data_webhook().await;
        assert_eq!(w.process(&d).await, Outcome::Done);
        let s = w.status_webhook().await;
        assert_eq!(w.process(&s).await, Outcome::Done);
        let resp = syncaroo_tests::route_as(
            &w.t.app,
            "AdminFunction",
            event("platform-revoke-connection.json"),
        )
        .await;
        assert_eq!(resp.status(), 200);

        let bodies = drain(&rig.sdk, &rig.queue_url, 4).await;
        let events: Vec<Value> = bodies
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        let mut types: Vec<&str> = events
            .iter()
            .map(|e| e["detail-type"].as_str().unwrap())
            .collect();
        types.sort();
        assert_eq!(
            types,
            [
                "Syncaroo Connection Confirmed",
                "Syncaroo Connection Revoked",
                "Syncaroo Data Synced",
                "Syncaroo Location Status Changed"
            ]
        );
        let now = at(EVENTS_NOW * 1000);
        for e in &events {
            assert_eq!(e["source"], "syncaroo-bridge");
            assert_eq!(e["detail"]["connectionId"], "99");
            assert_eq!(e["detail"]["userId"], "1");
            match e["detail-type"].as_str().unwrap() {
                "Syncaroo Data Synced" => {
                    assert_eq!(
                        e["detail"]["records"][2],
                        json!({"rate": "weekly", "amount": 250})
                    );
                    assert_eq!(
                        (
                            &e["detail"]["locationId"],
                            &e["detail"]["attributeType"],
                            &e["detail"]["fetchedAt"]
                        ),
                        (&json!("1198"), &json!("rates"), &json!(now))
                    );
                }
                "Syncaroo Location Status Changed" => {
                    assert_eq!(e["detail"]["metaData"]["status"], "closed");
                    assert_eq!(e["detail"]["receivedAt"], now);
                }
                "Syncaroo Connection Confirmed" => assert_eq!(e["detail"]["confirmedAt"], now),
                _ => assert_eq!(e["detail"]["revokedAt"], now),
            }
        }
        assert!(
            local_aws::drain(&rig.sdk, &dlq, 1, 2).await.is_empty(),
            "nothing dead-lettered"
        );
    }

    /// EventBridge refuses (the bus does not exist): the confirmation is
    /// still answered, the entry lands on the SQS dead-letter queue; once
    /// the bus exists, replaying that message delivers the event.
    #[tokio::test]
    async fn a_refused_put_is_dead_lettered_to_sqs_and_replayed() {
        let Some(rig) = rig().await else { return };
        let dlq = queue(&rig.sdk, "dlq").await;
        let missing = local_aws::unique_table("no-bus");
        let w = world_on(&missing, &rig.sdk, &dlq).await;
        let resp = handlers::check_connection(&w.t.app, event("check-connection.json")).await;
        assert_eq!(resp.status(), 200, "{}", body_text(&resp));
        let letters = drain(&rig.sdk, &dlq, 1).await;
        assert_eq!(letters.len(), 1);
        let DeadLetter::Change { mut entry, reason } = DeadLetter::parse(&letters[0]) else {
            panic!("{}", letters[0]);
        };
        assert!(reason.contains("ResourceNotFoundException"), "{reason}");
        // The operator fixes the bus name; the replay puts the entry.
        entry.event_bus_name = rig.bus.clone();
        let replayed = platform_ops::replay(&w.t.app, &DeadLetter::Change { entry, reason })
            .await
            .unwrap();
        assert_eq!(
            replayed,
            Replayed::Put("Syncaroo Connection Confirmed".into())
        );
        let got = drain(&rig.sdk, &rig.queue_url, 1).await;
        let e: Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(e["detail-type"], "Syncaroo Connection Confirmed");
    }
}
