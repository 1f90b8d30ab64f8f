# The GitHub side of the path to live, in code rather than in settings made by hand: one GitHub
# environment per stage plus "publish", each deployable from main only, with the stage's
# reviewers where its file says approval_required, and no administrator bypass. The deploy and
# publish roles depend on these (github_oidc.tf, publish.tf), so no role exists before the rules
# that guard it.
locals {
  # The environment whose role alone uploads, signs and publishes code (publish.tf).
  publish_environment = "publish"

  github_environments = merge(
    { for name, stage in local.stages : name => { approval_required = try(stage.approval_required, false) } },
    { (local.publish_environment) = { approval_required = false } },
  )

  github_repository_name = split("/", var.github_repository)[1]
}

data "github_repository" "this" {
  full_name = var.github_repository
}

# The `sub` claim names the repository by id (a re-created repository of the same name gets a
# new id), the environment, and the workflow file and ref the job runs from: a workflow on
# another branch, or another workflow file, presents a different subject and no role trusts it.
resource "github_actions_repository_oidc_subject_claim_customization_template" "this" {
  repository         = local.github_repository_name
  use_default        = false
  include_claim_keys = ["repository_id", "environment", "job_workflow_ref"]
}

resource "github_repository_environment" "stage" {
  for_each = local.github_environments

  repository          = local.github_repository_name
  environment         = each.key
  can_admins_bypass   = false
  prevent_self_review = true

  dynamic "reviewers" {
    for_each = each.value.approval_required ? [1] : []
    content {
      users = var.github_reviewers.users
      teams = var.github_reviewers.teams
    }
  }

  deployment_branch_policy {
    protected_branches     = false
    custom_branch_policies = true
  }

  lifecycle {
    precondition {
      condition     = !each.value.approval_required || length(var.github_reviewers.users) + length(var.github_reviewers.teams) > 0
      error_message = "Stage ${each.key} says approval_required, but var.github_reviewers names no user or team to approve it."
    }
  }
}

# Main only: a job on any other branch cannot enter the environment, so it never gets the token
# whose subject the role trusts.
resource "github_repository_environment_deployment_policy" "stage" {
  for_each = local.github_environments

  repository     = local.github_repository_name
  environment    = github_repository_environment.stage[each.key].environment
  branch_pattern = "main"
}
