"""tools/system-deps.sh installs exactly the missing system commands, and is silent when none is.

Run against a PATH of stand-ins (no real apt-get): a recording apt-get that "installs" a
package by creating its command, and a sudo that runs its command, for non-root runners.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "tools" / "system-deps.sh"
COMMANDS = ["jq", "curl", "unzip", "file", "chromium"]


def stub(path: Path, body: str = "exit 0") -> None:
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    stub(d / "sudo", '[[ $1 == -n ]] && shift; exec "$@"')
    return d


def with_apt(bin_dir: Path) -> Path:
    log = bin_dir.parent / "apt.log"
    # `apt-get install ... PKG...` creates each package's command (package name = command here).
    stub(bin_dir / "apt-get", f'''echo "$*" >> {log}
if [[ $1 == install ]]; then
  for a in "$@"; do [[ $a == -* || $a == install ]] || printf '#!/bin/bash\\n' > {bin_dir}/"$a"; done
  /bin/chmod +x {bin_dir}/*
fi''')
    return log


def run(bin_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30
    )


def test_nothing_happens_and_nothing_is_said_when_all_are_present(bin_dir: Path):
    for cmd in COMMANDS:
        stub(bin_dir / cmd)
    log = with_apt(bin_dir)
    proc = run(bin_dir)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert not log.exists(), "apt-get must not run when nothing is missing"


def test_only_the_missing_commands_are_installed(bin_dir: Path):
    for cmd in ["jq", "curl", "chromium"]:
        stub(bin_dir / cmd)
    log = with_apt(bin_dir)
    proc = run(bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq --no-install-recommends unzip file"]
    assert "installing unzip file with apt-get" in proc.stderr
    assert (bin_dir / "unzip").exists() and (bin_dir / "file").exists()


def test_without_apt_get_it_says_what_to_install(bin_dir: Path):
    for cmd in ["jq", "curl", "unzip", "chromium"]:
        stub(bin_dir / cmd)
    proc = run(bin_dir)
    assert proc.returncode == 1
    assert "missing file, and there is no apt-get here" in proc.stderr


def test_a_failed_install_is_an_error(bin_dir: Path):
    for cmd in ["jq", "curl", "unzip", "chromium"]:
        stub(bin_dir / cmd)
    stub(bin_dir / "apt-get", "exit 0")  # claims success, installs nothing
    proc = run(bin_dir)
    assert proc.returncode == 1
    assert "'file' is still not on PATH" in proc.stderr
