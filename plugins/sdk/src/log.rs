//! Logging into the host's trace; the host tags each line with the plugin id.
//!
//! Never log a secret or a token: the host keeps secrets out of its own logs, but it cannot
//! tell a secret from any other text a plugin writes.

use crate::bindings::reclaim::plugin::log::{log, Level};

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn error(message: &str) {
    log(Level::Error, message);
}
