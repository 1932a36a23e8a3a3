#!/usr/bin/env python3
"""docs/PERFORMANCE.md's tables, rendered from the benchmarks' results files.

The numbers in that document are never typed: each table sits between
`<!-- results: KIND -->` and `<!-- /results -->` and is rendered from
`benches/results/KIND.json`, a results file the benchmark wrote.

Usage:
  python3 benches/report.py save KIND [FILE]
      keep a run's results (FILE, default target/bench-results.json, or
      target/throughput.json for KIND throughput) as benches/results/KIND.json
      and render the document; KIND is loopback, network, memory or
      throughput (which run makes which: docs/PERFORMANCE.md)
  python3 benches/report.py
      render every table from the kept results
  python3 benches/report.py --check
      exit 1 when the document differs from what the kept results render
      (scripts/test.sh runs this: a hand edit of a number fails the tests)
"""
import json
import pathlib
import re
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "PERFORMANCE.md"
RESULTS = ROOT / "benches" / "results"
KINDS = ("loopback", "network", "memory", "throughput")
BLOCK = re.compile(r"(<!-- results: (\w+) -->\n)(.*?)(<!-- /results -->)", re.S)


def f(x, digits=2):
    return f"{x:.{digits}f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def loopback(rows):
    rows = [r for r in rows if r["rttMs"] is None and r["memoryMb"] is None]
    body = [[r["function"], f(r["initMs"]), f(r["initOwnMs"]), f(r["ownOverHello"]),
             f(r["firstMs"]), f(r["p50Ms"]), f(r["p99Ms"]), r["firstDdb"], f(r["warmDdb"]),
             f(r["zipBytes"] / 2**20), f(r["rssKb"] / 1024, 1)] for r in rows]
    worst_zip = max(r["zipBytes"] for r in rows) / 2**20
    worst_rss = max(r["rssKb"] for r in rows) / 1024
    errors = sum(len(r.get("errors", [])) for r in rows)
    own = [r["ownOverHello"] for r in rows if r["function"] != "hello"]
    return table(["function", "init ms", "own ms", "own/hello", "first ms", "p50 ms", "p99 ms",
                  "DynamoDB 1st", "DynamoDB warm", "zip MiB", "RSS MiB"], body) + (
        f"\n\nOwn init {f(min(own))}-{f(max(own))}x the hello-world's; largest zip "
        f"{f(worst_zip)} MiB (limit 4), largest RSS {f(worst_rss, 1)} MiB (limit 40); "
        f"{errors} wrong answers.")


def network(rows):
    out = []
    for rtt in sorted({r["rttMs"] for r in rows if r["rttMs"] is not None}):
        at = [r for r in rows if r["rttMs"] == rtt and r["memoryMb"] is None]
        tls = "TLS 1.3" if at[0]["tls"] else "plain TCP"
        body = [[r["function"], f(r["coldMs"]), r["roundTrips"], f(r["coldServerMs"]),
                 f(r["limitMs"]), f(r["ratio"]), f(r["p50Ms"]), f(r["p99Ms"]),
                 f(r["warmLimitMs"]), f(r["initMs"])] for r in at]
        worst = max((r for r in at if r["function"] != "hello"), key=lambda r: r["ratio"])
        out.append(f"RTT {rtt} ms, {tls}:\n\n" + table(
            ["function", "cold ms", "round trips", "far side ms", "limit ms", "ratio",
             "p50 ms", "p99 ms", "warm limit ms", "init ms"], body)
            + f"\n\nWorst cold-to-limit ratio: {f(worst['ratio'])} ({worst['function']}).")
    return "\n\n".join(out)


def memory(rows):
    at = [r for r in rows if r["memoryMb"] is not None]
    sizes = sorted({r["memoryMb"] for r in at})
    names = sorted({r["function"] for r in at if r["function"] != "hello"})
    cell = {(r["function"], r["memoryMb"]): r for r in at}
    body = [[n] + [f"{f(cell[n, m]['coldMs'], 1)} / {f(cell[n, m]['p50Ms'])}" for m in sizes]
            for n in names]
    rtt = at[0]["rttMs"]
    return (f"Cold request ms (median) / warm p50 ms, at {rtt} ms RTT with TLS:\n\n"
            + table(["function"] + [f"{m} MB" for m in sizes], body))


def throughput(doc):
    ack = [[f"{r['rttMs']} ms", r["burst"], r["sent"], f(r["p50Ms"], 1), f(r["p99Ms"], 1),
            f(r["maxMs"], 1), f(r["perSecond"], 0), r["non202"], r["lost"]] for r in doc["ack"]]
    sync = doc["sync"]
    return (table(["DynamoDB RTT", "burst", "deliveries", "p50 ms", "p99 ms", "max ms",
                   "deliveries/s", "non-202", "lost"], ack)
            + "\n\n" + table(
                ["sync", "time ms", "floor ms", "ratio"],
                [[f"one target of {sync['pages']} pages, API {sync['apiMs']} ms a page, "
                  f"DynamoDB RTT {sync['rttMs']} ms", f(sync["oneMs"], 0), f(sync["floorMs"], 0),
                  f(sync["oneMs"] / sync["floorMs"])],
                 [f"a batch of {sync['batch']} such targets", f(sync["batchMs"], 0),
                  f(sync["floorMs"], 0), f(sync["batchMs"] / sync["floorMs"])]]))


def cost_script(*args):
    """What benches/cost.py prints for the kept memory run."""
    import subprocess
    out = subprocess.run([sys.executable, str(ROOT / "benches" / "cost.py"), *args,
                          str(RESULTS / "memory.json")], capture_output=True, text=True, check=True)
    return "```\n" + out.stdout.rstrip() + "\n```"


RENDER = {"loopback": loopback, "network": network, "memory": memory, "throughput": throughput,
          "choice": lambda _: cost_script("--choose"), "cost": lambda _: cost_script()}
SOURCE = {"choice": "memory", "cost": "memory"}


def render(text):
    def block(m):
        kind = m.group(2)
        path = RESULTS / f"{SOURCE.get(kind, kind)}.json"
        if kind not in RENDER or not path.exists():
            raise SystemExit(f"report: no results for the '{kind}' block ({path})")
        return m.group(1) + RENDER[kind](json.loads(path.read_text())) + "\n" + m.group(4)
    return BLOCK.sub(block, text)


def main(args):
    if args[:1] == ["save"] and len(args) in (2, 3) and args[1] in KINDS:
        default = "target/throughput.json" if args[1] == "throughput" else "target/bench-results.json"
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / (args[2] if len(args) == 3 else default), RESULTS / f"{args[1]}.json")
        args = []
    current = DOC.read_text()
    rendered = render(current)
    if args == ["--check"]:
        if rendered != current:
            print("report: docs/PERFORMANCE.md differs from benches/results/ "
                  "(run python3 benches/report.py; numbers are never typed)")
            return 1
        print(f"report: docs/PERFORMANCE.md matches benches/results/ "
              f"({len(BLOCK.findall(current))} tables)")
        return 0
    if args:
        print(__doc__)
        return 2
    DOC.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
