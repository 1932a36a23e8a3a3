//! A minimal HTTP/1.1 server on loopback: bytes in, bytes out, one task per
//! connection. Used by the local runner and the fake Syncaroo.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;
pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// Largest body read; larger requests get 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// Serves `handler` on `listener` until the returned task is aborted.
pub fn spawn(listener: TcpListener, handler: Handler) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(stream, handler.clone()));
        }
    })
}

/// Serves `handler` on one accepted connection until it closes.
pub async fn serve(stream: TcpStream, handler: Handler) {
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        async move {
            let (parts, body) = req.into_parts();
            let resp = match Limited::new(body, MAX_BODY).collect().await {
                Ok(b) => handler(http::Request::from_parts(parts, b.to_bytes())).await,
                Err(_) => {
                    let mut r = http::Response::new(Bytes::from_static(b"request body too large"));
                    *r.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
                    r
                }
            };
            let (parts, body) = resp.into_parts();
            Ok::<_, Infallible>(hyper::Response::from_parts(parts, Full::new(body)))
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}
