"""bench/RESULTS.md is written by the bench scripts, never by hand.

- every bench script that prints figures hands them to bench/results.sh under its own section,
  and RESULTS.md has that section;
- the writer replaces exactly its own section, stamped with the date, the commit and the
  machine, and leaves the others byte for byte;
- a script that fails writes nothing and keeps its exit status; BENCH_RESULTS=0 only prints.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
# Every bench/*.sh prints figures, except the two that other scripts source.
SOURCED = {"stack.sh", "results.sh"}
SCRIPTS = sorted(p.name for p in BENCH.glob("*.sh") if p.name not in SOURCED)
CALL = re.compile(r'^source "\$\(dirname "\$0"\)/results\.sh"\nbench_results (?P<section>\S+) "\$@"', re.M)


def section_of(script: str) -> str:
    return script.removesuffix(".sh")


def test_the_bench_scripts_are_found():
    assert {"app.sh", "promote.sh", "gateway.sh", "probe.sh", "judge.sh", "probe_detection.sh", "release-profile.sh"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_writes_its_own_section_before_doing_anything(script: str):
    text = (BENCH / script).read_text()
    m = CALL.search(text)
    assert m, (
        f"bench/{script} does not hand its figures to bench/results.sh: put "
        f'`source "$(dirname "$0")/results.sh"` and `bench_results {section_of(script)} "$@"` right after '
        "`set -euo pipefail`, and print the figures on stdout (progress on stderr)"
    )
    assert m["section"] == section_of(script), "a script's section is named after it"
    # Before anything that builds or starts a server: the outer run only wraps the inner one.
    before = text[: m.start()]
    assert re.sub(r"(?m)^#.*\n|^set -euo pipefail\n|^\s*\n", "", before) == "", before
    code = re.sub(r"(?m)(^|\s)#.*$", "", text[m.end():])
    assert "RESULTS.md" not in code, f"bench/{script} writes RESULTS.md itself: bench/results.sh does that"


def test_results_md_has_no_section_without_a_script():
    sections = set(re.findall(r"<!-- bench:([a-z0-9_-]+) -->", RESULTS.read_text()))
    assert sections <= {section_of(s) for s in SCRIPTS}
    assert set(re.findall(r"<!-- /bench:([a-z0-9_-]+) -->", RESULTS.read_text())) == sections


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the writer with a fake bench script, outside git."""
    (tmp_path / "bench").mkdir()
    for name in ("results.sh", "results.py"):
        shutil.copy(BENCH / name, tmp_path / "bench" / name)
    (tmp_path / "bench" / "RESULTS.md").write_text(
        "# Benchmark figures\n\nIntro.\n\n<!-- bench:other -->\n## other\n\nold other\n<!-- /bench:other -->\n\n"
        "<!-- bench:fake -->\n## fake\n\nold fake figures\n<!-- /bench:fake -->\n\nTail.\n"
    )
    script = tmp_path / "bench" / "fake.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "set -euo pipefail\n"
        'source "$(dirname "$0")/results.sh"\n'
        'bench_results fake "$@"\n'
        'echo "== building" >&2\n'
        'echo "figure: ${FIGURE:-42} ms ($*)"\n'
        'exit "${FAIL:-0}"\n'
    )
    script.chmod(0o755)
    return tmp_path


def run(tree: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [str(tree / "bench" / "fake.sh"), *args],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, **env},
        timeout=60,
    )


def test_a_run_replaces_only_its_own_section(tree: Path):
    before = (tree / "bench" / "RESULTS.md").read_text()
    out = run(tree, "a", "b", RUNS="3")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "figure: 42 ms (a b)\n"
    after = (tree / "bench" / "RESULTS.md").read_text()
    assert "old fake figures" not in after
    assert "figure: 42 ms (a b)" in after
    assert "== building" not in after, "progress on stderr is not a figure"
    # The stamp: the command with its knobs, the date, the commit, the machine.
    stamp = re.search(r"`RUNS=3 bench/fake\.sh a b`, (\d{4}-\d\d-\d\d \d\d:\d\d UTC), (commit [^;]+); machine: (.+)\.", after)
    assert stamp, after
    assert stamp[2] == "commit unknown (not a git checkout)"
    assert "cores" in stamp[3]
    # Everything outside the section is as it was.
    section = re.compile(r"<!-- bench:fake -->.*?<!-- /bench:fake -->", re.S)
    assert section.sub("", after) == section.sub("", before)


def test_a_failed_run_writes_nothing_and_keeps_its_status(tree: Path):
    before = (tree / "bench" / "RESULTS.md").read_text()
    out = run(tree, FAIL="3")
    assert out.returncode == 3
    assert "RESULTS.md left as it was" in out.stderr
    assert (tree / "bench" / "RESULTS.md").read_text() == before


def test_bench_results_0_only_prints(tree: Path):
    before = (tree / "bench" / "RESULTS.md").read_text()
    out = run(tree, BENCH_RESULTS="0", FIGURE="7")
    assert out.returncode == 0 and out.stdout == "figure: 7 ms ()\n"
    assert (tree / "bench" / "RESULTS.md").read_text() == before


def test_a_new_section_is_appended(tree: Path):
    (tree / "bench" / "RESULTS.md").write_text("# Benchmark figures\n")
    assert run(tree).returncode == 0
    text = (tree / "bench" / "RESULTS.md").read_text()
    assert text.startswith("# Benchmark figures\n\n<!-- bench:fake -->\n## fake\n")
    assert text.endswith("<!-- /bench:fake -->\n")
