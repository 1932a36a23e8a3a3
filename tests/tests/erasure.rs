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
    // More listings of user 1 than a small budget removes at once.
    let more: serde_json::Map<String, Value> = (0..6)
        .map(|i| {
            let id = format!("extra-{i}");
            let loc = json!({"ID": id, "name": "More", "status": "active", "resources": []});
            (id, loc)
        })
        .collect();
    let body = json!({ "locations": more }).to_string();
    let more = syncaroo_shared::platform_ops::parse_push(body.as_bytes()).unwrap();
    store
        .put_listings(&syncaroo_shared::model::UserListings {
            user_id: user(ERASED),
            locations: more,
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

/// The table as the test sees it before the erasure: user 1's token
/// families, and every item not of user 1 (DynamoDB only). A target of
/// user 1 loses its note first, as when its ttl passed: only its fetch
/// state is left to find.
async fn before_erasure(d: &DynamoStore) -> (BTreeSet<String>, BTreeSet<String>) {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    d.client()
        .delete_item()
        .table_name(d.table())
        .key("pk", V::S("TARGET#99#1198#resources#-".into()))
        .key("sk", V::S("NOTE".into()))
        .send()
        .await
        .unwrap();
    let items = all_items(d).await;
    let families = families_of_user_1(&items);
    let (mine, others) = split(&items, &families);
    assert!(mine.len() > 20, "user 1 holds many items: {mine:?}");
    assert!(mine
        .iter()
        .any(|k| k == "TARGET#99#1198#resources#- | STATE"));
    (families, others)
}

/// A dead letter naming connection 99 (a worker that was already failing).
fn late_letter() -> GivenUp {
    GivenUp {
        id: "99#1198#rates#-".into(),
        connection_id: conn("99"),
        webhook_type: WebhookType::Data,
        location_id: "1198".into(),
        payload: json!({"connectionId": 99, "webhookType": "data", "locationId": "1198"})
            .to_string(),
        received_at_ms: EVENTS_NOW * 1000,
        attempts: 5,
    }
}

/// Through the route, as the events/ file calls it: the first call does the
/// work but for the connection items, a dead letter arriving after it is
/// found by the next (the erasure keeps the ids of the connections it
/// saw), a call finding nothing before the settle time is not done, the
/// first after it removes the connection items, the next is done, and a
/// later call changes nothing.
async fn erase_through_the_route(t: &TestApp) {
    let (status, first) = erase(t).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["done"], false);
    let removed = &first["removed"];
    assert_eq!(
        removed["connectionsRevoked"], 1,
        "98 was revoked before: {first}"
    );
    assert_eq!(
        removed.get("connections"),
        None,
        "connection items go once aged: {first}"
    );
    assert_eq!(removed["deadLetters"], 2, "{first}");
    for kind in [
        "codes",
        "tokens",
        "tokenFamilies",
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
    assert_eq!(removed["listings"], 7, "{first}");
    assert_eq!(erased_events(t), 0, "not done yet");
    t.dead_letters
        .send(&late_letter(), "HTTP 500")
        .await
        .unwrap();
    let (status, again) = erase(t).await;
    assert_eq!(
        (status, &again["removed"]),
        (202, &json!({"deadLetters": 1})),
        "{again}"
    );
    let (status, again) = erase(t).await;
    assert_eq!((status, &again["removed"]), (202, &json!({})), "{again}");
    t.clock.advance(3);
    let (status, aged) = erase(t).await;
    assert_eq!(
        (status, &aged["removed"]),
        (202, &json!({"connections": 2})),
        "{aged}"
    );
    // A status written just before the revocation and indexed late: found
    // by the connection id the erasure keeps, its connection item gone.
    let late = LocationStatus {
        connection_id: conn("99"),
        location_id: "7120".into(),
        meta: "{}".into(),
        received_at_ms: EVENTS_NOW * 1000,
        event_id: "late".into(),
        seq: 1,
        connection_gen: None,
    };
    t.app.store.put_location_status(&late).await.unwrap();
    let (status, found) = erase(t).await;
    assert_eq!(
        (status, &found["removed"]),
        (202, &json!({"statuses": 1})),
        "{found}"
    );
    let (status, done) = erase(t).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done, json!({"userId": "1", "removed": {}, "done": true}));
    assert_eq!(erased_events(t), 1);
    let (status, later) = erase(t).await;
    assert_eq!((status, later["done"].clone()), (200, json!(true)));
    assert_eq!(erased_events(t), 1, "put once");
}

/// User 1 erased through the route (`budget` `None`) or a small budget a
/// call; then nothing of user 1 is left through any door (on DynamoDB, in
/// a scan of the whole table), user 2's items are as they were, user 1's
/// tokens are refused everywhere and a new consent works.
async fn nothing_of_user_1_is_left(
    store: Arc<dyn Store>,
    dynamo: Option<DynamoStore>,
    budget: Option<usize>,
) {
    let t = TestApp::with_store(store.clone());
    let s = seed(&t).await;
    let before = match &dynamo {
        Some(d) => Some(before_erasure(d).await),
        None => None,
    };
    match budget {
        None => erase_through_the_route(&t).await,
        Some(b) => {
            let calls = erase_in_batches(&t, b).await;
            assert!(calls > 5, "{calls} calls");
            assert_eq!(erased_events(&t), 1);
        }
    }

    let u1 = user(ERASED);
    let (conns, _) = store.list_connections(Some(&u1), None, 100).await.unwrap();
    assert!(conns.is_empty());
    let read = DataRead {
        after: Default::default(),
        limit: 100,
        filter: Default::default(),
    };
    assert!(store.read_data(&u1, &read).await.unwrap().items.is_empty());
    assert!(store.list_locations(&u1).await.unwrap().is_empty());
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
    if let (Some(d), Some((families, others))) = (&dynamo, before) {
        let (mine, now) = split(&all_items(d).await, &families);
        assert!(mine.is_empty(), "left of user 1: {mine:?}");
        assert_eq!(now, others, "user 2's items are as they were");
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
    nothing_of_user_1_is_left(Arc::new(MemoryStore::new()), None, None).await;
}

#[tokio::test]
async fn dynamodb_nothing_of_the_user_is_left_in_a_scan() {
    let Some(d) = syncaroo_tests::local_aws::dynamo_store("erase", EVENTS_NOW).await else {
        return;
    };
    nothing_of_user_1_is_left(Arc::new(d.clone()), Some(d), None).await;
}

/// A budget far below what the user holds: each call removes at most that
/// many, the connections (what the next call finds the rest from) last.
#[tokio::test]
async fn memory_a_small_budget_continues_across_calls() {
    nothing_of_user_1_is_left(Arc::new(MemoryStore::new()), None, Some(3)).await;
}

#[tokio::test]
async fn dynamodb_a_small_budget_continues_across_calls_and_leaves_nothing() {
    let Some(d) = syncaroo_tests::local_aws::dynamo_store("erase-small", EVENTS_NOW).await else {
        return;
    };
    nothing_of_user_1_is_left(Arc::new(d.clone()), Some(d), Some(3)).await;
}

/// Erasure calls of `budget` items until one reports done, the clock
/// moving past the settle time whenever a call found nothing: how many
/// calls it took.
async fn erase_in_batches(t: &TestApp, budget: usize) -> usize {
    let u1 = user(ERASED);
    for calls in 1..200 {
        let r = syncaroo_shared::erasure::erase_user(&t.app, &u1, budget)
            .await
            .unwrap();
        let table: u64 = r
            .erased
            .removed
            .iter()
            .filter(|(k, _)| !["connectionsRevoked", "deadLetters"].contains(k))
            .map(|(_, n)| n)
            .sum();
        assert!(table as usize <= budget, "{:?}", r.erased);
        if r.done {
            return calls;
        }
        if r.erased.total() == 0 {
            t.clock.advance(3);
        }
    }
    panic!("the erasure never ended");
}

/// A fetch that began before the erasure writes nothing back: its data
/// and status name the connection's old generation, refused after the
/// erasure and after a new consent (which starts a new generation); the
/// new generation's writes are stored. A revocation alone fences the same.
async fn writes_of_an_ended_generation_are_refused(store: Arc<dyn Store>) {
    let t = TestApp::with_store(store.clone());
    seed(&t).await;
    let old = store.get_connection(&conn("99")).await.unwrap().unwrap();
    assert!(!old.generation.is_empty());
    let write = |gen: &str| SyncedData {
        target: target("99", "1198", "rates"),
        user: user(ERASED),
        data: "[1]".into(),
        pages: 1,
        fetched_at_ms: EVENTS_NOW * 1000 + 5,
        stored_at_ms: EVENTS_NOW * 1000 + 5,
        event_id: "late".into(),
        deleted: false,
        connection_gen: Some(gen.to_string()),
    };
    let status = |gen: &str| LocationStatus {
        connection_id: conn("99"),
        location_id: "1198".into(),
        meta: "{}".into(),
        received_at_ms: EVENTS_NOW * 1000 + 5,
        event_id: "late".into(),
        seq: 9,
        connection_gen: Some(gen.to_string()),
    };
    let ended = |r: Result<bool, syncaroo_shared::Error>| matches!(r, Err(e) if syncaroo_shared::store::sync::is_connection_ended(&e));
    syncaroo_shared::platform_ops::revoke_connection(&t.app, &conn("99"))
        .await
        .unwrap();
    assert!(
        ended(store.put_synced(&write(&old.generation)).await),
        "revoked"
    );
    erase_in_batches(&t, 5000).await;
    assert!(
        ended(store.put_synced(&write(&old.generation)).await),
        "erased"
    );
    assert!(ended(
        store.put_location_status(&status(&old.generation)).await
    ));
    connect(&t, "99", ERASED).await;
    let new = store.get_connection(&conn("99")).await.unwrap().unwrap();
    assert_ne!(new.generation, old.generation);
    assert!(
        ended(store.put_synced(&write(&old.generation)).await),
        "consented again"
    );
    assert!(ended(
        store.put_location_status(&status(&old.generation)).await
    ));
    assert!(store
        .get_synced(&conn("99"), "1198", "rates", None)
        .await
        .unwrap()
        .is_none());
    assert!(store.put_synced(&write(&new.generation)).await.unwrap());
    assert!(store
        .put_location_status(&status(&new.generation))
        .await
        .unwrap());
}

/// A notification written after the erasure (a webhook that passed its
/// bearer check just before) is forgotten by the worker, never fetched.
async fn the_worker_forgets_a_target_of_an_erased_connection(store: Arc<dyn Store>) {
    let t = TestApp::with_store(store.clone());
    seed(&t).await;
    erase_in_batches(&t, 5000).await;
    let late = target("99", "1198", "rates");
    store
        .notify_target(&TargetNote {
            target: late.clone(),
            payload: "{}".into(),
            notified_at_ms: EVENTS_NOW * 1000 + 9,
        })
        .await
        .unwrap();
    let policy = syncaroo_tests::fast_policy(&t.app);
    let outcome = syncaroo_shared::handlers::sync::process_target(
        &t.app,
        t.dead_letters.as_ref(),
        &late,
        &policy,
    )
    .await;
    assert_eq!(outcome, syncaroo_shared::handlers::sync::Outcome::Skipped);
    assert!(store.get_target(&late).await.unwrap().is_none());
    assert!(t
        .dead_letters
        .messages()
        .iter()
        .all(|m| !m.contains("\"99\"")));
}

/// Writers racing the erasure (fetches that began before it, each with
/// the generation it read): once the erasure is done nothing they wrote is
/// left, and every write after the revocation was refused.
async fn writers_racing_the_erasure_leave_nothing(store: Arc<dyn Store>) {
    let t = TestApp::with_store(store.clone());
    seed(&t).await;
    let gen = store
        .get_connection(&conn("99"))
        .await
        .unwrap()
        .unwrap()
        .generation;
    // Each writer writes once before the erasure starts, then keeps
    // writing until it has been refused three times.
    let started = Arc::new(tokio::sync::Barrier::new(5));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            let gen = gen.clone();
            let started = started.clone();
            tokio::spawn(async move {
                let mut refused = 0;
                for i in 0..100_000i64 {
                    let d = SyncedData {
                        target: target("99", &format!("loc-{w}"), "rates"),
                        user: user(ERASED),
                        data: format!("[{i}]"),
                        pages: 1,
                        fetched_at_ms: EVENTS_NOW * 1000 + i,
                        stored_at_ms: EVENTS_NOW * 1000 + i,
                        event_id: "race".into(),
                        deleted: false,
                        connection_gen: Some(gen.clone()),
                    };
                    match store.put_synced(&d).await {
                        Ok(_) => assert_eq!(refused, 0, "a write after a refusal was stored"),
                        Err(e) if syncaroo_shared::store::sync::is_connection_ended(&e) => {
                            refused += 1
                        }
                        Err(e) => panic!("{e}"),
                    }
                    if i == 0 {
                        started.wait().await;
                    }
                    if refused == 3 {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
                panic!("writer {w} was never refused");
            })
        })
        .collect();
    started.wait().await;
    erase_in_batches(&t, 5000).await;
    for w in writers {
        w.await.unwrap();
    }
    let read = DataRead {
        after: Default::default(),
        limit: 1000,
        filter: Default::default(),
    };
    assert!(store
        .read_data(&user(ERASED), &read)
        .await
        .unwrap()
        .items
        .is_empty());
    for w in 0..4 {
        let left = store
            .get_synced(&conn("99"), &format!("loc-{w}"), "rates", None)
            .await
            .unwrap();
        assert!(left.is_none(), "writer {w} left data");
    }
}

/// A consent made while the erasure runs: the next call revokes the new
/// connection (and announces it) and keeps its item for a later call; it
/// is never deleted unrevoked, and the erasure still ends clean.
async fn a_connection_made_during_the_erasure_is_revoked_first(store: Arc<dyn Store>) {
    let t = TestApp::with_store(store.clone());
    seed(&t).await;
    let u1 = user(ERASED);
    let call = || syncaroo_shared::erasure::erase_user(&t.app, &u1, 5000);
    call().await.unwrap();
    connect(&t, "97", ERASED).await;
    t.clock.advance(3);
    let r = call().await.unwrap();
    assert_eq!(
        r.erased.removed.get("connectionsRevoked"),
        Some(&1),
        "{r:?}"
    );
    assert_eq!(r.erased.removed.get("connections"), None, "{r:?}");
    let revoked = t
        .changes
        .entries()
        .iter()
        .filter(|e| e.detail_type == "Syncaroo Connection Revoked" && e.detail.contains("\"97\""))
        .count();
    assert_eq!(revoked, 1);
    erase_in_batches(&t, 5000).await;
    let (conns, _) = store.list_connections(Some(&u1), None, 100).await.unwrap();
    assert!(conns.is_empty());
}

syncaroo_tests::store_conformance!(EVENTS_NOW;
    a_connection_made_during_the_erasure_is_revoked_first,
    writers_racing_the_erasure_leave_nothing,
    writes_of_an_ended_generation_are_refused,
    the_worker_forgets_a_target_of_an_erased_connection,
);

/// A user id the route refuses is a 400 and erases nothing.
#[tokio::test]
async fn a_bad_user_id_is_refused_and_changes_nothing() {
    let (t, store) = TestApp::memory();
    seed(&t).await;
    let before = store.fingerprint();
    let mut req = event("platform-erase-user.json");
    let long = format!("/api/platform/users/{}", "u".repeat(129));
    *req.uri_mut() = long.parse().unwrap();
    let resp = route_as(&t.app, "AdminFunction", req).await;
    assert_eq!(resp.status(), 400, "{}", syncaroo_tests::body_text(&resp));
    let body = body_json(&resp);
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"].as_str().unwrap().contains("userId"),
        "{body}"
    );
    assert_eq!(store.fingerprint(), before);
    assert_eq!(t.dead_letters.messages().len(), 3);
}

/// On SQS (moto): the purge deletes the letters naming user 1 or their
/// connections, whatever their kind, and leaves the others visible.
#[tokio::test]
async fn sqs_dead_letters_of_the_user_are_deleted_and_the_others_kept() {
    use syncaroo_shared::deadletter::SqsDeadLetters;
    use syncaroo_tests::local_aws;
    if !local_aws::eventbridge_available() {
        return;
    }
    let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
    let (url, _) = local_aws::sqs_queue(&sdk, "erase-dlq").await;
    let dlq = SqsDeadLetters::new(aws_sdk_sqs::Client::new(&sdk), &url);
    let (t, _) = TestApp::memory();
    let letter = |c: &str| GivenUp {
        id: format!("{c}#1198#rates#-"),
        connection_id: conn(c),
        webhook_type: WebhookType::Data,
        location_id: "1198".into(),
        payload: json!({"connectionId": c, "webhookType": "data", "locationId": "1198",
            "metaData": {"attributeType": "rates", "apiUrl": "https://app.syncaroo.com/api/v1/x"}})
        .to_string(),
        received_at_ms: EVENTS_NOW * 1000,
        attempts: 5,
    };
    dlq.send(&letter("99"), "HTTP 500").await.unwrap();
    dlq.send(&letter("77"), "HTTP 500").await.unwrap();
    let entry = changes::revoked_entry(&t.app.config, &conn("98"), &user(ERASED), EVENTS_NOW);
    dlq.send_entry(&entry, "refused").await.unwrap();
    let kept = changes::revoked_entry(&t.app.config, &conn("77"), &user(KEPT), EVENTS_NOW);
    dlq.send_entry(&kept, "refused").await.unwrap();
    let (purged, complete) = dlq
        .purge(&user(ERASED), &[conn("99"), conn("98")])
        .await
        .unwrap();
    assert_eq!((purged, complete), (2, true));
    let left = local_aws::drain(&sdk, &url, 2, 10).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|m| m.contains("77")), "{left:?}");
    assert_eq!(
        dlq.purge(&user(ERASED), &[conn("99")]).await.unwrap(),
        (0, true)
    );
}
