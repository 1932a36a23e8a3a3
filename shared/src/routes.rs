//! The one route table: every HTTP route the bundle serves, with the
//! function that serves it when deployed. [`crate::router`] builds each
//! function's axum router from its rows (and the local runner's from all),
//! the simulator takes its paths from it, and tests check it against
//! template.yaml's HttpApi events and docs/openapi.yaml, so a route cannot
//! be added in one place only. Paths use axum 0.8's `{param}` syntax, as
//! the template and the OpenAPI document do.

use crate::error::Error;
use crate::http_util::Response;
use crate::public_url::{
    ADMIN_CONFIRM_PATH, ADMIN_CONNECT_PATH, ADMIN_STATUS_PATH, AUTHORIZE_PATH, TOKEN_PATH,
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
    PlatformUserData,
    PlatformUserStatus,
    PlatformUser,
}

#[derive(Debug)]
pub struct Route {
    /// The methods the deployed HTTP API routes (each is a route key).
    pub methods: &'static [&'static str],
    /// Slash-less, as HTTP API route keys are; every form of it is served
    /// ([`crate::public_url::normalize_path`]).
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
        path: "/api/platform/users/{userId}/data",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformUserData,
    },
    Route {
        methods: &["GET"],
        path: "/api/platform/users/{userId}/status",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformUserStatus,
    },
    Route {
        methods: &["DELETE"],
        path: "/api/platform/users/{userId}",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformUser,
    },
    Route {
        methods: &["GET"],
        path: "/api/platform/connections",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformConnections,
    },
    Route {
        methods: &["GET", "DELETE"],
        path: "/api/platform/connections/{connectionId}",
        function: "AdminFunction",
        endpoint: Endpoint::PlatformConnection,
    },
];

/// The path an endpoint is served at (its first route).
pub fn path(endpoint: Endpoint) -> &'static str {
    ROUTES
        .iter()
        .find(|r| r.endpoint == endpoint)
        .map(|r| r.path)
        .expect("every endpoint has a route")
}

impl Endpoint {
    /// The platform API: behind the caller middleware
    /// ([`crate::router`]), `AWS_IAM` when deployed.
    pub fn is_platform(self) -> bool {
        matches!(
            self,
            Endpoint::PlatformListings
                | Endpoint::PlatformConnections
                | Endpoint::PlatformConnection
                | Endpoint::PlatformUserData
                | Endpoint::PlatformUserStatus
                | Endpoint::PlatformUser
        )
    }

    /// A failure on this endpoint in its protocol's form: an HTML page
    /// where a browser asks (authorize, the admin pages), RFC 6750 on the
    /// bearer-protected resources, RFC 6749 JSON on the token endpoint, the
    /// platform API's own JSON on its routes. The router answers its own
    /// refusals (wrong method, body too large, bad path segment) through it
    /// too.
    pub fn error_response(self, e: Error) -> Response {
        match self {
            Endpoint::Authorize
            | Endpoint::AdminConnect
            | Endpoint::AdminConfirm
            | Endpoint::AdminStatus => e.to_html_response(),
            Endpoint::CheckConnection | Endpoint::Webhook => e.to_bearer_response(),
            Endpoint::Token => e.to_oauth_response(),
            Endpoint::PlatformListings
            | Endpoint::PlatformConnections
            | Endpoint::PlatformConnection
            | Endpoint::PlatformUserData
            | Endpoint::PlatformUserStatus
            | Endpoint::PlatformUser => e.to_platform_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_unique_and_slash_less() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert_eq!(crate::public_url::normalize_path(r.path), r.path);
            assert!(ROUTES[..i].iter().all(|o| o.path != r.path), "{}", r.path);
            assert!(!r.methods.is_empty());
        }
        assert_eq!(path(Endpoint::Webhook), WEBHOOK_ROUTE);
    }
}
