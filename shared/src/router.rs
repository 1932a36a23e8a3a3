//! The one router: the rows of the route table ([`crate::routes::ROUTES`])
//! as an axum [`Router`]. A Lambda function serves its own rows through
//! `lambda_http::run` ([`crate::edge::serve_http`]); the local runner serves
//! every row (plus its stand-in login page) on loopback. Both therefore run
//! the same matching, path extraction, method routing (405 with `Allow`),
//! platform-caller middleware and error bodies.
//!
//! What wraps axum, and why:
//! - paths are normalised before routing ([`service`]): axum matches
//!   neither `/api//update/` (the guide's setup values concatenate to a
//!   doubled slash) nor a trailing slash, and every form must route alike;
//! - axum's own answers (no route, wrong method, a body too large, a path
//!   segment that is not UTF-8) are our JSON or HTML error body with the
//!   security headers, in the endpoint's protocol ([`Endpoint::error_response`]);
//! - query strings stay with [`crate::http_util::Params`], not axum's
//!   `Query`: RFC 6749 refuses repeated parameters, and `serde_urlencoded`
//!   decodes bytes that are not UTF-8 lossily instead of refusing them.

use crate::app::App;
use crate::auth::IamCaller;
use crate::config::PlatformAuth;
use crate::error::Error;
use crate::handlers;
use crate::http_util::{Request, Response};
use crate::routes::{Endpoint, Route, ROUTES};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::middleware::{from_fn_with_state, Next};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tower::ServiceExt;

/// The largest request body any route reads; a larger one is 413 before
/// it is read. Lambda's own limit for a synchronous invocation's payload
/// (6 MB), so nothing a deployed function receives is refused for size;
/// the local server holds the same line. The handlers' own limits are far
/// smaller (a webhook 64 KiB, a form 16 KiB); the largest body is a
/// platform listings push.
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// The router of the rows `function` serves when deployed (its
/// `template.yaml` resource name), or of every row (`None`: the local
/// runner).
pub fn router(app: App, function: Option<&str>) -> Router {
    let rows = ROUTES
        .iter()
        .filter(|r| function.is_none_or(|f| r.function == f));
    let (mut public, mut platform) = (Router::new(), Router::new());
    let mut has_platform = false;
    for r in rows {
        if r.endpoint.is_platform() {
            platform = platform.route(r.path, method_router(r));
            has_platform = true;
        } else {
            public = public.route(r.path, method_router(r));
        }
    }
    if has_platform {
        // After routing, before the handler: only the platform's rows.
        platform = platform.route_layer(from_fn_with_state(app.clone(), platform_caller));
    }
    public
        .merge(platform)
        .fallback(|uri: http::Uri| async move { into_axum(not_found(uri.path())) })
        .with_state(app)
}

/// What no route matches: JSON, with the security headers; under the
/// platform API's prefix in its own vocabulary.
pub fn not_found(path: &str) -> Response {
    if path.starts_with(PLATFORM_PREFIX) {
        return Error::NotFound.to_platform_response();
    }
    crate::http_util::json_response(
        http::StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not_found", "error_description": "no such endpoint"}),
    )
}

/// Where the platform API's routes live.
const PLATFORM_PREFIX: &str = "/api/platform/";

/// The router behind path normalisation, for request bodies of type `B`.
pub type Normalized<B> = tower::util::MapRequest<Router, fn(http::Request<B>) -> http::Request<B>>;

/// `router` behind path normalisation: what a server or the Lambda
/// runtime serves.
pub fn service<B>(router: Router) -> Normalized<B>
where
    Router: tower::Service<http::Request<B>>,
{
    router.map_request(normalized::<B>)
}

/// The request with its path in the one form routes are written in
/// ([`crate::public_url::normalize_path`]); the query is kept as sent.
fn normalized<B>(mut req: http::Request<B>) -> http::Request<B> {
    let path = req.uri().path();
    let normal = crate::public_url::normalize_path(path);
    if normal != path {
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = format!("{normal}{query}").parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// One request through `router` (normalised), with the answer's body read:
/// the local runner's and the tests' way in.
pub async fn call(router: &Router, req: Request) -> Response {
    let resp = service(router.clone())
        .oneshot(req.map(Body::from))
        .await
        .unwrap_or_else(|never| match never {});
    let (parts, body) = resp.into_parts();
    // Every body here is in memory already (ours are Bytes): reading it
    // cannot fail or exceed anything.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    http::Response::from_parts(parts, bytes)
}

fn into_axum(resp: Response) -> axum::response::Response {
    resp.map(Body::from)
}

/// A row's methods on its endpoint's handler; any other method is the
/// endpoint's 405, with `Allow` naming the row's methods. axum would route
/// HEAD to every GET handler (and list it in `Allow`); only check_connection
/// answers HEAD (without side effects, as the handler knows): elsewhere a
/// GET may write (the admin connect and confirm pages do), and API Gateway
/// routes HEAD to none of them, so HEAD is refused like any other method.
fn method_router(r: &'static Route) -> MethodRouter<App> {
    let endpoint = r.endpoint;
    let allow = allowed(r);
    let fallback_allow = allow.clone();
    let filter = r
        .methods
        .iter()
        .map(|m| {
            let method = http::Method::from_bytes(m.as_bytes()).expect("route table method");
            MethodFilter::try_from(method).expect("a method axum routes")
        })
        .reduce(MethodFilter::or)
        .expect("every route has a method");
    let routed = if r.path.contains('{') {
        on(
            filter,
            move |State(app): State<App>,
                  segment: Result<Path<String>, PathRejection>,
                  req: axum::extract::Request| {
                let allow = allow.clone();
                async move {
                    if refused_head(endpoint, &req) {
                        return into_axum(method_not_allowed(endpoint, allow));
                    }
                    let segment = match segment {
                        Ok(Path(s)) => s,
                        Err(_) => {
                            let e = Error::InvalidRequest(
                                "a path segment is not percent-encoded UTF-8".into(),
                            );
                            return into_axum(endpoint.error_response(e));
                        }
                    };
                    into_axum(serve(&app, endpoint, Some(segment), req).await)
                }
            },
        )
    } else {
        on(
            filter,
            move |State(app): State<App>, req: axum::extract::Request| {
                let allow = allow.clone();
                async move {
                    if refused_head(endpoint, &req) {
                        return into_axum(method_not_allowed(endpoint, allow));
                    }
                    into_axum(serve(&app, endpoint, None, req).await)
                }
            },
        )
    };
    routed.fallback(move || {
        let allow = fallback_allow.clone();
        async move { into_axum(method_not_allowed(endpoint, allow)) }
    })
}

/// The methods a row takes, as `Allow` lists them (RFC 9110 section
/// 10.2.1): the table's, and HEAD on check_connection.
fn allowed(r: &Route) -> http::HeaderValue {
    let mut methods = r.methods.join(", ");
    if r.endpoint == Endpoint::CheckConnection {
        methods.push_str(", HEAD");
    }
    http::HeaderValue::from_str(&methods).expect("method names are header text")
}

fn refused_head(endpoint: Endpoint, req: &axum::extract::Request) -> bool {
    req.method() == http::Method::HEAD && endpoint != Endpoint::CheckConnection
}

/// The endpoint's 405, with `Allow` set (axum then adds none of its own).
fn method_not_allowed(endpoint: Endpoint, allow: http::HeaderValue) -> Response {
    let mut resp = endpoint.error_response(Error::MethodNotAllowed);
    resp.headers_mut().insert(http::header::ALLOW, allow);
    resp
}

/// Reads the body (at most [`MAX_BODY`]) and hands the request to the
/// endpoint's handler; `segment` is the route's one path parameter,
/// already percent-decoded.
async fn serve(
    app: &App,
    endpoint: Endpoint,
    segment: Option<String>,
    req: axum::extract::Request,
) -> Response {
    let req = match buffered(req).await {
        Ok(r) => r,
        Err(e) => return endpoint.error_response(e),
    };
    test_panic(&req);
    let segment = segment.unwrap_or_default();
    match endpoint {
        Endpoint::Authorize => handlers::authorize(app, req).await,
        Endpoint::Token => handlers::token(app, req).await,
        Endpoint::CheckConnection => handlers::check_connection(app, req).await,
        Endpoint::Webhook => handlers::webhook(app, req).await,
        Endpoint::AdminConnect => handlers::admin::connect(app, req).await,
        Endpoint::AdminConfirm => handlers::admin::confirm(app, req).await,
        Endpoint::AdminStatus => handlers::admin::status(app, req).await,
        Endpoint::PlatformListings => handlers::platform::listings(app, &segment, req).await,
        Endpoint::PlatformConnections => handlers::platform::connections(app, req).await,
        Endpoint::PlatformConnection => handlers::platform::connection(app, &segment, req).await,
        Endpoint::PlatformUserData => handlers::platform::user_data(app, &segment, req).await,
        Endpoint::PlatformUserStatus => handlers::platform::user_status(app, &segment, req).await,
        Endpoint::PlatformUser => handlers::platform::erase_user(app, &segment, req).await,
    }
}

/// The request with its body in memory: 413 when it declares or turns out
/// longer than [`MAX_BODY`], 400 when it cannot be read.
pub async fn buffered(req: axum::extract::Request) -> Result<Request, Error> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Error::PayloadTooLarge(MAX_BODY));
    }
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => Ok(http::Request::from_parts(parts, bytes)),
        Err(e) if too_long(&e) => Err(Error::PayloadTooLarge(MAX_BODY)),
        Err(_) => Err(Error::InvalidRequest(
            "the request body could not be read (bad chunked encoding or cut off)".into(),
        )),
    }
}

/// Whether a body read failed on the length limit.
fn too_long(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The platform routes' one gate. API Gateway's verdict on an `AWS_IAM`
/// route (the signer, in the request context lambda_http puts in the
/// extensions) becomes the [`IamCaller`]; whether that or HTTP Basic is
/// taken is the profile's choice ([`handlers::platform::caller_allowed`]),
/// never the caller's absence. A refusal changes nothing.
async fn platform_caller(
    State(app): State<App>,
    req: axum::extract::Request,
    next: Next,
) -> axum::response::Response {
    // The check reads the head only (a body is not `Sync`, so it is not
    // held across the check's awaits).
    let (parts, body) = req.into_parts();
    let mut head = http::Request::from_parts(parts, ());
    if let Some(arn) = iam_caller(&head) {
        head.extensions_mut().insert(IamCaller(arn));
    }
    let allowed = handlers::platform::caller_allowed(&app, &head).await;
    let (parts, ()) = head.into_parts();
    let mut resp = match allowed {
        Ok(()) => {
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Err(e) => into_axum(e.to_platform_response()),
    };
    if app.config.platform_api_auth == PlatformAuth::Iam {
        // No Basic challenge where Basic is not taken.
        resp.headers_mut().remove(http::header::WWW_AUTHENTICATE);
    }
    resp
}

/// Who signed the request, as API Gateway verified it (HTTP API, payload
/// 2.0): the IAM user or role ARN, or else the caller id.
fn iam_caller<B>(req: &http::Request<B>) -> Option<String> {
    use lambda_http::request::RequestContext;
    match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|i| i.user_arn.clone().or_else(|| i.caller_id.clone())),
        _ => None,
    }
}

/// Test builds only (feature `test-panic`): a request carrying
/// `x-syncaroo-test-panic` panics here, inside the handler, so the emulator
/// test can show lambda_runtime reporting it as an invocation error and the
/// same process serving the next event. Compiled out of deployed builds.
#[inline]
pub fn test_panic(req: &Request) {
    #[cfg(feature = "test-panic")]
    if req.headers().contains_key("x-syncaroo-test-panic") {
        panic!("test panic requested by x-syncaroo-test-panic");
    }
    #[cfg(not(feature = "test-panic"))]
    let _ = req;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_path_is_normalised_and_keeps_its_query() {
        for p in ["/api/update", "/api/update/", "/api//update/"] {
            let r = normalized(http::Request::get(p).body(()).unwrap());
            assert_eq!(r.uri().path(), "/api/update", "{p}");
        }
        let r = normalized(
            http::Request::get("http://h:1/api//check_connection/?connectionId=1&a=%2F")
                .body(())
                .unwrap(),
        );
        assert_eq!(
            r.uri().to_string(),
            "http://h:1/api/check_connection?connectionId=1&a=%2F"
        );
    }
}
