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
        #[tokio::main]
        async fn main() -> Result<(), lambda_http::Error> {
            $crate::telemetry::init();
            let (app, _) = $crate::App::from_aws_env().await?;
            let app = &app;
            lambda_http::run(lambda_http::service_fn(move |req| async move {
                let resp = $handler(app, $crate::lambda_glue::from_lambda(req)).await;
                Ok::<_, std::convert::Infallible>($crate::lambda_glue::to_lambda(resp))
            }))
            .await
        }
    };
}
