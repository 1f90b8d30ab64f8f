provider "aws" {
  # environments/project.json holds the default region so promote and Terraform agree on it;
  # var.region overrides it for a second copy of the stack elsewhere.
  region = local.region

  default_tags {
    tags = merge(
      {
        Project   = local.project.functions[0].name
        ManagedBy = "terraform"
      },
      var.tags,
    )
  }
}

# Credentials from GITHUB_TOKEN or GITHUB_APP_* in the environment of whoever applies (an owner
# of the repository: environments and their rules are administration settings).
provider "github" {
  owner = split("/", var.github_repository)[0]
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
