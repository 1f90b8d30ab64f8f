//! Two runs on one stage at once (and what a failed read leaves before the first write), against the in-memory stand-in, which checks RevisionIds
//! as Lambda does (moto does not: the same races over HTTP, through a proxy that checks
//! them, are in tests/it_faults.rs). Both runs share one [`Fake`](crate::cloud::fake::Fake) on one
//! runtime; with `interleave` set, every call yields first, so the runs alternate call by
//! call and both read the alias before either writes. Time is virtual.

use std::time::Duration;

use crate::cli::exit;
use crate::cli::ui::{Format, Ui};
use crate::cloud::aws::AliasWrite;
use crate::cloud::fake::{Fake, World, ver, view};
use crate::ctx::Ctx;
use crate::reconcile::commands::{self, CanaryOpts, DeployOpts};

fn code(r: &anyhow::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => exit::code_of(e),
    }
}

fn message(r: &anyhow::Result<()>) -> String {
    r.as_ref()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default()
}

/// The whole plan of live for `version`. The bakes are zero: the race is decided at the
/// first write, and the winner then walks its plan without waiting.
fn plan(version: u64, bake: Duration) -> CanaryOpts {
    CanaryOpts {
        stage: "live".into(),
        version: Some(ver(version)),
        weight: None,
        bake: Some(bake),
        poll: Some(Duration::from_millis(20)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        dry_run: false,
        evidence: Default::default(),
    }
}

/// A second context on the same stand-in, with its own output.
fn other<'a>(w: &'a World, ui: &'a Ui) -> Ctx<'a, Fake> {
    Ctx { ui, ..w.ctx() }
}

/// Which of the two results won (exit 0) and which lost (exit 5), as (winner, loser) indices.
fn one_winner(a: &anyhow::Result<()>, b: &anyhow::Result<()>) -> (usize, usize) {
    match (code(a), code(b)) {
        (0, 5) => (0, 1),
        (5, 0) => (1, 0),
        codes => panic!(
            "want one run exiting 0 and the other 5, got {codes:?}: {} / {}",
            message(a),
            message(b)
        ),
    }
}

/// Whether an applied write gives `version` any traffic.
fn serves(w: &AliasWrite, version: u64) -> bool {
    w.version == ver(version) || w.split.is_some_and(|s| s.version == ver(version))
}

#[tokio::test(start_paused = true)]
async fn two_canaries_at_once_one_wins_and_the_other_exits_5_having_written_nothing() {
    let w = World::new(Format::Table);
    w.fake.state.borrow_mut().interleave = true;
    let ui_b = Ui::capture(Format::Table);
    let (ctx_a, ctx_b) = (w.ctx(), other(&w, &ui_b));
    let (a, b) = tokio::join!(
        commands::canary(&ctx_a, plan(2, Duration::ZERO)),
        commands::canary(&ctx_b, plan(3, Duration::ZERO)),
    );
    let (won, lost) = one_winner(&a, &b);
    let (winner, loser) = ([2, 3][won], [2, 3][lost]);
    let loser_message = message([&a, &b][lost]);
    assert!(loser_message.contains("someone else"), "{loser_message}");
    // Both runs really raced: each sent its first write on the RevisionId both had read.
    let updates = w.fake.updates();
    let first_rev = &updates[0].2;
    assert!(
        updates
            .iter()
            .any(|(_, u, rev)| serves(u, loser) && rev == first_rev),
        "the loser never sent a write on the shared read: {updates:?}"
    );
    let applied = w.fake.applied();
    assert!(
        applied.iter().all(|(_, u)| !serves(u, loser)),
        "a write of the loser was applied: {applied:?}"
    );
    assert_eq!(w.fake.alias("live").view, view(winner, None));
}

#[tokio::test(start_paused = true)]
async fn two_deploys_at_once_one_wins_and_the_other_exits_5_having_written_nothing() {
    let w = World::new(Format::Table);
    w.fake.state.borrow_mut().interleave = true;
    let ui_b = Ui::capture(Format::Table);
    let (ctx_a, ctx_b) = (w.ctx(), other(&w, &ui_b));
    let deploy = |v: u64| DeployOpts {
        stage: "test".into(),
        version: Some(ver(v)),
        allow_downgrade: false,
        retry: false,
        skip_upstream: None,
        bake: Some(Duration::ZERO),
        poll: None,
        dry_run: false,
        evidence: Default::default(),
    };
    let (a, b) = tokio::join!(
        commands::deploy(&ctx_a, deploy(2)),
        commands::deploy(&ctx_b, deploy(3)),
    );
    let (won, lost) = one_winner(&a, &b);
    let (winner, loser) = ([2, 3][won], [2, 3][lost]);
    let applied = w.fake.applied();
    assert!(
        applied.iter().all(|(_, u)| !serves(u, loser)),
        "a write of the loser was applied: {applied:?}"
    );
    assert_eq!(w.fake.alias("test").view, view(winner, None));
}

#[tokio::test(start_paused = true)]
async fn a_rollback_during_a_bake_wins_and_the_canary_exits_5_writing_nothing_more() {
    let w = World::new(Format::Table);
    w.fake.state.borrow_mut().interleave = true;
    let ui_b = Ui::capture(Format::Table);
    let (ctx_a, ctx_b) = (w.ctx(), other(&w, &ui_b));
    let fake = w.fake.clone();
    let rollback = async {
        // Once the canary's first split is applied, it is baking: the operator rolls back.
        while fake.applied().is_empty() {
            tokio::task::yield_now().await;
        }
        let r = commands::rollback(&ctx_b, "live", false, false).await;
        (r, fake.applied().len())
    };
    let (canary, (rolled, applied_by_then)) = tokio::join!(
        commands::canary(&ctx_a, plan(2, Duration::from_secs(600))),
        rollback
    );
    assert_eq!(code(&rolled), 0, "{}", message(&rolled));
    assert_eq!(code(&canary), 5, "{}", message(&canary));
    let applied = w.fake.applied();
    assert_eq!(
        applied.len(),
        applied_by_then,
        "the canary wrote after the rollback: {applied:?}"
    );
    assert_eq!(
        applied.len(),
        2,
        "the split, then the rollback: {applied:?}"
    );
    assert_eq!(applied[0].1.split, view(1, Some((2, "10"))).split);
    let live = w.fake.alias("live");
    assert_eq!(live.view, view(1, None));
    assert!(
        live.description.contains("rolled_back=2"),
        "{}",
        live.description
    );
}

/// A read that fails before the first write (here the pre-flight alarm read, after the
/// SDK's own retries) stops the run with nothing written, and says so and how to go on.
#[tokio::test(start_paused = true)]
async fn a_read_failing_before_the_first_write_says_nothing_changed_and_to_run_again() {
    let w = World::new(Format::Table);
    w.fake.state.borrow_mut().failing_alarm_reads = 1;
    let r = commands::canary(&w.ctx(), plan(2, Duration::ZERO)).await;
    assert_eq!(code(&r), exit::ERROR, "{}", message(&r));
    let m = message(&r);
    assert!(
        m.contains("stage live was not changed") && m.contains("run the command again"),
        "{m}"
    );
    assert!(w.fake.updates().is_empty());
    assert_eq!(w.fake.alias("live").view, view(1, None));
}
