//! What every command works with: the cloud (or its stand-in), the loaded environments, the
//! output and the interrupt flag. Its own module so that the read-only commands and the
//! evidence sources need none of the reconciler's.

use rollout::Environments;

use crate::cli::interrupt::Interrupt;
use crate::cli::ui::Ui;

pub struct Ctx<'a, C> {
    pub cloud: &'a C,
    pub env: &'a Environments,
    pub ui: &'a Ui,
    pub interrupt: &'a Interrupt,
}
