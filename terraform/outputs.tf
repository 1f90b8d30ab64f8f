# Read by the pipeline with `terraform output -json <name>` (names are part of the contract in docs/terraform.md, "Outputs").

output "region" {
  description = "Region the stack lives in (AWS_REGION for promote)."
  value       = local.region
}

output "function_name" {
  description = "The project's first Lambda function (project.json's functions[0])."
  value       = aws_lambda_function.function[local.project.functions[0].name].function_name
}

output "function_arn" {
  description = "Unqualified ARN of the project's first Lambda function."
  value       = aws_lambda_function.function[local.project.functions[0].name].arn
}

output "function_arns" {
  description = "Unqualified ARN of every Lambda function, keyed by function name."
  value       = { for name, f in aws_lambda_function.function : name => f.arn }
}

output "table_names" {
  description = "Each DynamoDB table, keyed by table name: its function and stage."
  value       = { for name, t in local.tables : name => { function = t.function, stage = t.stage, arn = aws_dynamodb_table.function[name].arn } }
}

output "rest_api_id" {
  description = "Id of the REST API; stages are https://<id>.execute-api.<region>.amazonaws.com/<stage>."
  value       = aws_api_gateway_rest_api.app.id
}

output "stage_urls" {
  description = "Invoke URL of each stage, keyed by stage name (smoke tests and the GitHub environment URL)."
  value       = { for name, stage in aws_api_gateway_stage.stage : name => stage.invoke_url }
}

output "stage_arns" {
  description = "ARN of each API stage, keyed by stage name (e.g. to associate a WAF web ACL)."
  value       = { for name, stage in aws_api_gateway_stage.stage : name => stage.arn }
}

output "alarm_names" {
  description = "CloudWatch alarms of each stage, keyed by stage name: as named in environments/<stage>.json, and each Lambda alarm's copy per further function (<name>-<function>)."
  value       = { for name, stage in local.stages : name => [for key, alarm in local.function_alarms : aws_cloudwatch_metric_alarm.stage[key].alarm_name if alarm.stage == name] }
}

output "github_role_arns" {
  description = "Role each GitHub environment assumes (AWS_ROLE_ARN of the environment), keyed by stage name."
  value       = { for name, role in aws_iam_role.github_deploy : name => role.arn }
}

output "publish_stages" {
  description = "GitHub environments whose role may publish new versions: only the publish environment (no stage role publishes)."
  value       = [local.publish_environment]
}

output "github_publish_role_arn" {
  description = "Role the publish environment assumes (AWS_ROLE_ARN of GitHub environment publish): upload, sign, publish."
  value       = aws_iam_role.github_publish.arn
}

output "artifact_bucket" {
  description = "Versioned bucket the publish job uploads the zip to and Signer writes the signed zip to (ARTIFACT_BUCKET of environment publish)."
  value       = aws_s3_bucket.artifacts.id
}

output "signing_profile_name" {
  description = "AWS Signer profile the publish job signs with (SIGNING_PROFILE of environment publish); the only one Lambda accepts."
  value       = aws_signer_signing_profile.publish.name
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies; subscribe on-call tooling here."
  value       = aws_sns_topic.alarms.arn
}

output "codedeploy_applications" {
  description = "CodeDeploy application of each function (the CodeDeploy engine), keyed by function name."
  value       = { for name, app in aws_codedeploy_app.function : name => app.name }
}

output "codedeploy_deployment_groups" {
  description = "CodeDeploy deployment group of each function on each codedeploy stage, keyed \"<function>:<stage>\"."
  value       = { for key, group in aws_codedeploy_deployment_group.function : key => "${group.app_name}/${group.deployment_group_name}" }
}

output "bucket_names" {
  description = "Each S3 bucket of the functions, keyed by bucket name: its purpose, stage, stage variable and whether it is kept on destroy."
  value       = { for k, b in local.buckets : b.name => { purpose = b.purpose, stage = b.stage, stage_variable = b.stage_variable, kept = b.kept, arn = local.bucket_arns[k] } }
}
