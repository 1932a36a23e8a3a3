//! Errors that used to be swallowed are reported (correctness issue, item
//! 10): a redirect whose address is not a valid header value is a 500, not
//! a bare 302 without `Location`; a DescribeTable that fails for any reason
//! but "no such table" is that error, not an attempt to create the table;
//! a stream record without a sequence number, which `batchItemFailures`
//! cannot name, fails the invocation loudly instead of reporting `""`.
//! (The accept loop that spun on errors: local/tests/connection_cap.rs.)

use std::sync::Arc;
use std::time::Duration;
use syncaroo_shared::handlers;
use syncaroo_shared::store::{DynamoStore, MemoryStore};
use syncaroo_tests::fault_proxy::{self, Fault, Plan, Service};
use syncaroo_tests::{local_aws, TestApp};

#[tokio::test]
async fn a_redirect_that_cannot_carry_its_address_is_a_500_not_a_bare_302() {
    // A stray newline in a setting, as a copied environment value can hold.
    let config = syncaroo_shared::Config::from_lookup(|k| match k {
        "LOGIN_URL" => Some("https://yourapp.com/log\nin".into()),
        _ => None,
    })
    .unwrap();
    let t = TestApp::with(Arc::new(MemoryStore::new()), config);
    let resp =
        handlers::authorize(&t.app, syncaroo_tests::event("authorize-no-session.json")).await;
    assert!(
        resp.headers().get("location").is_none(),
        "no Location could be set"
    );
    assert_eq!(resp.status(), 500, "{}", syncaroo_tests::body_text(&resp));
}

#[tokio::test]
async fn a_describe_table_failure_is_reported_not_read_as_a_missing_table() {
    let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .ok()
        .filter(|_| local_aws::dynamodb_available())
    else {
        return;
    };
    let (plan, store) = behind_a_proxy(&endpoint, &local_aws::unique_table("describe")).await;
    plan.arm("DescribeTable", 1, usize::MAX, Fault::Status500);
    let err = store.ensure_table().await.unwrap_err();
    assert!(err.to_string().contains("DescribeTable"), "{err}");
    let ops: Vec<String> = plan.seen().into_iter().map(|s| s.op).collect();
    assert!(
        !ops.iter().any(|o| o == "CreateTable"),
        "tried to create the table: {ops:?}"
    );
    // Once DescribeTable answers, a missing table is created.
    plan.disarm();
    store.ensure_table().await.unwrap();
    store.ensure_table().await.unwrap();
}

#[tokio::test]
async fn a_failed_stream_record_without_a_sequence_number_fails_the_invocation() {
    let (t, _) = TestApp::memory();
    // The events' data target, notified, but no Syncaroo credentials: its
    // fetch fails and must be delivered again.
    t.seed_events_tokens().await;
    let ack = handlers::webhook(&t.app, syncaroo_tests::event("webhook-data.json")).await;
    assert_eq!(ack.status(), 202);
    let mut batch = syncaroo_tests::event_json("sync-stream-data.json");
    batch["Records"][0]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("SequenceNumber");
    let batch = serde_json::from_value(batch).unwrap();
    let dlq = syncaroo_shared::deadletter::MemoryDeadLetters::default();
    let out = syncaroo_shared::edge::on_stream(&t.app, &dlq, batch, None).await;
    let err = out.expect_err("the invocation fails");
    assert!(err.to_string().contains("sequence number"), "{err}");
}

/// A permanent fault is answered 500 without `Retry-After` (the rebuild
/// issue, "Errors"): a stored connection item that no longer reads as one
/// will read the same on every retry, so 503 "try again" would mislead.
/// A transient one (DynamoDB throttling past the SDK's retries) stays 503
/// with `Retry-After`.
#[tokio::test]
async fn a_malformed_item_is_a_500_and_throttling_a_503_with_retry_after() {
    let Some(store) = local_aws::dynamo_store("corrupt", syncaroo_tests::EVENTS_NOW).await else {
        return;
    };
    let store = Arc::new(store);
    let t = TestApp::with_store(store.clone());
    t.seed_events_tokens().await;
    let ok =
        handlers::check_connection(&t.app, syncaroo_tests::event("check-connection.json")).await;
    assert_eq!(ok.status(), 200, "{}", syncaroo_tests::body_text(&ok));
    // The connection item loses its `user`, as a hand edit in the console
    // or a bad migration could leave it.
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONN#99".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONNECTION".into()),
        )
        .update_expression("REMOVE #u")
        .expression_attribute_names("#u", "user")
        .send()
        .await
        .unwrap();
    let resp =
        handlers::check_connection(&t.app, syncaroo_tests::event("check-connection.json")).await;
    assert_eq!(resp.status(), 500, "{}", syncaroo_tests::body_text(&resp));
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(syncaroo_tests::body_json(&resp)["error"], "server_error");
    assert!(
        !syncaroo_tests::body_text(&resp).contains("CONN#"),
        "no store detail reaches the caller"
    );

    // Throttled on every try: transient, 503 with Retry-After.
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap();
    let (plan, proxied) = behind_a_proxy(&endpoint, store.table()).await;
    let throttled = TestApp::with_store(Arc::new(proxied));
    plan.arm("BatchGetItem", 1, usize::MAX, Fault::Throughput);
    let resp = handlers::check_connection(
        &throttled.app,
        syncaroo_tests::event("check-connection.json"),
    )
    .await;
    assert_eq!(resp.status(), 503, "{}", syncaroo_tests::body_text(&resp));
    assert_eq!(resp.headers()["retry-after"], "1");
}

/// A store on `table` whose DynamoDB requests pass through a fault proxy
/// (short timeouts and backoff), and the proxy's plan.
async fn behind_a_proxy(endpoint: &str, table: &str) -> (Arc<Plan>, DynamoStore) {
    let plan = Plan::new();
    let proxy = fault_proxy::start(Service::DynamoDb, endpoint, plan.clone()).await;
    let client = fault_proxy::dynamodb_client(
        &proxy,
        Duration::from_secs(2),
        Some(Duration::from_millis(5)),
    )
    .await;
    (plan, DynamoStore::new(client, table))
}
