//! The admin handshake as a new user would try it: the local runner pointed
//! at the fake Syncaroo, the connect route visited with the admin key, the
//! redirects followed, the credentials stored.

use syncaroo_local::{ADMIN_CONFIRM_PATH, ADMIN_CONNECT_PATH, ADMIN_STATUS_PATH};
use syncaroo_tests::{local_aws, logs, runner_with_fake};

fn client() -> reqwest::Client {
    syncaroo_shared::tls::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn run(store: syncaroo_local::StoreKind) {
    let cap = logs::capture();
    let (r, fake) = runner_with_fake(
        store,
        "admin",
        Some("local-admin-key-0123456789abcdef0123"),
        &[],
    )
    .await;
    let http = client();
    let connect = format!("{}{ADMIN_CONNECT_PATH}", r.base());

    // Anonymous and wrong-key calls are refused, and write nothing.
    let anon = http.get(&connect).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong = http
        .get(&connect)
        .basic_auth("admin", Some("guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let anon_confirm = http
        .get(format!("{}{ADMIN_CONFIRM_PATH}?code=x&state=y", r.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(anon_confirm.status(), 401);
    assert!(r.store.get_credentials().await.unwrap().is_none());

    // The admin: connect -> Syncaroo authorize -> back to confirm.
    let (at_syncaroo, confirm, done) = handshake(&r, &http).await;
    assert!(
        at_syncaroo.starts_with(&format!("{}authorize?clientId=", fake.base())),
        "{at_syncaroo}"
    );
    assert!(at_syncaroo.contains("&responseType=code&scope=&state="));
    assert!(
        confirm.starts_with(&format!("{}{ADMIN_CONFIRM_PATH}?code=", r.base())),
        "{confirm}"
    );
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Connected to Syncaroo"));
    let c = r
        .store
        .get_credentials()
        .await
        .unwrap()
        .expect("credentials stored");
    assert!(fake.fake.access_valid(c.access_token.expose()));
    assert_eq!(
        fake.fake
            .code_exchanges
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    // The state is single-use.
    let again = http
        .get(&confirm)
        .basic_auth("admin", Some(&r.admin_key))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(
        fake.fake
            .code_exchanges
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    let status = admin_status(&r, &http).await;
    assert_eq!(status["connected"], true);
    assert_eq!(status["version"], 1);
    assert!(status.get("accessToken").is_none() && !status.to_string().contains("sya_"));

    // The token provider now serves callers from those credentials.
    let token = r.app.provider().access_token().await.unwrap();
    assert_eq!(token.expose(), c.access_token.expose());
    let logged = cap.text();
    for line in logged.lines() {
        if line.contains(c.access_token.expose()) || line.contains(c.refresh_token.expose()) {
            eprintln!("LEAK: {}", &line[..line.len().min(900)]);
        }
    }
    assert!(
        !logged.contains(c.access_token.expose()) && !logged.contains(c.refresh_token.expose())
    );
    assert!(!logged.contains(&r.admin_key));
    reauth_then_restored(&r, &fake, &http).await;
    r.stop();
}

/// The admin status page's JSON.
async fn admin_status(r: &syncaroo_local::Running, http: &reqwest::Client) -> serde_json::Value {
    http.get(format!("{}{ADMIN_STATUS_PATH}", r.base()))
        .basic_auth("admin", Some(&r.admin_key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The admin's handshake: the connect page (with the admin key), Syncaroo's
/// authorize URL it redirects to, and back to the confirm page. Returns
/// where it went and the confirm page's answer.
async fn handshake(
    r: &syncaroo_local::Running,
    http: &reqwest::Client,
) -> (String, String, reqwest::Response) {
    let to_syncaroo = http
        .get(format!("{}{ADMIN_CONNECT_PATH}", r.base()))
        .basic_auth("admin", Some(&r.admin_key))
        .send()
        .await
        .unwrap();
    assert_eq!(to_syncaroo.status(), 302);
    let at_syncaroo = to_syncaroo.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let back = http.get(&at_syncaroo).send().await.unwrap();
    let confirm = back.headers()["location"].to_str().unwrap().to_string();
    let done = http
        .get(&confirm)
        .basic_auth("admin", Some(&r.admin_key))
        .send()
        .await
        .unwrap();
    (at_syncaroo, confirm, done)
}

/// Syncaroo refuses our refresh token: `Syncaroo Credentials Need Reauth`
/// is put; the admin reconnects: `Syncaroo Credentials Restored`.
async fn reauth_then_restored(
    r: &syncaroo_local::Running,
    fake: &syncaroo_sim::FakeSyncaroo,
    http: &reqwest::Client,
) {
    use syncaroo_shared::syncaroo::ProviderError;
    let now = syncaroo_shared::clock::Clock::now(&syncaroo_shared::clock::SystemClock);
    let refresh = syncaroo_tests::store_expired_pair(r.store.as_ref(), fake, now).await;
    fake.fake.fail_next([syncaroo_sim::Failure::InvalidGrant]);
    assert!(matches!(
        r.app.provider().access_token().await,
        Err(ProviderError::NeedsReauth(_))
    ));
    let kinds = |r: &syncaroo_local::Running| {
        r.change_events
            .entries()
            .into_iter()
            .map(|e| (e.detail_type, e.detail))
            .collect::<Vec<_>>()
    };
    let reauth: Vec<_> = kinds(r)
        .into_iter()
        .filter(|(k, _)| k == "Syncaroo Credentials Need Reauth")
        .collect();
    assert_eq!(reauth.len(), 1, "{reauth:?}");
    assert!(reauth[0].1.contains("invalid_grant") && !reauth[0].1.contains(&refresh));
    let status = admin_status(r, http).await;
    assert_eq!(status["status"], "needs_reauth", "{status}");

    // The admin reconnects through the same handshake.
    let (_, _, done) = handshake(r, http).await;
    assert_eq!(done.status(), 200);
    let restored: Vec<_> = kinds(r)
        .into_iter()
        .filter(|(k, _)| k == "Syncaroo Credentials Restored")
        .collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    let d: serde_json::Value = serde_json::from_str(&restored[0].1).unwrap();
    assert_eq!(d["status"], "active");
    assert!(d["version"].as_u64().unwrap() > 1);
}

#[tokio::test]
async fn admin_connect_against_the_fake_syncaroo_in_memory() {
    run(syncaroo_local::StoreKind::Memory).await;
}

#[tokio::test]
async fn admin_connect_against_the_fake_syncaroo_on_dynamodb_local() {
    if !local_aws::dynamodb_available() {
        return;
    }
    run(syncaroo_local::StoreKind::Dynamodb).await;
}

/// The SDK logs whole DynamoDB and Secrets Manager bodies at TRACE; the
/// production filter caps those targets whatever RUST_LOG asks for.
#[test]
fn sdk_body_logs_are_capped_even_at_trace() {
    let cap = logs::capture();
    tracing::trace!(target: "aws_smithy_runtime::client::orchestrator::http", "body=SECRET-BODY-123");
    tracing::debug!(target: "aws_sdk_secretsmanager::operation", "SecretString=SECRET-BODY-456");
    tracing::trace!(target: "syncaroo_shared::handlers", "ours-visible-789");
    let text = cap.text();
    assert!(!text.contains("SECRET-BODY-123") && !text.contains("SECRET-BODY-456"));
    assert!(
        text.contains("ours-visible-789"),
        "our own TRACE lines still show"
    );
}
