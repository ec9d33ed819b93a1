//! The generated host side of `wit/reclaimer.wit`: one `bindgen!` for the one world.
//!
//! `wasi:http` and `wasi:io` types come from wasmtime-wasi(-http) so that their host
//! implementations link against the same types.

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
