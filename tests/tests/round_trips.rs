//! How many DynamoDB requests each request path makes, counted by a proxy in
//! front of DynamoDB Local, so a regression fails CI:
//! token exchange 1, refresh grant 1, check_connection <= 2 sequential,
//! webhook ack <= 2 sequential, a status change applied by the worker 4.

use std::sync::Arc;
use syncaroo_shared::handlers;
use syncaroo_tests::ddb_proxy::{proxied_store, proxied_store_on, Recorder};
use syncaroo_tests::{body_json, events_creds, local_aws, request, sign, TestApp, EVENTS_NOW};

async fn app() -> Option<(TestApp, Recorder)> {
    app_on(&local_aws::unique_table("rt")).await
}

async fn app_on(table: &str) -> Option<(TestApp, Recorder)> {
    if !local_aws::dynamodb_available() {
        return None;
    }
    let (store, rec) = proxied_store(table, EVENTS_NOW).await;
    let t = TestApp::with_store(Arc::new(store));
    t.seed_events_tokens().await;
    // As in a Lambda's init: the connections are warmed first.
    t.app.store.ping(2).await.expect("warm-up");
    rec.reset();
    Some((t, rec))
}

#[tokio::test]
async fn token_exchange_is_one_transaction() {
    let Some((t, rec)) = app().await else { return };
    let code = t.issue_code("321", "1").await;
    rec.reset();
    let resp = handlers::token(&t.app, t.code_request(&code)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(rec.ops(), ["TransactWriteItems"]);
}

#[tokio::test]
async fn refresh_grant_is_one_transaction() {
    let Some((t, rec)) = app().await else { return };
    let resp = handlers::token(&t.app, syncaroo_tests::event("token-refresh.json")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(rec.ops(), ["TransactWriteItems"]);
}

#[tokio::test]
async fn check_connection_is_two_sequential_round_trips() {
    let Some((t, rec)) = app().await else { return };
    let resp =
        handlers::check_connection(&t.app, syncaroo_tests::event("check-connection.json")).await;
    assert_eq!(resp.status(), 200);
    let mut ops = rec.ops();
    // The token and its connection, in one consistent BatchGetItem.
    assert_eq!(ops.remove(0), "BatchGetItem");
    ops.sort();
    assert_eq!(ops, ["Query", "UpdateItem"]);
    assert_eq!(
        rec.sequential_round_trips(),
        2,
        "the two writes/reads after the token run in parallel: {:?}",
        rec.calls()
    );
}

/// Posts `body`, signed, to the webhook handler with the events' token;
/// asserts it was acked and returns the signed body.
async fn post_webhook(t: &TestApp, body: serde_json::Value) -> String {
    let signed = sign(body, t.secrets.client_secret.expose());
    let req = request(
        "POST",
        "/api/update/",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
        ],
        signed.clone(),
    );
    let resp = handlers::webhook(&t.app, req).await;
    assert_eq!(resp.status(), 202, "{}", body_json(&resp));
    signed
}

/// Acks one signed webhook on a fresh app; the DynamoDB operations it made
/// and how many sequential round trips they took.
async fn ack(body: serde_json::Value) -> Option<(Vec<String>, usize)> {
    let (t, rec) = app().await?;
    post_webhook(&t, body).await;
    Some((
        rec.ops().into_iter().map(|o| o.to_string()).collect(),
        rec.sequential_round_trips(),
    ))
}

/// A status webhook notifies its location's status target: the token read
/// (with its connection, in one request), then one UpdateItem.
#[tokio::test]
async fn webhook_ack_is_two_sequential_round_trips() {
    let Some((ops, trips)) = ack(
        serde_json::json!({"connectionId": 99, "webhookType": "status", "locationId": "1198", "metaData": {"status": "open"}}),
    )
    .await
    else {
        return;
    };
    assert_eq!(
        (ops, trips),
        (vec!["BatchGetItem".to_string(), "UpdateItem".into()], 2)
    );
}

/// A data webhook marks its target: the token read (with its connection),
/// then one UpdateItem.
#[tokio::test]
async fn data_webhook_ack_is_two_sequential_round_trips() {
    let Some((ops, trips)) = ack(
        serde_json::json!({"connectionId": 99, "webhookType": "data", "locationId": "1198",
                           "metaData": {"attributeType": "rates", "apiUrl": "https://api.syncaroo.com/v1/rates"}}),
    )
    .await
    else {
        return;
    };
    assert_eq!(
        (ops, trips),
        (vec!["BatchGetItem".to_string(), "UpdateItem".into()], 2)
    );
}

#[tokio::test]
async fn consent_is_one_transaction() {
    let Some((t, rec)) = app().await else { return };
    let cookie = syncaroo_tests::event_json("authorize-consent.json")["cookies"][0]
        .as_str()
        .unwrap()
        .to_string();
    let page = handlers::authorize(&t.app, syncaroo_tests::event("authorize-consent.json")).await;
    assert!(rec.ops().is_empty(), "showing consent reads nothing");
    let req = syncaroo_tests::consent_post(&page, &cookie, "authorize");
    let resp = handlers::authorize(&t.app, req).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(rec.ops(), ["TransactWriteItems"]);
}

/// The SDK asks its HTTP client for a connector on every request; ours must
/// hand back the same pool each time, or the connection warmed during init
/// is never used and every request pays a new (on AWS, TLS) connection.
#[tokio::test]
async fn requests_reuse_the_warmed_connection() {
    let Some((t, rec)) = app().await else { return };
    for _ in 0..3 {
        let resp =
            handlers::check_connection(&t.app, syncaroo_tests::event("check-connection.json"))
                .await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(rec.ops().len(), 3 * 3);
    // The two warmed connections serve all of them.
    assert_eq!(
        rec.connections(),
        0,
        "{} connections for {} requests",
        rec.connections(),
        rec.ops().len()
    );
}

/// Init warms as many connections as a function's paths use at once
/// (`dynamo_connections` in each function's main): one where every request
/// waits for the one before (the webhook's ack then opens none), two for
/// check_connection, whose confirmation and listing go together and would
/// otherwise pay a new connection on the first call.
#[tokio::test]
async fn init_warms_as_many_connections_as_a_path_uses_at_once() {
    let table = local_aws::unique_table("width");
    // Tables and tokens made through another pool.
    if app_on(&table).await.is_none() {
        return;
    }
    let fresh = |width: usize| {
        let table = table.clone();
        async move {
            let (store, rec) = proxied_store_on(&table, EVENTS_NOW).await;
            let t = TestApp::with_store(Arc::new(store));
            t.app.store.ping(width).await.expect("warm-up");
            assert_eq!(rec.connections(), width, "ping({width})");
            (t, rec)
        }
    };
    let (t, rec) = fresh(1).await;
    let req = request(
        "POST",
        "/api/update/",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
        ],
        sign(
            serde_json::json!({"connectionId": 99, "webhookType": "status", "locationId": "1198", "metaData": {"status": "open"}}),
            t.secrets.client_secret.expose(),
        ),
    );
    assert_eq!(handlers::webhook(&t.app, req).await.status(), 202);
    assert_eq!(rec.connections(), 1, "the ack's two requests share one");

    let check = |t: TestApp| async move {
        let resp =
            handlers::check_connection(&t.app, syncaroo_tests::event("check-connection.json"))
                .await;
        assert_eq!(resp.status(), 200, "{}", body_json(&resp));
    };
    let (t, rec) = fresh(2).await;
    check(t).await;
    assert_eq!(rec.connections(), 2, "both warmed, none opened");
    let (t, rec) = fresh(1).await;
    check(t).await;
    assert_eq!(
        rec.connections(),
        2,
        "with one warmed, the parallel pair opens a second"
    );
}

/// The worker applying a status webhook: the target and the connection
/// (in parallel), the owner's location and the attempt count (in
/// parallel), the status put with the connection's generation checked (one
/// transaction), the target recorded done (its PutEvents goes
/// to EventBridge, not DynamoDB): 4 sequential round trips; delivered
/// again, the first alone finds it covered.
#[tokio::test]
async fn status_applied_by_the_worker_is_four_sequential_round_trips() {
    use syncaroo_shared::handlers::sync;
    let Some((t, rec)) = app().await else { return };
    let body = serde_json::json!({"connectionId": 99, "webhookType": "status", "locationId": "1198", "metaData": {"status": "open"}});
    let signed = post_webhook(&t, body).await;
    let delivered = sync::Delivered::Target(sync::target_of(
        &syncaroo_shared::webhook::Webhook::parse(signed.as_bytes()).unwrap(),
    ));
    let policy = sync::fetch_policy(&t.app);
    let dlq = syncaroo_shared::deadletter::MemoryDeadLetters::default();
    rec.reset();
    assert_eq!(
        sync::process(&t.app, &dlq, &delivered, &policy).await,
        sync::Outcome::Done
    );
    let mut ops: Vec<String> = rec.ops().into_iter().map(|o| o.to_string()).collect();
    ops.sort();
    assert_eq!(
        (ops, rec.sequential_round_trips()),
        (
            [
                "GetItem",
                "GetItem",
                "Query",
                "TransactWriteItems",
                "UpdateItem",
                "UpdateItem"
            ]
            .map(String::from)
            .to_vec(),
            4
        ),
        "{:?}",
        rec.calls()
    );
    rec.reset();
    assert_eq!(
        sync::process(&t.app, &dlq, &delivered, &policy).await,
        sync::Outcome::Skipped
    );
    assert_eq!(rec.sequential_round_trips(), 1);
}
