//! The workflow's [`Revoker`] port, implemented by running plugins: this is where a candidate
//! becomes a plugin [`Request`] (the only place) and a plugin's answer becomes the core's
//! [`RevocationResult`].
//!
//! ## Routing
//!
//! 1. The rule snapshot names a plugin (`rule.plugin`): that plugin, or a permanent error if it
//!    is not loaded (a misconfiguration a person must fix, not something to retry).
//! 2. Otherwise, among loaded plugins whose `describe()` lists the candidate's applies-to and
//!    justification, the first (in load order) whose manifest `products` / `publishers`
//!    patterns match the candidate's software; plugins with patterns are tried before
//!    catch-alls (no patterns), so `manual-task` can be the fallback without shadowing vendor
//!    plugins.
//! 3. No match: a permanent error saying so.
//!
//! Plugin errors map by [`PluginError::is_retryable`]: retryable ones (vendor transient,
//! deadline, host trouble) become `Transient` with the vendor's retry-after; everything else
//! (permanent, misconfigured, crash, OOM, malformed answer, unknown plugin) becomes `Permanent`.

use async_trait::async_trait;
use reclaim_workflow::event::{RevocationResult, VerifyResult};
use reclaim_workflow::model::{self as core, Candidate};
use reclaim_workflow::ports::Revoker;

use crate::{
    AppliesTo, Justification, Manifest, Outcome, PluginError, PluginHost, Presence, Request,
    Software, User,
};

/// A [`Revoker`] backed by a [`PluginHost`].
#[derive(Debug, Clone)]
pub struct PluginRevoker {
    host: PluginHost,
}

impl PluginRevoker {
    /// Routes through the plugins loaded in `host` (load them first).
    pub fn new(host: PluginHost) -> Self {
        PluginRevoker { host }
    }

    /// The host, e.g. to run `verify` for a pending removal.
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Which plugin handles this candidate, or why none does.
    pub fn route(&self, candidate: &Candidate) -> Result<String, String> {
        if let Some(id) = candidate.rule.plugin.as_deref().filter(|s| !s.is_empty()) {
            return if self.host.manifest(id).is_some() {
                Ok(id.to_string())
            } else {
                Err(format!(
                    "rule `{}` names plugin `{id}`, which is not loaded",
                    candidate.rule.name
                ))
            };
        }
        let applies_to = applies_to(candidate.applies_to);
        let justification = justification(candidate.justification);
        let mut catch_all = None;
        for info in self.host.plugins() {
            if !info.applies_to.contains(&applies_to)
                || !info.justifications.contains(&justification)
            {
                continue;
            }
            let Some(manifest) = self.host.manifest(&info.id) else {
                continue;
            };
            match software_match(&manifest, &candidate.software) {
                Some(true) => return Ok(info.id),
                Some(false) => {}
                None => {
                    catch_all.get_or_insert(info.id);
                }
            }
        }
        catch_all.ok_or_else(|| {
            format!(
                "no loaded plugin handles {} {} / {} ({})",
                applies_to_str(applies_to),
                candidate.software.publisher,
                candidate.software.product,
                justification_str(justification)
            )
        })
    }
}

/// The plugin request for a candidate; `idempotency_key` is the effect's key, stable across
/// retries of the same revocation.
pub fn request_for(candidate: &Candidate, idempotency_key: &str, dry_run: bool) -> Request {
    let user = candidate
        .user
        .as_ref()
        .map_or_else(User::default, |u| User {
            id: u.id.clone(),
            email: u.email().map(str::to_string),
            upn: u.upn.clone().filter(|s| !s.trim().is_empty()),
        });
    Request {
        candidate_id: candidate.id.clone(),
        idempotency_key: idempotency_key.to_string(),
        applies_to: applies_to(candidate.applies_to),
        user,
        software: Software {
            publisher: candidate.software.publisher.clone(),
            product: candidate.software.product.clone(),
            version: candidate.software.version.clone(),
            sku: candidate.software.sku.clone(),
            subscription_id: candidate.software.subscription_id.clone(),
        },
        device: candidate.device.clone(),
        justification: justification(candidate.justification),
        dry_run,
    }
}

/// The core's view of a plugin answer.
pub fn to_revocation_result(answer: Result<Outcome, PluginError>) -> RevocationResult {
    match answer {
        Ok(Outcome::Removed(evidence)) => RevocationResult::Removed { evidence },
        Ok(Outcome::AlreadyAbsent) => RevocationResult::AlreadyAbsent,
        Ok(Outcome::ManualTask(t)) => RevocationResult::ManualTask {
            title: t.title,
            instructions: t.instructions,
            assignee_hint: t.assignee_hint,
        },
        Ok(Outcome::Pending(check_after_secs)) => RevocationResult::Pending { check_after_secs },
        Err(e) if e.is_retryable() => RevocationResult::Transient {
            retry_after_secs: e
                .retry_after()
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            message: e.to_string(),
        },
        Err(e) => RevocationResult::Permanent {
            message: e.to_string(),
        },
    }
}

/// The core's view of a plugin's `verify` answer, classified as [`to_revocation_result`] does.
pub fn to_verify_result(answer: Result<Presence, PluginError>) -> VerifyResult {
    match answer {
        Ok(Presence::Absent) => VerifyResult::Absent,
        Ok(Presence::Present) => VerifyResult::Present,
        Ok(Presence::Unknown) => VerifyResult::Unknown,
        Err(e) if e.is_retryable() => VerifyResult::Transient {
            retry_after_secs: e
                .retry_after()
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            message: e.to_string(),
        },
        Err(e) => VerifyResult::Permanent {
            message: e.to_string(),
        },
    }
}

#[async_trait]
impl Revoker for PluginRevoker {
    async fn revoke(&self, candidate: &Candidate, idempotency_key: &str) -> RevocationResult {
        let plugin = match self.route(candidate) {
            Ok(id) => id,
            Err(message) => {
                tracing::warn!(candidate = %candidate.id, %message, "no plugin for candidate");
                return RevocationResult::Permanent { message };
            }
        };
        let req = request_for(candidate, idempotency_key, false);
        let answer = self.host.reclaim(&plugin, &req).await;
        tracing::info!(candidate = %candidate.id, %plugin, ok = answer.is_ok(), "revocation ran");
        to_revocation_result(answer)
    }

    async fn verify(&self, candidate: &Candidate, settle: bool) -> VerifyResult {
        let plugin = match self.route(candidate) {
            Ok(id) => id,
            Err(message) => return VerifyResult::Permanent { message },
        };
        if settle {
            let wait = self
                .host
                .manifest(&plugin)
                .map_or(0, |m| m.verify_settle_ms);
            if wait > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
        }
        // The request a removal would send, with a key of its own: verify changes nothing.
        let req = request_for(candidate, &format!("{}:verify", candidate.id), false);
        let answer = self.host.verify(&plugin, &req).await;
        tracing::info!(candidate = %candidate.id, %plugin, ?answer, "verification ran");
        to_verify_result(answer)
    }

    fn plugin_names(&self) -> Option<Vec<String>> {
        Some(self.host.plugins().into_iter().map(|p| p.id).collect())
    }
}

/// `Some(true)`: the manifest's patterns match; `Some(false)`: they exclude it; `None`: the
/// manifest has no patterns (a catch-all).
fn software_match(manifest: &Manifest, software: &core::Software) -> Option<bool> {
    if manifest.products.is_empty() && manifest.publishers.is_empty() {
        return None;
    }
    let any = |patterns: &[String], value: &str| {
        patterns.is_empty() || patterns.iter().any(|p| glob_match(p, value))
    };
    Some(
        any(&manifest.products, &software.product)
            && any(&manifest.publishers, &software.publisher),
    )
}

/// Case-insensitive match where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == v[vi] {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn applies_to(a: core::AppliesTo) -> AppliesTo {
    match a {
        core::AppliesTo::InstalledSoftware => AppliesTo::InstalledSoftware,
        core::AppliesTo::Subscription => AppliesTo::Subscription,
    }
}

fn applies_to_str(a: AppliesTo) -> &'static str {
    match a {
        AppliesTo::InstalledSoftware => "installed-software",
        AppliesTo::Subscription => "subscription",
    }
}

fn justification(j: core::Justification) -> Justification {
    use core::Justification as C;
    match j {
        C::LowUsage => Justification::LowUsage,
        C::Unused => Justification::Unused,
        C::Unallocated => Justification::Unallocated,
        C::Unlicensed => Justification::Unlicensed,
        C::Restricted => Justification::Restricted,
        C::Overlapping => Justification::Overlapping,
        C::Consolidation => Justification::Consolidation,
        C::Downgrade => Justification::Downgrade,
    }
}

fn justification_str(j: Justification) -> String {
    serde_json::to_value(j)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_is_case_insensitive_with_stars() {
        assert!(glob_match("Microsoft 365 *", "microsoft 365 E5"));
        assert!(glob_match("*visio*", "Microsoft Visio Plan 2"));
        assert!(glob_match("Zoom", "zoom"));
        assert!(!glob_match("Zoom", "Zoom Pro"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acbd"));
    }

    #[test]
    fn errors_map_by_retryability() {
        let t = to_revocation_result(Err(PluginError::Transient {
            message: "429".into(),
            retry_after_secs: Some(30),
        }));
        assert!(matches!(
            t,
            RevocationResult::Transient {
                retry_after_secs: Some(30),
                ..
            }
        ));
        let d = to_revocation_result(Err(PluginError::DeadlineExceeded {
            plugin: "p".into(),
            deadline_ms: 10,
        }));
        assert!(matches!(d, RevocationResult::Transient { .. }));
        let c = to_revocation_result(Err(PluginError::Crashed {
            plugin: "p".into(),
            message: "trap".into(),
        }));
        assert!(matches!(c, RevocationResult::Permanent { .. }));
        assert_eq!(
            to_revocation_result(Ok(Outcome::Pending(60))),
            RevocationResult::Pending {
                check_after_secs: 60
            }
        );
    }
}
