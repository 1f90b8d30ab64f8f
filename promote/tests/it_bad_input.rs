//! Bad input gets exit code 2, a message that says what was wrong, and no AWS change: every
//! alias is compared field by field (the whole GetAlias output) before and after.

mod support;

use support::{Stack, edit_json};

#[test]
fn invalid_weights_are_refused_before_any_aws_change() {
    let stack = Stack::new("bad-weights");
    // A live split in progress, so "unchanged" is a non-trivial state.
    stack.set_alias("live", "1", Some(("2", 0.1)));
    for w in ["0", "100", "100.5", "-3", "abc"] {
        // `--weight=-3` so that clap takes -3 as the value, as a user typing it would mean.
        stack.assert_refused(
            &format!("canary --stage live --version 2 --weight={w} --bake 1s"),
            2,
            &["weight"],
        );
        stack.assert_refused(
            &format!("advance --stage live --weight={w}"),
            2,
            &["weight"],
        );
    }
}

#[test]
fn unknown_stage_version_and_latest_are_refused_before_any_aws_change() {
    let stack = Stack::new("bad-names");
    stack.assert_refused("deploy --stage nope --version 2", 2, &["nope"]);
    stack.assert_refused("canary --stage nope --version 2 --weight 10", 2, &["nope"]);
    stack.assert_refused("rollback --stage nope", 2, &["nope"]);
    stack.assert_refused("deploy --stage dev --version 99", 2, &["99"]);
    stack.assert_refused("canary --stage live --version 99 --weight 10", 2, &["99"]);
    stack.assert_refused(
        "deploy --stage dev --version $LATEST",
        2,
        &["$LATEST", "latest"],
    );
    stack.assert_refused(
        "canary --stage live --version $LATEST --weight 10",
        2,
        &["$LATEST", "latest"],
    );
    stack.assert_refused("deploy --stage dev --version two", 2, &["two", "version"]);
}

#[test]
fn a_malformed_environments_file_is_refused_naming_the_file() {
    let stack = Stack::new("bad-environments");
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
        let dir = stack
            .scratch
            .path()
            .join(format!("env-{}", what.replace(' ', "-")));
        support::copy_dir(&stack.environments, &dir);
        edit(&dir);
        let before = stack.all_aliases();
        for args in [
            &["deploy", "--stage", "dev", "--version", "2"][..],
            &[
                "canary",
                "--stage",
                "live",
                "--version",
                "2",
                "--weight",
                "10",
                "--bake",
                "1s",
            ][..],
        ] {
            let run = stack.promote_in(&dir, args);
            assert_eq!(
                run.code(),
                2,
                "{what}: `promote {}`: {run:?}",
                args.join(" ")
            );
            assert!(
                run.stderr.contains(mention),
                "{what}: the error does not mention {mention:?}:\n{}",
                run.stderr
            );
        }
        assert_eq!(stack.all_aliases(), before, "{what}: an alias changed");
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
