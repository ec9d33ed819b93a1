//! The generated host side of `wit/reclaimer.wit`: one `bindgen!` per world the host calls.
//!
//! `wasi:http` and `wasi:io` types come from wasmtime-wasi(-http) so that their host
//! implementations link against the same types. The usage-source world reuses the reclaimer
//! world's `types`, `log` and `config`, so one linker serves both and a component that exports
//! both worlds (`reclaimer-and-source`) is pre-instantiated once and called through either.

#![allow(missing_docs, missing_debug_implementations, clippy::all)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "reclaim:plugin/reclaimer",
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

/// The `usage-source` world: `describe-source` and `collect`.
pub mod source {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "reclaim:plugin/usage-source",
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "reclaim:plugin/types": super::reclaim::plugin::types,
            "reclaim:plugin/log": super::reclaim::plugin::log,
            "reclaim:plugin/config": super::reclaim::plugin::config,
        },
    });
}
