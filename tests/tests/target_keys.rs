//! Targets are told apart exactly as the webhooks name them (correctness
//! issue, item 1), black-box against the local runner's address on both
//! stores. Ids may contain the characters keys are joined with (`#`) and
//! may equal the placeholder a key wrote for "no resource" (`-`); each of
//! these targets is notified, fetched, stored and announced on its own:
//!
//! | location     | resource   | joined by hand as                  |
//! |--------------|------------|------------------------------------|
//! | `1198`       | none       | `1198#rates#-`                     |
//! | `1198`       | `-`        | `1198#rates#-` (the same)          |
//! | `1198#rates` | none       | `1198#rates#rates#-`               |
//! | `1198`       | `rates#-`  | `1198#rates#rates#-` (the same)    |

use serde_json::{json, Value};
use std::time::Duration;
use syncaroo_local::StoreKind;
use syncaroo_shared::model::ConnectionId;
use syncaroo_sim::sender::Sender;
use syncaroo_tests::{connect_over_http, local_aws, runner_with_fake, seed};

const TARGETS: [(&str, Option<&str>); 4] = [
    ("1198", None),
    ("1198", Some("-")),
    ("1198#rates", None),
    ("1198", Some("rates#-")),
];

async fn every_target_is_its_own(store: StoreKind) {
    let (r, fake) = runner_with_fake(
        store,
        "target-keys",
        None,
        &[("SYNC_MIN_FETCH_INTERVAL_MS", "0")],
    )
    .await;
    seed::fake_credentials(r.store.as_ref(), &fake).await;
    // The demo user lists 1198; `1198#rates` is theirs too.
    syncaroo_local::import_listings(
        r.store.as_ref(),
        &json!({"userId": "1", "locations": {"1198#rates": {"ID": "1198#rates", "name": "Odd id", "status": "active"}}})
            .to_string(),
    )
    .await
    .unwrap();
    let bearer = connect_over_http(&r, "4242").await;
    let sender = Sender::new(
        format!("{}{}", r.setup.api_uri, r.setup.webhook_path),
        r.setup.your_client_secret.clone(),
    );
    let mut target_ids = vec![];
    for (i, (location, resource)) in TARGETS.iter().enumerate() {
        let path = format!("/api/v1/target-keys/{i}");
        fake.fake.set_pages(&path, vec![vec![json!({"target": i})]]);
        let mut meta = json!({"attributeType": "rates", "apiUrl": fake.fake.page_url(&path, 1)});
        if let Some(res) = resource {
            meta["resourceId"] = json!(res);
        }
        let d = sender
            .send(
                &bearer,
                json!({"connectionId": 4242, "webhookType": "data", "locationId": location, "metaData": meta}),
            )
            .await
            .unwrap();
        assert_eq!(d.status, 202, "{location} {resource:?}: {}", d.body);
        target_ids.push(d.body["targetId"].as_str().unwrap().to_string());
    }
    let mut distinct = target_ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "four target ids: {target_ids:?}");

    let conn = ConnectionId::parse("4242").unwrap();
    let stored = async |(location, resource): (&str, Option<&str>)| {
        r.store
            .get_synced(&conn, location, "rates", resource)
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.fake.data_requests() < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.fake.data_requests(), 4, "each target fetched once");
    for (i, target) in TARGETS.into_iter().enumerate() {
        let mut got = None;
        while std::time::Instant::now() < deadline {
            got = stored(target).await;
            if got.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = got.unwrap_or_else(|| panic!("{target:?}: nothing stored"));
        let data: Value = serde_json::from_str(&got.data).unwrap();
        assert_eq!(
            data,
            json!([{"target": i}]),
            "{:?} holds its own data",
            TARGETS[i]
        );
        assert_eq!(
            (
                got.target.location_id.as_str(),
                got.target.resource_id.as_deref()
            ),
            target,
            "kept as given"
        );
    }
    // Announced apart: one Data Synced entry per target, with its own ids.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut announced: Vec<(String, Value, Value)> = r
        .change_events
        .entries()
        .iter()
        .filter(|e| e.detail_type == "Syncaroo Data Synced")
        .map(|e| {
            let d: Value = serde_json::from_str(&e.detail).unwrap();
            (
                d["locationId"].as_str().unwrap().to_string(),
                d["resourceId"].clone(),
                d["records"].clone(),
            )
        })
        .collect();
    announced.sort_by_key(|a| a.2.to_string());
    let want: Vec<(String, Value, Value)> = TARGETS
        .iter()
        .enumerate()
        .map(|(i, (l, res))| (l.to_string(), json!(res), json!([{"target": i}])))
        .collect();
    assert_eq!(announced, want);
    r.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_is_its_own_in_memory() {
    every_target_is_its_own(StoreKind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_is_its_own_on_dynamodb_local() {
    if !local_aws::dynamodb_available() {
        return;
    }
    every_target_is_its_own(StoreKind::Dynamodb).await;
}
