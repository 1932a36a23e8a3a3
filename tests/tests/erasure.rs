//! Erasing a user (`DELETE /api/platform/users/{userId}`), fed by
//! `events/platform-erase-user.json` as API Gateway hands it over, on the
//! in-memory store and on DynamoDB Local. User 1 holds two connections
//! (one revoked before), tokens, an unredeemed code with its consent form,
//! listings, notified and failed targets, synced data large enough to be
//! chunked, a status, a legacy status event and dead letters; user 2
//! holds the same kinds. After the erasure nothing of user 1 is left (on
//! DynamoDB, a scan of the whole table finds no item naming them or their
//! connections) and every item of user 2 is as it was.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use syncaroo_shared::changes;
use syncaroo_shared::deadletter::{DeadLetters, GivenUp};
use syncaroo_shared::model::{AuthCodeRecord, ConnectionId, UserId};
use syncaroo_shared::store::datalog::DataRead;
use syncaroo_shared::store::{
    DynamoStore, EventRecord, EventStatus, GiveUp, LocationStatus, MemoryStore, Store, SyncTarget,
    SyncedData, TargetNote,
};
use syncaroo_shared::webhook::WebhookType;
use syncaroo_tests::{body_json, event, route_as, TestApp, EVENTS_NOW};

const ERASED: &str = "1";
const KEPT: &str = "2";

fn conn(id: &str) -> ConnectionId {
    ConnectionId::parse(id).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

/// A connection made through the token endpoint: its (access, refresh).
async fn connect(t: &TestApp, connection: &str, user: &str) -> (String, String) {
    let code = t.issue_code(connection, user).await;
    let resp = route_as(&t.app, "TokenFunction", t.code_request(&code)).await;
    assert_eq!(resp.status(), 200, "{}", syncaroo_tests::body_text(&resp));
    let b = body_json(&resp);
    (
        b["accessToken"].as_str().unwrap().to_string(),
        b["refreshToken"].as_str().unwrap().to_string(),
    )
}

fn target(connection: &str, location: &str, attr: &str) -> SyncTarget {
    SyncTarget {
        connection_id: conn(connection),
        location_id: location.into(),
        attribute_type: attr.into(),
        resource_id: None,
    }
}

/// Listings, a notified target with data over a megabyte (chunked on
/// DynamoDB), a failed target, a status and a legacy status event.
async fn sync_state(t: &TestApp, u: &str, c: &str, location: &str) {
    let store = t.app.store.as_ref();
    let body = json!({"locations": {location: {
        "ID": location, "name": "Erase me", "status": "active", "resources": []
    }}});
    let listings = syncaroo_shared::platform_ops::parse_push(body.to_string().as_bytes()).unwrap();
    store.replace_listings(&user(u), &listings).await.unwrap();
    let now_ms = EVENTS_NOW * 1000;
    let rates = target(c, location, "rates");
    let failed = target(c, location, "resources");
    for t in [&rates, &failed] {
        store
            .notify_target(&TargetNote {
                target: t.clone(),
                payload: "{}".into(),
                notified_at_ms: now_ms,
            })
            .await
            .unwrap();
        store.start_fetch(t).await.unwrap();
    }
    let up = GiveUp {
        through: 1,
        reason: "HTTP 500",
        attempts: 5,
        at_ms: now_ms,
    };
    store.give_up(&failed, &up).await.unwrap();
    let big = format!(
        "[{}]",
        vec![format!("\"{}\"", "r".repeat(1000)); 1100].join(",")
    );
    let gen = store
        .get_connection(&conn(c))
        .await
        .unwrap()
        .unwrap()
        .generation;
    let stored = store
        .put_synced(&SyncedData {
            target: rates.clone(),
            user: user(u),
            data: big,
            pages: 3,
            fetched_at_ms: now_ms,
            stored_at_ms: now_ms,
            event_id: "e".into(),
            deleted: false,
            connection_gen: Some(gen.clone()),
        })
        .await
        .unwrap();
    assert!(stored);
    store
        .put_location_status(&LocationStatus {
            connection_id: conn(c),
            location_id: location.into(),
            meta: r#"{"status":"active"}"#.into(),
            received_at_ms: now_ms,
            event_id: "s".into(),
            seq: 1,
            connection_gen: Some(gen),
        })
        .await
        .unwrap();
    store
        .record_event(&EventRecord {
            id: format!("{c}:status:{location}:{now_ms}:x"),
            connection_id: conn(c),
            webhook_type: WebhookType::Status,
            location_id: location.into(),
            payload: "{}".into(),
            received_at_ms: now_ms,
            status: EventStatus::Pending,
            attempts: 0,
            error: None,
        })
        .await
        .unwrap();
    let letter = GivenUp {
        id: rates.id(),
        connection_id: conn(c),
        webhook_type: WebhookType::Data,
        location_id: location.into(),
        payload: json!({"connectionId": c, "webhookType": "data", "locationId": location,
            "metaData": {"attributeType": "rates",
                "apiUrl": format!("https://app.syncaroo.com/api/v1/locations/{location}/rates")}})
        .to_string(),
        received_at_ms: now_ms,
        attempts: 5,
    };
    t.dead_letters.send(&letter, "HTTP 500").await.unwrap();
}

/// What both users hold; user 1's tokens.
struct Seeded {
    access: String,
    refresh: String,
    kept_access: String,
}

async fn seed(t: &TestApp) -> Seeded {
    let (access, refresh) = connect(t, "99", ERASED).await;
    connect(t, "98", ERASED).await;
    let (kept_access, _) = connect(t, "77", KEPT).await;
    // An unredeemed code of connection 98, from a consent form.
    let now = t.clock_now();
    let code = AuthCodeRecord {
        hash: t.hash("scb_code_unredeemed"),
        connection_id: conn("98"),
        user_id: user(ERASED),
        client_id: t.app.config.client_id.clone(),
        redirect_uri: t.app.config.redirect_uri.clone(),
        family: "family-unredeemed".into(),
        expires_at: now + 300,
    };
    let store = t.app.store.as_ref();
    store
        .begin_authorization_from(&code, Some(&t.hash("form-csrf-98")), now)
        .await
        .unwrap();
    sync_state(t, ERASED, "99", "1198").await;
    sync_state(t, KEPT, "77", "5000").await;
    store
        .put_listings(&syncaroo_shared::model::UserListings {
            user_id: user(ERASED),
            locations: Default::default(),
        })
        .await
        .unwrap();
    // One connection of user 1 revoked before the erasure.
    syncaroo_shared::platform_ops::revoke_connection(&t.app, &conn("98"))
        .await
        .unwrap()
        .unwrap();
    // A change event that could not be put, naming user 1.
    let entry = changes::revoked_entry(&t.app.config, &conn("98"), &user(ERASED), now);
    t.dead_letters.send_entry(&entry, "refused").await.unwrap();
    Seeded {
        access,
        refresh,
        kept_access,
    }
}

async fn erase(t: &TestApp) -> (u16, Value) {
    let resp = route_as(&t.app, "AdminFunction", event("platform-erase-user.json")).await;
    (resp.status().as_u16(), body_json(&resp))
}

fn erased_events(t: &TestApp) -> usize {
    t.changes
        .entries()
        .iter()
        .filter(|e| e.detail_type == "Syncaroo User Erased")
        .count()
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// The whole table, every page (DynamoDB only).
async fn all_items(d: &DynamoStore) -> Vec<Item> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let out = d
            .client()
            .scan()
            .table_name(d.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        all.extend(out.items().iter().cloned());
        start = out.last_evaluated_key;
        if start.is_none() {
            return all;
        }
    }
}

fn attr(i: &Item, k: &str) -> String {
    i.get(k)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The token families of user 1's connections: every `family` their codes
/// and tokens name.
fn families_of_user_1(items: &[Item]) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| ["99", "98"].contains(&attr(i, "conn").as_str()))
        .map(|i| format!("FAM#{}", attr(i, "family")))
        .collect()
}

/// The items that name user 1 or their connections, and every other item,
/// by key.
fn split(items: &[Item], families: &BTreeSet<String>) -> (Vec<String>, BTreeSet<String>) {
    let mut mine = Vec::new();
    let mut others = BTreeSet::new();
    for i in items {
        let (pk, sk, g) = (attr(i, "pk"), attr(i, "sk"), attr(i, "gsi1pk"));
        let named = [
            "CONN#99",
            "CONN#98",
            "USERCONN#1",
            "HOOKS#99",
            "HOOKS#98",
            "OWNED#99",
            "OWNED#98",
            "USER#1",
            "DATALOG#1",
            "ERASURE#1",
        ]
        .iter()
        .any(|k| pk == *k || g == *k)
            || [
                "SYNC#99#",
                "SYNC#98#",
                "TARGET#99#",
                "TARGET#98#",
                "EVENT#99:",
                "EVENT#98:",
            ]
            .iter()
            .any(|p| pk.starts_with(p))
            || ["99", "98"].contains(&attr(i, "conn").as_str())
            || attr(i, "user") == ERASED
            || families.contains(&pk)
            || families.contains(&g);
        if named {
            mine.push(format!("{pk} | {sk}"));
        } else {
            others.insert(format!("{pk} | {sk} | {g}"));
        }
    }
    (mine, others)
}

async fn nothing_of_user_1_is_left(store: Arc<dyn Store>, dynamo: Option<DynamoStore>) {
    let t = TestApp::with_store(store.clone());
    let s = seed(&t).await;
    let mut families = BTreeSet::new();
    let before = match &dynamo {
        Some(d) => {
            let items = all_items(d).await;
            families = families_of_user_1(&items);
            let (mine, others) = split(&items, &families);
            assert!(mine.len() > 20, "user 1 holds many items: {mine:?}");
            Some(others)
        }
        None => None,
    };

    let (status, first) = erase(&t).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["done"], false);
    let removed = &first["removed"];
    assert_eq!(
        removed["connectionsRevoked"], 1,
        "98 was revoked before: {first}"
    );
    assert_eq!(removed["connections"], 2, "{first}");
    assert_eq!(removed["deadLetters"], 2, "{first}");
    for kind in [
        "codes",
        "tokens",
        "consentForms",
        "listings",
        "targets",
        "statusEvents",
        "data",
        "statuses",
        "dataLog",
    ] {
        assert!(removed[kind].as_u64().unwrap_or(0) >= 1, "{kind}: {first}");
    }
    assert_eq!(erased_events(&t), 0, "not done yet");

    // Found nothing, but too soon after the erasure began to prove it.
    let (status, again) = erase(&t).await;
    assert_eq!((status, &again["removed"]), (202, &json!({})), "{again}");
    t.clock.advance(3);
    let (status, done) = erase(&t).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done, json!({"userId": "1", "removed": {}, "done": true}));
    assert_eq!(erased_events(&t), 1);
    let (status, later) = erase(&t).await;
    assert_eq!((status, later["done"].clone()), (200, json!(true)));
    assert_eq!(erased_events(&t), 1, "put once");

    // Nothing of user 1 through any door.
    let u1 = user(ERASED);
    let (conns, _) = store.list_connections(Some(&u1), None, 100).await.unwrap();
    assert!(conns.is_empty());
    let read = DataRead {
        after: Default::default(),
        limit: 100,
        filter: Default::default(),
    };
    let page = store.read_data(&u1, &read).await.unwrap();
    assert!(page.items.is_empty());
    assert!(!store.has_location(&u1, "1198").await.unwrap());
    assert!(store
        .get_location_status(&conn("99"), "1198")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_target(&target("99", "1198", "rates"))
        .await
        .unwrap()
        .is_none());
    assert!(store.get_token(&t.hash(&s.access)).await.unwrap().is_none());
    let letters = t.dead_letters.messages();
    assert_eq!(letters.len(), 1, "user 2's stays: {letters:?}");
    assert!(letters[0].contains("\"77\""));
    if let (Some(d), Some(before)) = (&dynamo, before) {
        let (mine, others) = split(&all_items(d).await, &families);
        assert!(mine.is_empty(), "left of user 1: {mine:?}");
        assert_eq!(others, before, "user 2's items are as they were");
    }

    // Their tokens are refused everywhere; user 2's still work.
    let check = route_as(
        &t.app,
        "CheckConnectionFunction",
        t.check_request("99", &s.access),
    )
    .await;
    assert_eq!(check.status(), 401);
    let refresh = syncaroo_tests::request(
        "POST",
        "/api/oauth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        syncaroo_tests::form(&[
            ("clientId", &t.app.config.client_id),
            ("clientSecret", t.secrets.client_secret.expose()),
            ("grantType", "refresh_token"),
            ("refreshToken", &s.refresh),
        ]),
    );
    let resp = route_as(&t.app, "TokenFunction", refresh).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(body_json(&resp)["error"], "invalid_grant");
    let kept = route_as(
        &t.app,
        "CheckConnectionFunction",
        t.check_request("77", &s.kept_access),
    )
    .await;
    assert_eq!(kept.status(), 200);

    // A new consent by the same user makes a new, working connection.
    let (access, _) = connect(&t, "99", ERASED).await;
    let check = route_as(
        &t.app,
        "CheckConnectionFunction",
        t.check_request("99", &access),
    )
    .await;
    assert_eq!(check.status(), 200, "{}", syncaroo_tests::body_text(&check));
}

#[tokio::test]
async fn memory_nothing_of_the_user_is_left() {
    nothing_of_user_1_is_left(Arc::new(MemoryStore::new()), None).await;
}

#[tokio::test]
async fn dynamodb_nothing_of_the_user_is_left_in_a_scan() {
    let Some(d) = syncaroo_tests::local_aws::dynamo_store("erase", EVENTS_NOW).await else {
        return;
    };
    nothing_of_user_1_is_left(Arc::new(d.clone()), Some(d)).await;
}
