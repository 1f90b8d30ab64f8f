terraform {
  # 1.10 brings S3-native state locking (use_lockfile) used by the backend below.
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Lambda logging_config and optional OIDC thumbprints need 5.81; 6.x is tested against the same resources.
      version = ">= 5.81.0, < 7.0.0"
    }
    # Environments, deployment branch policies and the OIDC subject template (github.tf).
    github = {
      source  = "integrations/github"
      version = ">= 6.2.0, < 7.0.0"
    }
  }

  # Partial configuration: bucket, key and region come from `terraform init -backend-config=backend.hcl`
  # (see backend.hcl.example), so no account-specific name is committed.
  backend "s3" {}
}
