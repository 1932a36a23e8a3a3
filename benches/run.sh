#!/usr/bin/env bash
# The cold-start benchmark (not part of the test run): builds every function
# and a bare lambda_http hello-world with the release profile (x86_64 here),
# starts DynamoDB Local and moto, and runs the harness (bench/src/main.rs).
# Usage: bash benches/run.sh [--warm N] [--cold N] [--only FUNCTION]
#          [--rtt-ms N[,N...]] [--tls] [--memory-mb N[,N...]]
#   (defaults 300 warm, 15 rounds of cold starts, every function, plain
#   loopback). --rtt-ms puts every AWS endpoint behind a link of that round
#   trip (one whole measurement per value) and prints each function's cold
#   request against its physical limit; --tls terminates TLS there with a
#   throwaway CA the functions trust (SSL_CERT_FILE); --memory-mb holds each
#   function to that Lambda size's CPU share (a cgroup CPU quota; root).
#   docs/PERFORMANCE.md's tables: --rtt-ms 2,10 --tls, and
#   --rtt-ms 2 --tls --memory-mb 128,256,512,1024 --cold 5 --warm 100
#   (then python3 benches/cost.py). Profiling: BENCH_DEBUG=1
#   prints each init request and the functions' stderr (BENCH_RUST_LOG=info
#   adds their "init done" stage timings); BENCH_WRAP="strace -f -tt -o F"
#   runs each binary under a tool.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
echo "== building release binaries"
cargo build --release --quiet -p authorize -p token -p check_connection -p webhook -p sync -p refresh -p hello-lambda
cargo build --quiet -p syncaroo-bench
eval "$(bash scripts/local-aws.sh start)"
trap 'bash scripts/local-aws.sh stop' EXIT
# BENCH_PIN=1: the local servers stand in for AWS services on other
# machines, so with two or more CPUs they (every thread of every process) and
# the harness get CPU 0, and the harness starts each function (hello too)
# alone on the last CPU. Off by default: the functions then have both CPUs.
pin_tree() {
  taskset -a -p -c 0 "$1" >/dev/null 2>&1 || true
  for child in $(pgrep -P "$1"); do pin_tree "$child"; done
}
if [ "${BENCH_PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  for pidfile in "$LOCAL_AWS_STATE"/*.pid; do pin_tree "$(cat "$pidfile")"; done
  export BENCH_SERVER_CPU=0
  exec_prefix=(taskset -c 0)
else
  exec_prefix=()
fi
"${exec_prefix[@]}" ./target/debug/syncaroo-bench "$@"
echo "benchmark finished in $(( $(date +%s) - start )) s"
