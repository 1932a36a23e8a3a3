#!/usr/bin/env python3
"""House rules the compiler does not check (run by scripts/test.sh):

- every dependency a crate declares is used by its code (what cargo-machete
  checks: the crate's name appears in its sources; a dependency kept only
  to turn on a feature must say so in `FEATURE_ONLY`);
- one version each of hmac, sha2 and digest in Cargo.lock;
- no source file over 600 lines outside the test crate;
- no function over 80 lines outside tests (test functions, `#[cfg(test)]`
  modules and the integration tests under `*/tests/` are exempt; the test
  crate's library and binaries are not);
- no `unsafe` block anywhere, and `#![forbid(unsafe_code)]` in every
  library and tool crate.
"""
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_LINES = 600
MAX_FN_LINES = 80
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?fn\s+(\w+)")
ONE_VERSION = ("hmac", "sha2", "digest")
# (crate dir, dependency): declared for its features only, never named.
FEATURE_ONLY = {
    # Its `aws-sdk-dynamodb+1` feature converts a stream record's image
    # into the SDK's item type (edge.rs, `.into()`).
    ("shared", "serde_dynamo"),
}
# A crate whose main is `http_lambda_main!` uses what the macro expands to.
MACRO_DEPS = {"http_lambda_main!": {"lambda_http", "tokio"}}
FORBID = ["shared/src/lib.rs", "local/src/lib.rs", "sim/src/lib.rs", "tests/src/lib.rs",
          "bench/src/main.rs"]


def members():
    ws = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    return [ROOT / m for m in ws]


def unused_dependencies():
    errors = []
    for crate in members():
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        # Code only: comment lines do not count as a use.
        sources = "\n".join(
            line for p in crate.rglob("*.rs") if "target" not in p.parts
            for line in p.read_text().splitlines() if not line.lstrip().startswith("//"))
        via_macro = set().union(*(deps for m, deps in MACRO_DEPS.items() if m in sources))
        sources += "\n".join(p.read_text() for p in crate.rglob("*.html"))
        for table in ("dependencies", "dev-dependencies"):
            for dep, spec in manifest.get(table, {}).items():
                name = spec.get("package", dep) if isinstance(spec, dict) else dep
                ident = dep.replace("-", "_")
                if (crate.name, dep) in FEATURE_ONLY or ident in via_macro:
                    continue
                if not re.search(rf"\b{re.escape(ident)}\b", sources):
                    errors.append(f"{crate.relative_to(ROOT)}: {table} {name} is never used")
    return errors


def duplicate_versions():
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    errors = []
    for name in ONE_VERSION:
        versions = sorted(p["version"] for p in lock["package"] if p["name"] == name)
        if len(versions) > 1:
            errors.append(f"Cargo.lock: {len(versions)} versions of {name}: {versions}")
    return errors


def long_files():
    errors = []
    for crate in members():
        for p in crate.rglob("*.rs"):
            rel = p.relative_to(ROOT)
            if "target" in rel.parts or rel.parts[0] == "tests":
                continue
            n = len(p.read_text().splitlines())
            if n > MAX_LINES:
                errors.append(f"{rel}: {n} lines (at most {MAX_LINES} outside tests)")
    return errors


def braces(line):
    """`{` minus `}` in a line of code: strings, chars and comments dropped."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    line = line.split("//")[0]
    return line.count("{") - line.count("}")


def block_end(lines, i):
    """The index of the line closing the block opened at or after line `i`
    (None: a declaration without a body)."""
    depth, opened = 0, False
    for j in range(i, len(lines)):
        code = lines[j].split("//")[0]
        if not opened and code.rstrip().endswith(";") and "{" not in code:
            return None
        depth += braces(lines[j])
        opened = opened or "{" in code
        if opened and depth <= 0:
            return j
    return None


def long_functions():
    errors = []
    for crate in members():
        for p in crate.rglob("*.rs"):
            rel = p.relative_to(ROOT)
            if "target" in rel.parts or (len(rel.parts) > 1 and rel.parts[1] == "tests"):
                continue
            lines = p.read_text().splitlines()
            i = 0
            while i < len(lines):
                if lines[i].strip() == "#[cfg(test)]":
                    end = block_end(lines, i + 1)
                    i = (end or i) + 1
                    continue
                m = FN.match(lines[i])
                attrs = " ".join(lines[max(0, i - 3):i])
                if m and "#[test]" not in attrs and "#[tokio::test" not in attrs:
                    end = block_end(lines, i)
                    if end is not None and end - i + 1 > MAX_FN_LINES:
                        errors.append(f"{rel}:{i + 1}: fn {m.group(5)} is {end - i + 1} lines "
                                      f"(at most {MAX_FN_LINES} outside tests)")
                i += 1
    return errors


def unsafe_code():
    errors = []
    for crate in members():
        for p in crate.rglob("*.rs"):
            if "target" in p.parts:
                continue
            for i, line in enumerate(p.read_text().splitlines(), 1):
                code = line.split("//")[0]
                if re.search(r"\bunsafe\s*(\{|fn\b|impl\b)", code):
                    errors.append(f"{p.relative_to(ROOT)}:{i}: unsafe code")
    for f in FORBID:
        if "#![forbid(unsafe_code)]" not in (ROOT / f).read_text():
            errors.append(f"{f}: lacks #![forbid(unsafe_code)]")
    return errors


def main():
    errors = (unused_dependencies() + duplicate_versions() + long_files() + long_functions()
              + unsafe_code())
    if errors:
        print("hygiene: FAILED")
        for e in errors:
            print(" -", e)
        return 1
    print(f"hygiene: ok ({len(members())} crates: every dependency used, one version of "
          f"{', '.join(ONE_VERSION)}, no file over {MAX_LINES} lines, no function over "
          f"{MAX_FN_LINES}, no unsafe)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
