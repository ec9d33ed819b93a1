//! `reclaim-componentize IN.wasm OUT.wasm [--adapter NAME=ADAPTER.wasm]`
//!
//! Turns a core module into a component. `cargo build --target wasm32-wasip2` emits components
//! directly; this is for the fallback path (Debian's Rust building `wasm32-unknown-unknown`),
//! whose output is a core module carrying wit-bindgen's component-type section. Modules built
//! for wasip1 need the preview1 adapter, given with `--adapter`.

use anyhow::{bail, Context, Result};
use std::process::ExitCode;
use wit_component::ComponentEncoder;

fn run(args: &[String]) -> Result<()> {
    let mut positional = Vec::new();
    let mut adapters = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--adapter" {
            let spec = iter.next().context("--adapter needs NAME=PATH")?;
            let (name, path) = spec.split_once('=').context("--adapter needs NAME=PATH")?;
            let bytes = std::fs::read(path).with_context(|| format!("reading adapter {path}"))?;
            adapters.push((name.to_owned(), bytes));
        } else {
            positional.push(arg.as_str());
        }
    }
    let [input, output] = positional.as_slice() else {
        bail!("usage: reclaim-componentize IN.wasm OUT.wasm [--adapter NAME=ADAPTER.wasm]");
    };
    let module = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let mut encoder = ComponentEncoder::default();
    encoder
        .module(&module)
        .with_context(|| format!("{input} is not a core module with a component-type section"))?
        .validate(true);
    for (name, bytes) in &adapters {
        encoder
            .adapter(name, bytes)
            .with_context(|| format!("adapter {name}"))?;
    }
    let component = encoder.encode().context("encoding the component")?;
    std::fs::write(output, component).with_context(|| format!("writing {output}"))?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reclaim-componentize: {e:#}");
            ExitCode::FAILURE
        }
    }
}
