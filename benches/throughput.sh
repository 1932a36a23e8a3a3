#!/usr/bin/env bash
# Throughput benchmark: the webhook ack path under bursts of concurrent
# deliveries and the sync worker against a 50 ms Syncaroo API, both behind
# the latency proxy (tests/src/bin/throughput.rs). Arguments go to it:
#   bash benches/throughput.sh [--rtt-ms 2] [--api-ms 50] [--burst 200] [--rounds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p syncaroo-tests --bin throughput
eval "$(bash scripts/local-aws.sh start)"
trap 'bash scripts/local-aws.sh stop' EXIT
target/release/throughput "$@"
