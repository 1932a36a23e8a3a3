//! `apiUri/checkConnectionPath`: Syncaroo confirms the connection with the
//! access token we issued and reads the user's listings.

use crate::app::App;
use crate::crypto;
use crate::error::Error;
use crate::http_util::{self, Params, Request, Response};
use crate::model::{CheckConnectionResponse, ConnectionId, TokenKind, TokenRecord};
use http::{Method, StatusCode};

pub async fn check_connection(app: &App, req: Request) -> Response {
    match handle(app, &req).await {
        Ok(r) => r,
        Err(e) => e.to_bearer_response(),
    }
}

/// The live access token for `connection`, or why not. Shared with every
/// endpoint Syncaroo calls with our bearer token.
pub async fn authenticate(
    app: &App,
    req: &Request,
    connection: &ConnectionId,
) -> Result<TokenRecord, Error> {
    let raw = http_util::bearer_token(req)?;
    let secrets = app.secrets.get().await?;
    let hash = crypto::keyed_hash(secrets.token_hash_key.expose().as_bytes(), raw);
    let t = live_access_token(app, &hash).await?;
    if &t.connection_id != connection {
        return Err(Error::InvalidToken(
            "access token was not issued for this connectionId".into(),
        ));
    }
    Ok(t)
}

/// The access token stored under `hash`, if it is one and is live.
pub async fn live_access_token(app: &App, hash: &str) -> Result<TokenRecord, Error> {
    let invalid = || Error::InvalidToken("access token is not valid".into());
    let t = app.store.get_token(hash).await?.ok_or_else(invalid)?;
    if t.kind != TokenKind::Access {
        return Err(invalid());
    }
    if t.revoked {
        return Err(Error::InvalidToken("access token has been revoked".into()));
    }
    if t.expires_at <= app.clock.now() {
        return Err(Error::InvalidToken("access token has expired".into()));
    }
    Ok(t)
}

async fn handle(app: &App, req: &Request) -> Result<Response, Error> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    let params = Params::from_query(req)?;
    // The token is checked first so an anonymous caller learns nothing.
    http_util::bearer_token(req)?;
    let connection = ConnectionId::parse(params.required(&["connectionId", "connection_id"])?)?;
    let token = authenticate(app, req, &connection).await?;
    let now = app.clock.now();
    let (confirmed, locations) = tokio::join!(
        app.store
            .confirm_connection(&connection, &token.user_id, now),
        app.store.list_locations(&token.user_id)
    );
    confirmed?;
    let body = CheckConnectionResponse {
        connection_id: connection.clone(),
        user_id: token.user_id.clone(),
        locations: locations?.into_iter().map(|l| (l.id.clone(), l)).collect(),
    };
    tracing::info!(connection_id = %connection, locations = body.locations.len(), "check_connection: confirmed");
    Ok(http_util::json_response(StatusCode::OK, &body))
}
