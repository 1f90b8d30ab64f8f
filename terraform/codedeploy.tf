# The CodeDeploy engine: the same aliases and alarms, shifted by CodeDeploy instead of promote.
# CodeDeploy's canary has two steps (a share, then 100%), so a canary stage uses its first step.
locals {
  codedeploy_canaries = {
    for name, stage in local.stages : name => {
      percentage = max(1, min(99, floor(stage.strategy.steps[0].weight)))
      minutes    = max(1, ceil(stage.strategy.steps[0].bake_seconds / 60))
    }
    if stage.strategy.type == "canary" && length(try(stage.strategy.steps, [])) > 1
  }
}

resource "aws_codedeploy_app" "app" {
  name             = local.project.function_name
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_config" "canary" {
  for_each = local.codedeploy_canaries

  deployment_config_name = "${local.project.function_name}-${each.key}-canary-${each.value.percentage}pct-${each.value.minutes}min"
  compute_platform       = "Lambda"

  traffic_routing_config {
    type = "TimeBasedCanary"
    time_based_canary {
      percentage = each.value.percentage
      interval   = each.value.minutes
    }
  }

  lifecycle {
    # The name carries the split, so a changed canary is a new config the group moves to first.
    create_before_destroy = true
  }
}

resource "aws_codedeploy_deployment_group" "stage" {
  for_each = local.stages

  app_name               = aws_codedeploy_app.app.name
  deployment_group_name  = each.key
  service_role_arn       = aws_iam_role.codedeploy.arn
  deployment_config_name = contains(keys(local.codedeploy_canaries), each.key) ? aws_codedeploy_deployment_config.canary[each.key].id : "CodeDeployDefault.LambdaAllAtOnce"

  deployment_style {
    deployment_option = "WITH_TRAFFIC_CONTROL"
    deployment_type   = "BLUE_GREEN"
  }

  alarm_configuration {
    enabled = length(each.value.alarms) > 0
    alarms  = [for alarm in each.value.alarms : aws_cloudwatch_metric_alarm.stage[alarm.name].alarm_name]
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }
}

resource "aws_iam_role" "codedeploy" {
  name               = "${local.project.function_name}-codedeploy"
  description        = "Lets CodeDeploy shift the stage aliases of ${local.project.function_name}"
  assume_role_policy = data.aws_iam_policy_document.codedeploy_assume.json
}

data "aws_iam_policy_document" "codedeploy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codedeploy.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Scoped down from AWSCodeDeployRoleForLambda: these aliases, these alarms, this topic.
data "aws_iam_policy_document" "codedeploy" {
  statement {
    sid       = "ShiftStageAliases"
    actions   = ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"]
    resources = [for alias in aws_lambda_alias.stage : alias.arn]
  }

  statement {
    sid       = "ReadStageAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = [for alarm in aws_cloudwatch_metric_alarm.stage : alarm.arn]
  }

  statement {
    sid       = "Notify"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
  }
}

resource "aws_iam_role_policy" "codedeploy" {
  name   = "shift-stage-aliases"
  role   = aws_iam_role.codedeploy.id
  policy = data.aws_iam_policy_document.codedeploy.json
}
