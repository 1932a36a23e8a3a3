//! Over HTTP against the local runner (webhook served, worker in-process)
//! with the fake Syncaroo as the API: signed webhooks in, data pulled.

use serde_json::{json, Value};
use std::time::Duration;
use syncaroo_local::Running;
use syncaroo_shared::model::ConnectionId;
use syncaroo_shared::secrets::SecretString;
use syncaroo_shared::store::SyncTarget;
use syncaroo_shared::syncaroo::NewCredentials;
use syncaroo_sim::FakeSyncaroo;
use syncaroo_tests::{connect_over_http, local_aws, runner_with_fake, sign};

const RATES: &str = "/api/v1/locations/1198/rates";

async fn setup(store: syncaroo_local::StoreKind) -> (Running, FakeSyncaroo, String) {
    let (r, fake) = runner_with_fake(store, "hooks", None, &[]).await;
    let (access, refresh, exp) = fake.fake.issue_pair();
    r.store
        .put_credentials(
            &NewCredentials {
                access_token: SecretString::new(access),
                expires_at: exp,
                refresh_token: SecretString::new(refresh),
            },
            0,
        )
        .await
        .unwrap();
    let bearer = connect_over_http(&r, "99").await;
    (r, fake, bearer)
}

async fn post(r: &Running, bearer: &str, path: &str, body: &str) -> (u16, Value) {
    let resp = syncaroo_shared::tls::http_client_builder()
        .build()
        .unwrap()
        .post(format!("{}{path}", r.base()))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Waits until the target's last successful fetch covers every
/// notification; returns how many there were.
async fn wait_covered(r: &Running, t: &SyncTarget) -> u64 {
    for _ in 0..200 {
        if let Some(st) = r.store.get_target(t).await.unwrap() {
            if st.fetched_through == Some(st.notifications) {
                return st.notifications;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("target {} still has notifications not fetched", t.id());
}

async fn run(store: syncaroo_local::StoreKind) {
    let (r, fake, bearer) = setup(store).await;
    let secret = r.setup.your_client_secret.clone();
    syncaroo_tests::seed::rates_in_three_pages(&fake);
    let data = sign(
        json!({"connectionId": 99, "webhookType": "data", "locationId": "1198",
               "metaData": {"attributeType": "rates", "apiUrl": fake.fake.page_url(RATES, 1)}}),
        &secret,
    );
    // The guide's two readings of the webhook URL both work, in any form of
    // the path: siteUri + webhookPath, the guide's apiUri with its trailing
    // slash + webhookPath (a doubled slash), no trailing slash. Each is a
    // notification: all accepted, none dropped as a duplicate.
    for path in [
        "/api/update/",
        "/update/",
        "/api//update/",
        "/update",
        "/api/update",
    ] {
        let (status, v) = post(&r, &bearer, path, &data).await;
        assert_eq!(
            (status, v["status"].as_str()),
            (202, Some("accepted")),
            "{path}: {v}"
        );
        assert_eq!(v["targetId"], "99#1198#rates#-");
    }
    let conn = ConnectionId::parse("99").unwrap();
    let target = SyncTarget {
        connection_id: conn.clone(),
        location_id: "1198".into(),
        attribute_type: "rates".into(),
        resource_id: None,
    };
    assert_eq!(wait_covered(&r, &target).await, 5);
    let stored = r
        .store
        .get_synced(&conn, "1198", "rates", None)
        .await
        .unwrap()
        .expect("stored");
    let rates: Vec<Value> = serde_json::from_str(&stored.data).unwrap();
    assert_eq!(
        (stored.pages, rates.len()),
        (3, 3),
        "all three pages stored"
    );
    assert_eq!(rates[2]["rate"], "weekly");
    // Five notifications: between one fetch (all coalesced) and five, each
    // of all three pages; the worker settles with nothing left to fetch.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let requests = fake.fake.data_requests();
    assert!(
        requests.is_multiple_of(3) && (3..=15).contains(&requests),
        "{requests}"
    );

    let status_hook = sign(
        json!({"connectionId": 99, "webhookType": "status", "locationId": "1198", "metaData": {"status": "closed"}}),
        &secret,
    );
    let (code, v) = post(&r, &bearer, "/api/update/", &status_hook).await;
    assert_eq!(code, 202);
    assert_eq!(v["targetId"], "99#1198#status#-");
    let status_target = SyncTarget::status(conn.clone(), "1198".into());
    assert_eq!(wait_covered(&r, &status_target).await, 1);
    let s = r
        .store
        .get_location_status(&conn, "1198")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&s.meta).unwrap()["status"],
        "closed"
    );
    r.stop();
}

#[tokio::test]
async fn webhooks_over_http_in_memory() {
    run(syncaroo_local::StoreKind::Memory).await;
}

#[tokio::test]
async fn webhooks_over_http_on_dynamodb_local() {
    if !local_aws::dynamodb_available() {
        return;
    }
    run(syncaroo_local::StoreKind::Dynamodb).await;
}
