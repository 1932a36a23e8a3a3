//! A fault-injecting HTTP proxy: in front of DynamoDB Local, the Secrets
//! Manager server or the fake Syncaroo, it forwards each request, or answers
//! it with a fault the real service produces: a 500 or 503, throttling
//! (DynamoDB's `ProvisionedThroughputExceededException`, the AWS
//! `ThrottlingException`, Syncaroo's 429), a `TransactionConflict`, a
//! connection reset, or a stall.
//!
//! Proxies started on one [`Plan`] record their requests together, so a
//! plan sees every step of a request path across all the services it
//! calls. A plan fails the Nth request of one operation and a run after it
//! ([`Plan::arm`]), or each request with a probability ([`Plan::random`],
//! for the soak).
//! The fault bodies are the services' documented error shapes; none of them
//! is taken from our code.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// The service behind a proxy: it decides the faults' wire shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    SecretsManager,
    Syncaroo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// HTTP 500 (`InternalServerError`, `InternalServiceError`).
    Status500,
    /// HTTP 503 (`ServiceUnavailable`; Syncaroo's with `Retry-After`).
    Status503,
    /// DynamoDB's `ProvisionedThroughputExceededException` (400).
    Throughput,
    /// `ThrottlingException` (400) on AWS; 429 with `Retry-After` on Syncaroo.
    Throttling,
    /// DynamoDB: `TransactionCanceledException` with a `TransactionConflict`
    /// reason on a transaction, `TransactionConflictException` otherwise.
    TxConflict,
    /// The connection is closed with the request unanswered (and not
    /// forwarded).
    Reset,
    /// The request is never answered; the client's timeout must end it.
    Stall,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Status500,
        Fault::Status503,
        Fault::Throughput,
        Fault::Throttling,
        Fault::TxConflict,
        Fault::Reset,
        Fault::Stall,
    ];

    /// Whether `service` produces this fault at all.
    pub fn applies_to(self, service: Service) -> bool {
        match self {
            Fault::Throughput | Fault::TxConflict => service == Service::DynamoDb,
            _ => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::Throughput => "throughput exceeded",
            Fault::Throttling => "throttling",
            Fault::TxConflict => "transaction conflict",
            Fault::Reset => "reset",
            Fault::Stall => "stall",
        }
    }
}

/// One request a proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub service: Service,
    /// `GetItem`, `GetSecretValue`, or `POST /oauth/token` for Syncaroo.
    pub op: String,
    pub fault: Option<Fault>,
}

#[derive(Debug, Clone)]
struct Armed {
    op: String,
    from: usize,
    count: usize,
    fault: Fault,
}

/// What the proxies on it do; shared by every proxy of one test run.
#[derive(Default)]
pub struct Plan {
    /// Added before each forwarded request: one network round trip.
    delay: Mutex<Duration>,
    armed: Mutex<Option<Armed>>,
    random: Mutex<Option<(f64, Vec<Fault>, rand::rngs::StdRng)>>,
    seen: Mutex<Vec<Seen>>,
}

impl Plan {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Fails `count` requests of operation `op` from its `nth` (1-based,
    /// counted from the last [`Plan::reset`], retries included) with
    /// `fault`; `usize::MAX` fails every one until [`Plan::disarm`]. A step
    /// is named by its operation and occurrence rather than by its place
    /// in the whole sequence, because requests a path sends concurrently
    /// reach the proxies in no fixed order.
    pub fn arm(&self, op: &str, nth: usize, count: usize, fault: Fault) {
        *self.armed.lock().unwrap() = Some(Armed {
            op: op.to_string(),
            from: nth,
            count,
            fault,
        });
    }

    /// Holds each forwarded request `rtt` before sending it on, as a
    /// network round trip would (benchmarks; connection setup is not
    /// simulated).
    pub fn set_delay(&self, rtt: Duration) {
        *self.delay.lock().unwrap() = rtt;
    }

    pub fn disarm(&self) {
        *self.armed.lock().unwrap() = None;
        *self.random.lock().unwrap() = None;
    }

    /// Fails each request with probability `p`, with a fault drawn from
    /// `faults` that applies to its service (seeded: the same requests in
    /// the same order get the same faults).
    pub fn random(&self, p: f64, faults: &[Fault], seed: u64) {
        *self.random.lock().unwrap() =
            Some((p, faults.to_vec(), rand::rngs::StdRng::seed_from_u64(seed)));
    }

    /// Forgets what was seen (and so restarts the counts).
    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn injected(&self) -> usize {
        self.seen().iter().filter(|s| s.fault.is_some()).count()
    }

    fn decide(&self, service: Service, op: String) -> Option<Fault> {
        let mut seen = self.seen.lock().unwrap();
        let nth = seen.iter().filter(|s| s.op == op).count() + 1;
        let armed = self.armed.lock().unwrap().clone();
        let mut fault = armed
            .filter(|a| {
                a.op == op && nth >= a.from && nth - a.from < a.count && a.fault.applies_to(service)
            })
            .map(|a| a.fault);
        if fault.is_none() {
            if let Some((p, faults, rng)) = self.random.lock().unwrap().as_mut() {
                let usable: Vec<Fault> = faults
                    .iter()
                    .copied()
                    .filter(|f| f.applies_to(service))
                    .collect();
                if rng.random::<f64>() < *p && !usable.is_empty() {
                    fault = Some(usable[rng.random_range(0..usable.len())]);
                }
            }
        }
        seen.push(Seen { service, op, fault });
        fault
    }
}

/// A DynamoDB client for `endpoint` (a proxy) that gives up on a silent
/// answer after `read_idle` and, with `backoff`, starts its standard
/// retries from that pause instead of the SDK's one second.
pub async fn dynamodb_client(
    endpoint: &str,
    read_idle: Duration,
    backoff: Option<Duration>,
) -> aws_sdk_dynamodb::Client {
    let sdk = syncaroo_shared::aws_http::load_sdk_config()
        .await
        .expect("SDK config");
    let mut b = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .http_client(aws_sdk_dynamodb::config::SharedHttpClient::new(
            syncaroo_shared::aws_http::ReqwestHttpClient::new(
                syncaroo_shared::tls::client_config().expect("TLS"),
            )
            .with_read_idle_timeout(read_idle),
        ));
    if let Some(backoff) = backoff {
        b = b.retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_initial_backoff(backoff),
        );
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

/// How long a stalled request is held before its connection is dropped
/// (longer than any client timeout under test).
pub const STALL: Duration = Duration::from_secs(30);

/// Starts a proxy for `service` at `upstream` (`http://host:port[/]`) on
/// `plan`; returns its base URL (same path as `upstream`).
pub async fn start(service: Service, upstream: &str, plan: Arc<Plan>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let up = url::Url::parse(upstream).expect("upstream URL");
    let origin = format!(
        "http://{}:{}",
        up.host_str().expect("host"),
        up.port_or_known_default().expect("port")
    );
    let http = syncaroo_shared::tls::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (plan, http, origin) = (plan.clone(), http.clone(), origin.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (plan, http, origin) = (plan.clone(), http.clone(), origin.clone());
                    async move { handle(service, &plan, &http, &origin, req).await }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}{}", up.path())
}

type Answer = Result<hyper::Response<Full<Bytes>>, std::io::Error>;

async fn handle(
    service: Service,
    plan: &Plan,
    http: &reqwest::Client,
    origin: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> Answer {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let op = match parts.headers.get("x-amz-target") {
        Some(t) => {
            let t = t.to_str().unwrap_or_default();
            t.rsplit('.').next().unwrap_or(t).to_string()
        }
        None => format!("{} {}", parts.method, parts.uri.path()),
    };
    let transaction = op == "TransactWriteItems";
    match plan.decide(service, op) {
        None => {
            let rtt = *plan.delay.lock().unwrap();
            if !rtt.is_zero() {
                tokio::time::sleep(rtt).await;
            }
            forward(http, origin, parts, body).await
        }
        Some(Fault::Reset) => Err(std::io::Error::other("injected reset")),
        Some(Fault::Stall) => {
            tokio::time::sleep(STALL).await;
            Err(std::io::Error::other("injected stall"))
        }
        Some(f) => Ok(fault_answer(service, f, transaction, &body)),
    }
}

async fn forward(
    http: &reqwest::Client,
    origin: &str,
    parts: http::request::Parts,
    body: Bytes,
) -> Answer {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut req = http.request(parts.method.clone(), format!("{origin}{path}"));
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            // Host too: the service sees the name the client used, as
            // behind a reverse proxy that preserves it.
            req = req.header(k, v);
        }
    }
    let resp = req.body(body).send().await.map_err(std::io::Error::other)?;
    let mut out = hyper::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        if !matches!(
            k.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            out = out.header(k, v);
        }
    }
    let bytes = resp.bytes().await.map_err(std::io::Error::other)?;
    out.body(Full::new(bytes)).map_err(std::io::Error::other)
}

const DDB: &str = "com.amazonaws.dynamodb.v20120810#";

/// An AWS JSON 1.0/1.1 error: `__type`, `message` and `extra`'s members.
fn aws(
    status: u16,
    ty: String,
    message: &str,
    extra: serde_json::Value,
) -> hyper::Response<Full<Bytes>> {
    let mut doc = serde_json::json!({"__type": ty, "message": message});
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", "fault-proxy")
        .body(Full::new(Bytes::from(doc.to_string())))
        .expect("response")
}

/// Syncaroo's answer for `fault`: 503 or 429 with `Retry-After`, else 500.
fn syncaroo_fault(fault: Fault) -> hyper::Response<Full<Bytes>> {
    let (status, error) = match fault {
        Fault::Status503 => (503, "temporarily_unavailable"),
        Fault::Throttling => (429, "rate_limited"),
        _ => (500, "server_error"),
    };
    let mut b = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if status != 500 {
        b = b.header("retry-after", "1");
    }
    b.body(Full::new(Bytes::from(
        serde_json::json!({ "error": error }).to_string(),
    )))
    .expect("response")
}

/// A transaction (of the steps in its request `body`) cancelled because
/// its first step met another transaction.
fn cancelled_by_conflict(body: &[u8]) -> hyper::Response<Full<Bytes>> {
    let items = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1);
    let reasons: Vec<serde_json::Value> = (0..items)
        .map(|i| {
            if i == 0 {
                serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
            } else {
                serde_json::json!({"Code": "None"})
            }
        })
        .collect();
    aws(
        400,
        format!("{DDB}TransactionCanceledException"),
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        serde_json::json!({ "CancellationReasons": reasons }),
    )
}

/// The service's own answer for `fault` (AWS JSON 1.0/1.1 error shapes:
/// `__type` and `message`).
fn fault_answer(
    service: Service,
    fault: Fault,
    transaction: bool,
    body: &[u8],
) -> hyper::Response<Full<Bytes>> {
    let none = serde_json::Value::Null;
    match (service, fault) {
        (Service::Syncaroo, f) => syncaroo_fault(f),
        (Service::DynamoDb, Fault::Status500) => aws(
            500,
            format!("{DDB}InternalServerError"),
            "Internal server error",
            none,
        ),
        (Service::SecretsManager, Fault::Status500) => aws(
            500,
            "InternalServiceError".into(),
            "An error occurred on the server side.",
            none,
        ),
        (_, Fault::Status503) => aws(
            503,
            "com.amazon.coral.availability#ServiceUnavailableException".into(),
            "Service Unavailable",
            none,
        ),
        (_, Fault::Throttling) => aws(
            400,
            "com.amazon.coral.availability#ThrottlingException".into(),
            "Rate exceeded",
            none,
        ),
        (_, Fault::Throughput) => aws(
            400,
            format!("{DDB}ProvisionedThroughputExceededException"),
            "The level of configured provisioned throughput for the table was exceeded.",
            none,
        ),
        (_, Fault::TxConflict) if transaction => cancelled_by_conflict(body),
        (_, Fault::TxConflict) => aws(
            400,
            format!("{DDB}TransactionConflictException"),
            "Transaction is ongoing for the item",
            none,
        ),
        (_, Fault::Reset | Fault::Stall) => unreachable!("not an answer"),
    }
}
