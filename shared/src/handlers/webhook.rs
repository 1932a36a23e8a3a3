//! `apiUri/webhookPath` (and `siteUri/webhookPath`): Syncaroo's change
//! notifications. Authenticated by our bearer token for the body's
//! connection, verified by the hash profile, recorded (a data webhook marks
//! its target, a status webhook is kept as a change), acked at once: the
//! Syncaroo API is called later by the sync worker, never here.

use crate::app::App;
use crate::auth;
use crate::error::Error;
use crate::http_util::{self, Request, Response};
use crate::webhook::{HashKey, Webhook};
use http::StatusCode;

/// Webhook bodies are a few hundred bytes; refuse anything much larger.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// The webhook's hash under `key`; under the client secret, the one a
/// rotation replaced is accepted too within its grace
/// (`secrets::rotation`), and which one verified is logged.
async fn verify_hash(app: &App, key: &str, hook: &Webhook) -> Result<(), Error> {
    let profile = &app.config.webhook_hash;
    if profile.key != HashKey::ClientSecret {
        return profile.verify(key.as_bytes(), &hook.body);
    }
    let used = app
        .secrets
        .client_secret_used(app.config.client_secret_grace, |k| {
            profile.verify(k.as_bytes(), &hook.body).is_ok()
        })
        .await?;
    match used {
        Some(used) => {
            tracing::info!(client_secret = used.as_str(), "webhook hash verified");
            Ok(())
        }
        // Refused: the current key's error says why.
        None => profile.verify(key.as_bytes(), &hook.body),
    }
}

pub async fn webhook(app: &App, req: Request) -> Response {
    match handle(app, &req).await {
        Ok(r) => r,
        Err(e) => e.to_bearer_response(),
    }
}

async fn handle(app: &App, req: &Request) -> Result<Response, Error> {
    // Anonymous callers learn nothing, not even whether the body parses.
    let raw_token = auth::bearer_token(req)?;
    // The guide names no Content-Type: any body is parsed as JSON (none,
    // text/plain, application/json, +json); only form and multipart
    // bodies, which are not JSON by construction, are refused.
    let ct = http_util::header(req, "content-type").unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/x-www-form-urlencoded" || mime.starts_with("multipart/") {
        return Err(Error::UnsupportedMediaType(
            "a webhook body is JSON, not a form".into(),
        ));
    }
    if req.body().len() > MAX_WEBHOOK_BODY {
        return Err(Error::PayloadTooLarge(MAX_WEBHOOK_BODY));
    }
    let hook = Webhook::parse(req.body())?;
    // Round trip 1: the token, which must be ours and live, for this
    // connection, read with the connection itself.
    let secrets = app.secrets.get().await?;
    auth::access_token(
        app.store.as_ref(),
        &secrets,
        raw_token,
        &hook.connection_id,
        app.clock.now(),
    )
    .await?;
    let key = match app.config.webhook_hash.key {
        HashKey::ClientSecret => secrets.client_secret.expose(),
        HashKey::WebhookKey => secrets
            .webhook_hash_key
            .as_ref()
            .map(|k| k.expose())
            .ok_or_else(|| {
                Error::Config("WEBHOOK_HASH_KEY=webhook_key but webhookHashKey is not set".into())
            })?,
    };
    // A hash that is present must verify; whether one must be present is
    // WEBHOOK_REQUIRE_HASH's (the guide's status example has none).
    let must = app
        .config
        .webhook_require_hash
        .requires(hook.webhook_type());
    let checked = if must || hook.body.contains_key("hash") {
        verify_hash(app, key, &hook).await
    } else {
        Ok(())
    };
    if let Err(e) = checked {
        // Say which webhook, never what it carried.
        tracing::warn!(
            connection_id = %hook.connection_id,
            webhook_type = hook.webhook_type().as_str(),
            location_id = %hook.location_id,
            reason = %e,
            "webhook refused: hash"
        );
        return Err(e);
    }
    // Round trip 2: one write, never refused as a duplicate: webhooks are
    // notifications, and the second change to the same rates sends the
    // same body as the first.
    let now_ms = app.clock.now_ms();
    let body = crate::notify::record(app.store.as_ref(), &hook, now_ms).await?;
    tracing::info!(
        connection_id = %hook.connection_id,
        webhook_type = hook.webhook_type().as_str(),
        location_id = %hook.location_id,
        "webhook recorded"
    );
    Ok(http_util::json_response(StatusCode::ACCEPTED, &body))
}
