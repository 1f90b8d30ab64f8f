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

  # The end of a config's name, which carries the split (as DeploymentConfig::name_suffix
  # does), so a changed plan is a new config.
  codedeploy_config_suffixes = {
    for name, c in local.codedeploy_configs : name => c.type == "AllAtOnce" ? "all-at-once" : (c.type == "TimeBasedCanary" ? "canary-${c.percentage}pct-${c.minutes}min" : "linear-${c.percentage}pct-every-${c.minutes}min")
  }

  # One deployment group per function per codedeploy stage, keyed "<function>:<stage>" as
  # local.function_stages: a group shifts one alias, so each function has its own application
  # (named after the function) holding one group per stage (named after the stage), and its
  # own config "<function>-<stage>-<suffix>": the names promote derives
  # (rollout::codedeploy::Group, DeploymentConfig::name). Each value is the stage's config.
  codedeploy_groups = {
    for key, fs in local.function_stages : key => merge(local.codedeploy_configs[fs.stage], {
      function    = fs.function
      stage       = fs.stage
      config_name = "${fs.function}-${fs.stage}-${local.codedeploy_config_suffixes[fs.stage]}"
    }) if contains(keys(local.codedeploy_stages), fs.stage)
  }

  # The alarms CodeDeploy rolls a group back on: its function's own Lambda alarms on the stage
  # and the stage's API alarms (local.function_alarms names them). promote stops the other
  # functions' deployments when one rolls back; CodeDeploy alone cannot.
  codedeploy_group_alarms = {
    for key, g in local.codedeploy_groups : key => sort([
      for name, alarm in local.function_alarms : name
      if alarm.stage == g.stage && (alarm.function == g.function || !startswith(alarm.kind, "lambda_"))
    ])
  }

  # Every alarm of a stage's groups: what its service role may read.
  codedeploy_stage_alarms = {
    for name, stage in local.codedeploy_stages : name => sort(distinct(flatten([
      for key, g in local.codedeploy_groups : local.codedeploy_group_alarms[key] if g.stage == name
    ])))
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

# Every function's application, named after it (CodeDeploy's group shifts one alias).
resource "aws_codedeploy_app" "function" {
  for_each = local.functions

  name             = each.key
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_config" "group" {
  for_each = local.codedeploy_groups

  deployment_config_name = each.value.config_name
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
      error_message = "The steps of ${each.value.stage}.json are not a plan CodeDeploy can run; `promote check` says why and what would work."
    }
  }
}

resource "aws_codedeploy_deployment_group" "function" {
  for_each = local.codedeploy_groups

  app_name               = aws_codedeploy_app.function[each.value.function].name
  deployment_group_name  = each.value.stage
  service_role_arn       = aws_iam_role.codedeploy[each.value.stage].arn
  deployment_config_name = aws_codedeploy_deployment_config.group[each.key].deployment_config_name

  deployment_style {
    deployment_option = "WITH_TRAFFIC_CONTROL"
    deployment_type   = "BLUE_GREEN"
  }

  alarm_configuration {
    enabled = length(local.codedeploy_group_alarms[each.key]) > 0
    alarms  = [for name in local.codedeploy_group_alarms[each.key] : aws_cloudwatch_metric_alarm.stage[name].alarm_name]
  }

  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }
}

# One service role per codedeploy stage, shared by its functions' groups: the AppSpec
# (written by whoever calls CreateDeployment) names the alias, so a role that could move every
# alias would let a stage's deploy role move live through its own group. Each role reaches its
# own stage's aliases only.
resource "aws_iam_role" "codedeploy" {
  for_each = local.codedeploy_stages

  name               = "${local.project.functions[0].name}-codedeploy-${each.key}"
  description        = "Lets CodeDeploy shift the ${each.key} alias of every function"
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

# Scoped down from AWSCodeDeployRoleForLambda: this stage's aliases, its groups' alarms, its hooks.
# (CodeDeploy publishes no notification here: the group has no trigger, so no sns:Publish.)
data "aws_iam_policy_document" "codedeploy" {
  for_each = local.codedeploy_stages

  statement {
    sid       = "ShiftOwnStageAlias"
    actions   = ["lambda:GetAlias", "lambda:UpdateAlias", "lambda:GetProvisionedConcurrencyConfig"]
    resources = [for key, a in aws_lambda_alias.stage : a.arn if local.function_stages[key].stage == each.key]
  }

  dynamic "statement" {
    for_each = length(local.codedeploy_stage_alarms[each.key]) > 0 ? [1] : []
    content {
      sid       = "ReadOwnStageAlarms"
      actions   = ["cloudwatch:DescribeAlarms"]
      resources = [for name in local.codedeploy_stage_alarms[each.key] : aws_cloudwatch_metric_alarm.stage[name].arn]
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
