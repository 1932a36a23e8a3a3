//! `syncaroo-admin`, the binary, against DynamoDB Local and moto's SQS and
//! EventBridge (started by `scripts/test.sh`): the demo flow's connection
//! listed and shown, listings put / deleted / imported (a malformed file
//! refused with nothing changed), a revocation with its event on a rule's
//! queue, credentials status, and dead letters listed and re-driven.

use serde_json::{json, Value};
use std::process::Output;
use syncaroo_shared::deadletter::{DeadLetters, SqsDeadLetters};
use syncaroo_shared::model::UserId;
use syncaroo_shared::store::{DynamoStore, EventStore, ListingStore};

use syncaroo_tests::local_aws::{self, unique_table as unique};

/// DynamoDB Local, and moto's SQS and EventBridge, or a skip notice.
fn local_aws() -> bool {
    local_aws::dynamodb_available() && local_aws::eventbridge_available()
}

struct Stack {
    sdk: aws_config::SdkConfig,
    table: String,
    queue_url: String,
    bus: String,
    /// Where a rule on the bus sends every change event.
    subscriber: String,
}

impl Stack {
    /// The CLI with this stack's names; `(status, stdout, stderr)`.
    fn admin(&self, args: &[&str]) -> (i32, String, String) {
        let out: Output = std::process::Command::new(env!("CARGO_BIN_EXE_syncaroo-admin"))
            .args(["--table", &self.table, "--queue-url", &self.queue_url])
            .args(["--event-bus", &self.bus])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn admin_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.admin(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap()
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), &self.table)
    }

    async fn received(&self, url: &str, n: usize) -> Vec<Value> {
        local_aws::drain(&self.sdk, url, n, 20)
            .await
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

/// A table with the demo flow run through the local runner on it (the
/// simulator as Syncaroo), a dead-letter queue, a bus and a subscriber.
async fn stack() -> Option<(Stack, String)> {
    if !local_aws() {
        return None;
    }
    let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
    let table = unique("admin-cli");
    let fake = syncaroo_sim::FakeSyncaroo::start_local(syncaroo_sim::FakeConfig::default())
        .await
        .unwrap();
    let running = syncaroo_local::start(syncaroo_local::Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        store: syncaroo_local::StoreKind::Dynamodb,
        table: table.clone(),
        syncaroo_base: fake.base(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut sim = syncaroo_sim::run::SimOptions::new(
        &running.setup.site_uri,
        &running.setup.your_client_id,
        &running.setup.your_client_secret,
    );
    sim.admin_key = Some(running.admin_key.clone());
    sim.refresh_grace = std::time::Duration::from_secs(1);
    let report = syncaroo_sim::run::run(&sim, &fake.fake).await;
    assert!(report.passed(), "{}", report.table());
    running.stop();

    let (queue_url, _) = local_aws::sqs_queue(&sdk, "dlq").await;
    let (bus, subscriber) =
        local_aws::bus_with_queue(&sdk, r#"{"source":["syncaroo-bridge"]}"#).await;
    Some((
        Stack {
            sdk,
            table,
            queue_url,
            bus,
            subscriber,
        },
        sim.connection_id,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_listings_and_credentials_on_dynamodb_local() {
    let Some((s, conn)) = stack().await else {
        return;
    };
    // The demo flow's connection, as a table and as JSON.
    let (code, out, _) = s.admin(&["connections", "list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CONNECTION  USER  STATUS"), "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{conn} "))
            && l.contains(" 1 ")
            && l.contains("confirmed")),
        "{out}"
    );
    let listed = s.admin_json(&["connections", "list", "--user", "1"]);
    let mine: Vec<&Value> = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["connectionId"] == conn.as_str())
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["status"], "confirmed");
    assert!(mine[0]["lastWebhookAt"].is_i64(), "the demo sent webhooks");
    assert_eq!(s.admin_json(&["connections", "show", &conn]), *mine[0]);
    let (code, _, err) = s.admin(&["connections", "show", "424242"]);
    assert_eq!(
        (code, err.trim()),
        (1, "syncaroo-admin: no such connection")
    );

    // Listings: put replaces, a malformed file changes nothing, delete.
    let dir = std::env::temp_dir().join(unique("listings"));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(
        &good,
        json!({"locations": {"L1": {"ID": "L1", "name": "Loft", "status": "active",
            "resources": [{"ID": "R1", "name": "Desk", "status": "active", "type": "desk"}]}}})
        .to_string(),
    )
    .unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"locations": {"L2": {"ID": "OTHER", "name": "x", "status": "active"}}}"#,
    )
    .unwrap();
    let store = s.store();
    let user = UserId::parse("1").unwrap();
    let ids = |locs: Vec<syncaroo_shared::model::Location>| {
        locs.into_iter().map(|l| l.id).collect::<Vec<_>>()
    };
    let put = s.admin_json(&["listings", "put", "1", good.to_str().unwrap()]);
    assert_eq!(put, json!({"userId": "1", "locations": 1}));
    assert_eq!(ids(store.list_locations(&user).await.unwrap()), ["L1"]);
    let (code, _, err) = s.admin(&["listings", "put", "1", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid_request"), "{err}");
    assert_eq!(ids(store.list_locations(&user).await.unwrap()), ["L1"]);
    s.admin_json(&["listings", "delete", "1"]);
    assert!(store.list_locations(&user).await.unwrap().is_empty());
    let file = dir.join("import.json");
    std::fs::write(
        &file,
        json!([{"userId": "1", "locations": {"L3": {"ID": "L3", "name": "Mill", "status": "active"}}},
               {"userId": "2", "locations": {}}])
        .to_string(),
    )
    .unwrap();
    let imported = s.admin_json(&["listings", "import", "--replace", file.to_str().unwrap()]);
    assert_eq!(imported, json!({"locations": 1, "replaced": true}));
    assert_eq!(ids(store.list_locations(&user).await.unwrap()), ["L3"]);

    // The demo connected our Syncaroo API credentials.
    let (code, out, _) = s.admin(&["credentials", "status"]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l == "status: active"), "{out}");
    assert!(!out.contains("token"), "no token field shown: {out}");

    // Revoke: refused from now on, and announced on the bus.
    let revoked = s.admin_json(&["connections", "revoke", &conn]);
    assert_eq!(revoked["status"], "revoked");
    let got = s.received(&s.subscriber, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["detail-type"], "Syncaroo Connection Revoked");
    assert_eq!(got[0]["detail"]["connectionId"], conn.as_str());
    let listed = s.admin_json(&["connections", "show", &conn]);
    assert_eq!(listed["status"], "revoked");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed() {
    let Some((s, conn)) = stack().await else {
        return;
    };
    let store = s.store();
    store.ensure_table().await.unwrap();
    // What the functions send when they give up: a data webhook's fetch,
    // and a change event EventBridge refused.
    let dlq = SqsDeadLetters::new(aws_sdk_sqs::Client::new(&s.sdk), &s.queue_url);
    let payload = json!({"connectionId": conn.parse::<i64>().unwrap(), "webhookType": "data",
        "locationId": "1198", "metaData": {"attributeType": "rates",
        "apiUrl": "https://app.syncaroo.com/api/v1/locations/1198/rates"}});
    let event = syncaroo_shared::deadletter::GivenUp {
        id: "dead-1".into(),
        connection_id: syncaroo_shared::model::ConnectionId::parse(&conn).unwrap(),
        webhook_type: syncaroo_shared::webhook::WebhookType::Data,
        location_id: "1198".into(),
        payload: payload.to_string(),
        received_at_ms: 1_000,
        attempts: 5,
    };
    dlq.send(&event, "HTTP 500 from Syncaroo").await.unwrap();
    let config = syncaroo_shared::Config::from_lookup(|k| match k {
        "EVENT_BUS_NAME" => Some(s.bus.clone()),
        _ => None,
    })
    .unwrap();
    let entry = syncaroo_shared::changes::confirmed_entry(
        &config,
        &event.connection_id,
        &UserId::parse("1").unwrap(),
        1_795_806_000,
    );
    dlq.send_entry(&entry, "PutEvents failed: ThrottlingException")
        .await
        .unwrap();
    // And one that is not ours (Lambda's record of a stream batch).
    aws_sdk_sqs::Client::new(&s.sdk)
        .send_message()
        .queue_url(&s.queue_url)
        .message_body(r#"{"requestContext":{},"DDBStreamBatchInfo":{"shardId":"x"}}"#)
        .send()
        .await
        .unwrap();

    let target = syncaroo_shared::store::SyncTarget {
        connection_id: event.connection_id.clone(),
        location_id: "1198".into(),
        attribute_type: "rates".into(),
        resource_id: None,
    };
    let before = store
        .get_target(&target)
        .await
        .unwrap()
        .map(|t| t.notifications);

    let (code, out, _) = s.admin(&["dead-letters", "list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("MESSAGE"), "{out}");
    for want in ["webhook", "changeEvent", "other", "HTTP 500 from Syncaroo"] {
        assert!(out.contains(want), "{want} in {out}");
    }
    assert_eq!(
        s.admin_json(&["dead-letters", "list"])["deadLetters"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "listing leaves them on the queue"
    );

    let (code, out, _) = s.admin(&["--json", "dead-letters", "replay"]);
    assert_eq!(code, 1, "one message could not be replayed: {out}");
    let replayed: Value = serde_json::from_str(&out).unwrap();
    let results: Vec<(String, String)> = replayed["replayed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(results.len(), 3, "{results:?}");
    for (kind, result) in &results {
        match kind.as_str() {
            "webhook" => assert!(result.starts_with("recorded again"), "{result}"),
            "changeEvent" => assert_eq!(result, "put: Syncaroo Connection Confirmed"),
            _ => assert!(
                result.starts_with("left on the queue: invalid_request: cannot replay"),
                "{result}"
            ),
        }
    }
    // The webhook is a new notification of its target, for the worker.
    let after = store.get_target(&target).await.unwrap().unwrap();
    assert!(after.due());
    assert_eq!(after.notifications, before.unwrap_or(0) + 1);
    // The change event reached the bus's subscriber.
    let got = s.received(&s.subscriber, 1).await;
    assert_eq!(got[0]["detail-type"], "Syncaroo Connection Confirmed");
    // Only the foreign message is left.
    let left = s.admin_json(&["dead-letters", "list"]);
    assert_eq!(left["deadLetters"].as_array().unwrap().len(), 1);
    assert_eq!(left["deadLetters"][0]["kind"], "other");
}

/// Without a queue URL the dead-letter commands say what to pass, and
/// nothing is touched.
#[test]
fn dead_letters_without_a_queue_say_what_to_pass() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncaroo-admin"))
        .args(["dead-letters", "list"])
        .env_remove("DEAD_LETTER_QUEUE_URL")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--queue-url"), "{err}");
}

/// `data list` and `data show` read the demo's synced data as the platform
/// API does; `data backfill` logs a head stored before the data log (its
/// log attributes and entry removed, as an earlier version left it), once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_is_listed_shown_and_backfilled() {
    use syncaroo_shared::store::keys::{data_log_entry_sk, data_log_pk, data_sk, sync_pk};
    let Some((s, conn)) = stack().await else {
        return;
    };
    let listed = s.admin_json(&["data", "list", "1"]);
    let items = listed["items"].as_array().unwrap().clone();
    assert!(!items.is_empty(), "the demo synced data: {listed}");
    let first = &items[0];
    let (location, attr) = (
        first["locationId"].as_str().unwrap(),
        first["attributeType"].as_str().unwrap(),
    );
    let mut show = vec!["data", "show", "1", &conn, location, attr];
    if let Some(r) = first["resourceId"].as_str() {
        show.extend(["--resource", r]);
    }
    assert_eq!(s.admin_json(&show)["items"][0], *first);
    let health = s.admin_json(&["sync", "status", &conn]);
    assert_eq!(health["connectionId"], conn.as_str());
    assert!(health["sync"]["targets"].as_u64().unwrap() >= 1, "{health}");
    assert_eq!(health["syncarooCredentials"], "ok");
    let (code, _, err) = s.admin(&["data", "list", "1", "--cursor", "nope"]);
    assert_eq!(code, 1, "{err}");

    let store = s.store();
    let c = syncaroo_shared::model::ConnectionId::parse(&conn).unwrap();
    let (pk, sk) = (
        sync_pk(&c, location),
        data_sk(attr, first["resourceId"].as_str()),
    );
    let head = store.raw_item(&pk, &sk).await.unwrap();
    let seq: u64 = head["log_seq"].as_n().unwrap().parse().unwrap();
    let user = UserId::parse("1").unwrap();
    let client = store.client();
    client
        .update_item()
        .table_name(store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.clone()))
        .update_expression("REMOVE #u, #s")
        .expression_attribute_names("#u", "user")
        .expression_attribute_names("#s", "log_seq")
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name(store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(data_log_pk(&user)),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(data_log_entry_sk(seq)),
        )
        .send()
        .await
        .unwrap();
    let before = s.admin_json(&["data", "list", "1"]);
    assert_eq!(before["items"].as_array().unwrap().len(), items.len() - 1);

    // A status stored before erasure's index: the backfill indexes it.
    let status_pk = sync_pk(&c, location);
    client
        .update_item()
        .table_name(store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(status_pk))
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("STATUS".into()),
        )
        .update_expression("REMOVE gsi1pk, gsi1sk")
        .condition_expression("attribute_exists(pk)")
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.admin_json(&["data", "backfill"]),
        json!({"logged": 1, "indexed": 1})
    );
    let after = s.admin_json(&[
        "data",
        "list",
        "1",
        "--cursor",
        before["cursor"].as_str().unwrap(),
    ]);
    assert_eq!(after["items"].as_array().unwrap().len(), 1);
    assert_eq!(after["items"][0]["data"], first["data"]);
    assert_eq!(
        s.admin_json(&["data", "backfill"]),
        json!({"logged": 0, "indexed": 0})
    );
}

/// `users erase` on DynamoDB Local: calls until nothing of the user is
/// left (the settle wait included), then their data, connections and
/// listings are gone and `Syncaroo User Erased` reaches the subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_erased() {
    let Some((s, conn)) = stack().await else {
        return;
    };
    let before = s.admin_json(&["connections", "list", "--user", "1"]);
    let held = before["connections"].as_array().unwrap().len();
    assert!(held >= 1, "{before}");
    let erased = s.admin_json(&["users", "erase", "1"]);
    assert_eq!(erased["done"], true, "{erased}");
    assert!(erased["calls"].as_u64().unwrap() >= 2, "{erased}");
    assert_eq!(erased["removed"]["connections"], held, "{erased}");
    assert!(erased["removed"]["data"].as_u64().unwrap() >= 1, "{erased}");
    let listed = s.admin_json(&["data", "list", "1"]);
    assert_eq!(listed["items"], json!([]), "{listed}");
    let conns = s.admin_json(&["connections", "list", "--user", "1"]);
    assert_eq!(conns["connections"], json!([]));
    let (code, _, err) = s.admin(&["sync", "status", &conn]);
    assert_eq!(code, 1, "{err}");
    let events = s.received(&s.subscriber, 2).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"Syncaroo User Erased"), "{kinds:?}");
    let again = s.admin_json(&["users", "erase", "1"]);
    assert_eq!(
        (again["calls"].clone(), again["removed"].clone()),
        (json!(1), json!({}))
    );
}

/// `secrets rotate-client-secret` on moto's Secrets Manager: a new version
/// whose only change is `clientSecret`, the old one staged `AWSPREVIOUS`,
/// the new setup block printed; the functions' secrets source then takes
/// both during the grace and only the new one after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_secret_is_rotated_with_a_grace() {
    const OLD: &str = "old-secret-0123456789abcdef0123456789";
    use std::sync::Arc;
    use std::time::Duration;
    use syncaroo_shared::clock::{Clock, ManualClock, SystemClock};
    use syncaroo_shared::secrets::{CachedSecrets, SecretUsed, SecretsManagerSource};
    let Some(sm) = local_aws::secrets_client().await else {
        return;
    };
    let id = unique("rotate");
    let doc = "{\"clientSecret\": \"old-secret-0123456789abcdef0123456789\",  \"tokenHashKey\":\"k\\u00e9y-0123456789abcdef0123456789abcdef\"}";
    sm.create_secret()
        .name(&id)
        .secret_string(doc)
        .send()
        .await
        .unwrap();
    let out: Value = {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_syncaroo-admin"))
            .args([
                "--json",
                "secrets",
                "rotate-client-secret",
                "--secret-id",
                &id,
            ])
            .args([
                "--site-uri",
                "https://bridge.example/",
                "--client-id",
                "cid",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let new = out["setup"]["yourClientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out["setup"]["yourClientId"], "cid");
    assert_eq!(
        out["setup"]["authTokenUri"],
        "https://bridge.example/api/oauth/token"
    );
    let stored = sm.get_secret_value().secret_id(&id).send().await.unwrap();
    assert_eq!(
        stored.secret_string().unwrap(),
        doc.replace("old-secret-0123456789abcdef0123456789", &new),
        "every other byte kept"
    );
    let previous = sm
        .get_secret_value()
        .secret_id(&id)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(previous.secret_string().unwrap(), doc);

    // The functions' view, with the session and hash keys in another
    // secret as the template has them.
    let other = unique("keys");
    sm.create_secret()
        .name(&other)
        .secret_string(
            r#"{"sessionKey": "session-key-0123456789abcdef0123456789", "adminKey": "admin-key-0123456789abcdef0123456789"}"#,
        )
        .send()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let source = SecretsManagerSource::new(sm.clone(), format!("{id},{other}"));
    let cached = CachedSecrets::new(source, clock.clone(), Duration::from_secs(300));
    let grace = Duration::from_secs(86_400);
    let used = |s: String| {
        let cached = &cached;
        async move { cached.client_secret_used(grace, |k| k == s).await.unwrap() }
    };
    assert_eq!(used(new.clone()).await, Some(SecretUsed::Current));
    assert_eq!(used(OLD.into()).await, Some(SecretUsed::Previous));
    assert_eq!(used("guess".into()).await, None);
    clock.advance(86_400 + 60);
    assert_eq!(used(OLD.into()).await, None);
    assert_eq!(used(new).await, Some(SecretUsed::Current));
}
