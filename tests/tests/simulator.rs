//! The Syncaroo simulator end to end against the local runner, on the
//! embedded store and on DynamoDB Local; and against runners with one piece
//! deliberately broken, where it must fail and say where and why.

use syncaroo_local::StoreKind;
use syncaroo_sim::checks::Status;
use syncaroo_sim::run::{run, Report, SimOptions};
use syncaroo_tests::{local_aws, runner_with_fake};

async fn simulate(store: StoreKind, settings: &[(&str, &str)]) -> Report {
    let (r, fake) = runner_with_fake(store, "sim", None, settings).await;
    let mut o = SimOptions::new(
        &r.setup.site_uri,
        &r.setup.your_client_id,
        &r.setup.your_client_secret,
    );
    o.admin_key = Some(r.admin_key.clone());
    o.refresh_grace = std::time::Duration::from_secs(1);
    let report = run(&o, &fake.fake).await;
    r.stop();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_passes_against_the_local_runner_in_memory() {
    let report = simulate(StoreKind::Memory, &[]).await;
    assert!(report.passed(), "{}", report.table());
    assert!(report.findings.len() >= 13, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_passes_against_the_local_runner_on_dynamodb_local() {
    if !local_aws::dynamodb_available() {
        return;
    }
    let report = simulate(StoreKind::Dynamodb, &[]).await;
    assert!(report.passed(), "{}", report.table());
}

#[tokio::test]
async fn a_wrong_hash_key_fails_the_webhook_steps_with_the_reason() {
    // The runner verifies a different profile than the one Syncaroo signs with.
    let report = simulate(
        StoreKind::Memory,
        &[("WEBHOOK_HASH_ALGORITHM", "hmac-sha512")],
    )
    .await;
    assert!(!report.passed());
    let failed = report.failed();
    let status = failed
        .iter()
        .find(|s| s.check.id == "webhook.status-accepted")
        .expect("the status webhook step fails");
    assert!(
        status.detail.contains("expected 2xx, got 401"),
        "{}",
        status.detail
    );
    assert!(
        status.detail.contains("invalid_signature"),
        "{}",
        status.detail
    );
    // The steps before webhooks still pass.
    assert!(
        report
            .findings
            .iter()
            .take(6)
            .all(|s| s.status == Status::Pass),
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn a_wrong_expires_format_fails_the_token_step_with_the_reason() {
    let report = simulate(StoreKind::Memory, &[("TOKEN_EXPIRES_FORMAT", "rfc3339")]).await;
    assert!(!report.passed());
    assert_eq!(report.status("token.code-exchange"), Some(Status::Pass));
    let step = report
        .findings
        .iter()
        .find(|f| f.check.id == "token.expires-format")
        .unwrap();
    assert_eq!(step.status, Status::Fail);
    assert!(
        step.detail
            .contains("expected expires as YYYY-MM-DDTHH:MM:SS"),
        "{}",
        step.detail
    );
    assert!(
        step.detail.contains('Z'),
        "names what it got: {}",
        step.detail
    );
}
