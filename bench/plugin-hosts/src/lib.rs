//! Nothing to link: this package exists for its benchmark, `benches/plugin_hosts.rs`.
