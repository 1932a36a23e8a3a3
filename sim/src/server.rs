//! The loopback HTTP/1.1 server: hyper's connection driver behind our accept
//! loop, one task per connection. The local runner serves the shared axum
//! router through it, the fake Syncaroo its own handler. It exists because
//! `axum::serve` offers neither a header-read timeout nor a connection cap.
//!
//! The server's own answers look like the handlers' (the same JSON error
//! body and security headers): a body over [`MAX_BODY`] is 413, refused on
//! its `Content-Length` before a byte of it is read; a body that cannot be
//! read (bad chunking, cut off) is 400; headers or a body that do not
//! arrive within the timeouts close the connection (headers) or get 408
//! (body), so an idle or half-sent request holds nothing for long; at
//! most [`DEFAULT_MAX_CONNECTIONS`] (or the given cap) are served at once.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use syncaroo_shared::{router, Error};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;
pub type Handler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// Largest body read; larger requests get 413.
pub use syncaroo_shared::router::MAX_BODY;

/// How long a client may take to send a request's headers (also the idle
/// time allowed on a kept-alive connection) and then its body.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub headers: Duration,
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            headers: Duration::from_secs(10),
            body: Duration::from_secs(30),
        }
    }
}

/// How many connections are served at once by default: well under a
/// process's usual 1,024 descriptors, far over what a local run needs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The first and the longest pause after a failed accept.
const ACCEPT_PAUSE: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Serves `handler` on `listener` until the returned task is aborted.
pub fn spawn(listener: TcpListener, handler: Handler) -> JoinHandle<()> {
    spawn_with(listener, handler, Timeouts::default())
}

pub fn spawn_with(listener: TcpListener, handler: Handler, timeouts: Timeouts) -> JoinHandle<()> {
    spawn_limited(listener, handler, timeouts, DEFAULT_MAX_CONNECTIONS)
}

/// [`spawn_with`], serving at most `max_connections` connections at once.
/// At the cap nothing more is accepted: further clients wait in the
/// kernel's listen backlog, holding no descriptor of ours, until a served
/// connection closes. An accept that fails (out of descriptors, or a
/// connection reset before it was taken) pauses the loop, doubling from
/// 10 ms to 1 s, instead of trying again at once: a loop that retries at
/// once spins a core for as long as the descriptors stay exhausted.
pub fn spawn_limited(
    listener: TcpListener,
    handler: Handler,
    timeouts: Timeouts,
    max_connections: usize,
) -> JoinHandle<()> {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    tokio::spawn(async move {
        let mut pause = ACCEPT_PAUSE.0;
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((stream, _)) => {
                    pause = ACCEPT_PAUSE.0;
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        serve(stream, handler, timeouts).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed; pausing");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(ACCEPT_PAUSE.1);
                }
            }
        }
    })
}

/// The server's own answer to a request it cannot hand on.
fn refusal(e: Error) -> Response {
    e.to_oauth_response()
}

async fn read_and_handle(
    req: hyper::Request<hyper::body::Incoming>,
    handler: Handler,
    timeouts: Timeouts,
) -> Response {
    // The router's own reading (413 on the declared or the read length,
    // 400 on a body that cannot be read), within the body timeout.
    let req = req.map(axum::body::Body::new);
    match tokio::time::timeout(timeouts.body, router::buffered(req)).await {
        Err(_) => {
            let mut r = refusal(Error::InvalidRequest(
                "the request body did not arrive in time".into(),
            ));
            *r.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
            r
        }
        Ok(Ok(req)) => handler(req).await,
        Ok(Err(e)) => refusal(e),
    }
}

/// Serves `handler` on one accepted connection until it closes.
pub async fn serve(stream: TcpStream, handler: Handler, timeouts: Timeouts) {
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        async move {
            let resp = read_and_handle(req, handler, timeouts).await;
            let (parts, body) = resp.into_parts();
            Ok::<_, Infallible>(hyper::Response::from_parts(parts, Full::new(body)))
        }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.headers)
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
