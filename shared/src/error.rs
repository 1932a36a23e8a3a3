//! One error type for every handler, and its four HTTP faces: RFC 6749
//! section 5.2 JSON (token endpoint), RFC 6750 bearer errors (resource
//! endpoints), an HTML page (browser-facing authorize and admin pages) and
//! the platform API's own JSON.
//!
//! A failure of something we depend on (the store, the secrets, Syncaroo,
//! EventBridge) is a [`Fault`]: it keeps its cause as its `source`, and
//! says whether the same request again can succeed. Only a transient fault
//! is answered 503 with `Retry-After`; a permanent one (a malformed item,
//! a request AWS refuses as invalid, a missing secret) is 500.
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
    Store(#[source] Fault),
    #[error("secrets failure: {0}")]
    Secrets(#[source] Fault),
    /// A setting, or the deployment, is wrong (found at start or on use).
    #[error("configuration: {0}")]
    Config(String),
    /// Syncaroo, EventBridge or SQS failed.
    #[error("upstream failure: {0}")]
    Upstream(#[source] Fault),
    /// Not set up yet (an operator must act); the message is shown.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// What went wrong in a dependency, whether trying again can help, and the
/// underlying error (an SDK error, an I/O error) as the `source`.
#[derive(Debug)]
pub struct Fault {
    message: String,
    permanent: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Fault {
    /// A failure that passes by itself (throttled, timed out, a 5xx, a
    /// conflicting transaction): the same request again may succeed.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
            source: None,
        }
    }

    /// A failure the same request will meet again (a malformed item, a
    /// request refused as invalid, a missing secret): someone must act.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::transient(message)
        }
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// A transient store failure (see [`Fault::transient`]).
    pub fn store(message: impl Into<String>) -> Self {
        Error::Store(Fault::transient(message))
    }

    /// A stored item that does not read as what it should be: permanent.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Error::Store(Fault::permanent(message))
    }

    /// A transient failure of a service we call (see [`Fault::transient`]).
    pub fn upstream(message: impl Into<String>) -> Self {
        Error::Upstream(Fault::transient(message))
    }

    /// Whether the same request again can succeed without anyone acting.
    fn transient(&self) -> bool {
        match self {
            Error::Store(f) | Error::Secrets(f) => !f.is_permanent(),
            _ => false,
        }
    }

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
            Store(_) | Secrets(_) if self.transient() => StatusCode::SERVICE_UNAVAILABLE,
            // They answered, and will answer the same again.
            Store(_) | Secrets(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            Store(_) | Secrets(_) if self.transient() => "temporarily_unavailable",
            Store(_) | Secrets(_) => "server_error",
            Unavailable(_) => "temporarily_unavailable",
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
            Store(_) | Secrets(_) if self.transient() => {
                "temporarily unavailable, try again shortly".into()
            }
            Store(_) | Secrets(_) => "internal error, try again later".into(),
            Config(_) => "internal error, try again later".into(),
            Upstream(_) => "upstream service failed, try again later".into(),
            Unavailable(m) => m.clone(),
        }
    }

    /// Seconds a caller should wait before the same request again, for a
    /// failure that passes by itself (`Retry-After`, RFC 9110 section 10.2.3).
    pub fn retry_after(&self) -> Option<u32> {
        self.transient().then_some(1)
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

    /// The platform API's own JSON (`{"error", "message"}`): codes that name
    /// what happened in HTTP's terms, not OAuth's, since the platform's
    /// backend is no OAuth client here. A 401 challenges for HTTP Basic
    /// (the router drops it where the profile takes SigV4 only).
    pub fn to_platform_response(&self) -> Response {
        self.log();
        let status = self.status();
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthenticated",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            502 => "upstream_failed",
            503 => "unavailable",
            _ => "internal",
        };
        let body = serde_json::json!({ "error": code, "message": self.description() });
        let mut resp = http_util::json_response(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(
                    "Basic realm=\"syncaroo-bridge\", charset=\"UTF-8\"",
                ),
            );
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
        let e = Error::store("ConditionalCheckFailed on pk=TOKEN#abc");
        assert_eq!(e.status(), 503);
        assert!(!e.description().contains("TOKEN#"));
        for r in [
            e.to_oauth_response(),
            e.to_bearer_response(),
            e.to_html_response(),
            e.to_platform_response(),
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
    fn a_permanent_fault_is_500_without_retry_after_and_keeps_its_source() {
        let io = std::io::Error::other("item has no sk");
        let e = Error::Store(Fault::permanent("connection item 99 is malformed").with_source(io));
        assert_eq!(
            std::error::Error::source(&e)
                .and_then(std::error::Error::source)
                .map(|s| s.to_string()),
            Some("item has no sk".to_string())
        );
        for r in [
            e.to_oauth_response(),
            e.to_bearer_response(),
            e.to_html_response(),
            e.to_platform_response(),
        ] {
            assert_eq!(r.status(), 500);
            assert!(r.headers().get("retry-after").is_none());
            assert!(!String::from_utf8_lossy(r.body()).contains("99"));
        }
        assert_eq!(Error::corrupt("x").code(), "server_error");
    }

    #[test]
    fn the_platform_api_answers_in_its_own_vocabulary() {
        for (e, status, code) in [
            (
                Error::InvalidClient("sign it".into()),
                401,
                "unauthenticated",
            ),
            (Error::Forbidden("not listed".into()), 403, "forbidden"),
            (Error::InvalidRequest("limit".into()), 400, "bad_request"),
            (Error::NotFound, 404, "not_found"),
            (Error::store("throttled"), 503, "unavailable"),
            (Error::corrupt("bad item"), 500, "internal"),
        ] {
            let r = e.to_platform_response();
            assert_eq!(r.status(), status);
            let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            assert_eq!(v["error"], code);
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(v.get("error_description").is_none());
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
