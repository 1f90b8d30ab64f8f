locals {
  lambda_zip_path = coalesce(var.lambda_zip_path, "${path.module}/../target/lambda/app/bootstrap.zip")
}

resource "aws_lambda_function" "app" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a dead-letter queue applies to asynchronous invocations, and failures surface as 5XX alarms.
  #checkov:skip=CKV_AWS_117:The function calls no private resources; a VPC would add ENI cold starts and NAT cost without protecting anything.
  function_name = local.project.functions[0].name
  description   = "HTTP API behind the ${local.project.rest_api_name} REST API; one alias per stage"
  role          = aws_iam_role.lambda.arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.lambda_architecture]
  memory_size   = var.lambda_memory_mb
  timeout       = var.lambda_timeout_seconds

  reserved_concurrent_executions = var.lambda_reserved_concurrency

  # Lambda runs only code the publish profile signed (publish.tf); the first code is the local
  # zip signed by Terraform through that profile.
  code_signing_config_arn = aws_lambda_code_signing_config.app.arn
  s3_bucket               = aws_signer_signing_job.initial_code.signed_object[0].s3[0].bucket
  s3_key                  = aws_signer_signing_job.initial_code.signed_object[0].s3[0].key
  # Creating the function publishes version 1, which every alias starts on.
  publish = true

  tracing_config {
    mode = var.lambda_tracing_mode
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.lambda.name
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

# Created at version 1, then owned by promote: it moves function_version and the weighted routing.
resource "aws_lambda_alias" "stage" {
  for_each = local.stages

  name             = each.key
  description      = "Version served by the ${each.key} API stage (managed by promote)"
  function_name    = aws_lambda_function.app.function_name
  function_version = "1"

  lifecycle {
    # promote records the version served before the last promotion in the description
    # (`rollback --to-previous` reads it), so an apply must not reset that either.
    ignore_changes = [function_version, routing_config, description]
  }
}

# Each alias may be invoked only by its own API stage.
resource "aws_lambda_permission" "api_stage" {
  for_each = local.stages

  statement_id   = "AllowApiGatewayStage-${each.key}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.app.function_name
  qualifier      = aws_lambda_alias.stage[each.key].name
  principal      = "apigateway.amazonaws.com"
  source_arn     = "${aws_api_gateway_stage.stage[each.key].execution_arn}/*/*"
  source_account = local.account_id
}

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.project.functions[0].name}"
  retention_in_days = local.function_log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

resource "aws_iam_role" "lambda" {
  name               = "${local.project.functions[0].name}-lambda"
  description        = "Execution role of the ${local.project.functions[0].name} function"
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

# Writing its own logs (and traces) is all the function does in AWS.
data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
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
  name   = "write-logs"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}
