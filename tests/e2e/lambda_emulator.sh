#!/usr/bin/env bash
# The real function binaries under cargo-lambda's local Lambda runtime
# emulator, fed the events/ files, with DynamoDB Local and the Secrets
# Manager server (moto) behind them. Expects the AWS_ENDPOINT_URL_* env of
# scripts/local-aws.sh and cargo-lambda in .tools/venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
CL=.tools/venv/bin/cargo-lambda
[[ -x "$CL" ]] || { echo "lambda emulator e2e: cargo-lambda missing (.tools/venv)"; exit 1; }
export PATH="$PWD/.tools/venv/bin:$PATH"

table="e2e-lambda-$$"
secret="e2e-lambda-secrets-$$"
doc=$(cargo run -q -p syncaroo-tests --bin seed-events -- "$table")
.tools/venv/bin/python - "$secret" "$doc" <<'PY'
import os, sys, json, urllib.request
name, doc = sys.argv[1], sys.argv[2]
req = urllib.request.Request(os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"], method="POST",
    data=json.dumps({"Name": name, "SecretString": doc}).encode(),
    headers={"X-Amz-Target": "secretsmanager.CreateSecret", "Content-Type": "application/x-amz-json-1.1",
             "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261127/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x"})
urllib.request.urlopen(req).read()
PY

# Change events: a bus on moto with a rule whose SQS target the checks
# below read, and a dead-letter queue.
read -r bus subscriber dlq < <(.tools/venv/bin/python - "$$" <<'PY'
import boto3, json, os, sys
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"], region_name="us-east-1")
ev, sqs = boto3.client("events", **kw), boto3.client("sqs", **kw)
n = sys.argv[1]
bus = f"e2e-bus-{n}"
ev.create_event_bus(Name=bus)
sub = sqs.create_queue(QueueName=f"e2e-subscriber-{n}")["QueueUrl"]
dlq = sqs.create_queue(QueueName=f"e2e-dlq-{n}")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=sub, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
ev.put_rule(Name="platform", EventBusName=bus, EventPattern=json.dumps({"source": ["syncaroo-bridge"]}))
ev.put_targets(Rule="platform", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
print(bus, sub, dlq)
PY
)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
log=target/lambda-watch.log
# JSON logs as Lambda's LoggingConfig asks for them; the test-panic feature
# lets one request panic inside a handler (never in a deployed build).
TABLE_NAME="$table" SECRET_ID="$secret" LOGIN_URL="https://yourapp.example/login" EVENT_BUS_NAME="$bus" DEAD_LETTER_QUEUE_URL="$dlq" AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=INFO \
  setsid cargo lambda watch -A 127.0.0.1 -P "$port" -F syncaroo-shared/test-panic >"$log" 2>&1 &
# The watcher leads a process group of its own, with every function it
# runs: stopping the group stops them all.
watch_group=$!
trap 'kill -TERM -- -$watch_group 2>/dev/null || true; sleep 1; kill -KILL -- -$watch_group 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.5; done

pass=0; fail=0
check() { # function event expectation(python expr over r)
  local fn=$1 ev=$2 expect=$3 out
  if ! out=$(cargo lambda invoke "$fn" -A 127.0.0.1 -P "$port" --data-file "events/$ev" 2>&1); then
    echo "FAIL $fn < $ev: invoke failed: $out"; fail=$((fail+1)); return
  fi
  if python3 -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($expect) else 1)" "$out"; then
    echo "PASS $fn < $ev"; pass=$((pass+1))
  else
    echo "FAIL $fn < $ev: expected $expect, got ${out:0:400}"; fail=$((fail+1))
  fi
}
check authorize authorize-no-session.json 'r["statusCode"]==302 and "/login?return_to=" in r["headers"]["location"]'
check authorize authorize-consent.json 'r["statusCode"]==200 and "Connect Syncaroo" in r["body"]'
check token token-exchange.json 'r["statusCode"]==200 and json.loads(r["body"])["accessToken"].startswith("scb_at_")'
check check_connection check-connection.json 'r["statusCode"]==200 and sorted(json.loads(r["body"])["locations"])==["1198","7120","8102","9587"]'
check token token-refresh.json 'r["statusCode"]==200 and "refreshToken" in json.loads(r["body"])'
# Webhooks are notifications: the same body twice is accepted twice.
check webhook webhook-data.json 'r["statusCode"]==202 and json.loads(r["body"])["targetId"]=="99#1198#resources#7843"'
check webhook webhook-data.json 'r["statusCode"]==202 and json.loads(r["body"])["status"]=="accepted"'
check webhook webhook-status.json 'r["statusCode"]==202 and json.loads(r["body"])["targetId"]=="99#1198#status#-"'
# seed-events recorded the status webhook the stream sample carries.
check sync sync-stream.json 'r["batchItemFailures"]==[]'
# The target the two data webhooks notified: no Syncaroo API credentials
# here, so it is named for redelivery.
check sync sync-stream-data.json 'r["batchItemFailures"]==[{"itemIdentifier":"111100000000000000002"}]'
check refresh refresh-schedule.json 'r["outcome"]=="skipped"'
check admin admin-status.json 'r["statusCode"]==200 and json.loads(r["body"])["connected"]==False'
# The platform API, as API Gateway hands it over after AWS_IAM: the
# request context names the verified caller; no admin key is sent.
check admin platform-put-listings.json 'r["statusCode"]==200 and json.loads(r["body"])=={"userId":"1","locations":1}'

# A panic in a handler is that invocation's error; the warm process lives on
# and serves the next event (no second cold start: one "init done" line).
inits_before=$(grep -c '"message":"init done"' "$log" || true)
python3 - events/check-connection.json target/panic-event.json <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
e["headers"]["x-syncaroo-test-panic"] = "1"
json.dump(e, open(sys.argv[2], "w"))
PY
if out=$(cargo lambda invoke check_connection -A 127.0.0.1 -P "$port" --data-file target/panic-event.json 2>&1); then
  echo "FAIL check_connection panic: invocation succeeded: ${out:0:300}"; fail=$((fail+1))
elif [[ "$out" == *"panicked"* ]]; then
  echo "PASS check_connection panic: reported as an invocation error"; pass=$((pass+1))
else
  echo "FAIL check_connection panic: unexpected error: ${out:0:300}"; fail=$((fail+1))
fi
check check_connection check-connection.json 'r["statusCode"]==200'
sleep 0.5
inits_after=$(grep -c '"message":"init done"' "$log" || true)
if [[ "$inits_before" -ge 1 && "$inits_after" -eq "$inits_before" ]]; then
  echo "PASS check_connection after a panic: served by the same process ($inits_after init lines)"; pass=$((pass+1))
else
  echo "FAIL check_connection after a panic: init lines $inits_before -> $inits_after"; fail=$((fail+1))
fi
# The pushed listings are what check_connection returns; a revoked
# connection's token is refused.
check check_connection check-connection.json 'r["statusCode"]==200 and sorted(json.loads(r["body"])["locations"])==["2001"]'
check admin platform-revoke-connection.json 'r["statusCode"]==200 and json.loads(r["body"])["status"]=="revoked"'
check check_connection check-connection.json 'r["statusCode"]==401'

# What the function binaries announced on the bus, read off the rule's
# queue: the first confirmation (once, however often Syncaroo checked),
# the status change the sync function applied from the stream sample, and
# the revocation; nothing dead-lettered.
if .tools/venv/bin/python - "$subscriber" "$dlq" <<'PY'
import boto3, json, os, sys
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"], region_name="us-east-1")
got = []
for _ in range(5):
    msgs = sqs.receive_message(QueueUrl=sys.argv[1], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    got += [json.loads(m["Body"]) for m in msgs]
    if len(got) >= 3:
        break
kinds = [(m["detail-type"], m["detail"]["connectionId"]) for m in got]
assert kinds == [("Syncaroo Connection Confirmed", "99"), ("Syncaroo Location Status Changed", "99"),
                 ("Syncaroo Connection Revoked", "99")], kinds
left = sqs.receive_message(QueueUrl=sys.argv[2], WaitTimeSeconds=0).get("Messages", [])
assert not left, left
print(kinds)
PY
then echo "PASS change events from the function binaries (moto EventBridge -> SQS)"; pass=$((pass+1))
else echo "FAIL change events from the function binaries"; fail=$((fail+1)); fi

# The functions' log lines are JSON objects (AWS_LAMBDA_LOG_FORMAT=JSON,
# tracing-subscriber's json formatter): timestamp, level, target, message
# and the event's fields at the top, and in an invocation the span with its
# requestId.
if python3 - "$log" <<'PY'
import json, sys
lines = []
for raw in open(sys.argv[1], errors="replace"):
    raw = raw.strip()
    i = raw.find('{"')
    if i < 0:
        continue
    try:
        line = json.loads(raw[i:])
    except ValueError:
        continue
    if isinstance(line, dict) and "timestamp" in line:
        lines.append(line)
assert lines, "no JSON log line"
for l in lines:
    assert {"timestamp", "level", "target", "message"} <= set(l), l
in_invocation = [l for l in lines if (l.get("span") or {}).get("requestId")]
assert in_invocation, "no line carries a requestId"
assert any(l["level"] == "ERROR" and "panicked" in l["message"] for l in in_invocation), \
    "the panic is logged with its requestId"
base = {"timestamp", "level", "target", "message", "span", "threadName", "threadId"}
assert any(set(l) - base for l in lines), "no line has fields"
print(f"{len(lines)} JSON lines, {len(in_invocation)} with a requestId")
PY
then echo "PASS JSON logs under the emulator"; pass=$((pass+1))
else echo "FAIL JSON logs under the emulator"; fail=$((fail+1)); fi

echo "lambda emulator e2e: $pass passed, $fail failed"
[[ $fail -eq 0 ]] || { echo "--- cargo lambda watch log"; tail -50 "$log"; exit 1; }
