//! The platform API (`/api/platform/...`): the platform's backend pushes
//! its users' listings, lists connections and revokes them, without
//! reading our data model.
//!
//! Who may call ([`caller_allowed`], run by the router's middleware on
//! these routes before any handler): deployed, API Gateway authorizes them
//! with `AWS_IAM` (the caller signs with SigV4 from its own role) and hands
//! the verified caller over in the request context
//! ([`crate::auth::IamCaller`]), and nothing else is taken; in the local
//! runner's profile (`PLATFORM_API_AUTH=basic`) HTTP Basic
//! `admin:<admin key>`. Anything else is 401 (403 for an IAM caller outside
//! `PLATFORM_CALLER_ARNS`) and changes nothing.

use crate::app::App;
use crate::auth::IamCaller;
use crate::config::PlatformAuth;
use crate::error::Error;
use crate::http_response::json_response;
use crate::http_util::{Params, Request, Response};
use crate::model::{ConnectionId, UserId};
use crate::platform_data as data;
use crate::platform_ops as ops;
use crate::store::datalog::{DataFilter, DataRead, LogCursor, FILTER_PARAMS};
use http::{Method, StatusCode};
use std::collections::BTreeMap;

/// Who may call. Deployed (`PLATFORM_API_AUTH=iam`, the default) only a
/// caller API Gateway verified, and only one `PLATFORM_CALLER_ARNS` names
/// when set: the admin key opens nothing here, whatever reaches the
/// function (a direct invoke, a function URL, a catch-all route carries no
/// IAM context). Locally (`basic`) HTTP Basic admin.
pub async fn caller_allowed<B>(app: &App, req: &http::Request<B>) -> Result<(), Error> {
    match app.config.platform_api_auth {
        PlatformAuth::Iam => {
            let Some(IamCaller(arn)) = req.extensions().get::<IamCaller>() else {
                return Err(Error::InvalidClient(
                    "the platform API takes only a caller AWS verified: sign the request with SigV4"
                        .into(),
                ));
            };
            if caller_listed(&app.config.platform_caller_arns, arn) {
                Ok(())
            } else {
                tracing::warn!(caller = %arn, "platform API: caller not in PLATFORM_CALLER_ARNS");
                Err(Error::Forbidden(
                    "this caller is not one of PLATFORM_CALLER_ARNS".into(),
                ))
            }
        }
        PlatformAuth::Basic => match super::admin::authenticated(app, req).await? {
            true => Ok(()),
            false => Err(Error::InvalidClient(
                "send HTTP Basic admin:<admin key>".into(),
            )),
        },
    }
}

/// Whether `arn` is one of `allowed` (none listed: any verified caller);
/// an entry ending in `*` matches any rest.
fn caller_listed(allowed: &[String], arn: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => arn.starts_with(prefix),
            None => a == arn,
        })
}

/// Checks the query (only `query` parameters: a misspelt one is a 400,
/// never ignored), then runs `f`; a failure is the platform API's JSON.
async fn answer(
    app: &App,
    req: Request,
    query: &[&str],
    f: impl AsyncFnOnce(&App, Request) -> Result<Response, Error>,
) -> Response {
    let res = match Params::from_query(&req).and_then(|q| q.only(query)) {
        Ok(()) => f(app, req).await,
        Err(e) => Err(e),
    };
    res.unwrap_or_else(|e| e.to_platform_response())
}

/// `PUT` / `DELETE /api/platform/users/{userId}/listings`; `user` is the
/// path's segment, decoded.
pub async fn listings(app: &App, user: &str, req: Request) -> Response {
    answer(app, req, &[], async |app, req| {
        let user = UserId::parse(user)?;
        let locations = match *req.method() {
            Method::PUT => ops::parse_push(req.body())?,
            // DELETE: the router routes no other method here.
            _ => BTreeMap::new(),
        };
        let body = ops::replace_listings(app.store.as_ref(), &user, &locations).await?;
        Ok(json_response(StatusCode::OK, &body))
    })
    .await
}

/// `GET /api/platform/connections[?userId=U][&after=ID][&limit=N]`.
pub async fn connections(app: &App, req: Request) -> Response {
    answer(app, req, &["userId", "after", "limit"], async |app, req| {
        let q = Params::from_query(&req)?;
        let user = q.one_of(&["userId"])?.map(UserId::parse).transpose()?;
        let after = q.one_of(&["after"])?.map(ConnectionId::parse).transpose()?;
        let limit = limit(&q, 50, 100)?;
        let body =
            ops::list_connections(app.store.as_ref(), user.as_ref(), after.as_ref(), limit).await?;
        Ok(json_response(StatusCode::OK, &body))
    })
    .await
}

/// `GET /api/platform/connections/{connectionId}`: the connection with its
/// sync health; `DELETE`: revokes it. `id` is the path's segment, decoded.
pub async fn connection(app: &App, id: &str, req: Request) -> Response {
    answer(app, req, &[], async |app, req| {
        let id = ConnectionId::parse(id)?;
        let body = match *req.method() {
            Method::GET => data::connection_health(app.store.as_ref(), &id).await?,
            // DELETE: the router routes no other method here.
            _ => ops::revoke_connection(app, &id).await?,
        }
        .ok_or(Error::NotFound)?;
        let mut resp = json_response(StatusCode::OK, &body);
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        Ok(resp)
    })
    .await
}

/// `GET /api/platform/users/{userId}/data?cursor=C&limit=N[&filters]`: a
/// page of the user's synced data in the order it was stored, after the
/// cursor ([`crate::store::datalog`]).
pub async fn user_data(app: &App, user: &str, req: Request) -> Response {
    let mut query = vec!["cursor", "limit"];
    query.extend(FILTER_PARAMS);
    answer(app, req, &query, async |app, req| {
        let user = UserId::parse(user)?;
        let q = Params::from_query(&req)?;
        let read = DataRead {
            after: q
                .one_of(&["cursor"])?
                .map(LogCursor::decode)
                .transpose()?
                .unwrap_or_default(),
            limit: limit(&q, data::DEFAULT_LIMIT, data::MAX_LIMIT)?,
            filter: DataFilter::from_query(&q)?,
        };
        let body = data::data_page(app.store.as_ref(), &user, &read).await?;
        Ok(crate::http_response::json_bytes(StatusCode::OK, body))
    })
    .await
}

/// `GET /api/platform/users/{userId}/status`: each listed location's
/// latest status webhook.
pub async fn user_status(app: &App, user: &str, req: Request) -> Response {
    answer(app, req, &[], async |app, _req| {
        let user = UserId::parse(user)?;
        let body = data::user_statuses(app.store.as_ref(), &user).await?;
        Ok(json_response(StatusCode::OK, &body))
    })
    .await
}

/// `DELETE /api/platform/users/{userId}`: erases the user, a bounded batch
/// a call ([`crate::erasure`]): 200 with `"done": true` once a call found
/// nothing of theirs left, 202 while work remains (call again).
pub async fn erase_user(app: &App, user: &str, req: Request) -> Response {
    answer(app, req, &[], async |app, _req| {
        let user = UserId::parse(user)?;
        let report =
            crate::erasure::erase_user(app, &user, crate::store::erase::ERASE_BUDGET).await?;
        let status = if report.done {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        let mut resp = json_response(status, &report.to_json(&user));
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        Ok(resp)
    })
    .await
}

/// The `limit` parameter: `default` when absent, else 1 to `max`.
fn limit(q: &Params, default: usize, max: usize) -> Result<usize, Error> {
    match q.one_of(&["limit"])? {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Error::InvalidRequest(format!("limit must be 1 to {max}"))),
    }
}
