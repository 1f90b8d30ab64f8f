# Provenance: only the publish role (GitHub environment "publish", main only, path-to-live.yml)
# can put code into the function, and Lambda refuses code that the publish signing profile did
# not sign. The stage roles move aliases and nothing else; docs/threat-model.md says what this
# stops and what it does not.

# Signer reads the unsigned zip from a versioned bucket and writes the signed copy beside it.
resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:Access logging would need a second bucket; CloudTrail data events are the account's choice for object-level audit.
  #checkov:skip=CKV_AWS_144:Artifacts are rebuilt from the commit; replicating them to another region protects nothing that matters.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new artifacts; the pipeline reads the signing job's answer.
  #checkov:skip=CKV_AWS_145:Build artifacts are not secret; S3-managed encryption, integrity comes from the signature.
  bucket_prefix = "${local.project.functions[0].name}-artifacts-"
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# S3-managed keys: Signer reads and writes these objects on the caller's behalf, and a build
# artifact is no secret; what protects it is who may write it and the signature.
resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    id     = "expire-old-artifacts"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Names allow letters, digits and underscores only.
resource "aws_signer_signing_profile" "publish" {
  name_prefix = "${replace(local.project.functions[0].name, "-", "_")}_publish_"
  platform_id = "AWSLambda-SHA384-ECDSA"

  signature_validity_period {
    value = var.signature_validity_months
    type  = "MONTHS"
  }
}

# The profile's own policy names the publish role; no stage role has any signer permission.
resource "aws_signer_signing_profile_permission" "publish" {
  profile_name = aws_signer_signing_profile.publish.name
  action       = "signer:StartSigningJob"
  principal    = aws_iam_role.github_publish.arn
  statement_id = "PublishRoleSigns"
}

resource "aws_lambda_code_signing_config" "app" {
  description = "Only code signed by the publish profile of ${local.project.functions[0].name}"

  allowed_publishers {
    signing_profile_version_arns = [aws_signer_signing_profile.publish.version_arn]
  }

  policies {
    untrusted_artifact_on_deployment = "Enforce"
  }
}

# The first code: the local zip, signed by the same profile, so the function is created under
# the code-signing config (Lambda refuses unsigned code from the very first deployment).
resource "aws_s3_object" "initial_code" {
  for_each = local.functions

  bucket      = aws_s3_bucket.artifacts.id
  key         = "unsigned/initial-${each.key}.zip"
  source      = local.lambda_zip_paths[each.key]
  source_hash = try(filemd5(local.lambda_zip_paths[each.key]), null)

  lifecycle {
    # After the first apply the code belongs to the publish job.
    ignore_changes = [source, source_hash]
  }

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_signer_signing_job" "initial_code" {
  for_each = local.functions

  profile_name = aws_signer_signing_profile.publish.name

  source {
    s3 {
      bucket  = aws_s3_object.initial_code[each.key].bucket
      key     = aws_s3_object.initial_code[each.key].key
      version = aws_s3_object.initial_code[each.key].version_id
    }
  }

  destination {
    s3 {
      bucket = aws_s3_bucket.artifacts.id
      prefix = "signed/"
    }
  }

  ignore_signing_job_failure = false
}

resource "aws_iam_role" "github_publish" {
  name                 = "${local.project.functions[0].name}-publish"
  description          = "Uploads, signs and publishes code from main (GitHub environment ${local.publish_environment} of ${var.github_repository})"
  assume_role_policy   = data.aws_iam_policy_document.github_assume[local.publish_environment].json
  max_session_duration = 3600

  depends_on = [
    github_repository_environment.stage,
    github_repository_environment_deployment_policy.stage,
    github_actions_repository_oidc_subject_claim_customization_template.this,
  ]
}

# Upload the zip, sign it, publish the signed copy; read what promote publish reads back.
data "aws_iam_policy_document" "github_publish" {
  statement {
    sid       = "StageArtifacts"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.artifacts.arn}/unsigned/*", "${aws_s3_bucket.artifacts.arn}/signed/*"]
  }

  statement {
    sid       = "SignWithPublishProfile"
    actions   = ["signer:StartSigningJob", "signer:GetSigningProfile"]
    resources = [aws_signer_signing_profile.publish.arn]
  }

  statement {
    sid     = "FollowSigningJobs"
    actions = ["signer:DescribeSigningJob"]
    # Signing jobs get ids only when started; their ARNs live under the account's signer jobs.
    resources = ["arn:${local.partition}:signer:${local.region}:${local.account_id}:/signing-jobs/*"]
  }

  statement {
    sid = "PublishVersions"
    actions = [
      "lambda:UpdateFunctionCode",
      "lambda:PublishVersion",
      "lambda:GetFunction",
      "lambda:GetFunctionConfiguration",
      "lambda:ListVersionsByFunction",
      "lambda:ListAliases",
      "lambda:GetAlias",
    ]
    resources = flatten([for f in aws_lambda_function.function : [f.arn, "${f.arn}:*"]])
  }

  # UpdateFunctionCode on a function with a code-signing config checks the config.
  statement {
    sid       = "ReadCodeSigningConfig"
    actions   = ["lambda:GetCodeSigningConfig", "lambda:GetFunctionCodeSigningConfig"]
    resources = concat([aws_lambda_code_signing_config.app.arn], [for f in aws_lambda_function.function : f.arn])
  }
}

resource "aws_iam_role_policy" "github_publish" {
  name   = "publish"
  role   = aws_iam_role.github_publish.id
  policy = data.aws_iam_policy_document.github_publish.json
}
