# The alarms the stage files name, each Lambda one per function (local.function_alarms):
# promote watches them during bakes, CodeDeploy stops on them.
resource "aws_cloudwatch_metric_alarm" "stage" {
  for_each = local.function_alarms

  alarm_name        = each.key
  alarm_description = "${each.value.kind} of stage ${each.value.stage}${startswith(each.value.kind, "lambda_") ? ", function ${each.value.function}" : ""} (environments/${each.value.stage}.json); promote rolls the stage back when it fires"

  namespace           = local.alarm_kinds[each.value.kind].namespace
  metric_name         = local.alarm_kinds[each.value.kind].metric_name
  statistic           = local.alarm_kinds[each.value.kind].statistic
  extended_statistic  = local.alarm_kinds[each.value.kind].extended_statistic
  comparison_operator = local.alarm_kinds[each.value.kind].comparison_operator
  # A metric-math alarm names its metrics, dimensions and period in metric_query instead
  # (PutMetricAlarm refuses both).
  dimensions = contains(keys(local.alarm_math), each.value.kind) ? null : local.alarm_dimensions[each.key]
  period     = contains(keys(local.alarm_math), each.value.kind) ? null : each.value.period_seconds

  # The expression the alarm compares with its threshold (the rate)...
  dynamic "metric_query" {
    for_each = { for kind, math in local.alarm_math : "rate" => math if kind == each.value.kind }
    content {
      id          = metric_query.key
      expression  = metric_query.value.expression
      label       = metric_query.value.label
      return_data = true
    }
  }

  # ...and the metrics it reads, each on the stage's alias, over the alarm's period.
  dynamic "metric_query" {
    for_each = try(local.alarm_math[each.value.kind].metrics, {})
    content {
      id          = metric_query.key
      return_data = false
      metric {
        namespace   = local.alarm_math[each.value.kind].namespace
        metric_name = metric_query.value
        stat        = local.alarm_math[each.value.kind].stat
        period      = each.value.period_seconds
        dimensions  = local.alarm_dimensions[each.key]
      }
    }
  }

  threshold          = each.value.threshold
  evaluation_periods = each.value.evaluation_periods
  # No requests means nothing failed; whether INSUFFICIENT_DATA blocks a bake is promote's call
  # (insufficient_data_is_failure in the stage file).
  treat_missing_data = "notBreaching"

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  name              = "${local.project.functions[0].name}-alarms"
  kms_master_key_id = aws_kms_key.observability.arn
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    # Only the alarms of this stack (the stages' and the guardian's) may publish here, not any alarm of the account.
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for alarm in local.topic_alarm_names : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${alarm}"]
    }
  }

  statement {
    sid       = "AccountManagesTopic"
    actions   = ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}
