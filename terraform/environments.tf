# environments/ is the single source of truth shared with promote: one <stage>.json per stage
# (the file stem is the API stage, the Lambda alias and the GitHub environment) plus project.json.
locals {
  environments_dir = coalesce(var.environments_dir, "${path.module}/../environments")
  project          = jsondecode(file("${local.environments_dir}/project.json"))
  region           = coalesce(var.region, local.project.region)

  stage_files = setsubtract(fileset(local.environments_dir, "*.json"), ["project.json"])
  stages = {
    for f in local.stage_files : trimsuffix(f, ".json") => jsondecode(file("${local.environments_dir}/${f}"))
  }

  # Every function of project.json by name, and every (function, stage) pair: each function
  # has one alias per stage, named after the stage (docs/terraform.md, "Several functions").
  functions = { for f in local.project.functions : f.name => f }
  function_stages = merge([
    for fname, f in local.functions : {
      for sname, stage in local.stages : "${fname}:${sname}" => { function = fname, stage = sname }
    }
  ]...)

  # The functions that keep data, each in one DynamoDB table per stage named
  # <function>-<stage>, found by the function through the stage variable named here
  # (docs/birthday.md). Only functions project.json lists get tables.
  function_tables = {
    birthday = { stage_variable = "birthdayTable", hash_key = "username" }
  }
  tables = merge([
    for fname, t in local.function_tables : {
      for sname, stage in local.stages : "${fname}-${sname}" => merge(t, { function = fname, stage = sname })
    } if contains(keys(local.functions), fname)
  ]...)
  # The functions' S3 buckets: one per purpose that a function lists (project.json
  # functions[].buckets) and per stage, named <rest api>-<stage>-<purpose>-<account> (S3 names
  # are global) and found by every reader through the stage variable <purpose>Bucket
  # (docs/storage.md).
  bucket_purposes = distinct(flatten([for f in local.project.functions : try(f.buckets, [])]))
  buckets = merge([
    for purpose in local.bucket_purposes : {
      for sname, stage in local.stages : "${purpose}-${sname}" => {
        purpose        = purpose
        stage          = sname
        name           = lower("${local.project.rest_api_name}-${sname}-${purpose}-${local.account_id}")
        stage_variable = "${purpose}Bucket"
        # Live's data is kept: its buckets are never emptied or destroyed by an apply or a
        # destroy; every other stage's are emptied when it is destroyed (seed 001's lesson).
        kept = contains(local.last_stages, sname)
      }
    }
  ]...)
  # A function's buckets, and among them the one whose object-created events trigger it: a
  # function may read that one but never write it (Lambda's recursive-loop lesson).
  function_buckets = {
    for fname, f in local.functions : fname => {
      all     = try(f.buckets, [])
      trigger = try(f.trigger.bucket, null)
    }
  }
  s3_triggered = { for fname, f in local.functions : fname => f.trigger.bucket if try(f.trigger.type, "") == "s3" }
  # Every (S3-triggered function, stage): the stage's trigger bucket notifies that stage's alias.
  s3_triggers = merge([
    for fname, purpose in local.s3_triggered : {
      for sname, stage in local.stages : "${fname}:${sname}" => {
        function = fname
        stage    = sname
        bucket   = "${purpose}-${sname}"
      }
    }
  ]...)

  # Each stage's variables: the alias every function runs there, and each table's and
  # bucket's name.
  stage_variables = {
    for sname, stage in local.stages : sname => merge(
      { (local.project.stage_variable) = sname },
      { for name, t in local.tables : t.stage_variable => name if t.stage == sname },
      { for key, b in local.buckets : b.stage_variable => b.name if b.stage == sname },
    )
  }
  # Stages nothing promotes from: the end of the path, where data is live and a table may not
  # be deleted by an apply.
  last_stages = [for name, stage in local.stages : name if !contains([for s in local.stages : try(s.upstream, null)], name)]

  # Stages that nothing promotes into: the pipeline publishes new versions there.
  root_stages = [for name, stage in local.stages : name if stage.upstream == null]

  # The evidence promote's bakes consult (analysis.sources; docs/canary-analysis.md), with
  # the same default as promote's loader. Terraform reads nothing else of the analysis block:
  # Lambda publishes the per-version metrics on its own, so only the deploy role needs a grant.
  analysis_sources = {
    for name, stage in local.stages : name => try(
      stage.analysis.sources,
      stage.strategy.type == "canary" ? ["alarms", "metrics"] : ["alarms"],
    )
  }

  # Alarm names are unique per account and region, so they key the alarms across stages.
  alarms = merge([
    for stage_name, stage in local.stages : {
      for alarm in stage.alarms : alarm.name => {
        stage              = stage_name
        kind               = alarm.kind
        threshold          = alarm.threshold
        period_seconds     = try(alarm.period_seconds, 60)
        evaluation_periods = try(alarm.evaluation_periods, 1)
      }
    }
  ]...)

  # The stage files' alarms per function: an API alarm watches the stage, once; a Lambda alarm
  # watches one function's alias, so each function gets its own, the first function under the
  # stage file's name and every other under that name followed by -<function>
  # (docs/terraform.md, "Several functions").
  function_alarms = merge([
    for name, alarm in local.alarms : {
      for fname, f in local.functions : (fname == local.project.functions[0].name ? name : "${name}-${fname}") => merge(alarm, { function = fname })
      if startswith(alarm.kind, "lambda_") || fname == local.project.functions[0].name
    }
  ]...)

  # What each alarm kind of the stage files measures (CONTRACTS.md, "Alarm kinds").
  alarm_kinds = {
    lambda_errors = {
      namespace           = "AWS/Lambda"
      metric_name         = "Errors"
      statistic           = "Sum"
      extended_statistic  = null
      comparison_operator = "GreaterThanOrEqualToThreshold"
    }
    lambda_throttles = {
      namespace           = "AWS/Lambda"
      metric_name         = "Throttles"
      statistic           = "Sum"
      extended_statistic  = null
      comparison_operator = "GreaterThanOrEqualToThreshold"
    }
    # The share of the alias's requests Lambda throttled over each period, from two metrics
    # (local.alarm_math): one burst fills at most a period or two, so with several
    # evaluation periods it cannot fire the alarm alone where a count of 1 would
    # (docs/threat-model.md). No single metric: the alarm resource uses metric_query instead.
    lambda_throttle_rate = {
      namespace           = null
      metric_name         = null
      statistic           = null
      extended_statistic  = null
      comparison_operator = "GreaterThanThreshold"
    }
    # 5XXError is 0 or 1 per request, so its average is the error rate.
    api_5xx_rate = {
      namespace           = "AWS/ApiGateway"
      metric_name         = "5XXError"
      statistic           = "Average"
      extended_statistic  = null
      comparison_operator = "GreaterThanThreshold"
    }
    api_p99_latency = {
      namespace           = "AWS/ApiGateway"
      metric_name         = "Latency"
      statistic           = null
      extended_statistic  = "p99"
      comparison_operator = "GreaterThanThreshold"
    }
  }

  # The metric-math alarm kinds: an expression over metrics read with the alarm's dimensions.
  # A throttled request is not an invocation, so Throttles + Invocations is every request the
  # alias received. FILL: a period with invocations and no Throttles datapoint (or the
  # reverse) still has a rate; a period with neither has none, which is missing data.
  alarm_math = {
    lambda_throttle_rate = {
      expression = "FILL(throttles, 0) / (FILL(throttles, 0) + FILL(invocations, 0))"
      label      = "Throttled share of the alias's requests"
      namespace  = "AWS/Lambda"
      stat       = "Sum"
      metrics    = { throttles = "Throttles", invocations = "Invocations" }
    }
  }

  # Lambda alarms watch the alias (Resource = function:alias) so a canary's errors are the stage's errors;
  # API alarms watch the stage.
  alarm_dimensions = {
    for name, alarm in local.function_alarms : name => (
      startswith(alarm.kind, "lambda_")
      ? tomap({ FunctionName = alarm.function, Resource = "${alarm.function}:${alarm.stage}" })
      : tomap({ ApiName = local.project.rest_api_name, Stage = alarm.stage })
    )
  }

  # The concurrent executions a stage's API limits can demand: its burst (that many requests
  # may arrive at once), or its steady rate times the latency its p99 alarm allows (Little's
  # law), whichever is more. Their sum must fit the reserved concurrency (lambda.tf).
  stage_concurrency_share = {
    for name, stage in local.stages : name => max(
      stage.throttling.burst_limit,
      ceil(stage.throttling.rate_limit * max(concat([1000], [for a in stage.alarms : a.threshold if a.kind == "api_p99_latency"])...) / 1000),
    )
  }

  # Log groups hold a whole function's logs whatever alias served them, so they keep the longest stage retention.
  function_log_retention_days = max([for stage in local.stages : stage.log_retention_days]...)

  xray_stages = [for name, stage in local.stages : name if var.xray_tracing_enabled && try(stage.xray_tracing, false)]

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
}
