//! The very files in `events/`, parsed as lambda_http parses an invocation
//! and fed through the handlers on the in-memory store.

use syncaroo_shared::handlers;
use syncaroo_tests::{body_json, body_text, event, events_creds, location, query_of, TestApp};

#[tokio::test]
async fn authorize_without_session_redirects_to_login() {
    let (t, store) = TestApp::memory();
    let resp = handlers::authorize(&t.app, event("authorize-no-session.json")).await;
    assert_eq!(resp.status(), 302);
    let loc = location(&resp);
    assert!(
        loc.starts_with("https://yourapp.com/login?return_to="),
        "{loc}"
    );
    // No PUBLIC_BASE_URL: back to the domain the event came in on
    // (requestContext.domainName / Host).
    let back = &query_of(&loc)["return_to"];
    assert!(
        back.starts_with(
            "https://abc123.execute-api.us-east-1.amazonaws.com/api/oauth/authorize?connectionId=99&"
        ),
        "{back}"
    );
    assert_eq!(store.counts(), (0, 0, 0), "nothing written");
}

#[tokio::test]
async fn authorize_returns_to_the_configured_public_base_url() {
    let store = std::sync::Arc::new(syncaroo_shared::store::MemoryStore::new());
    let config = syncaroo_shared::Config::from_lookup(|k| match k {
        "LOGIN_URL" => Some("https://yourapp.com/login".into()),
        "PUBLIC_BASE_URL" => Some("https://yourapp.com".into()),
        _ => None,
    })
    .unwrap();
    let t = TestApp::with(store, config);
    let resp = handlers::authorize(&t.app, event("authorize-no-session.json")).await;
    let back = &query_of(&location(&resp))["return_to"];
    assert!(
        back.starts_with("https://yourapp.com/api/oauth/authorize?connectionId=99&"),
        "{back}"
    );
}

#[tokio::test]
async fn authorize_with_session_shows_consent() {
    let (t, store) = TestApp::memory();
    let resp = handlers::authorize(&t.app, event("authorize-consent.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    let html = body_text(&resp);
    assert!(html.contains("<title>Connect Syncaroo to Your platform</title>"));
    assert!(html.contains("name=\"csrf\""));
    assert!(html.contains("value=\"authorize\"") && html.contains("value=\"deny\""));
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.syncaroo.com;"),
        "{csp}"
    );
    assert_eq!(store.counts(), (0, 0, 0), "showing consent writes nothing");
}

#[tokio::test]
async fn token_exchange_in_the_guides_dialect() {
    let (t, store) = TestApp::memory();
    t.seed_events_code().await;
    let resp = handlers::token(&t.app, event("token-exchange.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let v = body_json(&resp);
    assert!(v["accessToken"].as_str().unwrap().starts_with("scb_at_"));
    assert!(v["refreshToken"].as_str().unwrap().starts_with("scb_rt_"));
    // 2026-11-27T19:00:00Z plus the default hour.
    assert_eq!(v["expires"], "2026-11-27T20:00:00");
    assert!(v.get("access_token").is_none());
    assert_eq!(store.counts().1, 2, "access and refresh token stored");
}

#[tokio::test]
async fn token_exchange_in_the_rfc_dialect_with_basic_auth() {
    let (t, _) = TestApp::memory();
    t.seed_events_code().await;
    let resp = handlers::token(&t.app, event("token-exchange-rfc.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    let v = body_json(&resp);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert!(v["access_token"].as_str().unwrap().starts_with("scb_at_"));
    assert!(v.get("accessToken").is_none());
}

#[tokio::test]
async fn refresh_grant_rotates() {
    let (t, _) = TestApp::memory();
    t.seed_events_tokens().await;
    let resp = handlers::token(&t.app, event("token-refresh.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    let v = body_json(&resp);
    assert_ne!(v["refreshToken"], events_creds::REFRESH);
    let old = t
        .app
        .store
        .get_token(&t.hash(events_creds::REFRESH))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.used_at, Some(t.clock_now()));
}

/// HEAD answers whether the token is good and changes nothing: the
/// connection is confirmed only by a GET.
#[tokio::test]
async fn head_on_check_connection_does_not_confirm() {
    use syncaroo_shared::model::{ConnectionId, ConnectionStatus};
    let (t, _) = TestApp::memory();
    t.seed_events_tokens().await;
    let status = || async {
        t.app
            .store
            .get_connection(&ConnectionId::parse("99").unwrap())
            .await
            .unwrap()
            .unwrap()
            .status
    };
    let before = status().await;
    assert_ne!(before, ConnectionStatus::Confirmed);
    let mut head = event("check-connection.json");
    *head.method_mut() = http::Method::HEAD;
    let resp = handlers::check_connection(&t.app, head).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    assert!(resp.body().is_empty());
    assert_eq!(status().await, before, "HEAD changed nothing");
    let mut anonymous = event("check-connection.json");
    *anonymous.method_mut() = http::Method::HEAD;
    anonymous.headers_mut().remove("authorization");
    assert_eq!(
        handlers::check_connection(&t.app, anonymous).await.status(),
        401
    );
    let resp = handlers::check_connection(&t.app, event("check-connection.json")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(status().await, ConnectionStatus::Confirmed);
}

#[tokio::test]
async fn check_connection_returns_the_guides_schema() {
    let (t, _) = TestApp::memory();
    t.seed_events_tokens().await;
    let resp = handlers::check_connection(&t.app, event("check-connection.json")).await;
    assert_eq!(resp.status(), 200, "{}", body_text(&resp));
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let v = body_json(&resp);
    assert_eq!(v["connectionId"], 99);
    assert_eq!(v["userId"], "1");
    let locs = v["locations"].as_object().unwrap();
    assert_eq!(
        locs.keys().collect::<Vec<_>>(),
        ["1198", "7120", "8102", "9587"]
    );
    assert_eq!(v["locations"]["1198"]["resources"][0]["ID"], "7843");
    assert_eq!(v["locations"]["1198"]["resources"][1]["type"], "office");
    assert!(v["locations"]["7120"].get("resources").is_none());
    assert_eq!(v["locations"]["9587"]["status"], "deleted");
    let conn = t
        .app
        .store
        .get_connection(&syncaroo_shared::model::ConnectionId::parse("99").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conn.status,
        syncaroo_shared::model::ConnectionStatus::Confirmed
    );
}

mod refresh_function {
    use super::*;
    use syncaroo_shared::edge::{self, ScheduleEvent};

    fn tick() -> ScheduleEvent {
        serde_json::from_value(syncaroo_tests::event_json("refresh-schedule.json"))
            .expect("an EventBridge scheduled event")
    }

    #[tokio::test]
    async fn schedule_without_credentials_is_skipped_not_failed() {
        let (t, _) = TestApp::memory();
        let out = edge::on_schedule(&t.app, &tick()).await.unwrap();
        assert_eq!(out["outcome"], "skipped");
    }

    #[tokio::test]
    async fn schedule_with_fresh_credentials_does_nothing() {
        let (t, _) = TestApp::memory();
        let new = syncaroo_shared::syncaroo::NewCredentials {
            access_token: syncaroo_shared::secrets::SecretString::new("a"),
            expires_at: t.clock_now() + 600,
            refresh_token: syncaroo_shared::secrets::SecretString::new("r"),
        };
        t.app
            .store
            .put_credentials(&new, t.clock_now())
            .await
            .unwrap();
        let out = edge::on_schedule(&t.app, &tick()).await.unwrap();
        assert_eq!(out["outcome"], "fresh");
    }

    #[test]
    fn an_http_event_is_not_a_schedule_tick() {
        let http = syncaroo_tests::event_json("admin-status.json");
        assert!(serde_json::from_value::<ScheduleEvent>(http).is_err());
    }
}

mod admin_function {
    use super::*;

    #[tokio::test]
    async fn admin_connect_event_redirects_to_syncaroo() {
        let (t, _) = TestApp::memory();
        let resp =
            syncaroo_tests::route_as(&t.app, "AdminFunction", event("admin-connect.json")).await;
        assert_eq!(resp.status(), 302, "{}", body_text(&resp));
        let loc = location(&resp);
        assert!(
            loc.starts_with(
                "https://app.syncaroo.com/api/authorize?clientId=platform-at-syncaroo&redirectUri="
            ),
            "{loc}"
        );
    }

    #[tokio::test]
    async fn admin_confirm_event_with_an_unknown_state_is_refused() {
        let (t, _) = TestApp::memory();
        let resp =
            syncaroo_tests::route_as(&t.app, "AdminFunction", event("admin-confirm.json")).await;
        assert_eq!(resp.status(), 400);
        assert!(t.app.store.get_credentials().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn admin_status_event_reports_no_connection() {
        let (t, _) = TestApp::memory();
        let resp =
            syncaroo_tests::route_as(&t.app, "AdminFunction", event("admin-status.json")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(body_json(&resp)["connected"], false);
    }

    #[tokio::test]
    async fn admin_events_without_the_key_are_refused() {
        let (t, _) = TestApp::memory();
        let mut req = event("admin-connect.json");
        req.headers_mut().remove("authorization");
        let resp = syncaroo_tests::route_as(&t.app, "AdminFunction", req).await;
        assert_eq!(resp.status(), 401);
    }

    #[tokio::test]
    async fn the_admin_function_serves_only_admin_routes() {
        let (t, store) = TestApp::memory();
        t.seed_events_tokens().await;
        let before = store.counts();
        let resp =
            syncaroo_tests::route_as(&t.app, "AdminFunction", event("check-connection.json")).await;
        assert_eq!(resp.status(), 404);
        assert_eq!(store.counts(), before);
        let conn = t
            .app
            .store
            .get_connection(&syncaroo_shared::model::ConnectionId::parse("99").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(
            conn.status,
            syncaroo_shared::model::ConnectionStatus::Confirmed,
            "the admin function did not run check_connection"
        );
    }
}

mod webhook_and_sync {
    use super::*;
    use syncaroo_shared::deadletter::MemoryDeadLetters;
    use syncaroo_shared::model::ConnectionId;

    use syncaroo_shared::edge::{on_stream, stream_events};
    use syncaroo_shared::handlers::sync::{target_of, Delivered};

    fn stream(name: &str) -> Vec<Delivered> {
        let batch = serde_json::from_value(syncaroo_tests::event_json(name))
            .expect("a DynamoDB stream batch");
        stream_events(batch).into_iter().map(|(_, d)| d).collect()
    }

    fn body_of(name: &str) -> String {
        syncaroo_tests::event_json(name)["body"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn data_webhook_notifies_the_target_the_stream_sample_names() {
        let (t, _) = TestApp::memory();
        t.seed_events_tokens().await;
        // Sent twice (the same change notified twice): both accepted.
        for _ in 0..2 {
            let resp = handlers::webhook(&t.app, event("webhook-data.json")).await;
            assert_eq!(resp.status(), 202, "{}", body_text(&resp));
            assert_eq!(body_json(&resp)["status"], "accepted");
            assert_eq!(body_json(&resp)["targetId"], "99#1198#resources#7843");
        }
        let hook =
            syncaroo_shared::webhook::Webhook::parse(body_of("webhook-data.json").as_bytes())
                .unwrap();
        let target = target_of(&hook);
        let st = t.app.store.get_target(&target).await.unwrap().unwrap();
        assert_eq!((st.notifications, st.due()), (2, true));
        assert_eq!(
            stream("sync-stream-data.json"),
            vec![Delivered::Target(target)]
        );
    }

    #[tokio::test]
    async fn status_webhook_is_recorded_as_the_stream_sample_shows() {
        let (t, _) = TestApp::memory();
        t.seed_events_tokens().await;
        let resp = handlers::webhook(&t.app, event("webhook-status.json")).await;
        assert_eq!(resp.status(), 202, "{}", body_text(&resp));
        assert_eq!(body_json(&resp)["targetId"], "99#1198#status#-");
        let hook =
            syncaroo_shared::webhook::Webhook::parse(body_of("webhook-status.json").as_bytes())
                .unwrap();
        let target = target_of(&hook);
        assert!(target.is_status());
        let ours = t.app.store.get_target(&target).await.unwrap().unwrap();
        assert_eq!(stream("sync-stream.json"), vec![Delivered::Target(target)]);
        let sample = syncaroo_tests::event_json("sync-stream.json");
        let image = &sample["Records"][0]["dynamodb"]["NewImage"];
        assert_eq!(image["payload"]["S"].as_str(), Some(ours.payload.as_str()));
        assert_eq!(image["notifications"]["N"], "1");
        assert_eq!(ours.notifications, 1);
    }

    #[tokio::test]
    async fn sync_stream_event_stores_the_status() {
        let (t, _) = TestApp::memory();
        // What the stream sample carries was notified by a webhook, which
        // the connection's token made (its user lists location 1198).
        t.seed_events_tokens().await;
        let resp = handlers::webhook(&t.app, event("webhook-status.json")).await;
        assert_eq!(resp.status(), 202, "{}", body_text(&resp));
        let dlq = MemoryDeadLetters::default();
        let batch = || {
            serde_json::from_value(syncaroo_tests::event_json("sync-stream.json"))
                .expect("a DynamoDB stream batch")
        };
        let out =
            serde_json::to_value(on_stream(&t.app, &dlq, batch(), None).await.unwrap()).unwrap();
        assert_eq!(out["batchItemFailures"], serde_json::json!([]));
        let s = t
            .app
            .store
            .get_location_status(&ConnectionId::parse("99").unwrap(), "1198")
            .await
            .unwrap()
            .unwrap();
        assert!(s.meta.contains("lockdown"));
        assert_eq!(s.seq, 1);
        assert!(dlq.all().is_empty());
        // Delivered again (the stream retries): applied once, announced once.
        on_stream(&t.app, &dlq, batch(), None).await.unwrap();
        let announced = t
            .changes
            .entries()
            .iter()
            .filter(|e| e.detail_type == "Syncaroo Location Status Changed")
            .count();
        assert_eq!(announced, 1);
    }

    /// A notified target that cannot be fetched yet (no Syncaroo API
    /// credentials) is named in batchItemFailures, so the stream delivers
    /// it again; one never notified is skipped.
    #[tokio::test]
    async fn sync_stream_data_record_is_redelivered_until_fetched() {
        let (t, _) = TestApp::memory();
        t.seed_events_tokens().await;
        let dlq = MemoryDeadLetters::default();
        let batch =
            || serde_json::from_value(syncaroo_tests::event_json("sync-stream-data.json")).unwrap();
        let out =
            serde_json::to_value(on_stream(&t.app, &dlq, batch(), None).await.unwrap()).unwrap();
        assert_eq!(
            out["batchItemFailures"],
            serde_json::json!([]),
            "not notified here"
        );
        handlers::webhook(&t.app, event("webhook-data.json")).await;
        let out =
            serde_json::to_value(on_stream(&t.app, &dlq, batch(), None).await.unwrap()).unwrap();
        assert_eq!(
            out["batchItemFailures"],
            serde_json::json!([{"itemIdentifier": "111100000000000000002"}])
        );
        assert!(dlq.all().is_empty());
    }
}
