locals {
  # The stage variable picks each function's alias, so one deployment serves every stage and
  # promote only moves aliases.
  integration_uris = {
    for name, f in aws_lambda_function.function : name => "arn:${local.partition}:apigateway:${local.region}:lambda:path/2015-03-31/functions/${f.arn}:$${stageVariables.${local.project.stage_variable}}/invocations"
  }

  # Every function's routes (project.json), route -> function; rollout's validation keeps a
  # route to one function.
  routes = merge([for f in local.project.functions : { for r in f.routes : r => f.name }]...)

  # API Gateway resources form a tree, one per path segment: every prefix of every route is a
  # resource, its parent the prefix one segment shorter. A resource cannot name its parent in
  # its own for_each, so each depth is its own resource block (up to three segments;
  # api_route_depth checks).
  route_paths = distinct(flatten([
    for r in keys(local.routes) : [
      for i in range(1, length(split("/", trimprefix(r, "/"))) + 1) : "/${join("/", slice(split("/", trimprefix(r, "/")), 0, i))}"
    ] if r != "/"
  ]))
  route_depth1 = { for p in local.route_paths : p => { parent = "/", part = split("/", p)[1] } if length(split("/", p)) == 2 }
  route_depth2 = { for p in local.route_paths : p => { parent = "/${split("/", p)[1]}", part = split("/", p)[2] } if length(split("/", p)) == 3 }
  route_depth3 = { for p in local.route_paths : p => { parent = "/${split("/", p)[1]}/${split("/", p)[2]}", part = split("/", p)[3] } if length(split("/", p)) == 4 }
  route_resource_ids = merge(
    { "/" = aws_api_gateway_rest_api.app.root_resource_id },
    { for p, r in aws_api_gateway_resource.depth1 : p => r.id },
    { for p, r in aws_api_gateway_resource.depth2 : p => r.id },
    { for p, r in aws_api_gateway_resource.depth3 : p => r.id },
  )

  # Everything a deployment snapshots; a change here replaces the deployment.
  api_definition = {
    resources    = local.route_resource_ids
    methods      = [for m in aws_api_gateway_method.route : m.id]
    integrations = [for i in aws_api_gateway_integration.route : i.id]
    uris         = local.integration_uris
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
  description = "HTTP front of ${join(", ", keys(local.functions))}; stages ${join(", ", sort(keys(local.stages)))}"

  # Request bodies of these types reach the functions base64-encoded, byte for byte.
  binary_media_types = try(local.project.binary_media_types, [])

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "depth1" {
  for_each = local.route_depth1

  rest_api_id = aws_api_gateway_rest_api.app.id
  parent_id   = aws_api_gateway_rest_api.app.root_resource_id
  path_part   = each.value.part
}

resource "aws_api_gateway_resource" "depth2" {
  for_each = local.route_depth2

  rest_api_id = aws_api_gateway_rest_api.app.id
  parent_id   = aws_api_gateway_resource.depth1[each.value.parent].id
  path_part   = each.value.part
}

resource "aws_api_gateway_resource" "depth3" {
  for_each = local.route_depth3

  rest_api_id = aws_api_gateway_rest_api.app.id
  parent_id   = aws_api_gateway_resource.depth2[each.value.parent].id
  path_part   = each.value.part

  lifecycle {
    precondition {
      condition     = alltrue([for p in local.route_paths : length(split("/", p)) <= 4])
      error_message = "A route in project.json has more than three segments; terraform/api.tf builds resources three levels deep (add a depth4 block)."
    }
  }
}

# ANY on each route, proxied to the function that serves it.
resource "aws_api_gateway_method" "route" {
  #checkov:skip=CKV_AWS_59:A public HTTP API by design; the functions own any authentication, and each stage is throttled.
  #checkov:skip=CKV2_AWS_53:Lambda proxy method with no declared parameters or models; the functions validate their own requests.
  for_each = local.routes

  rest_api_id   = aws_api_gateway_rest_api.app.id
  resource_id   = local.route_resource_ids[each.key]
  http_method   = "ANY"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "route" {
  for_each = local.routes

  rest_api_id             = aws_api_gateway_rest_api.app.id
  resource_id             = local.route_resource_ids[each.key]
  http_method             = aws_api_gateway_method.route[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = local.integration_uris[each.value]
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

  # The alias every function runs on this stage, and the name of each of its tables.
  variables = local.stage_variables[each.key]

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

# The root route's method and integration before routes came from project.json.
moved {
  from = aws_api_gateway_method.root
  to   = aws_api_gateway_method.route["/"]
}

moved {
  from = aws_api_gateway_integration.root
  to   = aws_api_gateway_integration.route["/"]
}
