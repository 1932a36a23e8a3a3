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
use serde_json::Value;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syncaroo_sim::server;
use syncaroo_tests::repo_root;

mod cases;
mod emulator;
mod limits;
mod loopback;
mod measure;
mod netem;
mod rig;
mod servers;

use cases::{Case, CASES};
use emulator::{emulate, Emulator};
use measure::{ddb_ops, function_cpu, peak_rss_kb, percentile, spawn_on_cpu, zipped_size};
use rig::{link_env, result_rows, rig};
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
    let (emu, mut answers, api, server) = start_emulator().await;
    for r in all {
        r.reset();
    }
    if let Some(q) = quota {
        q.enter().expect("join the CPU quota's cgroup");
    }
    let started = Instant::now();
    let mut child = spawn_function(&bin, case.name, env, &api, quota);
    let pid = child.id().unwrap_or(0);
    let Some(init_end) = init_ended(&emu, started).await else {
        row.errors.push("no GET /next within 20 s".into());
        let _ = child.kill().await;
        server.abort();
        return row;
    };
    row.init = init_end - started;
    // The secrets fetch and the DynamoDB warm-up overlap: a moment when
    // either is outstanding is waiting, counted once.
    let waits = servers.waiting(started, init_end);
    row.init_own = row.init.saturating_sub(waits);
    row.init_requests = all.iter().map(|r| r.between(started, init_end).len()).sum();
    if std::env::var("BENCH_DEBUG").is_ok() {
        debug_init(case.name, servers, started, init_end);
    }

    let events = repo_root().join("events");
    let first = Bytes::from(std::fs::read(events.join(first_event)).unwrap());
    let warm_ev = Bytes::from(std::fs::read(events.join(case.warm)).unwrap());
    let sent = invoke(&emu, 0, first);
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
    check_answer(case, "first", &body, &mut row.errors);
    row.first_ddb = ddb_ops(&ddb.between(sent, at + Duration::from_millis(1)));
    run_warm(case, &emu, &mut answers, servers, warm, warm_ev, &mut row).await;
    row.rss_kb = peak_rss_kb(pid);
    let _ = child.kill().await;
    server.abort();
    row
}

/// When the function's first `GET /next` arrived: the end of its init
/// (`None` after 20 s without one).
async fn init_ended(emu: &Emulator, started: Instant) -> Option<Instant> {
    loop {
        if let Some(t) = *emu.first_next.lock().unwrap() {
            return Some(t);
        }
        if started.elapsed() > Duration::from_secs(20) {
            return None;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// BENCH_DEBUG: the init's requests and what the links owed.
fn debug_init(name: &str, servers: &Servers, started: Instant, init_end: Instant) {
    let all = [&servers.ddb, &servers.sm, &servers.eb];
    let calls: Vec<_> = all.iter().flat_map(|r| r.calls()).collect();
    debug_calls(name, "", &calls, started);
    debug_owed(name, &servers.owed, started, Instant::now());
    eprintln!(
        "  {name} init end +{:?} started {started:?}",
        init_end - started
    );
}

/// Hands the function invocation `n` with `body`; when it was handed over.
fn invoke(emu: &Emulator, n: usize, body: Bytes) -> Instant {
    let id = format!("req-{n}");
    emu.queue.lock().unwrap().push_back((id, body));
    emu.ready.notify_waiters();
    Instant::now()
}

/// `warm` invocations of `event`, one after another: their latency (p50,
/// p99), the servers' time in each (median) and DynamoDB requests each.
async fn run_warm(
    case: &Case,
    emu: &Emulator,
    answers: &mut Answers,
    servers: &Servers,
    warm: usize,
    event: Bytes,
    row: &mut Row,
) {
    let mut lat = Vec::with_capacity(warm);
    let mut served = Vec::with_capacity(warm);
    let warm_from = Instant::now();
    for n in 1..=warm {
        let sent = invoke(emu, n, event.clone());
        let Some((_, body, at)) = answers.recv().await else {
            break;
        };
        lat.push(at - sent);
        served.push(servers.waiting(sent, at));
        if n == 1 {
            check_answer(case, "warm", &body, &mut row.errors);
        }
    }
    row.warm_ddb =
        ddb_ops(&servers.ddb.between(warm_from, Instant::now())) as f64 / warm.max(1) as f64;
    lat.sort();
    served.sort();
    row.warm_server = percentile(&served, 0.50);
    row.p50 = percentile(&lat, 0.50);
    row.p99 = percentile(&lat, 0.99);
}

/// Records an answer `case` does not accept, as `which` (first or warm).
fn check_answer(case: &Case, which: &str, body: &[u8], errors: &mut Vec<String>) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if !(case.ok)(&v) {
        let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
        errors.push(format!("{which} answer: {text}"));
    }
}

type Answers = mpsc::UnboundedReceiver<(String, Bytes, Instant)>;

/// A Lambda Runtime API emulator on a loopback port: its state, the
/// function's answers, its address and its accept loop.
async fn start_emulator() -> (Arc<Emulator>, Answers, String, tokio::task::JoinHandle<()>) {
    let (tx, answers) = mpsc::unbounded_channel();
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
    (emu, answers, api, server)
}

/// Starts the function's bootstrap against the emulator at `api`: pinned to
/// its CPU, or inside the CPU quota (which this process joined to start it
/// and leaves here) when one is given.
fn spawn_function(
    bin: &Path,
    name: &str,
    env: &[(String, String)],
    api: &str,
    quota: Option<&measure::CpuQuota>,
) -> tokio::process::Child {
    // BENCH_WRAP="strace -f -tt -o /tmp/st" (or perf record ...) runs the
    // binary under a profiler; the numbers then include its overhead.
    let wrap: Vec<String> = std::env::var("BENCH_WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut child = match wrap.split_first() {
        Some((prog, args)) => {
            let mut c = tokio::process::Command::new(prog);
            c.args(args).arg(bin);
            c
        }
        None => tokio::process::Command::new(bin),
    };
    child
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
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
    spawned.unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
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
    let cli = <Cli as clap::Parser>::parse();
    let bin_dir = cli
        .bin_dir
        .clone()
        .unwrap_or_else(|| repo_root().join("target/release"));
    let rig = rig().await;
    // The proxies' listeners keep kernel stamping on for the whole run.
    if !syncaroo_tests::ktime::wait_until_live().await {
        println!("warning: no kernel receive timestamps; arrivals are timed when read");
    }
    println!(
        "benchmark: {} rounds of cold starts (hello then each function; median init) and {} warm invocations per function; binaries from {}",
        cli.cold, cli.warm, bin_dir.display()
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
            cli.only
                .as_deref()
                .is_none_or(|o| o == c.name || c.name == "hello")
        })
        .collect();
    let ca = cli
        .tls
        .then(|| netem::throwaway_ca(&repo_root().join("target/bench-tls")));
    let links: Vec<Option<u64>> = match cli.rtt_ms.is_empty() {
        true => vec![None],
        false => cli.rtt_ms.iter().copied().map(Some).collect(),
    };
    let sizes: Vec<Option<u64>> = match cli.memory_mb.is_empty() {
        true => vec![None],
        false => cli.memory_mb.iter().copied().map(Some).collect(),
    };
    let mut failures = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    for rtt in links {
        let env = link_env(&rig, rtt, ca.as_ref()).await;
        for &memory in &sizes {
            let rows = measure_at(&cli, &cases, &bin_dir, &env, &rig.servers, memory).await;
            results.extend(result_rows(&rows, rtt, cli.tls, memory));
            match rtt {
                None => failures.extend(loopback::print(&rows)),
                Some(ms) => limits::print(&rows, ms, cli.tls),
            }
        }
    }
    finish(&results, &failures, cli.rtt_ms.is_empty());
}

/// Every case measured with the functions held to `memory` MB's CPU share
/// (none: unlimited).
async fn measure_at(
    cli: &Cli,
    cases: &[&Case],
    bin_dir: &Path,
    env: &[(String, String)],
    servers: &Servers,
    memory: Option<u64>,
) -> Vec<Row> {
    let quota = memory.map(|mb| {
        measure::CpuQuota::new(mb)
            .unwrap_or_else(|e| panic!("a CPU quota needs a writable cgroup (run as root): {e}"))
    });
    let mut env = env.to_vec();
    if let Some(mb) = memory {
        env.retain(|(k, _)| k != "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
        env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), mb.to_string()));
        println!(
            "\n== {mb} MB: CPU held to {mb}/{} of one",
            measure::LAMBDA_VCPU_MB
        );
    }
    measure(
        cases,
        cli.cold as usize,
        cli.warm,
        bin_dir,
        &env,
        servers,
        quota.as_ref(),
    )
    .await
}

/// Writes the results file (for benches/cost.py and docs/PERFORMANCE.md)
/// and exits 1 when a loopback limit was not met.
fn finish(results: &[Value], failures: &[String], loopback: bool) {
    let out = repo_root().join("target/bench-results.json");
    std::fs::write(&out, serde_json::to_string_pretty(results).unwrap()).expect("results file");
    println!("\nresults: {}", out.display());
    if failures.is_empty() {
        if loopback {
            println!("all limits met (zip <= 4 MB, RSS <= 40 MB, every answer as expected)");
        }
    } else {
        println!("LIMITS NOT MET:");
        for f in failures {
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
