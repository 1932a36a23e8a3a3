#!/usr/bin/env bash
# `sam build` of every function, as a user types it, without a prompt:
# SAM CLI and cargo-lambda from PyPI (in .tools/venv), x86_64 (this machine
# cannot fetch the arm64 target). Checks each function got a bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.tools/venv
if [[ ! -x "$VENV/bin/sam" ]]; then
  echo "sam build: installing aws-sam-cli==1.170.0 (pip, in $VENV)" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'aws-sam-cli==1.170.0' >&2
fi
export PATH="$PWD/$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
start=$(date +%s)
sam build --parameter-overrides Architecture=x86_64 </dev/null
fns=(AuthorizeFunction TokenFunction CheckConnectionFunction RefreshFunction AdminFunction WebhookFunction SyncFunction)
for f in "${fns[@]}"; do
  b=.aws-sam/build/$f/bootstrap
  [[ -x "$b" ]] || { echo "sam build: FAIL $f has no bootstrap"; exit 1; }
  printf 'sam build: %-24s bootstrap %7d KiB\n' "$f" $(( $(stat -c %s "$b") / 1024 ))
done
echo "sam build: PASS ${#fns[@]} functions in $(( $(date +%s) - start )) s"
