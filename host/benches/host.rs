//! Plugin host benchmark (not a test): in one run, the cost of a fresh-instance call through
//! our host, the bare-wasmtime floor for the same work, loading precompiled, compiling, and
//! the same work as a native Rust function.
//!
//! Run: `cargo bench -p reclaim-host --bench host` (builds the test guests first).
//! Prints a table and writes it to `$CARGO_TARGET_DIR/reclaim-host-bench.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use reclaim_host::{
    AppliesTo, HostConfig, Justification, LoadSource, PluginHost, PluginInfo, Requirement,
};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

mod floor {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    // The same world, synchronous, for the bare-wasmtime floor.
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "reclaim:plugin/reclaimer",
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

struct Stats {
    median: Duration,
    p99: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    Stats {
        median: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
        n,
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The native equivalent of the guest's `describe()`: build the same answer.
#[inline(never)]
fn native_describe() -> PluginInfo {
    PluginInfo {
        id: "hostile".into(),
        name: "Hostile test guest".into(),
        version: "0.1.0".into(),
        vendor: "Reclaim tests".into(),
        applies_to: vec![AppliesTo::Subscription, AppliesTo::InstalledSoftware],
        justifications: vec![Justification::Unused, Justification::LowUsage],
        config_keys: vec![Requirement {
            name: "greeting".into(),
            description: "echoed by the `config` behaviour".into(),
            required: false,
        }],
        secrets: vec![Requirement {
            name: "api-token".into(),
            description: "read by the `secret:` behaviour".into(),
            required: false,
        }],
    }
}

fn bare_floor(wasm: &[u8], pool: PoolingAllocationConfig) -> Stats {
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).unwrap();
    let component = Component::new(&engine, wasm).unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let pre = floor::ReclaimerPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let run = || {
        let mut store = Store::new(&engine, ());
        let inst = pre.instantiate(&mut store).unwrap();
        black_box(inst.call_describe(&mut store).unwrap());
    };
    for _ in 0..WARMUP {
        run();
    }
    stats(
        (0..CALLS)
            .map(|_| {
                let t = Instant::now();
                run();
                t.elapsed()
            })
            .collect(),
    )
}

const CALLS: usize = 5_000;
const WARMUP: usize = 500;

fn main() {
    let wasm_path = common::guests().hostile.clone();
    let wasm = std::fs::read(&wasm_path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let dir = common::plugin_dir(tmp.path(), "hostile", &wasm_path, "id = \"hostile\"\n");
    let cfg = HostConfig {
        cache_dir: Some(cache.clone()),
        ..HostConfig::default()
    };

    // --- compile from bytes (our engine config) ---
    let host = PluginHost::new(cfg.clone()).unwrap();
    let compile: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            black_box(Component::new(host.engine(), &wasm).unwrap());
            t.elapsed()
        })
        .collect();
    let compile = stats(compile);

    // --- load: first compiles and fills the cache, then precompiled loads ---
    let first = host.load_dir_report(&dir).unwrap();
    assert_eq!(first.source, LoadSource::Compiled);
    let mut cached_loads = Vec::new();
    let mut full_loads = Vec::new();
    for _ in 0..50 {
        let h = PluginHost::new(cfg.clone()).unwrap();
        let t = Instant::now();
        let r = h.load_dir_report(&dir).unwrap();
        full_loads.push(t.elapsed());
        assert_eq!(r.source, LoadSource::Cache);
        cached_loads.push(r.load_time);
    }
    let cached_loads = stats(cached_loads);
    let full_loads = stats(full_loads);
    let cwasm = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    let raw_deser: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            #[allow(unsafe_code)]
            // SAFETY: the file was just written by our host's cache from this engine's config.
            let c = unsafe { Component::deserialize_file(host.engine(), &cwasm) }.unwrap();
            let d = t.elapsed();
            black_box(c);
            d
        })
        .collect();
    let raw_deser = stats(raw_deser);

    // --- fresh-instance call through our host ---
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ours = rt.block_on(async {
        for _ in 0..WARMUP {
            host.describe("hostile").await.unwrap();
        }
        let mut v = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let t = Instant::now();
            black_box(host.describe("hostile").await.unwrap());
            v.push(t.elapsed());
        }
        v
    });
    let ours = stats(ours);

    // --- the floor: bare wasmtime, pooling, sync, no limits, no WASI context, no policy ---
    // Once with wasmtime's default pool settings, once with the memory-reset tuning our host
    // uses (so the difference to our host is only our policy).
    let floor_default = bare_floor(&wasm, PoolingAllocationConfig::default());
    let mut tuned = PoolingAllocationConfig::default();
    tuned
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(4 * 1024 * 1024)
        .table_keep_resident(64 * 1024);
    let floor = bare_floor(&wasm, tuned);

    // --- native ---
    let batch = 1_000;
    let native: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(native_describe());
            }
            t.elapsed() / batch
        })
        .collect();
    let native = stats(native);

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let report = format!(
        "| measurement | median | p99 | n |\n\
         |---|---|---|---|\n\
         | fresh instance + `describe()` through `PluginHost` (all limits on) | {} | {} | {} |\n\
         | bare wasmtime floor: `InstancePre::instantiate` + `describe()`, pooling tuned as ours, no policy | {} | {} | {} |\n\
         | bare wasmtime floor, wasmtime's default pooling settings | {} | {} | {} |\n\
         | native Rust function building the same answer | {} | {} | {} |\n\
         | precompiled load: cache key (SHA-256) + `deserialize_file` | {} | {} | {} |\n\
         | `Component::deserialize_file` alone | {} | {} | {} |\n\
         | whole `load_dir` from cache (manifest, deserialize, link check, `describe()`) | {} | {} | {} |\n\
         | compile from bytes (`Component::new`, {} KiB component) | {} | {} | {} |\n\
         \n\
         ratios: host / tuned floor = {:.2}x (target ≤ 2x); host / default floor = {:.2}x; host / native = {:.0}x; \
         compile / precompiled load = {:.0}x\n",
        us(ours.median), us(ours.p99), ours.n,
        us(floor.median), us(floor.p99), floor.n,
        us(floor_default.median), us(floor_default.p99), floor_default.n,
        us(native.median), us(native.p99), native.n,
        us(cached_loads.median), us(cached_loads.p99), cached_loads.n,
        us(raw_deser.median), us(raw_deser.p99), raw_deser.n,
        ms(full_loads.median), ms(full_loads.p99), full_loads.n,
        wasm.len() / 1024, ms(compile.median), ms(compile.p99), compile.n,
        ratio(ours.median, floor.median),
        ratio(ours.median, floor_default.median),
        ratio(ours.median, native.median),
        ratio(compile.median, cached_loads.median),
    );
    println!("{report}");
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("target"))
        .join("reclaim-host-bench.md");
    if std::fs::write(&out, &report).is_ok() {
        println!("written to {}", out.display());
    }
}
