# One customer key for log groups and the alarm topic: CloudWatch can only publish alarms to an
# encrypted topic whose key policy lets it, which the AWS-managed SNS key does not.
# The log groups this key encrypts, by name rather than by reference: the groups name the key,
# so the key's policy naming the groups would be a cycle. tests/static holds these names to the
# aws_cloudwatch_log_group resources.
locals {
  project_log_group_arns = concat(
    [for name in keys(local.functions) : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${name}"],
    ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${local.guardian_name}"],
    [for stage in keys(local.stages) : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/apigateway/${local.project.rest_api_name}/${stage}/access"],
    [for stage in keys(local.stages) : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.app.id}/${stage}"],
  )
}

resource "aws_kms_key" "observability" {
  description             = "Logs and alarm notifications of ${local.project.functions[0].name}"
  enable_key_rotation     = true
  deletion_window_in_days = var.log_kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.observability_key.json
}

resource "aws_kms_alias" "observability" {
  name          = "alias/${local.project.functions[0].name}-observability"
  target_key_id = aws_kms_key.observability.key_id
}

data "aws_iam_policy_document" "observability_key" {
  #checkov:skip=CKV_AWS_109:Key policy: "*" is this key, and the account root statement is what lets IAM policies grant access at all.
  #checkov:skip=CKV_AWS_111:Key policy: "*" is this key, and the account root statement is what lets IAM policies grant access at all.
  #checkov:skip=CKV_AWS_356:Key policy: "*" is this key; key policies cannot name other resources.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "LogsEncryptOwnGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = local.project_log_group_arns
    }
  }

  # The functions' buckets (s3.tf) are encrypted with this key, usable by this account's
  # principals only through S3: what a role can read is what its S3 permissions name.
  statement {
    sid       = "S3EncryptsBuckets"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }

  # The functions' tables (dynamodb.tf) are encrypted with this key. As with DynamoDB's own
  # AWS-managed key, principals of this account may use it only through DynamoDB, so a
  # function's role needs no KMS permission: what it can read is what its DynamoDB
  # permissions name (lambda.tf).
  statement {
    sid       = "DynamoDBEncryptsTables"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"]
    resources = ["*"]
    # Any principal, bounded by the two conditions below: AWS's documented key policy for
    # DynamoDB encryption with a customer managed key.
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "CloudWatchPublishesAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    # Only this project's alarms (the stages' and the guardian's), which publish to the topic this key encrypts.
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for alarm in local.topic_alarm_names : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${alarm}"]
    }
  }
}
