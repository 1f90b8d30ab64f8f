//! `promote publish` against a seeded moto: the version description comes from the build stamp
//! inside the zip, and identical code is not published twice.
//!
//! moto publishes a new version on every UpdateFunctionCode + PublishVersion, even for
//! identical code, so the "same version again" result below is `promote`'s own doing.

use crate::support;

use serde_json::Value;
use support::Stack;

const SHA: &str = "3f2c0e9d1c4b5a69788796a5b4c3d2e1f0a9b8c7";

fn publish_json(stack: &Stack, zip: &std::path::Path) -> Value {
    let run = stack.promote(&[
        "--output",
        "json",
        "publish",
        "--zip",
        zip.to_str().unwrap(),
    ]);
    run.assert_code(0);
    run.json_lines()
        .into_iter()
        .rev()
        .find(|v| v.get("version").is_some())
        .unwrap_or_else(|| panic!("no JSON object with \"version\" in: {}", run.stdout))
}

fn version_str(v: &Value) -> String {
    match &v["version"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("version is {other:?}"),
    }
}

#[test]
fn publish_records_the_artifacts_stamp_and_dedupes_identical_code() {
    let stack = Stack::new("publish");
    let zip = stack.fake_zip("app-0.2.0.zip", "app", "0.2.0", SHA);

    let first = publish_json(&stack, &zip);
    let mut snap = first.clone();
    support::redact(&stack, &mut snap);
    insta::assert_json_snapshot!("publish_json", snap);
    assert_eq!(version_str(&first), "4", "{first}");
    assert_eq!(first["created"], true, "{first}");
    assert_eq!(first["name"], "app", "{first}");
    assert_eq!(first["semver"], "0.2.0", "{first}");
    assert_eq!(first["git_sha"], SHA, "{first}");
    let versions = stack.versions();
    assert_eq!(
        versions.last().unwrap(),
        &("4".to_string(), format!("app 0.2.0 {SHA}"))
    );

    let again = publish_json(&stack, &zip);
    assert_eq!(
        version_str(&again),
        "4",
        "identical code must return the existing version: {again}"
    );
    assert_eq!(again["created"], false, "{again}");
    assert_eq!(
        stack.versions().len(),
        4,
        "a duplicate version was published"
    );

    // The table output prints the version number too.
    let plain = stack.promote(&["publish", "--zip", zip.to_str().unwrap()]);
    plain.assert_code(0);
    assert!(plain.stdout.contains('4'), "{}", plain.stdout);
    assert_eq!(stack.versions().len(), 4);
}

#[test]
fn publish_of_code_already_published_by_the_fixture_returns_that_version() {
    let stack = Stack::new("publish-existing");
    let versions = stack.versions();
    let (_, description) = &versions[1];
    let parts: Vec<&str> = description.split(' ').collect();
    // The fixture's version 2 zip, rebuilt byte for byte.
    let zip = stack.fake_zip("v2.zip", parts[0], parts[1], parts[2]);
    let out = publish_json(&stack, &zip);
    assert_eq!(version_str(&out), "2", "{out}");
    assert_eq!(out["created"], false, "{out}");
    assert_eq!(stack.versions().len(), 3);
}

#[test]
fn publish_dry_run_publishes_nothing() {
    let stack = Stack::new("publish-dry");
    let zip = stack.fake_zip("app-0.3.0.zip", "app", "0.3.0", SHA);
    let before = stack.versions();
    stack
        .promote(&["publish", "--zip", zip.to_str().unwrap(), "--dry-run"])
        .assert_code(0);
    assert_eq!(stack.versions(), before);
}

#[test]
fn publish_of_a_zip_without_a_build_stamp_fails_without_publishing() {
    let stack = Stack::new("publish-nostamp");
    let zip = stack.scratch.path().join("not-a-zip.zip");
    std::fs::write(&zip, b"this is not a zip").unwrap();
    let before = stack.versions();
    let run = stack.promote(&["publish", "--zip", zip.to_str().unwrap()]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("not-a-zip.zip"),
        "the error does not name the file: {}",
        run.stderr
    );
    assert_eq!(stack.versions(), before);

    let missing = stack.run("publish --zip does-not-exist.zip");
    missing.assert_code(2);
    assert_eq!(stack.versions(), before);
}
