# The functions' buckets (local.buckets): one per stage and purpose, private, encrypted with
# the project's key, reachable over TLS only, versioned. docs/storage.md says what each holds.
#
# Two resources rather than one: `prevent_destroy` cannot depend on a value, and live's data
# must survive a `terraform destroy` or an apply that would replace a bucket. Every other
# stage's buckets are emptied and deleted with the stage (`force_destroy`): a non-empty bucket
# that fails a teardown halfway is seed 001's lesson.
resource "aws_s3_bucket" "kept" {
  #checkov:skip=CKV_AWS_18:Access logging would need a log bucket per region; CloudTrail data events are the account's choice for object-level audit.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice of the account (and its cost); versioning keeps every overwritten object here.
  #checkov:skip=CKV2_AWS_62:Only a trigger bucket notifies (aws_s3_bucket_notification.trigger); nothing reacts to notes, images or summaries.
  for_each = { for k, b in local.buckets : k => b if b.kept }

  bucket        = each.value.name
  force_destroy = false

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket" "disposable" {
  #checkov:skip=CKV_AWS_18:Access logging would need a log bucket per region; CloudTrail data events are the account's choice for object-level audit.
  #checkov:skip=CKV_AWS_144:Data of a stage before live is test data; replicating it protects nothing.
  #checkov:skip=CKV2_AWS_62:Only a trigger bucket notifies (aws_s3_bucket_notification.trigger); nothing reacts to notes, images or summaries.
  for_each = { for k, b in local.buckets : k => b if !b.kept }

  bucket        = each.value.name
  force_destroy = true
}

locals {
  # Every bucket by key, whichever resource holds it.
  bucket_ids  = merge({ for k, b in aws_s3_bucket.kept : k => b.id }, { for k, b in aws_s3_bucket.disposable : k => b.id })
  bucket_arns = merge({ for k, b in aws_s3_bucket.kept : k => b.arn }, { for k, b in aws_s3_bucket.disposable : k => b.arn })
}

resource "aws_s3_bucket_public_access_block" "function" {
  for_each = local.buckets

  bucket                  = local.bucket_ids[each.key]
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Bucket owner enforced: no ACL grants anything; the policies below and the roles decide.
resource "aws_s3_bucket_ownership_controls" "function" {
  for_each = local.buckets

  bucket = local.bucket_ids[each.key]
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "function" {
  for_each = local.buckets

  bucket = local.bucket_ids[each.key]
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.observability.arn
    }
    # One data key per bucket rather than one KMS call per object.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "function" {
  for_each = local.buckets

  bucket = local.bucket_ids[each.key]
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "function" {
  for_each = local.buckets

  bucket = local.bucket_ids[each.key]
  rule {
    id     = "expire-replaced-objects"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = each.value.kept ? 90 : 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # promote's upload probe leaves an object and its summary per probe request: a day later
  # they have served their bake.
  dynamic "rule" {
    for_each = toset([for f in local.project.functions : f.probe.prefix if try(f.probe.type, "") == "upload"])
    content {
      id     = "expire-probe-objects-${replace(rule.value, "/", "-")}"
      status = "Enabled"
      filter {
        prefix = rule.value
      }
      expiration {
        days = 1
      }
      noncurrent_version_expiration {
        noncurrent_days = 1
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.function]
}

# TLS only: a request over plain HTTP is denied whoever makes it.
data "aws_iam_policy_document" "bucket_tls_only" {
  for_each = local.buckets

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.bucket_arns[each.key],
      "${local.bucket_arns[each.key]}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "function" {
  for_each = local.buckets

  bucket = local.bucket_ids[each.key]
  policy = data.aws_iam_policy_document.bucket_tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.function]
}

# Each stage's trigger bucket invokes that stage's alias of the function it triggers, so a
# canary split applies to S3 events as it does to requests. S3 may invoke the alias only for
# this bucket of this account (seed 004's lesson: the permission names the source bucket and
# the account, or any bucket anywhere named alike could invoke it).
resource "aws_lambda_permission" "s3_trigger" {
  for_each = local.s3_triggers

  statement_id   = "AllowS3Bucket-${each.value.stage}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function[each.value.function].function_name
  qualifier      = aws_lambda_alias.stage[each.key].name
  principal      = "s3.amazonaws.com"
  source_arn     = local.bucket_arns[each.value.bucket]
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "trigger" {
  for_each = local.s3_triggers

  bucket = local.bucket_ids[each.value.bucket]

  lambda_function {
    lambda_function_arn = aws_lambda_alias.stage[each.key].arn
    events              = ["s3:ObjectCreated:*"]
  }

  depends_on = [aws_lambda_permission.s3_trigger]
}

# S3 invokes the function asynchronously: Lambda retries a failed event twice (the default,
# written here because the probe and the judge count on it) and drops it after an hour. The
# object stays in its bucket, so a dropped event is re-run by copying the object onto itself.
resource "aws_lambda_function_event_invoke_config" "s3_trigger" {
  for_each = local.s3_triggers

  function_name                = aws_lambda_function.function[each.value.function].function_name
  qualifier                    = aws_lambda_alias.stage[each.key].name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}
