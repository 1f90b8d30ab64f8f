variable "environments_dir" {
  description = "Directory holding project.json and one <stage>.json per stage. Defaults to ../environments next to this module, the same files promote reads."
  type        = string
  default     = null

  validation {
    condition     = var.environments_dir == null || length(trimspace(coalesce(var.environments_dir, " "))) > 0
    error_message = "environments_dir must be a non-empty path, or null for ../environments."
  }
}

variable "region" {
  description = "AWS region to deploy into. Defaults to the region in environments/project.json."
  type        = string
  default     = null

  # Terraform's own input, so Terraform checks it at plan time; project.json's region is
  # checked by its schema (environments/schema/project.schema.json, `promote check`).
  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", coalesce(var.region, "x")))
    error_message = "region must look like eu-west-2 or us-gov-west-1, or be null to use environments/project.json."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose environments may assume the per-stage deploy roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. acme/path-to-live."
  }
}

variable "github_reviewers" {
  description = "GitHub user and team ids that must approve a deployment to every stage whose file says approval_required (live); `gh api users/<login> --jq .id`, `gh api orgs/<org>/teams/<slug> --jq .id`."
  type = object({
    users = optional(list(number), [])
    teams = optional(list(number), [])
  })
  default = {}
}

variable "github_deploy_workflows" {
  description = "Workflow files (path in the repository) whose jobs on main may assume the stage roles: the path to live and the operator's workflow."
  type        = list(string)
  default     = [".github/workflows/path-to-live.yml", ".github/workflows/operate.yml"]

  validation {
    condition     = alltrue([for w in var.github_deploy_workflows : can(regex("^\\.github/workflows/[A-Za-z0-9._-]+\\.ya?ml$", w))])
    error_message = "Each entry must be a workflow file path such as .github/workflows/path-to-live.yml."
  }
}

variable "github_publish_workflow" {
  description = "The one workflow file whose job on main, in the publish environment, may upload, sign and publish code."
  type        = string
  default     = ".github/workflows/path-to-live.yml"

  validation {
    condition     = can(regex("^\\.github/workflows/[A-Za-z0-9._-]+\\.ya?ml$", var.github_publish_workflow))
    error_message = "github_publish_workflow must be a workflow file path such as .github/workflows/path-to-live.yml."
  }
}

variable "signature_validity_months" {
  description = "How long a signature made by the publish signing profile stays valid; Lambda refuses code whose signature expired when it is deployed."
  type        = number
  default     = 60

  validation {
    condition     = var.signature_validity_months >= 1 && var.signature_validity_months <= 135
    error_message = "signature_validity_months must be 1..135 (AWS Signer's limit)."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing token.actions.githubusercontent.com OIDC provider (an account holds at most one). Null creates it."
  type        = string
  default     = null

  validation {
    condition     = var.github_oidc_provider_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", coalesce(var.github_oidc_provider_arn, "x")))
    error_message = "github_oidc_provider_arn must be the ARN of the token.actions.githubusercontent.com OIDC provider, or null."
  }
}

variable "github_oidc_thumbprints" {
  description = "Thumbprints recorded on a newly created GitHub OIDC provider. AWS validates GitHub's certificate itself, so these only matter to older partitions."
  type        = list(string)
  default     = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]

  validation {
    condition     = alltrue([for t in var.github_oidc_thumbprints : can(regex("^[0-9a-f]{40}$", t))])
    error_message = "Each thumbprint must be 40 lowercase hex characters."
  }
}

variable "deploy_role_max_session_seconds" {
  description = "Longest session a pipeline job gets from its stage role; must cover the longest canary bake in the stage files."
  type        = number
  default     = 3600

  validation {
    condition     = var.deploy_role_max_session_seconds >= 3600 && var.deploy_role_max_session_seconds <= 43200
    error_message = "deploy_role_max_session_seconds must be between 3600 and 43200."
  }
}

variable "lambda_zip_paths" {
  description = "Function name -> zip holding its bootstrap, used only when the function is first created (later code comes from `promote publish`). A function not named here uses its package's `cargo lambda build` output, ../target/lambda/<package>/bootstrap.zip."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for p in values(var.lambda_zip_paths) : endswith(p, ".zip")])
    error_message = "lambda_zip_paths must map function names to .zip files (build them with `make package`)."
  }
}

variable "guardian_zip_path" {
  description = "Zip of the guardian function: its bootstrap and environments/ (docs/guardian.md). Defaults to the `make package` output, ../target/lambda/guardian/bootstrap.zip."
  type        = string
  default     = null

  validation {
    condition     = var.guardian_zip_path == null || endswith(coalesce(var.guardian_zip_path, "x.zip"), ".zip")
    error_message = "guardian_zip_path must point to a .zip file (build one with `make package`)."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of the function: arm64 (cheaper per GB-second) or x86_64. The zip must be built for the same one."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_mb" {
  description = "Memory of the function in MB (CPU scales with it)."
  type        = number
  default     = 128

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240 && floor(var.lambda_memory_mb) == var.lambda_memory_mb
    error_message = "lambda_memory_mb must be a whole number between 128 and 10240."
  }
}

variable "lambda_timeout_seconds" {
  description = "Function timeout in seconds. API Gateway gives up after 29 s, so longer is pointless."
  type        = number
  default     = 10

  validation {
    condition     = var.lambda_timeout_seconds >= 1 && var.lambda_timeout_seconds <= 29
    error_message = "lambda_timeout_seconds must be between 1 and 29 (the API Gateway integration timeout)."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) the function across all aliases, a cost and blast-radius guard. AWS keeps 100 unreserved per account, so accounts with a low concurrency quota (new ones) need -1, which leaves it unreserved."
  type        = number
  default     = 200

  validation {
    condition     = var.lambda_reserved_concurrency == -1 || (var.lambda_reserved_concurrency >= 1 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency)
    error_message = "lambda_reserved_concurrency must be -1 (unreserved) or a positive whole number."
  }
}

variable "lambda_tracing_mode" {
  description = "X-Ray mode of the function: PassThrough traces only requests API Gateway sampled (stages with xray_tracing), Active samples every invocation."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.lambda_tracing_mode)
    error_message = "lambda_tracing_mode must be PassThrough or Active."
  }
}

variable "xray_tracing_enabled" {
  description = "Master switch for X-Ray on API stages: false turns it off everywhere, true honours each stage file's xray_tracing."
  type        = bool
  default     = true
}

variable "manage_api_gateway_account" {
  description = "Set the region-wide API Gateway CloudWatch role that access and execution logs need. Turn off if another stack in this account and region already manages it."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the alarm topic (confirm the subscription mail). Null subscribes nobody."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", coalesce(var.alarm_email, "x@y.z")))
    error_message = "alarm_email must be an e-mail address or null."
  }
}

variable "log_kms_deletion_window_days" {
  description = "Waiting period before the logs and alarms KMS key is deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.log_kms_deletion_window_days >= 7 && var.log_kms_deletion_window_days <= 30
    error_message = "log_kms_deletion_window_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}
