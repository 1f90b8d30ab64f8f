//! The exit-code table against the typed exits, the help and CONTRACTS.md.

use super::*;

#[test]
fn every_typed_exit_is_in_the_table() {
    let all = [
        Exit::BadInput(String::new()),
        Exit::Refused(String::new()),
        Exit::RolledBack(String::new()),
        Exit::Conflict(String::new()),
        Exit::Held(String::new()),
        Exit::Interrupted(String::new()),
    ];
    for e in all {
        assert!(TABLE.iter().any(|c| c.code == e.code()), "{e:?}");
    }
    let codes: Vec<i32> = TABLE.iter().map(|c| c.code).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(codes, sorted, "codes in order, each once");
}

#[test]
fn read_only_commands_list_no_rollout_codes() {
    for cmd in ["status", "watch", "publish", "probe"] {
        let codes: Vec<i32> = codes_of(cmd).map(|c| c.code).collect();
        assert_eq!(codes, [0, 1, 2, 130], "{cmd}");
        let help = help_for(cmd);
        assert!(
            !help.contains("rolled back") && !help.contains("held"),
            "{help}"
        );
    }
    let canary: Vec<i32> = codes_of("canary").map(|c| c.code).collect();
    assert_eq!(canary, [0, 1, 2, 3, 4, 5, 6, 130]);
    let rollback: Vec<i32> = codes_of("rollback").map(|c| c.code).collect();
    assert_eq!(rollback, [0, 1, 2, 3, 5, 130]);
}

/// CONTRACTS.md copies the table; it must say what the code says.
#[test]
fn contracts_md_carries_the_table() {
    let contracts = include_str!("../../../CONTRACTS.md");
    let section = contracts
        .split("\n## Exit codes\n")
        .nth(1)
        .expect("CONTRACTS.md has an \"Exit codes\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let table = markdown();
    assert!(
        section.contains(&table),
        "CONTRACTS.md's exit-code table differs from promote/src/cli/exit.rs; the table in code is:\n\n{table}"
    );
}

#[test]
fn help_lines_fit_the_width() {
    for cmd in ALL {
        for line in help_for(cmd).lines() {
            assert!(line.chars().count() <= HELP_WIDTH, "{line}");
        }
    }
    for line in summary().lines() {
        assert!(line.chars().count() <= HELP_WIDTH, "{line}");
    }
}
