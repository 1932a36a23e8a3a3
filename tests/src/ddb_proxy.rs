//! A counting, timing TCP proxy in front of DynamoDB Local: records each
//! request's operation (from `X-Amz-Target`), when it was sent and when its
//! answer began, so a test can assert how many requests a handler makes and
//! how many of them had to wait for another (sequential round trips).

use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Call {
    pub op: String,
    pub sent: Instant,
    pub answered: Option<Instant>,
}

#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Call>>>, Arc<std::sync::atomic::AtomicUsize>);

impl Recorder {
    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
        self.1.store(0, std::sync::atomic::Ordering::SeqCst);
    }
    /// TCP connections accepted since the last reset.
    pub fn connections(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }
    pub fn ops(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.op).collect()
    }
    /// Calls sent in `[from, to)`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.sent >= from && c.sent < to)
            .collect()
    }

    /// How long, within `[from, to)`, at least one call was waiting for its
    /// answer (overlapping waits counted once).
    pub fn waiting(&self, from: Instant, to: Instant) -> std::time::Duration {
        waiting_on(&[self], from, to)
    }

    /// The longest chain of calls each sent after the previous one was
    /// answered: the number of sequential round trips.
    pub fn sequential_round_trips(&self) -> usize {
        let calls = self.calls();
        let mut depth = vec![0usize; calls.len()];
        let mut order: Vec<usize> = (0..calls.len()).collect();
        order.sort_by_key(|&i| calls[i].sent);
        for &i in &order {
            let before = order
                .iter()
                .filter(|&&j| calls[j].answered.is_some_and(|a| a <= calls[i].sent))
                .map(|&j| depth[j])
                .max()
                .unwrap_or(0);
            depth[i] = before + 1;
        }
        depth.into_iter().max().unwrap_or(0)
    }
}

/// How long, within `[from, to)`, at least one call recorded by any of
/// `recorders` was waiting for its answer: overlapping waits, on one server
/// or on several, counted once.
pub fn waiting_on(recorders: &[&Recorder], from: Instant, to: Instant) -> std::time::Duration {
    covered(
        recorders
            .iter()
            .flat_map(|r| r.between(from, to))
            .map(|c| (c.sent, c.answered)),
        to,
    )
}

/// How long the union of `spans` (start, end; `None`: still open) covers,
/// each cut at `to`: overlaps counted once.
pub fn covered(
    spans: impl IntoIterator<Item = (Instant, Option<Instant>)>,
    to: Instant,
) -> std::time::Duration {
    let mut spans: Vec<(Instant, Instant)> = spans
        .into_iter()
        .map(|(a, b)| (a, b.unwrap_or(to).min(to)))
        .collect();
    spans.sort();
    let mut total = std::time::Duration::ZERO;
    let mut cur: Option<(Instant, Instant)> = None;
    for (a, b) in spans {
        match cur {
            Some((s, e)) if a <= e => cur = Some((s, e.max(b))),
            Some((s, e)) => {
                total += e.saturating_duration_since(s);
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((s, e)) = cur {
        total += e.saturating_duration_since(s);
    }
    total
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Starts the proxy to `upstream` (`host:port`); returns its URL.
pub async fn start(upstream: String) -> (String, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // A request counts as sent when its bytes reach this socket, not when
    // this process gets round to reading them.
    crate::ktime::enable(&listener).expect("SO_TIMESTAMPNS");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rec = Recorder::default();
    let r = rec.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            r.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(pipe(client, upstream.clone(), r.clone()));
        }
    });
    (url, rec)
}

type Pending = Arc<Mutex<std::collections::VecDeque<usize>>>;

/// Records each request that starts in `chunk` as sent at `at`.
fn record_requests(chunk: &[u8], sent: Instant, rec: &Recorder, pending: &Pending) {
    let mut at = 0;
    while let Some(i) = find(&chunk[at..], b"x-amz-target: ") {
        let start = at + i + "x-amz-target: ".len();
        let end = chunk[start..]
            .iter()
            .position(|&b| b == b'\r')
            .map(|e| start + e)
            .unwrap_or(chunk.len());
        // `DynamoDB_20120810.GetItem`, `secretsmanager.GetSecretValue`
        let target = String::from_utf8_lossy(&chunk[start..end]).to_string();
        let op = target.rsplit('.').next().unwrap_or(&target).to_string();
        let mut calls = rec.0.lock().unwrap();
        calls.push(Call {
            op,
            sent,
            answered: None,
        });
        pending.lock().unwrap().push_back(calls.len() - 1);
        at = end;
    }
}

async fn pipe(client: TcpStream, upstream: String, rec: Recorder) {
    // Indexes (into the recorder) of this connection's unanswered requests.
    let pending: Pending = Default::default();
    // The first request is recorded when it arrives, not after the proxy's
    // own connection upstream is up: that wait is the proxy's, not the
    // client's work.
    let mut first = vec![0u8; 64 * 1024];
    let read_first = async {
        match crate::ktime::read(&client, &mut first).await {
            Ok((n, at)) => {
                record_requests(&first[..n], at, &rec, &pending);
                n
            }
            Err(_) => 0,
        }
    };
    let (n, server) = tokio::join!(read_first, TcpStream::connect(&upstream));
    let Ok(server) = server else { return };
    if n == 0 {
        return;
    }
    let (cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    if sw.write_all(&first[..n]).await.is_err() {
        return;
    }
    let (p1, r1) = (pending.clone(), rec.clone());
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (n, at) = match crate::ktime::read(cr.as_ref(), &mut buf).await {
                Ok((0, _)) | Err(_) => break,
                Ok(r) => r,
            };
            record_requests(&buf[..n], at, &r1, &p1);
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let mut at = 0;
        while let Some(i) = find(&chunk[at..], b"HTTP/1.1 ") {
            if let Some(idx) = pending.lock().unwrap().pop_front() {
                if let Some(c) = rec.0.lock().unwrap().get_mut(idx) {
                    c.answered = Some(Instant::now());
                }
            }
            at += i + 9;
        }
        if cw.write_all(chunk).await.is_err() {
            break;
        }
    }
    up.abort();
}

/// A proxy in front of the server at `endpoint` (`http://host:port`).
pub async fn start_for(endpoint: &str) -> (String, Recorder) {
    start(
        endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    )
    .await
}

/// A DynamoDB store whose requests go through a fresh proxy, for handlers
/// whose clock reads `handlers_now` (see [`crate::local_aws::ttl_shift_for`]).
pub async fn proxied_store(
    table: &str,
    handlers_now: i64,
) -> (syncaroo_shared::store::DynamoStore, Recorder) {
    let (store, rec) = proxied_store_on(table, handlers_now).await;
    store.ensure_table().await.expect("table");
    (store, rec)
}

/// Like [`proxied_store`] for a table that exists: nothing is sent yet, so
/// the store's connection pool is empty and every connection it opens is
/// counted by the recorder.
pub async fn proxied_store_on(
    table: &str,
    handlers_now: i64,
) -> (syncaroo_shared::store::DynamoStore, Recorder) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("DynamoDB Local endpoint");
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (url, rec) = start(upstream).await;
    let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(url)
        .build();
    let store =
        syncaroo_shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table)
            .with_ttl_shift(crate::local_aws::ttl_shift_for(handlers_now));
    (store, rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec(spans: &[(u64, u64)], base: Instant) -> Recorder {
        let r = Recorder::default();
        for &(a, b) in spans {
            r.0.lock().unwrap().push(Call {
                op: "GetItem".into(),
                sent: base + Duration::from_millis(a),
                answered: Some(base + Duration::from_millis(b)),
            });
        }
        r
    }

    #[test]
    fn overlapping_waits_on_two_servers_count_once() {
        let t = Instant::now();
        let ddb = rec(&[(4, 7), (12, 13)], t);
        let sm = rec(&[(3, 8)], t);
        let to = t + Duration::from_millis(20);
        assert_eq!(ddb.waiting(t, to), Duration::from_millis(4));
        assert_eq!(sm.waiting(t, to), Duration::from_millis(5));
        // [3,8] and [4,7] overlap: 5 ms, plus [12,13].
        assert_eq!(waiting_on(&[&ddb, &sm], t, to), Duration::from_millis(6));
        // A call still unanswered at `to` waits until `to`.
        let open = Recorder::default();
        open.0.lock().unwrap().push(Call {
            op: "GetItem".into(),
            sent: t + Duration::from_millis(18),
            answered: None,
        });
        assert_eq!(
            waiting_on(&[&ddb, &sm, &open], t, to),
            Duration::from_millis(8)
        );
    }
}
