//! The `environments/` model under the name callers know: the data (`spec`), how it is read
//! (`load`) and the rules it is held to (`validate`), re-exported in one place.

pub use crate::error::ConfigError;
pub use crate::spec::*;
pub use crate::validate::{Schema, valid_stage_name};
