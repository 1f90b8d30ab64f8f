#!/usr/bin/env python3
"""Create the path-to-live stack in a local moto_server, as Terraform would in AWS.

Used by the Rust integration tests and by the demo. Everything is derived from
environments/ (project.json plus one <stage>.json per stage; the file stem is the stage
name), so the fixture cannot drift from what Terraform and `promote` read.

    .venv/bin/python tools/seed.py --endpoint http://127.0.0.1:PORT [--environments DIR] [--versions N]

Prints one JSON object on stdout (CONTRACTS.md, "The seed fixture"). `expected_resources(dir)`
is importable so a test can compare the names created here with the parsed Terraform.

Safety: this script only ever talks to a loopback endpoint with dummy credentials; it
refuses anything else, so it cannot touch a real AWS account whatever the environment says.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import ipaddress
import json
import os
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_environments import stage_chain  # noqa: E402  (the one definition of the stage chain)
from check_environments import codedeploy_config, config_name_suffix, engine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENVIRONMENTS = ROOT / "environments"
# moto's default account; the real account id never matters to the fixture.
ACCOUNT_ID = "123456789012"
ROLE_NAME = "path-to-live-fixture-lambda"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# Alarm kinds from the stage schema -> how Terraform defines them (local.alarm_kinds in
# terraform/environments.tf; tests/static/test_seed_drift.py compares every field). A count of
# Lambda errors fires at the threshold, a rate or a latency above it.
ALARM_KINDS = {
    "lambda_errors": {"namespace": "AWS/Lambda", "metric": "Errors", "statistic": "Sum",
                      "operator": "GreaterThanOrEqualToThreshold"},
    "lambda_throttles": {"namespace": "AWS/Lambda", "metric": "Throttles", "statistic": "Sum",
                         "operator": "GreaterThanOrEqualToThreshold"},
    # The alias's throttled share of its requests: metric math over two metrics (ALARM_MATH),
    # no single metric of its own.
    "lambda_throttle_rate": {"namespace": None, "metric": None, "operator": "GreaterThanThreshold"},
    # 5XXError is 0 or 1 per request, so its Average is the 5xx rate.
    "api_5xx_rate": {"namespace": "AWS/ApiGateway", "metric": "5XXError", "statistic": "Average",
                     "operator": "GreaterThanThreshold"},
    "api_p99_latency": {"namespace": "AWS/ApiGateway", "metric": "Latency", "extended": "p99",
                        "operator": "GreaterThanThreshold"},
}
# The metric-math kinds (local.alarm_math in terraform/environments.tf): the expression the
# alarm compares, and the metrics it reads on the alarm's dimensions and period.
ALARM_MATH = {
    "lambda_throttle_rate": {
        "expression": "FILL(throttles, 0) / (FILL(throttles, 0) + FILL(invocations, 0))",
        "label": "Throttled share of the alias's requests",
        "namespace": "AWS/Lambda",
        "stat": "Sum",
        "metrics": {"throttles": "Throttles", "invocations": "Invocations"},
    },
}
# No requests means nothing failed (terraform/alarms.tf).
TREAT_MISSING_DATA = "notBreaching"


class SeedError(Exception):
    """A problem with the inputs, reported as one line without a traceback."""


# ---------------------------------------------------------------------------------------
# environments/
# ---------------------------------------------------------------------------------------


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SeedError(f"{path}: file not found")
    except json.JSONDecodeError as e:
        raise SeedError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})")
    if not isinstance(data, dict):
        raise SeedError(f"{path}: expected a JSON object at the top level")
    return data


def load_environments(environments_dir: str | os.PathLike) -> tuple[dict, list[tuple[str, dict]]]:
    """Returns (project, [(stage, stage_config)] in path order, first stage first)."""
    d = Path(environments_dir)
    if not d.is_dir():
        raise SeedError(f"{d}: not a directory (pass --environments DIR)")
    project = _load_json(d / "project.json")
    for field in ("rest_api_name", "stage_variable"):
        if not isinstance(project.get(field), str) or not project[field]:
            raise SeedError(f"{d / 'project.json'}: field '{field}' must be a non-empty string")
    functions = project.get("functions")
    if not isinstance(functions, list) or not functions:
        raise SeedError(f"{d / 'project.json'}: field 'functions' must list at least one function")
    for i, f in enumerate(functions):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            raise SeedError(f"{d / 'project.json'}: field 'functions[{i}].name' must be a non-empty string")
    names = function_names(project)
    if len(set(names)) != len(names):
        raise SeedError(f"{d / 'project.json'}: function names must be unique, got {names}")
    stages = {}
    for f in sorted(d.glob("*.json")):
        if f.name == "project.json":
            continue
        stages[f.stem] = _load_json(f)
    if not stages:
        raise SeedError(f"{d}: no stage files (<stage>.json) found")
    return project, order_stages(stages, d)


def function_names(project: dict) -> list[str]:
    """The functions' names in project.json's order (the first is the project's main one)."""
    return [f["name"] for f in project["functions"]]


def order_stages(stages: dict[str, dict], d: Path = Path(".")) -> list[tuple[str, dict]]:
    """Orders stages along their `upstream` links, with the checks `make test` applies."""
    order, errors = stage_chain(d, stages)
    if errors:
        raise SeedError("; ".join(errors))
    return [(s, stages[s]) for s in order]


# The functions that keep data, one DynamoDB table per stage named <function>-<stage>, named
# to the function by a stage variable (terraform/environments.tf, local.function_tables).
FUNCTION_TABLES = {"birthday": {"stage_variable": "birthdayTable", "hash_key": "username"}}


def tables(project: dict, stage: str) -> dict[str, dict]:
    """The tables of `stage`: table name -> its FUNCTION_TABLES entry."""
    return {f"{fn}-{stage}": t for fn, t in FUNCTION_TABLES.items() if fn in function_names(project)}


def buckets(project: dict, stage: str) -> dict[str, dict]:
    """The buckets of `stage`: bucket name -> {purpose, stage_variable}, one per purpose any
    function lists (terraform/s3.tf, local.buckets), named with moto's account."""
    purposes = dict.fromkeys(p for f in project["functions"] for p in f.get("buckets", []))
    return {
        f"{project['rest_api_name']}-{stage}-{p}-{ACCOUNT_ID}".lower(): {"purpose": p, "stage_variable": f"{p}Bucket"}
        for p in purposes
    }


def stage_variables(project: dict, stage: str) -> dict[str, str]:
    """A stage's variables: the alias every function runs there, and each table's and bucket's name."""
    out = {project["stage_variable"]: stage}
    out.update({t["stage_variable"]: name for name, t in tables(project, stage).items()})
    out.update({b["stage_variable"]: name for name, b in buckets(project, stage).items()})
    return out


def s3_triggers(project: dict, stage: str) -> list[tuple[str, str]]:
    """(function, bucket name) for every S3-triggered function on `stage`: the stage's bucket
    of the trigger's purpose notifies the stage's alias of the function."""
    by_purpose = {b["purpose"]: name for name, b in buckets(project, stage).items()}
    return [
        (f["name"], by_purpose[f["trigger"]["bucket"]])
        for f in project["functions"]
        if f.get("trigger", {}).get("type") == "s3"
    ]


def function_alarms(project: dict, alarms: list[dict]) -> list[tuple[str, str, dict]]:
    """(name, function, alarm) per alarm Terraform creates from a stage's alarms: an API alarm
    once, a Lambda alarm per function, the first under its own name, each other as
    <name>-<function> (local.function_alarms)."""
    names = function_names(project)
    out = []
    for alarm in alarms:
        for fn in names:
            if fn == names[0]:
                out.append((alarm["name"], fn, alarm))
            elif alarm["kind"].startswith("lambda_"):
                out.append((f"{alarm['name']}-{fn}", fn, alarm))
    return out


def route_paths(project: dict) -> list[str]:
    """Every API Gateway resource the routes need: "/" and each prefix of each route."""
    paths = {"/"}
    for f in project["functions"]:
        for route in f["routes"]:
            parts = [p for p in route.split("/") if p]
            paths.update("/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(paths, key=lambda p: (p.count("/"), p))


def expected_resources(environments_dir: str | os.PathLike = DEFAULT_ENVIRONMENTS) -> dict:
    """The names the fixture creates (and Terraform must create), derived from environments/."""
    project, stages = load_environments(environments_dir)
    return {
        "function_name": function_names(project)[0],
        "functions": function_names(project),
        "rest_api_name": project["rest_api_name"],
        "stage_variable": project["stage_variable"],
        "stages": [s for s, _ in stages],
        "aliases": [s for s, _ in stages],
        "api_stages": {s: {"variables": stage_variables(project, s)} for s, _ in stages},
        "alarms": {s: [name for name, _, _ in function_alarms(project, c.get("alarms", []))] for s, c in stages},
        "tables": [name for s, _ in stages for name in tables(project, s)],
        "buckets": [name for s, _ in stages for name in buckets(project, s)],
        # What the fixture's REST API holds (see seed()): Terraform's tree, route_paths(project).
        "resources": route_paths(project),
        # Each route's function, as its integration URI names it.
        "integrations": {r: f["name"] for f in project["functions"] for r in f.get("routes", [])},
        "route_paths": route_paths(project),
    }


# ---------------------------------------------------------------------------------------
# Fake artifacts
# ---------------------------------------------------------------------------------------


def fake_sha(semver: str) -> str:
    """A stable 40-hex 'git sha' per fake version, so fixtures are reproducible."""
    return hashlib.sha1(f"path-to-live fixture {semver}".encode()).hexdigest()


def build_stamp(name: str, semver: str, sha: str) -> bytes:
    return f"@@build-stamp@@{name} {semver} {sha}@@end@@".encode()


def fake_zip(name: str, semver: str, sha: str) -> bytes:
    """A deployable-looking zip whose `bootstrap` carries the build stamp among other bytes."""
    buf = io.BytesIO()
    body = b"\x7fELF fake bootstrap for tests\n" + build_stamp(name, semver, sha) + b"\n"
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        z.writestr(info, body)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------------------


def check_loopback(endpoint: str) -> str:
    u = urlparse(endpoint)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise SeedError(f"--endpoint {endpoint!r}: expected http://127.0.0.1:PORT")
    host = u.hostname
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise SeedError(
            f"--endpoint {endpoint!r}: refusing a non-loopback endpoint; this fixture only seeds a "
            "local moto_server (start one with tools/moto.sh start)"
        )
    return endpoint.rstrip("/")


def _clients(endpoint: str, region: str):
    # Dummy credentials are forced into this process too, so no credential provider
    # (profiles, SSO, instance metadata) is ever consulted.
    # Service-specific endpoints (AWS_ENDPOINT_URL_LAMBDA...) and profiles are dropped too.
    for k in [k for k in os.environ if k.startswith(("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_",
                                                      "AWS_WEB_IDENTITY", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE",
                                                      "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONTAINER_"))]:
        os.environ.pop(k, None)
    os.environ.update(DUMMY_CREDENTIALS)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=region,
    )
    cfg = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})

    def client(name: str):
        return session.client(name, endpoint_url=endpoint, config=cfg)

    return client


def seed(endpoint: str, environments_dir: str | os.PathLike = DEFAULT_ENVIRONMENTS, versions: int = 3,
         region: str | None = None) -> dict:
    endpoint = check_loopback(endpoint)
    if versions < 1:
        raise SeedError(f"--versions {versions}: need at least one version (aliases start at version 1)")
    project, stages = load_environments(environments_dir)
    region = region or os.environ.get("AWS_REGION") or project.get("region") or "us-east-1"
    names = function_names(project)
    # The first function names the project's shared things (the alarms' Lambda dimension, the
    # CodeDeploy service role), as Terraform does; every function gets its own versions and aliases.
    fn_name = names[0]
    api_name = project["rest_api_name"]
    var = project["stage_variable"]
    client = _clients(endpoint, region)
    iam, lam, apigw, cw = client("iam"), client("lambda"), client("apigateway"), client("cloudwatch")

    for name in names:
        try:
            lam.get_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            pass
        else:
            raise SeedError(
                f"function '{name}' already exists at {endpoint} in {region}: seed a fresh moto_server "
                f"(or reset it: curl -X POST {endpoint}/moto-api/reset)"
            )

    # Lambda execution role (moto checks that the role exists).
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    try:
        role_arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    # Every function, N published versions each from its own zip carrying a build stamp, and
    # one alias per stage at version 1.
    functions = {
        f["name"]: publish_versions(lam, f["name"], role_arn, versions, [stage for stage, _ in stages],
                                    function_environment(project, f))
        for f in project["functions"]
    }
    fn_arn = functions[fn_name]["function_arn"]
    published = functions[fn_name]["versions"]

    api_id = build_rest_api(apigw, project, region)
    deployment_id = apigw.create_deployment(restApiId=api_id, description="fixture")["id"]

    # The functions' tables, one per stage (terraform/dynamodb.tf).
    dynamodb = client("dynamodb")
    for stage, _ in stages:
        for table, t in tables(project, stage).items():
            dynamodb.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": t["hash_key"], "AttributeType": "S"}],
                KeySchema=[{"AttributeName": t["hash_key"], "KeyType": "HASH"}],
            )

    # The functions' buckets, one per stage and purpose, and each stage's trigger bucket
    # notifying that stage's alias (terraform/s3.tf). moto keeps the notification but invokes
    # nothing: the local gateway delivers the events (docs/gateway.md).
    if any(buckets(project, stage) for stage, _ in stages):
        s3 = client("s3")
        for stage, _ in stages:
            for bucket in buckets(project, stage):
                s3.create_bucket(Bucket=bucket, **(
                    {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
                ))
            for function, bucket in s3_triggers(project, stage):
                alias_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function}:{stage}"
                s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration={"LambdaFunctionConfigurations": [
                        {"LambdaFunctionArn": alias_arn, "Events": ["s3:ObjectCreated:*"]}
                    ]},
                )

    # The CodeDeploy engine's application and, per codedeploy stage, its deployment group with
    # the configuration derived from its steps (terraform/codedeploy.tf). moto has no
    # CreateDeploymentConfig, so the group only names it.
    codedeploy_groups = {}
    codedeploy_stages = [(s, c) for s, c in stages if engine(c) == "codedeploy"]
    if codedeploy_stages:
        cd = client("codedeploy")
        # One application per function, named after it, with one deployment group per stage:
        # a deployment group shifts one alias (docs/engines.md).
        for app_name in names:
            cd.create_application(applicationName=app_name, computePlatform="Lambda")
        for stage, cfg in codedeploy_stages:
            config, why = codedeploy_config(cfg["strategy"])
            if config is None:
                raise SeedError(f"{stage}.json: field `{why[0]}`: {why[1]}")
            suffix = config_name_suffix(config)
            for app_name in names:
                create_deployment_group(cd, app_name, stage, group_alarms(project, cfg, app_name),
                                        f"{app_name}-{stage}-{suffix}")
            codedeploy_groups[stage] = {"group": stage, "deployment_config": f"{fn_name}-{stage}-{suffix}"}


    out_stages = {}
    for stage, cfg in stages:
        apigw.create_stage(restApiId=api_id, stageName=stage, deploymentId=deployment_id,
                           variables=stage_variables(project, stage))
        names, per_function = [], []
        for name, fn, alarm in function_alarms(project, cfg.get("alarms", [])):
            cw.put_metric_alarm(**{**alarm_definition(fn, api_name, stage, alarm), "AlarmName": name})
            cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="seeded by tools/seed.py")
            (names if name == alarm["name"] else per_function).append(name)
        out_stages[stage] = {
            "alias": stage,
            "invoke_url": f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
            # The stage file's alarms, then the copies of its Lambda alarms for the other functions.
            "alarms": names,
            "function_alarms": per_function,
            "tables": list(tables(project, stage)),
            "buckets": list(buckets(project, stage)),
        }
        if stage in codedeploy_groups:
            out_stages[stage]["codedeploy"] = codedeploy_groups[stage]

    return {
        "function_name": fn_name,
        "function_arn": fn_arn,
        "versions": published,
        "functions": functions,
        "rest_api_id": api_id,
        "stages": out_stages,
    }


def build_rest_api(apigw, project: dict, region: str) -> str:
    """The REST API as Terraform builds it (terraform/api.tf): every function's routes, each
    with its parent resources, ANY with a Lambda proxy integration to that function's alias
    named by the stage variable. promote checks each function's integrations through its own
    connection; the local gateway routes by project.json as API Gateway would here."""
    var = project["stage_variable"]
    api_id = apigw.create_rest_api(name=project["rest_api_name"], endpointConfiguration={"types": ["REGIONAL"]})["id"]
    root_id = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    known = {"/": root_id}
    for path in route_paths(project):
        resource_at(apigw, api_id, known, path)
    for f in project["functions"]:
        uri = integration_uri(region, f["name"], var)
        for route in f.get("routes", []):
            rid = resource_at(apigw, api_id, known, route)
            apigw.put_method(restApiId=api_id, resourceId=rid, httpMethod="ANY", authorizationType="NONE")
            apigw.put_integration(restApiId=api_id, resourceId=rid, httpMethod="ANY", type="AWS_PROXY",
                                  integrationHttpMethod="POST", uri=uri)
    return api_id


def integration_uri(region: str, function: str, stage_variable: str) -> str:
    """A Lambda proxy integration's URI: `function`'s alias named by the stage variable."""
    return (
        f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
        f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function}:${{stageVariables.{stage_variable}}}/invocations"
    )


def resource_at(apigw, api_id: str, known: dict[str, str], path: str) -> str:
    """The id of resource `path`, creating it and its missing parents."""
    if path in known:
        return known[path]
    parent, _, part = path.rstrip("/").rpartition("/")
    parent_id = resource_at(apigw, api_id, known, parent or "/")
    known[path] = apigw.create_resource(restApiId=api_id, parentId=parent_id, pathPart=part)["id"]
    return known[path]


def function_environment(project: dict, function: dict) -> dict[str, str]:
    """The function's environment as Terraform sets it (lambda.tf): an S3-triggered function
    gets the template of its summaries bucket, `{stage}` standing for the invoking alias."""
    probe = function.get("probe", {})
    if function.get("trigger", {}).get("type") != "s3":
        return {}
    summaries = probe.get("summaries", "summaries")
    return {"SUMMARIES_BUCKET": f"{project['rest_api_name']}-{{stage}}-{summaries}-{ACCOUNT_ID}".lower()}


def publish_versions(lam, fn_name: str, role_arn: str, versions: int, aliases: list[str],
                     environment: dict[str, str] | None = None) -> dict:
    """Creates the function, publishes versions 1..N and points every alias at version 1."""
    published = []
    for i in range(1, versions + 1):
        semver = f"0.1.{i - 1}"
        sha = fake_sha(semver)
        code = fake_zip(fn_name, semver, sha)
        if i == 1:
            fn = lam.create_function(
                FunctionName=fn_name,
                Runtime="provided.al2023",
                Handler="bootstrap",
                Role=role_arn,
                Code={"ZipFile": code},
                Architectures=["x86_64"],
                Description="path-to-live fixture",
                Environment={"Variables": environment or {}},
                Publish=False,
            )
            fn_arn = fn["FunctionArn"]
        else:
            lam.update_function_code(FunctionName=fn_name, ZipFile=code)
        v = lam.publish_version(FunctionName=fn_name, Description=f"{fn_name} {semver} {sha}")["Version"]
        if v != str(i):
            raise SeedError(f"expected version {i} of {fn_name} to be published, moto returned {v}")
        published.append(v)
    for stage in aliases:
        lam.create_alias(FunctionName=fn_name, Name=stage, FunctionVersion="1",
                         Description=f"stage {stage} (managed by promote)")
    return {"function_arn": fn_arn, "versions": published}


def group_alarms(project: dict, cfg: dict, fn: str) -> list[str]:
    """The alarms of function `fn`'s deployment group on a stage: its own Lambda alarms and the
    stage's API alarms (local.codedeploy_group_alarms in terraform/codedeploy.tf)."""
    return [name for name, f, alarm in function_alarms(project, cfg.get("alarms", []))
            if f == fn or not alarm["kind"].startswith("lambda_")]


def create_deployment_group(cd, app_name: str, stage: str, alarms: list[str], config_name: str) -> None:
    """The deployment group shifting function `app_name`'s alias `stage` (terraform/codedeploy.tf)."""
    cd.create_deployment_group(
        applicationName=app_name,
        deploymentGroupName=stage,
        deploymentConfigName=config_name,
        serviceRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{app_name}-codedeploy",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        alarmConfiguration={"enabled": bool(alarms), "alarms": [{"name": a} for a in alarms]},
        autoRollbackConfiguration={"enabled": True,
                                   "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
    )


def alarm_definition(fn_name: str, api_name: str, stage: str, alarm: dict) -> dict:
    """The PutMetricAlarm arguments of one stage alarm, as Terraform defines it."""
    kind = ALARM_KINDS.get(alarm.get("kind"))
    if kind is None:
        raise SeedError(f"stage '{stage}': alarm '{alarm.get('name')}' has unknown kind {alarm.get('kind')!r}")
    # Lambda alarms watch the alias, API alarms the stage (local.alarm_dimensions).
    if alarm["kind"].startswith("lambda_"):
        dims = [{"Name": "FunctionName", "Value": fn_name}, {"Name": "Resource", "Value": f"{fn_name}:{stage}"}]
    else:
        dims = [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": stage}]
    period = int(alarm.get("period_seconds", 60))
    args = dict(
        AlarmName=alarm["name"],
        EvaluationPeriods=int(alarm.get("evaluation_periods", 1)),
        Threshold=float(alarm["threshold"]),
        ComparisonOperator=kind["operator"],
        TreatMissingData=TREAT_MISSING_DATA,
        AlarmDescription=f"{alarm['kind']} on stage {stage}",
    )
    math = ALARM_MATH.get(alarm["kind"])
    if math is not None:
        # PutMetricAlarm takes the metrics, dimensions and period inside Metrics, not beside it.
        args["Metrics"] = [{"Id": "rate", "Expression": math["expression"], "Label": math["label"], "ReturnData": True}] + [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {"Namespace": math["namespace"], "MetricName": metric, "Dimensions": dims},
                    "Period": period,
                    "Stat": math["stat"],
                },
                "ReturnData": False,
            }
            for query_id, metric in math["metrics"].items()
        ]
        return args
    args.update(Namespace=kind["namespace"], MetricName=kind["metric"], Dimensions=dims, Period=period)
    if "extended" in kind:
        args["ExtendedStatistic"] = kind["extended"]
    else:
        args["Statistic"] = kind["statistic"]
    return args


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", help="moto_server URL on loopback, e.g. http://127.0.0.1:5000")
    p.add_argument("--environments", default=str(DEFAULT_ENVIRONMENTS), help="environments directory (default: %(default)s)")
    p.add_argument("--versions", type=int, default=3, help="how many versions to publish (default: %(default)s)")
    p.add_argument("--expected", action="store_true", help="print expected_resources() as JSON and exit (no endpoint used)")
    args = p.parse_args(argv)
    try:
        if args.expected:
            out = expected_resources(args.environments)
        elif not args.endpoint:
            p.error("--endpoint is required (e.g. --endpoint http://127.0.0.1:5000)")
        else:
            out = seed(args.endpoint, args.environments, args.versions)
    except SeedError as e:
        print(f"seed.py: error: {e}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
