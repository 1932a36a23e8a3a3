//! Every bad input we could think of: a clear 4xx (never a 5xx), and the
//! store exactly as it was before.

use bytes::Bytes;
use std::sync::Arc;
use syncaroo_shared::handlers;
use syncaroo_shared::http_util::{Request, Response};
use syncaroo_shared::store::MemoryStore;
use syncaroo_tests::{body_json, body_text, events_creds, form, request, TestApp};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

struct Case {
    name: &'static str,
    req: Request,
    status: u16,
    error: Option<&'static str>,
}

fn case(name: &'static str, req: Request, status: u16, error: Option<&'static str>) -> Case {
    Case {
        name,
        req,
        status,
        error,
    }
}

async fn setup() -> (TestApp, Arc<MemoryStore>, String) {
    let (t, store) = TestApp::memory();
    t.seed_events_tokens().await;
    let fresh = t.issue_code("5150", "1").await;
    (t, store, fresh)
}

async fn run(
    t: &TestApp,
    store: &MemoryStore,
    cases: Vec<Case>,
    handler: impl AsyncFn(&TestApp, Request) -> Response,
) {
    let cap = syncaroo_tests::logs::capture();
    for c in cases {
        let before = store.fingerprint();
        let resp = handler(t, c.req).await;
        let status = resp.status().as_u16();
        assert_eq!(status, c.status, "{}: {}", c.name, body_text(&resp));
        assert!(resp.status().is_client_error(), "{}: not a 4xx", c.name);
        if let Some(code) = c.error {
            assert_eq!(body_json(&resp)["error"], code, "{}", c.name);
            assert!(
                !body_json(&resp)["error_description"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty(),
                "{}: says what is wrong",
                c.name
            );
        } else {
            assert!(
                body_text(&resp).contains("could not connect"),
                "{}: an error page",
                c.name
            );
            assert!(
                resp.headers().get("location").is_none(),
                "{}: never a redirect",
                c.name
            );
        }
        assert_eq!(store.fingerprint(), before, "{}: wrote something", c.name);
        let logged = cap.text();
        for leak in [
            "scb_",
            "events-client-secret",
            "events-session-key",
            "wrong-secret",
            "syncaroo_session=",
        ] {
            assert!(
                !logged.contains(leak),
                "{}: {leak} reached the logs",
                c.name
            );
        }
    }
}

fn token_req(t: &TestApp, pairs: &[(&str, &str)]) -> Request {
    let _ = t;
    request("POST", "/api/oauth/token", &[FORM], form(pairs))
}

#[tokio::test]
async fn token_endpoint_refuses_bad_requests_and_writes_nothing() {
    let (t, store, code) = setup().await;
    let id = t.app.config.client_id.clone();
    let secret = t.secrets.client_secret.expose().to_string();
    let good = |extra: &[(&'static str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("clientId".into(), id.clone()),
            ("clientSecret".into(), secret.clone()),
            ("grantType".into(), "authorization_code".into()),
        ];
        v.extend(
            extra
                .iter()
                .map(|(k, val)| (k.to_string(), val.to_string())),
        );
        v
    };
    let f = |pairs: Vec<(String, String)>| {
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        token_req(&t, &refs)
    };
    let forged = code.replacen("eyJ", "eyK", 1);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{id}:{secret}")
        )
    );
    let cases = vec![
        case(
            "JSON body",
            request(
                "POST",
                "/",
                &[("content-type", "application/json")],
                r#"{"grantType":"authorization_code"}"#,
            ),
            415,
            Some("invalid_request"),
        ),
        case(
            "no content type",
            request("POST", "/", &[], "grantType=authorization_code"),
            415,
            Some("invalid_request"),
        ),
        case(
            "huge body",
            request(
                "POST",
                "/",
                &[FORM],
                format!("code={}", "a".repeat(100_000)),
            ),
            413,
            Some("invalid_request"),
        ),
        case(
            "bad percent-encoding",
            request("POST", "/", &[FORM], "grantType=%ff%fe&code=x"),
            400,
            Some("invalid_request"),
        ),
        case(
            "not UTF-8",
            request("POST", "/", &[FORM], Bytes::from_static(b"grantType=\xff")),
            400,
            Some("invalid_request"),
        ),
        case(
            "empty body",
            request("POST", "/", &[FORM], ""),
            400,
            Some("invalid_request"),
        ),
        case(
            "missing grantType",
            f(vec![
                ("clientId".into(), id.clone()),
                ("clientSecret".into(), secret.clone()),
                ("code".into(), code.clone()),
            ]),
            400,
            Some("invalid_request"),
        ),
        case(
            "unknown grantType",
            f(vec![
                ("clientId".into(), id.clone()),
                ("clientSecret".into(), secret.clone()),
                ("grantType".into(), "password".into()),
            ]),
            400,
            Some("unsupported_grant_type"),
        ),
        case("missing code", f(good(&[])), 400, Some("invalid_request")),
        case(
            "grantType twice",
            f(good(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
            ])),
            400,
            Some("invalid_request"),
        ),
        case(
            "code twice",
            f(good(&[("code", &code), ("code", &code)])),
            400,
            Some("invalid_request"),
        ),
        case(
            "wrong secret",
            f(vec![
                ("clientId".into(), id.clone()),
                ("clientSecret".into(), "wrong-secret".into()),
                ("grantType".into(), "authorization_code".into()),
                ("code".into(), code.clone()),
            ]),
            401,
            Some("invalid_client"),
        ),
        case(
            "unknown client",
            f(vec![
                ("clientId".into(), "someone".into()),
                ("clientSecret".into(), secret.clone()),
                ("grantType".into(), "authorization_code".into()),
                ("code".into(), code.clone()),
            ]),
            401,
            Some("invalid_client"),
        ),
        case(
            "no client credentials",
            token_req(&t, &[("grantType", "authorization_code"), ("code", &code)]),
            401,
            Some("invalid_client"),
        ),
        case(
            "secret without id",
            token_req(
                &t,
                &[
                    ("clientSecret", &secret),
                    ("grantType", "authorization_code"),
                    ("code", &code),
                ],
            ),
            400,
            Some("invalid_request"),
        ),
        case(
            "Basic and form secret",
            request(
                "POST",
                "/",
                &[FORM, ("authorization", &basic)],
                form(&[
                    ("clientSecret", &secret),
                    ("grantType", "authorization_code"),
                    ("code", &code),
                ]),
            ),
            400,
            Some("invalid_request"),
        ),
        case(
            "malformed Basic",
            request(
                "POST",
                "/",
                &[FORM, ("authorization", "Basic !!!")],
                form(&[("grantType", "authorization_code"), ("code", &code)]),
            ),
            401,
            Some("invalid_client"),
        ),
        case(
            "garbage code",
            f(good(&[("code", "not-a-code")])),
            400,
            Some("invalid_grant"),
        ),
        case(
            "forged code payload",
            f(good(&[("code", &forged)])),
            400,
            Some("invalid_grant"),
        ),
        case(
            "wrong redirect_uri",
            f(good(&[
                ("code", &code),
                ("redirectUri", "https://evil.example/cb"),
            ])),
            400,
            Some("invalid_grant"),
        ),
        case(
            "wrong connectionId",
            f(good(&[("code", &code), ("connectionId", "5151")])),
            400,
            Some("invalid_grant"),
        ),
        case(
            "malformed connectionId",
            f(good(&[("code", &code), ("connectionId", "<x>")])),
            400,
            Some("invalid_grant"),
        ),
        case(
            "refresh: missing token",
            f(vec![
                ("clientId".into(), id.clone()),
                ("clientSecret".into(), secret.clone()),
                ("grantType".into(), "refresh_token".into()),
            ]),
            400,
            Some("invalid_request"),
        ),
        case(
            "refresh: garbage token",
            f(vec![
                ("clientId".into(), id.clone()),
                ("clientSecret".into(), secret.clone()),
                ("grantType".into(), "refresh_token".into()),
                ("refreshToken".into(), "scb_rt_nope".into()),
            ]),
            400,
            Some("invalid_grant"),
        ),
        case(
            "refresh: access token instead",
            f(vec![
                ("clientId".into(), id.clone()),
                ("clientSecret".into(), secret.clone()),
                ("grantType".into(), "refresh_token".into()),
                ("refreshToken".into(), events_creds::ACCESS.into()),
            ]),
            400,
            Some("invalid_grant"),
        ),
        case(
            "refresh: code instead",
            f(vec![
                ("clientId".into(), id.clone()),
                ("clientSecret".into(), secret.clone()),
                ("grantType".into(), "refresh_token".into()),
                ("refreshToken".into(), code.clone()),
            ]),
            400,
            Some("invalid_grant"),
        ),
    ];
    run(&t, &store, cases, async |t: &TestApp, r| {
        handlers::token(&t.app, r).await
    })
    .await;

    // An expired code is refused and left unconsumed (nothing written):
    // back in time, the very same code still works.
    let before = store.fingerprint();
    t.clock
        .advance(syncaroo_shared::clock::secs(t.app.config.code_ttl));
    let resp = handlers::token(&t.app, t.code_request(&code)).await;
    assert_eq!(
        (resp.status().as_u16(), body_json(&resp)["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(store.fingerprint(), before, "expired code: wrote something");
    t.clock
        .advance(-syncaroo_shared::clock::secs(t.app.config.code_ttl));
    let resp = handlers::token(&t.app, t.code_request(&code)).await;
    assert_eq!(
        resp.status(),
        200,
        "the refused requests left the code usable"
    );
}

#[tokio::test]
async fn expired_and_revoked_refresh_tokens_are_refused() {
    let (t, store, _) = setup().await;
    let req = || {
        token_req(
            &t,
            &[
                ("client_id", &t.app.config.client_id),
                ("client_secret", t.secrets.client_secret.expose()),
                ("grant_type", "refresh_token"),
                ("refresh_token", events_creds::REFRESH),
            ],
        )
    };
    t.clock.advance(86_400);
    let before = store.fingerprint();
    let resp = handlers::token(&t.app, req()).await;
    assert_eq!(body_json(&resp)["error"], "invalid_grant");
    assert_eq!(store.fingerprint(), before);
    t.clock.advance(-86_400);
    t.app
        .store
        .revoke_family(events_creds::FAMILY, &[], 0)
        .await
        .unwrap();
    let before = store.fingerprint();
    let resp = handlers::token(&t.app, req()).await;
    assert_eq!(body_json(&resp)["error"], "invalid_grant");
    assert_eq!(store.fingerprint(), before);
}

fn authz_query(overrides: &[(&str, Option<&str>)]) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("connectionId", "99"),
        ("clientId", "syncaroo"),
        ("redirectUri", "https://app.syncaroo.com/connection"),
        ("response_type", "code"),
    ];
    for (k, v) in overrides {
        pairs.retain(|(n, _)| n != k);
        if let Some(v) = v {
            pairs.push((k, v));
        }
    }
    form(&pairs)
}

#[tokio::test]
async fn authorize_refuses_bad_requests_with_a_page_not_a_redirect() {
    let (t, store, _) = setup().await;
    let cookie = syncaroo_tests::event_json("authorize-consent.json")["cookies"][0]
        .as_str()
        .unwrap()
        .to_string();
    let get = |q: String| {
        request(
            "GET",
            &format!("/api/oauth/authorize?{q}"),
            &[("cookie", &cookie)],
            Bytes::new(),
        )
    };
    let post = |body: String| {
        request(
            "POST",
            "/api/oauth/authorize",
            &[FORM, ("cookie", &cookie)],
            body,
        )
    };
    let long_state = "s".repeat(2000);
    let cases = vec![
        case(
            "missing clientId",
            get(authz_query(&[("clientId", None)])),
            400,
            None,
        ),
        case(
            "unknown clientId",
            get(authz_query(&[("clientId", Some("evil"))])),
            400,
            None,
        ),
        case(
            "redirect mismatch",
            get(authz_query(&[(
                "redirectUri",
                Some("https://evil.example/cb"),
            )])),
            400,
            None,
        ),
        case(
            "redirect prefix only",
            get(authz_query(&[(
                "redirectUri",
                Some("https://app.syncaroo.com/connection/extra"),
            )])),
            400,
            None,
        ),
        case(
            "missing redirect",
            get(authz_query(&[("redirectUri", None)])),
            400,
            None,
        ),
        case(
            "response_type token",
            get(authz_query(&[("response_type", Some("token"))])),
            400,
            None,
        ),
        case(
            "missing response_type",
            get(authz_query(&[("response_type", None)])),
            400,
            None,
        ),
        case(
            "missing connectionId",
            get(authz_query(&[("connectionId", None)])),
            400,
            None,
        ),
        case(
            "bad connectionId",
            get(authz_query(&[("connectionId", Some("a b<"))])),
            400,
            None,
        ),
        case(
            "state too long",
            get(authz_query(&[("state", Some(&long_state))])),
            400,
            None,
        ),
        case(
            "connectionId twice",
            get(format!("{}&connectionId=100", authz_query(&[]))),
            400,
            None,
        ),
        case("bad encoding", get("connectionId=%ff".into()), 400, None),
        case(
            "POST without session",
            request(
                "POST",
                "/",
                &[FORM],
                authz_query(&[("csrf", Some("x")), ("decision", Some("authorize"))]),
            ),
            400,
            None,
        ),
        case(
            "POST with wrong csrf",
            post(authz_query(&[
                ("csrf", Some("forged")),
                ("nonce", Some("any")),
                ("decision", Some("authorize")),
            ])),
            403,
            None,
        ),
        case(
            "POST without csrf",
            post(authz_query(&[("decision", Some("authorize"))])),
            400,
            None,
        ),
        case(
            "POST as JSON",
            request(
                "POST",
                "/",
                &[("content-type", "application/json"), ("cookie", &cookie)],
                "{}",
            ),
            415,
            None,
        ),
        case(
            "POST huge",
            post(format!("{}&pad={}", authz_query(&[]), "x".repeat(50_000))),
            413,
            None,
        ),
        case(
            "POST unknown client",
            post(authz_query(&[
                ("clientId", Some("evil")),
                ("csrf", Some("x")),
                ("decision", Some("authorize")),
            ])),
            400,
            None,
        ),
    ];
    run(&t, &store, cases, async |t: &TestApp, r| {
        handlers::authorize(&t.app, r).await
    })
    .await;
}

#[tokio::test]
async fn authorize_refuses_an_unknown_decision_with_a_valid_csrf() {
    let (t, store, _) = setup().await;
    let cookie = syncaroo_tests::event_json("authorize-consent.json")["cookies"][0]
        .as_str()
        .unwrap()
        .to_string();
    let page = handlers::authorize(&t.app, syncaroo_tests::event("authorize-consent.json")).await;
    let f = syncaroo_tests::browser::parse_form(&body_text(&page)).unwrap();
    let mut fields = f.fields.clone();
    fields.push(("decision".into(), "maybe".into()));
    let body: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let before = store.fingerprint();
    let resp = handlers::authorize(
        &t.app,
        request("POST", "/", &[FORM, ("cookie", &cookie)], form(&body)),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(store.fingerprint(), before);
    // The same form with a real decision works: the refusal was the decision.
    fields.pop();
    fields.push(("decision".into(), "authorize".into()));
    let body: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let resp = handlers::authorize(
        &t.app,
        request("POST", "/", &[FORM, ("cookie", &cookie)], form(&body)),
    )
    .await;
    assert_eq!(resp.status(), 302);
    // The consent form works once: posted again, it is refused and
    // nothing is written (no second code).
    let before = store.fingerprint();
    let resp = handlers::authorize(
        &t.app,
        request("POST", "/", &[FORM, ("cookie", &cookie)], form(&body)),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(
        body_text(&resp).contains("already used"),
        "{}",
        body_text(&resp)
    );
    assert_eq!(store.fingerprint(), before);
    // The consent page shown again has a form of its own, which works.
    let page = handlers::authorize(&t.app, syncaroo_tests::event("authorize-consent.json")).await;
    let mut again = syncaroo_tests::browser::parse_form(&body_text(&page))
        .unwrap()
        .fields;
    assert_ne!(again, fields[..fields.len() - 1], "a new nonce and token");
    again.push(("decision".into(), "authorize".into()));
    let body: Vec<(&str, &str)> = again
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let resp = handlers::authorize(
        &t.app,
        request("POST", "/", &[FORM, ("cookie", &cookie)], form(&body)),
    )
    .await;
    assert_eq!(resp.status(), 302);
}

#[tokio::test]
async fn check_connection_refuses_bad_bearers_and_parameters() {
    let (t, store, _) = setup().await;
    let get = |q: &str, auth: Option<&str>| {
        let mut h = vec![];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        request(
            "GET",
            &format!("/api/check_connection/?{q}"),
            &h,
            Bytes::new(),
        )
    };
    let bearer = format!("Bearer {}", events_creds::ACCESS);
    let refresh_bearer = format!("Bearer {}", events_creds::REFRESH);
    let cases = vec![
        case(
            "no Authorization",
            get("connectionId=99", None),
            401,
            Some("invalid_token"),
        ),
        case(
            "Basic scheme",
            get("connectionId=99", Some("Basic abc")),
            401,
            Some("invalid_token"),
        ),
        case(
            "empty bearer",
            get("connectionId=99", Some("Bearer ")),
            401,
            Some("invalid_token"),
        ),
        case(
            "unknown token",
            get("connectionId=99", Some("Bearer scb_at_nope")),
            401,
            Some("invalid_token"),
        ),
        case(
            "refresh token as bearer",
            get("connectionId=99", Some(&refresh_bearer)),
            401,
            Some("invalid_token"),
        ),
        case(
            "other connection",
            get("connectionId=100", Some(&bearer)),
            401,
            Some("invalid_token"),
        ),
        case(
            "missing connectionId",
            get("", Some(&bearer)),
            400,
            Some("invalid_request"),
        ),
        case(
            "bad connectionId",
            get("connectionId=%3Cscript%3E", Some(&bearer)),
            400,
            Some("invalid_request"),
        ),
        case(
            "connectionId twice",
            get("connectionId=99&connectionId=99", Some(&bearer)),
            400,
            Some("invalid_request"),
        ),
    ];
    run(&t, &store, cases, async |t: &TestApp, r| {
        handlers::check_connection(&t.app, r).await
    })
    .await;

    let resp = handlers::check_connection(&t.app, get("connectionId=99", None)).await;
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));

    t.clock.advance(3600);
    let before = store.fingerprint();
    let resp = handlers::check_connection(&t.app, get("connectionId=99", Some(&bearer))).await;
    assert_eq!(resp.status(), 401, "expired");
    assert!(body_json(&resp)["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
    assert_eq!(store.fingerprint(), before);
    t.clock.advance(-3600);

    t.app
        .store
        .revoke_family(events_creds::FAMILY, &[], 0)
        .await
        .unwrap();
    let resp = handlers::check_connection(&t.app, get("connectionId=99", Some(&bearer))).await;
    assert_eq!(resp.status(), 401, "revoked");
    assert!(body_json(&resp)["error_description"]
        .as_str()
        .unwrap()
        .contains("revoked"));
}

/// A method a route does not take: 405 from the router, in the route's
/// protocol (JSON error, or an HTML page where a browser asks), with the
/// security headers and `Allow` naming the methods it takes; nothing is
/// written. Deployed, API Gateway routes only the table's methods; this is
/// what the local runner and a direct invoke answer.
#[tokio::test]
async fn a_method_a_route_does_not_take_is_405_and_changes_nothing() {
    let (t, store, _) = setup().await;
    let bearer = format!("Bearer {}", events_creds::ACCESS);
    let auth = [("authorization", bearer.as_str())];
    for (method, path, allow, json) in [
        ("GET", "/api/oauth/token", "POST", true),
        ("PUT", "/api/oauth/authorize", "GET,POST", false),
        (
            "POST",
            "/api/check_connection/?connectionId=99",
            "GET,HEAD",
            true,
        ),
        ("GET", "/api/update/", "POST", true),
        ("DELETE", "/api//update", "POST", true),
        ("POST", "/api/admin/syncaroo/connect", "GET", false),
        // HEAD is GET without a body only where a route takes it: a GET
        // here may write (connect stores a state, confirm exchanges a code).
        ("HEAD", "/api/admin/syncaroo/connect", "GET", false),
        (
            "HEAD",
            "/api/admin/syncaroo/confirm?code=c&state=s",
            "GET",
            false,
        ),
        ("HEAD", "/api/oauth/authorize", "GET,POST", false),
        ("GET", "/api/platform/users/1/listings", "PUT,DELETE", true),
        ("POST", "/api/platform/connections", "GET", true),
        ("HEAD", "/api/platform/connections", "GET", true),
    ] {
        let before = store.fingerprint();
        let req = if path.starts_with("/api/platform/") {
            // A caller API Gateway verified (the platform routes answer
            // anyone else 401 before looking at the method).
            let mut req = syncaroo_tests::event("platform-revoke-connection.json");
            *req.method_mut() = method.parse().unwrap();
            *req.uri_mut() = path.parse().unwrap();
            req
        } else {
            request(method, path, &auth, Bytes::new())
        };
        let resp = syncaroo_tests::route(&t.app, req).await;
        assert_eq!(resp.status(), 405, "{method} {path}: {}", body_text(&resp));
        let mut allowed: Vec<&str> = resp.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(str::trim)
            .collect();
        allowed.sort();
        let mut expected: Vec<&str> = allow.split(',').collect();
        expected.sort();
        assert_eq!(allowed, expected, "{method} {path}");
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{method} {path}"
        );
        if method == "HEAD" {
            // The answer to HEAD has no content (RFC 9110 section 9.3.2).
            assert!(resp.body().is_empty(), "{method} {path}");
        } else if json {
            // The platform API has its own vocabulary; OAuth's elsewhere.
            let code = if path.starts_with("/api/platform/") {
                "method_not_allowed"
            } else {
                "invalid_request"
            };
            assert_eq!(body_json(&resp)["error"], code, "{method} {path}");
        } else {
            let ct = resp.headers()["content-type"].to_str().unwrap();
            assert!(ct.starts_with("text/html"), "{method} {path}: {ct}");
            assert!(resp.headers().contains_key("content-security-policy"));
        }
        assert_eq!(
            store.fingerprint(),
            before,
            "{method} {path}: wrote something"
        );
    }
}
