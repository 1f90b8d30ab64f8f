# GitHub Actions deploys with short-lived credentials: one role per stage, assumable only by a job
# of this repository (by id, so a deleted and re-created repository of the same name is not it)
# running in the GitHub environment of the same name, from one of this repository's workflows on
# main. The subject claim carries those three facts once github.tf customizes it.
locals {
  github_oidc_provider_arn = coalesce(var.github_oidc_provider_arn, try(aws_iam_openid_connect_provider.github[0].arn, null))

  # The `sub` a job presents: the claim keys github.tf asks GitHub for, in that order.
  github_subjects = {
    for env in concat(keys(local.stages), [local.publish_environment]) : env => [
      for wf in(env == local.publish_environment ? [var.github_publish_workflow] : var.github_deploy_workflows) :
      "repository_id:${data.github_repository.this.repo_id}:environment:${env}:job_workflow_ref:${var.github_repository}/${wf}@refs/heads/main"
    ]
  }
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url             = "https://token.actions.githubusercontent.com"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = var.github_oidc_thumbprints
}

# One trust policy per GitHub environment: each stage's, and publish's (publish.tf).
data "aws_iam_policy_document" "github_assume" {
  for_each = local.github_subjects

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = local.github_subjects[each.key]
    }
  }
}

resource "aws_iam_role" "github_deploy" {
  for_each = local.stages

  name                 = "${local.project.functions[0].name}-deploy-${each.key}"
  description          = "promote in GitHub Actions, environment ${each.key} of ${var.github_repository}"
  assume_role_policy   = data.aws_iam_policy_document.github_assume[each.key].json
  max_session_duration = var.deploy_role_max_session_seconds

  # The environment's protection rules and the subject format must exist before anything can
  # assume the role: otherwise a branch declaring `environment: <stage>` creates an unprotected
  # environment and gets the role.
  depends_on = [
    github_repository_environment.stage,
    github_repository_environment_deployment_policy.stage,
    github_actions_repository_oidc_subject_claim_customization_template.this,
  ]
}

# Exactly the calls promote makes: read the function, its versions, aliases, API and alarms;
# move only this stage's alias. No stage role publishes: that is the publish role's alone
# (publish.tf), so a version's code and signature come from main only.
data "aws_iam_policy_document" "github_deploy" {
  for_each = local.stages

  statement {
    sid = "ReadFunctionVersionsAndAliases"
    actions = [
      "lambda:GetFunction",
      "lambda:GetFunctionConfiguration",
      "lambda:ListVersionsByFunction",
      "lambda:ListAliases",
      "lambda:GetAlias",
    ]
    resources = flatten([for f in aws_lambda_function.function : [f.arn, "${f.arn}:*"]])
  }

  statement {
    sid       = "MoveOwnAlias"
    actions   = ["lambda:UpdateAlias"]
    resources = [for key, a in aws_lambda_alias.stage : a.arn if local.function_stages[key].stage == each.key]
  }

  statement {
    sid     = "ReadApi"
    actions = ["apigateway:GET"]
    # project.json names the API, not its id: promote finds it by listing /restapis (names only),
    # then reads its stages.
    resources = [
      "arn:${local.partition}:apigateway:${local.region}::/restapis",
      "arn:${local.partition}:apigateway:${local.region}::/restapis/${aws_api_gateway_rest_api.app.id}",
      "arn:${local.partition}:apigateway:${local.region}::/restapis/${aws_api_gateway_rest_api.app.id}/*",
    ]
  }

  statement {
    sid       = "ReadAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = [for alarm in aws_cloudwatch_metric_alarm.stage : alarm.arn]
  }

  # The CodeDeploy engine (codedeploy stages only): create, follow and stop deployments of
  # this stage's own groups (one per function), with their own configs. A revision is
  # registered on an application, which is the narrowest resource those two calls take.
  dynamic "statement" {
    for_each = contains(keys(local.codedeploy_stages), each.key) ? [1] : []
    content {
      sid = "DriveOwnDeploymentGroup"
      actions = [
        "codedeploy:CreateDeployment",
        "codedeploy:GetDeployment",
        "codedeploy:ListDeployments",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:GetDeploymentTarget",
        "codedeploy:StopDeployment",
      ]
      resources = [for key, g in aws_codedeploy_deployment_group.function : g.arn if local.codedeploy_groups[key].stage == each.key]
    }
  }

  dynamic "statement" {
    for_each = contains(keys(local.codedeploy_stages), each.key) ? [1] : []
    content {
      sid       = "ReadOwnDeploymentConfig"
      actions   = ["codedeploy:GetDeploymentConfig"]
      resources = [for key, g in local.codedeploy_groups : "arn:${local.partition}:codedeploy:${local.region}:${local.account_id}:deploymentconfig:${g.config_name}" if g.stage == each.key]
    }
  }

  dynamic "statement" {
    for_each = contains(keys(local.codedeploy_stages), each.key) ? [1] : []
    content {
      sid       = "RegisterRevisions"
      actions   = ["codedeploy:RegisterApplicationRevision", "codedeploy:GetApplicationRevision"]
      resources = [for a in aws_codedeploy_app.function : a.arn]
    }
  }

  # promote's metrics judge reads Lambda's per-version metrics of this stage's alias.
  # GetMetricData has no resource-level permissions: "*" is the only resource it accepts.
  dynamic "statement" {
    for_each = contains(local.analysis_sources[each.key], "metrics") ? [1] : []
    content {
      sid       = "ReadVersionMetrics"
      actions   = ["cloudwatch:GetMetricData"]
      resources = ["*"] #checkov:skip=CKV_AWS_356:GetMetricData supports no resource-level permissions
    }
  }
}

resource "aws_iam_role_policy" "github_deploy" {
  for_each = local.stages

  name   = "promote-${each.key}"
  role   = aws_iam_role.github_deploy[each.key].id
  policy = data.aws_iam_policy_document.github_deploy[each.key].json
}
