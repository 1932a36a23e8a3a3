#!/usr/bin/env bash
# The test command (README, .ci/run): first what the tests need is
# installed (scripts/install.sh: as root, or it says the one command to
# run), then formatting and lints, then every test at every depth against
# DynamoDB Local and the Secrets Manager server on loopback (started here,
# stopped on exit), then the template checks. On exit, pass or fail, no
# process it started is left running: it checks, and fails if one is.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

# Every process started below inherits this mark; what still carries it
# when the run ends was left running by it.
export SYNCAROO_TEST_RUN="test-$$-$(date +%s%N)"
finish() {
  local rc=$?
  [[ -n "${LOCAL_AWS_STATE:-}" ]] && bash scripts/local-aws.sh stop
  python3 tests/leftover_processes.py "$SYNCAROO_TEST_RUN" || rc=1
  exit $rc
}
trap finish EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== no import cycle between the shared crate's modules"
python3 tests/check_module_cycles.py
echo "== hygiene: dependencies used, one hmac/sha2, no file over 600 lines, no function over 80, no unsafe"
python3 tests/check_hygiene.py
echo "== docs/PERFORMANCE.md's numbers are what benches/results/ render"
python3 benches/report.py --check
echo "== rust-version is true for the lockfile"
python3 tests/check_rust_version.py
echo "== starting local AWS stand-ins"
eval "$(bash scripts/local-aws.sh start)"
export SYNCAROO_REQUIRE_LOCAL_AWS=1

echo "== template.yaml: cfn-lint and wiring check"
.tools/venv/bin/cfn-lint template.yaml
.tools/venv/bin/python tests/check_template.py
echo "== the dashboard's and alarms' metrics are the ones the code emits"
.tools/venv/bin/python tests/check_metrics.py
echo "== docs/openapi.yaml is valid OpenAPI 3.1 (openapi-spec-validator; its routes: tests/tests/routes.rs)"
.tools/venv/bin/openapi-spec-validator docs/openapi.yaml
echo "== template.yaml as AWS sees it: SAM transform expanded, no cycle, cfn-lint, moto CloudFormation deploy"
.tools/venv/bin/python tests/template_aws.py

echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt
echo "== the DynamoDB suites again with the clock 400 days ahead (tests/date_shift.sh)"
bash tests/date_shift.sh 2>&1 | tee target/date-shift.txt
echo "== end to end: the function binaries under cargo-lambda's emulator, fed events/"
bash tests/e2e/lambda_emulator.sh 2>&1 | tee target/lambda-e2e.txt

python3 - <<'PY'
import re
# cargo test, then the date-shifted reruns of the DynamoDB suites.
text = open("target/test-output.txt").read() + open("target/date-shift.txt").read()
passed = sum(int(m) for m in re.findall(r"test result: \w+\. (\d+) passed", text))
failed = sum(int(m) for m in re.findall(r"(\d+) failed;", text))
e2e = open("target/lambda-e2e.txt").read()
passed += len(re.findall(r"^PASS ", e2e, re.M))
failed += len(re.findall(r"^FAIL ", e2e, re.M))
print(f"{passed} passed, {failed} failed")
PY
