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

/// The local runner's admin key (the platform API's HTTP Basic locally).
const ADMIN_KEY: &str = "platform-reads-admin-key";

async fn setup(store: syncaroo_local::StoreKind) -> (Running, FakeSyncaroo, String) {
    let (r, fake) = runner_with_fake(store, "hooks", Some(ADMIN_KEY), &[]).await;
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

/// `GET` on the platform API as the local runner's admin.
async fn platform_get(r: &Running, path: &str) -> (u16, Value) {
    let resp = syncaroo_shared::tls::http_client_builder()
        .build()
        .unwrap()
        .get(format!("{}{path}", r.base()))
        .basic_auth("admin", Some(ADMIN_KEY))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A signed data webhook for `path` at the fake, and the target it names.
fn data_hook(
    fake: &FakeSyncaroo,
    secret: &str,
    attr: &str,
    resource: Option<&str>,
    path: &str,
) -> (String, SyncTarget) {
    let mut meta = json!({"attributeType": attr, "apiUrl": fake.fake.page_url(path, 1)});
    if let Some(r) = resource {
        meta["resourceId"] = json!(r);
    }
    let body =
        json!({"connectionId": 99, "webhookType": "data", "locationId": "1198", "metaData": meta});
    let target = SyncTarget {
        connection_id: ConnectionId::parse("99").unwrap(),
        location_id: "1198".into(),
        attribute_type: attr.into(),
        resource_id: resource.map(str::to_string),
    };
    (sign(body, secret), target)
}

/// Posts `hook` and waits until its target's fetch covers it.
async fn sync(r: &Running, bearer: &str, hook: &(String, SyncTarget)) {
    let (status, v) = post(r, bearer, "/api/update", &hook.0).await;
    assert_eq!(status, 202, "{v}");
    wait_covered(r, &hook.1).await;
}

/// The platform reads what was synced through its API, never our table:
/// three targets in pages of one with the cursor; one more change, read
/// from the saved cursor as exactly that target with its new data; a
/// result over 1 MB whole, through the `dataPath` its change event carries
/// instead of a table key; each location's latest status.
async fn platform_reads(store: syncaroo_local::StoreKind) {
    let (r, fake, bearer) = setup(store).await;
    let secret = r.setup.your_client_secret.clone();
    let data_route = "/api/platform/users/1/data";
    let rates = syncaroo_tests::seed::rates_in_three_pages(&fake);
    let location = "/api/v1/locations/1198";
    let resource = "/api/v1/locations/1198/resources/7843";
    fake.fake
        .set_pages(location, vec![vec![json!({"ID": "1198", "name": "Loft"})]]);
    fake.fake
        .set_pages(resource, vec![vec![json!({"ID": "7843", "v": 1})]]);
    let hooks = [
        data_hook(&fake, &secret, "rates", None, rates),
        data_hook(&fake, &secret, "locations", None, location),
        data_hook(&fake, &secret, "resources", Some("7843"), resource),
    ];
    for h in &hooks {
        sync(&r, &bearer, h).await;
    }
    let mut cursor = None::<String>;
    let mut read = Vec::new();
    for i in 0..3 {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (status, page) = platform_get(&r, &format!("{data_route}?limit=1{q}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(page["hasMore"], i < 2, "{page}");
        read.push(
            page["items"][0]["attributeType"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        cursor = Some(page["cursor"].as_str().unwrap().to_string());
    }
    assert_eq!(read, ["rates", "locations", "resources"]);
    let cursor = cursor.unwrap();

    // One more change: only it comes after the saved cursor.
    fake.fake
        .set_pages(resource, vec![vec![json!({"ID": "7843", "v": 2})]]);
    sync(&r, &bearer, &hooks[2]).await;
    let (_, page) = platform_get(&r, &format!("{data_route}?cursor={cursor}")).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(
        (&items[0]["resourceId"], &items[0]["data"]),
        (&json!("7843"), &json!([{"ID": "7843", "v": 2}]))
    );
    assert_eq!(page["hasMore"], false);
    let cursor = page["cursor"].as_str().unwrap().to_string();

    // Over 1 MB in three pages: the event carries dataPath, which reads it
    // whole.
    let big: Vec<Vec<Value>> = (0..3)
        .map(|p| {
            (0..400)
                .map(|i| json!({"p": p, "i": i, "pad": "é".repeat(500)}))
                .collect()
        })
        .collect();
    fake.fake.set_pages(rates, big.clone());
    sync(&r, &bearer, &hooks[0]).await;
    let event = r
        .change_events
        .entries()
        .into_iter()
        .rev()
        .find(|e| e.detail_type == "Syncaroo Data Synced")
        .unwrap();
    let detail: Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["truncated"], true, "{detail}");
    assert!(detail.get("stored").is_none(), "no table key: {detail}");
    let path = detail["dataPath"].as_str().unwrap();
    assert_eq!(
        path,
        "/api/platform/users/1/data?connectionId=99&locationId=1198&attributeType=rates&locationLevel=true"
    );
    let (status, page) = platform_get(&r, path).await;
    assert_eq!(status, 200);
    let whole: Vec<Value> = big.into_iter().flatten().collect();
    assert!(serde_json::to_string(&whole).unwrap().len() > 1_000_000);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["data"], Value::Array(whole));
    assert_eq!(page["items"][0]["pages"], 3);
    let (_, after) = platform_get(&r, &format!("{data_route}?cursor={cursor}")).await;
    assert_eq!(after["items"][0]["attributeType"], "rates");

    // Statuses: each location's latest.
    let status_hook = sign(
        json!({"connectionId": 99, "webhookType": "status", "locationId": "1198", "metaData": {"status": "closed"}}),
        &secret,
    );
    let status_target = SyncTarget::status(ConnectionId::parse("99").unwrap(), "1198".into());
    sync(&r, &bearer, &(status_hook, status_target)).await;
    let (status, statuses) = platform_get(&r, "/api/platform/users/1/status").await;
    assert_eq!(status, 200);
    assert_eq!(statuses["locations"]["1198"]["connectionId"], "99");
    assert_eq!(
        statuses["locations"]["1198"]["metaData"],
        json!({"status": "closed"})
    );

    // Bad input is a 400 in the platform API's shape.
    for bad in [
        "?cursor=nope",
        "?limit=0",
        "?limit=1001",
        "?resourceId=a&locationLevel=true",
    ] {
        let (status, v) = platform_get(&r, &format!("{data_route}{bad}")).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {v}"
        );
    }
    r.stop();
}

#[tokio::test]
async fn platform_reads_in_memory() {
    platform_reads(syncaroo_local::StoreKind::Memory).await;
}

#[tokio::test]
async fn platform_reads_on_dynamodb_local() {
    if !local_aws::dynamodb_available() {
        return;
    }
    platform_reads(syncaroo_local::StoreKind::Dynamodb).await;
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
