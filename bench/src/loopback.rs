//! The loopback table (no network delay): own init against the
//! hello-world's, and the limits the benchmark held before the network
//! model (zip <= 4 MB, RSS <= 40 MB; own init against the hello-world's is
//! reported, no longer held: the goal is now the network table's
//! cold-to-limit ratio, limits.rs).

use super::measure::ms;
use super::Row;

/// The loopback table (no network delay) and its limits.
pub fn print(rows: &[Row]) -> Vec<String> {
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
    for r in rows {
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
        if r.rss_kb > 40 * 1024 {
            failures.push(format!("{}: peak RSS {} kB > 40 MB", r.name, r.rss_kb));
        }
    }
    println!("\ninit = median over the cold starts of exec to first GET /next; own = init minus time waiting on DynamoDB Local / Secrets Manager (init requests: {});",
        rows.iter().skip(1).map(|r| format!("{} {}", r.name, r.init_requests)).collect::<Vec<_>>().join(", "));
    println!("ddb/1st = DynamoDB requests of the first invocation; ddb/warm = per warm invocation; zip = deflated bootstrap.");
    failures
}
