//! Plain Rust mirrors of the WIT types, used by callers of the host and by the JSON of
//! `reclaim plugin check --request`.
//!
//! # JSON shape
//!
//! Field and variant names are **kebab-case**, exactly as in `wit/reclaimer.wit`, so a request
//! written by looking at the WIT is accepted as is:
//!
//! ```json
//! {
//!   "candidate-id": "c-42", "idempotency-key": "c-42/7/revoke",
//!   "applies-to": "subscription",
//!   "user": {"id": "u-1", "email": "ann@example.com", "upn": "ann@example.com"},
//!   "software": {"publisher": "Microsoft", "product": "Microsoft 365 E5", "sku": "c7df2760"},
//!   "device": null, "justification": "unused", "dry-run": true
//! }
//! ```
//!
//! Variants are externally tagged: `"already-absent"`, `{"removed": "evidence"}`,
//! `{"pending": 300}`, `{"manual-task": {"title": …}}`. Optional fields may be omitted.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::bindings::reclaim::plugin::types as wit;

/// What kind of right a candidate is about; routing to a plugin starts here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppliesTo {
    /// Software installed on a device (uninstalled through software distribution).
    InstalledSoftware,
    /// A seat or subscription held by a user (removed through a vendor API).
    Subscription,
}

/// Why the candidate exists; a plugin may support only some justifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)] // the names are the workflow's own vocabulary
pub enum Justification {
    LowUsage,
    Unused,
    Unallocated,
    Unlicensed,
    Restricted,
    Overlapping,
    Consolidation,
    Downgrade,
}

/// A config key or secret a plugin says it needs, so an operator can see what to grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Requirement {
    /// Key or secret name, as used in the manifest.
    pub name: String,
    /// Shown to operators by `reclaim plugin check`.
    pub description: String,
    /// Whether the plugin cannot work without it.
    pub required: bool,
}

/// What a plugin says about itself through `describe()`; used for routing and for `plugin check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginInfo {
    /// Must equal the manifest's `id`, so routing by id and logs agree.
    pub id: String,
    /// Human name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// Who wrote it.
    pub vendor: String,
    /// The kinds of rights it can reclaim.
    pub applies_to: Vec<AppliesTo>,
    /// The justifications it accepts.
    pub justifications: Vec<Justification>,
    /// Config keys it reads.
    pub config_keys: Vec<Requirement>,
    /// Secrets it reads.
    pub secrets: Vec<Requirement>,
}

/// The person whose right is reclaimed; plugins pick the identifier their vendor knows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    /// Directory id.
    pub id: String,
    /// Mail address, when known.
    #[serde(default)]
    pub email: Option<String>,
    /// User principal name, when known (Microsoft Graph addresses users by it).
    #[serde(default)]
    pub upn: Option<String>,
}

/// The software or subscription being reclaimed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Software {
    /// Publisher as normalised by the inventory.
    pub publisher: String,
    /// Product name as normalised by the inventory.
    pub product: String,
    /// Installed version, when relevant.
    #[serde(default)]
    pub version: Option<String>,
    /// Vendor SKU (e.g. an M365 sku id).
    #[serde(default)]
    pub sku: Option<String>,
    /// Vendor subscription id.
    #[serde(default)]
    pub subscription_id: Option<String>,
}

/// One revocation request, identical in meaning to the WIT `request` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Request {
    /// The workflow candidate this is about.
    pub candidate_id: String,
    /// Stable across retries of one effect, so vendor calls can be made idempotent.
    pub idempotency_key: String,
    /// Installed software or subscription.
    pub applies_to: AppliesTo,
    /// Whose right it is.
    pub user: User,
    /// What is reclaimed.
    pub software: Software,
    /// Device name or id, for installed software.
    #[serde(default)]
    pub device: Option<String>,
    /// Why.
    pub justification: Justification,
    /// When true the plugin must not change anything at the vendor.
    #[serde(default)]
    pub dry_run: bool,
}

/// A task for a person when no API can do the removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ManualTask {
    /// Short title of the task.
    pub title: String,
    /// What to do, step by step.
    pub instructions: String,
    /// Who should do it (a group or person), when the plugin knows.
    #[serde(default)]
    pub assignee_hint: Option<String>,
}

/// What happened at the vendor; the workflow turns each into a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Removed now; the text is the evidence kept on the audit trail.
    Removed(String),
    /// Nothing to remove: already gone.
    AlreadyAbsent,
    /// A person must do it.
    ManualTask(ManualTask),
    /// Accepted by the vendor; check again after this many seconds.
    Pending(u32),
}

/// Whether the software or seat is still there (answer of `verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// Still there.
    Present,
    /// Gone.
    Absent,
    /// The plugin cannot tell.
    Unknown,
}

/// Why a plugin call did not produce an answer: either the plugin said so (the first three
/// variants, mirroring the WIT `plugin-error`) or the host stopped or rejected it.
///
/// The workflow only needs [`PluginError::is_retryable`] and [`PluginError::retry_after`] to
/// decide between "retry later" and "a person must look"; the message is for that person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PluginError {
    /// The plugin reports a passing failure (throttled, vendor down).
    #[error("transient: {message}")]
    #[serde(rename_all = "kebab-case")]
    Transient {
        /// The plugin's words.
        message: String,
        /// When the vendor said to come back.
        retry_after_secs: Option<u32>,
    },
    /// The plugin reports that retrying will not help.
    #[error("permanent: {message}")]
    Permanent {
        /// The plugin's words.
        message: String,
    },
    /// The plugin reports that its config or secrets are wrong or missing.
    #[error("misconfigured: {message}")]
    Misconfigured {
        /// The plugin's words.
        message: String,
    },
    /// No plugin with this id is loaded.
    #[error("no plugin `{plugin}` is loaded")]
    UnknownPlugin {
        /// The id asked for.
        plugin: String,
    },
    /// The call ran past the manifest's deadline and was stopped.
    #[error("plugin `{plugin}` exceeded its deadline of {deadline_ms} ms and was stopped")]
    #[serde(rename_all = "kebab-case")]
    DeadlineExceeded {
        /// Plugin id.
        plugin: String,
        /// The manifest's per-call deadline.
        deadline_ms: u64,
    },
    /// The plugin tried to use more memory than its manifest allows.
    #[error("plugin `{plugin}` ran out of memory: it asked for {requested_mb} MiB, its cap is {limit_mb} MiB")]
    #[serde(rename_all = "kebab-case")]
    OutOfMemory {
        /// Plugin id.
        plugin: String,
        /// The manifest's memory cap.
        limit_mb: u64,
        /// What the plugin tried to grow its memory to.
        requested_mb: u64,
    },
    /// The plugin trapped (panic, `unreachable`, stack overflow, bad host call).
    #[error("plugin `{plugin}` crashed: {message}")]
    Crashed {
        /// Plugin id.
        plugin: String,
        /// The trap and, when the guest printed one, its last stderr lines (e.g. a panic).
        message: String,
    },
    /// The plugin answered, but the answer is not acceptable (too large, inconsistent).
    #[error("plugin `{plugin}` gave a malformed answer: {message}")]
    Malformed {
        /// Plugin id.
        plugin: String,
        /// What was wrong with it.
        message: String,
    },
    /// The host could not run the call (e.g. could not instantiate); not the plugin's fault.
    #[error("plugin host error for `{plugin}`: {message}")]
    Host {
        /// Plugin id.
        plugin: String,
        /// What went wrong.
        message: String,
    },
}

impl PluginError {
    /// Whether running the same request later may succeed; the effects runner schedules a
    /// retry for these and sends the others to a person.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PluginError::Transient { .. }
                | PluginError::DeadlineExceeded { .. }
                | PluginError::Host { .. }
        )
    }

    /// How long the plugin (vendor) asked us to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PluginError::Transient {
                retry_after_secs: Some(secs),
                ..
            } => Some(Duration::from_secs(u64::from(*secs))),
            _ => None,
        }
    }
}

// ---- conversions to and from the generated bindings (the one place the two meet) ----

impl From<wit::AppliesTo> for AppliesTo {
    fn from(v: wit::AppliesTo) -> Self {
        match v {
            wit::AppliesTo::InstalledSoftware => AppliesTo::InstalledSoftware,
            wit::AppliesTo::Subscription => AppliesTo::Subscription,
        }
    }
}

impl From<AppliesTo> for wit::AppliesTo {
    fn from(v: AppliesTo) -> Self {
        match v {
            AppliesTo::InstalledSoftware => wit::AppliesTo::InstalledSoftware,
            AppliesTo::Subscription => wit::AppliesTo::Subscription,
        }
    }
}

impl From<wit::Justification> for Justification {
    fn from(v: wit::Justification) -> Self {
        use wit::Justification as W;
        match v {
            W::LowUsage => Justification::LowUsage,
            W::Unused => Justification::Unused,
            W::Unallocated => Justification::Unallocated,
            W::Unlicensed => Justification::Unlicensed,
            W::Restricted => Justification::Restricted,
            W::Overlapping => Justification::Overlapping,
            W::Consolidation => Justification::Consolidation,
            W::Downgrade => Justification::Downgrade,
        }
    }
}

impl From<Justification> for wit::Justification {
    fn from(v: Justification) -> Self {
        use wit::Justification as W;
        match v {
            Justification::LowUsage => W::LowUsage,
            Justification::Unused => W::Unused,
            Justification::Unallocated => W::Unallocated,
            Justification::Unlicensed => W::Unlicensed,
            Justification::Restricted => W::Restricted,
            Justification::Overlapping => W::Overlapping,
            Justification::Consolidation => W::Consolidation,
            Justification::Downgrade => W::Downgrade,
        }
    }
}

impl From<wit::Requirement> for Requirement {
    fn from(v: wit::Requirement) -> Self {
        Requirement {
            name: v.name,
            description: v.description,
            required: v.required,
        }
    }
}

impl From<wit::PluginInfo> for PluginInfo {
    fn from(v: wit::PluginInfo) -> Self {
        PluginInfo {
            id: v.id,
            name: v.name,
            version: v.version,
            vendor: v.vendor,
            applies_to: v.applies_to.into_iter().map(Into::into).collect(),
            justifications: v.justifications.into_iter().map(Into::into).collect(),
            config_keys: v.config_keys.into_iter().map(Into::into).collect(),
            secrets: v.secrets.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<&Request> for wit::Request {
    fn from(r: &Request) -> Self {
        wit::Request {
            candidate_id: r.candidate_id.clone(),
            idempotency_key: r.idempotency_key.clone(),
            applies_to: r.applies_to.into(),
            user: wit::User {
                id: r.user.id.clone(),
                email: r.user.email.clone(),
                upn: r.user.upn.clone(),
            },
            software: wit::Software {
                publisher: r.software.publisher.clone(),
                product: r.software.product.clone(),
                version: r.software.version.clone(),
                sku: r.software.sku.clone(),
                subscription_id: r.software.subscription_id.clone(),
            },
            device: r.device.clone(),
            justification: r.justification.into(),
            dry_run: r.dry_run,
        }
    }
}

impl From<wit::Outcome> for Outcome {
    fn from(v: wit::Outcome) -> Self {
        match v {
            wit::Outcome::Removed(evidence) => Outcome::Removed(evidence),
            wit::Outcome::AlreadyAbsent => Outcome::AlreadyAbsent,
            wit::Outcome::ManualTask(t) => Outcome::ManualTask(ManualTask {
                title: t.title,
                instructions: t.instructions,
                assignee_hint: t.assignee_hint,
            }),
            wit::Outcome::Pending(secs) => Outcome::Pending(secs),
        }
    }
}

impl From<wit::Presence> for Presence {
    fn from(v: wit::Presence) -> Self {
        match v {
            wit::Presence::Present => Presence::Present,
            wit::Presence::Absent => Presence::Absent,
            wit::Presence::Unknown => Presence::Unknown,
        }
    }
}

impl From<wit::PluginError> for PluginError {
    fn from(v: wit::PluginError) -> Self {
        match v {
            wit::PluginError::Transient(t) => PluginError::Transient {
                message: t.message,
                retry_after_secs: t.retry_after_secs,
            },
            wit::PluginError::Permanent(message) => PluginError::Permanent { message },
            wit::PluginError::Misconfigured(message) => PluginError::Misconfigured { message },
        }
    }
}

/// Bytes of text in an answer, for the response-size cap: strings dominate any answer, and
/// counting them needs no serialisation.
pub(crate) trait AnswerSize {
    fn answer_bytes(&self) -> usize;
}

impl AnswerSize for Outcome {
    fn answer_bytes(&self) -> usize {
        match self {
            Outcome::Removed(s) => s.len(),
            Outcome::AlreadyAbsent | Outcome::Pending(_) => 0,
            Outcome::ManualTask(t) => {
                t.title.len()
                    + t.instructions.len()
                    + t.assignee_hint.as_ref().map_or(0, String::len)
            }
        }
    }
}

impl AnswerSize for Presence {
    fn answer_bytes(&self) -> usize {
        0
    }
}

impl AnswerSize for PluginError {
    fn answer_bytes(&self) -> usize {
        self.to_string().len()
    }
}

impl AnswerSize for PluginInfo {
    fn answer_bytes(&self) -> usize {
        let req = |r: &Vec<Requirement>| {
            r.iter()
                .map(|r| r.name.len() + r.description.len())
                .sum::<usize>()
        };
        self.id.len()
            + self.name.len()
            + self.version.len()
            + self.vendor.len()
            + req(&self.config_keys)
            + req(&self.secrets)
            + self.applies_to.len()
            + self.justifications.len()
    }
}

impl<T: AnswerSize, E: AnswerSize> AnswerSize for Result<T, E> {
    fn answer_bytes(&self) -> usize {
        match self {
            Ok(v) => v.answer_bytes(),
            Err(e) => e.answer_bytes(),
        }
    }
}
