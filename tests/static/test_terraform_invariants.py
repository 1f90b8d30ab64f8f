"""Invariants of terraform/ evaluated against environments/: what promote and the pipeline rely on."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from tfmodel import (
    alarm_instances,
    block,
    function_alarm_instances,
    instances,
    last_stage_names,
    render,
    stage_instances,
    stage_variable_instances,
    table_instances,
)


def evaluated(tf, env, rtype: str, name: str, attr: str) -> dict:
    """attr of every instance of a for_each resource, keyed by each.key."""
    body = tf.resource(rtype, name)
    return {key: render(tf, body[attr], env, key, value) for key, value in instances(tf, body, env).items()}


# --- providers and versions ------------------------------------------------------------


def test_aws_provider_5_or_6_and_partial_s3_backend(tf):
    (terraform,) = tf.terraform
    aws = block(terraform, "required_providers")["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert re.fullmatch(r">= 5\.\d+\.\d+, < 7\.0\.0", aws["version"]), aws["version"]
    # No bucket name is committed: it comes from -backend-config.
    assert block(terraform, "backend") == {"s3": {}}


def test_provider_region_comes_from_project_or_variable(tf):
    (provider,) = [p for p in tf.providers if "aws" in p]
    assert provider["aws"]["region"] == "${local.region}"
    assert tf.locals["region"] == "${coalesce(var.region, local.project.region)}"


# --- Lambda -----------------------------------------------------------------------------


def test_one_function_per_project_function_with_its_own_role_and_log_group(tf, env):
    fn = tf.resource("aws_lambda_function", "function")
    names = evaluated(tf, env, "aws_lambda_function", "function", "function_name")
    assert names == {f["name"]: f["name"] for f in env.project["functions"]}
    assert len(names) >= 2, "project.json lists app and birthday"
    assert fn["role"] == "${aws_iam_role.lambda[each.key].arn}"
    assert fn["runtime"] == "provided.al2023"
    assert fn["handler"] == "bootstrap"
    assert fn["architectures"] == ["${var.lambda_architecture}"]
    # Version 1 exists as soon as the function does, so aliases can be created on it.
    assert fn["publish"] is True
    assert set(block(fn, "lifecycle")["ignore_changes"]) >= {"s3_bucket", "s3_key", "s3_object_version"}
    roles = evaluated(tf, env, "aws_iam_role", "lambda", "name")
    assert roles == {f["name"]: f"{f['name']}-lambda" for f in env.project["functions"]}
    # Each function's first code is its own package's build.
    paths = tf.locals["lambda_zip_paths"]
    assert "${f.package}/bootstrap.zip" in paths and "var.lambda_zip_paths" in paths


def test_architecture_defaults_to_arm64_and_allows_x86_64(tf):
    var = tf.variables["lambda_architecture"]
    assert var["default"] == "arm64"
    condition = block(var, "validation")["condition"]
    assert '"arm64"' in condition and '"x86_64"' in condition


def _functions_and_stages(env):
    return {f"{f['name']}:{s}": (f["name"], s) for f in env.project["functions"] for s in env.stages}


def test_one_alias_per_function_and_stage_left_to_promote(tf, env):
    names = evaluated(tf, env, "aws_lambda_alias", "stage", "name")
    assert names == {key: stage for key, (_, stage) in _functions_and_stages(env).items()}
    alias = tf.resource("aws_lambda_alias", "stage")
    assert alias["function_version"] == "1"
    assert sorted(block(alias, "lifecycle")["ignore_changes"]) == ["description", "function_version", "routing_config"]
    assert alias["function_name"] == "${aws_lambda_function.function[each.value.function].function_name}"


def test_one_invoke_permission_per_alias_scoped_to_its_stage(tf, env):
    perm = tf.resource("aws_lambda_permission", "api_stage")
    qualifiers = evaluated(tf, env, "aws_lambda_permission", "api_stage", "qualifier")
    assert set(qualifiers) == set(_functions_and_stages(env))
    assert perm["qualifier"] == "${aws_lambda_alias.stage[each.key].name}"
    assert perm["function_name"] == "${aws_lambda_function.function[each.value.function].function_name}"
    assert perm["principal"] == "apigateway.amazonaws.com"
    assert perm["action"] == "lambda:InvokeFunction"
    assert perm["source_arn"] == "${aws_api_gateway_stage.stage[each.value.stage].execution_arn}/*/*"
    ids = evaluated(tf, env, "aws_lambda_permission", "api_stage", "statement_id")
    # Statement ids are unique within one function's policy: one per stage.
    for f in env.project["functions"]:
        mine = [i for k, i in ids.items() if k.startswith(f"{f['name']}:")]
        assert len(set(mine)) == len(env.stages)


def test_log_group_per_function_with_retention(tf, env):
    names = evaluated(tf, env, "aws_cloudwatch_log_group", "lambda", "name")
    assert names == {f["name"]: f"/aws/lambda/{f['name']}" for f in env.project["functions"]}
    lg = tf.resource("aws_cloudwatch_log_group", "lambda")
    assert lg["retention_in_days"] == "${local.function_log_retention_days}"
    fn = tf.resource("aws_lambda_function", "function")
    assert block(fn, "logging_config")["log_group"] == "${aws_cloudwatch_log_group.lambda[each.key].name}"


def test_each_role_writes_its_logs_and_reads_and_writes_only_its_own_tables(tf, env):
    doc = tf.data_source("aws_iam_policy_document", "lambda")
    assert doc["for_each"] == "${local.functions}"
    actions = [a for st in doc["statement"] for a in st["actions"]]
    assert actions == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert doc["statement"][0]["resources"] == ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
    dynamic = {block(d["statement"], "content")["sid"]: d["statement"] for d in doc["dynamic"]}
    assert block(dynamic["WriteTraces"], "content")["actions"] == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    tables = block(dynamic["ReadWriteOwnTables"], "content")
    # Exactly the two calls the birthday function makes, on its own tables' ARNs only.
    assert tables["actions"] == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert tables["resources"] == "${[for name, t in local.tables : aws_dynamodb_table.function[name].arn if t.function == each.key]}"
    assert dynamic["ReadWriteOwnTables"]["for_each"] == (
        "${length([for t in values(local.tables) : t if t.function == each.key]) > 0 ? [1] : []}"
    )
    policy = tf.resource("aws_iam_role_policy", "lambda")
    assert policy["role"] == "${aws_iam_role.lambda[each.key].id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.lambda[each.key].json}"


# --- REST API ---------------------------------------------------------------------------


def test_every_route_is_a_resource_with_any_proxied_to_its_function(tf, env):
    routes = instances(tf, tf.resource("aws_api_gateway_method", "route"), env)
    assert routes == {r: f["name"] for f in env.project["functions"] for r in f["routes"]}
    assert routes["/hello/{username}"] == "birthday" and routes["/build-info"] == "app"
    method = tf.resource("aws_api_gateway_method", "route")
    assert method["http_method"] == "ANY"
    assert method["resource_id"] == "${local.route_resource_ids[each.key]}"
    integration = tf.resource("aws_api_gateway_integration", "route")
    assert integration["type"] == "AWS_PROXY"
    assert integration["integration_http_method"] == "POST"
    assert integration["http_method"] == "${aws_api_gateway_method.route[each.key].http_method}"
    assert integration["uri"] == "${local.integration_uris[each.value]}"
    # The tree: each depth's resources hang from the one above.
    assert tf.resource("aws_api_gateway_resource", "depth1")["parent_id"] == "${aws_api_gateway_rest_api.app.root_resource_id}"
    assert tf.resource("aws_api_gateway_resource", "depth2")["parent_id"] == "${aws_api_gateway_resource.depth1[each.value.parent].id}"
    assert tf.resource("aws_api_gateway_resource", "depth3")["parent_id"] == "${aws_api_gateway_resource.depth2[each.value.parent].id}"


def test_integration_routes_to_the_functions_alias_named_by_the_stage_variable(tf, env):
    expr = tf.locals["integration_uris"]
    head = "${{for name, f in aws_lambda_function.function : name => "
    assert expr.startswith(head) and expr.endswith("}}"), expr
    uri = render(
        tf,
        expr[len(head) : -2].strip().strip('"'),
        env,
        known={"local.partition": "aws", "local.region": "REGION", "f.arn": "FUNCTION_ARN"},
    )
    variable = env.project["stage_variable"]
    assert uri == (
        "arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/"
        f"FUNCTION_ARN:${{stageVariables.{variable}}}/invocations"
    )


def test_deployment_is_replaced_when_the_api_changes(tf):
    dep = tf.resource("aws_api_gateway_deployment", "app")
    assert dep["triggers"]["redeployment"] == "${sha1(jsonencode(local.api_definition))}"
    assert block(dep, "lifecycle")["create_before_destroy"] is True
    definition = str(tf.locals["api_definition"])
    for part in (
        "local.route_resource_ids",
        "aws_api_gateway_method.route",
        "aws_api_gateway_integration.route",
        "local.integration_uris",
    ):
        assert part in definition, f"local.api_definition misses {part}"


def test_one_api_stage_per_file_with_its_stage_variables(tf, env):
    assert evaluated(tf, env, "aws_api_gateway_stage", "stage", "stage_name") == {s: s for s in env.stages}
    body = tf.resource("aws_api_gateway_stage", "stage")
    assert body["variables"] == "${local.stage_variables[each.key]}"
    # The alias every function runs on the stage, and the birthday function's table there.
    assert stage_variable_instances(tf, env) == {
        s: {
            env.project["stage_variable"]: s,
            "birthdayTable": f"birthday-{s}",
            # and each of its buckets (docs/storage.md), named with the account id.
            **{f"{p}Bucket": f"app-{s}-{p}-123456789012" for p in ("notes", "images", "uploads", "summaries")},
        }
        for s in env.stages
    }


# --- DynamoDB ---------------------------------------------------------------------------


def test_one_table_per_stage_for_the_birthday_function(tf, env):
    tables = table_instances(tf, env)
    assert tables == {
        f"birthday-{s}": {"stage_variable": "birthdayTable", "hash_key": "username", "function": "birthday", "stage": s}
        for s in env.stages
    }
    body = tf.resource("aws_dynamodb_table", "function")
    assert body["for_each"] == "${local.tables}"
    assert body["name"] == "${each.key}"
    assert body["hash_key"] == "${each.value.hash_key}"
    assert block(body, "attribute") == {"name": "${each.value.hash_key}", "type": "S"}
    assert "range_key" not in body, "one item per user: the username alone is the key"


def test_tables_are_on_demand_recoverable_encrypted_with_the_project_key_and_protected_on_live(tf, env):
    body = tf.resource("aws_dynamodb_table", "function")
    assert body["billing_mode"] == "PAY_PER_REQUEST"
    assert block(body, "point_in_time_recovery")["enabled"] is True
    sse = block(body, "server_side_encryption")
    assert sse == {"enabled": True, "kms_key_arn": "${aws_kms_key.observability.arn}"}
    assert body["deletion_protection_enabled"] == "${contains(local.last_stages, each.value.stage)}"
    assert last_stage_names(tf, env) == ["live"]
    # The key lets DynamoDB, and only DynamoDB, use it for this account's callers.
    doc = tf.data_source("aws_iam_policy_document", "observability_key")
    (st,) = [s for s in doc["statement"] if s.get("sid") == "DynamoDBEncryptsTables"]
    conditions = {c["variable"]: c["values"] for c in st["condition"]}
    assert conditions == {
        "kms:ViaService": ["dynamodb.${local.region}.amazonaws.com"],
        "kms:CallerAccount": ["${local.account_id}"],
    }


def test_stage_access_logs_are_json(tf, env):
    body = tf.resource("aws_api_gateway_stage", "stage")
    logs = block(body, "access_log_settings")
    assert logs["destination_arn"] == "${aws_cloudwatch_log_group.api_access[each.key].arn}"
    assert logs["format"] == "${local.access_log_format}"
    fmt = tf.locals["access_log_format"]
    assert fmt.startswith("${jsonencode({") and "$context.requestId" in fmt and "$context.status" in fmt
    retention = evaluated(tf, env, "aws_cloudwatch_log_group", "api_access", "retention_in_days")
    assert retention == {s: str(c["log_retention_days"]) for s, c in env.stages.items()}


def test_stage_throttling_comes_from_the_stage_file(tf, env):
    body = tf.resource("aws_api_gateway_method_settings", "stage")
    assert body["stage_name"] == "${aws_api_gateway_stage.stage[each.key].stage_name}"
    assert body["method_path"] == "*/*"
    settings = block(body, "settings")
    for stage, config in stage_instances(tf, env).items():
        assert render(tf, settings["throttling_rate_limit"], env, stage, config) == str(config["throttling"]["rate_limit"])
        assert render(tf, settings["throttling_burst_limit"], env, stage, config) == str(config["throttling"]["burst_limit"])


def test_xray_is_switchable_per_stage_and_globally(tf):
    body = tf.resource("aws_api_gateway_stage", "stage")
    assert body["xray_tracing_enabled"] == "${contains(local.xray_stages, each.key)}"
    xray = tf.locals["xray_stages"]
    assert "var.xray_tracing_enabled" in xray and "stage.xray_tracing" in xray


# --- alarms -----------------------------------------------------------------------------

KIND_METRICS = {
    "lambda_errors": ("AWS/Lambda", "Errors"),
    "lambda_throttles": ("AWS/Lambda", "Throttles"),
    # Metric math over two metrics (test_throttle_rate_alarms_are_metric_math_on_the_stage_alias).
    "lambda_throttle_rate": (None, None),
    "api_5xx_rate": ("AWS/ApiGateway", "5XXError"),
    "api_p99_latency": ("AWS/ApiGateway", "Latency"),
}


def test_alarms_are_the_stage_files_with_lambda_ones_per_function(tf, env):
    names = evaluated(tf, env, "aws_cloudwatch_metric_alarm", "stage", "alarm_name")
    main = env.project["functions"][0]["name"]
    others = [f["name"] for f in env.project["functions"][1:]]
    want = {a["name"] for config in env.stages.values() for a in config["alarms"]}
    want |= {
        f"{a['name']}-{f}"
        for config in env.stages.values()
        for a in config["alarms"]
        if a["kind"].startswith("lambda_")
        for f in others
    }
    assert set(names) == set(names.values()) == want
    # The very names promote's alarm judge watches for birthday on live (rollout's
    # Alarm::name_for, held by its test each_function_is_judged_by_its_own_lambda_alarms_and_
    # the_stages_api_alarms) and the gateway evaluates: its own Lambda alarms, the stage's API ones.
    assert {
        "app-live-lambda-errors-birthday",
        "app-live-lambda-throttle-rate-birthday",
        "app-live-api-5xx-rate",
        "app-live-api-p99-latency",
    } <= want
    assert "app-live-api-5xx-rate-birthday" not in want
    alarms = function_alarm_instances(tf, env)
    # Every function is watched on every stage by each Lambda alarm kind its stage file names.
    for stage, config in env.stages.items():
        for a in config["alarms"]:
            if a["kind"].startswith("lambda_"):
                assert alarms[a["name"]]["function"] == main
                for f in others:
                    assert alarms[f"{a['name']}-{f}"] == {**alarm_instances(tf, env)[a["name"]], "function": f}
            else:
                assert not any(f"{a['name']}-{f}" in alarms for f in others), "an API alarm watches the stage once"


def test_alarm_kinds_map_to_the_contract_metrics(tf, env):
    kinds = tf.locals["alarm_kinds"]
    assert set(kinds) == set(KIND_METRICS)
    for kind, (namespace, metric) in KIND_METRICS.items():
        assert (kinds[kind]["namespace"], kinds[kind]["metric_name"]) == (namespace, metric)
    assert kinds["api_p99_latency"]["extended_statistic"] == "p99"
    body = tf.resource("aws_cloudwatch_metric_alarm", "stage")
    assert body["namespace"] == "${local.alarm_kinds[each.value.kind].namespace}"
    assert body["metric_name"] == "${local.alarm_kinds[each.value.kind].metric_name}"
    assert body["threshold"] == "${each.value.threshold}"


def test_throttle_rate_alarms_are_metric_math_on_the_stage_alias(tf, env):
    """Throttles / (Throttles + Invocations) of each stage's own alias, over the alarm's period."""
    math = tf.locals["alarm_math"]["lambda_throttle_rate"]
    expr = math["expression"].replace(" ", "")
    assert expr == "FILL(throttles,0)/(FILL(throttles,0)+FILL(invocations,0))"
    assert math["metrics"] == {"throttles": "Throttles", "invocations": "Invocations"}
    assert (math["namespace"], math["stat"]) == ("AWS/Lambda", "Sum")
    assert tf.locals["alarm_kinds"]["lambda_throttle_rate"]["comparison_operator"] == "GreaterThanThreshold"
    body = tf.resource("aws_cloudwatch_metric_alarm", "stage")
    result, inputs = (d["metric_query"] for d in body["dynamic"])
    (metric,) = inputs["content"][0]["metric"]
    assert metric["dimensions"] == "${local.alarm_dimensions[each.key]}"
    assert metric["period"] == "${each.value.period_seconds}"
    rate_alarms = {k: a for k, a in alarm_instances(tf, env).items() if a["kind"] == "lambda_throttle_rate"}
    assert set(rate_alarms) == {a["name"] for s in env.stages.values() for a in s["alarms"] if a["kind"] == "lambda_throttle_rate"}
    assert {a["stage"] for a in rate_alarms.values()} == set(env.stages), "every shipped stage watches its throttle rate"
    # Both metrics on this stage's alias: local.alarm_dimensions gives lambda_ kinds
    # Resource = function:stage (test_alarm_dimensions_follow_the_contract).
    assert "FunctionName = alarm.function" in tf.locals["alarm_dimensions"]
    for alarm in rate_alarms.values():
        assert alarm["kind"].startswith("lambda_")
        assert 0 < alarm["threshold"] < 1


def test_alarm_dimensions_follow_the_contract(tf):
    dims = re.sub(r"\s+", " ", tf.locals["alarm_dimensions"])
    # Lambda alarms watch the alias, API alarms the stage.
    assert 'startswith(alarm.kind, "lambda_")' in dims
    assert "for name, alarm in local.function_alarms" in dims
    assert 'tomap({FunctionName = alarm.function, Resource = "${alarm.function}:${alarm.stage}"})' in dims
    assert "tomap({ApiName = local.project.rest_api_name, Stage = alarm.stage})" in dims


def test_alarm_topic_is_encrypted(tf):
    topic = tf.resource("aws_sns_topic", "alarms")
    assert topic["kms_master_key_id"] == "${aws_kms_key.observability.arn}"
    alarm = tf.resource("aws_cloudwatch_metric_alarm", "stage")
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"]


# --- CodeDeploy -------------------------------------------------------------------------


def test_codedeploy_group_per_function_per_codedeploy_stage_with_its_alarms_and_rollback(tf, env, codedeploy_env):
    assert tf.resource("aws_codedeploy_app", "function")["compute_platform"] == "Lambda"
    # No shipped stage uses the engine, so nothing gets a group nobody drives.
    assert evaluated(tf, env, "aws_codedeploy_deployment_group", "function", "deployment_group_name") == {}
    groups = evaluated(tf, codedeploy_env, "aws_codedeploy_deployment_group", "function", "deployment_group_name")
    functions = [f["name"] for f in codedeploy_env.project["functions"]]
    assert groups == {f"{f}:{s}": s for f in functions for s in ("dev", "live")}
    body = tf.resource("aws_codedeploy_deployment_group", "function")
    alarms = block(body, "alarm_configuration")
    assert alarms["alarms"] == (
        "${[for name in local.codedeploy_group_alarms[each.key] : aws_cloudwatch_metric_alarm.stage[name].alarm_name]}"
    )
    rollback = block(body, "auto_rollback_configuration")
    assert rollback["enabled"] is True
    assert set(rollback["events"]) == {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"}


# --- GitHub OIDC ------------------------------------------------------------------------


def test_one_deploy_role_per_stage_trusting_only_that_environment(tf, env):
    roles = tf.resource("aws_iam_role", "github_deploy")
    assert roles["for_each"] == "${local.stages}"
    assert roles["assume_role_policy"] == "${data.aws_iam_policy_document.github_assume[each.key].json}"
    trust = tf.data_source("aws_iam_policy_document", "github_assume")
    assert trust["for_each"] == "${local.github_subjects}"
    (statement,) = trust["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}
    assert conditions["token.actions.githubusercontent.com:aud"] == ("StringEquals", ["sts.amazonaws.com"])
    test, subs = conditions["token.actions.githubusercontent.com:sub"]
    assert (test, subs) == ("StringEquals", "${local.github_subjects[each.key]}")


PROMOTE_ACTIONS = {
    "lambda:GetAlias",
    "lambda:ListAliases",
    "lambda:UpdateAlias",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:ListVersionsByFunction",
    "apigateway:GET",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:GetMetricData",
}
# What the CodeDeploy engine calls, granted to codedeploy stages only (tests/static/test_codedeploy.py).
CODEDEPLOY_ACTIONS = {
    "codedeploy:CreateDeployment",
    "codedeploy:GetDeployment",
    "codedeploy:ListDeployments",
    "codedeploy:ListDeploymentTargets",
    "codedeploy:GetDeploymentTarget",
    "codedeploy:StopDeployment",
    "codedeploy:GetDeploymentConfig",
    "codedeploy:RegisterApplicationRevision",
    "codedeploy:GetApplicationRevision",
}


def test_deploy_policy_grants_exactly_what_promote_calls_on_this_stack(tf):
    doc = tf.data_source("aws_iam_policy_document", "github_deploy")
    statements = list(doc["statement"]) + [block(d["statement"], "content") for d in doc["dynamic"]]
    granted = {a for st in statements for a in st["actions"]}
    assert granted == PROMOTE_ACTIONS | CODEDEPLOY_ACTIONS
    by_sid = {st["sid"]: st for st in statements}
    # Writes are narrow: this stage's alias of each function only; no stage role publishes
    # (publish.tf does).
    assert by_sid["MoveOwnAlias"]["resources"] == (
        "${[for key, a in aws_lambda_alias.stage : a.arn if local.function_stages[key].stage == each.key]}"
    )
    *codedeploy, metrics = doc["dynamic"]
    assert len(codedeploy) == 3
    # The metrics judge's read is granted only where the stage's analysis uses it, and on "*":
    # GetMetricData has no resource-level permissions, so it is the one exception below.
    assert metrics["statement"]["for_each"] == '${contains(local.analysis_sources[each.key], "metrics") ? [1] : []}'
    read_metrics = block(metrics["statement"], "content")
    assert read_metrics["actions"] == ["cloudwatch:GetMetricData"] and read_metrics["resources"] == ["*"]
    for st in statements:
        if st is read_metrics:
            continue
        resources = st["resources"]
        assert resources != ["*"] and "\"*\"" not in str(resources), f"{st['sid']} grants on every resource"
        assert any(r in str(resources) for r in (
            "aws_lambda_function.function", "aws_lambda_alias.stage", "aws_api_gateway_rest_api.app.id",
            "aws_cloudwatch_metric_alarm.stage", "aws_codedeploy_deployment_group.function",
            "local.codedeploy_groups", "aws_codedeploy_app.function",
        )), f"{st['sid']} is not scoped to this stack: {resources}"


# --- variables and outputs --------------------------------------------------------------


def test_every_variable_has_a_type_and_description(tf):
    for name, var in tf.variables.items():
        assert var.get("type"), f"variable {name} has no type"
        assert len(var.get("description", "")) > 10, f"variable {name} has no description"


@pytest.mark.parametrize("name", ["region", "github_repository", "lambda_architecture", "lambda_zip_paths", "lambda_timeout_seconds"])
def test_key_variables_are_validated(tf, name):
    validation = block(tf.variables[name], "validation")
    assert validation["condition"] and validation["error_message"]


# Outputs docs/terraform.md documents for the pipeline; workflows may read any of them.
DOCUMENTED_OUTPUTS = {
    "region",
    "function_name",
    "function_arn",
    "rest_api_id",
    "stage_urls",
    "alarm_names",
    "github_role_arns",
    "publish_stages",
}


def workflow_output_reads() -> set[str]:
    """Output names the workflows read with `terraform output [-json|-raw] <name>`."""
    names = set()
    for path in (ROOT / ".github" / "workflows").glob("*.y*ml"):
        for m in re.finditer(r"terraform(?:\s+-chdir=\S+)?\s+output\s+(?:-(?:json|raw)\s+)*([a-z_][a-z0-9_]*)", path.read_text()):
            names.add(m.group(1))
    return names


def test_outputs_promote_and_the_workflows_read_exist(tf):
    missing = (DOCUMENTED_OUTPUTS | workflow_output_reads()) - set(tf.outputs)
    assert not missing, f"terraform/outputs.tf lacks {sorted(missing)}"
    for name, out in tf.outputs.items():
        assert out.get("description"), f"output {name} has no description"


def test_per_stage_outputs_are_keyed_by_stage(tf):
    for name in ("stage_urls", "github_role_arns", "alarm_names"):
        value = tf.outputs[name]["value"]
        assert value.startswith("${{for name, "), f"{name} is not a map keyed by stage: {value}"


def outputs_section(page: str) -> str:
    """The "## Outputs" section of docs/terraform.md, up to the next heading of its level."""
    return page.split("\n## Outputs\n", 1)[1].split("\n## ", 1)[0]


def undocumented_outputs(tf, page: str) -> list[str]:
    section = outputs_section(page)
    return [name for name in tf.outputs if f"`{name}`" not in section]


def test_the_docs_document_every_output(tf):
    undocumented = undocumented_outputs(tf, (ROOT / "docs" / "terraform.md").read_text())
    assert not undocumented, f"docs/terraform.md, Outputs, does not mention outputs {undocumented}"


def test_the_output_check_catches_an_undocumented_output(tf):
    page = (ROOT / "docs" / "terraform.md").read_text()
    name = next(iter(tf.outputs))
    # Mentioned elsewhere on the page does not count: only the Outputs section documents it.
    stripped = page.replace(outputs_section(page), outputs_section(page).replace(f"`{name}`", name))
    assert undocumented_outputs(tf, stripped) == [name]


def test_length_checked_names_are_the_ones_terraform_builds(tf, env, codedeploy_env):
    import check_environments

    derived = {name for _, name, _ in check_environments.derived_names(env.project, env.stages)}
    built = set(evaluated(tf, env, "aws_iam_role", "lambda", "name").values()) | {
        render(tf, tf.resource("aws_iam_role", "github_publish")["name"], env),
        render(tf, tf.resource("aws_iam_role", "api_gateway_cloudwatch")["name"], env),
    }
    built |= set(evaluated(tf, env, "aws_iam_role", "github_deploy", "name").values())
    assert derived == built
    # With codedeploy stages, one service role each.
    derived = {name for what, name, _ in check_environments.derived_names(codedeploy_env.project, codedeploy_env.stages) if what == "IAM role"}
    assert {"app-codedeploy-dev", "app-codedeploy-live"} <= derived
    assert set(evaluated(tf, codedeploy_env, "aws_iam_role", "codedeploy", "name").values()) == {"app-codedeploy-dev", "app-codedeploy-live"}
    # The deployment config names of codedeploy stages (none ship), one per function:
    # check_environments derives them from its own rules, Terraform in local.codedeploy_groups.
    derived = {
        name for what, name, _ in check_environments.derived_names(codedeploy_env.project, codedeploy_env.stages)
        if what.startswith("CodeDeploy")
    }
    config = tf.resource("aws_codedeploy_deployment_config", "group")
    assert config["deployment_config_name"] == "${each.value.config_name}"
    built = {c["config_name"] for c in instances(tf, config, codedeploy_env).values()}
    functions = [f["name"] for f in codedeploy_env.project["functions"]]
    assert derived == built == {
        f"{f}-{s}" for f in functions for s in ("dev-all-at-once", "live-canary-10pct-5min")
    }


def test_adding_a_stage_file_adds_its_whole_set_of_resources(tf, tmp_path):
    import json
    import shutil

    from conftest import ENVIRONMENTS_DIR
    from tfmodel import Environments

    d = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, d)
    staging = json.loads((d / "test.json").read_text())
    for alarm in staging["alarms"]:
        alarm["name"] = alarm["name"].replace("-test-", "-staging-")
    (d / "staging.json").write_text(json.dumps(staging))
    env = Environments.load(d)
    assert "staging" in env.stages
    for rtype, name, attr in [
        ("aws_api_gateway_stage", "stage", "stage_name"),
        ("aws_iam_role", "github_deploy", "name"),
    ]:
        assert "staging" in evaluated(tf, env, rtype, name, attr), f"{rtype}.{name} has no staging instance"
    # Every function gets its alias and invoke permission on the new stage, and the birthday
    # function its table.
    for f in env.project["functions"]:
        for rtype, name, attr in [("aws_lambda_alias", "stage", "name"), ("aws_lambda_permission", "api_stage", "qualifier")]:
            assert f"{f['name']}:staging" in evaluated(tf, env, rtype, name, attr), f"{rtype}.{name} has no {f['name']}:staging"
    assert "birthday-staging" in evaluated(tf, env, "aws_dynamodb_table", "function", "name")
    alarms = evaluated(tf, env, "aws_cloudwatch_metric_alarm", "stage", "alarm_name")
    assert {a["name"] for a in staging["alarms"]} <= set(alarms)
