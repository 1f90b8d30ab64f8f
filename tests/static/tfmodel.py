"""The parsed Terraform module, and the few evaluations the static tests need.

Terraform names things through `for_each` and interpolation, so names only exist once the
environments files are plugged in. This is not an HCL evaluator: it knows the handful of
shapes terraform/ uses (for_each over local.stages or local.alarms, `${each.key}`,
`${local.project.<field>}` (with list indexes such as `functions[0]`), `${each.value.<path>}`, `<type>.<name>[each.key].<attr>`) and
fails loudly on anything else, so a refactor that changes a shape shows up as a failing test
rather than as a silently skipped check.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

PARSE_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

_INTERPOLATION = re.compile(r"(?<!\$)\$\{([^${}]+)\}")
_REFERENCE = re.compile(r"^\$\{(?P<type>[a-z0-9_]+)\.(?P<name>[a-z0-9_]+)\[each\.key\]\.(?P<attr>[a-z0-9_]+)\}$")


class Unsupported(Exception):
    """An expression shape these helpers do not know; extend them explicitly if it is intended."""


def parse_file(path: Path) -> dict:
    with open(path) as f:
        return hcl2.load(f, serialization_options=PARSE_OPTIONS)


@dataclass
class Module:
    """Blocks of every .tf file of a directory, keyed the way Terraform addresses them."""

    files: dict[str, dict] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    data: dict[tuple[str, str], dict] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    terraform: list[dict] = field(default_factory=list)
    providers: list[dict] = field(default_factory=list)

    def resource(self, rtype: str, name: str) -> dict:
        try:
            return self.resources[(rtype, name)]
        except KeyError:
            raise AssertionError(f"terraform/ declares no resource {rtype}.{name}") from None

    def resources_of(self, rtype: str) -> dict[str, dict]:
        return {n: body for (t, n), body in self.resources.items() if t == rtype}

    def data_source(self, dtype: str, name: str) -> dict:
        try:
            return self.data[(dtype, name)]
        except KeyError:
            raise AssertionError(f"terraform/ declares no data source {dtype}.{name}") from None


def load_module(directory: Path) -> Module:
    module = Module()
    for path in sorted(directory.glob("*.tf")):
        parsed = parse_file(path)
        module.files[path.name] = parsed
        for entry in parsed.get("resource", []):
            for rtype, by_name in entry.items():
                for name, body in by_name.items():
                    key = (rtype, name)
                    assert key not in module.resources, f"{rtype}.{name} declared twice"
                    module.resources[key] = body
        for entry in parsed.get("data", []):
            for dtype, by_name in entry.items():
                for name, body in by_name.items():
                    module.data[(dtype, name)] = body
        for block in parsed.get("locals", []):
            for name, value in block.items():
                assert name not in module.locals, f"local.{name} declared twice"
                module.locals[name] = value
        for entry in parsed.get("variable", []):
            module.variables.update(entry)
        for entry in parsed.get("output", []):
            module.outputs.update(entry)
        module.terraform += parsed.get("terraform", [])
        module.providers += parsed.get("provider", [])
    return module


def block(body: dict, name: str) -> dict:
    """The single nested block `name` of a body (hcl2 gives blocks as lists)."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block, got {blocks!r}"
    return blocks[0]


# ---------------------------------------------------------------------------------------
# Environments, as Terraform's locals see them
# ---------------------------------------------------------------------------------------


@dataclass
class Environments:
    project: dict
    stages: dict[str, dict]

    @classmethod
    def load(cls, directory: Path) -> "Environments":
        project = json.loads((directory / "project.json").read_text())
        stages = {
            p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json")) if p.name != "project.json"
        }
        return cls(project, stages)


def _squash(expr: str) -> str:
    return re.sub(r"\s+", " ", expr).strip()


def stage_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.stages: one entry per environments/*.json except project.json, keyed by file stem."""
    stage_files = _squash(module.locals["stage_files"])
    stages = _squash(module.locals["stages"])
    if stage_files != '${setsubtract(fileset(local.environments_dir, "*.json"), ["project.json"])}':
        raise Unsupported(f"local.stage_files has an unknown shape: {stage_files}")
    if stages != (
        '${{for f in local.stage_files : trimsuffix(f, ".json") => '
        'jsondecode(file("${local.environments_dir}/${f}"))}}'
    ):
        raise Unsupported(f"local.stages has an unknown shape: {stages}")
    return dict(env.stages)


def alarm_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.alarms: every stage's alarms keyed by alarm name, each knowing its stage."""
    expr = _squash(module.locals["alarms"])
    shape = re.compile(
        r"^\$\{merge\(\[for (?P<s>\w+), (?P<c>\w+) in local\.stages : "
        r"\{for (?P<a>\w+) in (?P=c)\.alarms : (?P=a)\.name => \{stage = (?P=s), kind = (?P=a)\.kind, "
        r"threshold = (?P=a)\.threshold, period_seconds = try\((?P=a)\.period_seconds, 60\), "
        r"evaluation_periods = try\((?P=a)\.evaluation_periods, 1\)\}\}\] \.\.\.\)\}$"
    )
    if not shape.match(expr):
        raise Unsupported(f"local.alarms has an unknown shape: {expr}")
    out: dict[str, dict] = {}
    for stage_name, stage in stage_instances(module, env).items():
        for alarm in stage["alarms"]:
            out[alarm["name"]] = {
                "stage": stage_name,
                "kind": alarm["kind"],
                "threshold": alarm["threshold"],
                "period_seconds": alarm.get("period_seconds", 60),
                "evaluation_periods": alarm.get("evaluation_periods", 1),
            }
    return out


# ---------------------------------------------------------------------------------------
# Several functions (terraform/environments.tf, api.tf): pinned shapes, transcribed below
# ---------------------------------------------------------------------------------------

# The account id in names that Terraform ends with it, for the renderings below (moto's).
ACCOUNT = "123456789012"

FUNCTION_SHAPES = {
    "functions": "${{for f in local.project.functions : f.name => f}}",
    "function_stages": (
        '${merge([for fname, f in local.functions : {for sname, stage in local.stages : "${fname}:${sname}" => '
        "{function = fname, stage = sname}}] ...)}"
    ),
    "tables": (
        '${merge([for fname, t in local.function_tables : {for sname, stage in local.stages : "${fname}-${sname}" => '
        "merge(t, {function = fname, stage = sname})} if contains(keys(local.functions), fname)] ...)}"
    ),
    "stage_variables": (
        "${{for sname, stage in local.stages : sname => merge({(local.project.stage_variable) = sname}, "
        "{for name, t in local.tables : t.stage_variable => name if t.stage == sname}, "
        "{for key, b in local.buckets : b.stage_variable => b.name if b.stage == sname})}}"
    ),
    "bucket_purposes": "${distinct(flatten([for f in local.project.functions : try(f.buckets, [])]))}",
    "buckets": (
        '${merge([for purpose in local.bucket_purposes : {for sname, stage in local.stages : "${purpose}-${sname}" => '
        '{purpose = purpose, stage = sname, name = lower("${local.project.rest_api_name}-${sname}-${purpose}-${local.account_id}"), '
        'stage_variable = "${purpose}Bucket", kept = contains(local.last_stages, sname)}}] ...)}'
    ),
    "function_buckets": "${{for fname, f in local.functions : fname => {all = try(f.buckets, []), trigger = try(f.trigger.bucket, null)}}}",
    "s3_triggered": '${{for fname, f in local.functions : fname => f.trigger.bucket if try(f.trigger.type, "") == "s3"}}',
    "s3_triggers": (
        '${merge([for fname, purpose in local.s3_triggered : {for sname, stage in local.stages : "${fname}:${sname}" => '
        '{function = fname, stage = sname, bucket = "${purpose}-${sname}"}}] ...)}'
    ),
    "last_stages": "${[for name, stage in local.stages : name if !contains([for s in local.stages : try(s.upstream, null)], name)]}",
    "function_alarms": (
        "${merge([for name, alarm in local.alarms : {for fname, f in local.functions : "
        '(fname == local.project.functions[0].name ? name : "${name}-${fname}") => merge(alarm, {function = fname}) '
        'if startswith(alarm.kind, "lambda_") || fname == local.project.functions[0].name}] ...)}'
    ),
    "routes": "${merge([for f in local.project.functions : {for r in f.routes : r => f.name}] ...)}",
}


def _pinned_function_local(module: Module, name: str) -> None:
    got = _squash(module.locals[name])
    if got != FUNCTION_SHAPES[name]:
        raise Unsupported(f"local.{name} has an unknown shape: {got}")


def function_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.functions: project.json's functions by name."""
    _pinned_function_local(module, "functions")
    return {f["name"]: f for f in env.project["functions"]}


def function_stage_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.function_stages: "<function>:<stage>" -> {function, stage}."""
    _pinned_function_local(module, "function_stages")
    return {
        f"{fname}:{sname}": {"function": fname, "stage": sname}
        for fname in function_instances(module, env)
        for sname in stage_instances(module, env)
    }


def table_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.tables: "<function>-<stage>" -> local.function_tables' entry plus function, stage."""
    _pinned_function_local(module, "tables")
    functions = function_instances(module, env)
    return {
        f"{fname}-{sname}": {**t, "function": fname, "stage": sname}
        for fname, t in module.locals["function_tables"].items()
        if fname in functions
        for sname in stage_instances(module, env)
    }


def stage_variable_instances(module: Module, env: Environments, account: str = ACCOUNT) -> dict[str, dict]:
    """local.stage_variables: each stage's variables (the alias, each of its tables and buckets)."""
    _pinned_function_local(module, "stage_variables")
    tables = table_instances(module, env)
    buckets = bucket_instances(module, env, account)
    return {
        sname: {
            env.project["stage_variable"]: sname,
            **{t["stage_variable"]: name for name, t in tables.items() if t["stage"] == sname},
            **{b["stage_variable"]: b["name"] for b in buckets.values() if b["stage"] == sname},
        }
        for sname in stage_instances(module, env)
    }


def bucket_instances(module: Module, env: Environments, account: str = ACCOUNT) -> dict[str, dict]:
    """local.buckets: "<purpose>-<stage>" -> {purpose, stage, name, stage_variable, kept}, one per
    purpose any function lists and per stage; names end with the account id (`account`)."""
    _pinned_function_local(module, "bucket_purposes")
    _pinned_function_local(module, "buckets")
    purposes = list(dict.fromkeys(p for f in env.project["functions"] for p in f.get("buckets", [])))
    last = last_stage_names(module, env)
    return {
        f"{p}-{s}": {
            "purpose": p,
            "stage": s,
            "name": f"{env.project['rest_api_name']}-{s}-{p}-{account}".lower(),
            "stage_variable": f"{p}Bucket",
            "kept": s in last,
        }
        for p in purposes
        for s in stage_instances(module, env)
    }


def s3_trigger_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.s3_triggers: "<function>:<stage>" -> {function, stage, bucket key} for every
    S3-triggered function."""
    _pinned_function_local(module, "s3_triggered")
    _pinned_function_local(module, "s3_triggers")
    return {
        f"{f['name']}:{s}": {"function": f["name"], "stage": s, "bucket": f"{f['trigger']['bucket']}-{s}"}
        for f in env.project["functions"]
        if f.get("trigger", {}).get("type") == "s3"
        for s in stage_instances(module, env)
    }


def last_stage_names(module: Module, env: Environments) -> list[str]:
    """local.last_stages: the stages no stage names as its upstream."""
    _pinned_function_local(module, "last_stages")
    stages = stage_instances(module, env)
    upstreams = {s.get("upstream") for s in stages.values()}
    return [name for name in stages if name not in upstreams]


def function_alarm_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.function_alarms: API alarms once, Lambda alarms once per function (the first
    function under the stage file's name, the others under <name>-<function>)."""
    _pinned_function_local(module, "function_alarms")
    main = env.project["functions"][0]["name"]
    out: dict[str, dict] = {}
    for name, alarm in alarm_instances(module, env).items():
        for fname in function_instances(module, env):
            if alarm["kind"].startswith("lambda_") or fname == main:
                out[name if fname == main else f"{name}-{fname}"] = {**alarm, "function": fname}
    return out


def route_instances(module: Module, env: Environments) -> dict[str, str]:
    """local.routes: route -> the function serving it."""
    _pinned_function_local(module, "routes")
    return {r: f["name"] for f in env.project["functions"] for r in f["routes"]}


def instances(module: Module, body: dict, env: Environments) -> dict[str | None, object]:
    """The instances a resource body creates: each.key -> each.value (None -> None without for_each)."""
    for_each = body.get("for_each")
    if for_each is None:
        assert "count" not in body, "count-based resources are not evaluated here"
        return {None: None}
    if for_each == "${local.stages}":
        return stage_instances(module, env)
    if for_each == "${local.alarms}":
        return alarm_instances(module, env)
    if for_each == "${local.functions}":
        return function_instances(module, env)
    if for_each == "${local.function_stages}":
        return function_stage_instances(module, env)
    if for_each == "${local.tables}":
        return table_instances(module, env)
    if for_each == "${local.function_alarms}":
        return function_alarm_instances(module, env)
    if for_each == "${local.routes}":
        return route_instances(module, env)
    if for_each == "${local.codedeploy_stages}":
        return codedeploy_stage_instances(module, env)
    if for_each == "${local.codedeploy_configs}":
        return codedeploy_config_instances(module, env)
    if for_each == "${local.codedeploy_groups}":
        return codedeploy_group_instances(module, env)
    raise Unsupported(f"for_each {for_each!r}")


def _value_at(value: object, path: str, expr: str) -> object:
    for part in path.split("."):
        # `functions[0]`: a field, then an index into the list it holds.
        m = re.fullmatch(r"([a-z0-9_]+)((?:\[\d+\])*)", part)
        if m is None:
            raise Unsupported(f"{expr}: cannot read {part!r}")
        name = m.group(1)
        if not isinstance(value, dict) or name not in value:
            raise Unsupported(f"{expr}: no {name!r} in {value!r}")
        value = value[name]
        for index in re.findall(r"\[(\d+)\]", m.group(2)):
            if not isinstance(value, list) or int(index) >= len(value):
                raise Unsupported(f"{expr}: no [{index}] in {value!r}")
            value = value[int(index)]
    return value


def render(
    module: Module,
    expr: object,
    env: Environments,
    key: str | None = None,
    value: object = None,
    known: dict[str, str] | None = None,
) -> object:
    """Evaluate a string that only interpolates each.key, each.value.<path>, local.project.<field>,
    references to another for_each resource's literal attribute for the same key, and the
    expressions `known` maps to stand-in values (e.g. an ARN only AWS knows)."""
    if not isinstance(expr, str):
        return expr
    ref = _REFERENCE.match(expr)
    if ref:
        target = module.resource(ref["type"], ref["name"])
        if ref["attr"] not in target:
            raise Unsupported(f"{expr}: {ref['type']}.{ref['name']} sets no {ref['attr']}")
        return render(module, target[ref["attr"]], env, key, value, known)

    def substitute(m: re.Match) -> str:
        inner = m.group(1).strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1]
        if known and inner in known:
            return known[inner]
        if inner == "each.key":
            if key is None:
                raise Unsupported(f"{expr}: each.key outside for_each")
            return key
        if inner.startswith("each.value."):
            return str(_value_at(value, inner[len("each.value.") :], expr))
        if inner.startswith("local.project."):
            return str(_value_at(env.project, inner[len("local.project.") :], expr))
        raise Unsupported(f"{expr}: cannot evaluate ${{{inner}}}")

    # `$${` is Terraform's escape for a literal `${`.
    rendered = _INTERPOLATION.sub(substitute, expr)
    return rendered.replace("$${", "${")


def references(expr: object) -> list[str]:
    """Every `type.name` a (possibly nested) expression mentions."""
    text = json.dumps(expr)
    return re.findall(r"\b((?:data\.)?aws_[a-z0-9_]+\.[a-z0-9_]+)", text)


# ---------------------------------------------------------------------------------------
# The CodeDeploy engine's locals (terraform/codedeploy.tf)
# ---------------------------------------------------------------------------------------

# The exact expressions the evaluations below transcribe: a change to the HCL fails here
# (Unsupported) until the transcription follows it, so the two cannot drift apart silently.
CODEDEPLOY_SHAPES = {
    "codedeploy_stages": '${{for name, stage in local.stages : name => stage if try(stage.strategy.engine, "alias") == "codedeploy"}}',
    "codedeploy_steps": (
        "${{for name, stage in local.codedeploy_stages : name => try(stage.strategy.steps, "
        "[{weight = 100, bake_seconds = try(stage.strategy.bake_seconds, 0)}])}}"
    ),
    "codedeploy_configs": (
        '${{for name, steps in local.codedeploy_steps : name => {type = length(steps) == 1 ? "AllAtOnce" : '
        '(length(steps) == 2 ? "TimeBasedCanary" : "TimeBasedLinear"), percentage = steps[0].weight, '
        "minutes = floor(steps[0].bake_seconds / 60), runnable = alltrue([length(steps) < 3 || "
        "alltrue([for i, s in steps : s.weight == (i + 1) * steps[0].weight]), length(steps) < 3 || "
        "alltrue([for s in slice(steps, 0, length(steps) - 1) : s.bake_seconds == steps[0].bake_seconds]), "
        "length(steps) < 2 || (floor(steps[0].weight) == steps[0].weight && steps[0].bake_seconds >= 60 && "
        "steps[0].bake_seconds % 60 == 0), steps[length(steps) - 1].bake_seconds == 0])}}}"
    ),
    "codedeploy_config_suffixes": (
        '${{for name, c in local.codedeploy_configs : name => c.type == "AllAtOnce" ? "all-at-once" : '
        '(c.type == "TimeBasedCanary" ? "canary-${c.percentage}pct-${c.minutes}min" : '
        '"linear-${c.percentage}pct-every-${c.minutes}min")}}'
    ),
    "codedeploy_groups": (
        "${{for key, fs in local.function_stages : key => merge(local.codedeploy_configs[fs.stage], "
        '{function = fs.function, stage = fs.stage, config_name = "${fs.function}-${fs.stage}-'
        '${local.codedeploy_config_suffixes[fs.stage]}"}) if contains(keys(local.codedeploy_stages), fs.stage)}}'
    ),
    "codedeploy_group_alarms": (
        "${{for key, g in local.codedeploy_groups : key => sort([for name, alarm in local.function_alarms : name "
        'if alarm.stage == g.stage && (alarm.function == g.function || !startswith(alarm.kind, "lambda_"))])}}'
    ),
    "codedeploy_stage_alarms": (
        "${{for name, stage in local.codedeploy_stages : name => sort(distinct(flatten([for key, g in "
        "local.codedeploy_groups : local.codedeploy_group_alarms[key] if g.stage == name])))}}"
    ),
    "codedeploy_hooks": (
        "${{for name, stage in local.codedeploy_stages : name => compact([try(stage.strategy.hooks.before_allow_traffic, \"\"), "
        "try(stage.strategy.hooks.after_allow_traffic, \"\")])}}"
    ),
}


def _pinned(module: Module, name: str) -> None:
    got = _squash(module.locals[name])
    if got != CODEDEPLOY_SHAPES[name]:
        raise Unsupported(f"local.{name} has an unknown shape: {got}")


def codedeploy_stage_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.codedeploy_stages: the stages whose strategy says "engine": "codedeploy"."""
    _pinned(module, "codedeploy_stages")
    return {
        n: s for n, s in stage_instances(module, env).items() if s["strategy"].get("engine", "alias") == "codedeploy"
    }


def codedeploy_config_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.codedeploy_configs per codedeploy stage, each with the `suffix` of its configs'
    names (local.codedeploy_config_suffixes) and `name`, the first function's config name."""
    for name in ("codedeploy_steps", "codedeploy_configs", "codedeploy_config_suffixes"):
        _pinned(module, name)
    out = {}
    for name, stage in codedeploy_stage_instances(module, env).items():
        strategy = stage["strategy"]
        steps = strategy.get("steps", [{"weight": 100, "bake_seconds": strategy.get("bake_seconds", 0)}])
        n = len(steps)
        first = steps[0]
        config = {
            "type": "AllAtOnce" if n == 1 else ("TimeBasedCanary" if n == 2 else "TimeBasedLinear"),
            "percentage": first["weight"],
            "minutes": first["bake_seconds"] // 60,
            "runnable": all(
                [
                    n < 3 or all(s["weight"] == (i + 1) * first["weight"] for i, s in enumerate(steps)),
                    n < 3 or all(s["bake_seconds"] == first["bake_seconds"] for s in steps[: n - 1]),
                    n < 2
                    or (
                        math.floor(first["weight"]) == first["weight"]
                        and first["bake_seconds"] >= 60
                        and first["bake_seconds"] % 60 == 0
                    ),
                    steps[n - 1]["bake_seconds"] == 0,
                ]
            ),
        }
        pct = _hcl_number(config["percentage"])
        config["suffix"] = (
            "all-at-once"
            if config["type"] == "AllAtOnce"
            else f"canary-{pct}pct-{config['minutes']}min"
            if config["type"] == "TimeBasedCanary"
            else f"linear-{pct}pct-every-{config['minutes']}min"
        )
        config["name"] = f"{env.project['functions'][0]['name']}-{name}-{config['suffix']}"
        out[name] = config
    return out


def codedeploy_group_instances(module: Module, env: Environments) -> dict[str, dict]:
    """local.codedeploy_groups: "<function>:<stage>" -> the stage's config with the function,
    the stage, the config's name and (local.codedeploy_group_alarms) the group's alarms."""
    for name in ("codedeploy_groups", "codedeploy_group_alarms"):
        _pinned(module, name)
    configs = codedeploy_config_instances(module, env)
    alarms = function_alarm_instances(module, env)
    out = {}
    for key, fs in function_stage_instances(module, env).items():
        config = configs.get(fs["stage"])
        if config is None:
            continue
        out[key] = {
            **{k: v for k, v in config.items() if k not in ("name", "suffix")},
            "function": fs["function"],
            "stage": fs["stage"],
            "config_name": f"{fs['function']}-{fs['stage']}-{config['suffix']}",
            "alarms": sorted(
                name
                for name, a in alarms.items()
                if a["stage"] == fs["stage"] and (a["function"] == fs["function"] or not a["kind"].startswith("lambda_"))
            ),
        }
    return out


def _hcl_number(x: float) -> str:
    """A number as Terraform interpolates it: 10, not 10.0."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def codedeploy_hook_instances(module: Module, env: Environments) -> dict[str, list[str]]:
    """local.codedeploy_hooks: the hook functions each codedeploy stage names."""
    _pinned(module, "codedeploy_hooks")
    return {
        name: [f for f in (stage["strategy"].get("hooks", {}).get(k, "") for k in ("before_allow_traffic", "after_allow_traffic")) if f]
        for name, stage in codedeploy_stage_instances(module, env).items()
    }
