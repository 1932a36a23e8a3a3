#!/usr/bin/env python3
"""Every metric template.yaml's dashboard and alarms name in the bundle's
namespace is one the code emits, under the same namespace and name and with
the same (no) dimensions; and every metric the code declares is emitted
somewhere and shown on the dashboard.

The code's side: `shared/src/metrics.rs` declares each name once (a
`pub const NAME: &str = "..."`), emits every metric in `NAMESPACE` with
`"Dimensions": [[]]`, and each constant is used by an emitting call in
`shared/src/`. The template's side: the alarms' `Namespace`/`MetricName`/
`Dimensions`, and the metric arrays of the dashboard's widgets
(`[namespace, name, dimension name, value, ..., {options}]`).
"""
import json
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from check_template import CfnLoader, ROOT  # noqa: E402
import yaml  # noqa: E402


def code_metrics(errors):
    src = (ROOT / "shared" / "src" / "metrics.rs").read_text()
    namespace = re.search(r'pub const NAMESPACE: &str = "(\w+)";', src).group(1)
    if '"Dimensions": [[]]' not in src:
        errors.append("metrics.rs: every metric is emitted without dimensions ([[]]), or this check is wrong")
    consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "(\w+)";', src))
    consts.pop("NAMESPACE")
    code = "\n".join(p.read_text() for p in (ROOT / "shared" / "src").rglob("*.rs")
                     if p.name != "metrics.rs")
    for const, name in consts.items():
        aliases = re.findall(rf'pub const (\w+): &str = (?:crate::)?metrics::{const};', code)
        uses = [f"metrics::{const}"] + aliases
        if not any(re.search(rf"(count|emit)\([^;]*\b{re.escape(u)}\b", code) for u in uses):
            errors.append(f"metrics.rs: {name} ({const}) is declared but never emitted")
    return namespace, set(consts.values())


def template_metrics(tpl, errors):
    """(namespace, name, dimension names) of every metric the alarms and
    the dashboard name."""
    found = []
    for key, r in tpl["Resources"].items():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::CloudWatch::Alarm" and "MetricName" in p:
            dims = tuple(sorted(d["Name"] for d in p.get("Dimensions", [])))
            found.append((key, p["Namespace"], p["MetricName"], dims))
        if r["Type"] == "AWS::CloudWatch::Dashboard":
            body = p["DashboardBody"]
            body = body.get("Fn::Sub", body) if isinstance(body, dict) else body
            body = re.sub(r"\$\{[^}]+\}", "X", body)
            for w in json.loads(body)["widgets"]:
                for m in w.get("properties", {}).get("metrics", []):
                    plain = [x for x in m if isinstance(x, str)]
                    ns, name, rest = plain[0], plain[1], plain[2:]
                    found.append((key, ns, name, tuple(sorted(rest[0::2]))))
    if not any(k for k, *_ in found):
        errors.append("template.yaml: no alarm or dashboard names a metric")
    return found


def main():
    errors = []
    namespace, emitted = code_metrics(errors)
    tpl = yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)
    found = template_metrics(tpl, errors)
    ours = [f for f in found if f[1] == namespace]
    for key, _, name, dims in ours:
        if name not in emitted:
            errors.append(f"{key}: {namespace}/{name} is not a metric the code emits ({sorted(emitted)})")
        if dims:
            errors.append(f"{key}: {namespace}/{name} with dimensions {dims}; the code emits none")
    for key, ns, name, _ in found:
        if ns != namespace and not ns.startswith("AWS/"):
            errors.append(f"{key}: {ns}/{name}: neither the bundle's namespace nor AWS's")
    shown = {name for key, _, name, _ in ours if tpl["Resources"][key]["Type"] == "AWS::CloudWatch::Dashboard"}
    for name in sorted(emitted - shown):
        errors.append(f"the dashboard does not show {namespace}/{name}")
    if errors:
        print("metrics: FAILED")
        for e in errors:
            print(" -", e)
        return 1
    print(f"metrics: ok ({len(emitted)} emitted by the code; {len(ours)} uses of them in alarms "
          f"and the dashboard, all emitted, no dimensions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
