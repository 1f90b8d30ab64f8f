#!/usr/bin/env python3
"""docs/promote.md's exit-code table, held to the one in code (`TABLE` in promote/src/cli/exit.rs).

    python3 tools/exit_codes.py           checks: prints each row that differs, exits 1 if any
    python3 tools/exit_codes.py --write   rewrites the page's table from the code

A row the page words like the code (links and citations aside: the code cites the manual by
path, the page by a link) is kept as the page has it; any other row is taken from the code.
tests/static/test_docs.py runs the check. Standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXIT_RS = ROOT / "promote" / "src" / "cli" / "exit.rs"
PAGE = ROOT / "docs" / "promote.md"
RUST_STR = r'"((?:[^"\\]|\\.)*)"'
HEADER = "| code | meaning | what was written | returned by |\n|---|---|---|---|"


def plain(text: str) -> str:
    """Text as a reader compares it: links to their words, citations dropped, one space."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"<cite>\1</cite>", text)
    text = re.sub(r"\s*\([^()]*(?:README|docs/|<cite>)[^()]*\)", "", text)
    return re.sub(r"\s+", " ", text.replace("<cite>", "").replace("</cite>", "")).strip()


def documented_exit_codes(text: str) -> dict[int, tuple[str, ...]]:
    """Code -> its row's other cells, from the table under docs/promote.md's "## Exit codes"."""
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = tuple(cells[1:])
    return rows


def code_exit_codes(source: str) -> dict[int, tuple[str, ...]]:
    """Code -> (meaning, what was written, returned by) from exit.rs's TABLE.

    An exit.rs without TABLE (the codes as constants only) gives the codes with empty cells:
    then only the codes are compared."""
    consts = {name: int(n) for name, n in re.findall(r"pub const ([A-Z_]+): i32 = (\d+);", source)}
    lists = {
        name: tuple(re.findall(r'"([^"]+)"', body))
        for name, body in re.findall(r"const ([A-Z_]+): &\[&str\] = &\[(.*?)\];", source, re.S)
    }
    rows = {}
    for block in re.findall(r"\bCode \{\s*(code:.*?)\n\s*\}", source, re.S):
        field = lambda name: re.search(rf"\b{name}:\s*{RUST_STR}", block, re.S)[1].replace('\\"', '"')
        code = re.search(r"\bcode:\s*([A-Z_]+|\d+)", block)[1]
        by = re.search(r"\breturned_by:\s*([A-Z_]+)", block)[1]
        rows[consts[code] if code in consts else int(code)] = (field("meaning"), field("written"), lists[by])
    if not rows:
        return {0: ()} | {n: () for n in consts.values()}
    return rows


def returned_by(cell: str) -> tuple[str, ...]:
    if cell == "every command":
        return ("every command",)
    return tuple(re.findall(r"`([a-z-]+)`", cell))


def exit_code_problems(documented: dict[int, tuple[str, ...]], defined: dict[int, tuple[str, ...]], every: tuple[str, ...]) -> list[str]:
    problems = []
    for code in sorted(set(documented) | set(defined)):
        if code not in documented:
            problems.append(f"exit code {code} is defined in promote/src/cli/exit.rs but not in docs/promote.md")
        elif code not in defined:
            problems.append(f"exit code {code} is in docs/promote.md but promote/src/cli/exit.rs does not define it")
        elif defined[code]:
            meaning, written, by = defined[code]
            doc = documented[code] + ("",) * 3
            if plain(doc[0]) != plain(meaning):
                problems.append(f"exit code {code}: docs/promote.md's meaning {plain(doc[0])!r} is not exit.rs's {plain(meaning)!r}")
            if plain(doc[1]) != plain(written):
                problems.append(f"exit code {code}: docs/promote.md's 'what was written' {plain(doc[1])!r} is not exit.rs's {plain(written)!r}")
            want = ("every command",) if by == every else by
            if returned_by(doc[2]) != want:
                problems.append(f"exit code {code}: docs/promote.md says returned by {returned_by(doc[2])}, exit.rs {want}")
    return problems


def exit_rs(source: str | None = None) -> tuple[dict[int, tuple[str, ...]], tuple[str, ...]]:
    """(code -> row, every subcommand) from exit.rs."""
    source = EXIT_RS.read_text() if source is None else source
    every = re.search(r"pub const ALL: &\[&str\] = &\[(.*?)\];", source, re.S)
    return code_exit_codes(source), tuple(re.findall(r'"([^"]+)"', every[1])) if every else ()


def render(defined: dict[int, tuple[str, ...]], every: tuple[str, ...], documented: dict[int, tuple[str, ...]]) -> str:
    rows = [HEADER]
    for code, (meaning, written, by) in sorted(defined.items()):
        doc = documented.get(code, ()) + ("",) * 3
        meaning = doc[0] if plain(doc[0]) == plain(meaning) else meaning
        written = doc[1] if plain(doc[1]) == plain(written) else written
        who = "every command" if by == every else ", ".join(f"`{c}`" for c in by)
        rows.append(f"| {code} | {meaning} | {written} | {who} |")
    return "\n".join(rows)


def rewrite(page: str, table: str) -> str:
    head, rest = page.split("\n## Exit codes\n", 1)
    section, sep, tail = rest.partition("\n## ")
    lines = section.split("\n")
    first = next(i for i, l in enumerate(lines) if l.startswith("|"))
    last = max(i for i, l in enumerate(lines) if l.startswith("|"))
    section = "\n".join(lines[:first] + [table] + lines[last + 1:])
    return head + "\n## Exit codes\n" + section + sep + tail


def main(argv: list[str]) -> int:
    page = PAGE.read_text()
    defined, every = exit_rs()
    if "--write" in argv:
        if not all(defined.values()):
            print("tools/exit_codes.py: promote/src/cli/exit.rs has no TABLE to write from", file=sys.stderr)
            return 1
        PAGE.write_text(rewrite(page, render(defined, every, documented_exit_codes(page))))
        print("tools/exit_codes.py: wrote the exit-code table of docs/promote.md", file=sys.stderr)
        return 0
    problems = exit_code_problems(documented_exit_codes(page), defined, every)
    for p in problems:
        print(p)
    if problems:
        print("fix: python3 tools/exit_codes.py --write", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
