//! The scenario's steps, one function each, in the order [`crate::run::run`]
//! takes them. Each returns what it saw, or what it expected when it fails.

use crate::browser::{visible_text, Browser};
use crate::ctx::{Ctx, StepResult};
use crate::sender::Sender;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use syncaroo_shared::routes::{self, Endpoint};

fn rates(tag: &str) -> Vec<Vec<Value>> {
    vec![
        vec![
            json!({"rate": "hourly", "amount": 10, "tag": tag}),
            json!({"rate": "daily", "amount": 60, "tag": tag}),
        ],
        vec![json!({"rate": "weekly", "amount": 250, "tag": tag})],
        vec![json!({"rate": "monthly", "amount": 900, "tag": tag})],
    ]
}

fn query(url: &str) -> HashMap<String, String> {
    form_urlencoded::parse(url.split_once('?').map(|x| x.1).unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn acked(r: &Result<crate::sender::Delivery, String>) -> bool {
    matches!(r, Ok(d) if (200..300).contains(&d.status))
}

/// The authorize URL Syncaroo sends the user to, with a fresh `state`.
pub(crate) fn authorize_url(c: &Ctx<'_>) -> (String, String) {
    let o = c.o;
    let state = format!("sim-{}", rand::random::<u32>());
    let url =
        crate::others::authorize_for(c, &o.connection_id, &o.client_id, &o.redirect_uri, &state);
    (url, state)
}

/// The browser's whole visit: Syncaroo's link, login, consent, and the
/// redirect back to Syncaroo (its URL).
async fn login_and_consent(c: &Ctx<'_>, start: &str) -> Result<String, String> {
    let o = c.o;
    Browser::new()
        .connect(
            start,
            &o.redirect_uri,
            &o.username,
            &o.password,
            "authorize",
        )
        .await
}

/// The user logs in and consents; the redirect back to Syncaroo carries
/// connectionId, the state and a code (written to `code`).
pub(crate) async fn user_connects(
    c: &Ctx<'_>,
    start: &str,
    state: &str,
    code: &mut String,
) -> StepResult {
    let o = c.o;
    let back = login_and_consent(c, start).await.map_err(|e| {
        format!(
            "expected to reach {} after login and consent: {e}",
            o.redirect_uri
        )
    })?;
    let q = query(&back);
    if q.get("connectionId") != Some(&o.connection_id) {
        return Err(format!(
            "expected connectionId={} on the redirect, got {back}",
            o.connection_id
        ));
    }
    if q.get("state").map(String::as_str) != Some(state) {
        return Err("expected the state to come back unchanged".into());
    }
    match q.get("code").filter(|c| !c.is_empty()) {
        Some(cd) => {
            *code = cd.clone();
            Ok("redirected with connectionId, code and state".into())
        }
        None => Err(format!(
            "expected a code on the redirect, got {}",
            visible_text(&back)
        )),
    }
}

pub(crate) async fn exchange(c: &mut Ctx<'_>, code: &str) -> Result<(u16, Value), String> {
    let o = c.o;
    c.token_request(&[
        ("clientId", &o.client_id),
        ("clientSecret", &o.client_secret),
        ("code", code),
        ("grantType", "authorization_code"),
    ])
    .await
}

/// The code is single-use.
pub(crate) async fn code_replay(c: &mut Ctx<'_>, code: &str) -> StepResult {
    match exchange(c, code).await? {
        (400, body) if body["error"] == "invalid_grant" => {
            Ok("replay refused with invalid_grant".into())
        }
        (s, body) => Err(format!(
            "expected 400 invalid_grant for a reused code, got {s}: {body}"
        )),
    }
}

/// The user consents again (the replay revoked the first tokens): the
/// redirect's new code.
pub(crate) async fn consent_again(c: &Ctx<'_>, start: &str) -> Result<String, String> {
    let back = login_and_consent(c, start).await?;
    query(&back)
        .remove("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("expected a code on the second redirect, got {back}"))
}

/// The second consent's code exchanged for a pair, kept for what follows.
pub(crate) async fn exchange_for_pair(c: &mut Ctx<'_>, code: &str) -> StepResult {
    match exchange(c, code).await? {
        (200, body) => c.keep_tokens(&body),
        (s, body) => Err(format!("expected 200, got {s}: {body}")),
    }
}

/// Syncaroo rotates its tokens; the new access token works.
pub(crate) async fn refresh_rotates(c: &mut Ctx<'_>) -> StepResult {
    let refresh = c.refresh.clone().unwrap_or_default();
    let (status, body) = c.refresh_grant(&refresh).await?;
    if status != 200 {
        return Err(format!("expected 200, got {status}: {body}"));
    }
    let d = c.keep_tokens(&body)?;
    if c.refresh.as_deref() == Some(refresh.as_str()) {
        return Err("expected a new refresh token (rotation)".into());
    }
    let access = c.access.clone().unwrap_or_default();
    c.check_connection(&access)
        .await
        .map(|_| format!("rotated; new access token works; {d}"))
}

/// The webhook body's connectionId, a number as the guide writes it.
pub(crate) fn connection_value(c: &Ctx<'_>) -> Value {
    let id = &c.o.connection_id;
    id.parse::<u64>()
        .map(Value::from)
        .unwrap_or(Value::from(id.clone()))
}

/// A status webhook as the guide shows it, acked 2xx.
pub(crate) async fn status_webhook(sender: &Sender, bearer: &str, body: Value) -> StepResult {
    let d = sender.send(bearer, body).await?;
    if (200..300).contains(&d.status) {
        Ok(format!("acked {} after {} tries", d.status, d.tries))
    } else {
        Err(format!("expected 2xx, got {}: {}", d.status, d.body))
    }
}

/// A data webhook for 3 pages of rates; the platform must fetch them all.
/// Leaves the webhook it sent in `sent`, for the duplicates step.
pub(crate) async fn data_webhook(
    c: &Ctx<'_>,
    sender: &Sender,
    bearer: &str,
    path: &str,
    sent: &mut Value,
) -> StepResult {
    c.fake.set_pages(path, rates("v1"));
    *sent = json!({"connectionId": connection_value(c), "webhookType": "data", "locationId": "1198",
                   "metaData": {"attributeType": "rates", "apiUrl": c.fake.page_url(path, 1)}});
    let d = sender.send(bearer, sent.clone()).await?;
    if !(200..300).contains(&d.status) {
        return Err(format!("expected 2xx, got {}: {}", d.status, d.body));
    }
    c.wait_fetched(path, 3).await
}

/// The same webhook again, three times (the guide's bodies carry no id:
/// a second change to the same rates sends the same body): each is a
/// notification, so the rates are fetched again, at least once and at most
/// once per notification.
pub(crate) async fn same_body_again(
    c: &Ctx<'_>,
    sender: &Sender,
    bearer: &str,
    path: &str,
    data: &Value,
) -> StepResult {
    let pages = 3;
    let before = c.fake.served(path).len();
    let mut acks = vec![];
    for _ in 0..3 {
        acks.push(sender.send(bearer, data.clone()).await.map(|d| d.status));
    }
    if acks.iter().any(|a| !matches!(a, Ok(200..=299))) {
        return Err(format!(
            "expected every notification acked 2xx, got {acks:?}"
        ));
    }
    c.wait_fetched(path, before + pages).await?;
    // Let any fetch still running finish before counting.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let more = c.fake.served(path).len() - before;
    if !more.is_multiple_of(pages) || more > 3 * pages {
        return Err(format!(
            "expected 1 to 3 more whole fetches of {pages} pages, saw {more} page requests"
        ));
    }
    Ok(format!(
        "3 notifications acked, fetched again {} time(s)",
        more / pages
    ))
}

/// Out of order: a newer change announced before an older one.
pub(crate) async fn out_of_order(c: &Ctx<'_>, sender: &Sender, bearer: &str) -> StepResult {
    let path = format!(
        "/api/v1/locations/1198/resources/7843/{}",
        c.o.connection_id
    );
    c.fake.set_pages(
        &path,
        vec![vec![
            json!({"ID": "7843", "name": "Meeting Room", "capacity": 8}),
        ]],
    );
    let newer = json!({"connectionId": connection_value(c), "webhookType": "data", "locationId": "1198",
                       "metaData": {"resourceId": "7843", "attributeType": "resources", "resourceType": "meeting-room",
                                    "apiUrl": c.fake.page_url(&path, 1), "revision": 2}});
    let mut older = newer.clone();
    older["metaData"]["revision"] = json!(1);
    let (a, b) = (
        sender.send(bearer, newer).await,
        sender.send(bearer, older).await,
    );
    // The same target: the two may coalesce into one fetch.
    if acked(&a) && acked(&b) {
        c.wait_fetched(&path, 1).await
    } else {
        Err(format!(
            "expected both acked, got {:?} and {:?}",
            a.map(|d| d.status),
            b.map(|d| d.status)
        ))
    }
}

/// Syncaroo expires the platform's API token: it must refresh.
pub(crate) async fn token_refresh_on_401(c: &Ctx<'_>, sender: &Sender, bearer: &str) -> StepResult {
    let fake = c.fake;
    let before = fake.refreshes();
    fake.expire_access();
    let path = format!("/api/v1/locations/7120/rates/{}", c.o.connection_id);
    fake.set_pages(&path, vec![vec![json!({"rate": "daily", "amount": 45})]]);
    let d = sender
        .send(bearer, json!({"connectionId": connection_value(c), "webhookType": "data", "locationId": "7120",
                             "metaData": {"attributeType": "rates", "apiUrl": fake.page_url(&path, 1)}}))
        .await?;
    if !(200..300).contains(&d.status) {
        return Err(format!("expected 2xx, got {}", d.status));
    }
    c.wait_fetched(&path, 1).await?;
    if fake.refreshes() > before {
        Ok("401 answered by one token refresh, then fetched".into())
    } else {
        Err("expected the platform to refresh its Syncaroo token".into())
    }
}

/// The platform connects to (our fake) Syncaroo API with the admin key.
pub(crate) async fn admin_connect(c: &Ctx<'_>, key: &str) -> StepResult {
    let connect = c.url(routes::path(Endpoint::AdminConnect));
    let anon = c
        .http
        .get(&connect)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if anon.status() != 401 {
        return Err(format!(
            "expected 401 for an anonymous admin call, got {}",
            anon.status()
        ));
    }
    let resp = c
        .http
        .get(&connect)
        .basic_auth("admin", Some(key))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let to_syncaroo = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(to_syncaroo) = to_syncaroo else {
        return Err(format!(
            "expected a redirect to Syncaroo's authorize URL, got {}",
            resp.status()
        ));
    };
    let resp = c
        .http
        .get(&to_syncaroo)
        .send()
        .await
        .map_err(|e| format!("{to_syncaroo}: {e}"))?;
    let back = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| format!("the fake Syncaroo refused the authorize request ({}): is the target's Syncaroo client id the fake's?", resp.status()))?;
    let resp = c
        .http
        .get(&back)
        .basic_auth("admin", Some(key))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status == 200 {
        Ok("credentials stored".into())
    } else {
        Err(format!(
            "expected 200 from confirm, got {status}: {}",
            visible_text(&text)
        ))
    }
}
