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
