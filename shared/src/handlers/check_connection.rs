//! `apiUri/checkConnectionPath`: Syncaroo confirms the connection with the
//! access token we issued and reads the user's listings.

use crate::app::App;
use crate::auth;
use crate::changes;
use crate::error::Error;
use crate::http_util::{self, Params, Request, Response};
use crate::model::{CheckConnectionResponse, ConnectionId, TokenRecord};
use crate::store::{GrantStore, ListingStore};
use http::{Method, StatusCode};

pub async fn check_connection(app: &App, req: Request) -> Response {
    match handle(app, &req).await {
        Ok(r) => r,
        Err(e) => e.to_bearer_response(),
    }
}

async fn handle(app: &App, req: &Request) -> Result<Response, Error> {
    let params = Params::from_query(req)?;
    // The token is checked first so an anonymous caller learns nothing.
    auth::bearer_token(req)?;
    let connection = ConnectionId::parse(params.required(&["connectionId", "connection_id"])?)?;
    let secrets = app.secrets.get().await?;
    let now = app.clock.now();
    let token = auth::bearer_for(app.store.as_ref(), &secrets, req, &connection, now).await?;
    // HEAD is safe by definition (RFC 9110 section 9.2.1): it answers
    // whether the token is good for this connection and changes nothing;
    // only GET confirms the connection.
    if req.method() == Method::HEAD {
        let mut r = http_util::json_response(StatusCode::OK, &serde_json::json!({}));
        *r.body_mut() = bytes::Bytes::new();
        return Ok(r);
    }
    let (first, body) =
        confirm_and_list(app.store.as_ref(), app.store.as_ref(), &token, now).await?;
    if first {
        // Announced once, after the confirmation is stored.
        let entry =
            changes::confirmed_entry(&app.config, &token.connection_id, &token.user_id, now);
        app.announce(entry).await;
    }
    tracing::info!(connection_id = %connection, locations = body.locations.len(), "check_connection: confirmed");
    Ok(http_util::json_response(StatusCode::OK, &body))
}

/// Marks the connection confirmed (`true`: for the first time) and reads
/// the user's listings, at once (one round trip after the token's).
async fn confirm_and_list(
    grants: &dyn GrantStore,
    listings: &dyn ListingStore,
    token: &TokenRecord,
    now: i64,
) -> Result<(bool, CheckConnectionResponse), Error> {
    let (confirmed, locations) = tokio::join!(
        grants.confirm_connection(&token.connection_id, &token.user_id, &token.family, now),
        listings.list_locations(&token.user_id)
    );
    let first = confirmed?;
    Ok((
        first,
        CheckConnectionResponse {
            connection_id: token.connection_id.clone(),
            user_id: token.user_id.clone(),
            locations: locations?.into_iter().map(|l| (l.id.clone(), l)).collect(),
        },
    ))
}
