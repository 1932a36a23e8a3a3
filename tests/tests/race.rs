//! "Exactly one wins": 50 tasks redeem one code at the same moment through
//! the token handler. One gets tokens; the other 49 get invalid_grant, and
//! their replays revoke the winner's tokens.

use std::sync::Arc;
use syncaroo_shared::handlers;
use syncaroo_shared::store::{MemoryStore, Store};
use syncaroo_tests::{body_json, local_aws, TestApp, EVENTS_NOW};

const RACERS: usize = 50;

async fn race(store: Arc<dyn Store>) {
    let t = Arc::new(TestApp::with_store(store));
    t.app
        .store
        .put_listings(
            &syncaroo_shared::model::UserListings::parse_file(syncaroo_local::DEMO_LISTINGS)
                .unwrap()[0],
        )
        .await
        .unwrap();
    let code = t.issue_code("4242", "1").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (t, code, barrier) = (t.clone(), code.clone(), barrier.clone());
            tokio::spawn(async move {
                let req = t.code_request(&code);
                barrier.wait().await;
                handlers::token(&t.app, req).await
            })
        })
        .collect();
    let mut winners = vec![];
    let mut losers = 0;
    for task in tasks {
        let resp = task.await.expect("task");
        match resp.status().as_u16() {
            200 => winners.push(body_json(&resp)),
            400 => {
                assert_eq!(body_json(&resp)["error"], "invalid_grant");
                losers += 1;
            }
            other => panic!("unexpected status {other}: {:?}", body_json(&resp)),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption succeeds");
    assert_eq!(losers, RACERS - 1);
    // The replays revoked what the winner got.
    let access = winners[0]["accessToken"].as_str().unwrap();
    let refresh = winners[0]["refreshToken"].as_str().unwrap();
    assert!(
        t.app
            .store
            .get_token(&t.hash(access))
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        t.app
            .store
            .get_token(&t.hash(refresh))
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let resp = handlers::check_connection(&t.app, t.check_request("4242", access)).await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_redemptions_on_memory_store() {
    race(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_redemptions_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("race", EVENTS_NOW).await else {
        return;
    };
    race(Arc::new(s)).await;
}

/// Without a race: a second redemption of a used code revokes the tokens
/// of the first, and the winner's refresh token is refused afterwards.
#[tokio::test]
async fn sequential_replay_revokes_the_family() {
    let (t, _) = TestApp::memory();
    let code = t.issue_code("77", "1").await;
    let first = handlers::token(&t.app, t.code_request(&code)).await;
    assert_eq!(first.status(), 200);
    let tokens = body_json(&first);
    let again = handlers::token(&t.app, t.code_request(&code)).await;
    assert_eq!(again.status(), 400);
    assert!(body_json(&again)["error_description"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    let access = tokens["accessToken"].as_str().unwrap();
    assert_eq!(
        handlers::check_connection(&t.app, t.check_request("77", access))
            .await
            .status(),
        401
    );
}

/// Ten copies of one refresh request at the same moment (a client's
/// retries, inside the grace window): every copy gets the same successor
/// pair, and it works. Before, each got a distinct, working pair.
async fn ten_copies_of_one_refresh(store: Arc<dyn Store>) {
    const COPIES: usize = 10;
    let t = Arc::new(TestApp::with_store(store));
    t.seed_events_tokens().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(COPIES));
    let tasks: Vec<_> = (0..COPIES)
        .map(|_| {
            let (t, barrier) = (t.clone(), barrier.clone());
            tokio::spawn(async move {
                let req = syncaroo_tests::event("token-refresh.json");
                barrier.wait().await;
                handlers::token(&t.app, req).await
            })
        })
        .collect();
    let mut pairs = vec![];
    for task in tasks {
        let resp = task.await.expect("task");
        assert_eq!(resp.status(), 200, "{}", body_json(&resp));
        let v = body_json(&resp);
        pairs.push((
            v["accessToken"].as_str().unwrap().to_string(),
            v["refreshToken"].as_str().unwrap().to_string(),
        ));
    }
    assert!(pairs.iter().all(|p| p == &pairs[0]), "{pairs:?}");
    let resp = handlers::check_connection(&t.app, t.check_request("99", &pairs[0].0)).await;
    assert_eq!(resp.status(), 200, "the shared pair works");
    // The successor rotates on as any refresh token does.
    let next = syncaroo_tests::request(
        "POST",
        "/api/oauth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        syncaroo_tests::form(&[
            ("grantType", "refresh_token"),
            ("refreshToken", &pairs[0].1),
            ("clientId", &t.app.config.client_id),
            ("clientSecret", t.secrets.client_secret.expose()),
        ]),
    );
    assert_eq!(handlers::token(&t.app, next).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_refresh_copies_on_memory_store() {
    ten_copies_of_one_refresh(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_refresh_copies_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("refresh-copies", EVENTS_NOW).await else {
        return;
    };
    ten_copies_of_one_refresh(Arc::new(s)).await;
}
