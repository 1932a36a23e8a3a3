#!/usr/bin/env bash
# The date-sensitive tests with the clock moved far ahead.
#
# Every test that writes to DynamoDB Local writes `ttl` attributes, and
# DynamoDB Local's TTL sweeper deletes items whose `ttl` is in the past by
# *its* clock at random moments. A fixture written at a fixed date therefore
# passes until that date goes by and then fails at random. This runs a
# second DynamoDB Local and Secrets Manager server, and the tests that use
# them, under libfaketime (Debian's `faketime`) with the clock DATE_SHIFT
# ahead (default +400 days), so such a time bomb goes off today instead of
# on some later day. The suites run twice because the sweeper is random.
#
set -euo pipefail
cd "$(dirname "$0")/.."
SHIFT="${DATE_SHIFT:-+400d}"
# libfaketime itself, preloaded, rather than its `faketime` wrapper: the
# wrapper keeps a semaphore and shared memory named by its process id in
# /dev/shm, leaves them behind when its process is killed (as the servers
# are at stop), and refuses to start when a later process reuses that id
# ("sem_open: File exists"). A relative offset needs none of that.
lib=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime\.so\.1$' | head -n 1 || true)
[[ -n "$lib" ]] || lib=$(find /usr/lib /usr/lib64 -name libfaketime.so.1 2>/dev/null | head -n 1 || true)
[[ -n "$lib" ]] || { echo "date shift: libfaketime missing (apt-get install faketime)"; exit 1; }
shifted=(env "LD_PRELOAD=$lib" "FAKETIME=$SHIFT")
# The monotonic clock moves too, by the same offset: with only the wall
# clock faked (FAKETIME_DONT_FAKE_MONOTONIC=1) the JVM of DynamoDB Local
# spins at 200% CPU and never answers, and libfaketime 0.9.10 fakes some of
# a Rust test's monotonic reads and not others.
unset FAKETIME_DONT_FAKE_MONOTONIC
# Its own pair of servers: local-aws.sh start gives every start a state
# directory of its own, and stop ends that pair only.

echo "date shift: clock $SHIFT: $("${shifted[@]}" date -u +%FT%TZ) (real $(date -u +%FT%TZ))"
eval "$(LOCAL_AWS_WRAP="${shifted[*]}" bash scripts/local-aws.sh start)"
trap 'bash scripts/local-aws.sh stop' EXIT
export SYNCAROO_REQUIRE_LOCAL_AWS=1

# Built normally, run under the shifted clock: cargo itself is not run
# under the shifted clock (its fingerprints would see every output as from the
# future, and it rebuilds).
suites=(round_trips store_conformance race syncaroo_credentials secrets_manager)
args=(); for t in "${suites[@]}"; do args+=(--test "$t"); done
mapfile -t bins < <(cargo test -q -p syncaroo-tests "${args[@]}" --no-run --message-format=json |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
[[ ${#bins[@]} -eq ${#suites[@]} ]] || { echo "date shift: expected ${#suites[@]} test binaries, got ${#bins[@]}"; exit 1; }
failed=0
for run in 1 2; do
  for bin in "${bins[@]}"; do
    echo "date shift: run $run: $(basename "$bin")"
    (cd tests && "${shifted[@]}" "$bin" 2>&1) || failed=$((failed + 1))
  done
done
[[ $failed -eq 0 ]] || { echo "date shift: $failed suite runs failed with the clock at $SHIFT"; exit 1; }
echo "date shift: every suite passed twice with the clock at $SHIFT"
