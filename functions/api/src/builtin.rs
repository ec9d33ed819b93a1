//! The built-in revoker: a manual-removal task with clear instructions. It is what happens
//! when no plugin applies, and the fallback a deployment without plugins runs.

use async_trait::async_trait;
use reclaim_workflow::ports::Revoker;
use reclaim_workflow::{AppliesTo, Candidate, RevocationResult};

/// Always asks a person to remove the right by hand.
#[derive(Clone, Copy, Debug, Default)]
pub struct ManualTaskRevoker;

#[async_trait]
impl Revoker for ManualTaskRevoker {
    async fn revoke(&self, c: &Candidate, _key: &str) -> RevocationResult {
        manual_task(c)
    }
}

/// The manual-removal instructions for a candidate.
pub fn manual_task(c: &Candidate) -> RevocationResult {
    let s = &c.software;
    let product = s.label_with_version();
    let user = c
        .user
        .as_ref()
        .map(|u| format!("{} ({})", u.display_name, u.id))
        .unwrap_or_else(|| "no user recorded".into());
    let instructions = match c.applies_to {
        AppliesTo::InstalledSoftware => format!(
            "Uninstall {product} from device {} (user: {user}). Use the device's software \
             distribution tool or uninstall it locally, confirm it no longer appears in the \
             installed programs, then select Close Complete on {}.",
            c.device.as_deref().unwrap_or("(device not recorded)"),
            c.number
        ),
        AppliesTo::Subscription => format!(
            "Remove the {product} seat{} from {user} in the vendor's admin console, confirm \
             the seat is released, then select Close Complete on {}.",
            s.sku
                .as_deref()
                .map(|k| format!(" (SKU {k})"))
                .unwrap_or_default(),
            c.number
        ),
    };
    RevocationResult::ManualTask {
        title: format!("Remove {product} for {user}"),
        instructions,
        assignee_hint: None,
    }
}
