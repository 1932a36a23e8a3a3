#!/usr/bin/env python3
"""The cost of one million data webhooks end to end (ack, sync, change
event), from the durations the benchmark measured.

Usage: python3 benches/cost.py [--choose] [target/bench-results.json]
       (after `bash benches/run.sh --memory-mb 128,256,512,1024 --rtt-ms 2 --tls`)
       --choose prints each function's cold request and warm p50 per size
       and the size the rule in `choose` picks (what template.yaml sets).

Per webhook, worst case (no coalescing: every notification causes its own
fetch of one page):
  * webhook function: one warm invocation (its measured p50 at the memory
    size template.yaml gives it);
  * sync function: one invocation doing the data path; its duration is the
    measured cold-path sync (attempt mark, store, change event, done: the
    benchmark's first sync invocation, at the template's memory) plus one
    Syncaroo page answered in SYNCAROO_PAGE_MS;
  * DynamoDB on-demand: the request units of docs/ARCHITECTURE.md's request
    paths (items under 1 KB written, 4 KB read);
  * EventBridge: one custom event (under 64 KB).
Prices: us-east-1, list prices as published (Lambda x86_64 and arm64 per
GB-second and per request, DynamoDB on-demand after the November 2024
reduction, EventBridge custom events). Billed duration is rounded up to
the millisecond.
"""
import json
import math
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SYNCAROO_PAGE_MS = 50.0
LAMBDA_GB_S = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_REQUEST = 0.20 / 1e6
DDB_WRU = 0.625 / 1e6
DDB_RRU = 0.125 / 1e6
EVENTBRIDGE_EVENT = 1.00 / 1e6

# Request units per webhook (docs/ARCHITECTURE.md, request paths).
ACK_RRU = 1          # the token's item, strongly consistent, < 4 KB
ACK_WRU = 2          # the target's NOTE (< 1 KB) and its index entry
SYNC_RRU = 1 + 1 + 0.5  # the target (consistent Query), the credentials, the connection (eventually consistent)
SYNC_WRU = 1 + 1 + 1    # attempt mark, the data (< 1 KB), STATE


def memory_sizes():
    """MemorySize per function's binary from template.yaml (its own, else
    Globals.Function's)."""
    default, sizes, binary, own = None, {}, None, None
    section = None
    for line in (ROOT / "template.yaml").read_text().splitlines() + ["End:"]:
        if line and not line.startswith(" "):
            section = line.rstrip(":")
        top = section == "Resources" and re.match(r"^  [A-Za-z]\w*:\s*$", line)
        if top or section == "End":
            if binary:
                sizes[binary] = own
            binary, own = None, None
        if section == "Globals" and (m := re.match(r"^    MemorySize: (\d+)", line)):
            default = int(m.group(1))
        if m := re.match(r"^        Binary: (\w+)", line):
            binary = binary or m.group(1)
        if section == "Resources" and (m := re.match(r"^      MemorySize: (\d+)", line)):
            own = int(m.group(1))
    return {b: (o if o is not None else default) for b, o in sizes.items()}


def choose(rows):
    """Per function, the measured sizes and the choice: the smallest size
    whose cold request is within 25% and warm p50 within 20% of the largest
    size's (more memory then buys no time worth paying for)."""
    print(f"{'function':<17} " + " ".join(f"{'cold/p50 @' + str(m):>20}" for m in sizes_measured(rows))
          + "  choice")
    picks = {}
    for fn in sorted({r["function"] for r in rows if r["memoryMb"]} - {"hello"}):
        by = {r["memoryMb"]: r for r in rows if r["function"] == fn and r["memoryMb"]}
        top = by[max(by)]
        pick = next(m for m in sorted(by)
                    if by[m]["coldMs"] <= 1.25 * top["coldMs"] and by[m]["p50Ms"] <= 1.2 * top["p50Ms"] + 0.5)
        picks[fn] = pick
        cells = " ".join(f"{by[m]['coldMs']:>9.1f} / {by[m]['p50Ms']:>7.2f}ms" for m in sorted(by))
        print(f"{fn:<17} {cells}  {pick} MB")
    return picks


def sizes_measured(rows):
    return sorted({r["memoryMb"] for r in rows if r["memoryMb"]})


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = pathlib.Path(args[0] if args else ROOT / "target/bench-results.json")
    rows = json.loads(path.read_text())
    if "--choose" in sys.argv:
        choose(rows)
        return
    sizes = memory_sizes()

    def measured(function, field):
        want = sizes[function]
        hits = [r for r in rows if r["function"] == function and r["memoryMb"] == want]
        if not hits:
            sys.exit(f"no measurement of {function} at {want} MB in {path}: run "
                     f"benches/run.sh --memory-mb {want} ...")
        return hits[0][field]

    ack_ms = measured("webhook", "p50Ms")
    sync_ms = measured("sync", "firstMs") + SYNCAROO_PAGE_MS
    print(f"memory (template.yaml): webhook {sizes['webhook']} MB, sync {sizes['sync']} MB")
    print(f"durations: ack {ack_ms:.1f} ms (measured p50), sync {sync_ms:.1f} ms "
          f"(measured worker path {sync_ms - SYNCAROO_PAGE_MS:.1f}: attempt, store, change event, done; "
          f"+ one {SYNCAROO_PAGE_MS:.0f} ms Syncaroo page)")
    for arch, gb_s in LAMBDA_GB_S.items():
        lam = 0.0
        for fn, ms in (("webhook", ack_ms), ("sync", sync_ms)):
            billed_s = math.ceil(ms) / 1000
            lam += 1e6 * (billed_s * sizes[fn] / 1024 * gb_s + LAMBDA_REQUEST)
        ddb = 1e6 * ((ACK_RRU + SYNC_RRU) * DDB_RRU + (ACK_WRU + SYNC_WRU) * DDB_WRU)
        events = 1e6 * EVENTBRIDGE_EVENT
        total = lam + ddb + events
        print(f"{arch:7}: Lambda ${lam:.2f} + DynamoDB ${ddb:.2f} + EventBridge ${events:.2f} "
              f"= ${total:.2f} per million webhooks")


if __name__ == "__main__":
    main()
