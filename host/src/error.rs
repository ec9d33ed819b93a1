//! Load-time errors. Call-time errors are [`crate::PluginError`].

use std::path::PathBuf;

use crate::types::PluginError;

/// Why the host could not start or could not load a plugin.
///
/// Loading happens at deploy or start-up, where an operator reads the message; the variants
/// say which file and what to fix. [`HostError::is_retryable`] tells the few that may pass.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is missing a field, has a bad value or an unknown key.
    #[error("manifest {}: {message}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file is not a valid WebAssembly component.
    #[error("{}: not a valid WebAssembly component: {message}", path.display())]
    InvalidComponent {
        /// The component file.
        path: PathBuf,
        /// The compiler's words.
        message: String,
    },
    /// The component is valid but implements neither the `reclaim:plugin/reclaimer` world nor
    /// the `usage-source` world (wrong exports, or imports the host does not grant).
    #[error("{}: does not match the reclaim:plugin/reclaimer@0.1.0 world (nor usage-source): {message}", path.display())]
    WorldMismatch {
        /// The component file.
        path: PathBuf,
        /// Which import or export does not fit.
        message: String,
    },
    /// `describe()` failed at load.
    #[error("{}: describe() failed: {source}", path.display())]
    Describe {
        /// The component file.
        path: PathBuf,
        /// How it failed.
        #[source]
        source: PluginError,
    },
    /// The manifest's id and the component's `describe().id` differ.
    #[error("{}: manifest id `{manifest}` differs from describe().id `{described}`", path.display())]
    IdMismatch {
        /// The plugin directory.
        path: PathBuf,
        /// Manifest's id.
        manifest: String,
        /// Component's id.
        described: String,
    },
    /// Two loaded plugins share an id.
    #[error("a plugin with id `{0}` is already loaded")]
    Duplicate(String),
    /// A request JSON (for `plugin check`) does not parse.
    #[error("request JSON: {0}")]
    Request(String),
    /// A precompiled artifact is missing, or was made for another target or engine
    /// configuration (see [`crate::precompile`]).
    #[error("{}: precompiled plugin refused: {message}", path.display())]
    Precompiled {
        /// The artifact file.
        path: PathBuf,
        /// What is wrong and how to make a fitting one.
        message: String,
    },
    /// The wasmtime engine or linker could not be set up.
    #[error("plugin engine: {0}")]
    Engine(String),
}

impl HostError {
    /// Whether trying the same load again may succeed (an I/O hiccup); everything else needs
    /// a change to a file or to the config.
    pub fn is_retryable(&self) -> bool {
        match self {
            HostError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            HostError::Describe { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}
