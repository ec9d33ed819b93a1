//! Guest-side helpers for Reclaim plugins.
//!
//! A plugin is a WebAssembly component for the `reclaim:plugin/reclaimer` world (see `wit/` at
//! the repository root). This crate holds the one set of generated bindings for that world so
//! that a plugin writes no glue of its own: it implements [`Guest`] and calls [`export!`] once.
//! Everything a plugin needs around the boundary is here too: [`http`] (blocking JSON over
//! `wasi:http/outgoing-handler`, the only network a plugin gets), [`oauth`] (client-credentials
//! tokens, renewed once when a vendor refuses one as expired), [`config`] (values and secrets the manifest grants, missing ones reported as
//! `misconfigured`), [`error`] (vendor status codes mapped to transient/permanent/misconfigured)
//! and [`log`].
//!
//! ```ignore
//! use reclaim_plugin_sdk::{export, Guest, PluginInfo, Request, Outcome, Presence, PluginError};
//!
//! struct MyPlugin;
//! impl Guest for MyPlugin {
//!     fn describe() -> PluginInfo { /* ... */ }
//!     fn reclaim(req: Request) -> Result<Outcome, PluginError> { /* ... */ }
//!     fn verify(req: Request) -> Result<Presence, PluginError> { /* ... */ }
//! }
//! export!(MyPlugin);
//! ```

// Lets the generated `export!` macro name this crate the same way inside and outside it.
extern crate self as reclaim_plugin_sdk;

pub mod config;
pub mod error;
pub mod http;
pub mod log;
pub mod oauth;
pub mod url;

/// The generated bindings for the `reclaimer` world (and the wasi:http interfaces it imports).
///
/// Generated once here so that every plugin links the same types and the host sees one
/// consistent component type; plugins reach it through the re-exports below.
#[allow(unsafe_code, missing_debug_implementations, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "reclaimer",
        path: "../../wit",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "reclaim_plugin_sdk::bindings",
        runtime_path: "reclaim_plugin_sdk::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use bindings::export;
pub use bindings::reclaim::plugin::types::{
    AppliesTo, Justification, ManualTask, Outcome, PluginError, PluginInfo, Presence, Request,
    Requirement, Software, TransientError, User,
};
pub use bindings::Guest;

/// A [`Requirement`] in one line, for `describe()`.
pub fn requirement(name: &str, description: &str, required: bool) -> Requirement {
    Requirement {
        name: name.to_owned(),
        description: description.to_owned(),
        required,
    }
}

/// The user as a person would recognise them in a message: UPN, else email, else id.
pub fn user_label(user: &User) -> &str {
    user.upn
        .as_deref()
        .or(user.email.as_deref())
        .unwrap_or(&user.id)
}

/// Every justification, for plugins that do not care why a candidate exists.
pub fn all_justifications() -> Vec<Justification> {
    vec![
        Justification::LowUsage,
        Justification::Unused,
        Justification::Unallocated,
        Justification::Unlicensed,
        Justification::Restricted,
        Justification::Overlapping,
        Justification::Consolidation,
        Justification::Downgrade,
    ]
}
