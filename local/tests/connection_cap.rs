//! The runner under a flood of half-sent requests (correctness issue,
//! item 17), black-box against the binary's address: held connections are
//! capped (`--max-connections`; the rest wait in the kernel's backlog, not
//! in a file descriptor each), and when the process does run out of
//! descriptors its accept loop backs off instead of spinning a core, the
//! runner lives on, and once the flood ends it answers again.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The two tests run one after the other: each floods a runner of its own,
/// and together on a busy machine they starved each other's recovery.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The runner under `ulimit -n nofile`, with `args`; its address.
fn runner(nofile: u32, args: &[&str]) -> (Child, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {nofile} && exec \"$0\" serve --addr 127.0.0.1:0 \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_syncaroo-local"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(
                std::env::temp_dir().join(format!("connection-cap-{nofile}.log")),
            )
            .map(Stdio::from)
            .unwrap_or(Stdio::null()),
        )
        .spawn()
        .expect("the runner starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let setup: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("no setup block ({e}): {line:?}"));
    let addr = setup["siteUri"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    (child, addr)
}

/// `n` connections, each holding a request whose body never comes.
fn half_sent(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(
                b"POST /api/update HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\":",
            )
            .ok()?;
            Some(s)
        })
        .collect()
}

/// The status of a plain request, or `None` when no answer came in `wait`.
fn status(addr: &str, wait: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(b"GET /api/check_connection HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) the process has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of proc(5), counted from the state (field 3).
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // 64 descriptors: the flood of 150 exhausts them.
    let (child, addr) = runner(64, &[]);
    assert_eq!(status(&addr, Duration::from_secs(5)), Some(401));
    let flood = half_sent(&addr, 150);
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_secs(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_secs(child.id()) - before;
    drop(flood);
    let mut child = child;
    let alive = child.try_wait().unwrap().is_none();
    // The closed connections drain at the loop's pace: ask again until it
    // answers, within a bound far above that.
    let recovered = (0..40).find_map(|_| {
        let s = status(&addr, Duration::from_secs(3));
        if s.is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    });
    stop(child);
    assert!(
        used < 0.5,
        "the runner used {used:.2} s of CPU in 2 s while out of descriptors"
    );
    assert!(alive, "the runner survived running out of descriptors");
    assert_eq!(recovered, Some(401), "it answers again after the flood");
}

#[test]
fn held_connections_are_capped_and_the_rest_wait() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (child, addr) = runner(1024, &["--max-connections", "20"]);
    let held = half_sent(&addr, 20);
    std::thread::sleep(Duration::from_millis(200));
    let waiting = std::thread::spawn({
        let addr = addr.clone();
        move || status(&addr, Duration::from_secs(20))
    });
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !waiting.is_finished(),
        "a 21st connection was served while 20 were held"
    );
    drop(held);
    let answer = waiting.join().unwrap();
    stop(child);
    assert_eq!(answer, Some(401), "served once the held ones closed");
}
