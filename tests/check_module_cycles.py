#!/usr/bin/env python3
"""No import cycles between the shared crate's top-level modules: every
`crate::a::...` named in a file of module `b` (outside its tests) is an
arrow b -> a, and the arrows must form no cycle (arrows only point down)."""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "shared" / "src"


def graph():
    g = {}
    for p in SRC.rglob("*.rs"):
        m = p.relative_to(SRC).parts[0].removesuffix(".rs")
        if m == "lib":
            continue
        g.setdefault(m, set())
        text = p.read_text().split("#[cfg(test)]")[0]
        text = re.sub(r"//.*", "", text)  # doc links are not imports
        refs = set(re.findall(r"crate::([a-z_]+)", text))
        for group in re.findall(r"use crate::\{([^}]*)\}", text):
            refs |= {x.strip().split("::")[0] for x in group.split(",") if x.strip()}
        g[m] |= {r for r in refs if r != m}
    return {m: {t for t in ts if t in g} for m, ts in g.items()}


def find_cycle(g):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for x in sorted(g[n]):
            if state.get(x) == 1:
                return stack[stack.index(x):] + [x]
            if x not in state:
                c = visit(x)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main():
    g = graph()
    cycles = []
    while (c := find_cycle(g)) is not None:
        cycles.append(c)
        g[c[-2]].discard(c[-1])  # report it once, then look for the next
    if cycles:
        print("module import cycles in shared/src: FAILED")
        for c in cycles:
            print("  " + " -> ".join(c))
        return 1
    print(f"module imports: no cycle among the {len(g)} modules of shared/src")
    return 0


if __name__ == "__main__":
    sys.exit(main())
