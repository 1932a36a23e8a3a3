//! Seeds DynamoDB (from the AWS environment) with what the `events/` files
//! refer to: the events' code (unredeemed), their access and refresh tokens
//! (under another code), and the demo listings; prints the secret JSON the
//! files were signed with. Used by tests/e2e/lambda_emulator.sh.

use crate::{events_creds, events_secrets};
use std::sync::Arc;
use syncaroo_shared::clock::{Clock, SystemClock};
use syncaroo_shared::crypto;
use syncaroo_shared::model::{
    AuthCodeRecord, ConnectionId, GrantPayload, TokenKind, TokenRecord, UserId, CODE_PREFIX,
};
use syncaroo_shared::store::{CodeRedemption, DynamoStore, Store};

/// Seeds `table` and returns the secret document the events were made with.
pub async fn seed_events(table: &str) -> serde_json::Value {
    let store = DynamoStore::from_env(table).await;
    store.ensure_table().await.expect("table");
    let store: Arc<dyn Store> = Arc::new(store);
    let secrets = events_secrets();
    let now = SystemClock.now();
    let conn = ConnectionId::parse(events_creds::CONNECTION).unwrap();
    let user = UserId::parse(events_creds::USER).unwrap();
    let code = |raw: &str, family: &str| AuthCodeRecord {
        hash: secrets.token_hash(raw),
        connection_id: conn.clone(),
        user_id: user.clone(),
        client_id: "syncaroo".into(),
        redirect_uri: "https://app.syncaroo.com/connection".into(),
        family: family.into(),
        expires_at: now + 600,
    };
    // The events' own code stays unredeemed, for token-exchange.json.
    store
        .begin_authorization(&code(events_creds::CODE, events_creds::FAMILY), now)
        .await
        .expect("code");
    // Another code carries the events' access and refresh tokens.
    let seed = code("seed-code-for-events", events_creds::FAMILY);
    store
        .begin_authorization(&seed, now)
        .await
        .expect("seed code");
    let tok = |raw: &str, kind, ttl: i64| TokenRecord {
        hash: secrets.token_hash(raw),
        kind,
        connection_id: conn.clone(),
        user_id: user.clone(),
        client_id: "syncaroo".into(),
        family: events_creds::FAMILY.into(),
        expires_at: now + ttl,
        revoked: false,
        used_at: None,
    };
    store
        .redeem_code(&CodeRedemption {
            code_hash: seed.hash.clone(),
            client_id: "syncaroo".into(),
            redirect_uri: None,
            connection_id: conn.clone(),
            user_id: user.clone(),
            family: events_creds::FAMILY.into(),
            now,
            access: tok(events_creds::ACCESS, TokenKind::Access, 3600),
            refresh: tok(events_creds::REFRESH, TokenKind::Refresh, 86_400),
        })
        .await
        .expect("tokens");
    syncaroo_local::import_listings(store.as_ref(), syncaroo_local::DEMO_LISTINGS)
        .await
        .expect("listings");
    notify_stream_sample(store.as_ref()).await;
    serde_json::json!({
        "clientSecret": secrets.client_secret.expose(),
        "sessionKey": secrets.session_key.expose(),
        "tokenHashKey": secrets.token_hash_key.expose(),
        "adminKey": secrets.admin_key.as_ref().unwrap().expose(),
        "syncarooClientId": secrets.syncaroo_client_id.as_ref().unwrap().expose(),
        "syncarooClientSecret": secrets.syncaroo_client_secret.as_ref().unwrap().expose(),
    })
}

/// Notifies the status target `sync-stream.json` delivers, as the status
/// webhook its image carries did.
async fn notify_stream_sample(store: &dyn Store) {
    let sample = crate::event_json("sync-stream.json");
    let image = &sample["Records"][0]["dynamodb"]["NewImage"];
    let batch: syncaroo_shared::edge::StreamBatch =
        serde_json::from_value(sample.clone()).expect("a stream batch");
    let [(_, syncaroo_shared::handlers::sync::Delivered::Target(target))] =
        &syncaroo_shared::edge::stream_events(batch)[..]
    else {
        panic!("the stream sample is a notified status target")
    };
    store
        .notify_target(&syncaroo_shared::store::TargetNote {
            target: target.clone(),
            payload: image["payload"]["S"].as_str().expect("payload").into(),
            notified_at_ms: image["notified_at_ms"]["N"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .expect("notified_at_ms"),
        })
        .await
        .expect("status target");
}

/// Tokens for connection `7000 + conn` (user 1), as if its user had
/// connected; returns the access token. For load tests on a runner whose
/// secrets they read (`token_hash_key`).
pub async fn connected(
    store: &dyn Store,
    token_hash_key: &str,
    client_id: &str,
    conn: usize,
) -> String {
    let hash = |raw: &str| crypto::keyed_hash(token_hash_key.as_bytes(), raw);
    let now = SystemClock.now();
    let c = ConnectionId::parse(&format!("{}", 7000 + conn)).unwrap();
    let u = UserId::parse("1").unwrap();
    let family = crypto::random_b64(16);
    let code = crypto::mint(
        CODE_PREFIX,
        Some(&GrantPayload {
            c: c.clone(),
            u: u.clone(),
            f: family.clone(),
        }),
    );
    let rec = AuthCodeRecord {
        hash: hash(&code),
        connection_id: c.clone(),
        user_id: u.clone(),
        client_id: client_id.into(),
        redirect_uri: "https://app.syncaroo.com/connection".into(),
        family: family.clone(),
        expires_at: now + 300,
    };
    store.begin_authorization(&rec, now).await.unwrap();
    let access = format!("soak-access-{conn}-{}", crypto::random_b64(16));
    let tok = |raw: &str, kind| TokenRecord {
        hash: hash(raw),
        kind,
        connection_id: c.clone(),
        user_id: u.clone(),
        client_id: client_id.into(),
        family: family.clone(),
        expires_at: now + 3600,
        revoked: false,
        used_at: None,
    };
    store
        .redeem_code(&CodeRedemption {
            code_hash: rec.hash.clone(),
            client_id: client_id.into(),
            redirect_uri: None,
            connection_id: c.clone(),
            user_id: u.clone(),
            family: family.clone(),
            now,
            access: tok(&access, TokenKind::Access),
            refresh: tok(&format!("soak-refresh-{conn}"), TokenKind::Refresh),
        })
        .await
        .unwrap();
    access
}

/// A pair the fake Syncaroo issued, stored as our Syncaroo credentials,
/// valid for an hour on the wall clock.
pub async fn fake_credentials(store: &dyn Store, fake: &syncaroo_sim::FakeSyncaroo) {
    let (access, refresh, _) = fake.fake.issue_pair();
    let now = SystemClock.now();
    store
        .put_credentials(
            &syncaroo_shared::syncaroo::NewCredentials {
                access_token: syncaroo_shared::secrets::SecretString::new(access),
                expires_at: now + 3600,
                refresh_token: syncaroo_shared::secrets::SecretString::new(refresh),
            },
            now,
        )
        .await
        .expect("credentials");
}

/// `n` connections made by [`connected`] on a running local runner; their
/// access tokens.
/// Locations `L0`..`L{SEEDED_LOCATIONS - 1}` of user 1, whose connections
/// [`connect_many`] seeds: a connection speaks only for its user's
/// locations.
pub const SEEDED_LOCATIONS: usize = 20;

pub async fn seed_locations(store: &dyn Store) {
    let locations: serde_json::Map<String, serde_json::Value> = (0..SEEDED_LOCATIONS)
        .map(|l| {
            let id = format!("L{l}");
            (
                id.clone(),
                serde_json::json!({"ID": id, "name": id, "status": "active"}),
            )
        })
        .collect();
    syncaroo_local::import_listings(
        store,
        &serde_json::json!({"userId": "1", "locations": locations}).to_string(),
    )
    .await
    .expect("seed listings");
}

pub async fn connect_many(r: &syncaroo_local::Running, n: usize) -> Vec<String> {
    let secrets = r.app.secrets.get().await.expect("runner secrets");
    seed_locations(r.store.as_ref()).await;
    let mut out = vec![];
    for c in 0..n {
        out.push(
            connected(
                r.store.as_ref(),
                secrets.token_hash_key.expose(),
                &r.setup.your_client_id,
                c,
            )
            .await,
        );
    }
    out
}

/// The rates of location 1198 at the fake, one rate a page over three
/// pages (hourly 10, daily 60, weekly 250); returns their path.
pub fn rates_in_three_pages(fake: &syncaroo_sim::FakeSyncaroo) -> &'static str {
    const RATES: &str = "/api/v1/locations/1198/rates";
    fake.fake.set_pages(
        RATES,
        vec![
            vec![serde_json::json!({"rate": "hourly", "amount": 10})],
            vec![serde_json::json!({"rate": "daily", "amount": 60})],
            vec![serde_json::json!({"rate": "weekly", "amount": 250})],
        ],
    );
    RATES
}
