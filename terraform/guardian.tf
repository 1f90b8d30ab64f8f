# The guardian (docs/guardian.md): a function AWS runs on every state change of a stage's
# alarm and every minute, so that a canary whose promote run died is still taken back when
# its evidence fails. It reads and writes only the aliases of this project's functions, on
# the stages promote shifts itself (CodeDeploy rolls its own stages back).
locals {
  guardian_name     = "${local.project.functions[0].name}-guardian"
  guardian_zip_path = coalesce(var.guardian_zip_path, "${path.module}/../target/lambda/guardian/bootstrap.zip")

  # Every function of a release (the guardian takes them back together).
  guardian_functions = sort(keys(local.functions))
  # The stages promote shifts itself, and their alarms: the API's and every function's own
  # (local.function_alarms names them as the guardian reads them).
  guardian_stages         = [for name in keys(local.stages) : name if !contains(keys(local.codedeploy_stages), name)]
  guardian_watched_alarms = sort([for name, alarm in local.function_alarms : name if contains(local.guardian_stages, alarm.stage)])

  # The alarms on the guardian itself: its errors, events it could not handle, and a split
  # left past its plan on each guarded stage (the embedded metric of guardian/src/report.rs).
  guardian_alarms = merge(
    {
      errors = {
        description = "The guardian failed an invocation: a split may be unguarded (its log says which stage)"
        namespace   = "AWS/Lambda"
        metric_name = "Errors"
        dimensions  = { FunctionName = aws_lambda_function.guardian.function_name }
        statistic   = "Sum"
        period      = 60
      }
      dead-letters = {
        description = "An event for the guardian was not handled after its retries (kept in the dead-letter queue)"
        namespace   = "AWS/SQS"
        metric_name = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = aws_sqs_queue.guardian_dead_letters.name }
        statistic   = "Maximum"
        period      = 60
      }
    },
    {
      for stage in local.guardian_stages : "stale-split-${stage}" => {
        description = "A split on stage ${stage} has stood past its plan with no promote run finishing it"
        namespace   = "Guardian"
        metric_name = "StaleSplits"
        dimensions  = { Stage = stage }
        statistic   = "Sum"
        period      = 300
      }
    },
  )
  guardian_alarm_names = [for key in keys(local.guardian_alarms) : "${local.guardian_name}-${key}"]
  # Every alarm that publishes to the alarm topic (alarms.tf, kms.tf): the stages' and the guardian's.
  topic_alarm_names = concat(keys(local.function_alarms), local.guardian_alarm_names)
}

# --- the function -------------------------------------------------------------------------

resource "aws_lambda_function" "guardian" {
  #checkov:skip=CKV_AWS_117:The function calls only AWS APIs; a VPC would add ENI cold starts and NAT cost without protecting anything.
  function_name = local.guardian_name
  description   = "Takes back a failing canary of ${local.project.rest_api_name}'s functions when no promote runs (alarm state changes and a one-minute schedule)"
  role          = aws_iam_role.guardian.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.lambda_architecture]
  memory_size   = 256
  # The guarded write retries a rollback for up to 180 s (crates/aliases).
  timeout = 200

  # An alarm event and a tick may overlap; more at once would only race each other.
  reserved_concurrent_executions = 2

  # Signed by the publish profile like the app (publish.tf); the zip holds the bootstrap and
  # environments/ (make package), which the function reads beside itself.
  code_signing_config_arn = aws_lambda_code_signing_config.app.arn
  s3_bucket               = aws_signer_signing_job.guardian_code.signed_object[0].s3[0].bucket
  s3_key                  = aws_signer_signing_job.guardian_code.signed_object[0].s3[0].key

  dead_letter_config {
    target_arn = aws_sqs_queue.guardian_dead_letters.arn
  }

  tracing_config {
    mode = var.lambda_tracing_mode
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.guardian.name
  }

  depends_on = [aws_iam_role_policy.guardian]
}

resource "aws_s3_object" "guardian_code" {
  bucket      = aws_s3_bucket.artifacts.id
  key         = "unsigned/guardian.zip"
  source      = local.guardian_zip_path
  source_hash = try(filemd5(local.guardian_zip_path), null)

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_signer_signing_job" "guardian_code" {
  profile_name = aws_signer_signing_profile.publish.name

  source {
    s3 {
      bucket  = aws_s3_object.guardian_code.bucket
      key     = aws_s3_object.guardian_code.key
      version = aws_s3_object.guardian_code.version_id
    }
  }

  destination {
    s3 {
      bucket = aws_s3_bucket.artifacts.id
      prefix = "signed/guardian/"
    }
  }

  ignore_signing_job_failure = false
}

resource "aws_cloudwatch_log_group" "guardian" {
  name              = "/aws/lambda/${local.guardian_name}"
  retention_in_days = local.function_log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

# Asynchronous invocations (the rule's and the schedule's) are retried by Lambda, then
# their events kept in the dead-letter queue.
resource "aws_lambda_function_event_invoke_config" "guardian" {
  function_name                = aws_lambda_function.guardian.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 900

  destination_config {
    on_failure {
      destination = aws_sqs_queue.guardian_dead_letters.arn
    }
  }
}

# --- its role: read and take back this project's aliases, read the evidence ----------------

resource "aws_iam_role" "guardian" {
  name               = local.guardian_name
  description        = "Execution role of ${local.guardian_name}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "guardian" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.guardian.arn}:*"]
  }

  statement {
    sid     = "ReadAndTakeBackStageAliases"
    actions = ["lambda:GetAlias", "lambda:UpdateAlias"]
    resources = flatten([
      for fn in local.guardian_functions : [
        for stage in local.guardian_stages : "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${fn}:${stage}"
      ]
    ])
  }

  statement {
    sid       = "ReadStageAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = [for alarm in local.guardian_watched_alarms : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${alarm}"]
  }

  statement {
    # GetMetricData has no resource-level permissions.
    sid       = "ReadPerVersionMetrics"
    actions   = ["cloudwatch:GetMetricData"]
    resources = ["*"]
  }

  statement {
    sid       = "KeepFailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.guardian_dead_letters.arn]
  }

  statement {
    sid       = "EncryptFailedEvents"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.guardian.arn]
  }

  dynamic "statement" {
    for_each = var.lambda_tracing_mode == "Active" ? [1] : []
    content {
      sid       = "WriteTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "guardian" {
  name   = "guard-stage-aliases"
  role   = aws_iam_role.guardian.id
  policy = data.aws_iam_policy_document.guardian.json
}

# --- the triggers ---------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "guardian_alarms" {
  name        = "${local.guardian_name}-alarm-state-changes"
  description = "State changes of the alarms of the stages promote shifts"
  event_pattern = jsonencode({
    source        = ["aws.cloudwatch"]
    "detail-type" = ["CloudWatch Alarm State Change"]
    detail        = { alarmName = local.guardian_watched_alarms }
  })
}

resource "aws_cloudwatch_event_target" "guardian_alarms" {
  rule = aws_cloudwatch_event_rule.guardian_alarms.name
  arn  = aws_lambda_function.guardian.arn

  retry_policy {
    maximum_retry_attempts       = 10
    maximum_event_age_in_seconds = 900
  }

  dead_letter_config {
    arn = aws_sqs_queue.guardian_dead_letters.arn
  }
}

resource "aws_lambda_permission" "guardian_alarms" {
  statement_id   = "AllowAlarmStateChanges"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.guardian.function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.guardian_alarms.arn
  source_account = local.account_id
}

resource "aws_scheduler_schedule" "guardian" {
  name        = local.guardian_name
  description = "The guardian's judge of every split whose analysis uses per-version metrics"
  # Every minute: Lambda publishes its metrics per minute.
  schedule_expression = "rate(1 minute)"
  kms_key_arn         = aws_kms_key.guardian.arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.guardian.arn
    role_arn = aws_iam_role.guardian_scheduler.arn
    # The envelope of an EventBridge scheduled event, which the guardian reads as a tick.
    input = jsonencode({
      version       = "0"
      id            = "<aws.scheduler.execution-id>"
      "detail-type" = "Scheduled Event"
      source        = "aws.scheduler"
      account       = local.account_id
      time          = "<aws.scheduler.scheduled-time>"
      region        = local.region
      resources     = ["<aws.scheduler.schedule-arn>"]
      detail        = {}
    })

    # A tick older than two minutes is superseded by the next one.
    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 120
    }

    dead_letter_config {
      arn = aws_sqs_queue.guardian_dead_letters.arn
    }
  }
}

resource "aws_iam_role" "guardian_scheduler" {
  name               = "${local.guardian_name}-scheduler"
  description        = "Lets EventBridge Scheduler invoke ${local.guardian_name}"
  assume_role_policy = data.aws_iam_policy_document.guardian_scheduler_assume.json
}

data "aws_iam_policy_document" "guardian_scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "guardian_scheduler" {
  statement {
    sid       = "InvokeTheGuardian"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.guardian.arn]
  }

  statement {
    sid       = "KeepFailedTicks"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.guardian_dead_letters.arn]
  }

  statement {
    sid       = "UseTheGuardianKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.guardian.arn]
  }
}

resource "aws_iam_role_policy" "guardian_scheduler" {
  name   = "invoke-guardian"
  role   = aws_iam_role.guardian_scheduler.id
  policy = data.aws_iam_policy_document.guardian_scheduler.json
}

# --- failed events, and the alarms on the guardian itself -----------------------------------

resource "aws_kms_key" "guardian" {
  description             = "The guardian's dead-letter queue and schedule (${local.project.functions[0].name})"
  enable_key_rotation     = true
  deletion_window_in_days = var.log_kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.guardian_key.json
}

data "aws_iam_policy_document" "guardian_key" {
  #checkov:skip=CKV_AWS_109:Key policy: "*" is this key, and the account root statement is what lets IAM policies grant access at all.
  #checkov:skip=CKV_AWS_111:Key policy: "*" is this key, and the account root statement is what lets IAM policies grant access at all.
  #checkov:skip=CKV_AWS_356:Key policy: "*" is this key; key policies cannot name other resources.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # EventBridge delivers the rule's failed events to the encrypted queue itself.
  statement {
    sid       = "EventBridgeKeepsFailedEvents"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.guardian_alarms.arn]
    }
  }
}

resource "aws_sqs_queue" "guardian_dead_letters" {
  name                              = "${local.guardian_name}-dead-letters"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.guardian.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue_policy" "guardian_dead_letters" {
  queue_url = aws_sqs_queue.guardian_dead_letters.id
  policy    = data.aws_iam_policy_document.guardian_dead_letters.json
}

data "aws_iam_policy_document" "guardian_dead_letters" {
  statement {
    sid       = "TheRuleKeepsFailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.guardian_dead_letters.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.guardian_alarms.arn]
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "guardian" {
  for_each = local.guardian_alarms

  alarm_name          = "${local.guardian_name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
