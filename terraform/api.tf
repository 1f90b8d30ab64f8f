locals {
  # The stage variable picks the alias, so one deployment serves every stage and promote only moves aliases.
  integration_uri = "arn:${local.partition}:apigateway:${local.region}:lambda:path/2015-03-31/functions/${aws_lambda_function.app.arn}:$${stageVariables.${local.project.stage_variable}}/invocations"

  # Everything a deployment snapshots; a change here replaces the deployment.
  api_definition = {
    resources    = { root = aws_api_gateway_rest_api.app.root_resource_id, proxy = aws_api_gateway_resource.proxy.id }
    methods      = [aws_api_gateway_method.root.id, aws_api_gateway_method.proxy.id]
    integrations = [aws_api_gateway_integration.root.id, aws_api_gateway_integration.proxy.id]
    uri          = local.integration_uri
  }

  access_log_format = jsonencode({
    requestId          = "$context.requestId"
    extendedRequestId  = "$context.extendedRequestId"
    requestTime        = "$context.requestTime"
    sourceIp           = "$context.identity.sourceIp"
    userAgent          = "$context.identity.userAgent"
    httpMethod         = "$context.httpMethod"
    resourcePath       = "$context.resourcePath"
    path               = "$context.path"
    protocol           = "$context.protocol"
    status             = "$context.status"
    responseLength     = "$context.responseLength"
    responseLatency    = "$context.responseLatency"
    integrationStatus  = "$context.integration.status"
    integrationLatency = "$context.integration.latency"
    integrationError   = "$context.integration.error"
    stage              = "$context.stage"
    xrayTraceId        = "$context.xrayTraceId"
  })
}

resource "aws_api_gateway_rest_api" "app" {
  name        = local.project.rest_api_name
  description = "HTTP front of ${local.project.functions[0].name}; stages ${join(", ", sort(keys(local.stages)))}"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "proxy" {
  rest_api_id = aws_api_gateway_rest_api.app.id
  parent_id   = aws_api_gateway_rest_api.app.root_resource_id
  path_part   = "{proxy+}"
}

resource "aws_api_gateway_method" "root" {
  #checkov:skip=CKV_AWS_59:A public HTTP API by design; the function owns any authentication, and each stage is throttled.
  #checkov:skip=CKV2_AWS_53:Lambda proxy method with no declared parameters or models; the function validates its own requests.
  rest_api_id   = aws_api_gateway_rest_api.app.id
  resource_id   = aws_api_gateway_rest_api.app.root_resource_id
  http_method   = "ANY"
  authorization = "NONE"
}

resource "aws_api_gateway_method" "proxy" {
  #checkov:skip=CKV_AWS_59:A public HTTP API by design; the function owns any authentication, and each stage is throttled.
  #checkov:skip=CKV2_AWS_53:Lambda proxy method with no declared parameters or models; the function validates its own requests.
  rest_api_id   = aws_api_gateway_rest_api.app.id
  resource_id   = aws_api_gateway_resource.proxy.id
  http_method   = "ANY"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "root" {
  rest_api_id             = aws_api_gateway_rest_api.app.id
  resource_id             = aws_api_gateway_rest_api.app.root_resource_id
  http_method             = aws_api_gateway_method.root.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = local.integration_uri
}

resource "aws_api_gateway_integration" "proxy" {
  rest_api_id             = aws_api_gateway_rest_api.app.id
  resource_id             = aws_api_gateway_resource.proxy.id
  http_method             = aws_api_gateway_method.proxy.http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = local.integration_uri
}

resource "aws_api_gateway_deployment" "app" {
  rest_api_id = aws_api_gateway_rest_api.app.id
  description = "API definition ${sha1(jsonencode(local.api_definition))}"

  triggers = {
    redeployment = sha1(jsonencode(local.api_definition))
  }

  lifecycle {
    # Stages move to the new deployment before the old one goes, so no stage is ever left without one.
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "api_access" {
  for_each = local.stages

  name              = "/aws/apigateway/${local.project.rest_api_name}/${each.key}/access"
  retention_in_days = each.value.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

# API Gateway would create the execution log group itself, without retention or encryption.
resource "aws_cloudwatch_log_group" "api_execution" {
  for_each = local.stages

  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.app.id}/${each.key}"
  retention_in_days = each.value.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
}

resource "aws_api_gateway_stage" "stage" {
  #checkov:skip=CKV_AWS_120:Responses differ per request and per canary split (e.g. /build-info); a cache would serve one version's answer for another.
  #checkov:skip=CKV2_AWS_29:WAF is an account-level edge choice (and a monthly cost); associate a web ACL with the stage ARN output when needed.
  #checkov:skip=CKV2_AWS_51:Clients are public HTTP callers; the backend is Lambda (IAM-invoked), not an HTTP endpoint that could verify a client certificate.
  for_each = local.stages

  rest_api_id          = aws_api_gateway_rest_api.app.id
  deployment_id        = aws_api_gateway_deployment.app.id
  stage_name           = each.key
  description          = "Stage ${each.key}; serves Lambda alias ${each.key}"
  xray_tracing_enabled = contains(local.xray_stages, each.key)

  variables = {
    (local.project.stage_variable) = each.key
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access[each.key].arn
    format          = local.access_log_format
  }

  depends_on = [aws_api_gateway_account.app, aws_cloudwatch_log_group.api_execution]
}

resource "aws_api_gateway_method_settings" "stage" {
  #checkov:skip=CKV_AWS_225:Caching is off on purpose (see the stage): a cache would mix canary versions' responses.
  for_each = local.stages

  rest_api_id = aws_api_gateway_rest_api.app.id
  stage_name  = aws_api_gateway_stage.stage[each.key].stage_name
  method_path = "*/*"

  settings {
    throttling_rate_limit  = each.value.throttling.rate_limit
    throttling_burst_limit = each.value.throttling.burst_limit
    logging_level          = "ERROR"
    data_trace_enabled     = false
    # Per-method metrics show which route misbehaves; the alarms use the per-stage ones.
    metrics_enabled      = true
    caching_enabled      = false
    cache_data_encrypted = true
  }
}

# Access and execution logs need this region-wide role; it is an account setting, hence switchable.
resource "aws_api_gateway_account" "app" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_cloudwatch]
}

resource "aws_iam_role" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name               = "${local.project.functions[0].name}-apigateway-logs"
  description        = "Lets API Gateway write access and execution logs in this region"
  assume_role_policy = data.aws_iam_policy_document.api_gateway_assume.json
}

data "aws_iam_policy_document" "api_gateway_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# The role is shared by every API in the region, so it cannot be scoped to this API's log groups;
# the AWS-managed policy is the documented minimum for it.
resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  role       = aws_iam_role.api_gateway_cloudwatch[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}
