//! Plugin hosts side by side (benchmark, not a test): the same `describe()` answer through our
//! `PluginHost` (fresh instance, every limit on), through bare wasmtime with the same pool
//! tuning and no policy (the floor), and through Extism 1.30 with a fresh plugin instance per
//! call and with one reused instance.
//!
//! Run: `cd bench/plugin-hosts && cargo bench`. Builds both guests from source first. Prints the
//! tables and writes them to `$CARGO_TARGET_DIR/reclaim-plugin-hosts-bench.md`.
//!
//! The machine this runs on is shared, so the contenders are measured in interleaved rounds
//! (each round runs every contender once, in a shuffled order): a burst of load from elsewhere
//! then lands on all of them instead of on whichever happened to run at the time, and the
//! ratios stay meaningful even when the absolute numbers move. Whole runs still shift
//! together by up to ~1.6x from one process to the next on a shared 2-vCPU machine, so compare
//! rows of one run, not rows of different runs.
//!
//! A second table walks from the floor to our host one difference at a time (async calls, our
//! engine settings, real WASI imports, our policy), so the distance between the two is
//! accounted for by the same run. `RECLAIM_BENCH_ONLY=ours,floor` runs only the named
//! contenders (for `perf record`, or a quick comparison).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use extism::convert::Json;
use reclaim_host::{HostConfig, PluginHost, PluginInfo};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

mod floor {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    // The plugin world, synchronous, for the bare-wasmtime floor.
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "reclaim:plugin/reclaimer",
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

mod floor_async {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]
    // The same world with async exports, as our host calls it, for the breakdown steps.
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "reclaim:plugin/reclaimer",
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// Store data for the breakdown step with real WASI and `wasi:http`: an empty context, as
/// our host gives, without its policy (limiter, deadlines, grants, log capture).
struct WasiOnly {
    table: wasmtime::component::ResourceTable,
    wasi: wasmtime_wasi::WasiCtx,
    http: wasmtime_wasi_http::WasiHttpCtx,
}

impl wasmtime_wasi::WasiView for WasiOnly {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for WasiOnly {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

// `describe` calls neither of our own imports; they are linked so the import set is ours.
impl floor_async::reclaim::plugin::log::Host for WasiOnly {
    fn log(&mut self, _level: floor_async::reclaim::plugin::log::Level, _message: String) {}
}

impl floor_async::reclaim::plugin::config::Host for WasiOnly {
    fn get(&mut self, _key: String) -> Option<String> {
        None
    }

    fn secret(&mut self, name: String) -> Result<String, String> {
        Err(name)
    }
}

/// Our engine interrupts at every epoch tick unless told otherwise: far enough not to.
const EPOCH_FAR: u64 = 1 << 40;

/// Calls per contender per round, rounds, and untimed calls before the first round.
const PER_ROUND: usize = 50;
const ROUNDS: usize = 100;
const WARMUP: usize = 300;

/// Where this binary was built (`<target>/release/deps/`), so the guest and the report land
/// next to it even when the binary is run by hand, e.g. under `perf record`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Cargo's variables for this build must not leak into the guests' builds.
fn clean_cargo(cmd: &mut Command) -> &mut Command {
    for var in [
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The host's hostile test guest (a component), built by the host's own script.
fn build_hostile() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host/tests/build-guests.sh");
    let out = clean_cargo(Command::new("bash").arg(&script))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the host's test guests failed"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(stdout.lines().last().unwrap().trim()).join("hostile.wasm")
}

/// The Extism guest (a core module), built from `guest/`.
fn build_extism_guest() -> PathBuf {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest");
    let target = target_dir().join("extism-guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = clean_cargo(&mut Command::new(cargo))
        .args(["build", "--quiet", "--release", "--locked"])
        .args(["--target", "wasm32-unknown-unknown"])
        .arg("--manifest-path")
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "building the Extism guest failed (rustup target add wasm32-unknown-unknown?)"
    );
    target.join("wasm32-unknown-unknown/release/describe_extism.wasm")
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

/// Times `n` calls one by one.
fn timed(n: usize, mut call: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            call();
            t.elapsed()
        })
        .collect()
}

/// One contender: runs `n` timed calls and returns their times.
type Contender<'a> = (&'static str, Box<dyn FnMut(usize) -> Vec<Duration> + 'a>);

/// The expected answer, so every contender is checked to carry the same content.
fn expected(info: &PluginInfo) {
    assert_eq!(info.id, "hostile");
    assert_eq!(info.applies_to.len(), 2);
    assert_eq!(info.justifications.len(), 2);
    assert_eq!(info.config_keys[0].name, "greeting");
    assert_eq!(info.secrets[0].name, "api-token");
}

/// The order of the contenders in each round: shuffled (fixed seed, so runs compare), not
/// rotated, because under a rotation each contender always follows the same other one, and
/// whatever that one leaves behind in the caches would land on it alone.
fn round_orders(rounds: usize, contenders: usize) -> Vec<Vec<usize>> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..rounds)
        .map(|_| {
            let mut order: Vec<usize> = (0..contenders).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            order
        })
        .collect()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cores} × {cpu}, Linux {kernel}")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let hostile_path = build_hostile();
    let hostile = std::fs::read(&hostile_path).unwrap();
    let extism_wasm = std::fs::read(build_extism_guest()).unwrap();

    // --- ours: fresh instance per call, every limit on ---
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&hostile_path, dir.join("plugin.wasm")).unwrap();
    std::fs::write(dir.join("reclaim-plugin.toml"), "id = \"hostile\"\n").unwrap();
    let host = PluginHost::new(HostConfig::default()).unwrap();
    host.load_dir(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    expected(&rt.block_on(host.describe("hostile")).unwrap());

    // --- bare wasmtime floor: pooling tuned as ours, sync, no WASI, no limits, no policy ---
    let mut pool = PoolingAllocationConfig::default();
    pool.pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(4 * 1024 * 1024)
        .table_keep_resident(64 * 1024);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).unwrap();
    let component = Component::new(&engine, &hostile).unwrap();
    let mut linker = Linker::<()>::new(&engine);
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let pre = floor::ReclaimerPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let floor_call = || {
        let mut store = Store::new(&engine, ());
        let inst = pre.instantiate(&mut store).unwrap();
        inst.call_describe(&mut store).unwrap()
    };
    assert_eq!(floor_call().id, "hostile");

    // --- breakdown: from the floor to our host, one difference at a time ---
    // (a) async instantiate and call (each runs on a fiber), same engine, trapping imports.
    let async_pre =
        floor_async::ReclaimerPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    // (b) and our engine (epoch interruption, our pool sizes).
    let ours_component = Component::new(host.engine(), &hostile).unwrap();
    let mut ours_linker = Linker::<()>::new(host.engine());
    ours_linker
        .define_unknown_imports_as_traps(&ours_component)
        .unwrap();
    let engine_pre =
        floor_async::ReclaimerPre::new(ours_linker.instantiate_pre(&ours_component).unwrap())
            .unwrap();
    // (c) and real WASI + wasi:http imports with a fresh empty context per call.
    let mut wasi_linker = Linker::<WasiOnly>::new(host.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut wasi_linker).unwrap();
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut wasi_linker).unwrap();
    floor_async::reclaim::plugin::log::add_to_linker::<_, HasSelf<WasiOnly>>(
        &mut wasi_linker,
        |s| s,
    )
    .unwrap();
    floor_async::reclaim::plugin::config::add_to_linker::<_, HasSelf<WasiOnly>>(
        &mut wasi_linker,
        |s| s,
    )
    .unwrap();
    let wasi_pre =
        floor_async::ReclaimerPre::new(wasi_linker.instantiate_pre(&ours_component).unwrap())
            .unwrap();
    let wasi_state = || WasiOnly {
        table: wasmtime::component::ResourceTable::new(),
        wasi: wasmtime_wasi::WasiCtx::builder().build(),
        http: wasmtime_wasi_http::WasiHttpCtx::new(),
    };
    let timed_async = |n: usize, step: u8| {
        rt.block_on(async {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let info = match step {
                    b'a' => {
                        let mut store = Store::new(&engine, ());
                        let inst = async_pre.instantiate_async(&mut store).await.unwrap();
                        inst.call_describe(&mut store).await.unwrap()
                    }
                    b'b' => {
                        let mut store = Store::new(host.engine(), ());
                        store.set_epoch_deadline(EPOCH_FAR);
                        let inst = engine_pre.instantiate_async(&mut store).await.unwrap();
                        inst.call_describe(&mut store).await.unwrap()
                    }
                    _ => {
                        let mut store = Store::new(host.engine(), wasi_state());
                        store.set_epoch_deadline(EPOCH_FAR);
                        let inst = wasi_pre.instantiate_async(&mut store).await.unwrap();
                        inst.call_describe(&mut store).await.unwrap()
                    }
                };
                black_box(info);
                v.push(t.elapsed());
            }
            v
        })
    };

    // --- Extism: compiled once, as a user of `CompiledPlugin` would ---
    let compiled = extism::CompiledPlugin::new(
        extism::PluginBuilder::new(extism_wasm.clone())
            .with_wasi(false)
            .with_cache_disabled(),
    )
    .unwrap();
    let mut reused = extism::Plugin::new_from_compiled(&compiled).unwrap();
    let Json(info) = reused.call::<(), Json<PluginInfo>>("describe", ()).unwrap();
    expected(&info);

    let mut contenders: Vec<Contender> = vec![
        (
            "ours",
            Box::new(|n| {
                rt.block_on(async {
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        let t = Instant::now();
                        black_box(host.describe("hostile").await.unwrap());
                        v.push(t.elapsed());
                    }
                    v
                })
            }),
        ),
        (
            "floor",
            Box::new(|n| {
                timed(n, || {
                    black_box(floor_call());
                })
            }),
        ),
        ("step-a-async", Box::new(|n| timed_async(n, b'a'))),
        ("step-b-engine", Box::new(|n| timed_async(n, b'b'))),
        ("step-c-wasi", Box::new(|n| timed_async(n, b'c'))),
        (
            "extism-fresh",
            Box::new(|n| {
                timed(n, || {
                    let mut p = extism::Plugin::new_from_compiled(&compiled).unwrap();
                    let Json(info) = p.call::<(), Json<PluginInfo>>("describe", ()).unwrap();
                    black_box(info);
                })
            }),
        ),
        (
            "extism-reused",
            Box::new(|n| {
                timed(n, || {
                    let Json(info) = reused.call::<(), Json<PluginInfo>>("describe", ()).unwrap();
                    black_box(info);
                })
            }),
        ),
    ];

    // For profiling or comparing a few contenders: RECLAIM_BENCH_ONLY=ours,floor runs just
    // those (twice as many rounds) and prints one line each instead of the table.
    if let Ok(only) = std::env::var("RECLAIM_BENCH_ONLY") {
        let names: Vec<&str> = only.split(',').collect();
        contenders.retain(|(n, _)| names.contains(n));
        let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
        for (_, run) in contenders.iter_mut() {
            black_box(run(WARMUP));
        }
        for order in round_orders(ROUNDS * 2, contenders.len()) {
            for i in order {
                samples[i].extend((contenders[i].1)(PER_ROUND));
            }
        }
        for ((name, _), v) in contenders.iter().zip(samples) {
            let s = stats(v);
            println!(
                "{name}: median {}, p99 {}, n {}",
                us(s.median),
                us(s.p99),
                s.n
            );
        }
        return;
    }

    let load_before = loadavg();
    for (_, run) in contenders.iter_mut() {
        black_box(run(WARMUP));
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for order in round_orders(ROUNDS, contenders.len()) {
        for i in order {
            samples[i].extend((contenders[i].1)(PER_ROUND));
        }
    }
    let load_after = loadavg();
    drop(contenders);

    let mut by_name = samples
        .into_iter()
        .map(stats)
        .collect::<Vec<_>>()
        .into_iter();
    let (ours, floor, step_a, step_b, step_c, extism_fresh, extism_reused) = (
        by_name.next().unwrap(),
        by_name.next().unwrap(),
        by_name.next().unwrap(),
        by_name.next().unwrap(),
        by_name.next().unwrap(),
        by_name.next().unwrap(),
        by_name.next().unwrap(),
    );
    let ratio = |a: &Stats, b: &Stats| a.median.as_secs_f64() / b.median.as_secs_f64();
    let row = |what: &str, s: &Stats| {
        format!("| {what} | {} | {} | {} |\n", us(s.median), us(s.p99), s.n)
    };
    let mut report = String::from("| measurement | median | p99 | n |\n|---|---|---|---|\n");
    report += &row(
        "ours: `PluginHost::describe`, fresh instance, all limits on",
        &ours,
    );
    report += &row(
        "bare wasmtime 48 floor: `InstancePre::instantiate` + `describe()`, pool tuned as ours, no policy",
        &floor,
    );
    report += &row(
        "Extism 1.30: `Plugin::new_from_compiled` + `call(\"describe\")` (fresh instance)",
        &extism_fresh,
    );
    report += &row(
        "Extism 1.30: `call(\"describe\")` on one reused `Plugin`",
        &extism_reused,
    );
    report += "\nFrom the floor to our host, one difference at a time (same run):\n\n\
               | step | median | p99 | n |\n|---|---|---|---|\n";
    report += &row("bare floor (as above): sync, trapping imports", &floor);
    report += &row(
        "(a) + async instantiate and call (fibers), as our host must for `wasi:http`",
        &step_a,
    );
    report += &row(
        "(b) + our engine config (epoch interruption, our pool sizes)",
        &step_b,
    );
    report += &row(
        "(c) + real WASI and `wasi:http` imports, an empty WASI context built for every call",
        &step_c,
    );
    report += &row(
        "ours: + policy (limiter, deadlines, permit, log capture, answer check), WASI context built at first use",
        &ours,
    );
    report += &format!(
        "\nratios (medians): ours / floor = {:.2}x (target ≤ 1.1x); ours / (a) = {:.2}x; \
         ours / Extism reused = {:.2}x (target ≤ 0.5x); floor / Extism reused = {:.2}x; \
         Extism fresh / ours = {:.1}x\n\
         component {} KiB, Extism module {} KiB; {ROUNDS} interleaved rounds of {PER_ROUND} calls \
         per contender after {WARMUP} warm-up calls each\n\
         machine: {}; load average (1, 5, 15 min) before: {load_before}, after: {load_after}\n",
        ratio(&ours, &floor),
        ratio(&ours, &step_a),
        ratio(&ours, &extism_reused),
        ratio(&floor, &extism_reused),
        ratio(&extism_fresh, &ours),
        hostile.len() / 1024,
        extism_wasm.len() / 1024,
        machine(),
    );
    println!("{report}");
    let out = target_dir().join("reclaim-plugin-hosts-bench.md");
    if std::fs::write(&out, &report).is_ok() {
        println!("written to {}", out.display());
    }
}
