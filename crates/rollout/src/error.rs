//! What is wrong with an `environments/` directory. Every error names the file, the field
//! (as a path such as `strategy.steps[1].weight`) and what is wrong, because the person
//! reading it is about to open that file.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{dir}: {message}")]
    Layout { dir: PathBuf, message: String },
    #[error("unknown stage `{name}`; the stages in {dir} are: {}", known.join(", "))]
    UnknownStage {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
}

impl ConfigError {
    /// The file (or directory) the problem is in.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Io { path, .. }
            | ConfigError::Field { path, .. }
            | ConfigError::File { path, .. } => path,
            ConfigError::Layout { dir, .. } | ConfigError::UnknownStage { dir, .. } => dir,
        }
    }

    /// The field at fault, as a dotted path, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

pub(crate) fn field(
    path: &Path,
    field: impl Into<String>,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError::Field {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}
