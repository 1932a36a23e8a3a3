//! The local HTTP server's own answers, over raw TCP: an oversized
//! Content-Length is refused before the body is read, bad chunking is 400,
//! both with the handlers' JSON error body and security headers; idle and
//! half-sent requests are cut off by the timeouts.

use std::time::Duration;
use syncaroo_sim::server::{self, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server whose handler answers 200 "handled"; short timeouts.
async fn start() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    server::spawn_with(
        l,
        server::handler(|_req| async {
            http::Response::new(bytes::Bytes::from_static(b"handled"))
        }),
        Timeouts {
            headers: Duration::from_millis(300),
            body: Duration::from_millis(300),
        },
    );
    addr
}

/// Sends `raw` and reads until the server closes or 5 s pass.
async fn exchange(addr: &str, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_like_a_handler_error(resp: &str, status: &str, error: &str) {
    assert!(resp.starts_with(&format!("HTTP/1.1 {status}")), "{resp}");
    let lower = resp.to_ascii_lowercase();
    for h in [
        "content-type: application/json",
        "cache-control: no-store",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        assert!(lower.contains(h), "{h} missing: {resp}");
    }
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{resp}"));
    assert_eq!(v["error"], error, "{resp}");
}

#[tokio::test]
async fn an_oversized_content_length_is_refused_before_reading() {
    let addr = start().await;
    // Headers only: the 10 MB body is never sent, and the answer comes.
    let resp = exchange(
        &addr,
        b"POST /api/update HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_like_a_handler_error(&resp, "413", "invalid_request");
}

#[tokio::test]
async fn bad_chunking_is_a_400_not_a_413() {
    let addr = start().await;
    let resp = exchange(
        &addr,
        b"POST /api/update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_like_a_handler_error(&resp, "400", "invalid_request");
}

#[tokio::test]
async fn a_half_sent_body_gets_408() {
    let addr = start().await;
    let resp = exchange(
        &addr,
        b"POST /api/update HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
}

#[tokio::test]
async fn half_sent_headers_and_idle_connections_are_closed() {
    let addr = start().await;
    for raw in [&b"GET / HTTP/1.1\r\nHost: x\r\n"[..], &b""[..]] {
        let started = std::time::Instant::now();
        let resp = exchange(&addr, raw).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}: the server kept the connection",
            String::from_utf8_lossy(raw)
        );
        assert!(!resp.contains("handled"), "{resp}");
    }
    // A whole request is still served.
    let resp = exchange(
        &addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.ends_with("handled"), "{resp}");
}
