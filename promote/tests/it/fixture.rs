//! The moto fixture itself: the stack `tools/seed.py` creates is the one Terraform and
//! CONTRACTS.md, "The seed fixture", describe, so the other integration tests start from a
//! faithful stack.

use crate::support;

use support::Stack;

#[test]
fn seeded_stack_has_versions_with_build_stamps_and_every_alias_at_version_1() {
    let stack = Stack::new("fixture");
    assert_eq!(stack.seeded.versions(), ["1", "2", "3"]);
    let versions = stack.versions();
    assert_eq!(versions.len(), 3, "{versions:?}");
    for (i, (v, description)) in versions.iter().enumerate() {
        assert_eq!(v, &(i + 1).to_string());
        let parts: Vec<&str> = description.split(' ').collect();
        assert_eq!(parts.len(), 3, "description {description:?}");
        assert_eq!(parts[0], "app");
        assert_eq!(parts[1], format!("0.1.{i}"));
        assert!(
            parts[2].len() == 40 && parts[2].chars().all(|c| c.is_ascii_hexdigit()),
            "sha in {description:?}"
        );
    }
    for stage in ["dev", "test", "live"] {
        let alias = stack.alias(stage);
        assert_eq!(alias.version, "1", "{stage}: {alias:?}");
        assert!(alias.weights.is_empty(), "{stage}: {alias:?}");
        assert_eq!(stack.seeded.alarms(stage).len(), 4, "{stage}");
    }
}

#[test]
fn moto_reset_api_empties_the_emulator() {
    let stack = Stack::new("fixture-reset");
    stack.moto.reset();
    let err = stack.block_on(
        stack
            .lambda
            .get_alias()
            .function_name("app")
            .name("dev")
            .send(),
    );
    assert!(err.is_err(), "alias still there after reset: {err:?}");
}
