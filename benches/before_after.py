#!/usr/bin/env python3
"""The before/after cold-start comparison of a change, kept as a results file.

Runs of `bash benches/run.sh --rtt-ms 2,10 --tls --bin-dir DIR` (each writes
target/bench-results.json), three or more per side, measured back to back on
one machine with the same harness; this keeps every run's rows as
benches/results/rebuild.json and renders docs/PERFORMANCE.md, whose
`rebuild` table shows each side's median of its runs.

Usage:
  python3 benches/before_after.py --before REV RUN.json... --after REV RUN.json...
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import report  # noqa: E402


def side(args, flag):
    i = args.index(flag)
    rest = args[i + 1:]
    end = next((j for j, a in enumerate(rest) if a.startswith("--")), len(rest))
    rev, files = rest[0], rest[1:end]
    if len(files) < 3:
        raise SystemExit(f"before_after: {flag} takes a revision and at least three runs")
    runs = [json.loads(pathlib.Path(f).read_text()) for f in files]
    return {"rev": rev, "runs": runs}


def main(args):
    if "--before" not in args or "--after" not in args:
        print(__doc__)
        return 2
    doc = {"before": side(args, "--before"), "after": side(args, "--after")}
    report.RESULTS.mkdir(parents=True, exist_ok=True)
    (report.RESULTS / "rebuild.json").write_text(json.dumps(doc, indent=1) + "\n")
    return report.main([])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
