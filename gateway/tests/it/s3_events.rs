//! S3 event notifications through the gateway, on the emulator's S3: the seeded buckets (one
//! per stage and purpose) and each stage's uploads bucket notifying that stage's alias of
//! `file-metadata`, as Terraform creates them; real `file-metadata` zips published with their
//! `SUMMARIES_BUCKET`; the gateway delivering each added object's event to the alias.

use crate::support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use support::{Stack, wait_for};

const FUNCTION: &str = "file-metadata";
const ACCOUNT: &str = "123456789012";
/// Lambda's retry waits (1 and 2 minutes) become 1 and 2 seconds.
const TIME_SCALE: &str = "60";

fn bucket(stage: &str, purpose: &str) -> String {
    rollout::spec::bucket_name("app", stage, purpose, ACCOUNT)
}

/// The seeded stack with `file-metadata` in project.json as issue 22's model has it.
fn stack() -> Stack {
    Stack::with_environments(add_file_metadata)
}

fn add_file_metadata(dir: &std::path::Path) {
    let path = dir.join("project.json");
    let mut project: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let functions = project["functions"].as_array_mut().unwrap();
    if !functions.iter().any(|f| f["name"] == FUNCTION) {
        functions.push(serde_json::json!({
            "name": FUNCTION, "package": FUNCTION, "routes": [],
            "buckets": ["uploads", "summaries"],
            "trigger": {"type": "s3", "bucket": "uploads"},
            "probe": {"type": "upload", "bucket": "uploads", "prefix": "probe/",
                      "summaries": "summaries", "deadline_seconds": 10}
        }));
    }
    std::fs::write(&path, serde_json::to_string_pretty(&project).unwrap()).unwrap();
}

/// The dev-profile `file-metadata`, copied for this test binary as the harness copies `app`
/// (the demo may rebuild target/debug's under a running test).
fn binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let app = &support::workspace_bins().0;
        let built = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join(FUNCTION);
        let copy = app.parent().unwrap().join(FUNCTION);
        std::fs::copy(&built, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
        copy
    })
    .clone()
}

/// The `file-metadata` zip, its code uploaded once: every version a test publishes shares it
/// and differs by its environment, as Lambda publishes a version when either changed (a 40 MB
/// debug bootstrap took moto some 7 s to take each time).
fn upload_code(stack: &Stack) -> PathBuf {
    let zip = stack.dir.path().join("file-metadata.zip");
    // Zipped and uploaded with Python (zlib, boto3), through a bucket as a pipeline does: the
    // test's own zip writer and SDK, built without optimisation like every dependency of a
    // dev-profile test, spent some 12 s on the 40 MB bootstrap's CRC, SigV4 hash and base64,
    // against about a second here.
    let endpoint = stack.sdk_config().endpoint_url().unwrap().to_string();
    let mut cmd = std::process::Command::new(testkit::tools::python());
    testkit::tools::scrub_aws_env(&mut cmd);
    let out = cmd
        .args(["-c", UPLOAD_CODE, &endpoint, &stack.region, FUNCTION])
        .arg(binary())
        .arg(&zip)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "uploading the code: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    zip
}

/// argv: endpoint, region, function, bootstrap, zip to write.
const UPLOAD_CODE: &str = r#"
import sys, zipfile, boto3
endpoint, region, function, bootstrap, path = sys.argv[1:6]
info = zipfile.ZipInfo("bootstrap")
info.external_attr = 0o755 << 16
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z, open(bootstrap, "rb") as f:
    z.writestr(info, f.read())
kw = dict(endpoint_url=endpoint, region_name=region,
          aws_access_key_id="testing", aws_secret_access_key="testing")
s3 = boto3.client("s3", **kw)
bucket = "artifacts-123456789012"
s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
s3.upload_file(path, bucket, "file-metadata.zip")
boto3.client("lambda", **kw).update_function_code(
    FunctionName=function, S3Bucket=bucket, S3Key="file-metadata.zip")
"#;

/// Publishes a version of `file-metadata` whose `SUMMARIES_BUCKET` is `summaries`; `release`
/// tells apart versions that are otherwise the same.
fn publish(stack: &Stack, summaries: &str, release: &str) -> String {
    use aws_sdk_lambda::types::Environment;
    stack
        .block_on(
            stack
                .lambda
                .update_function_configuration()
                .function_name(FUNCTION)
                .environment(
                    Environment::builder()
                        .variables("SUMMARIES_BUCKET", summaries)
                        .variables("RELEASE", release)
                        .build(),
                )
                .send(),
        )
        .expect("UpdateFunctionConfiguration");
    let out = stack
        .block_on(
            stack
                .lambda
                .publish_version()
                .function_name(FUNCTION)
                .send(),
        )
        .expect("PublishVersion");
    out.version().unwrap().to_string()
}

const SUMMARIES: &str = "app-{stage}-summaries-123456789012";

fn s3(stack: &Stack) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&stack.sdk_config())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn put(stack: &Stack, s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) {
    stack
        .block_on(
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .content_type("text/plain")
                .metadata("owner", "tests")
                .body(body.as_bytes().to_vec().into())
                .send(),
        )
        .unwrap_or_else(|e| panic!("PutObject s3://{bucket}/{key}: {e:?}"));
}

fn keys(stack: &Stack, s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = stack
            .block_on(
                s3.list_objects_v2()
                    .bucket(bucket)
                    .set_continuation_token(token)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket}: {e:?}"));
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            return keys;
        }
    }
}

fn get_json(stack: &Stack, s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Value> {
    let out = stack
        .block_on(s3.get_object().bucket(bucket).key(key).send())
        .ok()?;
    let bytes = stack.block_on(out.body.collect()).unwrap().into_bytes();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Waits until the `AWS/Lambda` metric over `dims` sums to `want` (it only grows), and says
/// what it reached.
fn metric_reaches(stack: &Stack, metric: &str, dims: &[(&str, &str)], want: f64) -> f64 {
    wait_for(Duration::from_secs(15), || {
        let sum = stack.metric_sum("AWS/Lambda", metric, dims);
        (sum >= want).then_some(sum)
    })
    .map(|(s, _)| s)
    .unwrap_or_else(|| stack.metric_sum("AWS/Lambda", metric, dims))
}

/// One stack for three stages' releases: dev's summarises, test's would write where it is
/// triggered, live's fails every invocation (`--fault`).
#[test]
fn uploads_are_summarised_through_the_stages_alias_never_where_they_trigger_and_failures_retried() {
    let stack = stack();
    let zip = upload_code(&stack);
    let good = publish(&stack, SUMMARIES, "good");
    // A misconfigured release: its summaries would go to the bucket that triggered it.
    let looping = publish(&stack, "app-{stage}-uploads-123456789012", "looping");
    let bad = publish(&stack, SUMMARIES, "bad");
    stack.set_function_alias(FUNCTION, "dev", &good);
    stack.set_function_alias(FUNCTION, "test", &looping);
    stack.set_function_alias(FUNCTION, "live", &bad);
    let fault = format!("{FUNCTION}/{bad}:1");
    let gw = stack.gateway(&[
        "-v",
        "--time-scale",
        TIME_SCALE,
        "--fault",
        &fault,
        "--artifacts",
        zip.to_str().unwrap(),
    ]);
    let s3 = s3(&stack);

    // Live's events fail, and are retried 1 s and 2 s later while the rest goes on.
    const FAILING: usize = 2;
    for i in 0..FAILING {
        put(
            &stack,
            &s3,
            &bucket("live", "uploads"),
            &format!("{i}.txt"),
            "x",
        );
    }

    let (uploads, summaries) = (bucket("dev", "uploads"), bucket("dev", "summaries"));
    put(&stack, &s3, &uploads, "photos/my cat+1.txt", "hello");
    let summary_key = "photos/my cat+1.txt.json";
    let (summary, took) = wait_for(Duration::from_secs(15), || {
        get_json(&stack, &s3, &summaries, summary_key)
    })
    .unwrap_or_else(|| panic!("no summary in {summaries}:\n{}", gw.stderr()));
    eprintln!("upload to summary on the gateway: {took:?}");
    assert_eq!(summary["bucket"], uploads.as_str());
    assert_eq!(summary["key"], "photos/my cat+1.txt");
    assert_eq!(summary["size"], 5);
    assert_eq!(summary["content_type"], "text/plain");
    assert_eq!(summary["metadata"]["owner"], "tests");
    assert!(
        summary["last_modified"].as_str().unwrap().ends_with('Z'),
        "{summary}"
    );
    assert_eq!(summary["etag"].as_str().unwrap().len(), 32, "{summary}");
    assert_eq!(summary["made_by"]["function"], FUNCTION);
    assert_eq!(summary["made_by"]["version"], good.as_str());
    // Through dev's alias, counted once; the uploads bucket holds only the upload.
    let dev = [
        ("FunctionName", FUNCTION),
        ("Resource", "file-metadata:dev"),
    ];
    assert_eq!(metric_reaches(&stack, "Invocations", &dev, 1.0), 1.0);
    assert_eq!(keys(&stack, &s3, &uploads), ["photos/my cat+1.txt"]);

    // On test the version would write into the uploads bucket: it refuses, writes nothing,
    // and so nothing triggers it again.
    let test_uploads = bucket("test", "uploads");
    put(&stack, &s3, &test_uploads, "loop.txt", "x");
    let test = [
        ("FunctionName", FUNCTION),
        ("Resource", "file-metadata:test"),
    ];
    assert_eq!(metric_reaches(&stack, "Invocations", &test, 1.0), 1.0);
    wait_for(Duration::from_secs(10), || {
        gw.stderr()
            .contains("refusing to write the summary")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no refusal logged:\n{}", gw.stderr()));
    assert_eq!(keys(&stack, &s3, &test_uploads), ["loop.txt"]);
    assert!(keys(&stack, &s3, &bucket("test", "summaries")).is_empty());
    // Not a function error: nothing to retry.
    assert_eq!(stack.metric_sum("AWS/Lambda", "Errors", &test), 0.0);

    // Each of live's events is given up after its third attempt, each attempt counted.
    wait_for(Duration::from_secs(20), || {
        (gw.stderr().matches("failed 3 attempts; discarded").count() >= FAILING).then_some(())
    })
    .unwrap_or_else(|| panic!("the events were not given up:\n{}", gw.stderr()));
    let live = [
        ("FunctionName", FUNCTION),
        ("Resource", "file-metadata:live"),
    ];
    let attempts = (3 * FAILING) as f64;
    assert_eq!(
        metric_reaches(&stack, "Invocations", &live, attempts),
        attempts
    );
    assert_eq!(metric_reaches(&stack, "Errors", &live, attempts), attempts);
    assert!(keys(&stack, &s3, &bucket("live", "summaries")).is_empty());
    // Many rounds of listings later, test's refused event was still delivered once: the
    // refusal wrote nothing that could trigger it again.
    assert_eq!(stack.metric_sum("AWS/Lambda", "Invocations", &test), 1.0);
    gw.stop();
}

#[test]
fn a_ten_percent_canary_of_file_metadata_splits_the_uploads_and_counts_each_version() {
    const UPLOADS: usize = 300;
    const WEIGHT: f64 = 0.1;
    let stack = stack();
    let zip = upload_code(&stack);
    let stable = publish(&stack, SUMMARIES, "stable");
    let candidate = publish(&stack, SUMMARIES, "candidate");
    stack
        .block_on(
            stack
                .lambda
                .update_alias()
                .function_name(FUNCTION)
                .name("live")
                .function_version(&stable)
                .routing_config(
                    aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                        .additional_version_weights(&candidate, WEIGHT)
                        .build(),
                )
                .send(),
        )
        .expect("UpdateAlias live");
    let gw = stack.gateway(&[
        "--time-scale",
        TIME_SCALE,
        "--artifacts",
        zip.to_str().unwrap(),
    ]);
    let s3 = s3(&stack);
    let (uploads, summaries) = (bucket("live", "uploads"), bucket("live", "summaries"));
    for i in 0..UPLOADS {
        put(&stack, &s3, &uploads, &format!("batch/{i}.txt"), "x");
    }
    wait_for(Duration::from_secs(40), || {
        (keys(&stack, &s3, &summaries).len() >= UPLOADS).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{} of {UPLOADS} summaries:\n{}",
            keys(&stack, &s3, &summaries).len(),
            gw.stderr()
        )
    });
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    for key in keys(&stack, &s3, &summaries) {
        let s = get_json(&stack, &s3, &summaries, &key).unwrap();
        *by_version
            .entry(s["made_by"]["version"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        by_version.values().sum::<usize>(),
        UPLOADS,
        "{by_version:?}"
    );
    let got = by_version.get(&candidate).copied().unwrap_or(0) as f64;
    let mean = UPLOADS as f64 * WEIGHT;
    let sigma = (UPLOADS as f64 * WEIGHT * (1.0 - WEIGHT)).sqrt();
    eprintln!(
        "candidate wrote {got} of {UPLOADS} summaries (expected {mean} ± {:.1})",
        3.0 * sigma
    );
    assert!(
        (got - mean).abs() <= 3.0 * sigma,
        "candidate wrote {got} of {UPLOADS}, expected {mean} ± {:.0}",
        3.0 * sigma
    );
    // The per-version Invocations the judge reads count each event on the version that wrote
    // its summary.
    for (version, n) in &by_version {
        let dims = [
            ("FunctionName", FUNCTION),
            ("Resource", "file-metadata:live"),
            ("ExecutedVersion", version.as_str()),
        ];
        assert_eq!(
            metric_reaches(&stack, "Invocations", &dims, *n as f64),
            *n as f64
        );
    }
    gw.stop();
}

/// `promote canary` of `file-metadata` on live, judged by its upload probe alone: the
/// candidate fails every event, so its probes' summaries never come (timeouts naming no
/// version), and the run rolls back.
#[test]
fn a_failing_file_metadata_candidate_is_rolled_back_by_its_upload_probe() {
    let stack = Stack::with_environments(|dir| {
        add_file_metadata(dir);
        let path = dir.join("live.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["analysis"] = serde_json::json!({"sources": ["probe"], "max_extension_seconds": 10});
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    });
    let zip = upload_code(&stack);
    let stable = publish(&stack, SUMMARIES, "stable");
    let candidate = publish(&stack, SUMMARIES, "candidate");
    stack.serve_release(FUNCTION, "live", &stable);
    stack.serve_release(FUNCTION, "test", &candidate);
    let fault = format!("{FUNCTION}/{candidate}:1");
    let gw = stack.gateway(&[
        "--time-scale",
        TIME_SCALE,
        "--fault",
        &fault,
        "--artifacts",
        zip.to_str().unwrap(),
    ]);
    let started = std::time::Instant::now();
    // 5 uploads a second: each failing event is tried three times, and at 20 a second the
    // retries of the failing half outran the deliveries on 2 busy cores (make test runs the
    // demo beside this), so that every summary came after its deadline, the stable's too.
    let out = stack
        .promote_command(&format!(
            "--output json canary --stage live --release {FUNCTION}={candidate} --weight 50 --bake 120s --poll 1s --allow-downgrade \
             --probe-rate 5 --probe-url http://127.0.0.1:{}/live",
            gw.port
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!(
        "promote canary: exit {:?} after {:?}",
        out.status.code(),
        started.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stdout}\n{stderr}\n{}",
        gw.stderr()
    );
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let rolled = events
        .iter()
        .find(|e| e["event"] == "rolled_back")
        .unwrap_or_else(|| panic!("no rolled_back event:\n{stdout}"));
    assert!(
        rolled["reason"].as_str().unwrap().contains("probe"),
        "{rolled}"
    );
    // The probe's numbers: the stable version's summaries attributed to it, the candidate's
    // uploads never summarised.
    let n = crate::probe::probe_numbers(&events);
    eprintln!("probe numbers: {n}");
    assert_eq!(n["decision"], "fail", "{n}");
    assert!(n["unattributed"]["failed"].as_u64().unwrap() > 0, "{n}");
    assert_eq!(n["stable"]["errors"], 0, "{n}");
    assert!(n["stable"]["requests"].as_u64().unwrap() > 0, "{n}");
    assert_eq!(n["candidate"]["requests"], 0, "{n}");
    assert_eq!(stack.routing_of(FUNCTION, "live"), (stable, None));
    gw.stop();
}
