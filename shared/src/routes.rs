//! The one route table: every HTTP route the bundle serves, with the
//! function that serves it when deployed. The local runner dispatches on
//! it, the simulator takes its paths from it, the admin function serves its
//! share of it, and a test checks it against template.yaml's HttpApi
//! events, so a route cannot be added in one place only.

use crate::app::App;
use crate::error::Error;
use crate::handlers;
use crate::http_util::{Request, Response};
use crate::public_url::{
    normalize_path, ADMIN_CONFIRM_PATH, ADMIN_CONNECT_PATH, ADMIN_STATUS_PATH, AUTHORIZE_PATH,
    TOKEN_PATH,
};

/// `apiUri` + the guide's `checkConnectionPath`, as routed (slash-less).
pub const CHECK_CONNECTION_ROUTE: &str = "/api/check_connection";
/// `apiUri` + `webhookPath`.
pub const WEBHOOK_ROUTE: &str = "/api/update";
/// `siteUri` + `webhookPath`: the guide allows either base for webhooks.
pub const SITE_WEBHOOK_ROUTE: &str = "/update";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Authorize,
    Token,
    CheckConnection,
    Webhook,
    AdminConnect,
    AdminConfirm,
    AdminStatus,
    PlatformListings,
    PlatformConnections,
    PlatformConnection,
}

#[derive(Debug)]
pub struct Route {
    /// The methods the deployed HTTP API routes (each is a route key).
    pub methods: &'static [&'static str],
    /// Slash-less, as HTTP API route keys are; every form of it is served
    /// ([`normalize_path`]).
    pub path: &'static str,
    /// The template.yaml resource whose function serves it.
    pub function: &'static str,
    pub endpoint: Endpoint,
}

pub const ROUTES: &[Route] = &[
    Route {
        methods: &["GET", "POST"],
        path: AUTHORIZE_PATH,
        function: "AuthorizeFunction",
        endpoint: Endpoint::Authorize,
    },
    Route {
        methods: &["POST"],
        path: TOKEN_PATH,
        function: "TokenFunction",
        endpoint: Endpoint::Token,
    },
    Route {
        methods: &["GET"],
        path: CHECK_CONNECTION_ROUTE,
        function: "CheckConnectionFunction",
        endpoint: Endpoint::CheckConnection,
    },
    Route {
        methods: &["POST"],
        path: WEBHOOK_ROUTE,
        function: "WebhookFunction",
        endpoint: Endpoint::Webhook,
    },
    Route {
        methods: &["POST"],
        path: SITE_WEBHOOK_ROUTE,
        function: "WebhookFunction",
        endpoint: Endpoint::Webhook,
    },
    Route {
        methods: &["GET"],
        path: ADMIN_CONNECT_PATH,
        function: "AdminFunction",
        endpoint: Endpoint::AdminConnect,
    },
    Route {
        methods: &["GET"],
        path: ADMIN_CONFIRM_PATH,
        function: "AdminFunction",
        endpoint: Endpoint::AdminConfirm,
    },
    Route {
        methods: &["GET"],
        path: ADMIN_STATUS_PATH,
        function: "AdminFunction",
        endpoint: Endpoint::AdminStatus,
    },
    // The platform API: AWS_IAM-authorized when deployed (template.yaml).
    Route {
        methods: &["PUT", "DELETE"],
        path: "/api/platform/users/{userId}/listings",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformListings,
    },
    Route {
        methods: &["GET"],
        path: "/api/platform/connections",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformConnections,
    },
    Route {
        methods: &["DELETE"],
        path: "/api/platform/connections/{connectionId}",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformConnection,
    },
];

/// Whether `path` (normalized) is an instance of the route path `pattern`,
/// whose `{name}` segments match any one non-empty segment.
fn matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut q) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.starts_with('{') && a.ends_with('}') => {
                if b.is_empty() {
                    return false;
                }
            }
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The route a request path (in any of its forms) belongs to. The method is
/// the handler's to judge: each answers a wrong one with 405.
pub fn find(path: &str) -> Option<&'static Route> {
    let path = normalize_path(path);
    ROUTES.iter().find(|r| matches(r.path, &path))
}

/// The path an endpoint is served at (its first route).
pub fn path(endpoint: Endpoint) -> &'static str {
    ROUTES
        .iter()
        .find(|r| r.endpoint == endpoint)
        .map(|r| r.path)
        .expect("every endpoint has a route")
}

/// Hands a request to the route's handler; a 405 names the methods the
/// route takes (`Allow`, RFC 9110 section 15.5.6).
pub async fn serve_route(app: &App, route: &Route, req: Request) -> Response {
    let mut resp = handle(app, route.endpoint, req).await;
    if resp.status() == http::StatusCode::METHOD_NOT_ALLOWED {
        let mut allow = route.methods.join(", ");
        // check_connection answers HEAD too (without side effects).
        if route.endpoint == Endpoint::CheckConnection {
            allow.push_str(", HEAD");
        }
        if crate::http_response::set_header(&mut resp, "allow", &allow).is_err() {
            tracing::error!(
                allow,
                "405 without Allow: the method list is not a header value"
            );
        }
    }
    resp
}

/// Hands a request to the endpoint's handler.
pub async fn handle(app: &App, endpoint: Endpoint, req: Request) -> Response {
    match endpoint {
        Endpoint::Authorize => handlers::authorize(app, req).await,
        Endpoint::Token => handlers::token(app, req).await,
        Endpoint::CheckConnection => handlers::check_connection(app, req).await,
        Endpoint::Webhook => handlers::webhook(app, req).await,
        Endpoint::AdminConnect => handlers::admin::connect(app, req).await,
        Endpoint::AdminConfirm => handlers::admin::confirm(app, req).await,
        Endpoint::AdminStatus => handlers::admin::status(app, req).await,
        Endpoint::PlatformListings => handlers::platform::listings(app, req).await,
        Endpoint::PlatformConnections => handlers::platform::connections(app, req).await,
        Endpoint::PlatformConnection => handlers::platform::connection(app, req).await,
    }
}

/// The admin function's whole job: its routes of the table; anything else
/// (which the HTTP API never sends it) is a 404 page.
pub async fn admin(app: &App, req: Request) -> Response {
    match find(req.uri().path()) {
        Some(r) if r.function == "AdminFunction" => serve_route(app, r, req).await,
        _ => Error::NotFound.to_html_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_path_finds_its_route() {
        for p in ["/api/update", "/api/update/", "/api//update/"] {
            assert_eq!(find(p).unwrap().endpoint, Endpoint::Webhook, "{p}");
        }
        assert_eq!(find("/update").unwrap().path, SITE_WEBHOOK_ROUTE);
        assert!(find("/api/nope").is_none());
        assert_eq!(
            find("/api/platform/users/u-1/listings/").unwrap().endpoint,
            Endpoint::PlatformListings
        );
        assert!(find("/api/platform/users//listings").is_none());
        assert!(find("/api/platform/users/a/b/listings").is_none());
        assert_eq!(
            find("/api/platform/connections/42").unwrap().endpoint,
            Endpoint::PlatformConnection
        );
        assert!(find("/").is_none());
    }

    #[test]
    fn routes_are_unique_and_slash_less() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert_eq!(normalize_path(r.path), r.path);
            assert!(ROUTES[..i].iter().all(|o| o.path != r.path), "{}", r.path);
            assert!(!r.methods.is_empty());
        }
        assert_eq!(path(Endpoint::Webhook), WEBHOOK_ROUTE);
    }
}
