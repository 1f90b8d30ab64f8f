"""Stage separation in terraform/ (docs/threat-model.md): who may publish and sign, what the
stage roles cannot do, the GitHub environments and their rules created before the roles that
trust them, the OIDC subject, stage limits that fit the shared concurrency, and key and topic
policies scoped to this stack. Terraform cannot run here, so the module is read as parsed."""

from __future__ import annotations

import json
import math

from tfmodel import block, instances, render

PUBLISH_ACTIONS = {"lambda:UpdateFunctionCode", "lambda:PublishVersion", "signer:StartSigningJob", "s3:PutObject"}


def statements(doc: dict) -> list[dict]:
    st = doc.get("statement", [])
    out = list(st) if isinstance(st, list) else [st]
    out += [block(d["statement"], "content") for d in doc.get("dynamic", []) if "statement" in d]
    return out


def grants_publishing(st: dict) -> bool:
    """Whether a statement grants a publishing action. A function role's s3:PutObject on its own
    data buckets (s3.tf, local.bucket_arns) is not one: the artifacts bucket is not among them."""
    actions = PUBLISH_ACTIONS & set(st.get("actions", []))
    resources = str(st.get("resources", ""))
    if actions == {"s3:PutObject"} and "local.bucket_arns" in resources and "artifacts" not in resources:
        return False
    return bool(actions)


def test_only_the_publish_role_can_upload_publish_and_sign(tf):
    granting = {
        name
        for (dtype, name), doc in tf.data.items()
        if dtype == "aws_iam_policy_document"
        for st in statements(doc)
        if grants_publishing(st)
    }
    assert granting == {"github_publish"}, granting
    policy = tf.resource("aws_iam_role_policy", "github_publish")
    assert policy["role"] == "${aws_iam_role.github_publish.id}"
    assert policy["policy"] == "${data.aws_iam_policy_document.github_publish.json}"
    by_sid = {st["sid"]: st for st in statements(tf.data_source("aws_iam_policy_document", "github_publish"))}
    assert by_sid["SignWithPublishProfile"]["resources"] == ["${aws_signer_signing_profile.publish.arn}"]
    # Every function of the project, each with its versions, and nothing else.
    assert by_sid["PublishVersions"]["resources"] == '${flatten([for f in aws_lambda_function.function : [f.arn, "${f.arn}:*"]])}'
    # The profile's own policy names the publish role.
    perm = tf.resource("aws_signer_signing_profile_permission", "publish")
    assert (perm["action"], perm["principal"]) == ("signer:StartSigningJob", "${aws_iam_role.github_publish.arn}")


def test_lambda_refuses_code_the_publish_profile_did_not_sign(tf):
    csc = tf.resource("aws_lambda_code_signing_config", "app")
    assert block(csc, "policies")["untrusted_artifact_on_deployment"] == "Enforce"
    assert block(csc, "allowed_publishers")["signing_profile_version_arns"] == [
        "${aws_signer_signing_profile.publish.version_arn}"
    ]
    fn = tf.resource("aws_lambda_function", "function")
    assert fn["code_signing_config_arn"] == "${aws_lambda_code_signing_config.app.arn}"
    # Even the first code is signed by that profile, so no function ever ran unsigned code.
    assert "aws_signer_signing_job.initial_code[each.key].signed_object" in fn["s3_key"]
    assert "filename" not in fn
    job = tf.resource("aws_signer_signing_job", "initial_code")
    assert job["for_each"] == "${local.functions}"
    assert job["profile_name"] == "${aws_signer_signing_profile.publish.name}"
    assert block(tf.resource("aws_s3_bucket_versioning", "artifacts"), "versioning_configuration")["status"] == "Enabled"


def test_no_stage_role_can_publish_sign_or_write_artifacts(tf, env):
    doc = tf.data_source("aws_iam_policy_document", "github_deploy")
    granted = {a for st in statements(doc) for a in st["actions"]}
    assert not granted & PUBLISH_ACTIONS, granted
    assert not any(a.startswith(("signer:", "s3:", "iam:", "lambda:PutFunctionCodeSigningConfig")) for a in granted)
    # dev, the first stage, included: its role only moves its alias.
    assert "dev" in instances(tf, tf.resource("aws_iam_role", "github_deploy"), env)


def test_github_environments_and_their_rules_exist_before_the_roles(tf, env):
    envs = tf.resource("github_repository_environment", "stage")
    assert envs["for_each"] == "${local.github_environments}"
    assert envs["can_admins_bypass"] is False and envs["prevent_self_review"] is True
    assert block(envs, "deployment_branch_policy") == {"protected_branches": False, "custom_branch_policies": True}
    (reviewers,) = envs["dynamic"]
    assert reviewers["reviewers"]["for_each"] == "${each.value.approval_required ? [1] : []}"
    assert "approval_required" in block(block(envs, "lifecycle"), "precondition")["condition"]
    policy = tf.resource("github_repository_environment_deployment_policy", "stage")
    assert policy["for_each"] == "${local.github_environments}" and policy["branch_pattern"] == "main"
    environments = tf.locals["github_environments"]
    assert "for name, stage in local.stages" in environments and "local.publish_environment" in environments
    assert tf.locals["publish_environment"] == "publish"
    needed = {
        "github_repository_environment.stage",
        "github_repository_environment_deployment_policy.stage",
        "github_actions_repository_oidc_subject_claim_customization_template.this",
    }
    for role in ("github_deploy", "github_publish"):
        assert set(tf.resource("aws_iam_role", role)["depends_on"]) == {"${%s}" % n for n in needed} or set(
            tf.resource("aws_iam_role", role)["depends_on"]
        ) == needed, role
    # approval_required stages (live) get reviewers: the same files promote reads.
    assert any(s.get("approval_required") for s in env.stages.values())


def test_the_oidc_subject_names_the_repository_id_environment_and_workflow_on_main(tf):
    template = tf.resource("github_actions_repository_oidc_subject_claim_customization_template", "this")
    assert template["use_default"] is False
    keys = template["include_claim_keys"]
    assert keys == ["repository_id", "environment", "job_workflow_ref"]
    subjects = tf.locals["github_subjects"]
    # The trust's `sub` is exactly those claims, in that order, on refs/heads/main.
    assert (
        '"repository_id:${data.github_repository.this.repo_id}:environment:${env}:job_workflow_ref:'
        '${var.github_repository}/${wf}@refs/heads/main"'
    ) in subjects
    assert "var.github_publish_workflow" in subjects and "var.github_deploy_workflows" in subjects
    trust = tf.data_source("aws_iam_policy_document", "github_assume")
    conditions = {c["variable"]: c for c in trust["statement"][0]["condition"]}
    assert conditions["token.actions.githubusercontent.com:sub"]["values"] == "${local.github_subjects[each.key]}"
    assert "repo:" not in json.dumps(trust)
    publish = tf.resource("aws_iam_role", "github_publish")
    assert publish["assume_role_policy"] == "${data.aws_iam_policy_document.github_assume[local.publish_environment].json}"
    assert tf.variables["github_publish_workflow"]["default"] == ".github/workflows/path-to-live.yml"


def concurrency_share(stage: dict) -> int:
    """What terraform/environments.tf's stage_concurrency_share computes."""
    p99 = max([1000] + [a["threshold"] for a in stage["alarms"] if a["kind"] == "api_p99_latency"])
    t = stage["throttling"]
    return max(t["burst_limit"], math.ceil(t["rate_limit"] * p99 / 1000))


def test_stage_limits_fit_the_reserved_concurrency_side_by_side(tf, env):
    share = tf.locals["stage_concurrency_share"]
    assert "stage.throttling.burst_limit" in share and "stage.throttling.rate_limit" in share
    assert 'a.kind == "api_p99_latency"' in share
    reserved = tf.variables["lambda_reserved_concurrency"]["default"]
    shares = {name: concurrency_share(stage) for name, stage in env.stages.items()}
    assert sum(shares.values()) <= reserved, shares
    fn = tf.resource("aws_lambda_function", "function")
    assert fn["reserved_concurrent_executions"] == "${var.lambda_reserved_concurrency}"
    condition = block(block(fn, "lifecycle"), "precondition")["condition"]
    assert "sum(values(local.stage_concurrency_share)) <= var.lambda_reserved_concurrency" in condition
    # The check bites: live's old limits (burst 1000) would not fit.
    old_live = {**env.stages["live"], "throttling": {"rate_limit": 500, "burst_limit": 1000}}
    assert sum({**shares, "live": concurrency_share(old_live)}.values()) > reserved


def test_no_burst_alone_can_fire_a_shipped_throttle_alarm(env):
    """Throttles are watched as a share of requests over several periods, never as a count.

    A count of 1 let one throttled request refuse or roll back a release; one burst fills at
    most two periods (it may straddle a boundary), so three in a row above the threshold
    take sustained throttling (docs/threat-model.md).
    """
    for name, stage in env.stages.items():
        kinds = [a["kind"] for a in stage["alarms"]]
        assert "lambda_throttles" not in kinds, name
        (rate,) = [a for a in stage["alarms"] if a["kind"] == "lambda_throttle_rate"]
        assert rate.get("evaluation_periods", 1) >= 3, (name, rate)
        assert 0 < rate["threshold"] < 1, (name, rate)


def test_the_log_key_serves_only_this_projects_log_groups(tf, env):
    doc = tf.data_source("aws_iam_policy_document", "observability_key")
    (logs,) = [st for st in statements(doc) if st.get("sid") == "LogsEncryptOwnGroups"]
    (cond,) = logs["condition"] if isinstance(logs["condition"], list) else [logs["condition"]]
    assert (cond["test"], cond["variable"], cond["values"]) == (
        "ArnEquals", "kms:EncryptionContext:aws:logs:arn", "${local.project_log_group_arns}",
    )
    arns = tf.locals["project_log_group_arns"]
    assert "log-group:*" not in arns
    # Every log group the module creates has its name in the list.
    for name, body in tf.resources_of("aws_cloudwatch_log_group").items():
        assert body["kms_key_id"] == "${aws_kms_key.observability.arn}"
        # Per stage (access, execution logs), per function (the functions' own) or one (the guardian's).
        pattern = body["name"].replace("${each.key}", "${name}" if body.get("for_each") == "${local.functions}" else "${stage}")
        assert f"log-group:{pattern}" in arns, (name, pattern)


def test_only_this_stacks_alarms_publish_to_the_topic_and_use_its_key(tf):
    alarm_arns = (
        '${[for alarm in local.topic_alarm_names : '
        '"arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${alarm}"]}'
    )
    # The stages' alarms and the guardian's, nothing else.
    assert tf.locals["topic_alarm_names"] == "${concat(keys(local.function_alarms), local.guardian_alarm_names)}"
    for dname, sid in (("alarms_topic", "CloudWatchAlarmsOfThisAccount"), ("observability_key", "CloudWatchPublishesAlarms")):
        (st,) = [s for s in statements(tf.data_source("aws_iam_policy_document", dname)) if s.get("sid") == sid]
        conditions = {c["variable"]: c for c in st["condition"]}
        assert conditions["aws:SourceAccount"]["values"] == ["${local.account_id}"]
        assert conditions["aws:SourceArn"]["values"] == alarm_arns, dname
