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


def median(xs):
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def rebuild(doc):
    """Before and after a change: each side's median over its runs. A
    function that answered wrongly in any run of a side is not compared on
    that side (the harness drives today's request paths)."""
    def medians(side):
        cells = {}
        for run in doc[side]["runs"]:
            for r in run:
                if r["rttMs"] is not None and r["memoryMb"] is None:
                    cells.setdefault((r["rttMs"], r["function"]), []).append(r)
        return {k: {"wrong": any(r["errors"] for r in rs),
                    **{m: median([r[m] for r in rs]) for m in ("coldMs", "limitMs", "ratio", "zipBytes")}}
                for k, rs in cells.items()}
    before, after = medians("before"), medians("after")

    def cell(side, key, metric, scale=1.0):
        v = side[key]
        return "wrong answer" if v["wrong"] and metric != "zipBytes" else f(v[metric] / scale)

    out = [f"Before: `{doc['before']['rev']}` ({len(doc['before']['runs'])} runs); after: "
           f"`{doc['after']['rev']}` ({len(doc['after']['runs'])} runs); medians, TLS."]
    for rtt in sorted({k[0] for k in after}):
        names = [k[1] for k in after if k[0] == rtt and k[1] != "hello"]
        body = [[n, cell(before, (rtt, n), "coldMs"), cell(after, (rtt, n), "coldMs"),
                 cell(before, (rtt, n), "ratio"), cell(after, (rtt, n), "ratio"),
                 cell(before, (rtt, n), "zipBytes", 2**20), cell(after, (rtt, n), "zipBytes", 2**20)]
                for n in names]

        def worst(side):
            ok = [n for n in names if not side[rtt, n]["wrong"]]
            w = max(ok, key=lambda n: side[rtt, n]["ratio"])
            return f"{f(side[rtt, w]['ratio'])} ({w})"
        out.append(f"RTT {rtt} ms:\n\n" + table(
            ["function", "cold ms before", "cold ms after", "ratio before", "ratio after",
             "zip MiB before", "zip MiB after"], body)
            + f"\n\nWorst cold-to-limit ratio after: {worst(after)}; before: {worst(before)}.")
    return "\n\n".join(out)


def cost_script(*args):
    """What benches/cost.py prints for the kept memory run."""
    import subprocess
    out = subprocess.run([sys.executable, str(ROOT / "benches" / "cost.py"), *args,
                          str(RESULTS / "memory.json")], capture_output=True, text=True, check=True)
    return "```\n" + out.stdout.rstrip() + "\n```"


RENDER = {"loopback": loopback, "network": network, "memory": memory, "throughput": throughput,
          "rebuild": rebuild,
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
