//! The platform API (`/api/platform/...`): the platform's backend pushes
//! its users' listings, lists connections and revokes them, without
//! reading our data model.
//!
//! Who may call: deployed, API Gateway authorizes these routes with
//! `AWS_IAM` (the caller signs with SigV4 from its own role) and hands the
//! verified caller over in the request context ([`crate::auth::IamCaller`],
//! set only by the Lambda edge), and nothing else is taken; in the local
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
use crate::platform_ops as ops;
use crate::public_url::normalize_path;
use http::{Method, StatusCode};
use std::collections::BTreeMap;

pub const USERS_PREFIX: &str = "/api/platform/users/";
pub const CONNECTIONS_PATH: &str = "/api/platform/connections";

/// Who may call. Deployed (`PLATFORM_API_AUTH=iam`, the default) only a
/// caller API Gateway verified, and only one `PLATFORM_CALLER_ARNS` names
/// when set: the admin key opens nothing here, whatever reaches the
/// function (a direct invoke, a function URL, a catch-all route carries no
/// IAM context). Locally (`basic`) HTTP Basic admin.
async fn caller_allowed(app: &App, req: &Request) -> Result<(), Error> {
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

/// Checks the caller and the query (only `query` parameters: a misspelt
/// one is a 400, never ignored), then runs `f`.
async fn answer(
    app: &App,
    req: Request,
    query: &[&str],
    f: impl AsyncFnOnce(&App, Request) -> Result<Response, Error>,
) -> Response {
    let checked = async {
        caller_allowed(app, &req).await?;
        Params::from_query(&req)?.only(query)
    };
    let res = match checked.await {
        Ok(()) => f(app, req).await,
        Err(e) => Err(e),
    };
    let mut resp = res.unwrap_or_else(|e| e.to_oauth_response());
    if app.config.platform_api_auth == PlatformAuth::Iam {
        // No Basic challenge where Basic is not taken.
        resp.headers_mut().remove(http::header::WWW_AUTHENTICATE);
    }
    resp
}

/// `PUT` / `DELETE /api/platform/users/{userId}/listings`.
pub async fn listings(app: &App, req: Request) -> Response {
    answer(app, req, &[], async |app, req| {
        let path = normalize_path(req.uri().path());
        let user = path
            .strip_prefix(USERS_PREFIX)
            .and_then(|rest| rest.strip_suffix("/listings"))
            .filter(|u| !u.contains('/'))
            .ok_or(Error::NotFound)?;
        let user = UserId::parse(&percent(user)?)?;
        match *req.method() {
            Method::PUT => {
                let locations = ops::parse_push(req.body())?;
                let body = ops::replace_listings(app.store.as_ref(), &user, &locations).await?;
                Ok(json_response(StatusCode::OK, &body))
            }
            Method::DELETE => {
                let body =
                    ops::replace_listings(app.store.as_ref(), &user, &BTreeMap::new()).await?;
                Ok(json_response(StatusCode::OK, &body))
            }
            _ => Err(Error::MethodNotAllowed),
        }
    })
    .await
}

/// `GET /api/platform/connections[?userId=U][&after=ID][&limit=N]`.
pub async fn connections(app: &App, req: Request) -> Response {
    answer(app, req, &["userId", "after", "limit"], async |app, req| {
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
        let body =
            ops::list_connections(app.store.as_ref(), user.as_ref(), after.as_ref(), limit).await?;
        Ok(json_response(StatusCode::OK, &body))
    })
    .await
}

/// `DELETE /api/platform/connections/{connectionId}`: revokes it.
pub async fn connection(app: &App, req: Request) -> Response {
    answer(app, req, &[], async |app, req| {
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
        let body = ops::revoke_connection(app, &id)
            .await?
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

fn percent(segment: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::InvalidRequest("a path segment is not UTF-8".into()))
}
