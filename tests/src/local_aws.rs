//! The local AWS stand-ins `scripts/test.sh` starts: DynamoDB Local and
//! moto (Secrets Manager, EventBridge, SQS), reached through the standard
//! `AWS_ENDPOINT_URL_*` variables.
//!
//! When the variables are absent a test that needs them is skipped with a
//! notice, unless `SYNCAROO_REQUIRE_LOCAL_AWS=1` (as in CI), when it fails.

use syncaroo_shared::store::DynamoStore;

fn required() -> bool {
    std::env::var("SYNCAROO_REQUIRE_LOCAL_AWS").is_ok_and(|v| v == "1")
}

fn available(var: &str, what: &str) -> bool {
    if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
        return true;
    }
    if required() {
        panic!("{var} is not set but SYNCAROO_REQUIRE_LOCAL_AWS=1: {what} must be running (bash scripts/test.sh starts it)");
    }
    eprintln!("SKIPPED: {var} not set; run `bash scripts/test.sh` to test against {what}");
    false
}

pub fn dynamodb_available() -> bool {
    available("AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB Local")
}

pub fn secrets_manager_available() -> bool {
    available(
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "the Secrets Manager server",
    )
}

/// moto's EventBridge and SQS (the same server as Secrets Manager).
pub fn eventbridge_available() -> bool {
    available("AWS_ENDPOINT_URL_EVENTBRIDGE", "moto's EventBridge")
        && available("AWS_ENDPOINT_URL_SQS", "moto's SQS")
}

/// A unique table name, so tests run in parallel without sharing state.
pub fn unique_table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        syncaroo_shared::crypto::random_b64(4).replace(['-', '_'], "x")
    )
}

/// The TTL shift for a store driven by handlers whose clock reads
/// `handlers_now`: DynamoDB Local's sweeper runs on the wall clock, so the
/// `ttl` attributes move by the distance between the two (zero for a test
/// on the real clock). This keeps a fixed-clock test green on any date.
pub fn ttl_shift_for(handlers_now: i64) -> i64 {
    use syncaroo_shared::clock::{Clock, SystemClock};
    SystemClock.now() - handlers_now
}

/// A fresh table on DynamoDB Local for handlers whose clock reads
/// `handlers_now`, or `None` when it is not running.
pub async fn dynamo_store(prefix: &str, handlers_now: i64) -> Option<DynamoStore> {
    if !dynamodb_available() {
        return None;
    }
    let store = DynamoStore::from_env(unique_table(prefix))
        .await
        .with_ttl_shift(ttl_shift_for(handlers_now));
    store
        .ensure_table()
        .await
        .expect("create table on DynamoDB Local");
    Some(store)
}

pub async fn secrets_client() -> Option<aws_sdk_secretsmanager::Client> {
    if !secrets_manager_available() {
        return None;
    }
    let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
    Some(aws_sdk_secretsmanager::Client::new(&sdk))
}

/// A fresh SQS queue on moto: its URL and ARN.
pub async fn sqs_queue(sdk: &aws_config::SdkConfig, prefix: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(unique_table(prefix))
        .send()
        .await
        .expect("CreateQueue on moto")
        .queue_url
        .expect("a queue URL");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes on moto")
        .attributes
        .expect("attributes")[&A::QueueArn]
        .clone();
    (url, arn)
}

/// A fresh EventBridge bus on moto with a rule (`pattern`) whose target is
/// a fresh SQS queue, as a platform subscribes: the bus name and the
/// queue's URL.
pub async fn bus_with_queue(sdk: &aws_config::SdkConfig, pattern: &str) -> (String, String) {
    let eb = aws_sdk_eventbridge::Client::new(sdk);
    let bus = unique_table("bus");
    eb.create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("CreateEventBus on moto");
    let (url, arn) = sqs_queue(sdk, "subscriber").await;
    eb.put_rule()
        .name("subscription")
        .event_bus_name(&bus)
        .event_pattern(pattern)
        .send()
        .await
        .expect("PutRule on moto");
    eb.put_targets()
        .rule("subscription")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(arn)
                .build()
                .expect("a target"),
        )
        .send()
        .await
        .expect("PutTargets on moto");
    (bus, url)
}

/// Message bodies off the queue at `url` (each deleted once read) until
/// `n` arrived or `secs` passed.
pub async fn drain(sdk: &aws_config::SdkConfig, url: &str, n: usize, secs: u64) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut got = Vec::new();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while got.len() < n && std::time::Instant::now() < until {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage on moto");
        for m in out.messages() {
            got.push(m.body().unwrap_or_default().to_string());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage on moto");
        }
    }
    got
}
