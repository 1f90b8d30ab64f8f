"""No test double in a shipped binary: the stand-ins (promote's fake cloud and fake CodeDeploy,
`Ui::capture`, `Interrupt::trigger`, the probe's test server) are compiled only under
`cfg(test)` or the crates' "testing" feature, and only dev-dependencies enable that feature.

Two checks: the declarations carry the cfg, and cargo's own resolution of a normal (non-dev)
build of every shipped crate enables no "testing" feature.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import ROOT

CFG = re.compile(r'#\[cfg\(any\(test, feature = "testing"\)\)\]|#\[cfg\(test\)\]')

# (file, a declaration that must be behind the cfg)
GATED = [
    ("promote/src/cloud.rs", "pub mod fake;"),
    ("promote/src/cloud.rs", "pub mod fake_codedeploy;"),
    ("promote/src/cli/ui.rs", "pub fn capture("),
    ("promote/src/cli/ui.rs", "pub fn output("),
    ("promote/src/cli/interrupt.rs", "pub fn trigger("),
    ("promote/src/cli/interrupt.rs", "pub fn is_holding("),
    ("crates/probe/src/lib.rs", "pub mod testing;"),
]


@pytest.mark.parametrize("path,decl", GATED)
def test_declaration_is_test_only(path, decl):
    lines = (ROOT / path).read_text().splitlines()
    at = [i for i, line in enumerate(lines) if line.strip().startswith(decl)]
    assert at, f"{decl} not found in {path}"
    # The cfg sits among the attributes and doc comments right above the declaration.
    above = []
    for line in reversed(lines[: at[0]]):
        s = line.strip()
        if not (s.startswith("#[") or s.startswith("///")):
            break
        above.append(s)
    assert any(CFG.fullmatch(s) for s in above), f"{path}: `{decl}` is not behind cfg(test) or the testing feature"


@pytest.mark.skipif(shutil.which("cargo") is None, reason="needs cargo")
@pytest.mark.parametrize("package", ["promote", "probe", "gateway", "app", "birthday"])
def test_a_normal_build_enables_no_testing_feature(package):
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--offline", "-q", "-p", package, "-e", "normal", "-f", "{p} {f}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip(), "cargo tree printed nothing"
    offending = [line for line in out.splitlines() if re.search(r"\btesting\b", line)]
    assert not offending, f"a release build of {package} would enable a test double: {offending}"
