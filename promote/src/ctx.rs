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
    /// The function whose alias the commands move: the project's first, or in a release of
    /// several functions, each in turn (one `Ctx` per function, over its own cloud).
    pub function: &'a str,
}
