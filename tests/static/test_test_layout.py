"""The layout of the Rust tests, as the developers' guide sets it.

- One integration-test binary per crate: each binary under a crate's tests/ links the crate's
  dependencies (for most, the AWS SDK) again, and link time dominated `make test` on 2 cores.
- The shared test harness (crates/testkit) is only ever a dev-dependency: no test double or
  emulator harness reaches a shipped binary.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from conftest import ROOT


def members() -> list[Path]:
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]
    return [ROOT / m for m in workspace["members"]]


def integration_test_binaries(crate: Path) -> list[str]:
    """What cargo builds from tests/ by its own discovery, plus any [[test]] target."""
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    found: set[str] = set()
    tests = crate / "tests"
    if manifest["package"].get("autotests", True) and tests.is_dir():
        found |= {p.stem for p in tests.glob("*.rs")}
        found |= {p.parent.name for p in tests.glob("*/main.rs")}
    found |= {t["name"] for t in manifest.get("test", [])}
    return sorted(found)


def test_the_workspace_has_the_crates_this_checks() -> None:
    names = {m.name for m in members()}
    assert {"app", "promote", "gateway", "testkit"} <= names, names


def test_at_most_one_integration_test_binary_per_crate() -> None:
    many = {
        m.name: bins for m in members() if len(bins := integration_test_binaries(m)) > 1
    }
    assert not many, (
        "more than one integration-test binary (make them modules of tests/it/main.rs): "
        f"{many}"
    )


def test_the_harness_crates_have_their_one_binary() -> None:
    for name in ("app", "promote", "gateway"):
        assert integration_test_binaries(ROOT / name) == ["it"], name


def dependency_tables(manifest: dict) -> list[tuple[str, dict]]:
    tables = [
        (key, manifest.get(key, {})) for key in ("dependencies", "build-dependencies")
    ]
    for target, spec in manifest.get("target", {}).items():
        for key in ("dependencies", "build-dependencies"):
            tables.append((f"target.{target}.{key}", spec.get(key, {})))
    return tables


def test_testkit_is_only_a_dev_dependency() -> None:
    offenders = [
        f"{m.name}: [{table}]"
        for m in members()
        for table, deps in dependency_tables(tomllib.loads((m / "Cargo.toml").read_text()))
        if "testkit" in deps
    ]
    assert not offenders, f"testkit must stay a dev-dependency: {offenders}"
    users = [
        m.name
        for m in members()
        if "testkit" in tomllib.loads((m / "Cargo.toml").read_text()).get("dev-dependencies", {})
    ]
    assert {"app", "promote", "gateway"} <= set(users), users
