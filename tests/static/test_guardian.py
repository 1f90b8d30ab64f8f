"""terraform/guardian.tf: the guardian function, its least-privilege role, its two triggers
with retries and a dead-letter queue, and the alarms on the guardian itself (docs/guardian.md)."""

from __future__ import annotations

from tfmodel import block

ALIAS_ARNS = (
    '${flatten([for fn in local.guardian_functions : [for stage in local.guardian_stages : '
    '"arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${fn}:${stage}"]])}'
)
ALARM_ARNS = (
    '${[for alarm in local.guardian_watched_alarms : '
    '"arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${alarm}"]}'
)


def statements(doc: dict) -> dict[str, dict]:
    return {st["sid"]: st for st in doc["statement"]}


def test_the_guarded_stages_are_those_promote_shifts_and_their_alarms(tf):
    assert tf.locals["guardian_stages"] == (
        "${[for name in keys(local.stages) : name if !contains(keys(local.codedeploy_stages), name)]}"
    )
    # Every function's alarms (the API's once, each Lambda one per function), as the
    # guardian names them (rollout's Alarm::stack_names).
    assert tf.locals["guardian_watched_alarms"] == (
        "${sort([for name, alarm in local.function_alarms : name if contains(local.guardian_stages, alarm.stage)])}"
    )
    # Every function of project.json, from the one map of them (no list to keep in step).
    assert tf.locals["guardian_functions"] == "${sort(keys(local.functions))}"
    assert tf.locals["functions"] == "${{for f in local.project.functions : f.name => f}}"


def test_the_function_is_signed_bounded_traced_and_logs_encrypted(tf):
    fn = tf.resource("aws_lambda_function", "guardian")
    assert (fn["runtime"], fn["handler"]) == ("provided.al2023", "bootstrap")
    assert fn["code_signing_config_arn"] == "${aws_lambda_code_signing_config.app.arn}"
    assert fn["s3_key"] == "${aws_signer_signing_job.guardian_code.signed_object[0].s3[0].key}"
    # The guarded write retries a rollback for up to 180 s.
    assert fn["timeout"] > 180
    assert fn["reserved_concurrent_executions"] == 2
    assert block(fn, "dead_letter_config")["target_arn"] == "${aws_sqs_queue.guardian_dead_letters.arn}"
    assert block(fn, "logging_config")["log_group"] == "${aws_cloudwatch_log_group.guardian.name}"
    lg = tf.resource("aws_cloudwatch_log_group", "guardian")
    assert lg["retention_in_days"] == "${local.function_log_retention_days}"
    assert lg["kms_key_id"] == "${aws_kms_key.observability.arn}"
    invoke = tf.resource("aws_lambda_function_event_invoke_config", "guardian")
    assert invoke["maximum_retry_attempts"] >= 1
    on_failure = block(block(invoke, "destination_config"), "on_failure")
    assert on_failure["destination"] == "${aws_sqs_queue.guardian_dead_letters.arn}"


def test_the_role_reads_and_takes_back_only_this_projects_stage_aliases(tf):
    doc = tf.data_source("aws_iam_policy_document", "guardian")
    sts = statements(doc)
    assert set(sts) == {
        "WriteOwnLogs", "ReadAndTakeBackStageAliases", "ReadStageAlarms",
        "ReadPerVersionMetrics", "KeepFailedEvents", "EncryptFailedEvents",
    }
    aliases = sts["ReadAndTakeBackStageAliases"]
    assert aliases["actions"] == ["lambda:GetAlias", "lambda:UpdateAlias"]
    assert aliases["resources"] == ALIAS_ARNS
    assert sts["ReadStageAlarms"]["actions"] == ["cloudwatch:DescribeAlarms"]
    assert sts["ReadStageAlarms"]["resources"] == ALARM_ARNS
    # The one unscoped grant is the one AWS cannot scope.
    unscoped = [sid for sid, st in sts.items() if st["resources"] == ["*"]]
    assert unscoped == ["ReadPerVersionMetrics"]
    assert sts["ReadPerVersionMetrics"]["actions"] == ["cloudwatch:GetMetricData"]
    every = [a for st in sts.values() for a in st["actions"]]
    assert not [a for a in every if a.endswith("*")], every
    assert not {"lambda:UpdateFunctionCode", "lambda:PublishVersion", "lambda:InvokeFunction"} & set(every)


def test_the_rule_matches_the_guarded_stages_alarm_state_changes_with_retries_and_dlq(tf):
    rule = tf.resource("aws_cloudwatch_event_rule", "guardian_alarms")
    pattern = rule["event_pattern"]
    for part in ('source = ["aws.cloudwatch"]', '"detail-type" = ["CloudWatch Alarm State Change"]',
                 "alarmName = local.guardian_watched_alarms"):
        assert part in pattern, pattern
    target = tf.resource("aws_cloudwatch_event_target", "guardian_alarms")
    assert target["arn"] == "${aws_lambda_function.guardian.arn}"
    assert block(target, "retry_policy")["maximum_retry_attempts"] >= 1
    assert block(target, "dead_letter_config")["arn"] == "${aws_sqs_queue.guardian_dead_letters.arn}"
    perm = tf.resource("aws_lambda_permission", "guardian_alarms")
    assert (perm["principal"], perm["source_arn"]) == (
        "events.amazonaws.com", "${aws_cloudwatch_event_rule.guardian_alarms.arn}",
    )


def test_the_schedule_ticks_every_minute_as_a_scheduled_event(tf):
    s = tf.resource("aws_scheduler_schedule", "guardian")
    assert s["schedule_expression"] == "rate(1 minute)"
    assert s["kms_key_arn"] == "${aws_kms_key.guardian.arn}"
    target = block(s, "target")
    assert target["arn"] == "${aws_lambda_function.guardian.arn}"
    # What guardian/src/event.rs reads as a tick.
    assert '"detail-type" = "Scheduled Event"' in target["input"]
    assert block(target, "retry_policy")["maximum_retry_attempts"] >= 1
    assert block(target, "dead_letter_config")["arn"] == "${aws_sqs_queue.guardian_dead_letters.arn}"
    sts = statements(tf.data_source("aws_iam_policy_document", "guardian_scheduler"))
    assert sts["InvokeTheGuardian"]["actions"] == ["lambda:InvokeFunction"]
    assert sts["InvokeTheGuardian"]["resources"] == ["${aws_lambda_function.guardian.arn}"]


def test_failed_events_are_kept_encrypted_and_the_guardian_is_watched(tf):
    q = tf.resource("aws_sqs_queue", "guardian_dead_letters")
    assert q["kms_master_key_id"] == "${aws_kms_key.guardian.arn}"
    assert tf.resource("aws_kms_key", "guardian")["enable_key_rotation"] is True
    # One alarm resource over the guardian's alarms (no copy per alarm).
    alarm = tf.resource("aws_cloudwatch_metric_alarm", "guardian")
    assert alarm["for_each"] == "${local.guardian_alarms}"
    assert alarm["alarm_name"] == "${local.guardian_name}-${each.key}"
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"]
    assert alarm["ok_actions"] == ["${aws_sns_topic.alarms.arn}"]
    text = str(tf.locals["guardian_alarms"])
    for part in ('errors = {', 'namespace = "AWS/Lambda"', "FunctionName = aws_lambda_function.guardian.function_name",
                 "dead-letters = {", "QueueName = aws_sqs_queue.guardian_dead_letters.name",
                 # The metric guardian/src/report.rs writes, per guarded stage.
                 '"stale-split-${stage}"', 'namespace = "Guardian"', 'metric_name = "StaleSplits"',
                 "for stage in local.guardian_stages"):
        assert part in text, (part, text)
    assert tf.locals["guardian_alarm_names"] == (
        '${[for key in keys(local.guardian_alarms) : "${local.guardian_name}-${key}"]}'
    )
