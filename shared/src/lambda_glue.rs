//! Converts between lambda_http's request and response and the plain
//! `http` types the handlers take, so handlers know nothing of Lambda.

use crate::http_util::{Request, Response};
use bytes::Bytes;
use lambda_http::Body;

pub fn from_lambda(req: lambda_http::Request) -> Request {
    let (parts, body) = req.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        // Future variants carry no body we accept.
        #[allow(unreachable_patterns)]
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

pub fn to_lambda(resp: Response) -> lambda_http::Response<Body> {
    let (parts, body) = resp.into_parts();
    let body = if body.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(t) => Body::Text(t),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    lambda_http::Response::from_parts(parts, body)
}

/// The whole `main` of an HTTP function: logging, the AWS wiring done once
/// per cold start (secrets fetched, DynamoDB warmed), then the runtime loop
/// handing each request to `handler`.
#[macro_export]
macro_rules! http_lambda_main {
    ($handler:path) => {
        // One thread: a Lambda serves one event at a time on a share of a
        // vCPU, so worker threads add hand-offs, not parallelism (README,
        // Performance).
        #[tokio::main(flavor = "current_thread")]
        async fn main() -> Result<(), lambda_http::Error> {
            $crate::telemetry::init();
            let (app, _) = $crate::App::from_aws_env().await?;
            let app = &app;
            lambda_http::run(lambda_http::service_fn(move |req| async move {
                let req = $crate::lambda_glue::from_lambda(req);
                $crate::lambda_glue::test_panic(&req);
                let resp = $handler(app, req).await;
                Ok::<_, std::convert::Infallible>($crate::lambda_glue::to_lambda(resp))
            }))
            .await
        }
    };
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

/// An API Gateway HTTP API (2.0) event carried in a generic payload, as a
/// request; `None` for any other event (a schedule, a queue batch).
pub fn http_event(payload: &serde_json::Value) -> Option<Request> {
    payload.get("requestContext")?.get("http")?;
    let req = lambda_http::request::from_str(&payload.to_string()).ok()?;
    Some(from_lambda(req))
}

/// A response in the HTTP API 2.0 payload format (for functions that take
/// generic events and answer HTTP ones too).
pub fn to_apigw_v2(resp: Response) -> serde_json::Value {
    use base64::Engine;
    let (parts, body) = resp.into_parts();
    let mut headers = serde_json::Map::new();
    let mut cookies = Vec::new();
    for (k, v) in &parts.headers {
        let Ok(v) = v.to_str() else { continue };
        if k == "set-cookie" {
            cookies.push(serde_json::Value::from(v));
        } else {
            headers.insert(k.as_str().to_string(), v.into());
        }
    }
    let (body, b64) = match std::str::from_utf8(&body) {
        Ok(t) => (t.to_string(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(&body),
            true,
        ),
    };
    serde_json::json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "cookies": cookies,
        "body": body,
        "isBase64Encoded": b64,
    })
}
