"""tools/seed.py (the moto fixture of the Rust tests and the demo) and terraform/ create the same names.

Both derive from environments/; this compares what seed.py says it creates with what the
parsed Terraform evaluates to, so a rename on either side fails here instead of in AWS.
"""

from __future__ import annotations

import pytest

from tfmodel import instances, render

import seed  # noqa: E402  (tools/ is on sys.path via conftest)


@pytest.fixture(scope="module")
def expected(environments_dir):
    return seed.expected_resources(environments_dir)


def test_function_and_api_names(tf, env, expected):
    assert render(tf, tf.resource("aws_lambda_function", "app")["function_name"], env) == expected["function_name"]
    assert render(tf, tf.resource("aws_api_gateway_rest_api", "app")["name"], env) == expected["rest_api_name"]
    integration_uri = tf.locals["integration_uri"]
    assert f"$${{stageVariables.${{local.project.stage_variable}}}}" in integration_uri
    assert env.project["stage_variable"] == expected["stage_variable"]


def test_stages_and_aliases(tf, env, expected):
    stage_body = tf.resource("aws_api_gateway_stage", "stage")
    stages = {render(tf, stage_body["stage_name"], env, k, v) for k, v in instances(tf, stage_body, env).items()}
    alias_body = tf.resource("aws_lambda_alias", "stage")
    aliases = {render(tf, alias_body["name"], env, k, v) for k, v in instances(tf, alias_body, env).items()}
    assert stages == set(expected["stages"])
    assert aliases == set(expected["aliases"])


def test_stage_variables(tf, env, expected):
    body = tf.resource("aws_api_gateway_stage", "stage")
    rendered = {
        render(tf, body["stage_name"], env, k, v): {
            "variables": {render(tf, a, env, k, v): render(tf, b, env, k, v) for a, b in body["variables"].items()}
        }
        for k, v in instances(tf, body, env).items()
    }
    assert rendered == expected["api_stages"]


def test_alarms_per_stage(tf, env, expected):
    body = tf.resource("aws_cloudwatch_metric_alarm", "stage")
    by_stage: dict[str, set[str]] = {}
    for key, alarm in instances(tf, body, env).items():
        by_stage.setdefault(alarm["stage"], set()).add(render(tf, body["alarm_name"], env, key, alarm))
    assert by_stage == {stage: set(names) for stage, names in expected["alarms"].items() if names}


def test_api_resources(tf, expected):
    proxy = tf.resource("aws_api_gateway_resource", "proxy")
    assert proxy["parent_id"] == "${aws_api_gateway_rest_api.app.root_resource_id}"
    paths = {"/", "/" + proxy["path_part"]}
    assert paths == set(expected["resources"])


def test_alarm_metrics(tf):
    kinds = tf.locals["alarm_kinds"]
    assert set(kinds) == set(seed.ALARM_KINDS)
    for kind, want in seed.ALARM_KINDS.items():
        got = kinds[kind]
        assert (got["namespace"], got["metric_name"]) == (want["namespace"], want["metric"]), kind
        assert got["statistic"] == want.get("statistic")
        assert got["extended_statistic"] == want.get("extended")
