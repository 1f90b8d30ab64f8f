"""CONTRACTS.md exists for what cites it, and says what the code does.

- every file that cites CONTRACTS.md names one of its sections (`CONTRACTS.md, "Section"`),
  and that section exists;
- the JSON event stream table lists exactly the events promote/src emits;
- the exit code table lists exactly the codes promote/src/cli/exit.rs defines, and 0.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT

CONTRACTS = ROOT / "CONTRACTS.md"
# `CONTRACTS.md, "Section"` or `CONTRACTS.md ("Section")`, possibly across a comment's line break.
CITATION = re.compile(r'CONTRACTS\.md(?P<rest>,?[\s/!#*]*\(?"(?P<section>[^"]+)")?')


def contracts() -> str:
    return CONTRACTS.read_text()


def sections() -> dict[str, str]:
    """Heading -> body of each `## ` section."""
    parts = re.split(r"^## (.+)$", contracts(), flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def citing_files() -> list[str]:
    out = subprocess.run(
        ["git", "grep", "-l", "CONTRACTS.md", "--", ".", ":!CONTRACTS.md", ":!tests/static/test_contracts.py",
         # The unit tests that read CONTRACTS.md and hold its tables to the code.
         ":!promote/src/cli/events_tests.rs", ":!promote/src/cli/exit_tests.rs"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    return out.stdout.split()


def test_every_citation_names_a_section_that_exists():
    files = citing_files()
    assert files, "nothing cites CONTRACTS.md any more: is this test still needed?"
    known = sections()
    problems = []
    for name in files:
        text = (ROOT / name).read_text()
        for m in CITATION.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            if not m["section"]:
                problems.append(f'{name}:{line}: cites CONTRACTS.md without a section; write CONTRACTS.md, "<section>"')
            elif m["section"] not in known:
                problems.append(f"{name}:{line}: CONTRACTS.md has no section {m['section']!r}; it has {sorted(known)}")
    assert problems == []


def table_first_column(section: str) -> list[str]:
    """The first cell of each row of the section's table, backticks removed."""
    rows = [line for line in sections()[section].splitlines() if line.startswith("| ")]
    return [row.split("|")[1].strip().strip("`") for row in rows[1:]]


def emitted_events() -> set[str]:
    events = set()
    for path in (ROOT / "promote" / "src").rglob("*.rs"):
        if path.name.endswith("tests.rs"):
            continue
        events |= set(re.findall(r'"event":\s*"([a-z_]+)"', path.read_text()))
    # The typed events: `Struct => "name",` in events.rs's `events!` list.
    events |= set(re.findall(r'^\s*\w+(?:<\'a>)? => "([a-z_]+)",$', (ROOT / "promote/src/cli/events.rs").read_text(), flags=re.M))
    return events


def test_the_event_table_lists_every_event_promote_emits():
    documented = set(table_first_column("JSON event stream")) - {"event"}
    emitted = emitted_events()
    assert "error" in emitted and "stage_status" in emitted, emitted
    assert sorted(emitted - documented) == [], "emitted by promote/src but not documented"
    assert sorted(documented - emitted) == [], "documented but emitted nowhere in promote/src"


def test_the_exit_code_table_matches_exit_rs():
    source = (ROOT / "promote" / "src" / "cli" / "exit.rs").read_text()
    defined = {int(n) for n in re.findall(r"pub const [A-Z_]+: i32 = (\d+);", source)}
    documented = {int(c) for c in table_first_column("Exit codes") if c.isdigit()}
    assert documented == defined | {0}


@pytest.mark.parametrize("stray", ['CONTRACTS.md).', 'CONTRACTS.md, "No such section"'])
def test_the_citation_check_catches_a_bad_citation(stray: str):
    m = CITATION.search(f"see {stray}")
    assert m is not None
    assert not m["section"] or m["section"] not in sections()
