#!/usr/bin/env python3
"""Validate environments/: each file against its JSON Schema, then the rules a schema cannot express.

    .venv/bin/python tools/check_environments.py [DIR]     (DIR defaults to environments/)

Exit 0 and one summary line when every file is valid; exit 2 and one line per problem
(file, what is wrong, what to do) otherwise. Terraform and `promote` read the same files,
so this runs in `make test` before either of them sees a bad file.

Rules beyond the schema:
- the file stem is a stage name usable as API Gateway stage, Lambda alias and GitHub environment;
- exactly one stage has "upstream": null, every other upstream names an existing stage, and the
  stages form one linear chain (no fork, no cycle);
- canary weights strictly increase and the last one is 100;
- an `analysis` block that judges relatively (`judge_relative`) uses the "metrics" source;
- alarm names are unique across all stages (CloudWatch names are unique per account and region);
- every bake (other than 0, no bake) lasts at least the stage's longest alarm window
  (period_seconds x evaluation_periods): a shorter one passes before the alarm could fire.
  Test fixtures that shorten bakes set "test_fixture_short_bakes": true in their copy;
- a stage with "engine": "codedeploy" has steps CodeDeploy can run (`codedeploy_config`, the same
  rules and messages as crates/rollout/src/codedeploy.rs), and hooks only with that engine;
- the names Terraform derives from function and stage names fit AWS's length limits
  (`derived_names` spells them out; tests/static checks they match terraform/).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "environments"
PROJECT_FILE = "project.json"
STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# IAM role names are capped at 64 characters, CodeDeploy deployment config names at 100.
IAM_ROLE_NAME_MAX = 64
CODEDEPLOY_CONFIG_NAME_MAX = 100


def derived_names(project: dict, stages: dict[str, dict]) -> list[tuple[str, str, int]]:
    """(what, name, limit) of every length-capped name terraform/ builds from these files."""
    fn = project["function_name"]
    out = [
        ("IAM role", f"{fn}-lambda", IAM_ROLE_NAME_MAX),
        ("IAM role", f"{fn}-publish", IAM_ROLE_NAME_MAX),
        ("IAM role", f"{fn}-apigateway-logs", IAM_ROLE_NAME_MAX),
    ]
    for name in sorted(stages):
        out.append(("IAM role", f"{fn}-deploy-{name}", IAM_ROLE_NAME_MAX))
        if engine(stages[name]) == "codedeploy":
            out.append(("IAM role", f"{fn}-codedeploy-{name}", IAM_ROLE_NAME_MAX))
        config, _ = codedeploy_config(stages[name]["strategy"])
        if engine(stages[name]) == "codedeploy" and config is not None:
            out.append(("CodeDeploy deployment config", f"{fn}-{name}-{config_name_suffix(config)}", CODEDEPLOY_CONFIG_NAME_MAX))
    return out


@dataclass
class Report:
    """Outcome of a check: problems found, and the stage order when the chain is sound."""

    errors: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _load(path: Path, report: Report) -> object | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        report.errors.append(f"{path}: missing; create it (see README, Environments)")
    except json.JSONDecodeError as e:
        report.errors.append(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})")
    return None


def _schema_errors(path: Path, data: object, schema: dict) -> list[str]:
    validator = Draft202012Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"{path}: {where}: {err.message}")
    return out


def check(environments_dir: str | Path = DEFAULT_DIR) -> Report:
    """Validate every file of `environments_dir`; never raises for bad content."""
    d = Path(environments_dir)
    report = Report()
    if not d.is_dir():
        report.errors.append(f"{d}: not a directory")
        return report
    schema_dir = d / "schema"
    project_schema = _load(schema_dir / "project.schema.json", report)
    stage_schema = _load(schema_dir / "stage.schema.json", report)
    if not report.ok:
        return report

    project = _load(d / PROJECT_FILE, report)
    if project is not None:
        report.errors += _schema_errors(d / PROJECT_FILE, project, project_schema)

    stages: dict[str, dict] = {}
    for path in sorted(d.glob("*.json")):
        if path.name == PROJECT_FILE:
            continue
        if not STAGE_NAME.match(path.stem):
            report.errors.append(
                f"{path}: stage name '{path.stem}' must be lowercase letters, digits and _ starting "
                "with a letter (it names the API stage, the Lambda alias and the GitHub environment)"
            )
            continue
        data = _load(path, report)
        if data is None:
            continue
        errors = _schema_errors(path, data, stage_schema)
        report.errors += errors
        if not errors:
            stages[path.stem] = data
    if not stages and report.ok:
        report.errors.append(f"{d}: no stage files; add one <stage>.json per stage")
    if not report.ok:
        return report

    order, chain_errors = stage_chain(d, stages)
    report.order = order
    report.errors += chain_errors
    for name, stage in stages.items():
        report.errors += _strategy_errors(d / f"{name}.json", stage["strategy"])
        report.errors += analysis_errors(d / f"{name}.json", stage)
        report.errors += bake_errors(d / f"{name}.json", stage)
        report.errors += engine_errors(d / f"{name}.json", stage)
    report.errors += _alarm_name_errors(d, stages)
    for what, name, limit in derived_names(project, stages):
        if len(name) > limit:
            report.errors.append(
                f"{d}: the {what} name '{name}' that Terraform derives is {len(name)} characters, over AWS's "
                f"{limit}; shorten function_name in project.json or the stage file's name"
            )
    if not report.ok:
        report.order = []
    return report


def stage_chain(d: Path, stages: dict[str, dict]) -> tuple[list[str], list[str]]:
    """Orders stages along their `upstream` links: (order, errors); the chain must be linear."""
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


def _strategy_errors(path: Path, strategy: dict) -> list[str]:
    if strategy["type"] != "canary":
        return []
    weights = [step["weight"] for step in strategy["steps"]]
    errors = []
    for i in range(1, len(weights)):
        if weights[i] <= weights[i - 1]:
            errors.append(
                f"{path}: strategy/steps/{i}: weight {weights[i]} must be greater than the previous step's "
                f"{weights[i - 1]} (weights strictly increase)"
            )
    if weights[-1] != 100:
        errors.append(f"{path}: strategy/steps: the last weight is {weights[-1]}; it must be 100 (all traffic)")
    return errors


def alarm_window_seconds(alarm: dict) -> int:
    """How much data an alarm needs before it can fire (the schema's defaults: 60 s, 1 period)."""
    return alarm.get("period_seconds", 60) * alarm.get("evaluation_periods", 1)


def bake_errors(path: Path, stage: dict) -> list[str]:
    """Bakes shorter than the stage's longest alarm window; the same rule as promote's loader."""
    if stage.get("test_fixture_short_bakes") or not stage["alarms"]:
        return []
    slowest = max(stage["alarms"], key=alarm_window_seconds)
    window = alarm_window_seconds(slowest)
    strategy = stage["strategy"]
    if strategy["type"] == "canary":
        bakes = [(f"strategy/steps/{i}/bake_seconds", s["bake_seconds"]) for i, s in enumerate(strategy["steps"])]
    else:
        bakes = [("strategy/bake_seconds", strategy.get("bake_seconds", 0))]
    return [
        f"{path}: {where}: a {secs} s bake ends before alarm '{slowest['name']}' could fire: it needs "
        f"{slowest.get('evaluation_periods', 1)} period(s) of {slowest.get('period_seconds', 60)} s = {window} s "
        f"of data; set bake_seconds to at least {window} (or 0 for no bake), or shorten that alarm's "
        "period_seconds x evaluation_periods"
        for where, secs in bakes
        if 0 < secs < window
    ]


def _alarm_name_errors(d: Path, stages: dict[str, dict]) -> list[str]:
    seen: dict[str, str] = {}
    errors = []
    for name in sorted(stages):
        for alarm in stages[name]["alarms"]:
            other = seen.get(alarm["name"])
            if other is not None:
                where = "twice in this file" if other == name else f"also in {other}.json"
                errors.append(
                    f"{d / (name + '.json')}: alarm name '{alarm['name']}' is used {where}; "
                    "CloudWatch alarm names are unique per account and region"
                )
            seen[alarm["name"]] = name
    return errors


def analysis_sources(stage: dict) -> list[str]:
    """The evidence sources a stage's bakes consult: its `analysis.sources`, or the default by
    strategy (a canary judges per-version metrics beside its alarms; all at once, alarms only).
    The same rule as promote's loader (crates/rollout/src/config.rs, Analysis::default_for)."""
    default = ["alarms", "metrics"] if stage["strategy"]["type"] == "canary" else ["alarms"]
    return stage.get("analysis", {}).get("sources", default)


def analysis_errors(path: Path, stage: dict) -> list[str]:
    """Rules of the `analysis` block beyond the schema (the same as promote's loader)."""
    analysis = stage.get("analysis", {})
    if analysis.get("judge_relative") and "metrics" not in analysis_sources(stage):
        return [
            f"{path}: analysis/judge_relative: judging relatively needs the \"metrics\" source (an alarm already "
            "firing is then left to the per-version judge); add it to analysis/sources"
        ]
    return []


# ---- The CodeDeploy engine (README, "The two engines") -------------------------------------

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


def _slashed(dotted: str) -> str:
    return re.sub(r"\[(\d+)\]", r"/\1", dotted).replace(".", "/")


def engine_errors(path: Path, stage: dict) -> list[str]:
    """A codedeploy stage whose steps CodeDeploy cannot run; hooks on a stage promote shifts."""
    strategy = stage["strategy"]
    if engine(stage) != "codedeploy":
        if strategy.get("hooks"):
            return [
                f"{path}: strategy/hooks: hooks are CodeDeploy lifecycle hooks and the alias engine runs none; "
                'set "engine": "codedeploy" or remove them'
            ]
        return []
    _, refused = codedeploy_config(strategy)
    if refused is None:
        return []
    at, why = refused
    return [f"{path}: {_slashed(at)}: {why}"]


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    report = check(argv[0] if argv else DEFAULT_DIR)
    if not report.ok:
        for line in report.errors:
            print(f"error: {line}", file=sys.stderr)
        print(f"{len(report.errors)} problem(s) in the environments files", file=sys.stderr)
        return 2
    print(f"environments ok: {len(report.order)} stages, {' -> '.join(report.order)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
