//! `authTokenUri`: Syncaroo exchanges the code for tokens and later rotates
//! them. Accepts the guide's camelCase and RFC 6749's snake_case, answers in
//! the dialect it was asked in, and errs as RFC 6749 section 5.2 says.

use crate::app::App;
use crate::auth::{self, Basic};
use crate::clock::{guide_datetime, rfc3339};
use crate::config::ExpiresFormat;
use crate::crypto;
use crate::error::Error;
use crate::http_util::{self, Params, Request, Response};
use crate::model::{
    ConnectionId, GrantPayload, TokenKind, TokenRecord, CODE_PREFIX, REFRESH_PREFIX,
};
use crate::secrets::BridgeSecrets;
use crate::store::{CodeRedemption, RedeemError, RefreshRotation, RotateError};
use http::StatusCode;
use serde::Serialize;

/// Which spelling the request used, and so which shape the answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `grantType`: answer `{accessToken, expires, refreshToken}`.
    Guide,
    /// `grant_type`: answer `{access_token, token_type, expires_in, refresh_token}`.
    Rfc,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GuideTokens<'a> {
    access_token: &'a str,
    expires: String,
    refresh_token: &'a str,
}

#[derive(Serialize)]
struct RfcTokens<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: &'a str,
}

/// Freshly minted tokens: the raw values (answered once, never stored) and
/// their records (stored, hash only).
struct Minted {
    access: String,
    refresh: String,
    access_rec: TokenRecord,
    refresh_rec: TokenRecord,
}

pub async fn token(app: &App, req: Request) -> Response {
    match handle(app, &req).await {
        Ok(r) => r,
        Err(e) => e.to_oauth_response(),
    }
}

/// Client credentials from HTTP Basic or the form, never both.
fn client_credentials(req: &Request, p: &Params) -> Result<(String, String), Error> {
    let form_id = p.one_of(&["clientId", "client_id"])?;
    let form_secret = p.one_of(&["clientSecret", "client_secret"])?;
    let unauth = || Error::InvalidClient("client authentication failed".into());
    let basic = match auth::basic_credentials(req) {
        Basic::Absent => None,
        Basic::Malformed => return Err(unauth()),
        Basic::Credentials { user, password } => Some((user, password)),
    };
    match (basic, form_secret) {
        (Some(_), Some(_)) => Err(Error::InvalidRequest(
            "use one client authentication method, not both Basic and form".into(),
        )),
        (Some((id, secret)), None) => {
            // RFC 6749 section 2.3.1: both parts are form-urlencoded.
            let (id, secret) = (
                http_util::form_decode(&id).map_err(|_| unauth())?,
                http_util::form_decode(&secret).map_err(|_| unauth())?,
            );
            if form_id.is_some_and(|f| f != id) {
                return Err(Error::InvalidRequest(
                    "clientId differs from the Basic credentials".into(),
                ));
            }
            Ok((id, secret))
        }
        (None, Some(secret)) => {
            let id = form_id
                .ok_or_else(|| Error::InvalidRequest("missing parameter clientId".into()))?;
            Ok((id.to_string(), secret.to_string()))
        }
        (None, None) => Err(unauth()),
    }
}

async fn handle(app: &App, req: &Request) -> Result<Response, Error> {
    let params = http_util::form_body(req)?;
    let (grant_name, grant) = params
        .one_of_named(&["grantType", "grant_type"])?
        .ok_or_else(|| Error::InvalidRequest("missing parameter grantType".into()))?;
    let dialect = if grant_name == "grantType" {
        Dialect::Guide
    } else {
        Dialect::Rfc
    };
    let (client_id, client_secret) = client_credentials(req, &params)?;
    // Evaluate both checks so timing does not tell which one failed. The
    // secret is the current one, or the one a rotation replaced within its
    // grace (secrets::rotation).
    let id_ok = crypto::ct_eq(&client_id, &app.config.client_id);
    let used = app
        .secrets
        .client_secret_used(app.config.client_secret_grace, |s| {
            crypto::ct_eq(&client_secret, s)
        })
        .await?;
    let Some(used) = used.filter(|_| id_ok) else {
        return Err(Error::InvalidClient("client authentication failed".into()));
    };
    // The operator sees when Syncaroo has switched to a new secret.
    tracing::info!(client_secret = used.as_str(), "client authenticated");
    let secrets = app.secrets.get().await?;
    let minted = match grant {
        "authorization_code" => exchange_code(app, &secrets, &params, &client_id).await?,
        "refresh_token" => rotate(app, &secrets, &params, &client_id).await?,
        "" => return Err(Error::InvalidRequest("missing parameter grantType".into())),
        _ => {
            return Err(Error::UnsupportedGrantType(
                "grantType must be authorization_code or refresh_token".into(),
            ))
        }
    };
    Ok(respond(app, dialect, &minted))
}

/// A new token pair: random, or (`successor_of` a refresh token) derived
/// from it, so every copy of one refresh request gets the same pair.
fn mint(
    app: &App,
    secrets: &BridgeSecrets,
    payload: &GrantPayload,
    client_id: &str,
    successor_of: Option<&str>,
) -> Minted {
    let now = app.clock.now();
    let key = secrets.token_hash_key.expose().as_bytes();
    let (access, refresh) = match successor_of {
        None => (
            crypto::mint(TokenKind::Access.prefix(), None::<&()>),
            crypto::mint(TokenKind::Refresh.prefix(), Some(payload)),
        ),
        Some(old) => (
            crypto::mint_derived(TokenKind::Access.prefix(), None::<&()>, key, old),
            crypto::mint_derived(TokenKind::Refresh.prefix(), Some(payload), key, old),
        ),
    };
    let record = |raw: &str, kind: TokenKind, ttl: std::time::Duration| TokenRecord {
        hash: secrets.token_hash(raw),
        kind,
        connection_id: payload.c.clone(),
        user_id: payload.u.clone(),
        client_id: client_id.to_string(),
        family: payload.f.clone(),
        expires_at: now + crate::clock::secs(ttl),
        revoked: false,
        used_at: None,
    };
    Minted {
        access_rec: record(&access, TokenKind::Access, app.config.access_token_ttl),
        refresh_rec: record(&refresh, TokenKind::Refresh, app.config.refresh_token_ttl),
        access,
        refresh,
    }
}

async fn exchange_code(
    app: &App,
    secrets: &BridgeSecrets,
    p: &Params,
    client_id: &str,
) -> Result<Minted, Error> {
    let code = p.required(&["code"])?;
    let invalid = || Error::InvalidGrant("code is invalid".into());
    let payload: GrantPayload = crypto::peek_payload(CODE_PREFIX, code).ok_or_else(invalid)?;
    if let Some(c) = p.one_of(&["connectionId", "connection_id"])? {
        if ConnectionId::parse(c).map_err(|_| invalid())? != payload.c {
            return Err(Error::InvalidGrant(
                "code was not issued for this connectionId".into(),
            ));
        }
    }
    let redirect_uri = p
        .one_of(&["redirectUri", "redirect_uri"])?
        .map(str::to_string);
    let minted = mint(app, secrets, &payload, client_id, None);
    let redemption = CodeRedemption {
        code_hash: secrets.token_hash(code),
        client_id: client_id.to_string(),
        redirect_uri,
        connection_id: payload.c.clone(),
        user_id: payload.u.clone(),
        family: payload.f.clone(),
        now: app.clock.now(),
        access: minted.access_rec.clone(),
        refresh: minted.refresh_rec.clone(),
    };
    match app.store.redeem_code(&redemption).await {
        Ok(()) => {
            tracing::info!(connection_id = %payload.c, "token: code redeemed");
            Ok(minted)
        }
        Err(RedeemError::NotFound) => Err(invalid()),
        Err(RedeemError::Expired) => Err(Error::InvalidGrant("code has expired".into())),
        Err(RedeemError::Mismatch) => Err(Error::InvalidGrant(
            "code was issued to another client, redirect URI or connection".into(),
        )),
        Err(RedeemError::Replayed { family, tokens }) => {
            tracing::warn!(connection_id = %payload.c, "token: code replayed; revoking its tokens");
            app.store
                .revoke_family(&family, &tokens, app.clock.now())
                .await?;
            Err(Error::InvalidGrant(
                "code was already used; every token issued from it is now revoked".into(),
            ))
        }
        Err(RedeemError::Store(e)) => Err(e),
    }
}

async fn rotate(
    app: &App,
    secrets: &BridgeSecrets,
    p: &Params,
    client_id: &str,
) -> Result<Minted, Error> {
    let raw = p.required(&["refreshToken", "refresh_token"])?;
    let invalid = || Error::InvalidGrant("refresh token is invalid".into());
    let payload: GrantPayload = crypto::peek_payload(REFRESH_PREFIX, raw).ok_or_else(invalid)?;
    let now = app.clock.now();
    // Derived from the old token: a copy of this request inside the grace
    // window (a network retry, or ten at once) gets this very pair.
    let minted = mint(app, secrets, &payload, client_id, Some(raw));
    let rotation = RefreshRotation {
        old_hash: secrets.token_hash(raw),
        client_id: client_id.to_string(),
        family: payload.f.clone(),
        now,
        grace_floor: now - crate::clock::secs(app.config.refresh_reuse_grace),
        access: minted.access_rec.clone(),
        refresh: minted.refresh_rec.clone(),
    };
    match app.store.rotate_refresh(&rotation).await {
        Ok(()) => {
            tracing::info!(connection_id = %payload.c, "token: refresh token rotated");
            Ok(minted)
        }
        Err(RotateError::NotFound | RotateError::Mismatch) => Err(invalid()),
        Err(RotateError::Expired) => Err(Error::InvalidGrant("refresh token has expired".into())),
        Err(RotateError::Revoked) => {
            Err(Error::InvalidGrant("refresh token has been revoked".into()))
        }
        Err(RotateError::Reused { family }) => {
            tracing::warn!(connection_id = %payload.c, "token: refresh token reused; revoking its family");
            app.store.revoke_family(&family, &[], now).await?;
            Err(Error::InvalidGrant(
                "refresh token was already used; every token of this grant is now revoked".into(),
            ))
        }
        Err(RotateError::Store(e)) => Err(e),
    }
}

fn respond(app: &App, dialect: Dialect, m: &Minted) -> Response {
    match dialect {
        Dialect::Guide => http_util::json_response(
            StatusCode::OK,
            &GuideTokens {
                access_token: &m.access,
                expires: match app.config.token_expires_format {
                    ExpiresFormat::Rfc3339 => rfc3339(m.access_rec.expires_at),
                    ExpiresFormat::Guide => guide_datetime(m.access_rec.expires_at),
                },
                refresh_token: &m.refresh,
            },
        ),
        Dialect::Rfc => http_util::json_response(
            StatusCode::OK,
            &RfcTokens {
                access_token: &m.access,
                token_type: "Bearer",
                expires_in: crate::clock::secs(app.config.access_token_ttl),
                refresh_token: &m.refresh,
            },
        ),
    }
}
