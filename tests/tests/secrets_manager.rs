//! The Secrets Manager source and its cache against a real
//! Secrets-Manager-compatible server (moto, started by scripts/test.sh).

use std::sync::Arc;
use syncaroo_shared::clock::{Clock, ManualClock, SystemClock};
use syncaroo_shared::secrets::{CachedSecrets, SecretSource, SecretsManagerSource};
use syncaroo_tests::local_aws;

fn doc(client_secret: &str) -> String {
    let k = "k".repeat(40);
    format!(r#"{{"clientSecret":"{client_secret}","sessionKey":"{k}","tokenHashKey":"{k}"}}"#)
}

#[tokio::test]
async fn loads_caches_and_rotates() {
    let Some(client) = local_aws::secrets_client().await else {
        return;
    };
    let name = local_aws::unique_table("bridge-secret");
    let first = "first-client-secret-0123456789abcdefgh";
    client
        .create_secret()
        .name(&name)
        .secret_string(doc(first))
        .send()
        .await
        .unwrap();

    let clock = Arc::new(ManualClock::new(1_000));
    let cache = CachedSecrets::new(
        SecretsManagerSource::new(client.clone(), &name),
        clock.clone(),
        std::time::Duration::from_secs(300),
    );
    assert_eq!(cache.get().await.unwrap().client_secret.expose(), first);

    let second = "second-client-secret-0123456789abcdefg";
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string(doc(second))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cache.get().await.unwrap().client_secret.expose(),
        first,
        "cached within the TTL"
    );
    clock.advance(301);
    assert_eq!(
        cache.get().await.unwrap().client_secret.expose(),
        second,
        "re-read after the TTL"
    );
}

#[tokio::test]
async fn missing_and_malformed_secrets_fail_without_echoing_values() {
    let Some(client) = local_aws::secrets_client().await else {
        return;
    };
    let missing = SecretsManagerSource::new(client.clone(), "does-not-exist-xyz");
    let err = missing.load().await.unwrap_err().to_string();
    assert!(err.contains("does-not-exist-xyz"), "{err}");

    let name = local_aws::unique_table("bad-secret");
    let leaked = "short-but-visible-value";
    client
        .create_secret()
        .name(&name)
        .secret_string(format!(r#"{{"clientSecret":"{leaked}"}}"#))
        .send()
        .await
        .unwrap();
    let err = SecretsManagerSource::new(client.clone(), &name)
        .load()
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains(leaked), "the error quotes the secret: {err}");

    let weak = local_aws::unique_table("weak-secret");
    client
        .create_secret()
        .name(&weak)
        .secret_string(doc("tooshort"))
        .send()
        .await
        .unwrap();
    let err = SecretsManagerSource::new(client, &weak)
        .load()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at least 32") && !err.contains("tooshort"),
        "{err}"
    );
}

/// The template's layout: three secrets, one generated key each, read
/// concurrently and merged.
#[tokio::test]
async fn reads_the_templates_three_secrets_as_one() {
    let Some(client) = local_aws::secrets_client().await else {
        return;
    };
    let mut ids = vec![];
    for key in ["clientSecret", "sessionKey", "tokenHashKey"] {
        let name = local_aws::unique_table(key);
        let value = format!(r#"{{"{key}":"{}"}}"#, key.repeat(8));
        let out = client
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
        ids.push(out.arn().unwrap().to_string());
    }
    let source = SecretsManagerSource::new(client, ids.join(","));
    let s = source.load().await.unwrap();
    assert_eq!(s.session_key.expose(), "sessionKey".repeat(8));
    assert_eq!(s.token_hash_key.expose(), "tokenHashKey".repeat(8));
}

/// The Lambda wiring itself: App::from_aws_env against both local servers.
#[tokio::test]
async fn lambda_wiring_reads_secret_and_warms_dynamodb() {
    if !local_aws::dynamodb_available() {
        return;
    }
    let Some(client) = local_aws::secrets_client().await else {
        return;
    };
    let name = local_aws::unique_table("wiring-secret");
    client
        .create_secret()
        .name(&name)
        .secret_string(doc(&"c".repeat(40)))
        .send()
        .await
        .unwrap();
    let store = local_aws::dynamo_store("wiring", SystemClock.now())
        .await
        .unwrap();
    // from_aws_env reads the process environment; these two are ours alone.
    std::env::set_var("SECRET_ID", &name);
    std::env::set_var("TABLE_NAME", store.table());
    // A deployed function refuses to start on the placeholder login URL.
    std::env::set_var("LOGIN_URL", "https://shop.example/login");
    let (app, _) = syncaroo_shared::App::from_aws_env(2).await.expect("wiring");
    assert_eq!(
        app.secrets.get().await.unwrap().client_secret.expose(),
        "c".repeat(40)
    );
    assert_eq!(app.config.table_name, store.table());
}
