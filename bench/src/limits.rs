//! The physical limit of each function's request paths on a network of a
//! given round-trip time: what no implementation of the same protocol and
//! design could beat, so the benchmark can say how far each function is
//! from it (README, Performance).
//!
//! Cold request (exec to the first response) = the hello-world's cold
//! request (exec, runtime start, its first answer: no network) + RTT x the
//! round trips on the critical path no function of this design avoids:
//!
//! * a new connection: TCP's handshake (1) and, with TLS, TLS 1.3's (1);
//!   the functions open their DynamoDB connections during init, in
//!   parallel with the secrets fetch, so one connection setup is on the
//!   path;
//! * the secrets fetch (1): every function needs its keys before it can
//!   verify or issue anything;
//! * the first invocation's sequential requests (below), each 1;
//! * a change event (check_connection's first confirmation, the sync
//!   worker's applied status) needs a connection to EventBridge: opened
//!   during init in parallel, so only its request (1) is on the path;
//!
//! plus the far side's time on the path: everything behind the link (the
//! TLS server's handshake work, the benchmark's hops, DynamoDB Local or
//! moto answering), which stands in for AWS's side and is not the
//! function's to shave ([`crate::netem::Owed::on_cold_path`]).
//!
//! Warm p50 limit = RTT x the warm invocation's sequential requests + the
//! far side's time.

/// Sequential requests the protocol needs, per function, for the
/// benchmark's first and warm events (see docs/ARCHITECTURE.md, request
/// paths). `secrets`: whether its init fetches secrets (hello does not).
pub struct Needs {
    pub secrets: bool,
    pub first: usize,
    pub warm: usize,
}

pub fn needs(function: &str) -> Needs {
    let n = |first, warm| Needs {
        secrets: true,
        first,
        warm,
    };
    match function {
        "hello" => Needs {
            secrets: false,
            first: 0,
            warm: 0,
        },
        // No session: a redirect; the consent page: rendered from the
        // verified session cookie. Neither reads the table.
        "authorize" => n(0, 0),
        // One transaction redeems the code; one rotates the refresh token.
        "token" => n(1, 1),
        // The token's item; then confirm and list in parallel; the first
        // confirmation's PutEvents.
        "check_connection" => n(3, 2),
        // The token's item; the status target's notification.
        "webhook" => n(2, 2),
        // The status target and connection; the owner's location and the
        // attempt mark; the status put; its PutEvents; the target done.
        // Redelivered, the first read alone finds it covered.
        "sync" => n(5, 1),
        // The credentials item.
        "refresh" => n(1, 1),
        other => panic!("no limit model for {other}"),
    }
}

/// Round trips of a new connection's setup: TCP, and TLS 1.3 when used.
pub fn setup_round_trips(tls: bool) -> usize {
    1 + usize::from(tls)
}

/// The cold-request limit in round trips beyond the hello-world's.
pub fn cold_round_trips(function: &str, tls: bool) -> usize {
    let n = needs(function);
    if !n.secrets {
        return n.first;
    }
    setup_round_trips(tls) + 1 + n.first
}

/// What a row is held to behind a link of `rtt`: the cold request's round
/// trips and limit (hello's cold request + RTT x those round trips + the
/// far side's time on its path), its ratio to that, and the warm limit.
pub struct Limit {
    pub round_trips: usize,
    pub cold: std::time::Duration,
    pub ratio: f64,
    pub warm: std::time::Duration,
}

pub fn limit(rows: &[super::Row], r: &super::Row, rtt: std::time::Duration, tls: bool) -> Limit {
    let hello = rows
        .iter()
        .find(|r| r.name == "hello")
        .expect("hello is measured first")
        .cold_request;
    let round_trips = cold_round_trips(&r.name, tls);
    let cold = hello + rtt * round_trips as u32 + r.cold_server;
    Limit {
        round_trips,
        cold,
        ratio: r.cold_request.as_secs_f64() / cold.as_secs_f64().max(1e-9),
        warm: rtt * needs(&r.name).warm as u32 + r.warm_server,
    }
}

/// The table at one round-trip time: per function the cold request and its
/// limit, the warm p50/p99 and theirs; last, the worst cold-to-limit ratio.
pub fn print(rows: &[super::Row], rtt_ms: u64, tls: bool) {
    use super::measure::ms;
    let rtt = std::time::Duration::from_millis(rtt_ms);
    println!(
        "\nRTT {rtt_ms} ms, {}: cold = exec to the first answer (median); limit = hello's cold request + RTT x unavoidable round trips + the far side's time on the path (TLS server, hops, server)",
        if tls { "TLS 1.3" } else { "plain TCP" }
    );
    println!(
        "{:<17} {:>8} {:>6} {:>9} {:>9} {:>6} {:>8} {:>8} {:>10} {:>8}",
        "function",
        "cold ms",
        "RTTs",
        "far ms",
        "limit ms",
        "ratio",
        "p50 ms",
        "p99 ms",
        "warm limit",
        "init ms"
    );
    let mut worst: Option<(f64, &str)> = None;
    for r in rows {
        let Limit {
            round_trips: trips,
            cold: limit,
            ratio,
            warm: warm_limit,
        } = self::limit(rows, r, rtt, tls);
        println!(
            "{:<17} {:>8} {:>6} {:>9} {:>9} {:>6.2} {:>8} {:>8} {:>10} {:>8}",
            r.name,
            ms(r.cold_request),
            trips,
            ms(r.cold_server),
            ms(limit),
            ratio,
            ms(r.p50),
            ms(r.p99),
            ms(warm_limit),
            ms(r.init)
        );
        for e in &r.errors {
            println!("  error: {}: {e}", r.name);
        }
        if r.name != "hello" && worst.is_none_or(|(w, _)| ratio > w) {
            worst = Some((ratio, &r.name));
        }
    }
    if let Some((ratio, name)) = worst {
        println!("worst cold-to-limit ratio: {ratio:.2} ({name})");
    }
}
