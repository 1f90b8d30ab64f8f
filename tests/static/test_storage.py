"""The functions' S3 buckets in terraform/s3.tf and the roles in lambda.tf (docs/storage.md):
one bucket per stage and purpose, private, encrypted with the project's key, TLS only,
versioned; live's kept, the others emptied on destroy; a trigger bucket notifying the stage's
alias, with a permission that names the bucket and the account; each role reaching its own
buckets and never writing the one that triggers it.

The environments here are the repository's stages with a project.json that lists the S3
functions of issue 22 (notes, images, file-metadata), so the rules are checked whatever the
repository's project.json lists today; tools/seed.py must derive the same names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seed
from tfmodel import ACCOUNT, Environments, block, bucket_instances, s3_trigger_instances, stage_variable_instances

S3_FUNCTIONS = [
    {"name": "notes", "package": "notes", "routes": ["/notes/{name}"], "buckets": ["notes"],
     "probe": {"method": "GET", "path": "/notes/probe", "expect_status": 404}},
    {"name": "file-metadata", "package": "file-metadata", "routes": [], "buckets": ["uploads", "summaries"],
     "trigger": {"type": "s3", "bucket": "uploads"},
     "probe": {"type": "upload", "bucket": "uploads", "prefix": "probe/", "summaries": "summaries"}},
]


@pytest.fixture(scope="module")
def s3_env(environments_dir: Path, tmp_path_factory) -> tuple[Path, Environments]:
    d = tmp_path_factory.mktemp("environments")
    for p in environments_dir.glob("*.json"):
        (d / p.name).write_text(p.read_text())
    schema = d / "schema"
    schema.mkdir()
    for p in (environments_dir / "schema").glob("*.json"):
        (schema / p.name).write_text(p.read_text())
    project = json.loads((d / "project.json").read_text())
    names = {f["name"] for f in project["functions"]}
    project["functions"] += [f for f in S3_FUNCTIONS if f["name"] not in names]
    (d / "project.json").write_text(json.dumps(project, indent=2))
    return d, Environments.load(d)


def test_one_bucket_per_stage_and_purpose_named_with_the_account(tf, s3_env):
    d, env = s3_env
    buckets = bucket_instances(tf, env)
    purposes = {p for f in env.project["functions"] for p in f.get("buckets", [])}
    assert {"notes", "uploads", "summaries"} <= purposes
    assert set(buckets) == {f"{p}-{s}" for p in purposes for s in env.stages}
    assert buckets["notes-dev"]["name"] == f"app-dev-notes-{ACCOUNT}"
    assert buckets["uploads-live"]["stage_variable"] == "uploadsBucket"
    # Only the end of the path keeps its data.
    assert {k for k, b in buckets.items() if b["kept"]} == {f"{p}-live" for p in purposes}
    # Each stage's variables name that stage's buckets, and no other stage's.
    variables = stage_variable_instances(tf, env)
    assert variables["dev"]["summariesBucket"] == f"app-dev-summaries-{ACCOUNT}"
    assert variables["live"]["notesBucket"] == f"app-live-notes-{ACCOUNT}"
    # The fixture seeds the same names and variables.
    project, _ = seed.load_environments(d)
    for stage in env.stages:
        assert seed.stage_variables(project, stage) == variables[stage]


def test_live_buckets_are_kept_and_the_others_emptied_on_destroy(tf):
    kept = tf.resource("aws_s3_bucket", "kept")
    disposable = tf.resource("aws_s3_bucket", "disposable")
    assert kept["for_each"] == "${{for k, b in local.buckets : k => b if b.kept}}"
    assert disposable["for_each"] == "${{for k, b in local.buckets : k => b if !b.kept}}"
    assert kept["force_destroy"] is False
    assert block(kept, "lifecycle")["prevent_destroy"] is True
    assert disposable["force_destroy"] is True
    assert "lifecycle" not in disposable


@pytest.mark.parametrize(
    "resource",
    [
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_policy",
    ],
)
def test_every_bucket_has_each_safeguard(tf, resource):
    body = tf.resource(resource, "function")
    assert body["for_each"] == "${local.buckets}"
    assert body["bucket"] == "${local.bucket_ids[each.key]}"


def test_buckets_are_private_encrypted_with_the_project_key_versioned_and_tls_only(tf):
    pab = tf.resource("aws_s3_bucket_public_access_block", "function")
    assert all(pab[k] is True for k in ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"])
    sse = block(block(tf.resource("aws_s3_bucket_server_side_encryption_configuration", "function"), "rule"),
                "apply_server_side_encryption_by_default")
    assert sse == {"sse_algorithm": "aws:kms", "kms_master_key_id": "${aws_kms_key.observability.arn}"}
    versioning = block(tf.resource("aws_s3_bucket_versioning", "function"), "versioning_configuration")
    assert versioning["status"] == "Enabled"
    deny = block(tf.data_source("aws_iam_policy_document", "bucket_tls_only"), "statement")
    assert deny["effect"] == "Deny" and deny["actions"] == ["s3:*"]
    assert block(deny, "condition") == {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}
    # The key lets S3, and only S3, use it for this account's principals.
    key_policy = tf.data_source("aws_iam_policy_document", "observability_key")
    statements = key_policy["statement"]
    s3 = next(s for s in statements if s.get("sid") == "S3EncryptsBuckets")
    conditions = {c["variable"]: c["values"] for c in s3["condition"]}
    assert conditions["kms:ViaService"] == ["s3.${local.region}.amazonaws.com"]
    assert conditions["kms:CallerAccount"] == ["${local.account_id}"]


def test_a_trigger_bucket_notifies_the_stages_alias_which_only_that_bucket_of_this_account_may_invoke(tf, s3_env):
    _, env = s3_env
    triggers = s3_trigger_instances(tf, env)
    assert triggers == {
        f"file-metadata:{s}": {"function": "file-metadata", "stage": s, "bucket": f"uploads-{s}"} for s in env.stages
    }
    permission = tf.resource("aws_lambda_permission", "s3_trigger")
    assert permission["for_each"] == "${local.s3_triggers}"
    assert permission["principal"] == "s3.amazonaws.com"
    assert permission["qualifier"] == "${aws_lambda_alias.stage[each.key].name}"
    assert permission["source_arn"] == "${local.bucket_arns[each.value.bucket]}"
    assert permission["source_account"] == "${local.account_id}"
    notification = tf.resource("aws_s3_bucket_notification", "trigger")
    target = block(notification, "lambda_function")
    # The alias, not the function: a canary split applies to events as to requests.
    assert target["lambda_function_arn"] == "${aws_lambda_alias.stage[each.key].arn}"
    assert target["events"] == ["s3:ObjectCreated:*"]
    retries = tf.resource("aws_lambda_function_event_invoke_config", "s3_trigger")
    assert retries["maximum_retry_attempts"] == 2
    assert retries["qualifier"] == "${aws_lambda_alias.stage[each.key].name}"


def test_each_role_reads_its_buckets_and_writes_all_but_its_trigger(tf):
    doc = tf.data_source("aws_iam_policy_document", "lambda")
    dynamic = {block(d["statement"], "content")["sid"]: block(d["statement"], "content") for d in doc["dynamic"]}
    read, write = dynamic["ReadOwnBuckets"], dynamic["WriteOwnBucketsButTheTrigger"]
    assert read["actions"] == ["s3:GetObject", "s3:ListBucket"]
    assert write["actions"] == ["s3:PutObject"]
    assert "contains(local.function_buckets[each.key].all, b.purpose)" in read["resources"]
    # Never the trigger's bucket, and no delete anywhere.
    assert "b.purpose != local.function_buckets[each.key].trigger" in write["resources"]
    actions = [a for d in doc["dynamic"] for a in json.dumps(d).split('"') if a.startswith("s3:")]
    assert not [a for a in actions if "Delete" in a], actions
