#!/usr/bin/env bash
# The cold-start benchmark (not part of the test run): builds every function
# and a bare lambda_http hello-world with the release profile (x86_64 here),
# starts DynamoDB Local and moto, and runs the harness (bench/src/main.rs).
# Usage: bash benches/run.sh [--warm N] [--cold N] [--only FUNCTION]
#   (defaults 300 warm, 5 cold, every function). Profiling: BENCH_DEBUG=1
#   prints each init request and the functions' stderr (BENCH_RUST_LOG=info
#   adds their "init done" stage timings); BENCH_WRAP="strace -f -tt -o F"
#   runs each binary under a tool.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# aws-lc's CPU-jitter entropy costs ~50 ms at start-up; Lambda has getrandom.
export AWS_LC_SYS_NO_JITTER_ENTROPY=1
echo "== building release binaries"
cargo build --release --quiet -p authorize -p token -p check_connection -p webhook -p sync -p refresh -p hello-lambda
cargo build --quiet -p syncaroo-bench
eval "$(bash scripts/local-aws.sh start)"
trap 'bash scripts/local-aws.sh stop' EXIT
./target/debug/syncaroo-bench "$@"
echo "benchmark finished in $(( $(date +%s) - start )) s"
