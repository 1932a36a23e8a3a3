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

/// The CPU share of a Lambda with `memory_mb` of memory (AWS: 1,769 MB is
/// one vCPU, less is proportionally less), enforced with a CFS quota in a
/// cgroup of its own (cgroup v1's `cpu.cfs_quota_us`, or v2's `cpu.max`).
/// The period is 20 ms, the one public measurements of Lambda's throttling
/// pauses show (AWS documents the share, not the period).
pub struct CpuQuota {
    dir: std::path::PathBuf,
    v2: bool,
}

pub const LAMBDA_VCPU_MB: u64 = 1769;
const PERIOD_US: u64 = 20_000;

impl CpuQuota {
    pub fn new(memory_mb: u64) -> std::io::Result<Self> {
        let quota = (PERIOD_US * memory_mb / LAMBDA_VCPU_MB).max(1000);
        let name = format!("syncaroo-bench-{}-{memory_mb}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
            return Ok(Self { dir, v2: false });
        }
        let dir = Path::new("/sys/fs/cgroup").join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cpu.max"), format!("{quota} {PERIOD_US}"))?;
        Ok(Self { dir, v2: true })
    }

    /// Moves the calling thread into the quota's cgroup, so that a child
    /// it forks starts there (a child starts in its parent thread's
    /// cgroup). cgroup v1 only: v2 moves whole processes (`adopt`). The
    /// move itself can take milliseconds (the kernel waits for an RCU
    /// grace period), so it happens before the clock starts.
    pub fn enter(&self) -> std::io::Result<()> {
        if self.v2 {
            return Ok(());
        }
        std::fs::write(self.dir.join("tasks"), nix::unistd::gettid().to_string())
    }

    /// Moves the calling thread back out, and with v2 the child in.
    pub fn leave(&self, child: Option<u32>) -> std::io::Result<()> {
        if self.v2 {
            if let Some(pid) = child {
                std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())?;
            }
            return Ok(());
        }
        let root = self.dir.parent().expect("cpu root").join("tasks");
        std::fs::write(root, nix::unistd::gettid().to_string())
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}
