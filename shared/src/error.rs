//! One error type for every handler, and its three HTTP faces: RFC 6749
//! section 5.2 JSON (token endpoint), RFC 6750 bearer errors (resource
//! endpoints) and an HTML page (browser-facing authorize).
//!
//! Messages are written for the caller and never carry a token, code or
//! secret: constructors take fixed descriptions, not request values.

use crate::http_response::{self as http_util, Response};
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("request body too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A webhook whose `hash` is missing or does not verify.
    #[error("invalid_signature: {0}")]
    InvalidSignature(String),
    /// Missing or unusable bearer credentials.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store failure: {0}")]
    Store(String),
    #[error("secrets failure: {0}")]
    Secrets(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("upstream failure: {0}")]
    Upstream(String),
    /// Not set up yet (an operator must act); the message is shown.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            InvalidRequest(_)
            | InvalidGrant(_)
            | UnsupportedGrantType(_)
            | UnsupportedResponseType(_) => StatusCode::BAD_REQUEST,
            InvalidClient(_) | InvalidToken(_) | InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            Conflict(_) => StatusCode::CONFLICT,
            Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Upstream(_) => StatusCode::BAD_GATEWAY,
            // The store or the secrets did not answer (throttled, 5xx, reset,
            // timed out, a conflicting transaction): nothing was written, or
            // a transaction was not (they are atomic), so the same request
            // again is safe and will most likely succeed.
            Store(_) | Secrets(_) | Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            InvalidRequest(_)
            | UnsupportedMediaType(_)
            | PayloadTooLarge(_)
            | MethodNotAllowed
            | NotFound
            | Conflict(_) => "invalid_request",
            InvalidClient(_) => "invalid_client",
            InvalidGrant(_) => "invalid_grant",
            UnsupportedGrantType(_) => "unsupported_grant_type",
            UnsupportedResponseType(_) => "unsupported_response_type",
            InvalidToken(_) => "invalid_token",
            InvalidSignature(_) => "invalid_signature",
            Forbidden(_) => "insufficient_scope",
            Config(_) | Upstream(_) => "server_error",
            Store(_) | Secrets(_) | Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// What the caller may read. Server-side failures say only that.
    pub fn description(&self) -> String {
        use Error::*;
        match self {
            InvalidRequest(m)
            | InvalidClient(m)
            | InvalidGrant(m)
            | UnsupportedGrantType(m)
            | UnsupportedResponseType(m)
            | UnsupportedMediaType(m)
            | InvalidToken(m)
            | Forbidden(m)
            | Conflict(m)
            | InvalidSignature(m) => m.clone(),
            PayloadTooLarge(n) => format!("request body larger than {n} bytes"),
            MethodNotAllowed => "method not allowed".into(),
            NotFound => "not found".into(),
            Store(_) | Secrets(_) => "temporarily unavailable, try again shortly".into(),
            Config(_) => "internal error, try again later".into(),
            Upstream(_) => "upstream service failed, try again later".into(),
            Unavailable(m) => m.clone(),
        }
    }

    /// Seconds a caller should wait before the same request again, for a
    /// failure that passes by itself (`Retry-After`, RFC 9110 section 10.2.3).
    pub fn retry_after(&self) -> Option<u32> {
        matches!(self, Error::Store(_) | Error::Secrets(_)).then_some(1)
    }

    /// Adds `Retry-After` when the failure is one to retry.
    fn with_retry_after(&self, mut resp: Response) -> Response {
        if let Some(s) = self.retry_after() {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(s));
        }
        resp
    }

    pub fn is_server_side(&self) -> bool {
        self.status().is_server_error()
    }

    fn log(&self) {
        if self.is_server_side() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::info!(
                status = self.status().as_u16(),
                code = self.code(),
                "request refused"
            );
        }
    }

    /// RFC 6749 section 5.2 JSON, as the token endpoint answers.
    pub fn to_oauth_response(&self) -> Response {
        self.log();
        let body =
            serde_json::json!({ "error": self.code(), "error_description": self.description() });
        let mut resp = http_util::json_response(self.status(), &body);
        if matches!(self, Error::InvalidClient(_)) {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(
                    "Basic realm=\"syncaroo-bridge\", charset=\"UTF-8\"",
                ),
            );
        }
        self.with_retry_after(resp)
    }

    /// RFC 6750 section 3 error, as check_connection and the webhook answer.
    pub fn to_bearer_response(&self) -> Response {
        self.log();
        let body =
            serde_json::json!({ "error": self.code(), "error_description": self.description() });
        let mut resp = http_util::json_response(self.status(), &body);
        if let Error::InvalidToken(m) = self {
            let v = format!(
                "Bearer realm=\"syncaroo-bridge\", error=\"invalid_token\", error_description=\"{}\"",
                m.replace(['"', '\\'], "'")
            );
            if http_util::set_header(&mut resp, "www-authenticate", &v).is_err() {
                // A description that cannot be a header value: the
                // challenge without it (the body still carries it).
                resp.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static(
                        "Bearer realm=\"syncaroo-bridge\", error=\"invalid_token\"",
                    ),
                );
            }
        }
        self.with_retry_after(resp)
    }

    /// A plain page for the browser: authorize never redirects an error to
    /// an unverified redirect URI.
    pub fn to_html_response(&self) -> Response {
        self.log();
        self.with_retry_after(http_util::error_page(self.status(), &self.description()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_4xx_and_server_faults_hide_details() {
        let e = Error::Store("ConditionalCheckFailed on pk=TOKEN#abc".into());
        assert_eq!(e.status(), 503);
        assert!(!e.description().contains("TOKEN#"));
        for r in [
            e.to_oauth_response(),
            e.to_bearer_response(),
            e.to_html_response(),
        ] {
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers()["retry-after"], "1");
            assert!(!String::from_utf8_lossy(r.body()).contains("TOKEN#"));
        }
        let c = Error::Config("bad setting".into()).to_oauth_response();
        assert_eq!(c.status(), 500);
        assert!(c.headers().get("retry-after").is_none());
        for e in [
            Error::InvalidRequest("x".into()),
            Error::InvalidClient("x".into()),
            Error::InvalidGrant("x".into()),
            Error::UnsupportedMediaType("x".into()),
            Error::PayloadTooLarge(10),
            Error::InvalidToken("x".into()),
        ] {
            assert!(e.status().is_client_error(), "{e:?}");
        }
    }

    #[test]
    fn oauth_json_has_error_and_description() {
        let r = Error::InvalidGrant("code expired".into()).to_oauth_response();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"], "invalid_grant");
        assert_eq!(v["error_description"], "code expired");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }

    #[test]
    fn invalid_client_and_token_carry_www_authenticate() {
        let r = Error::InvalidClient("bad".into()).to_oauth_response();
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        let r = Error::InvalidToken("expired".into()).to_bearer_response();
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""));
    }
}
