# The CodeDeploy engine: the same aliases and alarms, shifted by CodeDeploy instead of promote,
# for the stages whose strategy says "engine": "codedeploy" (docs/engines.md).
# Stages promote shifts get no group: a second deployer nothing drives is a trap.
locals {
  codedeploy_stages = { for name, stage in local.stages : name => stage if try(stage.strategy.engine, "alias") == "codedeploy" }

  # An all-at-once stage is one step at 100.
  codedeploy_steps = {
    for name, stage in local.codedeploy_stages : name => try(stage.strategy.steps, [{ weight = 100, bake_seconds = try(stage.strategy.bake_seconds, 0) }])
  }

  # The deployment configuration a stage's steps are: one step all at once, two a canary, more
  # a linear shift. The rules live in crates/rollout/src/codedeploy.rs: `promote check` (CI)
  # refuses what CodeDeploy cannot run, saying why, before Terraform reads it. `runnable` stays
  # because Terraform needs it at plan time, for files no check has seen: the precondition below.
  codedeploy_configs = {
    for name, steps in local.codedeploy_steps : name => {
      type       = length(steps) == 1 ? "AllAtOnce" : (length(steps) == 2 ? "TimeBasedCanary" : "TimeBasedLinear")
      percentage = steps[0].weight
      minutes    = floor(steps[0].bake_seconds / 60)
      runnable = alltrue([
        length(steps) < 3 || alltrue([for i, s in steps : s.weight == (i + 1) * steps[0].weight]),
        length(steps) < 3 || alltrue([for s in slice(steps, 0, length(steps) - 1) : s.bake_seconds == steps[0].bake_seconds]),
        length(steps) < 2 || (floor(steps[0].weight) == steps[0].weight && steps[0].bake_seconds >= 60 && steps[0].bake_seconds % 60 == 0),
        steps[length(steps) - 1].bake_seconds == 0,
      ])
    }
  }

  # The config's name carries the split (as DeploymentConfig::name does), so a changed plan is a new config.
  codedeploy_config_names = {
    for name, c in local.codedeploy_configs : name => "${local.project.functions[0].name}-${name}-${c.type == "AllAtOnce" ? "all-at-once" : (c.type == "TimeBasedCanary" ? "canary-${c.percentage}pct-${c.minutes}min" : "linear-${c.percentage}pct-every-${c.minutes}min")}"
  }

  # Lambda functions CodeDeploy invokes around a stage's shift (AppSpec Hooks).
  codedeploy_hooks = {
    for name, stage in local.codedeploy_stages : name => compact([
      try(stage.strategy.hooks.before_allow_traffic, ""),
      try(stage.strategy.hooks.after_allow_traffic, ""),
    ])
  }
  codedeploy_hook_functions = distinct(flatten(values(local.codedeploy_hooks)))
}

resource "aws_codedeploy_app" "app" {
  name             = local.project.functions[0].name
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_config" "stage" {
  for_each = local.codedeploy_configs

  deployment_config_name = local.codedeploy_config_names[each.key]
  compute_platform       = "Lambda"

  traffic_routing_config {
    type = each.value.type

    dynamic "time_based_canary" {
      for_each = each.value.type == "TimeBasedCanary" ? [1] : []
      content {
        percentage = each.value.percentage
        interval   = each.value.minutes
      }
    }

    dynamic "time_based_linear" {
      for_each = each.value.type == "TimeBasedLinear" ? [1] : []
      content {
        percentage = each.value.percentage
        interval   = each.value.minutes
      }
    }
  }

  lifecycle {
    # A changed plan is a new config (its name carries the split) the group moves to first.
    create_before_destroy = true

    precondition {
      condition     = each.value.runnable
      error_message = "The steps of ${each.key}.json are not a plan CodeDeploy can run; `promote check` says why and what would work."
    }
  }
}

resource "aws_codedeploy_deployment_group" "stage" {
  for_each = local.codedeploy_stages

  app_name               = aws_codedeploy_app.app.name
  deployment_group_name  = each.key
  service_role_arn       = aws_iam_role.codedeploy[each.key].arn
  deployment_config_name = aws_codedeploy_deployment_config.stage[each.key].deployment_config_name

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

# One service role per deployment group: the AppSpec (written by whoever calls
# CreateDeployment) names the alias, so a role that could move every alias would let a stage's
# deploy role move live through its own group. Each role reaches its own stage's alias only.
resource "aws_iam_role" "codedeploy" {
  for_each = local.codedeploy_stages

  name               = "${local.project.functions[0].name}-codedeploy-${each.key}"
  description        = "Lets CodeDeploy shift the ${each.key} alias of ${local.project.functions[0].name}"
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

# Scoped down from AWSCodeDeployRoleForLambda: this stage's alias, its alarms, its hooks.
# (CodeDeploy publishes no notification here: the group has no trigger, so no sns:Publish.)
data "aws_iam_policy_document" "codedeploy" {
  for_each = local.codedeploy_stages

  statement {
    sid       = "ShiftOwnStageAlias"
    actions   = ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"]
    resources = [for key, a in aws_lambda_alias.stage : a.arn if local.function_stages[key].stage == each.key]
  }

  dynamic "statement" {
    for_each = length(each.value.alarms) > 0 ? [1] : []
    content {
      sid       = "ReadOwnStageAlarms"
      actions   = ["cloudwatch:DescribeAlarms"]
      resources = [for alarm in each.value.alarms : aws_cloudwatch_metric_alarm.stage[alarm.name].arn]
    }
  }

  # CodeDeploy, not the deploy role, invokes the hooks a stage names: with this role.
  dynamic "statement" {
    for_each = length(local.codedeploy_hooks[each.key]) > 0 ? [1] : []
    content {
      sid       = "InvokeOwnStageHooks"
      actions   = ["lambda:InvokeFunction"]
      resources = [for f in local.codedeploy_hooks[each.key] : "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${f}"]
    }
  }
}

resource "aws_iam_role_policy" "codedeploy" {
  for_each = local.codedeploy_stages

  name   = "shift-${each.key}-alias"
  role   = aws_iam_role.codedeploy[each.key].id
  policy = data.aws_iam_policy_document.codedeploy[each.key].json
}
