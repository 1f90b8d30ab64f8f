#!/usr/bin/env python3
"""Validate environments/ with `promote check`, which holds every rule in one place.

    .venv/bin/python tools/check_environments.py [DIR]     (DIR defaults to environments/)

The rules live in promote's own code: each field's in the JSON schemas of environments/schema/,
checked by crates/rollout; the rules across fields and files (the stage chain, canary steps,
bakes against alarm windows, alarm names, what CodeDeploy can run, the names Terraform derives)
in crates/rollout/src/validate.rs. This file runs `promote check --output json` for the
tests and tools written in Python; `make test-static` runs `promote check` itself.
Exit 0 and one summary line when every file is valid; exit 2 and one line per problem.

What stays here is no rule: models of what Terraform and the seed build from valid files
(the stage order, the CodeDeploy deployment config of a plan, the names Terraform derives),
which tools/seed.py and the Terraform tests compare with terraform/.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "environments"


@dataclass
class Report:
    """Outcome of a check: problems found (one line each), and the stage order when valid."""

    errors: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@functools.cache
def promote_binary() -> str:
    """`$PROMOTE_BIN`, or the workspace's debug build of promote (built if stale)."""
    if os.environ.get("PROMOTE_BIN"):
        return os.environ["PROMOTE_BIN"]
    build = subprocess.run(
        ["cargo", "build", "--quiet", "--locked", "-p", "promote", "--bin", "promote", "--message-format=json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    for line in build.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "promote" and msg.get("executable"):
            return msg["executable"]
    raise RuntimeError("cargo built no promote binary")


def run_check(environments_dir: str | Path, output: str = "json") -> subprocess.CompletedProcess[str]:
    """`promote check` on `environments_dir`: its exit code, stdout and stderr."""
    return subprocess.run(
        [promote_binary(), "check", "--environments", str(environments_dir), "--output", output],
        capture_output=True, text=True, check=False, env={**os.environ, "NO_COLOR": "1"},
    )


def check(environments_dir: str | Path = DEFAULT_DIR) -> Report:
    """Every problem `promote check` finds in `environments_dir`; never raises for bad content."""
    done = run_check(environments_dir)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    checked = next((e for e in events if e["event"] == "checked"), None)
    if checked is None:
        errors = [e["message"] for e in events if e["event"] == "error"] or [done.stderr.strip()]
        return Report(errors=errors)
    assert checked["valid"] == (done.returncode == 0), (done.returncode, checked)
    return Report(errors=[p["message"] for p in checked["problems"]], order=checked["stages"])


# IAM role names are capped at 64 characters, CodeDeploy deployment config names at 100
# (promote check refuses longer ones: crates/rollout/src/validate.rs, terraform_names).
IAM_ROLE_NAME_MAX = 64
CODEDEPLOY_CONFIG_NAME_MAX = 100


def derived_names(project: dict, stages: dict[str, dict]) -> list[tuple[str, str, int]]:
    """(what, name, limit) of every length-capped name terraform/ builds from these files."""
    fn = project["functions"][0]["name"]  # the first function names the project's shared resources
    # Each function has its own execution role (terraform/lambda.tf).
    out = [("IAM role", f"{f['name']}-lambda", IAM_ROLE_NAME_MAX) for f in project["functions"]]
    out += [
        ("IAM role", f"{fn}-publish", IAM_ROLE_NAME_MAX),
        ("IAM role", f"{fn}-apigateway-logs", IAM_ROLE_NAME_MAX),
    ]
    for name in sorted(stages):
        out.append(("IAM role", f"{fn}-deploy-{name}", IAM_ROLE_NAME_MAX))
        if engine(stages[name]) == "codedeploy":
            out.append(("IAM role", f"{fn}-codedeploy-{name}", IAM_ROLE_NAME_MAX))
        config, _ = codedeploy_config(stages[name]["strategy"])
        if engine(stages[name]) == "codedeploy" and config is not None:
            # One config per function: each has its own group (terraform/codedeploy.tf).
            out += [
                ("CodeDeploy deployment config", f"{f['name']}-{name}-{config_name_suffix(config)}", CODEDEPLOY_CONFIG_NAME_MAX)
                for f in project["functions"]
            ]
    return out


def stage_chain(d: Path, stages: dict[str, dict]) -> tuple[list[str], list[str]]:
    """Orders stages along their `upstream` links: (order, errors); the chain must be linear.
    The seed's reading of a directory it may be handed before `promote check` has seen it."""
    roots = sorted(s for s, c in stages.items() if c.get("upstream") is None)
    if len(roots) != 1:
        return [], [f"{d}: exactly one stage must have \"upstream\": null (the first stage), found {len(roots)}: {roots}"]
    errors = []
    next_of: dict[str, str] = {}
    for name in sorted(stages):
        up = stages[name].get("upstream")
        if up is None:
            continue
        if up == name:
            errors.append(f"{d / (name + '.json')}: upstream is the stage itself; name the stage it follows")
        elif up not in stages:
            errors.append(f"{d / (name + '.json')}: upstream '{up}' has no file {up}.json in {d}")
        elif up in next_of:
            errors.append(
                f"{d}: stages '{next_of[up]}' and '{name}' both follow '{up}'; the path to live must be linear"
            )
        else:
            next_of[up] = name
    if errors:
        return [], errors
    order = [roots[0]]
    while order[-1] in next_of:
        order.append(next_of[order[-1]])
    if len(order) != len(stages):
        cut = sorted(set(stages) - set(order))
        return [], [f"{d}: stages {cut} are not reachable from '{roots[0]}' (their upstream links form a cycle)"]
    return order, []


# ---- The CodeDeploy engine (docs/engines.md) -------------------------------------

_USE_ALIAS = 'or "engine": "alias", which runs any plan'


def engine(stage: dict) -> str:
    """Who shifts the stage's alias: promote ("alias", the default) or CodeDeploy."""
    return stage["strategy"].get("engine", "alias")


def _pct(hundredths: int) -> str:
    return str(hundredths // 100) if hundredths % 100 == 0 else f"{hundredths / 100:g}"


def codedeploy_config(strategy: dict) -> tuple[dict | None, tuple[str, str] | None]:
    """The CodeDeploy deployment configuration that runs `strategy`, or (None, (field, why)).

    The same rules, in the same order and with the same words, as `deployment_config` in
    crates/rollout/src/codedeploy.rs; both are tested on crates/rollout/testdata/codedeploy_configs.json.
    Fields are dotted as promote's loader names them (`strategy.steps[1].bake_seconds`)."""
    if strategy["type"] == "all_at_once":
        steps = [(10000, strategy.get("bake_seconds", 0), "strategy.bake_seconds")]
    else:
        steps = [
            (round(s["weight"] * 100), s["bake_seconds"], f"strategy.steps[{i}].bake_seconds")
            for i, s in enumerate(strategy["steps"])
        ]
    n = len(steps)
    if n >= 3:
        first = steps[0][0]
        if any(w != (i + 1) * first for i, (w, _, _) in enumerate(steps)):
            listed = ", ".join(_pct(w) for w, _, _ in steps)
            return None, (
                "strategy.steps",
                "CodeDeploy shifts traffic as a canary (one share, then 100) or linearly (equal increments at equal "
                f"intervals), and steps {listed} are neither; use two steps (e.g. 10 then 100), equal increments that "
                f"reach 100 (e.g. 25, 50, 75, 100), {_USE_ALIAS}",
            )
        for i, (_, bake, at) in enumerate(steps[: n - 1]):
            if bake != steps[0][1]:
                return None, (
                    at,
                    f"a linear CodeDeploy shift waits the same interval before each increment, but step {i} bakes "
                    f"{bake} s and step 0 bakes {steps[0][1]} s; give every step before 100 the same bake_seconds, "
                    f"{_USE_ALIAS}",
                )
    if n >= 2:
        weight, bake, at = steps[0]
        if weight % 100:
            near = min(99, max(1, (weight + 50) // 100))
            return None, (
                "strategy.steps[0].weight",
                f"CodeDeploy shifts whole percents, and {_pct(weight)} is not one; use a whole number such as {near}, "
                f"{_USE_ALIAS}",
            )
        if bake == 0:
            return None, (
                at,
                "CodeDeploy waits at least one minute between shifts, and this step does not bake; give it at least "
                f'60 s (whole minutes), use "type": "all_at_once" for no wait, {_USE_ALIAS}',
            )
        if bake % 60:
            up, down = -(-bake // 60) * 60, bake // 60 * 60
            options = f"{up}" if down == 0 else f"{down} or {up}"
            return None, (
                at,
                f"CodeDeploy waits whole minutes between shifts, and {bake} s is not; use {options}, {_USE_ALIAS}",
            )
    _, last_bake, last_at = steps[-1]
    if last_bake:
        return None, (
            last_at,
            "CodeDeploy ends a Lambda deployment once all traffic is shifted (it watches the alarms only until "
            f'then), so nothing would bake {last_bake} s at 100; set it to 0, or use "engine": "alias", which '
            "bakes at 100",
        )
    if n == 1:
        return {"type": "AllAtOnce"}, None
    kind = "TimeBasedCanary" if n == 2 else "TimeBasedLinear"
    return {"type": kind, "percentage": steps[0][0] // 100, "interval_minutes": steps[0][1] // 60}, None


def config_name_suffix(config: dict) -> str:
    """The end of the deployment config's name, `<function>-<stage>-<suffix>` (terraform/codedeploy.tf)."""
    if config["type"] == "AllAtOnce":
        return "all-at-once"
    if config["type"] == "TimeBasedCanary":
        return f"canary-{config['percentage']}pct-{config['interval_minutes']}min"
    return f"linear-{config['percentage']}pct-every-{config['interval_minutes']}min"


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    done = run_check(argv[0] if argv else DEFAULT_DIR, output="table")
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
