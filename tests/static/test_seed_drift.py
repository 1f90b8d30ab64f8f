"""tools/seed.py (the moto fixture of the Rust tests and the demo) and terraform/ create the same names.

Both derive from environments/; this compares what seed.py says it creates with what the
parsed Terraform evaluates to, so a rename on either side fails here instead of in AWS.
"""

from __future__ import annotations

import re

import pytest

from tfmodel import Unsupported, instances, render, route_instances, stage_variable_instances

import seed  # noqa: E402  (tools/ is on sys.path via conftest)


@pytest.fixture(scope="module")
def expected(environments_dir):
    return seed.expected_resources(environments_dir)


def test_function_and_api_names(tf, env, expected):
    body = tf.resource("aws_lambda_function", "function")
    names = [render(tf, body["function_name"], env, k, v) for k, v in instances(tf, body, env).items()]
    assert names == expected["functions"] and names[0] == expected["function_name"]
    assert render(tf, tf.resource("aws_api_gateway_rest_api", "app")["name"], env) == expected["rest_api_name"]
    integration_uris = tf.locals["integration_uris"]
    assert f"$${{stageVariables.${{local.project.stage_variable}}}}" in integration_uris
    assert env.project["stage_variable"] == expected["stage_variable"]


def test_stages_and_aliases(tf, env, expected):
    stage_body = tf.resource("aws_api_gateway_stage", "stage")
    stages = {render(tf, stage_body["stage_name"], env, k, v) for k, v in instances(tf, stage_body, env).items()}
    alias_body = tf.resource("aws_lambda_alias", "stage")
    # Every function's aliases bear the stages' names.
    aliases = {render(tf, alias_body["name"], env, k, v) for k, v in instances(tf, alias_body, env).items()}
    assert stages == set(expected["stages"])
    assert aliases == set(expected["aliases"])


def test_stage_variables(tf, env, expected):
    body = tf.resource("aws_api_gateway_stage", "stage")
    assert body["variables"] == "${local.stage_variables[each.key]}"
    rendered = {stage: {"variables": v} for stage, v in stage_variable_instances(tf, env).items()}
    assert rendered == expected["api_stages"]
    assert tf.locals["function_tables"] == seed.FUNCTION_TABLES


def test_tables(tf, env, expected):
    body = tf.resource("aws_dynamodb_table", "function")
    names = [render(tf, body["name"], env, k, v) for k, v in instances(tf, body, env).items()]
    assert sorted(names) == sorted(expected["tables"])


def test_alarms_per_stage(tf, env, expected):
    body = tf.resource("aws_cloudwatch_metric_alarm", "stage")
    by_stage: dict[str, set[str]] = {}
    for key, alarm in instances(tf, body, env).items():
        by_stage.setdefault(alarm["stage"], set()).add(render(tf, body["alarm_name"], env, key, alarm))
    assert by_stage == {stage: set(names) for stage, names in expected["alarms"].items() if names}


def test_api_resources(tf, env, expected):
    """Terraform's resource tree (local.route_paths, by depth) is the one the seed derives from
    the routes, and the one the fixture's REST API holds (seed.build_rest_api)."""
    routes = route_instances(tf, env)
    paths = {"/"}
    for route in routes:
        parts = [p for p in route.split("/") if p]
        paths |= {"/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)}
    assert paths == set(expected["route_paths"])
    assert "/hello/{username}" in paths and "/hello" in paths
    assert expected["resources"] == expected["route_paths"]
    # The shape that builds the tree, so the transcription above cannot drift from it.
    assert "for r in keys(local.routes)" in tf.locals["route_paths"]
    for depth in (1, 2, 3):
        assert tf.resource("aws_api_gateway_resource", f"depth{depth}")["for_each"] == f"${{local.route_depth{depth}}}"


def test_alarm_metrics(tf):
    kinds = tf.locals["alarm_kinds"]
    assert set(kinds) == set(seed.ALARM_KINDS)
    for kind, want in seed.ALARM_KINDS.items():
        got = kinds[kind]
        assert (got["namespace"], got["metric_name"]) == (want["namespace"], want["metric"]), kind
        assert got["statistic"] == want.get("statistic"), kind
        assert got["extended_statistic"] == want.get("extended"), kind
        # `>` and `>=` differ exactly at the threshold: a threshold of 1 error must fire on 1.
        assert got["comparison_operator"] == want["operator"], kind
    # The metric-math kinds read the same expression over the same metrics.
    assert tf.locals["alarm_math"] == seed.ALARM_MATH
    assert all(kinds[k]["metric_name"] is None for k in seed.ALARM_MATH)


def _tomap_bodies(expr: str) -> list[str]:
    """The `{...}` of every `tomap({...})` in an expression, braces of `${...}` inside included."""
    bodies, start = [], 0
    while (i := expr.find("tomap({", start)) >= 0:
        depth, j = 0, i + len("tomap(")
        for j in range(i + len("tomap("), len(expr)):
            depth += {"{": 1, "}": -1}.get(expr[j], 0)
            if depth == 0:
                break
        bodies.append(expr[i + len("tomap({") : j])
        start = j
    return bodies


def _map_entries(body: str) -> dict[str, str]:
    """`K = expr, K2 = "str"` -> {K: an interpolation render() understands}; alarm.x is each.value.x."""
    out = {}
    for pair in re.split(r",\s*(?=[A-Za-z]+\s*=)", body):
        key, value = (p.strip() for p in pair.split("=", 1))
        value = value[1:-1] if value.startswith('"') else "${" + value + "}"
        out[key] = value.replace("${alarm.", "${each.value.")
    return out


def terraform_dimensions(tf) -> dict[str, dict[str, str]]:
    """local.alarm_dimensions, for the one shape terraform/ uses: a ternary on the kind's prefix."""
    expr = re.sub(r"\s+", " ", tf.locals["alarm_dimensions"]).strip()
    m = re.match(r'^\$\{\{for name, alarm in local\.function_alarms : name => \(startswith\(alarm\.kind, "(\w+)"\) \? ', expr)
    bodies = _tomap_bodies(expr)
    if not m or len(bodies) != 2:
        raise Unsupported(f"local.alarm_dimensions has an unknown shape: {expr}")
    return {"prefix": m.group(1), "then": _map_entries(bodies[0]), "else": _map_entries(bodies[1])}


# The alarm resource's two shapes: one metric, or metric math (dynamic metric_query blocks).
MATH_OR = "${contains(keys(local.alarm_math), each.value.kind) ? null : "


def terraform_metric_queries(tf, env, key, alarm, dimensions: dict[str, str]) -> list[dict]:
    """The metric_query blocks Terraform gives a metric-math alarm, as PutMetricAlarm's Metrics."""
    body = tf.resource("aws_cloudwatch_metric_alarm", "stage")
    result, inputs = (d["metric_query"] for d in body["dynamic"])
    assert result["for_each"] == '${{for kind, math in local.alarm_math : "rate" => math if kind == each.value.kind}}'
    assert inputs["for_each"] == "${try(local.alarm_math[each.value.kind].metrics, {})}"
    (rc,), (ic,) = result["content"], inputs["content"]
    assert rc == {"id": "${metric_query.key}", "expression": "${metric_query.value.expression}",
                  "label": "${metric_query.value.label}", "return_data": True}
    (metric,) = ic["metric"]
    assert (ic["id"], ic["return_data"]) == ("${metric_query.key}", False)
    assert metric == {
        "namespace": "${local.alarm_math[each.value.kind].namespace}",
        "metric_name": "${metric_query.value}",
        "stat": "${local.alarm_math[each.value.kind].stat}",
        "period": "${each.value.period_seconds}",
        "dimensions": "${local.alarm_dimensions[each.key]}",
    }
    math = tf.locals["alarm_math"][alarm["kind"]]
    period = int(render(tf, metric["period"], env, key, alarm))
    return [{"Id": "rate", "Expression": math["expression"], "Label": math["label"], "ReturnData": True}] + [
        {"Id": qid, "MetricStat": {"Metric": {"Namespace": math["namespace"], "MetricName": name, "Dimensions": dimensions},
                                   "Period": period, "Stat": math["stat"]}, "ReturnData": False}
        for qid, name in math["metrics"].items()
    ]


def test_alarm_definitions_match_terraform(tf, env):
    """Every field seed.py gives PutMetricAlarm is the one Terraform's alarm resource sets."""
    body = tf.resource("aws_cloudwatch_metric_alarm", "stage")
    dims = terraform_dimensions(tf)
    kinds = tf.locals["alarm_kinds"]
    # A metric-math alarm sets no single metric's dimensions or period (PutMetricAlarm refuses both).
    assert body["dimensions"] == MATH_OR + "local.alarm_dimensions[each.key]}"
    assert body["period"] == MATH_OR + "each.value.period_seconds}"
    checked = 0
    seeded_alarms = {
        name: (fn, a) for stage in env.stages.values() for name, fn, a in seed.function_alarms(env.project, stage["alarms"])
    }
    assert set(seeded_alarms) == set(instances(tf, body, env))
    for key, alarm in instances(tf, body, env).items():
        fn, stage_alarm = seeded_alarms[key]
        assert fn == alarm["function"], key
        got = {
            **seed.alarm_definition(fn, env.project["rest_api_name"], alarm["stage"], stage_alarm),
            "AlarmName": key,
        }
        kind = kinds[alarm["kind"]]
        branch = dims["then"] if alarm["kind"].startswith(dims["prefix"]) else dims["else"]
        dimensions = {k: render(tf, v, env, key, alarm) for k, v in branch.items()}
        want = {
            "AlarmName": render(tf, body["alarm_name"], env, key, alarm),
            "Threshold": float(render(tf, body["threshold"], env, key, alarm)),
            "EvaluationPeriods": int(render(tf, body["evaluation_periods"], env, key, alarm)),
            "ComparisonOperator": kind["comparison_operator"],
            "TreatMissingData": body["treat_missing_data"],
        }
        if alarm["kind"] in tf.locals["alarm_math"]:
            as_pairs = [{"Name": k, "Value": v} for k, v in dimensions.items()]
            want["Metrics"] = terraform_metric_queries(tf, env, key, alarm, as_pairs)
            seeded = {**got}
            for q in seeded["Metrics"]:
                if "MetricStat" in q:  # dimension order is not significant
                    m = q["MetricStat"]["Metric"]
                    m["Dimensions"] = sorted(m["Dimensions"], key=lambda d: d["Name"])
            for q in want["Metrics"]:
                if "MetricStat" in q:
                    m = q["MetricStat"]["Metric"]
                    m["Dimensions"] = sorted(m["Dimensions"], key=lambda d: d["Name"])
        else:
            want.update({
                "Namespace": kind["namespace"],
                "MetricName": kind["metric_name"],
                "Dimensions": dimensions,
                "Period": int(render(tf, each_value_of(body["period"]), env, key, alarm)),
                "Statistic": kind["statistic"],
                "ExtendedStatistic": kind["extended_statistic"],
            })
            seeded = {**got, "Dimensions": {d["Name"]: d["Value"] for d in got["Dimensions"]}}
            seeded.setdefault("Statistic", None)
            seeded.setdefault("ExtendedStatistic", None)
        seeded.pop("AlarmDescription")  # free text, for people
        assert seeded == want, key
        checked += 1
    assert checked == len(seeded_alarms) > sum(len(s["alarms"]) for s in env.stages.values())


def each_value_of(expr: str) -> str:
    """The single-metric branch of an attribute that metric-math alarms leave null."""
    assert expr.startswith(MATH_OR) and expr.endswith("}"), expr
    return "${" + expr[len(MATH_OR) : -1] + "}"
