//! Bad input gets exit code 2 and a message that says what was wrong.
//!
//! Input that can be judged without AWS (weights, durations, stage names, version syntax,
//! the environments files) is refused before any AWS call: those runs point `promote` at a
//! loopback port where nothing listens, so a call would have failed with exit 1 instead.
//! Input that needs AWS to judge (a version that is not published, a move backwards) runs
//! against moto, and every alias is compared field by field before and after.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Scratch, Stack, copy_dir, edit_json, workspace_root};

/// `promote` with the repository's environments (or `dir`) and an AWS endpoint where
/// nothing listens: (exit code, stderr).
fn offline(dir: Option<&Path>, line: &str) -> (i32, String) {
    let scratch = Scratch::new("offline");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let environments: PathBuf =
        dir.map_or_else(|| workspace_root().join("environments"), Path::to_path_buf);
    let out = Command::new(env!("CARGO_BIN_EXE_promote"))
        .env_clear()
        .env("HOME", scratch.path())
        .env("AWS_ENDPOINT_URL", format!("http://{dead}"))
        .env("AWS_REGION", "eu-west-2")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .arg("--environments")
        .arg(&environments)
        .args(line.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .expect("run promote");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn assert_bad_input(dir: Option<&Path>, line: &str, mentions: &[&str]) {
    let (code, stderr) = offline(dir, line);
    assert_eq!(code, 2, "`promote {line}`: {stderr}");
    let lower = stderr.to_lowercase();
    assert!(
        mentions.iter().any(|m| lower.contains(&m.to_lowercase())),
        "`promote {line}`: stderr mentions none of {mentions:?}:\n{stderr}"
    );
}

#[test]
fn bad_probe_options_are_refused_before_any_aws_call() {
    assert_bad_input(None, "probe --stage nope --rate 10", &["nope"]);
    for (flag, value, says) in [
        ("--probe-rate", "0", "not a rate"),
        ("--probe-rate", "-1", "not a rate"),
        ("--probe-rate", "abc", "not a rate"),
        ("--probe-rate", "5000", "a rollout's probe may send"),
        ("--probe-url", "ftp://127.0.0.1:1", "http:// or https://"),
        ("--probe-url", "localhost:3000", "http:// or https://"),
    ] {
        assert_bad_input(
            None,
            &format!("canary --stage live --version 2 --dry-run {flag}={value}"),
            &[says],
        );
    }
}

#[test]
fn invalid_weights_and_durations_are_refused_before_any_aws_call() {
    for w in ["0", "100", "100.5", "-3", "abc"] {
        // `--weight=-3` so that clap takes -3 as the value, as a user typing it would mean.
        let canary = format!("canary --stage live --version 2 --weight={w} --bake 1s");
        assert_bad_input(None, &canary, &["weight"]);
        assert_bad_input(
            None,
            &format!("advance --stage live --weight={w}"),
            &["weight"],
        );
    }
    for (flag, value) in [
        ("--bake", "18446744073709551615"),
        ("--bake", "9223372036854775807"),
        ("--bake", "25h"),
        ("--poll", "18446744073709551615"),
        ("--poll", "10ms"),
        ("--poll", "6m"),
    ] {
        let line = format!("canary --stage live --version 2 --weight 10 {flag} {value}");
        assert_bad_input(None, &line, &[flag]);
        assert_bad_input(None, &format!("{line} --dry-run"), &[flag]);
    }
}

#[test]
fn unknown_stages_and_malformed_versions_are_refused_before_any_aws_call() {
    assert_bad_input(None, "deploy --stage nope --version 2", &["nope"]);
    assert_bad_input(
        None,
        "canary --stage nope --version 2 --weight 10",
        &["nope"],
    );
    assert_bad_input(None, "rollback --stage nope", &["nope"]);
    assert_bad_input(
        None,
        "deploy --stage dev --version $LATEST",
        &["$LATEST", "latest"],
    );
    assert_bad_input(
        None,
        "canary --stage live --version $LATEST --weight 10",
        &["$LATEST", "latest"],
    );
    assert_bad_input(
        None,
        "deploy --stage dev --version two",
        &["two", "version"],
    );
}

#[test]
fn versions_that_are_not_published_are_refused_without_any_alias_change() {
    let stack = Stack::new("bad-names");
    stack.assert_refused("deploy --stage dev --version 99", 2, &["99"]);
    stack.assert_refused("canary --stage live --version 99 --weight 10", 2, &["99"]);
}

#[test]
fn a_malformed_environments_file_is_refused_naming_the_file() {
    let scratch = Scratch::new("bad-environments");
    type Edit = Box<dyn Fn(&std::path::Path)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "not JSON",
            Box::new(|d| {
                std::fs::write(d.join("live.json"), "{ \"upstream\": \"test\", ").unwrap()
            }),
            "live.json",
        ),
        (
            "weights not increasing",
            Box::new(|d| {
                edit_json(&d.join("live.json"), |v| {
                    v["strategy"]["steps"][1]["weight"] = 5.into();
                })
            }),
            "live.json",
        ),
        (
            "last step not 100",
            Box::new(|d| {
                edit_json(&d.join("live.json"), |v| {
                    v["strategy"]["steps"][2]["weight"] = 90.into();
                })
            }),
            "live.json",
        ),
        (
            "upstream names no stage",
            Box::new(|d| edit_json(&d.join("live.json"), |v| v["upstream"] = "staging".into())),
            "staging",
        ),
        (
            "two first stages",
            Box::new(|d| {
                edit_json(&d.join("test.json"), |v| {
                    v["upstream"] = serde_json::Value::Null
                })
            }),
            "upstream",
        ),
    ];
    for (what, edit, mention) in cases {
        let dir = scratch
            .path()
            .join(format!("env-{}", what.replace(' ', "-")));
        copy_dir(&workspace_root().join("environments"), &dir);
        edit(&dir);
        for line in [
            "deploy --stage dev --version 2",
            "canary --stage live --version 2 --weight 10 --bake 1s",
        ] {
            let (code, stderr) = offline(Some(&dir), line);
            assert_eq!(code, 2, "{what}: `promote {line}`: {stderr}");
            assert!(
                stderr.contains(mention),
                "{what}: the error does not mention {mention:?}:\n{stderr}"
            );
        }
    }
}

#[test]
fn advance_backwards_or_without_a_canary_is_refused() {
    let stack = Stack::new("bad-advance");
    stack.assert_refused(
        "advance --stage live",
        2,
        &["no canary", "nothing to advance"],
    );
    stack.set_alias("live", "1", Some(("2", 0.2)));
    stack.assert_refused("advance --stage live --weight 15", 2, &["20"]);
    stack.assert_refused("advance --stage live --weight 20", 2, &["20"]);
}
