//! The platform API: pushed listings replace the user's at check_connection,
//! a malformed push is a 4xx that changes nothing, connections are listed,
//! and a revoked connection's tokens are refused at check_connection, the
//! webhook and the token endpoint; on the in-memory store, on DynamoDB
//! Local, and fed the `events/` files as API Gateway hands them over after
//! its AWS_IAM check.

use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use syncaroo_shared::handlers;
use syncaroo_shared::http_util::{Request, Response};
use syncaroo_shared::store::MemoryStore;
use syncaroo_tests::{body_json, events_creds, local_aws, request, sign, TestApp, EVENTS_NOW};

fn admin_auth(t: &TestApp) -> String {
    let key = t.secrets.admin_key.as_ref().unwrap().expose();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{key}"))
    )
}

fn call(method: &str, path: &str, auth: Option<&str>, body: &str) -> Request {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    request(method, path, &headers, body.to_string())
}

async fn serve(t: &TestApp, req: Request) -> Response {
    syncaroo_tests::route_as(&t.app, "AdminFunction", req).await
}

fn push_body() -> Value {
    json!({"locations": {
        "2001": {"ID": "2001", "name": "Harbour Loft", "status": "active",
                 "resources": [{"ID": "r-7", "name": "Desk 7", "status": "active", "type": "desk"}]},
        "2002": {"ID": "2002", "name": "Old Mill", "status": "draft"}
    }})
}

async fn checked_locations(t: &TestApp) -> (u16, Vec<String>) {
    let resp =
        handlers::check_connection(&t.app, syncaroo_tests::event("check-connection.json")).await;
    let status = resp.status().as_u16();
    if status != 200 {
        return (status, vec![]);
    }
    let body = body_json(&resp);
    let mut ids: Vec<String> = body["locations"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    ids.sort();
    (status, ids)
}

async fn pushed_listings_replace_the_users(t: TestApp) {
    t.seed_events_tokens().await;
    assert_eq!(
        checked_locations(&t).await,
        (
            200,
            vec!["1198".into(), "7120".into(), "8102".into(), "9587".into()]
        )
    );
    let auth = admin_auth(&t);
    let resp = serve(
        &t,
        call(
            "PUT",
            "/api/platform/users/1/listings",
            Some(&auth),
            &push_body().to_string(),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));
    assert_eq!(body_json(&resp), json!({"userId": "1", "locations": 2}));
    assert_eq!(
        checked_locations(&t).await,
        (200, vec!["2001".into(), "2002".into()]),
        "the old locations are gone, the pushed ones are there"
    );
    let resp =
        handlers::check_connection(&t.app, syncaroo_tests::event("check-connection.json")).await;
    assert_eq!(
        body_json(&resp)["locations"]["2001"],
        push_body()["locations"]["2001"],
        "in check_connection's shape, as pushed"
    );
    // DELETE empties them (and again: idempotent).
    for _ in 0..2 {
        let resp = serve(
            &t,
            call("DELETE", "/api/platform/users/1/listings", Some(&auth), ""),
        )
        .await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(checked_locations(&t).await, (200, vec![]));
}

#[tokio::test]
async fn pushed_listings_replace_the_users_in_memory() {
    pushed_listings_replace_the_users(local_profile(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn pushed_listings_replace_the_users_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("platform", EVENTS_NOW).await else {
        return;
    };
    pushed_listings_replace_the_users(local_profile(Arc::new(s))).await;
}

/// Every malformed or unauthenticated push is refused with a 4xx and the
/// store is exactly as before.
#[tokio::test]
async fn a_malformed_or_anonymous_push_is_a_4xx_and_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let t = local_profile(store.clone());
    t.seed_events_tokens().await;
    let auth = admin_auth(&t);
    let too_many: serde_json::Map<String, Value> = (0..50)
        .map(|i| {
            (
                format!("L{i}"),
                json!({"ID": format!("L{i}"), "name": "x", "status": "active"}),
            )
        })
        .collect();
    let cases: Vec<(&str, Option<&str>, String, u16)> = vec![
        ("not JSON", Some(&auth), "{locations".into(), 400),
        ("no locations", Some(&auth), "{}".into(), 400),
        ("an unknown field", Some(&auth), json!({"locations": {}, "x": 1}).to_string(), 400),
        ("key differs from ID", Some(&auth), json!({"locations": {"1": {"ID": "2", "name": "a", "status": "active"}}}).to_string(), 400),
        ("no name", Some(&auth), json!({"locations": {"1": {"ID": "1", "status": "active"}}}).to_string(), 400),
        ("a bad status", Some(&auth), json!({"locations": {"1": {"ID": "1", "name": "a", "status": "open"}}}).to_string(), 400),
        ("a resource without type", Some(&auth), json!({"locations": {"1": {"ID": "1", "name": "a", "status": "active", "resources": [{"ID": "r", "name": "r", "status": "active"}]}}}).to_string(), 400),
        ("50 locations", Some(&auth), json!({"locations": too_many}).to_string(), 400),
        ("anonymous", None, push_body().to_string(), 401),
        ("a wrong admin key", Some("Basic YWRtaW46bm9wZQ=="), push_body().to_string(), 401),
    ];
    let before = store.fingerprint();
    for (what, auth, body, want) in cases {
        let resp = serve(
            &t,
            call("PUT", "/api/platform/users/1/listings", auth, &body),
        )
        .await;
        assert_eq!(
            resp.status().as_u16(),
            want,
            "{what}: {}",
            syncaroo_tests::body_text(&resp)
        );
        assert!(
            body_json(&resp)["error"].is_string(),
            "{what}: a JSON error"
        );
        assert_eq!(store.fingerprint(), before, "{what} changed the store");
    }
    let resp = serve(
        &t,
        call("DELETE", "/api/platform/users/1/listings", None, ""),
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let resp = serve(&t, call("DELETE", "/api/platform/connections/99", None, "")).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(store.fingerprint(), before);
}

fn data_webhook(t: &TestApp) -> Request {
    request(
        "POST",
        "/api/update/",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {}", events_creds::ACCESS)),
        ],
        sign(
            json!({"connectionId": 99, "webhookType": "data", "locationId": "1198",
                   "metaData": {"attributeType": "rates", "apiUrl": "https://api.syncaroo.com/v1/rates"}}),
            t.secrets.client_secret.expose(),
        ),
    )
}

async fn a_revoked_connection_is_refused_everywhere(t: TestApp) {
    t.seed_events_tokens().await;
    // A code consented before the revocation must not be redeemable after.
    let pending = t.issue_code("99", "1").await;
    assert_eq!(
        handlers::webhook(&t.app, data_webhook(&t)).await.status(),
        202
    );
    let auth = admin_auth(&t);
    let listed = serve(
        &t,
        call("GET", "/api/platform/connections?userId=1", Some(&auth), ""),
    )
    .await;
    assert_eq!(listed.status(), 200);
    let c = &body_json(&listed)["connections"][0];
    assert_eq!(
        (c["connectionId"].as_str(), c["status"].as_str()),
        (Some("99"), Some("pending"))
    );
    assert!(c["lastWebhookAt"].is_i64(), "the webhook's time: {c}");

    let resp = serve(
        &t,
        call("DELETE", "/api/platform/connections/99", Some(&auth), ""),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));
    assert_eq!(body_json(&resp)["status"], "revoked");
    assert_eq!(body_json(&resp)["revokedAt"], json!(t.clock_now()));

    assert_eq!(
        checked_locations(&t).await.0,
        401,
        "check_connection refuses its token"
    );
    let hook = handlers::webhook(&t.app, data_webhook(&t)).await;
    assert_eq!(hook.status(), 401, "the webhook refuses its token");
    let refresh = handlers::token(&t.app, syncaroo_tests::event("token-refresh.json")).await;
    assert_eq!(refresh.status(), 400, "its refresh token is dead");
    let late = handlers::token(&t.app, t.code_request(&pending)).await;
    assert_eq!(
        late.status(),
        400,
        "a code issued before is dead: {}",
        body_json(&late)
    );
    let listed = serve(
        &t,
        call("GET", "/api/platform/connections", Some(&auth), ""),
    )
    .await;
    assert_eq!(body_json(&listed)["connections"][0]["status"], "revoked");
    // Unknown connections are a 404; revoking twice is fine.
    let resp = serve(
        &t,
        call("DELETE", "/api/platform/connections/12345", Some(&auth), ""),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = serve(
        &t,
        call("DELETE", "/api/platform/connections/99", Some(&auth), ""),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_revoked_connection_is_refused_everywhere_in_memory() {
    a_revoked_connection_is_refused_everywhere(local_profile(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn a_revoked_connection_is_refused_everywhere_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("revoke", EVENTS_NOW).await else {
        return;
    };
    a_revoked_connection_is_refused_everywhere(local_profile(Arc::new(s))).await;
}

async fn connections_are_listed_a_page_at_a_time(t: TestApp) {
    for c in ["501", "502", "503"] {
        t.issue_code(c, "7").await;
    }
    t.issue_code("504", "8").await;
    let auth = admin_auth(&t);
    let get = |q: &str| {
        let req = call(
            "GET",
            &format!("/api/platform/connections{q}"),
            Some(&auth),
            "",
        );
        async { body_json(&serve(&t, req).await) }
    };
    let page = get("?userId=7&limit=2").await;
    let ids: Vec<&str> = page["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connectionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["501", "502"]);
    assert_eq!(page["next"], "502");
    let rest = get("?userId=7&limit=2&after=502").await;
    assert_eq!(rest["connections"].as_array().unwrap().len(), 1);
    assert_eq!(rest["connections"][0]["connectionId"], "503");
    assert_eq!(rest["next"], Value::Null);
    let mut all = vec![];
    let mut after = String::new();
    loop {
        let page = get(&format!("?limit=3{after}")).await;
        for c in page["connections"].as_array().unwrap() {
            all.push(c["connectionId"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    all.sort();
    assert_eq!(all, ["501", "502", "503", "504"]);
    let bad = serve(
        &t,
        call("GET", "/api/platform/connections?limit=0", Some(&auth), ""),
    )
    .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn connections_are_listed_a_page_at_a_time_in_memory() {
    connections_are_listed_a_page_at_a_time(local_profile(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn connections_are_listed_a_page_at_a_time_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("conns", EVENTS_NOW).await else {
        return;
    };
    connections_are_listed_a_page_at_a_time(local_profile(Arc::new(s))).await;
}

/// The events/ files carry API Gateway's AWS_IAM verdict in the request
/// context and no admin key: the edge hands the caller over, so they pass.
/// The same path with a forged header instead of the context does not.
#[tokio::test]
async fn the_iam_verified_caller_from_the_request_context_is_let_in() {
    let (t, store) = TestApp::memory();
    t.seed_events_tokens().await;
    let resp = serve(&t, syncaroo_tests::event("platform-put-listings.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));
    assert_eq!(checked_locations(&t).await, (200, vec!["2001".into()]));
    let mut forged = syncaroo_tests::event_json("platform-revoke-connection.json");
    forged["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    forged["headers"]["x-amzn-iam-caller"] = json!("arn:aws:iam::1:root");
    let req = syncaroo_tests::lambda_request(
        lambda_http::request::from_str(&forged.to_string()).unwrap(),
    );
    let before = store.fingerprint();
    assert_eq!(serve(&t, req).await.status(), 401);
    assert_eq!(store.fingerprint(), before);
    let resp = serve(&t, syncaroo_tests::event("platform-revoke-connection.json")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(checked_locations(&t).await.0, 401);
}

/// The import command's `--replace`: each user in the file ends with
/// exactly the file's locations; without it, locations are only added.
#[tokio::test]
async fn import_replace_leaves_exactly_the_files_locations() {
    let (t, _) = TestApp::memory();
    let store = t.app.store.as_ref();
    syncaroo_local::import_listings(store, syncaroo_local::DEMO_LISTINGS)
        .await
        .unwrap();
    let user = syncaroo_shared::model::UserId::parse("1").unwrap();
    assert_eq!(store.list_locations(&user).await.unwrap().len(), 4);
    let file = json!([{"userId": "1", "locations": push_body()["locations"]}]).to_string();
    syncaroo_local::import_listings(store, &file).await.unwrap();
    assert_eq!(store.list_locations(&user).await.unwrap().len(), 6, "added");
    let n = syncaroo_local::replace_listings_from(store, &file)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let ids: Vec<String> = store
        .list_locations(&user)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, ["2001", "2002"], "replaced");
    let bad =
        json!([{"userId": "1", "locations": {"x": {"ID": "y", "name": "n", "status": "active"}}}]);
    assert!(
        syncaroo_local::replace_listings_from(store, &bad.to_string())
            .await
            .is_err()
    );
    assert_eq!(
        store.list_locations(&user).await.unwrap().len(),
        2,
        "unchanged"
    );
}

/// check_connection also asks the connection itself, in the write it makes
/// anyway: the store refuses to confirm a revoked connection, so its
/// tokens are refused there even where a token's own revocation has not
/// landed yet (the revocation finds tokens through DynamoDB's eventually
/// consistent index).
async fn check_connection_asks_the_connection(t: TestApp) {
    t.seed_events_tokens().await;
    let conn = syncaroo_shared::model::ConnectionId::parse("99").unwrap();
    let user = syncaroo_shared::model::UserId::parse("1").unwrap();
    t.app
        .store
        .revoke_connection(&conn, t.clock_now())
        .await
        .unwrap()
        .unwrap();
    let err = t
        .app
        .store
        .confirm_connection(&conn, &user, events_creds::FAMILY, t.clock_now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, syncaroo_shared::Error::InvalidToken(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn check_connection_asks_the_connection_in_memory() {
    check_connection_asks_the_connection(TestApp::memory().0).await;
}

#[tokio::test]
async fn check_connection_asks_the_connection_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("revoked-confirm", EVENTS_NOW).await else {
        return;
    };
    check_connection_asks_the_connection(TestApp::with_store(Arc::new(s))).await;
}

/// A TestApp configured as the local runner is: the platform API takes
/// HTTP Basic admin (deployed it takes only a verified IAM caller).
fn local_profile(store: Arc<dyn syncaroo_shared::store::Store>) -> TestApp {
    let config = syncaroo_shared::Config::from_lookup(|k| match k {
        "LOGIN_URL" => Some("https://yourapp.com/login".into()),
        "PLATFORM_API_AUTH" => Some("basic".into()),
        _ => None,
    })
    .unwrap();
    TestApp::with(store, config)
}

fn confirmed_events(t: &TestApp) -> usize {
    t.changes
        .entries()
        .iter()
        .filter(|e| e.detail_type == "Syncaroo Connection Confirmed")
        .count()
}

/// Revocation and reconnecting (correctness issue, items 6 and 14). A
/// revocation refuses every token of the connection at once on every route,
/// also tokens the table's index does not show yet (on DynamoDB Local the
/// test takes the tokens out of the index, as a token minted just before
/// the revocation can be). A new consent afterwards starts the connection
/// afresh: `revokedAt` cleared, confirmed anew at its next check_connection
/// with a new `Syncaroo Connection Confirmed`, while the old tokens stay
/// dead.
async fn revocation_is_immediate_and_a_new_consent_starts_afresh(
    t: TestApp,
    hide_from_index: impl AsyncFn(&str),
) {
    t.seed_events_tokens().await;
    assert_eq!(checked_locations(&t).await.0, 200);
    assert_eq!(confirmed_events(&t), 1);
    for raw in [events_creds::ACCESS, events_creds::REFRESH] {
        hide_from_index(&t.hash(raw)).await;
    }
    let auth = admin_auth(&t);
    t.clock.advance(60);
    let resp = serve(
        &t,
        call("DELETE", "/api/platform/connections/99", Some(&auth), ""),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));
    let refused_everywhere = async |when: &str| {
        assert_eq!(
            handlers::webhook(&t.app, data_webhook(&t)).await.status(),
            401,
            "{when}: the webhook refuses the old token"
        );
        assert_eq!(
            checked_locations(&t).await.0,
            401,
            "{when}: check_connection refuses it"
        );
        let refresh = handlers::token(&t.app, syncaroo_tests::event("token-refresh.json")).await;
        assert_eq!(refresh.status(), 400, "{when}: its refresh token is dead");
    };
    refused_everywhere("after the revocation").await;

    // The user consents again: a new code, new tokens.
    t.clock.advance(60);
    let code = t.issue_code("99", "1").await;
    let resp = handlers::token(&t.app, t.code_request(&code)).await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));
    let access = body_json(&resp)["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    refused_everywhere("after the new consent").await;
    let listed = body_json(
        &serve(
            &t,
            call("GET", "/api/platform/connections?userId=1", Some(&auth), ""),
        )
        .await,
    );
    let c = &listed["connections"][0];
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["revokedAt"], Value::Null, "{c}");
    assert_eq!(c["confirmedAt"], Value::Null, "{c}");

    t.clock.advance(60);
    let resp = handlers::check_connection(&t.app, t.check_request("99", &access)).await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));
    assert_eq!(confirmed_events(&t), 2, "confirmed anew, announced");
    let listed = body_json(
        &serve(
            &t,
            call("GET", "/api/platform/connections?userId=1", Some(&auth), ""),
        )
        .await,
    );
    let c = &listed["connections"][0];
    assert_eq!(c["status"], "confirmed", "{c}");
    assert_eq!(c["confirmedAt"], json!(t.clock_now()), "{c}");
    assert_eq!(c["revokedAt"], Value::Null, "{c}");
    let mut hook = data_webhook(&t);
    hook.headers_mut()
        .insert("authorization", format!("Bearer {access}").parse().unwrap());
    assert_eq!(handlers::webhook(&t.app, hook).await.status(), 202);
    refused_everywhere("after the reconnection was confirmed").await;
}

#[tokio::test]
async fn revocation_is_immediate_and_a_new_consent_starts_afresh_in_memory() {
    let store = Arc::new(MemoryStore::new());
    revocation_is_immediate_and_a_new_consent_starts_afresh(
        local_profile(store),
        async |_hash: &str| {},
    )
    .await;
}

#[tokio::test]
async fn revocation_is_immediate_and_a_new_consent_starts_afresh_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("revoke-lag", EVENTS_NOW).await else {
        return;
    };
    let (client, table) = (s.client().clone(), s.table().to_string());
    revocation_is_immediate_and_a_new_consent_starts_afresh(
        local_profile(Arc::new(s)),
        async |hash: &str| {
            // An index entry that has not arrived yet: the item without
            // its index keys.
            client
                .update_item()
                .table_name(&table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("TOKEN#{hash}")),
                )
                .key(
                    "sk",
                    aws_sdk_dynamodb::types::AttributeValue::S("TOKEN".into()),
                )
                .update_expression("REMOVE gsi1pk, gsi1sk")
                .condition_expression("attribute_exists(pk)")
                .send()
                .await
                .expect("token item");
        },
    )
    .await;
}

/// Deployed, the platform API takes only the IAM caller API Gateway
/// verified (item 15): the admin key is refused, whatever the route
/// (a direct invoke or a function URL would carry no IAM context), and
/// PLATFORM_CALLER_ARNS narrows the callers further. Unknown query
/// parameters are a 400: a misspelt `?userid=` must not list everyone.
#[tokio::test]
async fn deployed_platform_routes_take_only_a_verified_iam_caller() {
    let (t, store) = TestApp::memory();
    t.seed_events_tokens().await;
    let before = store.fingerprint();
    let auth = admin_auth(&t);
    for (method, path, body) in [
        (
            "PUT",
            "/api/platform/users/1/listings",
            push_body().to_string(),
        ),
        ("DELETE", "/api/platform/users/1/listings", String::new()),
        ("GET", "/api/platform/connections", String::new()),
        ("DELETE", "/api/platform/connections/99", String::new()),
        ("DELETE", "/api/platform/users/1", String::new()),
    ] {
        let resp = serve(&t, call(method, path, Some(&auth), &body)).await;
        assert_eq!(
            resp.status(),
            401,
            "{method} {path} with the admin key: {}",
            syncaroo_tests::body_text(&resp)
        );
        // The platform API's own vocabulary, not OAuth's invalid_client,
        // and no Basic challenge where Basic is not taken.
        assert_eq!(body_json(&resp)["error"], "unauthenticated");
        assert!(resp.headers().get("www-authenticate").is_none());
    }
    assert_eq!(store.fingerprint(), before, "nothing changed");
    // The IAM caller of the events/ file is let in.
    let resp = serve(&t, syncaroo_tests::event("platform-put-listings.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));

    // An allow-list of caller ARNs: another role is refused.
    let narrowed = |arns: &str| {
        let arns = arns.to_string();
        TestApp::with(
            t.app.store.clone(),
            syncaroo_shared::Config::from_lookup(move |k| match k {
                "LOGIN_URL" => Some("https://yourapp.com/login".into()),
                "PLATFORM_CALLER_ARNS" => Some(arns.clone()),
                _ => None,
            })
            .unwrap(),
        )
    };
    let other = narrowed("arn:aws:sts::123456789012:assumed-role/other-role/*");
    let resp = serve(&other, syncaroo_tests::event("platform-put-listings.json")).await;
    assert_eq!(resp.status(), 403, "{}", body_json(&resp));
    let ours = narrowed(
        "arn:aws:iam::123456789012:role/x, arn:aws:sts::123456789012:assumed-role/platform-backend/*",
    );
    let resp = serve(&ours, syncaroo_tests::event("platform-put-listings.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_json(&resp));

    // Unknown query parameters, with a caller that is let in.
    let local = local_profile(t.app.store.clone());
    for q in ["?userid=1", "?userId=1&limt=5", "?after=1&x="] {
        let resp = serve(
            &local,
            call(
                "GET",
                &format!("/api/platform/connections{q}"),
                Some(&auth),
                "",
            ),
        )
        .await;
        assert_eq!(
            resp.status(),
            400,
            "{q}: {}",
            syncaroo_tests::body_text(&resp)
        );
        assert_eq!(body_json(&resp)["error"], "bad_request", "{q}");
        assert!(
            body_json(&resp)["message"]
                .as_str()
                .unwrap()
                .contains("unknown query parameter"),
            "{q}"
        );
    }
    let resp = serve(
        &local,
        call("GET", "/api/platform/connections?userId=1", Some(&auth), ""),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

/// Listings of any size can be cleared and replaced (correctness issue,
/// item 7): an import can store far more locations than one transaction
/// holds (100 steps); DELETE and a PUT over them still work, in
/// version-guarded steps, and a push racing another is the only 409.
async fn large_listings_are_cleared_and_replaced(t: TestApp) {
    let locations: serde_json::Map<String, Value> = (0..150)
        .map(|i| {
            let id = format!("L{i:03}");
            (
                id.clone(),
                json!({"ID": id, "name": "n", "status": "active"}),
            )
        })
        .collect();
    syncaroo_local::import_listings(
        t.app.store.as_ref(),
        &json!({"userId": "1", "locations": locations}).to_string(),
    )
    .await
    .unwrap();
    let user = syncaroo_shared::model::UserId::parse("1").unwrap();
    assert_eq!(t.app.store.list_locations(&user).await.unwrap().len(), 150);
    let auth = admin_auth(&t);
    let resp = serve(
        &t,
        call(
            "PUT",
            "/api/platform/users/1/listings",
            Some(&auth),
            &push_body().to_string(),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", syncaroo_tests::body_text(&resp));
    let ids: Vec<String> = t
        .app
        .store
        .list_locations(&user)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, ["2001", "2002"], "exactly the pushed ones");
    syncaroo_local::import_listings(
        t.app.store.as_ref(),
        &json!({"userId": "1", "locations": locations}).to_string(),
    )
    .await
    .unwrap();
    let resp = serve(
        &t,
        call("DELETE", "/api/platform/users/1/listings", Some(&auth), ""),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", syncaroo_tests::body_text(&resp));
    assert!(t.app.store.list_locations(&user).await.unwrap().is_empty());
}

#[tokio::test]
async fn large_listings_are_cleared_and_replaced_in_memory() {
    large_listings_are_cleared_and_replaced(local_profile(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn large_listings_are_cleared_and_replaced_on_dynamodb_local() {
    let Some(s) = local_aws::dynamo_store("big-listings", EVENTS_NOW).await else {
        return;
    };
    large_listings_are_cleared_and_replaced(local_profile(Arc::new(s))).await;
}

/// A path under the platform API's prefix that no route matches is a 404
/// in the platform API's own shape (`{"error", "message"}`); elsewhere the
/// generic one.
#[tokio::test]
async fn an_unknown_platform_path_is_a_404_in_the_platform_vocabulary() {
    let (t, store) = TestApp::memory();
    let before = store.fingerprint();
    for (path, platform) in [
        ("/api/platform/users/1/listings/x", true),
        ("/api/platform/nothing", true),
        ("/api/nothing", false),
    ] {
        let resp = serve(&t, call("DELETE", path, None, "")).await;
        assert_eq!(resp.status(), 404, "{path}");
        let v = body_json(&resp);
        assert_eq!(v["error"], "not_found", "{path}");
        assert_eq!(v.get("message").is_some(), platform, "{path}: {v}");
    }
    assert_eq!(store.fingerprint(), before);
}
