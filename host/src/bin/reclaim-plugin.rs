//! `reclaim-plugin check PATH [--request FILE]`: the plugin author's check, standalone, so it
//! works before (and without) the full `reclaim` CLI. `reclaim plugin check` runs the same code
//! ([`reclaim_host::check`]).
//!
//! `reclaim-plugin precompile [--target TRIPLE] SRC OUT`: the deployment step that compiles
//! every plugin under `SRC` ahead of time for the machine that will run it (Lambda:
//! `aarch64-unknown-linux-gnu`) into `OUT`, which a host with `precompiled_only` loads
//! ([`reclaim_host::precompile`]).
//!
//! Exit status: 0 when the check passes (or everything was precompiled), 1 when it runs but
//! fails (warnings or a dry-run error), 2 when the plugin cannot be loaded or compiled.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reclaim_host::HostConfig;

#[derive(Parser, Debug)]
#[command(name = "reclaim-plugin", about = "Check Reclaim reclamation plugins")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the world and manifest, print describe(), and run reclaim with dry-run.
    Check {
        /// A plugin directory (with reclaim-plugin.toml) or a component .wasm file.
        path: PathBuf,
        /// A request JSON file (kebab-case fields as in the WIT); dry-run is forced on.
        #[arg(long)]
        request: Option<PathBuf>,
        /// Let the plugin reach loopback/private addresses (for a local fake vendor).
        #[arg(long)]
        allow_private_addresses: bool,
        /// Print the report as JSON-ish debug output instead of the table.
        #[arg(long)]
        verbose: bool,
    },
    /// Compile every plugin directory under SRC ahead of time into OUT (manifest, component
    /// and `<component>.cwasm`), with the engine settings the hosts use at run time.
    Precompile {
        /// Target triple of the machine that will load them; default this one. Lambda on
        /// Graviton: aarch64-unknown-linux-gnu.
        #[arg(long)]
        target: Option<String>,
        /// A plugins directory: one subdirectory per plugin, as plugins/build.sh lays them out.
        src: PathBuf,
        /// Where to write the precompiled plugins directory.
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Precompile { target, src, out } => {
            let target_name = target
                .clone()
                .unwrap_or_else(reclaim_host::precompile::host_target);
            match reclaim_host::precompile::precompile_dir(
                &HostConfig::default(),
                target.as_deref(),
                &src,
                &out,
            ) {
                Ok(done) => {
                    for p in done {
                        println!(
                            "{:<20} {:>9} bytes  {:>7.1} ms  {}",
                            p.id,
                            p.bytes,
                            p.compile_time.as_secs_f64() * 1e3,
                            p.artifact.display()
                        );
                    }
                    println!("precompiled for {target_name} into {}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Check {
            path,
            request,
            allow_private_addresses,
            verbose,
        } => {
            let request = match request.map(std::fs::read_to_string).transpose() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot read the request file: {e}");
                    return ExitCode::from(2);
                }
            };
            let cfg = HostConfig {
                allow_private_addresses,
                ..HostConfig::default()
            };
            match reclaim_host::check::check_with(&path, request.as_deref(), cfg) {
                Ok(report) => {
                    if verbose {
                        println!("{report:#?}");
                    }
                    println!("{report}");
                    if report.passed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
