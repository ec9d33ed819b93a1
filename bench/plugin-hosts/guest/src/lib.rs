//! The hostile test guest's `describe()` (host/tests/guests/hostile) as an Extism plugin: the
//! same record, field for field, so both hosts carry the same answer. Extism has no typed
//! records across the boundary, so it goes out as JSON in the WIT's kebab-case names, which
//! the benchmark parses into the host's own `PluginInfo`.

use extism_pdk::{plugin_fn, FnResult, Json};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
enum AppliesTo {
    Subscription,
    InstalledSoftware,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
enum Justification {
    Unused,
    LowUsage,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Requirement {
    name: String,
    description: String,
    required: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct PluginInfo {
    id: String,
    name: String,
    version: String,
    vendor: String,
    applies_to: Vec<AppliesTo>,
    justifications: Vec<Justification>,
    config_keys: Vec<Requirement>,
    secrets: Vec<Requirement>,
}

#[plugin_fn]
pub fn describe() -> FnResult<Json<PluginInfo>> {
    Ok(Json(PluginInfo {
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
    }))
}
