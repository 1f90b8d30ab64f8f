# The functions' data: one table per function that keeps data and per stage
# (local.tables, e.g. birthday-dev), each found by its function through a stage variable, so
# that one published version serves every stage's data without naming it (docs/birthday.md).
resource "aws_dynamodb_table" "function" {
  for_each = local.tables

  name = each.key
  # On demand: a stage's traffic is the canary's share of live or a test run, never steady
  # enough to provision for.
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = each.value.hash_key

  attribute {
    name = each.value.hash_key
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  # The project's key, as for its logs (kms.tf).
  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.observability.arn
  }

  # The last stage's data is live users' data: an apply must not delete it.
  deletion_protection_enabled = contains(local.last_stages, each.value.stage)

  tags = {
    Function = each.value.function
    Stage    = each.value.stage
  }
}
