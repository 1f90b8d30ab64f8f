"""Every .tf file parses, and nothing account- or region-specific is hard-coded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import TERRAFORM_DIR
from tfmodel import parse_file

TF_FILES = sorted(TERRAFORM_DIR.glob("*.tf"))


def test_there_is_terraform_to_check():
    assert len(TF_FILES) >= 5


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.name)
def test_file_parses(path: Path):
    parsed = parse_file(path)
    assert parsed, f"{path.name} parsed to nothing"


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.name)
def test_no_hard_coded_account_or_region(path: Path):
    # Examples in prose (descriptions, error messages, comments) are fine; values are not.
    prose = ("#", "description", "error_message")
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith(prose))
    assert not re.search(r"(?<![0-9a-f])[0-9]{12}(?![0-9a-f])", text), f"{path.name} holds a 12-digit account id"
    region = re.search(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-)?[a-z]+-[0-9]\b", text)
    assert region is None, f"{path.name} hard-codes region {region.group(0)}"


def test_checkov_skips_carry_reasons():
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                m = re.search(r"#checkov:skip=(CKV2?_[A-Z]+_[0-9]+):(.{20,})", line)
                assert m, f"{path.name}: skip without a check id and a real reason: {line.strip()}"
