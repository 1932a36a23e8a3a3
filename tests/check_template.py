#!/usr/bin/env python3
"""Checks template.yaml's wiring against the code, where cfn-lint cannot:
every function builds a binary that exists, gets every environment variable
the shared Config reads, can call what its handler calls (and no more), and
is reachable on the routes the guide needs. Exits non-zero on any mismatch.
"""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Ref" if suffix == "Ref" else "Fn::" + suffix
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)

# What each handler calls, per the store and secrets code it uses.
EXPECTED = {
    "authorize": {
        "http": True,
        "dynamodb": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    },
    "token": {
        "http": True,
        "dynamodb": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                     "dynamodb:ConditionCheckItem", "dynamodb:Query"},
    },
    "check_connection": {
        "http": True,
        "dynamodb": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:Query"},
    },
    "refresh": {
        "http": False,
        "dynamodb": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "secrets": {"ClientSecret", "SessionKey", "TokenHashKey", "SyncarooApiCredentials"},
        "schedule": True,
    },
    "admin": {
        "http": True,
        # + the platform API: listings replaced in one transaction, connections
        # listed (GSI query, scan), a revoked connection's families revoked,
        # a user erased (BatchWriteItem deletes).
        "dynamodb": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                     "dynamodb:Query", "dynamodb:Scan", "dynamodb:ConditionCheckItem",
                     "dynamodb:BatchWriteItem"},
        "secrets": {"ClientSecret", "SessionKey", "TokenHashKey", "AdminKey", "SyncarooApiCredentials"},
    },
}
EXPECTED["webhook"] = {
    "http": True,
    "dynamodb": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
}
EXPECTED["sync"] = {
    "http": False,
    # ConditionCheckItem: the connection's generation, checked in the
    # transaction that stores data or a status.
    "dynamodb": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                 "dynamodb:Query", "dynamodb:ConditionCheckItem"},
    "secrets": {"ClientSecret", "SessionKey", "TokenHashKey", "SyncarooApiCredentials"},
    "stream": True,
}
BASE_SECRETS = {"ClientSecret", "SessionKey", "TokenHashKey"}
# The functions that announce changes (their main wires EventBridge): each
# may put events on the configured bus only, and send the entries it cannot
# put to the dead-letter queue; no other function may do either.
ANNOUNCERS = {"check_connection", "admin", "sync", "refresh"}
BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"


def refs(value):
    """Every Ref / GetAtt / ${X} a value mentions (every Fn::If branch)."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref":
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add((v.split(".") if isinstance(v, str) else v)[0])
            elif k == "Fn::Sub":
                s = v if isinstance(v, str) else v[0]
                out |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", s) if not m.startswith("AWS::")}
                if not isinstance(v, str):
                    out |= refs(v[1])
            else:
                out |= refs(v)
    elif isinstance(value, list):
        for v in value:
            out |= refs(v)
    return out


def main():
    t = yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)
    errors = []
    resources = t["Resources"]
    known = set(resources) | set(t.get("Parameters", {})) | {"AWS::Region", "AWS::URLSuffix", "AWS::AccountId", "AWS::StackName"}
    config_src = (ROOT / "shared/src/config.rs").read_text()
    env_read = set(re.findall(r'\b(?:s|n|flag)\("([A-Z_]+)"', config_src))
    if not env_read:
        errors.append("found no environment variables in shared/src/config.rs")
    glob = t.get("Globals", {}).get("Function", {})
    if glob.get("Runtime") != "provided.al2023":
        errors.append("Globals.Function.Runtime must be provided.al2023")
    global_env = glob.get("Environment", {}).get("Variables", {})
    for r in refs(global_env):
        if r not in known:
            errors.append(f"Globals environment references unknown {r}")
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    seen_bins = set()
    for name, res in functions.items():
        props = res["Properties"]
        binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if res.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            errors.append(f"{name}: BuildMethod must be rust-cargolambda")
        crate = ROOT / "functions" / str(binary) / "Cargo.toml"
        if not crate.exists() or f'name = "{binary}"' not in crate.read_text():
            errors.append(f"{name}: Binary {binary} is not a crate under functions/")
            continue
        seen_bins.add(binary)
        env = dict(global_env)
        env.update(props.get("Environment", {}).get("Variables", {}))
        missing = env_read - set(env)
        if missing:
            errors.append(f"{name}: environment lacks {sorted(missing)}")
        for r in refs(props):
            if r not in known:
                errors.append(f"{name}: references unknown {r}")
        exp = EXPECTED.get(binary)
        if exp is None:
            errors.append(f"{name}: no expectations for binary {binary} in check_template.py")
            continue
        routes = {(e["Properties"].get("Method", "").upper(), e["Properties"].get("Path"))
                  for e in props.get("Events", {}).values() if e["Type"] == "HttpApi"}
        for _, path in routes:
            if path != "/" and path.endswith("/"):
                errors.append(f"{name}: route key {path} ends in '/': HTTP APIs refuse it")
        if "HttpApi" in refs(env):
            errors.append(f"{name}: environment names HttpApi (a dependency cycle: the API names the function)")
        # Which paths: tests/tests/routes.rs checks them against the route table.
        if bool(routes) != exp["http"]:
            errors.append(f"{name}: HTTP routes {'missing' if exp['http'] else 'unexpected'}")
        actions = set()
        granted = set()
        puts, sends = [], []
        for pol in props.get("Policies", []):
            for st in pol.get("Statement", []) if isinstance(pol, dict) else []:
                acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if "events:PutEvents" in acts:
                    puts.append(st["Resource"])
                if "sqs:SendMessage" in acts:
                    sends.append(st["Resource"])
                if "*" in str(st.get("Resource")).replace("${", "") or any(a.endswith("*") for a in acts):
                    errors.append(f"{name}: wildcard in policy {st}")
                actions |= {a for a in acts if a.startswith("dynamodb:")}
                if "secretsmanager:GetSecretValue" in acts:
                    granted |= refs(st["Resource"])
        main_rs = (ROOT / "functions" / binary / "src" / "main.rs").read_text()
        wired = "announces_changes: true" in main_rs
        if wired != (binary in ANNOUNCERS):
            errors.append(f"{name}: main.rs {'wires' if wired else 'does not wire'} change events; expected the opposite")
        if binary in ANNOUNCERS:
            if puts != [{"Fn::Sub": BUS_ARN}]:
                errors.append(f"{name}: events:PutEvents must be on the EventBusName bus only, found {puts}")
            if sends != [{"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}] and sends != [{"Fn::GetAtt": "DeadLetterQueue.Arn"}]:
                errors.append(f"{name}: sqs:SendMessage must be on the dead-letter queue only, found {sends}")
        elif puts or sends:
            errors.append(f"{name}: announces no changes but may PutEvents/SendMessage: {puts} {sends}")
        if actions != exp["dynamodb"]:
            errors.append(f"{name}: DynamoDB actions {sorted(actions)} != needed {sorted(exp['dynamodb'])}")
        want = exp.get("secrets", BASE_SECRETS)
        if granted != want:
            errors.append(f"{name}: may read secrets {sorted(granted)}, needs exactly {sorted(want)}")
        if refs(env.get("SECRET_ID", {})) != want:
            errors.append(f"{name}: SECRET_ID names {sorted(refs(env.get('SECRET_ID', {})))}, not {sorted(want)}")
        streams = [e for e in props.get("Events", {}).values() if e["Type"] == "DynamoDB"]
        if bool(streams) != bool(exp.get("stream")):
            errors.append(f"{name}: stream event {'missing' if exp.get('stream') else 'unexpected'}")
        for st in streams:
            sp = st["Properties"]
            if "ReportBatchItemFailures" not in sp.get("FunctionResponseTypes", []):
                errors.append(f"{name}: stream must report partial batch failures")
            if "OnFailure" not in sp.get("DestinationConfig", {}):
                errors.append(f"{name}: stream needs an on-failure destination")
            if "EVENT#" not in str(sp.get("FilterCriteria")) or "TARGET#" not in str(sp.get("FilterCriteria")):
                errors.append(f"{name}: stream must be filtered to status events and notified targets")
        schedules = [e for e in props.get("Events", {}).values() if e["Type"] == "Schedule"]
        if bool(schedules) != bool(exp.get("schedule")):
            errors.append(f"{name}: schedule event {'missing' if exp.get('schedule') else 'unexpected'}")
    for b in EXPECTED:
        if b not in seen_bins:
            errors.append(f"no function builds binary {b}")
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/Cargo.toml")}
    for b in on_disk - seen_bins:
        errors.append(f"functions/{b} is not deployed by template.yaml")
    ttl = resources["Table"]["Properties"].get("TimeToLiveSpecification", {})
    if ttl.get("AttributeName") != "ttl" or not ttl.get("Enabled"):
        errors.append("Table must enable TTL on attribute ttl")
    if errors:
        print("template.yaml wiring: FAILED")
        for e in errors:
            print(" -", e)
        return 1
    print(f"template.yaml wiring: ok ({len(functions)} functions, {len(env_read)} settings checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
