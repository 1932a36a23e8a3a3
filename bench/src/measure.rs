//! What the benchmark measures with, apart from the clock: CPU pinning,
//! percentiles, the zipped size, peak RSS, and DynamoDB operation counts.

use std::path::Path;
use std::time::Duration;

/// With `BENCH_PIN=1`, `benches/run.sh` pins the local servers and this
/// harness to CPU 0 and sets `BENCH_SERVER_CPU`; then each function (the
/// hello-world too) runs alone on the last CPU, as if the servers were on
/// other machines, as AWS's are.
pub fn function_cpu() -> Option<usize> {
    std::env::var("BENCH_SERVER_CPU").ok()?;
    let n = std::thread::available_parallelism().ok()?.get();
    (n >= 2).then_some(n - 1)
}

/// Spawns `cmd` pinned to `cpu`: the calling thread takes that CPU while
/// it forks (a child inherits its parent thread's affinity), then gets its
/// own set back.
pub fn spawn_on_cpu(
    cmd: &mut tokio::process::Command,
    cpu: usize,
) -> std::io::Result<tokio::process::Child> {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let this_thread = Pid::from_raw(0);
    let before = sched_getaffinity(this_thread).map_err(std::io::Error::from)?;
    let mut only = CpuSet::new();
    only.set(cpu).map_err(std::io::Error::from)?;
    sched_setaffinity(this_thread, &only).map_err(std::io::Error::from)?;
    let child = cmd.spawn();
    sched_setaffinity(this_thread, &before).map_err(std::io::Error::from)?;
    child
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn zipped_size(bin: &Path) -> u64 {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))",
        )
        .arg(bin)
        .output()
        .expect("python3 zips");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

pub fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn ddb_ops(calls: &[syncaroo_tests::ddb_proxy::Call]) -> usize {
    // Both proxies record; DynamoDB ops are the ones that are not
    // Secrets Manager's.
    calls.iter().filter(|c| c.op != "GetSecretValue").count()
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
