//! Our own public URLs and the paths they are built from.
//!
//! Two of our answers name our own address: authorize sends a user without
//! a session to the login page with "come back to authUri", and the admin
//! handshake gives Syncaroo our confirm route as its `redirectUri`. Neither
//! reads the HTTP API's id from the template: a function whose environment
//! names the API depends on it while the API (its OpenAPI body names every
//! function's ARN) depends on the function, a dependency cycle that stops
//! any deployment. The address comes from `PUBLIC_BASE_URL` when set (a
//! custom domain in front of the API), else from the request itself: the
//! URL lambda_http builds from the `Host` header (API Gateway sets it to the
//! domain the call came in on, `requestContext.domainName`) and
//! `X-Forwarded-Proto`.

use crate::config::Config;
use crate::error::Error;
use crate::http_util::Request;
pub use crate::url_rules::check_base_url;

pub const AUTHORIZE_PATH: &str = "/api/oauth/authorize";
pub const TOKEN_PATH: &str = "/api/oauth/token";
pub const ADMIN_CONNECT_PATH: &str = "/api/admin/syncaroo/connect";
pub const ADMIN_CONFIRM_PATH: &str = "/api/admin/syncaroo/confirm";
pub const ADMIN_STATUS_PATH: &str = "/api/admin/syncaroo/status";
/// The guide's `checkConnectionPath` and `webhookPath` as we publish them
/// (appended to `apiUri`, which we publish without its trailing slash so the
/// concatenation has one slash).
pub const CHECK_CONNECTION_PATH: &str = "/check_connection/";
pub const WEBHOOK_PATH: &str = "/update/";

/// The guide's "Before getting started" block for a deployment whose
/// public base is `site` (no trailing slash), as the stack's outputs give
/// it: what the platform sends Syncaroo.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupBlock {
    pub site_uri: String,
    pub api_uri: String,
    pub auth_uri: String,
    pub webhook_path: String,
    pub check_connection_path: String,
    pub your_client_id: String,
    pub your_client_secret: String,
    pub auth_token_uri: String,
}

impl SetupBlock {
    pub fn new(site: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            site_uri: site.to_string(),
            // Without its trailing slash: the guide appends
            // checkConnectionPath and webhookPath, which start with one.
            api_uri: format!("{site}/api"),
            auth_uri: format!("{site}{AUTHORIZE_PATH}"),
            webhook_path: WEBHOOK_PATH.into(),
            check_connection_path: CHECK_CONNECTION_PATH.into(),
            your_client_id: client_id.to_string(),
            your_client_secret: client_secret.to_string(),
            auth_token_uri: format!("{site}{TOKEN_PATH}"),
        }
    }
}

/// A request path in the form routes are matched in: repeated slashes
/// collapsed and no trailing slash (`/api//update/` is `/api/update`).
///
/// The guide's own setup values concatenate to a doubled slash
/// (`https://yourapp.com/api/` + `/check_connection/`), and HTTP APIs route
/// `/x/` to the `/x` route, so every path is accepted in each of its forms.
pub fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `scheme://host[:port]` (plus any base path) this deployment is reached
/// at, without a trailing slash.
pub fn base(cfg: &Config, req: &Request) -> Result<String, Error> {
    if let Some(b) = &cfg.public_base_url {
        return Ok(b.trim_end_matches('/').to_string());
    }
    let host = match req.uri().authority() {
        Some(a) => a.as_str().to_string(),
        None => req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string(),
    };
    if !valid_authority(&host) {
        return Err(Error::InvalidRequest(
            "the request names no valid Host; set PUBLIC_BASE_URL".into(),
        ));
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok());
    let scheme = match (req.uri().scheme_str(), forwarded) {
        (_, Some("http")) => "http",
        (_, Some("https")) => "https",
        (Some("http"), None) => "http",
        _ => "https",
    };
    Ok(format!("{scheme}://{host}"))
}

/// The public URL of `path` (one of the constants above).
pub fn url(cfg: &Config, req: &Request, path: &str) -> Result<String, Error> {
    Ok(format!("{}{path}", base(cfg, req)?))
}

/// A host with an optional port: no userinfo, path, query or whitespace.
fn valid_authority(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 255
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn cfg(base: Option<&str>) -> Config {
        Config::from_lookup(|k| match k {
            "PUBLIC_BASE_URL" => base.map(str::to_string),
            _ => None,
        })
        .unwrap()
    }

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::new()).unwrap()
    }

    #[test]
    fn paths_in_every_form_route_alike() {
        for p in [
            "/api/update",
            "/api/update/",
            "/api//update/",
            "//api/update//",
        ] {
            assert_eq!(normalize_path(p), "/api/update", "{p}");
        }
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("//"), "/");
        // The guide's apiUri + checkConnectionPath, as published by Syncaroo.
        let guide = format!("{}{}", "/api/", CHECK_CONNECTION_PATH);
        assert_eq!(guide, "/api//check_connection/");
        assert_eq!(normalize_path(&guide), "/api/check_connection");
    }

    #[test]
    fn configured_base_wins_over_the_request() {
        let c = cfg(Some("https://yourapp.com/syncaroo/"));
        let r = req("https://abc.execute-api.us-east-1.amazonaws.com/api/x", &[]);
        assert_eq!(
            url(&c, &r, AUTHORIZE_PATH).unwrap(),
            "https://yourapp.com/syncaroo/api/oauth/authorize"
        );
    }

    #[test]
    fn from_the_request_lambda_http_built() {
        // lambda_http makes the URI absolute from Host (or
        // requestContext.domainName) and X-Forwarded-Proto.
        let c = cfg(None);
        let r = req(
            "https://abc.execute-api.us-east-1.amazonaws.com/api/oauth/authorize?x=1",
            &[],
        );
        assert_eq!(
            base(&c, &r).unwrap(),
            "https://abc.execute-api.us-east-1.amazonaws.com"
        );
        // A local server sees a path-only URI and a Host header.
        let r = req(
            "/api/oauth/authorize",
            &[("host", "127.0.0.1:8080"), ("x-forwarded-proto", "http")],
        );
        assert_eq!(base(&c, &r).unwrap(), "http://127.0.0.1:8080");
        let r = req("/api/oauth/authorize", &[("host", "yourapp.com")]);
        assert_eq!(base(&c, &r).unwrap(), "https://yourapp.com");
    }

    #[test]
    fn refuses_a_missing_or_odd_host() {
        let c = cfg(None);
        for h in ["", "evil.com/x", "a b", "user@evil.com"] {
            let r = req("/api/oauth/authorize", &[("host", h)]);
            assert!(base(&c, &r).is_err(), "{h:?}");
        }
        let r = req("/api/oauth/authorize", &[]);
        assert!(base(&c, &r).is_err());
    }

    #[test]
    fn base_url_setting_is_checked() {
        assert!(check_base_url("https://yourapp.com").is_ok());
        assert!(check_base_url("https://yourapp.com/prefix/").is_ok());
        for bad in [
            "yourapp.com",
            "ftp://yourapp.com",
            "https://yourapp.com/?a=1",
            "https://u@yourapp.com",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }
}
