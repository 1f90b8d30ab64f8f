# Exactly the alarms the stage files name: promote watches them during bakes, CodeDeploy stops on them.
resource "aws_cloudwatch_metric_alarm" "stage" {
  for_each = local.alarms

  alarm_name        = each.key
  alarm_description = "${each.value.kind} of stage ${each.value.stage} (environments/${each.value.stage}.json); promote rolls the stage back when it fires"

  namespace           = local.alarm_kinds[each.value.kind].namespace
  metric_name         = local.alarm_kinds[each.value.kind].metric_name
  statistic           = local.alarm_kinds[each.value.kind].statistic
  extended_statistic  = local.alarm_kinds[each.value.kind].extended_statistic
  comparison_operator = local.alarm_kinds[each.value.kind].comparison_operator
  dimensions          = local.alarm_dimensions[each.key]

  threshold          = each.value.threshold
  period             = each.value.period_seconds
  evaluation_periods = each.value.evaluation_periods
  # No requests means nothing failed; whether INSUFFICIENT_DATA blocks a bake is promote's call
  # (insufficient_data_is_failure in the stage file).
  treat_missing_data = "notBreaching"

  alarm_actions = [aws_sns_topic.alarms.arn]
  ok_actions    = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  name              = "${local.project.function_name}-alarms"
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
    # Only the alarms of this stack may publish here, not any alarm of the account.
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for alarm in keys(local.alarms) : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${alarm}"]
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
