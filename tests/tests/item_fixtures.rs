//! Items as the store wrote them before it read them through item structs
//! (`tests/fixtures/items-before-structs.json`, dumped from DynamoDB Local
//! by `write_fixture` on the code of that day) read back unchanged: the
//! rebuild on serde_dynamo must not strand anything already stored.
//!
//! The fixture is DynamoDB's own JSON (`{"S": ..}`, `{"N": ..}`, ...), the
//! form `aws dynamodb get-item` prints. Its `ttl` attributes are dropped on
//! load: they were set for the day the fixture was written, and DynamoDB
//! Local's sweeper would delete an item whose `ttl` has passed.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use syncaroo_shared::model::{ConnectionId, ConnectionStatus, TokenKind, UserId};
use syncaroo_shared::secrets::SecretString;
use syncaroo_shared::store::{
    CredentialsStore, DynamoStore, EventRecord, EventStatus, EventStore, GrantStore, SyncTarget,
    TargetNote,
};
use syncaroo_shared::syncaroo::NewCredentials;
use syncaroo_shared::webhook::WebhookType;
use syncaroo_tests::{events_creds, local_aws, TestApp, EVENTS_NOW};

const FIXTURE: &str = "fixtures/items-before-structs.json";

fn fixture_path() -> std::path::PathBuf {
    syncaroo_tests::repo_root().join("tests").join(FIXTURE)
}

fn to_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(to_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => {
            json!({ "M": m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect::<Map<_, _>>() })
        }
        other => panic!("not in the fixture's vocabulary: {other:?}"),
    }
}

fn from_json(v: &Value) -> AttributeValue {
    let (t, x) = v.as_object().unwrap().iter().next().unwrap();
    match t.as_str() {
        "S" => AttributeValue::S(x.as_str().unwrap().into()),
        "N" => AttributeValue::N(x.as_str().unwrap().into()),
        "BOOL" => AttributeValue::Bool(x.as_bool().unwrap()),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(
            x.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().into())
                .collect(),
        ),
        "L" => AttributeValue::L(x.as_array().unwrap().iter().map(from_json).collect()),
        "M" => AttributeValue::M(
            x.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect(),
        ),
        other => panic!("unknown attribute type {other}"),
    }
}

fn status_target() -> SyncTarget {
    SyncTarget::status(ConnectionId::parse("99").unwrap(), "1198".into())
}

fn legacy_event() -> EventRecord {
    EventRecord {
        id: "99:status:1198:1795806000000:abc".into(),
        connection_id: ConnectionId::parse("99").unwrap(),
        webhook_type: WebhookType::Status,
        location_id: "1198".into(),
        payload: r#"{"connectionId":99,"webhookType":"status","locationId":"1198","metaData":{"status":"closed"}}"#.into(),
        received_at_ms: 1_795_806_000_000,
        status: EventStatus::Pending,
        attempts: 0,
        error: None,
    }
}

/// Writes the fixture from the code it runs on (run it once, by hand, on
/// the code whose items the fixture keeps:
/// `cargo test -p syncaroo-tests --test item_fixtures -- --ignored`).
#[tokio::test]
#[ignore = "writes tests/fixtures/items-before-structs.json"]
async fn write_fixture() {
    let store = local_aws::dynamo_store("fixture", EVENTS_NOW)
        .await
        .expect("DynamoDB Local");
    let items = written_items(Arc::new(store)).await;
    let text = serde_json::to_string_pretty(&items).unwrap();
    std::fs::write(fixture_path(), text + "\n").unwrap();
}

/// Today's code writes the very items the fixture holds (every attribute
/// and value; `ttl` only present, as it depends on the day it was written),
/// plus what came after the fixture: a connection's generation (`gen`,
/// random: present, then left out of the comparison).
#[tokio::test]
async fn todays_writes_are_the_fixtures_items() {
    let Some(store) = local_aws::dynamo_store("fixture-write", EVENTS_NOW).await else {
        return;
    };
    let without_ttl_values = |items: Vec<Value>| -> Vec<Value> {
        items
            .into_iter()
            .map(|mut i| {
                if let Some(t) = i.get_mut("ttl") {
                    *t = json!("present");
                }
                i
            })
            .collect()
    };
    let mut written = without_ttl_values(written_items(Arc::new(store)).await);
    for item in &mut written {
        if item["sk"]["S"] == "CONNECTION" {
            let gen = item.as_object_mut().unwrap().remove("gen");
            assert!(gen.is_some_and(|g| g["S"].as_str().is_some_and(|s| s.len() == 16)));
        }
    }
    let text = std::fs::read_to_string(fixture_path()).expect("the fixture");
    let fixture = without_ttl_values(serde_json::from_str(&text).unwrap());
    assert_eq!(written, fixture);
}

/// The fixture's items, written through the store on `store` and read back
/// raw.
async fn written_items(store: Arc<DynamoStore>) -> Vec<Value> {
    let t = TestApp::with_store(store.clone());
    t.seed_events_tokens().await;
    let conn = ConnectionId::parse(events_creds::CONNECTION).unwrap();
    let user = UserId::parse(events_creds::USER).unwrap();
    store
        .confirm_connection(&conn, &user, events_creds::FAMILY, EVENTS_NOW + 5)
        .await
        .unwrap();
    // Revoked after: the item then holds every optional attribute and the
    // ended families' string set.
    store
        .revoke_connection(&conn, EVENTS_NOW + 9)
        .await
        .unwrap()
        .expect("revoked");
    let new = NewCredentials {
        access_token: SecretString::new("syncaroo-access"),
        expires_at: EVENTS_NOW + 3600,
        refresh_token: SecretString::new("syncaroo-refresh"),
    };
    let version = store.put_credentials(&new, EVENTS_NOW).await.unwrap();
    assert!(store
        .acquire_lease(
            version,
            "owner-1",
            EVENTS_NOW * 1000,
            EVENTS_NOW * 1000 + 30_000
        )
        .await
        .unwrap());
    assert!(store.record_event(&legacy_event()).await.unwrap());
    store
        .notify_target(&TargetNote {
            target: status_target(),
            payload: legacy_event().payload,
            notified_at_ms: 1_795_806_000_500,
        })
        .await
        .unwrap();
    let keys = [
        (format!("TOKEN#{}", t.hash(events_creds::ACCESS)), "TOKEN"),
        (format!("TOKEN#{}", t.hash(events_creds::REFRESH)), "TOKEN"),
        ("CONN#99".to_string(), "CONNECTION"),
        ("SYNCAROO".to_string(), "CREDENTIALS"),
        (format!("EVENT#{}", legacy_event().id), "EVENT"),
        (
            syncaroo_shared::store::keys::target_pk(&status_target().id()),
            "NOTE",
        ),
    ];
    let mut items = Vec::new();
    for (pk, sk) in keys {
        let item = store.raw_item(&pk, sk).await.unwrap();
        let mut obj: Map<String, Value> =
            item.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
        obj.sort_keys();
        items.push(Value::Object(obj));
    }
    items
}

#[tokio::test]
async fn items_written_before_the_item_structs_read_back_unchanged() {
    let Some(store) = local_aws::dynamo_store("fixture-read", EVENTS_NOW).await else {
        return;
    };
    let text = std::fs::read_to_string(fixture_path()).expect("the fixture");
    let items: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(items.len(), 6);
    for item in &items {
        let mut av: HashMap<String, AttributeValue> = item
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), from_json(v)))
            .collect();
        av.remove("ttl");
        store
            .client()
            .put_item()
            .table_name(store.table())
            .set_item(Some(av))
            .send()
            .await
            .unwrap();
    }
    check_grants(&store).await;
    check_credentials_and_sync(&store, &items).await;
}

async fn check_grants(store: &DynamoStore) {
    let hash = |raw: &str| syncaroo_tests::events_secrets().token_hash(raw);
    let access = store
        .get_token(&hash(events_creds::ACCESS))
        .await
        .unwrap()
        .expect("the access token");
    assert_eq!(access.kind, TokenKind::Access);
    assert_eq!(access.connection_id.as_str(), "99");
    assert_eq!(access.user_id.as_str(), "1");
    assert_eq!(access.family, events_creds::FAMILY);
    assert_eq!(access.expires_at, EVENTS_NOW + 3600);
    assert!(!access.revoked);
    assert_eq!(access.used_at, None);
    let refresh = store
        .get_token(&hash(events_creds::REFRESH))
        .await
        .unwrap()
        .expect("the refresh token");
    assert_eq!(refresh.kind, TokenKind::Refresh);
    assert_eq!(refresh.expires_at, EVENTS_NOW + 86_400);
    let conn = store
        .get_connection(&ConnectionId::parse("99").unwrap())
        .await
        .unwrap()
        .expect("the connection");
    assert_eq!(conn.user_id.as_str(), "1");
    assert_eq!(conn.client_id, "syncaroo");
    assert_eq!(conn.status, ConnectionStatus::Revoked);
    assert_eq!(conn.created_at, EVENTS_NOW);
    assert_eq!(conn.confirmed_at, Some(EVENTS_NOW + 5));
    assert_eq!(conn.revoked_at, Some(EVENTS_NOW + 9));
    assert_eq!(
        conn.revoked_families,
        vec![events_creds::FAMILY.to_string()]
    );
}

async fn check_credentials_and_sync(store: &DynamoStore, items: &[Value]) {
    let creds = store
        .get_credentials()
        .await
        .unwrap()
        .expect("the credentials");
    assert_eq!(creds.access_token.expose(), "syncaroo-access");
    assert_eq!(creds.refresh_token.expose(), "syncaroo-refresh");
    assert_eq!(creds.expires_at, EVENTS_NOW + 3600);
    assert_eq!(creds.version, 1);
    assert_eq!(creds.lease_owner.as_deref(), Some("owner-1"));
    assert_eq!(creds.lease_until_ms, Some(EVENTS_NOW * 1000 + 30_000));
    assert_eq!(creds.updated_at, EVENTS_NOW);
    let event = store
        .get_event(&legacy_event().id)
        .await
        .unwrap()
        .expect("the event");
    assert_eq!(event, legacy_event());
    // The NOTE item as a stream record's image names its target.
    let note = items
        .iter()
        .find(|i| i["sk"]["S"] == "NOTE")
        .expect("a NOTE item");
    let image: HashMap<String, AttributeValue> = note
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), from_json(v)))
        .collect();
    assert_eq!(
        syncaroo_shared::store::dynamo::target_from(&image),
        Some(status_target())
    );
    let state = store
        .get_target(&status_target())
        .await
        .unwrap()
        .expect("the target");
    assert_eq!(state.notified_at_ms, 1_795_806_000_500);
    assert_eq!(state.payload, legacy_event().payload);
}
