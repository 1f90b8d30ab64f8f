"""The README and the manual in docs/ say what the code does.

- the README stays a front door: at most 200 lines, the playground's commands on its first
  screen, a map naming every folder of the repository;
- every relative link in the README and docs/ points at a file (and heading) that exists;
- docs/promote.md holds the only exit-code table of the README and docs/, and it lists exactly
  the codes promote/src/cli/exit.rs defines, with the meanings the code gives them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from exit_codes import code_exit_codes, documented_exit_codes, exit_code_problems, exit_rs, plain, render, rewrite

README = ROOT / "README.md"
DOCS = ROOT / "docs"
FIRST_SCREEN = 60  # lines


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the manual belongs in docs/"
    first = "\n".join(lines[:FIRST_SCREEN])
    for command in ("make demo-up", "/build-info", "promote canary --stage live --weight 10", "promote probe --stage live",
                    "promote status", "promote rollback --stage live"):
        assert command in first, f"the README's first {FIRST_SCREEN} lines do not show `{command}`"


def tracked_folders() -> set[str]:
    """Top-level folders of the repository, and each crate under crates/, as git tracks them."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    folders = set()
    for f in files:
        parts = f.split("/")
        if len(parts) > 1:
            folders.add(parts[0] + "/")
        if parts[0] == "crates" and len(parts) > 2:
            folders.add(f"crates/{parts[1]}/")
    return folders - {"crates/"}


def readme_map() -> set[str]:
    section = README.read_text().split("\n## The repository\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+/)` \|", section, re.M))


def test_the_readme_maps_every_folder():
    folders, mapped = tracked_folders(), readme_map()
    assert sorted(folders - mapped) == [], "folders missing from the README's map (The repository): one line each"
    assert sorted(mapped - folders) == [], "the README's map names folders that do not exist"


LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    out = set()
    for m in re.finditer(r"^#+ (.+)$", path.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", m[1].strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def broken_links(path: Path) -> list[str]:
    broken = []
    for m in LINK.finditer(path.read_text()):
        target = m["target"]
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path):
    assert broken_links(path) == []


def test_the_link_check_catches_a_moved_section(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n## Exit codes\n\n[ok](#exit-codes) [moved](#the-two-engines) [gone](nowhere.md)\n")
    broken = broken_links(page)
    assert len(broken) == 2, broken
    assert broken[0].startswith("#the-two-engines: no heading #the-two-engines in ")
    assert broken[1] == "nowhere.md: no such file"


# ---- Exit codes ----------------------------------------------------------------------------
#
# The table is single-sourced in promote/src/cli/exit.rs (`TABLE`: one `Code { code, name, meaning,
# written, returned_by }` per exit code); docs/promote.md's table is held to it row by row by
# tools/exit_codes.py, which also rewrites it (`--write`). The two may cite the manual
# differently (the code by path, the page by a link), so parentheses that only cite are left
# out of the comparison.

EXIT_TABLE_HEADER = re.compile(r"^\|\s*(?:exit )?code\s*\|\s*meaning\s*\|", re.M | re.I)


def exit_code_tables() -> list[Path]:
    return [p for p in pages() if EXIT_TABLE_HEADER.search(p.read_text())]


def test_there_is_one_exit_code_table():
    assert exit_code_tables() == [DOCS / "promote.md"]


def test_the_exit_code_table_matches_exit_rs():
    documented = documented_exit_codes((DOCS / "promote.md").read_text())
    defined, every = exit_rs()
    assert len(defined) >= 8, f"promote/src/cli/exit.rs: found only {sorted(defined)}; has its format changed?"
    assert exit_code_problems(documented, defined, every) == []


def test_the_exit_code_check_catches_a_missing_a_stray_and_a_changed_code():
    documented = documented_exit_codes((DOCS / "promote.md").read_text())
    defined, every = exit_rs()
    missing = {c: m for c, m in documented.items() if c != 6}
    assert any("exit code 6" in p and "not in docs" in p for p in exit_code_problems(missing, defined, every))
    stray = {**documented, 7: ("something new", "nothing", "every command")}
    assert any("exit code 7" in p for p in exit_code_problems(stray, defined, every))
    if defined[4]:  # the table is in code: its words are held too
        changed = {**documented, 4: ("paused: the candidate was left in place",) + documented[4][1:]}
        assert any("exit code 4" in p for p in exit_code_problems(changed, defined, every))


SAMPLE_EXIT_RS = r"""
pub const SUCCESS: i32 = 0;
pub const HELD: i32 = 6;
pub const ALL: &[&str] = &["status", "canary"];
const ROLLOUTS: &[&str] = &["canary"];
pub struct Code {
    pub code: i32,
    pub meaning: &'static str,
}
pub const TABLE: &[Code] = &[
    Code {
        code: SUCCESS,
        name: "success",
        meaning: "success, including a no-op",
        written: "what the command says",
        returned_by: ALL,
    },
    Code {
        code: HELD,
        name: "held",
        meaning: "held: on `hold` (README, Canary analysis); the \"split\" stays",
        written: "the split stays",
        returned_by: ROLLOUTS,
    },
];
"""


def test_the_table_is_read_from_exit_rs_s_format():
    assert code_exit_codes(SAMPLE_EXIT_RS) == {
        0: ("success, including a no-op", "what the command says", ("status", "canary")),
        6: ('held: on `hold` (README, Canary analysis); the "split" stays', "the split stays", ("canary",)),
    }
    page = (
        "# Page\n\n## Exit codes\n\n| code | meaning | what was written | returned by |\n|---|---|---|---|\n"
        "| 0 | success, including a no-op | what the command says | every command |\n"
        '| 6 | held: on `hold` ([Canary analysis](canary-analysis.md)); the "split" stays | the split stays | `canary` |\n'
    )
    every = ("status", "canary")
    assert exit_code_problems(documented_exit_codes(page), code_exit_codes(SAMPLE_EXIT_RS), every) == []
    stale = page.replace("| the split stays |", "| nothing |")
    assert exit_code_problems(documented_exit_codes(stale), code_exit_codes(SAMPLE_EXIT_RS), every) == [
        "exit code 6: docs/promote.md's 'what was written' 'nothing' is not exit.rs's 'the split stays'"
    ]


def test_write_takes_changed_rows_from_the_code_and_keeps_the_page_s_links():
    page = (
        "# Page\n\nIntro.\n\n## Exit codes\n\nThe table.\n\n| code | meaning | what was written | returned by |\n|---|---|---|---|\n"
        "| 0 | success, including a no-op | what the command says | every command |\n"
        "| 6 | held: on `hold` ([Canary analysis](canary-analysis.md)); the \"split\" stays | nothing | `canary` |\n"
        "| 7 | gone from the code | nothing | every command |\n"
        "\nAfter the table.\n\n## Next\n\nMore.\n"
    )
    defined = code_exit_codes(SAMPLE_EXIT_RS)
    every = ("status", "canary")
    written = rewrite(page, render(defined, every, documented_exit_codes(page)))
    assert exit_code_problems(documented_exit_codes(written), defined, every) == []
    assert "([Canary analysis](canary-analysis.md))" in written, "a row worded as the code keeps its link"
    assert "| 7 |" not in written
    assert written.startswith("# Page\n\nIntro.\n\n## Exit codes\n\nThe table.\n\n| code |")
    assert written.endswith("|\n\nAfter the table.\n\n## Next\n\nMore.\n")


def test_a_citation_is_not_a_difference():
    assert plain("held on `hold` (README, Canary analysis); the message") == plain(
        "held on `hold` ([Canary analysis](canary-analysis.md)); the message"
    )
    assert plain("held (a reason)") != plain("held")


# ---- Citations of the manual in the code ----------------------------------------------------

# `docs/page.md`, optionally followed by `, "Heading"` or `#anchor`.
DOCS_CITATION = re.compile(r'docs/(?P<page>[a-z0-9-]+\.md)(?:#(?P<anchor>[a-z0-9_-]+)|,\s*"(?P<heading>[^"]+)")?')
CITING = ("*.rs", "*.py", "*.sh", "*.yml", "*.yaml", "*.toml", "*.tf", "*.json", "Makefile", "*.md")


def citation_problems(text: str, where: str) -> list[str]:
    problems = []
    for m in DOCS_CITATION.finditer(text):
        page = DOCS / m["page"]
        if not page.exists():
            problems.append(f"{where}: cites docs/{m['page']}, which does not exist")
            continue
        heading = m["anchor"] or (m["heading"] and re.sub(r"[^\w\- ]", "", m["heading"].lower()).replace(" ", "-"))
        if heading and heading not in anchors(page):
            problems.append(f"{where}: cites docs/{m['page']} at {heading!r}, a heading it does not have")
    return problems


def test_every_citation_of_the_manual_names_a_page_and_heading_that_exist():
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", *CITING], capture_output=True, text=True, check=True).stdout.split()
    problems = []
    for f in files:
        if f.startswith("docs/") or f == "tests/static/test_docs.py":
            continue
        problems += citation_problems((ROOT / f).read_text(errors="replace"), f)
    assert problems == []


def test_the_citation_check_catches_a_wrong_page_and_heading():
    text = 'see docs/engines.md, "No such heading" and docs/nowhere.md and docs/promote.md#exit-codes'
    assert citation_problems(text, "x") == [
        "x: cites docs/engines.md at 'no-such-heading', a heading it does not have",
        "x: cites docs/nowhere.md, which does not exist",
    ]


# ---- Paths the manual names ----------------------------------------------------------------

PATH_IN_TICKS = re.compile(r"`(?P<path>(?:app|bench|crates|environments|gateway|promote|terraform|tests|tools|\.github|docs)/[\w.*/{}-]*)`")


def missing_paths(text: str) -> list[str]:
    """Repository paths in backticks (globs allowed) that match no file or folder."""
    missing = []
    for m in PATH_IN_TICKS.finditer(text):
        path = m["path"].split("{", 1)[0].rstrip("/")
        if not path or any(True for _ in ROOT.glob(path)):
            continue
        missing.append(m["path"])
    return missing


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_the_manual_names_exists(path: Path):
    assert missing_paths(path.read_text()) == [], "moved or renamed? say where it is now"


def test_the_path_check_catches_a_moved_file():
    assert missing_paths("see `promote/src/nowhere.rs` and `tools/seed.py` and `app/tests/fixtures/apigw-rest-*.json`") == [
        "promote/src/nowhere.rs"
    ]
