//! Guest-side helpers for Reclaim plugins.
//!
//! A plugin is a WebAssembly component for the `reclaim:plugin/reclaimer` world (see `wit/` at
//! the repository root). This crate holds the one set of generated bindings for that world so
//! that a plugin writes no glue of its own: it implements [`Guest`] and calls [`export!`] once.
//! Everything a plugin needs around the boundary is here too: [`http`] (blocking JSON over
//! `wasi:http/outgoing-handler`, the only network a plugin gets), [`oauth`] (client-credentials
//! tokens, renewed once when a vendor refuses one as expired), [`config`] (values and secrets the manifest grants, missing ones reported as
//! `misconfigured`), [`prices`] (a connector's price list, config key `prices`), [`error`] (vendor status codes mapped to transient/permanent/misconfigured)
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
pub mod prices;
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

/// The generated bindings for the `usage-source` world: a connector's `describe-source` and
/// `collect`. Every interface both worlds import (`types`, `log`, `config`, `wasi:*`) is the
/// one of [`bindings`], so the SDK's helpers serve connectors unchanged.
///
/// Only a crate that calls [`export_source!`] carries this world's exports into its component
/// (the export macro emits them), so a revocation plugin built with this SDK is not asked to
/// export `collect`, and a connector is not asked to export `reclaim`.
#[allow(unsafe_code, missing_debug_implementations, clippy::all)]
pub mod source_bindings {
    wit_bindgen::generate!({
        world: "usage-source",
        path: "../../wit",
        with: {
            "reclaim:plugin/types@0.1.0": crate::bindings::reclaim::plugin::types,
            "reclaim:plugin/log@0.1.0": crate::bindings::reclaim::plugin::log,
            "reclaim:plugin/config@0.1.0": crate::bindings::reclaim::plugin::config,
            "wasi:http/types@0.2.12": crate::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": crate::bindings::wasi::http::outgoing_handler,
            "wasi:io/error@0.2.12": crate::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::wasi::clocks::monotonic_clock,
        },
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_source",
        default_bindings_module: "reclaim_plugin_sdk::source_bindings",
        runtime_path: "reclaim_plugin_sdk::__wit_bindgen::rt",
    });
}

pub use source_bindings::export_source;
pub use source_bindings::exports::reclaim::plugin::collector::Guest as Collector;
pub use source_bindings::reclaim::plugin::usage_types::{
    Note, Page, PricePeriod, SourceInfo, UsageRow,
};

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
