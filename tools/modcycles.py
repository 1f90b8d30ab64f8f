#!/usr/bin/env python3
"""Fails when the modules of a crate's src/ import each other in a cycle.

Usage: tools/modcycles.py [--graph] SRC_DIR...   (e.g. promote/src crates/rollout/src)

Production code only: a module declared under `#[cfg(test)]` (or the "testing" feature of the
test doubles) and inline `#[cfg(test)] mod ... { }` blocks are left out, so a test importing
what it tests is no cycle. Modules in folders count by their path (`cloud/aws.rs` is
`cloud::aws`, `cloud/mod.rs` is `cloud`). An edge A -> B is any `crate::...` (or `super::...`)
path in A, in a `use` or inline and including `crate::{x, y::z}` groups, that names B or an
item of B: the longest module the path starts with. The crate root (lib.rs or main.rs) is the
node `crate`, reached by paths to its own items. Prints each cycle (a strongly connected
component of more than one module) and exits 1 if there is one; with --graph, prints every
edge first.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TEST_CFG = re.compile(r'#\[cfg\((test|any\(test, feature = "testing"\))\)\]')
MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*(;|\{)")
PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]')
IDENT = re.compile(r"[A-Za-z_]\w*")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] if "//" in line else line for line in text.splitlines())


def production_code(text: str) -> tuple[str, set[str]]:
    """The text without test-only items, and the files (or module names) declared test-only."""
    lines = text.splitlines()
    keep: list[str] = []
    test_only: set[str] = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        if TEST_CFG.search(line):
            # The attributes that follow, then the item they apply to.
            j = i + 1
            path = None
            while j < len(lines) and lines[j].strip().startswith("#["):
                m = PATH_ATTR.search(lines[j])
                if m:
                    path = m.group(1)
                j += 1
            if j < len(lines):
                m = MOD_DECL.match(lines[j])
                if m and m.group(2) == ";":
                    test_only.add(path or f"{m.group(1)}.rs")
                    i = j + 1
                    continue
                # Any other item: skip to the end of its braces (or its `;`).
                depth, k, opened = 0, j, False
                while k < len(lines):
                    depth += lines[k].count("{") - lines[k].count("}")
                    opened = opened or "{" in lines[k]
                    if (opened and depth <= 0) or (not opened and lines[k].rstrip().endswith(";")):
                        break
                    k += 1
                i = k + 1
                continue
        keep.append(line)
        i += 1
    return "\n".join(keep), test_only


def group_items(rest: str) -> list[str]:
    """The items of a `{a, b::c, d::{e}}` group at the start of `rest`, as written."""
    depth, item, items = 0, "", []
    for c in rest:
        if c == "{":
            depth += 1
            if depth == 1:
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                items.append(item)
                break
        if depth == 1 and c == ",":
            items.append(item)
            item = ""
        else:
            item += c
    return items


PATH_SEGMENTS = re.compile(r"\s*([A-Za-z_]\w*(?:\s*::\s*[A-Za-z_]\w*)*)")


def expand(text: str, base: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The paths `text` starts with, below `base`: `a::b`, or `a::{b, c::{d}}` and `{a, b}`."""
    text = text.lstrip()
    if text.startswith("{"):
        out: set[tuple[str, ...]] = set()
        for it in group_items(text):
            out |= expand(it, base)
        return out
    m = PATH_SEGMENTS.match(text)
    if not m:
        return set()
    seg = tuple(x.strip() for x in m.group(1).split("::"))
    rest = text[m.end():].lstrip()
    if rest.startswith("::"):
        return expand(rest[2:], base + seg)
    return {base + seg}


def crate_refs(text: str, module: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every path below the crate root that `crate::` (or, from `module`, `super::`) starts."""
    refs: set[tuple[str, ...]] = set()
    for m in re.finditer(r"\b(crate|super)::", text):
        base: tuple[str, ...] = () if m.group(1) == "crate" else module[:-1]
        rest = text[m.end():]
        while m.group(1) == "super" and rest.startswith("super::"):
            base, rest = base[:-1], rest[len("super::"):]
        refs |= expand(rest, base)
    return refs


def module_of(src: Path, p: Path) -> tuple[str, ...]:
    parts = p.relative_to(src).with_suffix("").parts
    return parts[:-1] if parts[-1] == "mod" else parts


def graph(src: Path) -> dict[str, set[str]]:
    root = src / "lib.rs" if (src / "lib.rs").exists() else src / "main.rs"
    texts: dict[Path, str] = {p: strip_comments(p.read_text()) for p in sorted(src.rglob("*.rs"))}
    test_files: set[Path] = set()
    prod: dict[Path, str] = {}
    for p, t in texts.items():
        code, test_only = production_code(t)
        prod[p] = code
        # A `mod x;` or `#[path = "..."]` is relative to the declaring file's module folder.
        here = p.parent if p.name in ("mod.rs", "lib.rs", "main.rs") else p.with_suffix("")
        for f in test_only:
            test_files.add((here / f).resolve())
            test_files.add((p.parent / f).resolve())
            test_files.add((here / f.replace(".rs", "") / "mod.rs").resolve())
    top = {src / "main.rs", src / "lib.rs"}
    files = {p: module_of(src, p) for p in texts if p not in top and p.resolve() not in test_files}
    # A folder of test-only modules (declared test-only in its parent) is left out whole.
    modules = {m for m in files.values()}
    name = {m: "::".join(m) for m in modules}
    edges: dict[str, set[str]] = {n: set() for n in name.values()}
    edges["crate"] = set()
    for p, code in prod.items():
        if p == root:
            node, mod = "crate", ()
        elif p in files:
            mod = files[p]
            node = name[mod]
        else:
            continue
        for ref in crate_refs(code, mod):
            target = "crate"
            for k in range(len(ref), 0, -1):
                if ref[:k] in modules:
                    target = name[ref[:k]]
                    break
            if target != node:
                edges[node].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main(argv: list[str]) -> int:
    show = "--graph" in argv
    dirs = [a for a in argv if a != "--graph"]
    if not dirs:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    bad = 0
    for d in dirs:
        src = Path(d)
        if not src.is_dir():
            print(f"{d}: not a directory", file=sys.stderr)
            return 2
        edges = graph(src)
        if show:
            for a in sorted(edges):
                for b in sorted(edges[a]):
                    print(f"{d}: {a} -> {b}")
        # Folders too: `a::x -> b::y` and `b::z -> a::w` is a cycle between the folders a and b
        # (layers importing each other), even when no two files form one.
        top: dict[str, set[str]] = {}
        for a, bs in edges.items():
            top.setdefault(a.split("::")[0], set()).update(b.split("::")[0] for b in bs if b.split("::")[0] != a.split("::")[0])
        found = cycles(edges)
        found += [c for c in cycles(top) if not any(set(c) <= {x.split("::")[0] for x in f} for f in found)]
        for comp in found:
            bad += 1
            graph_of = edges if all(a in edges for a in comp) and any(b in comp for a in comp for b in edges[a]) else top
            inner = {a: sorted(b for b in graph_of.get(a, ()) if b in comp) for a in comp}
            print(f"{d}: {len(comp)} modules import each other in a cycle: {', '.join(comp)}")
            for a in comp:
                print(f"    {a} -> {', '.join(inner[a])}")
    if bad:
        print(f"{bad} module cycle(s); break them (move the shared part into its own module, or pass it in)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
