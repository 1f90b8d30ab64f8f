"""tools/modcycles.py, the module-cycle check of `make lint`, on small made-up crates."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

TOOL = ROOT / "tools/modcycles.py"


def run(src) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), str(src)], capture_output=True, text=True)


def crate(tmp_path, files: dict[str, str]):
    src = tmp_path / "src"
    src.mkdir()
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    return src


def test_a_cycle_fails_and_is_named(tmp_path):
    src = crate(tmp_path, {
        "lib.rs": "pub mod a;\npub mod b;\npub mod c;\n",
        "a.rs": "use crate::b::B;\npub struct A;\n",
        "b.rs": "use crate::{c::C, a};\npub struct B;\n",
        "c.rs": "pub struct C;\n",
    })
    r = run(src)
    assert r.returncode == 1
    assert "2 modules import each other in a cycle: a, b" in r.stdout


def test_test_code_and_comments_make_no_cycle(tmp_path):
    src = crate(tmp_path, {
        "lib.rs": "pub mod a;\npub mod b;\n#[cfg(any(test, feature = \"testing\"))]\npub mod fake;\n",
        "a.rs": "use crate::b::B;\n#[cfg(test)]\n#[path = \"a_tests.rs\"]\nmod tests;\n",
        "a_tests.rs": "use crate::fake::F;\n",
        "b.rs": "/// see [`crate::a`]\npub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::*;\n}\n",
        "fake.rs": "use crate::a::A;\npub struct F;\n",
    })
    r = run(src)
    assert r.returncode == 0, r.stdout


def test_modules_in_folders_count_by_path(tmp_path):
    src = crate(tmp_path, {
        "lib.rs": "pub mod spec;\npub mod cloud;\n",
        "spec/mod.rs": "mod stage;\nmod analysis;\nmod strategy;\n",
        "spec/stage.rs": "use super::analysis::Analysis;\nuse super::strategy::Strategy;\n",
        "spec/analysis.rs": "use super::stage::Stage;\npub struct Analysis;\n",
        "spec/strategy.rs": "pub struct Strategy;\n",
        "cloud/mod.rs": "pub mod aws;\n",
        "cloud/aws.rs": "use crate::spec::{strategy::Strategy};\n",
    })
    r = run(src)
    assert r.returncode == 1
    assert "2 modules import each other in a cycle: spec::analysis, spec::stage" in r.stdout
    (src / "spec/analysis.rs").write_text("use super::strategy::Strategy;\npub struct Analysis;\n")
    r = run(src)
    assert r.returncode == 0, r.stdout
    graph = subprocess.run([sys.executable, str(TOOL), "--graph", str(src)], capture_output=True, text=True).stdout
    assert f"{src}: cloud::aws -> spec::strategy" in graph


def test_folders_that_import_each_other_are_a_cycle(tmp_path):
    src = crate(tmp_path, {
        "lib.rs": "pub mod read;\npub mod evidence;\n",
        "read.rs": "pub mod probe;\npub mod status;\n",
        "read/probe.rs": "use crate::evidence::source::reach;\n",
        "read/status.rs": "pub fn s() {}\n",
        "evidence.rs": "pub mod source;\n",
        "evidence/source.rs": "use crate::read::status::s;\npub fn reach() {}\n",
    })
    r = run(src)
    assert r.returncode == 1
    assert "2 modules import each other in a cycle: evidence, read" in r.stdout
