#!/usr/bin/env python3
"""Writes one section of bench/RESULTS.md: the figures a bench script printed on stdout,
stamped with the date, the commit and the machine. Only its own section changes; the others
stay byte for byte. Called by bench/results.sh, never by hand: the figures in RESULTS.md are
what a script printed, not what someone typed.

    bench/results.py SECTION COMMAND < figures

Standard library only, so it runs with whichever python3 a bench script finds.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def begin(section: str) -> str:
    return f"<!-- bench:{section} -->"


def end(section: str) -> str:
    return f"<!-- /bench:{section} -->"


def replace_section(text: str, section: str, body: str) -> str:
    """`text` with the part between `section`'s markers (markers included) replaced by `body`
    between fresh markers; a section not there yet is appended."""
    if not SECTION_NAME.fullmatch(section):
        raise ValueError(f"section name {section!r}: use lowercase letters, digits, '-' and '_'")
    block = f"{begin(section)}\n{body.rstrip()}\n{end(section)}"
    start = text.find(begin(section))
    if start < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    stop = text.find(end(section), start)
    if stop < 0:
        raise ValueError(f"{begin(section)} has no closing {end(section)}")
    return text[:start] + block + text[stop + len(end(section)):]


def git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


def commit() -> str:
    sha = git("rev-parse", "--short=12", "HEAD")
    if not sha:
        return "commit unknown (not a git checkout)"
    # RESULTS.md itself is what is being written: its own changes do not make a tree dirty.
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/RESULTS.md")
    return f"commit {sha}" + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
        memory = f", {kib / 1048576:.0f} GiB"
    except (OSError, TypeError):
        pass
    load = f", load {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}{load}"


def section_body(section: str, command: str, figures: str, when: datetime.datetime) -> str:
    stamp = when.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"## {section}\n\n"
        f"`{command}`, {stamp}, {commit()}; machine: {machine()}.\n\n"
        f"```text\n{figures.rstrip()}\n```"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: bench/results.py SECTION COMMAND < figures", file=sys.stderr)
        return 2
    section, command = argv[1], argv[2]
    figures = sys.stdin.read()
    if not figures.strip():
        print(f"bench/results.py: no figures for section {section}; RESULTS.md left as it was", file=sys.stderr)
        return 1
    path = Path(os.environ.get("BENCH_RESULTS_FILE", ROOT / "bench" / "RESULTS.md"))
    text = path.read_text() if path.exists() else "# Benchmark figures\n"
    body = section_body(section, command, figures, datetime.datetime.now(datetime.timezone.utc))
    path.write_text(replace_section(text, section, body))
    print(f"bench/results.py: wrote section {section} of {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
