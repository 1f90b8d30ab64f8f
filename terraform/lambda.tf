locals {
  # Memory per function where the default does not fit, from the measured peak
  # (bench/RESULTS.md, "images"): both copies of a 12-megapixel JPEG peak at 46 MiB, and the
  # function takes up to 40 megapixels (about 160 MiB decoded); 512 MB keeps that with headroom
  # and buys the CPU share (Lambda's CPU scales with memory) that keeps the resize near 0.2 s.
  function_memory_mb = { images = 512 }

  # Each function's first code: its package's `cargo lambda build` zip, or the path given.
  lambda_zip_paths = {
    for name, f in local.functions : name => coalesce(lookup(var.lambda_zip_paths, name, null), "${path.module}/../target/lambda/${f.package}/bootstrap.zip")
  }
}

# One function per entry of project.json's functions; nothing here is written per function.
resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_116:API Gateway invokes synchronously (failures are 5XX alarms); S3's asynchronous events keep their object in the bucket, so a failed one is retried (s3.tf) and re-run from there, not from a queue.
  #checkov:skip=CKV_AWS_173:The only environment variable is a bucket-name template (no secret); the functions' secrets, if any, belong in Secrets Manager, not the environment.
  #checkov:skip=CKV_AWS_117:The functions call no private resources (DynamoDB is reached through its public endpoint with IAM); a VPC would add ENI cold starts and NAT cost without protecting anything.
  for_each = local.functions

  function_name = each.key
  description   = length(each.value.routes) > 0 ? "${each.key}: ${join(", ", each.value.routes)} of the ${local.project.rest_api_name} REST API; one alias per stage" : "${each.key}: invoked by the ${try(each.value.trigger.bucket, "")} bucket of each stage; one alias per stage"
  role          = aws_iam_role.lambda[each.key].arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.lambda_architecture]
  memory_size   = lookup(local.function_memory_mb, each.key, var.lambda_memory_mb)
  timeout       = var.lambda_timeout_seconds

  reserved_concurrent_executions = var.lambda_reserved_concurrency

  # Lambda runs only code the publish profile signed (publish.tf); the first code is the local
  # zip signed by Terraform through that profile.
  code_signing_config_arn = aws_lambda_code_signing_config.app.arn
  s3_bucket               = aws_signer_signing_job.initial_code[each.key].signed_object[0].s3[0].bucket
  s3_key                  = aws_signer_signing_job.initial_code[each.key].signed_object[0].s3[0].key
  # Creating the function publishes version 1, which every alias starts on.
  publish = true

  tracing_config {
    mode = var.lambda_tracing_mode
  }

  # An S3-triggered function learns its stage from the alias it was invoked through, and
  # where its summaries go from this template: the same for every stage and version, so it
  # may live in the published configuration (docs/storage.md, "One bucket per stage and purpose").
  dynamic "environment" {
    for_each = contains(keys(local.s3_triggered), each.key) ? [1] : []
    content {
      variables = {
        SUMMARIES_BUCKET = lower("${local.project.rest_api_name}-{stage}-${try(each.value.probe.summaries, "summaries")}-${local.account_id}")
      }
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.lambda[each.key].name
  }

  lifecycle {
    # After the first apply the code belongs to the publish job; re-applying must not roll it back.
    ignore_changes = [s3_bucket, s3_key, s3_object_version, filename, source_code_hash]

    # Every alias shares the reserved concurrency: unless each stage's API limits fit in it
    # side by side, a burst at /test throttles live and its alarms refuse or roll back a
    # release. docs/threat-model.md, "Controls and what each stops".
    precondition {
      condition     = var.lambda_reserved_concurrency == -1 || sum(values(local.stage_concurrency_share)) <= var.lambda_reserved_concurrency
      error_message = "The stages' API limits need ${sum(values(local.stage_concurrency_share))} concurrent executions side by side (${jsonencode(local.stage_concurrency_share)}), more than lambda_reserved_concurrency: lower throttling in environments/ or reserve more."
    }
  }

  depends_on = [aws_iam_role_policy.lambda]
}

# The first function's resources before there were several (state moves on the next apply).
moved {
  from = aws_lambda_function.app
  to   = aws_lambda_function.function["app"]
}

moved {
  from = aws_iam_role.lambda
  to   = aws_iam_role.lambda["app"]
}

moved {
  from = aws_iam_role_policy.lambda
  to   = aws_iam_role_policy.lambda["app"]
}

moved {
  from = aws_cloudwatch_log_group.lambda
  to   = aws_cloudwatch_log_group.lambda["app"]
}

# Every function's alias of every stage, named after the stage. Created at version 1, then
# owned by promote: it moves function_version and the weighted routing.
resource "aws_lambda_alias" "stage" {
  for_each = local.function_stages

  name             = each.value.stage
  description      = "Version of ${each.value.function} served by the ${each.value.stage} API stage (managed by promote)"
  function_name    = aws_lambda_function.function[each.value.function].function_name
  function_version = "1"

  lifecycle {
    # promote records the version served before the last promotion in the description
    # (`rollback --to-previous` reads it), so an apply must not reset that either.
    ignore_changes = [function_version, routing_config, description]
  }
}

# Each alias may be invoked only by its own API stage.
resource "aws_lambda_permission" "api_stage" {
  for_each = local.function_stages

  statement_id   = "AllowApiGatewayStage-${each.value.stage}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function[each.value.function].function_name
  qualifier      = aws_lambda_alias.stage[each.key].name
  principal      = "apigateway.amazonaws.com"
  source_arn     = "${aws_api_gateway_stage.stage[each.value.stage].execution_arn}/*/*"
  source_account = local.account_id
}

resource "aws_cloudwatch_log_group" "lambda" {
  for_each = local.functions

  name              = "/aws/lambda/${each.key}"
  retention_in_days = local.function_log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

# One role per function: a function's code can do only what its own role allows.
resource "aws_iam_role" "lambda" {
  for_each = local.functions

  name               = "${each.key}-lambda"
  description        = "Execution role of the ${each.key} function"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Writing its own logs (and traces), and reading and writing its own tables, is all a
# function does in AWS. The tables of every stage: one published version serves every stage,
# so its role cannot tell them apart (docs/birthday.md, "Isolation between stages").
data "aws_iam_policy_document" "lambda" {
  for_each = local.functions

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
  }

  dynamic "statement" {
    for_each = length([for t in values(local.tables) : t if t.function == each.key]) > 0 ? [1] : []
    content {
      sid       = "ReadWriteOwnTables"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [for name, t in local.tables : aws_dynamodb_table.function[name].arn if t.function == each.key]
    }
  }

  # Its buckets, on every stage (as its tables): it reads and lists each (listing is what turns
  # a missing object into a 404 rather than a 403), and writes each but the one that triggers
  # it, so even a faulty version cannot write where it would invoke itself again.
  dynamic "statement" {
    for_each = length(local.function_buckets[each.key].all) > 0 ? [1] : []
    content {
      sid     = "ReadOwnBuckets"
      actions = ["s3:GetObject", "s3:ListBucket"]
      resources = flatten([
        for k, b in local.buckets : [local.bucket_arns[k], "${local.bucket_arns[k]}/*"]
        if contains(local.function_buckets[each.key].all, b.purpose)
      ])
    }
  }

  dynamic "statement" {
    for_each = length([for p in local.function_buckets[each.key].all : p if p != local.function_buckets[each.key].trigger]) > 0 ? [1] : []
    content {
      sid     = "WriteOwnBucketsButTheTrigger"
      actions = ["s3:PutObject"]
      resources = [
        for k, b in local.buckets : "${local.bucket_arns[k]}/*"
        if contains(local.function_buckets[each.key].all, b.purpose) && b.purpose != local.function_buckets[each.key].trigger
      ]
    }
  }

  dynamic "statement" {
    # X-Ray has no resource-level permissions; the statement exists only when something traces.
    for_each = var.lambda_tracing_mode == "Active" || length(local.xray_stages) > 0 ? [1] : []
    content {
      sid       = "WriteTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.functions

  name   = "own-logs-tables-and-buckets"
  role   = aws_iam_role.lambda[each.key].id
  policy = data.aws_iam_policy_document.lambda[each.key].json
}
