//! The platform API (`/api/platform/...`): the platform's backend pushes
//! its users' listings, lists connections and revokes them, without
//! reading our data model.
//!
//! Who may call: deployed, API Gateway authorizes these routes with
//! `AWS_IAM` (the caller signs with SigV4 from its own role) and hands the
//! verified caller over in the request context ([`crate::auth::IamCaller`],
//! set only by the Lambda edge); elsewhere (the local runner) HTTP Basic
//! `admin:<admin key>`. Anything else is 401 and changes nothing.

use crate::app::App;
use crate::auth::IamCaller;
use crate::error::Error;
use crate::http_response::{json_response, set_header};
use crate::http_util::{Params, Request, Response};
use crate::model::{ConnectionId, Location, UserId};
use crate::public_url::normalize_path;
use crate::store::ConnectionInfo;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const USERS_PREFIX: &str = "/api/platform/users/";
pub const CONNECTIONS_PATH: &str = "/api/platform/connections";

async fn caller_allowed(app: &App, req: &Request) -> Result<(), Error> {
    if req.extensions().get::<IamCaller>().is_some() {
        return Ok(());
    }
    match super::admin::authenticated(app, req).await? {
        true => Ok(()),
        false => Err(Error::InvalidClient(
            "sign the request with SigV4 (deployed) or send HTTP Basic admin:<admin key>".into(),
        )),
    }
}

async fn answer(
    app: &App,
    req: Request,
    f: impl AsyncFnOnce(&App, Request) -> Result<Response, Error>,
) -> Response {
    let res = match caller_allowed(app, &req).await {
        Ok(()) => f(app, req).await,
        Err(e) => Err(e),
    };
    res.unwrap_or_else(|e| e.to_oauth_response())
}

/// `PUT` / `DELETE /api/platform/users/{userId}/listings`.
pub async fn listings(app: &App, req: Request) -> Response {
    answer(app, req, async |app, req| {
        let path = normalize_path(req.uri().path());
        let user = path
            .strip_prefix(USERS_PREFIX)
            .and_then(|rest| rest.strip_suffix("/listings"))
            .filter(|u| !u.contains('/'))
            .ok_or(Error::NotFound)?;
        let user = UserId::parse(&percent(user)?)?;
        match *req.method() {
            Method::PUT => {
                let locations = parse_push(req.body())?;
                app.store.replace_listings(&user, &locations).await?;
                tracing::info!(user_id = %user, locations = locations.len(), "listings replaced");
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"userId": user.as_str(), "locations": locations.len()}),
                ))
            }
            Method::DELETE => {
                app.store.replace_listings(&user, &BTreeMap::new()).await?;
                tracing::info!(user_id = %user, "listings deleted");
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"userId": user.as_str(), "locations": 0}),
                ))
            }
            _ => Err(Error::MethodNotAllowed),
        }
    })
    .await
}

/// `GET /api/platform/connections[?userId=U][&after=ID][&limit=N]`.
pub async fn connections(app: &App, req: Request) -> Response {
    answer(app, req, async |app, req| {
        if req.method() != Method::GET {
            return Err(Error::MethodNotAllowed);
        }
        let q = Params::from_query(&req)?;
        let user = q.one_of(&["userId"])?.map(UserId::parse).transpose()?;
        let after = q.one_of(&["after"])?.map(ConnectionId::parse).transpose()?;
        let limit = match q.one_of(&["limit"])? {
            None => 50,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| Error::InvalidRequest("limit must be 1 to 100".into()))?,
        };
        let (page, next) = app
            .store
            .list_connections(user.as_ref(), after.as_ref(), limit)
            .await?;
        let items: Vec<Value> = page.iter().map(view).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"connections": items, "next": next.as_ref().map(|n| n.as_str())}),
        ))
    })
    .await
}

/// `DELETE /api/platform/connections/{connectionId}`: revokes it.
pub async fn connection(app: &App, req: Request) -> Response {
    answer(app, req, async |app, req| {
        if req.method() != Method::DELETE {
            return Err(Error::MethodNotAllowed);
        }
        let path = normalize_path(req.uri().path());
        let id = path
            .strip_prefix(CONNECTIONS_PATH)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|r| !r.is_empty() && !r.contains('/'))
            .ok_or(Error::NotFound)?;
        let id = ConnectionId::parse(&percent(id)?)?;
        let now = app.clock.now();
        let conn = app
            .store
            .revoke_connection(&id, now)
            .await?
            .ok_or(Error::NotFound)?;
        tracing::info!(connection_id = %id, "connection revoked by the platform");
        let info = ConnectionInfo {
            connection: conn,
            last_webhook_at_ms: None,
        };
        let mut resp = json_response(StatusCode::OK, &view(&info));
        set_header(&mut resp, "cache-control", "no-store");
        Ok(resp)
    })
    .await
}

fn percent(segment: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::InvalidRequest("a path segment is not UTF-8".into()))
}

/// The push body: `{"locations": {...}}` in check_connection's shape, each
/// location valid and keyed by its own ID; anything else is refused whole.
fn parse_push(body: &[u8]) -> Result<BTreeMap<String, Location>, Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Push {
        locations: BTreeMap<String, Location>,
    }
    let push: Push = serde_json::from_slice(body).map_err(|e| {
        Error::InvalidRequest(format!(
            "body must be {{\"locations\": {{...}}}} in check_connection's shape: {e}"
        ))
    })?;
    crate::model::validate_locations(&push.locations)?;
    Ok(push.locations)
}

/// A connection as the API shows it. `pending` covers a connection whose
/// code is issued or redeemed but which Syncaroo has not checked yet.
fn view(i: &ConnectionInfo) -> Value {
    use crate::model::ConnectionStatus as S;
    let c = &i.connection;
    let status = match c.status {
        S::Pending | S::Authorized => "pending",
        S::Confirmed => "confirmed",
        S::Revoked => "revoked",
    };
    json!({
        "connectionId": c.id.as_str(),
        "userId": c.user_id.as_str(),
        "status": status,
        "createdAt": c.created_at,
        "confirmedAt": c.confirmed_at,
        "revokedAt": c.revoked_at,
        "lastWebhookAt": i.last_webhook_at_ms.map(|ms| ms / 1000),
    })
}
