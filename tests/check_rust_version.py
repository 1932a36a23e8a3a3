#!/usr/bin/env python3
"""The workspace's `rust-version` is true: no locked dependency needs a newer
compiler, and rust-toolchain.toml's compiler is at least that version."""
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def ver(s):
    return tuple(int(x) for x in s.split("."))


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    ws = set(meta["workspace_members"])
    declared = {p["rust_version"] for p in meta["packages"] if p["id"] in ws}
    if len(declared) != 1 or None in declared:
        print(f"rust-version: every workspace crate must inherit one value, got {declared}")
        return 1
    declared = declared.pop()
    deps = sorted(((ver(p["rust_version"]), p["name"]) for p in meta["packages"]
                   if p["id"] not in ws and p.get("rust_version")), reverse=True)
    need, who = deps[0]
    pinned = re.search(r'channel\s*=\s*"([0-9.]+)"', (ROOT / "rust-toolchain.toml").read_text()).group(1)
    errors = []
    if ver(declared) < need:
        errors.append(f"rust-version {declared} < {'.'.join(map(str, need))} needed by {who}")
    if ver(pinned) < ver(declared):
        errors.append(f"rust-toolchain.toml pins {pinned}, older than rust-version {declared}")
    if errors:
        print("rust-version: FAILED\n - " + "\n - ".join(errors))
        return 1
    print(f"rust-version {declared}: ok (locked dependencies need {'.'.join(map(str, need))}, "
          f"CI compiler {pinned})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
