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
use syncaroo_tests::ddb_proxy::start_for;
use syncaroo_tests::repo_root;

mod cases;
mod emulator;
mod limits;
mod loopback;
mod measure;
mod netem;
mod servers;

use cases::{Case, CASES};
use emulator::{emulate, Emulator};
use measure::{ddb_ops, function_cpu, peak_rss_kb, percentile, spawn_on_cpu, zipped_size};
use servers::{debug_calls, debug_owed, Servers};
use tokio::sync::{mpsc, Notify};

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
    /// Exec to the first answer (median of init + first invocation).
    cold_request: Duration,
    /// Time the servers (DynamoDB Local, moto) spent answering on the
    /// cold request's path, and per warm invocation (median).
    cold_server: Duration,
    warm_server: Duration,
    errors: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
async fn run_case(
    case: &Case,
    bin_dir: &Path,
    env: &[(String, String)],
    servers: &Servers,
    warm: usize,
    first_event: &str,
    quota: Option<&measure::CpuQuota>,
) -> Row {
    let ddb = &servers.ddb;
    let all = [&servers.ddb, &servers.sm, &servers.eb];
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
    for r in all {
        r.reset();
    }
    if let Some(q) = quota {
        q.enter().expect("join the CPU quota's cgroup");
    }
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
    let spawned = match (quota, function_cpu()) {
        (Some(_), _) | (None, None) => child.spawn(),
        (None, Some(cpu)) => spawn_on_cpu(&mut child, cpu),
    };
    if let Some(q) = quota {
        let pid = spawned.as_ref().ok().and_then(|c| c.id());
        q.leave(pid).expect("leave the CPU quota's cgroup");
    }
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
    let waits = servers.waiting(started, init_end);
    row.init_own = row.init.saturating_sub(waits);
    row.init_requests = all.iter().map(|r| r.between(started, init_end).len()).sum();
    if std::env::var("BENCH_DEBUG").is_ok() {
        let calls: Vec<_> = all.iter().flat_map(|r| r.calls()).collect();
        debug_calls(case.name, "", &calls, started);
        debug_owed(case.name, &servers.owed, started, Instant::now());
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
    if std::env::var("BENCH_DEBUG").is_ok() {
        let calls: Vec<_> = all.iter().flat_map(|r| r.between(sent, at)).collect();
        debug_calls(case.name, "first invocation ", &calls, sent);
        debug_owed(case.name, &servers.owed, sent, at);
        eprintln!("  {} first answered +{:?}", case.name, at - sent);
    }
    // What the far side (behind a link: TLS server, hops and server; on
    // loopback: the servers) took on the cold request's path: part of the
    // limit, not ours.
    row.cold_server = servers.on_cold_path(&netem::Cold {
        started,
        init_end,
        sent,
        at,
    });
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
    let mut served = Vec::with_capacity(warm);
    let warm_from = Instant::now();
    for n in 1..=warm {
        let sent = invoke(n, warm_ev.clone());
        let Some((_, body, at)) = answers.recv().await else {
            break;
        };
        lat.push(at - sent);
        served.push(servers.waiting(sent, at));
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
    served.sort();
    row.warm_server = percentile(&served, 0.50);
    row.p50 = percentile(&lat, 0.50);
    row.p99 = percentile(&lat, 0.99);
    row.rss_kb = peak_rss_kb(pid);
    let _ = child.kill().await;
    server.abort();
    row
}

/// What `benches/run.sh` passes on (it starts the local AWS stand-ins and
/// builds the release binaries first).
#[derive(clap::Parser)]
#[command(
    name = "syncaroo-bench",
    about = "Cold starts and warm latency of each function under a local Lambda Runtime API"
)]
struct Cli {
    /// Warm invocations per function.
    #[arg(long, default_value_t = 300)]
    warm: usize,
    /// Rounds of cold starts (hello, then each function).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    cold: u64,
    /// Where the bootstraps are (default: target/release).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// That function (and the hello-world baseline) alone.
    #[arg(long, value_name = "FUNCTION")]
    only: Option<String>,
    /// Behind links of these round-trip times, one whole measurement each.
    #[arg(long, value_name = "MS", value_delimiter = ',')]
    rtt_ms: Vec<u64>,
    /// TLS on those links.
    #[arg(long)]
    tls: bool,
    /// Each function held to that Lambda size's CPU share, one whole
    /// measurement per size.
    #[arg(long, value_name = "MB", value_delimiter = ',')]
    memory_mb: Vec<u64>,
}

#[tokio::main]
async fn main() {
    let Cli {
        warm,
        cold,
        bin_dir,
        only,
        rtt_ms: rtts,
        tls,
        memory_mb: memories,
    } = <Cli as clap::Parser>::parse();
    let cold = cold as usize;
    let bin_dir = bin_dir.unwrap_or_else(|| repo_root().join("target/release"));
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
    // Change events (check_connection's first confirmation, the sync
    // worker's status change) go to a bus of their own on moto.
    let eb_url = std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").expect("run through benches/run.sh");
    let (eb_proxy, eb) = start_for(&eb_url).await;
    let bus = format!("bench-bus-{}", std::process::id());
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("bus");
    let base_env: Vec<(String, String)> = vec![
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
        ("LOGIN_URL".into(), "https://yourapp.example/login".into()),
        ("EVENT_BUS_NAME".into(), bus),
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
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| {
            only.as_deref()
                .is_none_or(|o| o == c.name || c.name == "hello")
        })
        .collect();
    let ca = tls.then(|| netem::throwaway_ca(&repo_root().join("target/bench-tls")));
    let links: Vec<Option<u64>> = if rtts.is_empty() {
        vec![None]
    } else {
        rtts.iter().copied().map(Some).collect()
    };
    let servers = Servers {
        ddb,
        sm,
        eb,
        owed: netem::Owed::default(),
    };
    let mut failures = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    for rtt in links {
        let mut env = base_env.clone();
        let proxies = [
            ("AWS_ENDPOINT_URL_DYNAMODB", &ddb_proxy),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &sm_proxy),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", &eb_proxy),
        ];
        for (var, proxy) in proxies {
            let url = match rtt {
                None => proxy.clone(),
                Some(ms) => {
                    let tls = ca.as_ref().map(|(_, cfg)| cfg);
                    netem::endpoint(proxy, Duration::from_millis(ms), tls, &servers.owed).await
                }
            };
            env.push((var.into(), url));
        }
        if let Some((pem, _)) = &ca {
            env.push(("SSL_CERT_FILE".into(), pem.display().to_string()));
        }
        let sizes: Vec<Option<u64>> = if memories.is_empty() {
            vec![None]
        } else {
            memories.iter().copied().map(Some).collect()
        };
        for memory in sizes {
            let quota = memory.map(|mb| {
                measure::CpuQuota::new(mb).unwrap_or_else(|e| {
                    panic!("a CPU quota needs a writable cgroup (run as root): {e}")
                })
            });
            let mut env = env.clone();
            if let Some(mb) = memory {
                env.retain(|(k, _)| k != "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
                env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), mb.to_string()));
                println!(
                    "\n== {mb} MB: CPU held to {mb}/{} of one",
                    measure::LAMBDA_VCPU_MB
                );
            }
            let rows = measure(&cases, cold, warm, &bin_dir, &env, &servers, quota.as_ref()).await;
            for r in &rows {
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                results.push(json!({
                    "rttMs": rtt, "tls": tls, "memoryMb": memory,
                    "function": r.name, "coldMs": ms(r.cold_request), "initMs": ms(r.init),
                    "firstMs": ms(r.first), "p50Ms": ms(r.p50), "p99Ms": ms(r.p99),
                    "zipBytes": r.zip_bytes, "rssKb": r.rss_kb,
                    "coldServerMs": ms(r.cold_server), "warmServerMs": ms(r.warm_server),
                }));
            }
            match rtt {
                None => failures.extend(loopback::print(&rows)),
                Some(ms) => limits::print(&rows, ms, tls),
            }
        }
    }
    // For benches/cost.py and the README's numbers.
    let out = repo_root().join("target/bench-results.json");
    std::fs::write(&out, serde_json::to_string_pretty(&results).unwrap()).expect("results file");
    println!("\nresults: {}", out.display());
    if failures.is_empty() {
        if rtts.is_empty() {
            println!("all limits met (zip <= 4 MB, RSS <= 40 MB, every answer as expected)");
        }
    } else {
        println!("LIMITS NOT MET:");
        for f in &failures {
            println!("  {f}");
        }
        std::process::exit(1);
    }
}

/// A flag's comma-separated list of whole numbers; panics with `usage`.
/// Every function's cold starts and warm invocations under `env`.
/// Cold starts are interleaved: each round starts hello and then every
/// function once, so a noisy moment on this shared machine hits them all
/// alike instead of one function's whole series.
#[allow(clippy::too_many_arguments)]
async fn measure(
    cases: &[&Case],
    cold: usize,
    warm: usize,
    bin_dir: &Path,
    env: &[(String, String)],
    servers: &Servers,
    quota: Option<&measure::CpuQuota>,
) -> Vec<Row> {
    let mut runs: Vec<Vec<Row>> = cases.iter().map(|_| Vec::new()).collect();
    for i in 0..cold {
        for (case, runs) in cases.iter().zip(runs.iter_mut()) {
            // Every cold start gets a freshly seeded table, so each sees the
            // state the events expect (an unredeemed code, live tokens...).
            let table = format!(
                "bench-{}-{}-{i}-{}",
                std::process::id(),
                case.name,
                syncaroo_shared::crypto::random_b64(4).replace(['-', '_'], "x")
            );
            syncaroo_tests::seed::seed_events(&table).await;
            let mut env = env.to_vec();
            env.retain(|(k, _)| k != "TABLE_NAME");
            env.push(("TABLE_NAME".into(), table));
            let n = if i + 1 == cold { warm } else { 5 };
            runs.push(run_case(case, bin_dir, &env, servers, n, case.first, quota).await);
        }
    }
    let mut rows = Vec::new();
    for (case, mut runs) in cases.iter().zip(runs) {
        let median = |f: &dyn Fn(&Row) -> Duration| {
            let mut v: Vec<Duration> = runs.iter().map(f).collect();
            v.sort();
            v[v.len() / 2]
        };
        let (init, own) = (median(&|r| r.init), median(&|r| r.init_own));
        let first = median(&|r| r.first);
        let cold_request = median(&|r| r.init + r.first);
        let cold_server = median(&|r| r.cold_server);
        let mut row = runs.pop().expect("at least one run");
        row.errors
            .extend(runs.iter().flat_map(|r| r.errors.clone()));
        row.first = first;
        row.init = init;
        row.init_own = own;
        row.cold_request = cold_request;
        row.cold_server = cold_server;
        eprintln!("  measured {}", case.name);
        rows.push(row);
    }
    rows
}
