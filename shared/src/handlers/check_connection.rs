//! `apiUri/checkConnectionPath`: Syncaroo confirms the connection with the
//! access token we issued and reads the user's listings.

use crate::app::App;
use crate::auth;
use crate::error::Error;
use crate::http_util::{self, Params, Request, Response};
use crate::model::{CheckConnectionResponse, ConnectionId};
use http::{Method, StatusCode};

pub async fn check_connection(app: &App, req: Request) -> Response {
    match handle(app, &req).await {
        Ok(r) => r,
        Err(e) => e.to_bearer_response(),
    }
}

async fn handle(app: &App, req: &Request) -> Result<Response, Error> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(Error::MethodNotAllowed);
    }
    let params = Params::from_query(req)?;
    // The token is checked first so an anonymous caller learns nothing.
    auth::bearer_token(req)?;
    let connection = ConnectionId::parse(params.required(&["connectionId", "connection_id"])?)?;
    let secrets = app.secrets.get().await?;
    let now = app.clock.now();
    let token = auth::bearer_for(app.store.as_ref(), &secrets, req, &connection, now).await?;
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
