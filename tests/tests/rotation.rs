//! Rotating `yourClientSecret` at handler depth, on the in-memory store: the
//! app's secrets hold a new client secret and the one it replaced (as the
//! local runner's `--previous-client-secret` and Secrets Manager's
//! `AWSPREVIOUS` give them). During the grace both work at the token
//! endpoint and for webhook hashes, and the log says which one a caller
//! used; after the grace only the new one. (On moto's Secrets Manager,
//! through `syncaroo-admin secrets rotate-client-secret`: admin-cli's tests.)

use serde_json::json;
use std::sync::Arc;
use syncaroo_shared::handlers;
use syncaroo_shared::secrets::{PreviousSecret, RotatingSecrets, SecretString};
use syncaroo_shared::store::MemoryStore;
use syncaroo_tests::{
    events_creds, events_secrets, form, logs, request, sign, test_config, TestApp, EVENTS_NOW,
};

const OLD: &str = "the-secret-syncaroo-held-until-today";
const GRACE: i64 = 86_400;

/// The events' app, whose client secret was rotated from OLD `ago`
/// seconds before the handlers' clock.
async fn rotated(ago: i64) -> TestApp {
    let secrets = events_secrets();
    let source = RotatingSecrets {
        current: secrets.clone(),
        previous: Some(PreviousSecret {
            secret: SecretString::new(OLD),
            rotated_at: EVENTS_NOW - ago,
        }),
    };
    let t = TestApp::with_source(Arc::new(MemoryStore::new()), test_config(), secrets, source);
    t.seed_events_tokens().await;
    t
}

/// The token endpoint's verdict on `secret`: 401 when client
/// authentication refuses it, else the grant's own answer (400
/// invalid_grant for this unknown code).
async fn token_status(t: &TestApp, secret: &str) -> u16 {
    let req = request(
        "POST",
        "/api/oauth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        form(&[
            ("clientId", &t.app.config.client_id),
            ("clientSecret", secret),
            ("code", "scb_code_unknown"),
            ("grantType", "authorization_code"),
        ]),
    );
    handlers::token(&t.app, req).await.status().as_u16()
}

/// A data webhook signed with `key`: the webhook endpoint's status.
async fn webhook_status(t: &TestApp, key: &str) -> u16 {
    let body = sign(
        json!({"connectionId": 99, "webhookType": "data", "locationId": "1198",
               "metaData": {"attributeType": "rates", "apiUrl": "https://api.syncaroo.com/api/v1/r"}}),
        key,
    );
    let req = request(
        "POST",
        "/api/update/",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
        ],
        body,
    );
    handlers::webhook(&t.app, req).await.status().as_u16()
}

#[tokio::test]
async fn both_secrets_work_during_the_grace_then_only_the_new_one() {
    let cap = logs::capture();
    let t = rotated(60).await;
    let new = t.secrets.client_secret.expose().to_string();
    assert_eq!(token_status(&t, &new).await, 400, "authenticated");
    assert_eq!(token_status(&t, OLD).await, 400, "the replaced one too");
    assert_eq!(token_status(&t, "guess").await, 401);
    assert_eq!(webhook_status(&t, &new).await, 202);
    assert_eq!(webhook_status(&t, OLD).await, 202);
    let forged = webhook_status(&t, "guess").await;
    assert!((400..500).contains(&forged), "{forged}");
    let text = cap.text();
    assert!(
        text.contains("client_secret=\"previous\""),
        "the log names the one used"
    );
    assert!(text.contains("client_secret=\"current\""));
    assert!(
        !text.contains(OLD) && !text.contains(&new),
        "no secret in the log"
    );

    // The grace runs from the rotation: a minute ago plus a day.
    t.clock.advance(GRACE - 60 + 1);
    assert_eq!(token_status(&t, OLD).await, 401);
    assert_eq!(token_status(&t, &new).await, 400);
    // Webhooks (with a live bearer: a fresh app, rotated a day and a second
    // before its clock).
    let t = rotated(GRACE + 1).await;
    assert_eq!(webhook_status(&t, OLD).await, forged);
    assert_eq!(token_status(&t, &new).await, 400);
    assert_eq!(webhook_status(&t, &new).await, 202);
}
