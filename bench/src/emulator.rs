//! A minimal Lambda Runtime API on loopback: hands queued events to the
//! function's `GET next`, collects its responses and errors, and notes when
//! the process first asked for an event (the end of its init).

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use syncaroo_sim::server::{Request, Response};
use tokio::sync::{mpsc, Notify};

/// The emulator's state: events waiting for `next`, answers coming back.
pub struct Emulator {
    pub queue: Mutex<VecDeque<(String, Bytes)>>,
    pub ready: Notify,
    pub first_next: Mutex<Option<Instant>>,
    /// When the bytes of the process's first connection arrived (the
    /// runtime's first request is always `GET next`).
    pub first_bytes: Mutex<Option<Instant>>,
    pub answers: mpsc::UnboundedSender<(String, Bytes, Instant)>,
}

pub async fn emulate(emu: Arc<Emulator>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if req.method() == http::Method::GET && path.ends_with("/runtime/invocation/next") {
        let arrived = *emu.first_bytes.lock().unwrap();
        emu.first_next
            .lock()
            .unwrap()
            .get_or_insert_with(|| arrived.unwrap_or_else(Instant::now));
        loop {
            let notified = emu.ready.notified();
            if let Some((id, body)) = emu.queue.lock().unwrap().pop_front() {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000;
                let mut r = http::Response::new(body);
                let h = r.headers_mut();
                h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                h.insert(
                    "lambda-runtime-deadline-ms",
                    deadline.to_string().parse().unwrap(),
                );
                h.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench"
                        .parse()
                        .unwrap(),
                );
                h.insert(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".parse().unwrap(),
                );
                h.insert("content-type", "application/json".parse().unwrap());
                return r;
            }
            notified.await;
        }
    }
    if req.method() == http::Method::POST
        && (path.ends_with("/response") || path.ends_with("/error"))
    {
        let id = path.split('/').rev().nth(1).unwrap_or("").to_string();
        let _ = emu.answers.send((id, req.body().clone(), Instant::now()));
        let mut r = http::Response::new(Bytes::from_static(b"{}"));
        *r.status_mut() = http::StatusCode::ACCEPTED;
        return r;
    }
    if path.ends_with("/init/error") {
        let _ = emu
            .answers
            .send(("init".into(), req.body().clone(), Instant::now()));
    }
    let mut r = http::Response::new(Bytes::new());
    *r.status_mut() = http::StatusCode::ACCEPTED;
    r
}
