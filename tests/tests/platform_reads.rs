//! The platform's reads at handler depth, on the in-memory store, fed by
//! the `events/` files as API Gateway hands them over after its AWS_IAM
//! check: user 1's synced data and statuses, and only theirs.

use serde_json::{json, Value};
use syncaroo_shared::model::{ConnectionId, UserId};
use syncaroo_shared::store::{LocationStatus, SyncTarget, SyncedData};
use syncaroo_tests::{body_json, TestApp, EVENTS_NOW};

fn synced(user: &str, conn: &str, location: &str, v: u32) -> SyncedData {
    SyncedData {
        target: SyncTarget {
            connection_id: ConnectionId::parse(conn).unwrap(),
            location_id: location.into(),
            attribute_type: "rates".into(),
            resource_id: None,
        },
        user: UserId::parse(user).unwrap(),
        data: format!(r#"[{{"rate":"daily","v":{v}}}]"#),
        pages: 1,
        fetched_at_ms: EVENTS_NOW * 1000,
        stored_at_ms: EVENTS_NOW * 1000 + 250,
        event_id: "e".into(),
        deleted: false,
        connection_gen: None,
    }
}

#[tokio::test]
async fn the_data_event_file_reads_user_1s_data_in_the_order_stored() {
    let (t, _) = TestApp::memory();
    let store = t.app.store.as_ref();
    store
        .put_synced(&synced("1", "99", "1198", 1))
        .await
        .unwrap();
    store
        .put_synced(&synced("2", "77", "5000", 1))
        .await
        .unwrap();
    store
        .put_synced(&synced("1", "99", "2001", 1))
        .await
        .unwrap();
    let resp = syncaroo_tests::route_as(
        &t.app,
        "AdminFunction",
        syncaroo_tests::event("platform-read-data.json"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let page = body_json(&resp);
    let items = page["items"].as_array().unwrap();
    let locations: Vec<&str> = items
        .iter()
        .map(|i| i["locationId"].as_str().unwrap())
        .collect();
    assert_eq!(locations, ["1198", "2001"], "user 1's only, in order");
    assert_eq!(
        items[0],
        json!({
            "connectionId": "99", "locationId": "1198", "attributeType": "rates",
            "resourceId": null, "fetchedAt": "2026-11-27T19:00:00.000Z",
            "storedAt": "2026-11-27T19:00:00.250Z", "deleted": false, "pages": 1,
            "data": [{"rate": "daily", "v": 1}],
        })
    );
    assert_eq!(page["hasMore"], false);
    assert!(page["cursor"].as_str().is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn the_status_event_file_reads_each_locations_latest_status() {
    let (t, _) = TestApp::memory();
    t.seed_events_tokens().await;
    let store = t.app.store.as_ref();
    syncaroo_local::import_listings(store, syncaroo_local::DEMO_LISTINGS)
        .await
        .unwrap();
    let conn = ConnectionId::parse("99").unwrap();
    for (seq, status, at) in [(1, "open", 1_000), (2, "closed", 2_000)] {
        store
            .put_location_status(&LocationStatus {
                connection_id: conn.clone(),
                location_id: "1198".into(),
                meta: json!({"status": status}).to_string(),
                received_at_ms: EVENTS_NOW * 1000 + at,
                event_id: format!("s{seq}"),
                seq,
                connection_gen: None,
            })
            .await
            .unwrap();
    }
    let resp = syncaroo_tests::route_as(
        &t.app,
        "AdminFunction",
        syncaroo_tests::event("platform-read-status.json"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = body_json(&resp);
    assert_eq!(
        body,
        json!({"locations": {"1198": {
            "connectionId": "99", "metaData": {"status": "closed"},
            "receivedAt": "2026-11-27T19:00:02.000Z",
        }}})
    );
}

#[tokio::test]
async fn the_connection_event_file_reads_its_sync_health() {
    let (t, _) = TestApp::memory();
    t.seed_events_tokens().await;
    let resp = syncaroo_tests::route_as(
        &t.app,
        "AdminFunction",
        syncaroo_tests::event("platform-show-connection.json"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = body_json(&resp);
    assert_eq!(body["connectionId"], "99");
    assert_eq!(
        body["sync"],
        json!({"targets": 0, "lastNotificationAt": null, "lastFetchAt": null,
               "pending": 0, "failing": []})
    );
    assert_eq!(body["syncarooCredentials"], "missing");
}
