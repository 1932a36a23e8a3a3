//! The connect flow driven over HTTP against the local runner, the way
//! Syncaroo and a user's browser drive it: authorize -> login as demo ->
//! consent -> 302 with a code -> token exchange in both dialects ->
//! check_connection -> refresh. On the embedded store and on DynamoDB Local.
//! Every log line written meanwhile is checked for credentials.

use serde_json::Value;
use syncaroo_local::{Options, Running, StoreKind};
use syncaroo_tests::browser::Browser;
use syncaroo_tests::{local_aws, logs, query_of};

const REDIRECT: &str = "https://app.syncaroo.com/connection";

async fn start(store: StoreKind) -> Running {
    syncaroo_local::start(Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        store,
        table: local_aws::unique_table("flow"),
        ..Options::default()
    })
    .await
    .expect("local runner starts")
}

fn authorize_url(r: &Running, connection: &str, state: &str) -> String {
    format!(
        "{}?connectionId={connection}&clientId={}&redirectUri={}&response_type=code&state={state}",
        r.setup.auth_uri,
        r.setup.your_client_id,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    )
}

async fn post_token(r: &Running, pairs: &[(&str, &str)]) -> (u16, Value) {
    let resp = syncaroo_shared::tls::http_client_builder()
        .build()
        .unwrap()
        .post(&r.setup.auth_token_uri)
        .form(pairs)
        .send()
        .await
        .expect("token request");
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    (status, resp.json().await.expect("JSON"))
}

async fn check(r: &Running, connection: &str, access: &str) -> (u16, Option<String>, Value) {
    let url = format!(
        "{}{}?connectionId={connection}",
        r.setup.api_uri.trim_end_matches('/'),
        r.setup.check_connection_path
    );
    let resp = syncaroo_shared::tls::http_client_builder()
        .build()
        .unwrap()
        .get(url)
        .bearer_auth(access)
        .send()
        .await
        .expect("check");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), ct, resp.json().await.expect("JSON"))
}

/// Returns every credential the flow handled, for the log check.
async fn whole_flow(r: &Running) -> Vec<String> {
    let mut seen = vec![r.setup.your_client_secret.clone()];
    let browser = Browser::new();
    let back = browser
        .connect(
            &authorize_url(r, "99", "st4te"),
            REDIRECT,
            "demo",
            "demo",
            "authorize",
        )
        .await
        .expect("connect flow reaches the redirect URI");
    let q = query_of(&back);
    assert_eq!(q["connectionId"], "99");
    assert_eq!(q["state"], "st4te");
    let code = q["code"].clone();
    assert!(code.starts_with("scb_code_"));
    seen.push(code.clone());

    // The guide's dialect.
    let (status, tokens) = post_token(
        r,
        &[
            ("clientId", &r.setup.your_client_id),
            ("clientSecret", &r.setup.your_client_secret),
            ("code", &code),
            ("grantType", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let expires = tokens["expires"].as_str().unwrap();
    assert_eq!(expires.len(), 19, "YYYY-MM-DDTHH:MM:SS: {expires}");
    assert_eq!(&expires[10..11], "T");
    let access = tokens["accessToken"].as_str().unwrap().to_string();
    let refresh = tokens["refreshToken"].as_str().unwrap().to_string();
    seen.extend([access.clone(), refresh.clone()]);

    // The same code again: refused, and it revokes what it gave.
    let (status, err) = post_token(
        r,
        &[
            ("clientId", &r.setup.your_client_id),
            ("clientSecret", &r.setup.your_client_secret),
            ("code", &code),
            ("grantType", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(check(r, "99", &access).await.0, 401);

    // A second connection, in the RFC dialect, then check_connection.
    let back = browser
        .connect(
            &authorize_url(r, "100", "s2"),
            REDIRECT,
            "demo",
            "demo",
            "authorize",
        )
        .await
        .expect("second connect");
    let code2 = query_of(&back)["code"].clone();
    seen.push(code2.clone());
    let (status, rfc) = post_token(
        r,
        &[
            ("client_id", &r.setup.your_client_id),
            ("client_secret", &r.setup.your_client_secret),
            ("code", &code2),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{rfc}");
    assert_eq!(rfc["token_type"], "Bearer");
    let access2 = rfc["access_token"].as_str().unwrap().to_string();
    let refresh2 = rfc["refresh_token"].as_str().unwrap().to_string();
    seen.extend([access2.clone(), refresh2.clone()]);

    let (status, ct, body) = check(r, "100", &access2).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct.as_deref(), Some("application/json; charset=UTF-8"));
    assert_eq!(body["connectionId"], 100);
    assert_eq!(body["userId"], "1");
    let ids: Vec<&String> = body["locations"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["1198", "7120", "8102", "9587"]);
    assert_eq!(
        body["locations"]["1198"]["resources"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Idempotent.
    assert_eq!(check(r, "100", &access2).await.0, 200);
    // Every form of the path Syncaroo may build: the guide's own setup
    // values (apiUri `.../api/` + `/check_connection/`) give a doubled slash.
    for path in [
        "/api//check_connection/",
        "/api/check_connection",
        "/api/check_connection/",
        "//api/check_connection",
    ] {
        let url = format!("{}{path}?connectionId=100", r.setup.site_uri);
        let resp = syncaroo_shared::tls::http_client_builder()
            .build()
            .unwrap()
            .get(&url)
            .bearer_auth(&access2)
            .send()
            .await
            .expect("check");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    // Bound to its connection.
    assert_eq!(check(r, "99", &access2).await.0, 401);

    // Refresh rotates: new pair works, the old access token still lives
    // until it expires, the old refresh token is single-use.
    let (status, rotated) = post_token(
        r,
        &[
            ("client_id", &r.setup.your_client_id),
            ("client_secret", &r.setup.your_client_secret),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
        ],
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let access3 = rotated["access_token"].as_str().unwrap().to_string();
    let refresh3 = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh3, refresh2);
    seen.extend([access3.clone(), refresh3.clone()]);
    assert_eq!(check(r, "100", &access3).await.0, 200);

    // Deny: back to Syncaroo with access_denied and no code.
    let back = browser
        .connect(
            &authorize_url(r, "101", "s3"),
            REDIRECT,
            "demo",
            "demo",
            "deny",
        )
        .await
        .expect("deny flow");
    let q = query_of(&back);
    assert_eq!(q["error"], "access_denied");
    assert!(!q.contains_key("code"));

    // Wrong password: the login page answers 401 and no session is set.
    let stranger = Browser::new();
    let err = stranger
        .connect(
            &authorize_url(r, "102", "s4"),
            REDIRECT,
            "demo",
            "wrong",
            "authorize",
        )
        .await
        .unwrap_err();
    assert!(err.contains("401"), "{err}");
    seen
}

fn assert_no_credentials_logged(cap: &logs::Captured, secrets: &[String]) {
    let text = cap.text();
    assert!(
        text.contains("code issued"),
        "the capture saw the flow's logs"
    );
    for s in secrets {
        // Any 16-character window of a credential counts as a leak.
        let probe = &s[s.len().saturating_sub(16)..];
        assert!(!text.contains(probe), "a credential reached the logs");
    }
    for forbidden in [
        "scb_code_",
        "scb_at_",
        "scb_rt_",
        "Bearer scb",
        "syncaroo_session=",
    ] {
        assert!(!text.contains(forbidden), "{forbidden} reached the logs");
    }
}

#[tokio::test]
async fn connect_flow_over_http_on_the_embedded_store() {
    let cap = logs::capture();
    let r = start(StoreKind::Memory).await;
    let seen = whole_flow(&r).await;
    assert_no_credentials_logged(&cap, &seen);
    r.stop();
}

#[tokio::test]
async fn connect_flow_over_http_on_dynamodb_local() {
    if !local_aws::dynamodb_available() {
        return;
    }
    let cap = logs::capture();
    let r = start(StoreKind::Dynamodb).await;
    let seen = whole_flow(&r).await;
    assert_no_credentials_logged(&cap, &seen);
    r.stop();
}
