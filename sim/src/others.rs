//! The checks that need a connection of their own, or none: what the
//! authorize endpoint must refuse (an unknown client, an unregistered
//! redirect URI), and, on a throwaway connection the kit makes for them,
//! another connection's bearer and a refresh token used twice (which
//! revokes what it touches, so never on the run's main connection).

use crate::browser::Browser;
use crate::ctx::{Ctx, StepResult};
use crate::sender::Sender;
use serde_json::Value;
use std::time::Duration;

/// A redirect URI no platform registered.
pub const UNREGISTERED_REDIRECT: &str = "https://kit.invalid/callback";

/// A connection the kit made for a destructive check.
pub(crate) struct Throwaway {
    pub access: String,
    pub refresh: String,
}

fn fresh_connection_id() -> String {
    (100_000 + rand::random::<u32>() % 900_000).to_string()
}

/// The authorize URL for `connection`, `client`, `redirect` and `state`.
pub(crate) fn authorize_for(
    c: &Ctx<'_>,
    connection: &str,
    client: &str,
    redirect: &str,
    state: &str,
) -> String {
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "{}?connectionId={connection}&clientId={}&redirectUri={}&response_type=code&state={}",
        c.o.urls.authorize,
        enc(client),
        enc(redirect),
        enc(state)
    )
}

/// A fresh `state` for a kit-made connection.
fn kit_state() -> String {
    format!("kit-{}", rand::random::<u32>())
}

/// A browser walking from `start` through login and consent: the URL it
/// was sent to, when it starts with `prefix`.
async fn walk(c: &Ctx<'_>, start: &str, prefix: &str) -> Result<String, String> {
    let o = c.o;
    Browser::new()
        .connect(start, prefix, &o.username, &o.password, "authorize")
        .await
}

/// An unknown `clientId` is refused: the walk never reaches `redirectUri`.
pub(crate) async fn unknown_client(c: &Ctx<'_>) -> StepResult {
    let o = c.o;
    let start = authorize_for(
        c,
        &fresh_connection_id(),
        "kit-unknown-client",
        &o.redirect_uri,
        &kit_state(),
    );
    match walk(c, &start, &o.redirect_uri).await {
        Ok(back) => Err(format!(
            "expected a refusal (RFC 6749 4.1.2.1: no redirect for an unknown client), got sent to {back}"
        )),
        Err(e) => Ok(format!("refused: {}", clip(&e))),
    }
}

/// An unregistered `redirectUri` is refused without a redirect to it.
pub(crate) async fn unregistered_redirect(c: &Ctx<'_>) -> StepResult {
    let start = authorize_for(
        c,
        &fresh_connection_id(),
        &c.o.client_id,
        UNREGISTERED_REDIRECT,
        &kit_state(),
    );
    match walk(c, &start, UNREGISTERED_REDIRECT).await {
        Ok(back) => Err(format!(
            "expected a refusal without a redirect, got sent to {back}"
        )),
        Err(e) => Ok(format!("refused: {}", clip(&e))),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

/// A connection of the kit's own: a fresh connectionId through login,
/// consent and the code exchange.
pub(crate) async fn throwaway(c: &Ctx<'_>) -> Result<Throwaway, String> {
    let o = c.o;
    let start = authorize_for(
        c,
        &fresh_connection_id(),
        &o.client_id,
        &o.redirect_uri,
        &kit_state(),
    );
    let back = walk(c, &start, &o.redirect_uri).await?;
    let code = url::Url::parse(&back)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| format!("expected a code on {back}"))?;
    let (status, body) = c
        .token_request(&[
            ("clientId", &o.client_id),
            ("clientSecret", &o.client_secret),
            ("code", &code),
            ("grantType", "authorization_code"),
        ])
        .await?;
    let token = |k: &str| body[k].as_str().map(str::to_string);
    match (status, token("accessToken"), token("refreshToken")) {
        (200, Some(access), Some(refresh)) => Ok(Throwaway { access, refresh }),
        _ => Err(format!("expected a token pair, got {status}: {body}")),
    }
}

/// A webhook for the run's connection with another connection's bearer.
pub(crate) async fn other_bearer(sender: &Sender, other: &Throwaway, body: Value) -> StepResult {
    let d = sender.send(&other.access, body).await?;
    if matches!(d.status, 401 | 403) {
        Ok(format!("refused with {}", d.status))
    } else {
        Err(format!(
            "expected 401 or 403 for another connection's bearer, got {}",
            d.status
        ))
    }
}

/// A refresh token used again after the platform's grace window is
/// refused (the throwaway connection's: a reuse revokes its family).
pub(crate) async fn refresh_once(c: &Ctx<'_>, other: &Throwaway, grace: Duration) -> StepResult {
    match c.refresh_grant(&other.refresh).await? {
        (200, _) => {}
        (s, body) => {
            return Err(format!(
                "expected the first refresh to work, got {s}: {body}"
            ))
        }
    }
    tokio::time::sleep(grace + Duration::from_millis(1_100)).await;
    match c.refresh_grant(&other.refresh).await? {
        (400 | 401, body) => Ok(format!(
            "reuse after {} s refused: {}",
            grace.as_secs(),
            body["error"]
        )),
        (s, body) => Err(format!(
            "expected a reuse after the {} s grace to be refused, got {s}: {body}",
            grace.as_secs()
        )),
    }
}
