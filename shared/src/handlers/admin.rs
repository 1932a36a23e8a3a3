//! The one-time handshake that makes us a client of the Syncaroo API.
//! `connect` sends the admin to Syncaroo's authorize URL with a random,
//! single-use `state`; Syncaroo sends them back to `confirm` with a code,
//! which we exchange for the credentials the token provider then keeps
//! fresh. Both routes, and `status`, need the admin key (HTTP Basic, user
//! `admin`): browsers prompt for it once and resend it.

use crate::app::App;
use crate::auth::{self, Basic};
use crate::clock::guide_datetime;
use crate::crypto;
use crate::error::{Error, Fault};
use crate::http_util::{self, Params, Request, Response};
use crate::public_url;
use crate::store::CredentialsStore;
use crate::syncaroo::{CredentialStatus, OAuthError};
use http::StatusCode;

/// How long an admin has to approve at Syncaroo.
const STATE_TTL: i64 = 600;
const REALM: &str = "Basic realm=\"syncaroo-bridge admin\", charset=\"UTF-8\"";

fn refused() -> Response {
    let mut r = http_util::error_page(
        StatusCode::UNAUTHORIZED,
        "This page is for the platform's administrators: sign in as admin with the admin key.",
    );
    r.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static(REALM),
    );
    tracing::info!("admin route: anonymous or wrong key refused");
    r
}

/// Ok when the request carries `admin:<admin key>` as HTTP Basic.
pub(crate) async fn authenticated<B>(app: &App, req: &http::Request<B>) -> Result<bool, Error> {
    let secrets = app.secrets.get().await?;
    let Some(key) = secrets.admin_key.as_ref() else {
        return Err(Error::Unavailable(
            "adminKey is not set in Secrets Manager".into(),
        ));
    };
    Ok(match auth::basic_credentials(req) {
        Basic::Credentials { user, password } => {
            crypto::ct_eq(&user, "admin") & crypto::ct_eq(&password, key.expose())
        }
        Basic::Absent | Basic::Malformed => false,
    })
}

async fn guarded(
    app: &App,
    req: &Request,
    f: impl AsyncFnOnce(&App, &Request) -> Result<Response, Error>,
) -> Response {
    match authenticated(app, req).await {
        Ok(true) => f(app, req).await.unwrap_or_else(|e| e.to_html_response()),
        Ok(false) => refused(),
        Err(e) => e.to_html_response(),
    }
}

pub async fn connect(app: &App, req: Request) -> Response {
    guarded(app, &req, async |app, req| {
        let secrets = app.secrets.get().await?;
        let (client_id, _) = secrets.syncaroo_client().ok_or_else(|| {
            Error::Unavailable(
                "syncarooClientId / syncarooClientSecret are not set yet: put them in the SyncarooApiCredentials secret".into(),
            )
        })?;
        let state = crypto::random_b64(crypto::SECRET_BYTES);
        let hash = secrets.token_hash(&state);
        app.store.put_oauth_state(&hash, app.clock.now() + STATE_TTL).await?;
        let confirm = public_url::url(&app.config, req, public_url::ADMIN_CONFIRM_PATH)?;
        let url = app.provider().oauth().authorize_url(client_id, &confirm, &state);
        tracing::info!("admin connect: sent to Syncaroo's authorize page");
        Ok(http_util::redirect(&url))
    })
    .await
}

pub async fn confirm(app: &App, req: Request) -> Response {
    guarded(app, &req, async |app, req| {
        let p = Params::from_query(req)?;
        if let Some(err) = p.one_of(&["error"])? {
            let err: String = err.chars().filter(|c| c.is_ascii_graphic()).take(40).collect();
            return Err(Error::InvalidRequest(format!("Syncaroo did not authorize: {err}")));
        }
        let code = p.required(&["code"])?;
        let state = p.required(&["state"])?;
        let secrets = app.secrets.get().await?;
        let hash = secrets.token_hash(state);
        if !app.store.take_oauth_state(&hash, app.clock.now()).await? {
            return Err(Error::InvalidRequest(
                "this link was already used or has expired: start again from the connect page".into(),
            ));
        }
        let client = secrets.syncaroo_client().ok_or_else(|| {
            Error::Unavailable(
                "syncarooClientId / syncarooClientSecret are not set yet: put them in the SyncarooApiCredentials secret".into(),
            )
        })?;
        // The redirect URI the code was issued for: this very route, on the
        // host the admin started from and came back to.
        let confirm = public_url::url(&app.config, req, public_url::ADMIN_CONFIRM_PATH)?;
        let new = app
            .provider()
            .oauth()
            .exchange_code(client, &confirm, code, app.clock.now())
            .await
            .map_err(|e| match e {
                OAuthError::InvalidGrant => {
                    Error::InvalidRequest("Syncaroo refused the code: start again from the connect page".into())
                }
                other => Error::Upstream(Fault::transient(other.to_string()).with_source(other)),
            })?;
        let before = app.store.get_credentials().await?;
        let version = app.store.put_credentials(&new, app.clock.now()).await?;
        tracing::info!(version, "admin confirm: Syncaroo API credentials stored");
        if before.is_some_and(|c| c.status == CredentialStatus::NeedsReauth) {
            let entry = crate::changes::restored_entry(&app.config, version, app.clock.now());
            app.announce(entry).await;
        }
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Connected to Syncaroo</title></head>\
             <body><main><h1>Connected to Syncaroo</h1><p>The Syncaroo API credentials are stored (version {version}). \
             The access token is valid until {} UTC and is refreshed automatically.</p></main></body></html>",
            guide_datetime(new.expires_at)
        );
        Ok(http_util::html_response(StatusCode::OK, html))
    })
    .await
}

/// The credentials' state, without any token.
pub async fn status(app: &App, req: Request) -> Response {
    guarded(app, &req, async |app, _req| {
        let body = credentials_status(app.store.as_ref(), app.clock.now_ms()).await?;
        Ok(http_util::json_response(StatusCode::OK, &body))
    })
    .await
}

/// What the status page shows: needs only the credentials store.
async fn credentials_status(
    store: &dyn CredentialsStore,
    now_ms: i64,
) -> Result<serde_json::Value, Error> {
    Ok(match store.get_credentials().await? {
        None => serde_json::json!({ "connected": false }),
        Some(c) => serde_json::json!({
            "connected": c.status == CredentialStatus::Active,
            "status": c.status.as_str(),
            "reason": c.reason,
            "version": c.version,
            "expires": guide_datetime(c.expires_at),
            "refreshing": c.lease_until_ms.is_some_and(|u| u > now_ms),
        }),
    })
}
