//! The cold-start benchmark. For each function (and a bare hello-world built
//! the same way) it starts the release binary against a minimal Lambda
//! Runtime API emulator on loopback, with DynamoDB Local and the Secrets
//! Manager server behind counting, timing proxies, and measures:
//! init (exec to the first `GET /runtime/invocation/next`), init minus the
//! time spent waiting on those servers ("own work"), the first invocation,
//! warm invocations (p50/p99), DynamoDB requests per invocation, the zipped
//! size of the binary and its peak RSS. Run it with `bash benches/run.sh`.

#![forbid(unsafe_code)]

use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syncaroo_sim::server;
use syncaroo_tests::ddb_proxy::{start_for, Recorder};
use syncaroo_tests::repo_root;

mod emulator;
mod measure;

use emulator::{emulate, Emulator};
use measure::{ddb_ops, function_cpu, ms, peak_rss_kb, percentile, spawn_on_cpu, zipped_size};
use tokio::sync::{mpsc, Notify};

/// One function under test: its binary, the event of its first invocation,
/// the event of its warm ones, and what a good answer looks like.
struct Case {
    name: &'static str,
    first: &'static str,
    warm: &'static str,
    ok: fn(&Value) -> bool,
}

fn http_ok(v: &Value) -> bool {
    v["statusCode"].as_u64().is_some_and(|s| s < 500)
}

const CASES: &[Case] = &[
    Case {
        name: "hello",
        first: "authorize-no-session.json",
        warm: "authorize-no-session.json",
        ok: http_ok,
    },
    Case {
        name: "authorize",
        first: "authorize-no-session.json",
        warm: "authorize-consent.json",
        ok: http_ok,
    },
    Case {
        name: "token",
        first: "token-exchange.json",
        warm: "token-refresh.json",
        ok: http_ok,
    },
    Case {
        name: "check_connection",
        first: "check-connection.json",
        warm: "check-connection.json",
        ok: http_ok,
    },
    Case {
        name: "webhook",
        first: "webhook-status.json",
        warm: "webhook-status.json",
        ok: http_ok,
    },
    Case {
        name: "sync",
        first: "sync-stream.json",
        warm: "sync-stream.json",
        ok: |v| v["batchItemFailures"] == json!([]),
    },
    Case {
        name: "refresh",
        first: "refresh-schedule.json",
        warm: "refresh-schedule.json",
        ok: |v| v.get("outcome").is_some(),
    },
];

#[derive(Debug, Default, Clone)]
struct Row {
    name: String,
    init: Duration,
    init_own: Duration,
    init_requests: usize,
    first: Duration,
    first_ddb: usize,
    p50: Duration,
    p99: Duration,
    warm_ddb: f64,
    zip_bytes: u64,
    rss_kb: u64,
    errors: Vec<String>,
}

async fn run_case(
    case: &Case,
    bin_dir: &Path,
    env: &[(String, String)],
    ddb: &Recorder,
    sm: &Recorder,
    warm: usize,
    first_event: &str,
) -> Row {
    let mut row = Row {
        name: case.name.to_string(),
        ..Row::default()
    };
    let bin = bin_dir.join(case.name);
    row.zip_bytes = zipped_size(&bin);
    let (tx, mut answers) = mpsc::unbounded_channel();
    let emu = Arc::new(Emulator {
        queue: Mutex::new(VecDeque::new()),
        ready: Notify::new(),
        first_next: Mutex::new(None),
        first_bytes: Mutex::new(None),
        answers: tx,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    // Init ends when the first `GET next` reaches the socket (the kernel's
    // stamp), not when this process, sharing the CPUs, gets round to it.
    syncaroo_tests::ktime::enable(&listener).expect("SO_TIMESTAMPNS");
    let e = emu.clone();
    let handler = server::handler(move |req| emulate(e.clone(), req));
    let e = emu.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if e.first_bytes.lock().unwrap().is_none() {
                if let Ok(t) = syncaroo_tests::ktime::first_arrival(&stream).await {
                    e.first_bytes.lock().unwrap().get_or_insert(t);
                }
            }
            tokio::spawn(server::serve(
                stream,
                handler.clone(),
                server::Timeouts::default(),
            ));
        }
    });
    ddb.reset();
    sm.reset();
    let started = Instant::now();
    // BENCH_WRAP="strace -f -tt -o /tmp/st" (or perf record ...) runs the
    // binary under a profiler; the numbers then include its overhead.
    let wrap: Vec<String> = std::env::var("BENCH_WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut child = match wrap.split_first() {
        Some((prog, args)) => {
            let mut c = tokio::process::Command::new(prog);
            c.args(args).arg(&bin);
            c
        }
        None => tokio::process::Command::new(&bin),
    };
    child
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", case.name)
        .stdout(Stdio::null())
        .stderr(if std::env::var("BENCH_DEBUG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    let spawned = match function_cpu() {
        Some(cpu) => spawn_on_cpu(&mut child, cpu),
        None => child.spawn(),
    };
    let mut child = spawned.unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let pid = child.id().unwrap_or(0);
    // Init: until the first GET next.
    let init_end = loop {
        if let Some(t) = *emu.first_next.lock().unwrap() {
            break t;
        }
        if started.elapsed() > Duration::from_secs(20) {
            row.errors.push("no GET /next within 20 s".into());
            let _ = child.kill().await;
            server.abort();
            return row;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    row.init = init_end - started;
    // The secrets fetch and the DynamoDB warm-up overlap: a moment when
    // either is outstanding is waiting, counted once.
    let waits = syncaroo_tests::ddb_proxy::waiting_on(&[ddb, sm], started, init_end);
    row.init_own = row.init.saturating_sub(waits);
    row.init_requests = ddb.between(started, init_end).len() + sm.between(started, init_end).len();
    if std::env::var("BENCH_DEBUG").is_ok() {
        for c in ddb.calls().iter().chain(sm.calls().iter()) {
            eprintln!(
                "  {} {}: sent +{:?} answered +{:?}",
                case.name,
                c.op,
                c.sent.saturating_duration_since(started),
                c.answered.map(|a| a.saturating_duration_since(started))
            );
        }
        eprintln!(
            "  {} init end +{:?} started {:?}",
            case.name,
            init_end - started,
            started
        );
    }

    let events = repo_root().join("events");
    let first = Bytes::from(std::fs::read(events.join(first_event)).unwrap());
    let warm_ev = Bytes::from(std::fs::read(events.join(case.warm)).unwrap());
    let invoke = |n: usize, body: Bytes| {
        let id = format!("req-{n}");
        emu.queue.lock().unwrap().push_back((id, body));
        emu.ready.notify_waiters();
        Instant::now()
    };
    let sent = invoke(0, first);
    let Some((_, body, at)) = answers.recv().await else {
        row.errors.push("no answer".into());
        return row;
    };
    row.first = at - sent;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !(case.ok)(&v) {
        row.errors.push(format!(
            "first answer: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    row.first_ddb = ddb_ops(&ddb.between(sent, at + Duration::from_millis(1)));
    let mut lat = Vec::with_capacity(warm);
    let warm_from = Instant::now();
    for n in 1..=warm {
        let sent = invoke(n, warm_ev.clone());
        let Some((_, body, at)) = answers.recv().await else {
            break;
        };
        lat.push(at - sent);
        if n == 1 {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if !(case.ok)(&v) {
                row.errors.push(format!(
                    "warm answer: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ));
            }
        }
    }
    row.warm_ddb = ddb_ops(&ddb.between(warm_from, Instant::now())) as f64 / warm.max(1) as f64;
    lat.sort();
    row.p50 = percentile(&lat, 0.50);
    row.p99 = percentile(&lat, 0.99);
    row.rss_kb = peak_rss_kb(pid);
    let _ = child.kill().await;
    server.abort();
    row
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut warm = 300usize;
    let mut cold = 15usize;
    let mut bin_dir = repo_root().join("target/release");
    // --only NAME: that function (and the hello-world baseline) alone.
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--warm" => warm = it.next().and_then(|v| v.parse().ok()).expect("--warm N"),
            "--cold" => {
                cold = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--cold N (>= 1)")
            }
            "--bin-dir" => bin_dir = PathBuf::from(it.next().expect("--bin-dir DIR")),
            "--only" => only = Some(it.next().expect("--only FUNCTION").clone()),
            other => panic!("unknown flag {other}"),
        }
    }
    let ddb_url = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("run through benches/run.sh");
    let sm_url =
        std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").expect("run through benches/run.sh");
    let (ddb_proxy, ddb) = start_for(&ddb_url).await;
    let (sm_proxy, sm) = start_for(&sm_url).await;

    // State the events refer to, and the secret they were signed with.
    let table = format!("bench-{}", std::process::id());
    let doc = syncaroo_tests::seed::seed_events(&table).await;
    let sdk = syncaroo_shared::aws_http::load_sdk_config().await.unwrap();
    let sm_client = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = format!("bench-secret-{}", std::process::id());
    sm_client
        .create_secret()
        .name(&secret)
        .secret_string(doc.to_string())
        .send()
        .await
        .expect("secret");

    // Warm the JVM behind DynamoDB Local and moto before measuring.
    let ddb_client = aws_sdk_dynamodb::Client::new(&sdk);
    for _ in 0..200 {
        let _ = ddb_client
            .get_item()
            .table_name(&table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("WARM".into()),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("WARM".into()),
            )
            .send()
            .await;
    }
    for _ in 0..30 {
        let _ = sm_client.get_secret_value().secret_id(&secret).send().await;
    }

    // Self-check: both proxies see and name a request.
    let via = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk)
            .endpoint_url(&sm_proxy)
            .build(),
    );
    via.get_secret_value()
        .secret_id(&secret)
        .send()
        .await
        .expect("secret via proxy");
    assert_eq!(
        sm.ops(),
        ["GetSecretValue"],
        "the Secrets Manager proxy records requests"
    );
    sm.reset();
    let env: Vec<(String, String)> = vec![
        ("AWS_ENDPOINT_URL_DYNAMODB".into(), ddb_proxy),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), sm_proxy),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), "bench".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME".into(), "bench".into()),
        ("TABLE_NAME".into(), table.clone()),
        ("SECRET_ID".into(), secret.clone()),
        (
            "RUST_LOG".into(),
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
    ];
    // The proxies' listeners keep kernel stamping on for the whole run.
    if !syncaroo_tests::ktime::wait_until_live().await {
        println!("warning: no kernel receive timestamps; arrivals are timed when read");
    }
    println!(
        "benchmark: {cold} rounds of cold starts (hello then each function; median init) and {warm} warm invocations per function; binaries from {}",
        bin_dir.display()
    );
    match function_cpu() {
        Some(cpu) => println!(
            "functions pinned to CPU {cpu}; DynamoDB Local, moto and this harness to CPU 0"
        ),
        None => println!("no CPU pinning (BENCH_PIN=1 pins, given two CPUs)"),
    }
    // Cold starts are interleaved: each round starts hello and then every
    // function once, so a noisy moment on this shared machine hits them all
    // alike instead of one function's whole series.
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| {
            only.as_deref()
                .is_none_or(|o| o == c.name || c.name == "hello")
        })
        .collect();
    let mut runs: Vec<Vec<Row>> = cases.iter().map(|_| Vec::new()).collect();
    for i in 0..cold {
        for (case, runs) in cases.iter().zip(runs.iter_mut()) {
            // Every cold start gets a freshly seeded table, so each sees the
            // state the events expect (an unredeemed code, live tokens...).
            let table = format!("bench-{}-{}-{i}", std::process::id(), case.name);
            syncaroo_tests::seed::seed_events(&table).await;
            let mut env = env.clone();
            env.retain(|(k, _)| k != "TABLE_NAME");
            env.push(("TABLE_NAME".into(), table));
            let n = if i + 1 == cold { warm } else { 5 };
            runs.push(run_case(case, &bin_dir, &env, &ddb, &sm, n, case.first).await);
        }
    }
    let mut rows = Vec::new();
    for (case, mut runs) in cases.iter().zip(runs) {
        let median = |f: fn(&Row) -> Duration| {
            let mut v: Vec<Duration> = runs.iter().map(f).collect();
            v.sort();
            v[v.len() / 2]
        };
        let (init, own) = (median(|r| r.init), median(|r| r.init_own));
        let first = median(|r| r.first);
        let mut row = runs.pop().expect("at least one run");
        row.errors
            .extend(runs.iter().flat_map(|r| r.errors.clone()));
        row.first = first;
        row.init = init;
        row.init_own = own;
        eprintln!("  measured {}", case.name);
        rows.push(row);
    }
    let hello = rows[0].init_own;
    println!(
        "\n{:<17} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>8}",
        "function",
        "init ms",
        "own ms",
        "own/hw",
        "first ms",
        "p50 ms",
        "p99 ms",
        "ddb/1st",
        "ddb/warm",
        "zip MB",
        "RSS MB"
    );
    let mut failures = Vec::new();
    for r in &rows {
        let ratio = r.init_own.as_secs_f64() / hello.as_secs_f64().max(1e-9);
        println!(
            "{:<17} {:>9} {:>9} {:>7.2} {:>9} {:>9} {:>9} {:>11} {:>11.2} {:>9.2} {:>8.1}",
            r.name,
            ms(r.init),
            ms(r.init_own),
            ratio,
            ms(r.first),
            ms(r.p50),
            ms(r.p99),
            r.first_ddb,
            r.warm_ddb,
            r.zip_bytes as f64 / 1_048_576.0,
            r.rss_kb as f64 / 1024.0
        );
        for e in &r.errors {
            failures.push(format!("{}: {e}", r.name));
        }
        if r.zip_bytes > 4 * 1024 * 1024 {
            failures.push(format!(
                "{}: zipped bootstrap {} bytes > 4 MB",
                r.name, r.zip_bytes
            ));
        }
        if r.name != "hello" && ratio > 1.5 {
            failures.push(format!(
                "{}: own init work {} ms is {ratio:.2}x the hello-world's (target <= 1.5x)",
                r.name,
                ms(r.init_own)
            ));
        }
        if r.rss_kb > 40 * 1024 {
            failures.push(format!("{}: peak RSS {} kB > 40 MB", r.name, r.rss_kb));
        }
    }
    println!("\ninit = median over the cold starts of exec to first GET /next; own = init minus time waiting on DynamoDB Local / Secrets Manager (init requests: {});",
        rows.iter().skip(1).map(|r| format!("{} {}", r.name, r.init_requests)).collect::<Vec<_>>().join(", "));
    println!("ddb/1st = DynamoDB requests of the first invocation; ddb/warm = per warm invocation; zip = deflated bootstrap.");
    if failures.is_empty() {
        println!("all limits met (own init <= 1.5x hello, zip <= 4 MB, RSS <= 40 MB, every answer as expected)");
    } else {
        println!("LIMITS NOT MET:");
        for f in &failures {
            println!("  {f}");
        }
        std::process::exit(1);
    }
}
