provider "aws" {
  # environments/project.json holds the default region so promote and Terraform agree on it;
  # var.region overrides it for a second copy of the stack elsewhere.
  region = local.region

  default_tags {
    tags = merge(
      {
        Project   = local.project.function_name
        ManagedBy = "terraform"
      },
      var.tags,
    )
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
