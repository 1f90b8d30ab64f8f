"""The CodeDeploy engine in terraform/ against environments/: the deployment configuration each
codedeploy stage's steps become, one application per function with one group per codedeploy
stage (named as promote derives them), each group's alarms, the hooks CodeDeploy may invoke,
and the deploy roles' CodeDeploy permissions (their own stage's groups and configs only).

No shipped stage uses the engine, so stage files are switched in a temporary copy. The rules
come from one table, crates/rollout/testdata/codedeploy_configs.json, which promote's loader
(crates/rollout/src/codedeploy_tests.rs) and the seed's model in tools/check_environments.py are held to as well.
"""

from __future__ import annotations

import json
import shutil

import pytest

import check_environments
from conftest import ENVIRONMENTS_DIR, ROOT
from tfmodel import (
    Environments,
    block,
    codedeploy_config_instances,
    codedeploy_group_instances,
    codedeploy_hook_instances,
    instances,
    render,
)

CASES = json.loads((ROOT / "crates/rollout/testdata/codedeploy_configs.json").read_text())["cases"]


def with_live_strategy(tmp_path, strategy: dict) -> Environments:
    d = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, d)
    live = json.loads((d / "live.json").read_text())
    live["strategy"] = {**strategy, "engine": "codedeploy"}
    # The cases' bakes are about CodeDeploy's shapes, not the alarm windows.
    live["test_fixture_short_bakes"] = True
    (d / "live.json").write_text(json.dumps(live))
    return Environments.load(d)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_check_environments_derives_what_the_table_says(case):
    config, refused = check_environments.codedeploy_config(case["strategy"])
    if "config" in case:
        assert (config, refused) == (case["config"], None)
    else:
        assert config is None
        assert refused == (case["refused"]["field"], case["refused"]["message"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_terraform_derives_the_same_config_from_the_same_file(tf, tmp_path, case):
    env = with_live_strategy(tmp_path, case["strategy"])
    tf_config = codedeploy_config_instances(tf, env)["live"]
    config, refused = check_environments.codedeploy_config(env.stages["live"]["strategy"])
    # Terraform's precondition holds exactly where the check lets the file through.
    assert tf_config["runnable"] == (refused is None), tf_config
    if config is None:
        return
    assert tf_config["type"] == config["type"]
    if config["type"] != "AllAtOnce":
        assert (tf_config["percentage"], tf_config["minutes"]) == (config["percentage"], config["interval_minutes"])
    assert tf_config["name"] == f"app-live-{check_environments.config_name_suffix(config)}"


def test_the_check_refuses_an_unrunnable_codedeploy_stage_with_the_table_message(tmp_path):
    live_plan = next(c for c in CASES if c["name"] == "three unequal steps (live's plan)")
    env_dir = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR, env_dir)
    live = json.loads((env_dir / "live.json").read_text())
    live["strategy"]["engine"] = "codedeploy"
    (env_dir / "live.json").write_text(json.dumps(live))
    report = check_environments.check(env_dir)
    assert report.errors == [f"{env_dir / 'live.json'}: field `strategy.steps`: {live_plan['refused']['message']}"]
    # Hooks belong to the CodeDeploy engine only.
    live["strategy"] = {**live["strategy"], "engine": "alias", "hooks": {"after_allow_traffic": "post"}}
    (env_dir / "live.json").write_text(json.dumps(live))
    (err,) = check_environments.check(env_dir).errors
    assert "field `strategy.hooks`: hooks are CodeDeploy lifecycle hooks" in err


def test_config_resource_routes_traffic_by_the_derived_type(tf, codedeploy_env):
    body = tf.resource("aws_codedeploy_deployment_config", "group")
    assert body["for_each"] == "${local.codedeploy_groups}"
    assert body["deployment_config_name"] == "${each.value.config_name}"
    assert body["compute_platform"] == "Lambda"
    routing = block(body, "traffic_routing_config")
    assert routing["type"] == "${each.value.type}"
    dynamics = {name: d for entry in routing["dynamic"] for name, d in entry.items()}
    assert dynamics["time_based_canary"]["for_each"] == '${each.value.type == "TimeBasedCanary" ? [1] : []}'
    assert dynamics["time_based_linear"]["for_each"] == '${each.value.type == "TimeBasedLinear" ? [1] : []}'
    for d in dynamics.values():
        assert block(d, "content") == {"percentage": "${each.value.percentage}", "interval": "${each.value.minutes}"}
    lifecycle = block(body, "lifecycle")
    assert block(lifecycle, "precondition")["condition"] == "${each.value.runnable}"
    group = tf.resource("aws_codedeploy_deployment_group", "function")
    assert group["for_each"] == "${local.codedeploy_groups}"
    assert group["deployment_config_name"] == "${aws_codedeploy_deployment_config.group[each.key].deployment_config_name}"
    configs = codedeploy_config_instances(tf, codedeploy_env)
    assert {k: (c["type"], c["percentage"], c["minutes"]) for k, c in configs.items()} == {
        "dev": ("AllAtOnce", 100, 0),
        "live": ("TimeBasedCanary", 10, 5),
    }


def test_codedeploy_invokes_only_the_hooks_the_stages_name(tf, env, codedeploy_env):
    assert codedeploy_hook_instances(tf, env) == {}
    assert codedeploy_hook_instances(tf, codedeploy_env) == {"dev": [], "live": ["app-live-pre", "app-live-post"]}
    doc = tf.data_source("aws_iam_policy_document", "codedeploy")
    assert doc["for_each"] == "${local.codedeploy_stages}"
    dynamics = {block(d["statement"], "content")["sid"]: d["statement"] for d in doc["dynamic"]}
    hooks = dynamics["InvokeOwnStageHooks"]
    assert hooks["for_each"] == "${length(local.codedeploy_hooks[each.key]) > 0 ? [1] : []}"
    invoke = block(hooks, "content")
    assert invoke["actions"] == ["lambda:InvokeFunction"]
    assert invoke["resources"] == (
        "${[for f in local.codedeploy_hooks[each.key] : "
        '"arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${f}"]}'
    )
    # The deploy roles never invoke hooks: CodeDeploy does, with its own role.
    deploy = tf.data_source("aws_iam_policy_document", "github_deploy")
    assert "lambda:InvokeFunction" not in json.dumps(deploy)


def test_deploy_roles_drive_only_their_own_group_and_config(tf, env, codedeploy_env):
    doc = tf.data_source("aws_iam_policy_document", "github_deploy")
    statements = {block(d["statement"], "content")["sid"]: d["statement"] for d in doc["dynamic"]}
    only_codedeploy_stages = "${contains(keys(local.codedeploy_stages), each.key) ? [1] : []}"
    drive, config, revisions = (
        statements["DriveOwnDeploymentGroup"],
        statements["ReadOwnDeploymentConfig"],
        statements["RegisterRevisions"],
    )
    for st in (drive, config, revisions):
        assert st["for_each"] == only_codedeploy_stages
    assert set(block(drive, "content")["actions"]) == {
        "codedeploy:CreateDeployment",
        "codedeploy:GetDeployment",
        "codedeploy:ListDeployments",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:GetDeploymentTarget",
        "codedeploy:StopDeployment",
    }
    # This stage's groups (one per function) and their configs, never another stage's.
    assert block(drive, "content")["resources"] == (
        "${[for key, g in aws_codedeploy_deployment_group.function : g.arn if local.codedeploy_groups[key].stage == each.key]}"
    )
    assert block(config, "content")["actions"] == ["codedeploy:GetDeploymentConfig"]
    assert block(config, "content")["resources"] == (
        "${[for key, g in local.codedeploy_groups : "
        '"arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:deploymentconfig:${g.config_name}" '
        "if g.stage == each.key]}"
    )
    assert set(block(revisions, "content")["actions"]) == {
        "codedeploy:RegisterApplicationRevision",
        "codedeploy:GetApplicationRevision",
    }
    assert block(revisions, "content")["resources"] == "${[for a in aws_codedeploy_app.function : a.arn]}"
    # Which roles get them: none of the shipped stages, exactly the codedeploy ones otherwise.
    roles = tf.resource("aws_iam_role", "github_deploy")
    for e, expected in ((env, set()), (codedeploy_env, {"dev", "live"})):
        group_stages = {g["stage"] for g in codedeploy_group_instances(tf, e).values()}
        granted = {k for k in instances(tf, roles, e) if k in group_stages}
        assert granted == expected


def test_each_codedeploy_service_role_reaches_only_its_own_stage(tf, env, codedeploy_env):
    """The AppSpec names the alias and whoever may CreateDeployment in a group writes it: the
    group's service role must not be able to move any other stage's alias (or its alarms)."""
    group = tf.resource("aws_codedeploy_deployment_group", "function")
    assert group["service_role_arn"] == "${aws_iam_role.codedeploy[each.value.stage].arn}"
    for rtype, name in (("aws_iam_role", "codedeploy"), ("aws_iam_role_policy", "codedeploy")):
        assert tf.resource(rtype, name)["for_each"] == "${local.codedeploy_stages}"
    policy = tf.resource("aws_iam_role_policy", "codedeploy")
    assert policy["role"] == "${aws_iam_role.codedeploy[each.key].id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.codedeploy[each.key].json}"
    roles = instances(tf, tf.resource("aws_iam_role", "codedeploy"), codedeploy_env)
    assert set(roles) == {"dev", "live"}
    names = {render(tf, tf.resource("aws_iam_role", "codedeploy")["name"], codedeploy_env, k, v) for k, v in roles.items()}
    assert names == {"app-codedeploy-dev", "app-codedeploy-live"}
    doc = tf.data_source("aws_iam_policy_document", "codedeploy")
    statements = doc["statement"] if isinstance(doc["statement"], list) else [doc["statement"]]
    (shift,) = [s for s in statements if "lambda:UpdateAlias" in s["actions"]]
    # This stage's alias of each function: the stage's aliases, never another stage's.
    assert shift["resources"] == (
        "${[for key, a in aws_lambda_alias.stage : a.arn if local.function_stages[key].stage == each.key]}"
    )
    dynamics = {block(d["statement"], "content")["sid"]: d["statement"] for d in doc["dynamic"]}
    alarms = block(dynamics["ReadOwnStageAlarms"], "content")
    assert alarms["resources"] == "${[for name in local.codedeploy_stage_alarms[each.key] : aws_cloudwatch_metric_alarm.stage[name].arn]}"
    # Nothing in the role publishes or reaches every alias.
    text = json.dumps(doc)
    assert "sns:Publish" not in text
    assert "for alias in aws_lambda_alias.stage" not in text


def test_every_function_has_its_own_application_and_a_group_per_codedeploy_stage(tf, env, codedeploy_env):
    """CodeDeploy's group shifts one alias: every function of project.json gets its own
    application (named after it) with one group per codedeploy stage (named after the stage)
    and its own config, the names rollout::codedeploy::Group and DeploymentConfig::name give,
    so that promote's release finds each function's group."""
    functions = [f["name"] for f in codedeploy_env.project["functions"]]
    assert len(functions) >= 2, "the release needs several functions"
    app = tf.resource("aws_codedeploy_app", "function")
    assert app["for_each"] == "${local.functions}"
    assert app["name"] == "${each.key}"
    assert app["compute_platform"] == "Lambda"
    group = tf.resource("aws_codedeploy_deployment_group", "function")
    assert group["app_name"] == "${aws_codedeploy_app.function[each.value.function].name}"
    assert group["deployment_group_name"] == "${each.value.stage}"
    assert codedeploy_group_instances(tf, env) == {}
    groups = codedeploy_group_instances(tf, codedeploy_env)
    assert set(groups) == {f"{f}:{s}" for f in functions for s in ("dev", "live")}
    configs = codedeploy_config_instances(tf, codedeploy_env)
    for key, g in groups.items():
        assert key == f"{g['function']}:{g['stage']}"
        # promote's DeploymentConfig::name(function, stage).
        assert g["config_name"] == f"{g['function']}-{g['stage']}-{configs[g['stage']]['suffix']}"
        assert (g["type"], g["percentage"], g["minutes"]) == tuple(configs[g["stage"]][k] for k in ("type", "percentage", "minutes"))
    assert groups["birthday:live"]["config_name"] == "birthday-live-canary-10pct-5min"
    assert len({g["config_name"] for g in groups.values()}) == len(groups), "one config per group"


def test_each_group_rolls_back_on_its_own_functions_alarms_and_the_stages_api_alarms(tf, codedeploy_env):
    group = tf.resource("aws_codedeploy_deployment_group", "function")
    alarm_cfg = block(group, "alarm_configuration")
    assert alarm_cfg["enabled"] == "${length(local.codedeploy_group_alarms[each.key]) > 0}"
    assert alarm_cfg["alarms"] == (
        "${[for name in local.codedeploy_group_alarms[each.key] : aws_cloudwatch_metric_alarm.stage[name].alarm_name]}"
    )
    rollback = block(group, "auto_rollback_configuration")
    assert rollback["enabled"] is True
    live = codedeploy_env.stages["live"]
    lambda_alarms = [a["name"] for a in live["alarms"] if a["kind"].startswith("lambda_")]
    api_alarms = [a["name"] for a in live["alarms"] if not a["kind"].startswith("lambda_")]
    assert lambda_alarms, "live has Lambda alarms"
    groups = codedeploy_group_instances(tf, codedeploy_env)
    app, birthday = groups["app:live"]["alarms"], groups["birthday:live"]["alarms"]
    # app's Lambda alarms are under the stage file's names, birthday's under <name>-birthday;
    # neither group watches the other function's.
    assert app == sorted(lambda_alarms + api_alarms)
    assert birthday == sorted([f"{n}-birthday" for n in lambda_alarms] + api_alarms)
    assert not set(app) & {f"{n}-birthday" for n in lambda_alarms}
