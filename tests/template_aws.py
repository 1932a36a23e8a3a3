#!/usr/bin/env python3
"""template.yaml the way AWS sees it.

`cfn-lint template.yaml` and `sam validate --lint` never expand the
AWS::Serverless transform, so a cycle through a generated resource (the
HTTP API's OpenAPI body names every function; a function naming the API
closes the loop) passes both and still stops every deployment. This script:

1. expands template.yaml with the transform library itself
   (aws-sam-translator, offline: a stub managed-policy map, s3:// CodeUris),
   once per parameter combination that changes the template's shape;
2. fails on any dependency cycle among the expanded resources, with both
   branches of every Fn::If kept (a cycle hidden in a branch that is dead
   today is still a cycle for another parameter value);
3. runs cfn-lint on each expanded template (E3004 is its cycle rule);
4. deploys the default expansion into moto's CloudFormation
   (AWS_ENDPOINT_URL_CLOUDFORMATION, or the Secrets Manager endpoint of
   scripts/local-aws.sh: moto serves every service on one port) and checks
   CREATE_COMPLETE and what was created.

moto 5.2.5 creates the table, queue, topic, log groups, roles, functions,
permissions, events rules and event source mappings; it skips
AWS::ApiGatewayV2::* (the HTTP API and its routes), AWS::SecretsManager::Secret
and AWS::CloudWatch::Alarm without an error, and ignores the table's
TimeToLiveSpecification, so those are checked in the expanded template
instead.
"""
import copy
import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The transform resolves AWS::Region itself; offline, say which.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
OUT = ROOT / "target" / "template"

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

from check_template import refs  # noqa: E402  (Ref / GetAtt / ${X}, every Fn::If branch)

BUCKET = "syncaroo-bridge-artifacts"
# Parameter sets: every Condition of the template true and false at least once.
VARIANTS = {
    "defaults": {},
    "custom-domain": {"PublicBaseUrl": "https://yourapp.com", "AlarmEmail": "ops@yourapp.com",
                      "Architecture": "x86_64", "CreateExampleSubscription": "true"},
}


class StubPolicies:
    """The managed-policy map without IAM: nothing here uses managed policies
    by name, so an empty map is exact."""

    def load(self):
        return {}


def expanded(params):
    tpl = yaml_parse((ROOT / "template.yaml").read_text())
    for name, res in tpl["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = f"s3://{BUCKET}/{name}.zip"
    defaults = {k: v.get("Default") for k, v in tpl.get("Parameters", {}).items() if "Default" in v}
    values = {**defaults, **params}
    out = transform(copy.deepcopy(tpl), values, StubPolicies())
    return out, values


def platform_events():
    """How many HttpApi events of the template (before the transform) are
    platform API routes: each must come out of it AWS_IAM-authorized."""
    tpl = yaml_parse((ROOT / "template.yaml").read_text())
    return sum(1 for r in tpl["Resources"].values() if r.get("Type") == "AWS::Serverless::Function"
               for e in r.get("Properties", {}).get("Events", {}).values()
               if e.get("Type") == "HttpApi"
               and str(e.get("Properties", {}).get("Path", "")).startswith("/api/platform/"))


def find_cycle(tpl):
    resources = tpl["Resources"]
    graph = {}
    for name, res in resources.items():
        d = refs(res.get("Properties", {})) & set(resources)
        dep_on = res.get("DependsOn", [])
        d |= set([dep_on] if isinstance(dep_on, str) else dep_on)
        graph[name] = d
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def check_expanded(name, tpl, errors):
    cycle = find_cycle(tpl)
    if cycle:
        errors.append(f"{name}: dependency cycle: {' -> '.join(cycle)}")
    types = {r["Type"] for r in tpl["Resources"].values()}
    if any(t.startswith("AWS::Serverless::") for t in types):
        errors.append(f"{name}: the transform left AWS::Serverless resources")
    api = [r for r in tpl["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    if len(api) != 1:
        errors.append(f"{name}: expected one HTTP API, found {len(api)}")
    else:
        paths = api[0]["Properties"].get("Body", {}).get("paths", {})
        for p in paths:
            if p != "/" and p.endswith("/"):
                errors.append(f"{name}: API path {p} ends in '/': HTTP APIs refuse the route key")
        for route in ["/api/oauth/authorize", "/api/oauth/token", "/api/check_connection",
                      "/api/update", "/update"]:
            if route not in paths:
                errors.append(f"{name}: API lacks the route {route}")
        # The platform API is AWS_IAM-authorized (SigV4, awsSigv4 scheme);
        # Syncaroo's and the browser's routes are not.
        body = api[0]["Properties"].get("Body", {})
        scheme = body.get("components", {}).get("securitySchemes", {}).get("AWS_IAM", {})
        if scheme.get("x-amazon-apigateway-authtype") != "awsSigv4":
            errors.append(f"{name}: no awsSigv4 security scheme in the API")
        platform = 0
        for p, ops in paths.items():
            for method, op in ops.items():
                iam = {"AWS_IAM": []} in op.get("security", [])
                if p.startswith("/api/platform/"):
                    platform += 1
                    if not iam:
                        errors.append(f"{name}: {method.upper()} {p} is not AWS_IAM-authorized")
                elif iam:
                    errors.append(f"{name}: {method.upper()} {p} must not need AWS_IAM")
        expected = platform_events()
        if platform != expected:
            errors.append(f"{name}: {platform} platform API routes, expected {expected}")
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(tpl, indent=1))
    lint = subprocess.run([str(pathlib.Path(sys.executable).parent / "cfn-lint"), str(path)],
                          capture_output=True, text=True)
    if lint.returncode != 0:
        errors.append(f"{name}: cfn-lint on the expanded template:\n{lint.stdout}{lint.stderr}")


def deploy(tpl, values, errors):
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_CLOUDFORMATION") or os.environ.get(
        "AWS_ENDPOINT_URL_SECRETS_MANAGER")
    if not endpoint:
        if os.environ.get("SYNCAROO_REQUIRE_LOCAL_AWS") == "1":
            errors.append("no moto endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER) for the deploy check")
        else:
            print("SKIPPED: moto deploy (no AWS_ENDPOINT_URL_SECRETS_MANAGER; bash scripts/test.sh starts it)")
        return
    kw = dict(endpoint_url=endpoint, region_name="us-east-1",
              aws_access_key_id="test", aws_secret_access_key="test")
    s3 = boto3.client("s3", **kw)
    cfn = boto3.client("cloudformation", **kw)
    s3.create_bucket(Bucket=BUCKET)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    for name, res in tpl["Resources"].items():
        if res["Type"] == "AWS::Lambda::Function":
            key = res["Properties"]["Code"]["S3Key"]
            s3.put_object(Bucket=BUCKET, Key=key, Body=buf.getvalue())
    stack = f"syncaroo-bridge-check-{os.getpid()}"
    # Deployed with the example subscription on a bus of its own, so its
    # rule and queue are exercised below (the variants above expand both
    # branches). Not the default bus: moto 5.2.5 lets a schedule rule (no
    # pattern) match every event put there, then fails on its Lambda target.
    bus = f"{stack}-bus"
    boto3.client("events", **kw).create_event_bus(Name=bus)
    values = {**values, "EventBusName": bus}
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(tpl),
                     Parameters=[{"ParameterKey": "CreateExampleSubscription", "ParameterValue": "true"},
                                 {"ParameterKey": "EventBusName", "ParameterValue": bus}],
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    st = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    if st["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if e.get("ResourceStatusReason")]
        errors.append(f"moto: stack {st['StackStatus']}: {reasons[:5]}")
        return
    created = {r["LogicalResourceId"]: r for r in
               cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}
    phys = {k: v["PhysicalResourceId"] for k, v in created.items()}
    want_types = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Lambda::Function", "AWS::IAM::Role",
                  "AWS::Events::Rule", "AWS::Lambda::EventSourceMapping", "AWS::SNS::Topic",
                  "AWS::Logs::LogGroup"}
    got_types = {v["ResourceType"] for v in created.values()}
    for t in sorted(want_types - got_types):
        errors.append(f"moto: no {t} created")
    ddb = boto3.client("dynamodb", **kw)
    table = ddb.describe_table(TableName=phys["Table"])["Table"]
    if table.get("StreamSpecification", {}).get("StreamViewType") != "NEW_IMAGE":
        errors.append(f"moto: table stream {table.get('StreamSpecification')}")
    # moto ignores TimeToLiveSpecification: checked in the template.
    ttl = tpl["Resources"]["Table"]["Properties"].get("TimeToLiveSpecification", {})
    if ttl != {"AttributeName": "ttl", "Enabled": True}:
        errors.append(f"table TTL {ttl}")
    lam = boto3.client("lambda", **kw)
    fns = [k for k, v in created.items() if v["ResourceType"] == "AWS::Lambda::Function"]
    if len(fns) != 7:
        errors.append(f"moto: {len(fns)} functions, expected 7: {fns}")
    for f in fns:
        conf = lam.get_function_configuration(FunctionName=phys[f])
        env = conf.get("Environment", {}).get("Variables", {})
        if env.get("TABLE_NAME") != phys["Table"]:
            errors.append(f"moto: {f} TABLE_NAME={env.get('TABLE_NAME')}")
        if env.get("EVENT_BUS_NAME") != values["EventBusName"]:
            errors.append(f"moto: {f} EVENT_BUS_NAME={env.get('EVENT_BUS_NAME')}")
        if conf.get("Runtime") != "provided.al2023" or conf.get("Handler") != "bootstrap":
            errors.append(f"moto: {f} runtime {conf.get('Runtime')} / {conf.get('Handler')}")
    maps = lam.list_event_source_mappings(FunctionName=phys["SyncFunction"])["EventSourceMappings"]
    if len(maps) != 1 or "/stream/" not in maps[0]["EventSourceArn"]:
        errors.append(f"moto: sync event source mappings {maps}")
    events = boto3.client("events", **kw)
    rules = [r for r in events.list_rules()["Rules"] if r.get("ScheduleExpression")]
    if not any(r["ScheduleExpression"] == values["RefreshSchedule"] for r in rules):
        errors.append(f"moto: no schedule rule {values['RefreshSchedule']}: {rules}")
    sqs = boto3.client("sqs", **kw)
    queue = phys["DeadLetterQueue"].rsplit("/", 1)[-1]
    if not any(u.endswith("/" + queue) for u in sqs.list_queues().get("QueueUrls", [])):
        errors.append("moto: dead-letter queue missing")
    check_example_subscription(kw, phys, values, errors)
    print(f"moto deploy: CREATE_COMPLETE, {len(created)} resources "
          f"({len(fns)} functions, table with stream and TTL, schedule, event source mapping, "
          f"example subscription delivering a change event)")
    cfn.delete_stack(StackName=stack)


def check_example_subscription(kw, phys, values, errors):
    """The example rule, as deployed, matches our entries and not others:
    one entry of each kind reaches its queue; a foreign source does not."""
    import boto3

    if "ExampleSubscriptionQueue" not in phys:
        errors.append("moto: the example subscription was not created")
        return
    events = boto3.client("events", **kw)
    sqs = boto3.client("sqs", **kw)
    kinds = ["Syncaroo Connection Confirmed", "Syncaroo Connection Revoked",
             "Syncaroo Credentials Need Reauth", "Syncaroo Credentials Restored",
             "Syncaroo Data Synced", "Syncaroo Location Status Changed", "Syncaroo Sync Failed",
             "Syncaroo User Erased"]
    entries = [{"Source": values["EventSource"], "DetailType": k, "Detail": json.dumps({"connectionId": "1"}),
                "EventBusName": values["EventBusName"]} for k in kinds]
    entries.append({**entries[0], "Source": "someone-else"})
    out = events.put_events(Entries=entries)
    if out["FailedEntryCount"]:
        errors.append(f"moto: PutEvents refused entries: {out['Entries']}")
    url = phys["ExampleSubscriptionQueue"]
    got = []
    for _ in range(5):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        got += [json.loads(m["Body"]) for m in msgs]
        if len(got) >= len(kinds):
            break
    seen = sorted(m["detail-type"] for m in got)
    if seen != kinds or any(m["source"] != values["EventSource"] for m in got):
        errors.append(f"moto: the example subscription delivered {[(m['source'], m['detail-type']) for m in got]}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    errors = []
    default_tpl = default_values = None
    for name, params in VARIANTS.items():
        tpl, values = expanded(params)
        check_expanded(name, tpl, errors)
        if name == "defaults":
            default_tpl, default_values = tpl, values
    if not errors:
        deploy(default_tpl, default_values, errors)
    if errors:
        print("template as AWS sees it: FAILED")
        for e in errors:
            print(" -", e)
        return 1
    print(f"template as AWS sees it: ok ({', '.join(VARIANTS)} expanded; no cycle, cfn-lint clean)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
