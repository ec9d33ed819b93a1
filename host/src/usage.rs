//! Usage sources ("connectors"): plugins that read who uses what from a vendor, so candidates
//! come from the vendor itself rather than from a file someone exported by hand.
//!
//! A connector exports the `usage-source` world of `wit/reclaimer.wit` (or
//! `reclaimer-and-source`, beside `reclaim` and `verify`). The host calls its `collect` a page at
//! a time, each page in a fresh instance under the same sandbox as a revocation (deadline,
//! memory, granted hosts and secrets), and holds it to two caps of its manifest:
//! `max_rows_per_page` and `max_pages_per_run`.
//!
//! The runner uses two types:
//!
//! * [`Connector`] ([`PluginHost::connector`], [`PluginHost::connectors`]): one loaded usage
//!   source, with what it reports ([`SourceInfo`]), its [`Schedule`] and its caps;
//!   [`Connector::collect`] fetches one page from a cursor.
//! * [`CollectRun`] ([`Connector::run`], [`Connector::resume`]): one run from the start or from
//!   a stored cursor, which counts pages against the cap and refuses a cursor that does not move.
//!
//! ```no_run
//! # async fn demo(host: reclaim_host::PluginHost) -> Result<(), Box<dyn std::error::Error>> {
//! let connector = host.connector("m365-usage")?;
//! let mut run = connector.run();
//! while let Some(page) = run.next_page().await? {
//!     for row in &page.rows {
//!         let record = row.to_record(); // checked as a row of `reclaim usage import`
//!         # let _ = record;
//!     }
//!     // store run.cursor() to resume here after a crash
//! }
//! # Ok(()) }
//! ```
//!
//! Rows come back as [`UsageRow`], which maps field for field to a row of the usage import
//! ([`UsageRow::columns`]); [`UsageRow::to_record`] checks it with the import's own parser, so a
//! connector's rows and a file's rows are refused or accepted alike.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

use reclaim_workflow::intake::FieldError;
use reclaim_workflow::usage::{parse_usage_row, UsageRecord};

use crate::bindings::source::reclaim::plugin::usage_types as wit;
use crate::manifest::Schedule;
use crate::types::{AnswerSize, AppliesTo, PluginError, Requirement};
use crate::{Loaded, PluginHost};

/// How often a reported price is paid; the same periods as the usage import's `price_period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PricePeriod {
    /// Per month.
    Monthly,
    /// Per year.
    Yearly,
    /// Once (a perpetual licence).
    OneTime,
}

impl PricePeriod {
    /// The import's spelling of the period.
    pub fn as_str(self) -> &'static str {
        match self {
            PricePeriod::Monthly => "monthly",
            PricePeriod::Yearly => "yearly",
            PricePeriod::OneTime => "one-time",
        }
    }
}

/// One install or subscription seat and how much it was used, as a connector reported it.
///
/// Kept as the plugin's text (times as RFC 3339 or dates, the price as a decimal) until
/// [`UsageRow::to_record`] checks it, so a bad row is reported by field exactly as a bad line
/// of an imported file is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UsageRow {
    /// The user holding the seat.
    pub user_id: String,
    /// Display name.
    #[serde(default)]
    pub user_name: Option<String>,
    /// Where questions about the seat go.
    #[serde(default)]
    pub user_email: Option<String>,
    /// User principal name.
    #[serde(default)]
    pub user_upn: Option<String>,
    /// Groups, for group exclusions.
    #[serde(default)]
    pub user_groups: Vec<String>,
    /// Whether the vendor marks the user as a VIP.
    #[serde(default)]
    pub user_vip: Option<bool>,
    /// When the account was created, for "provisioned less than N days ago".
    #[serde(default)]
    pub provisioned_at: Option<String>,
    /// Installed software or subscription.
    pub applies_to: AppliesTo,
    /// Publisher.
    pub publisher: String,
    /// Product.
    pub product: String,
    /// Installed version.
    #[serde(default)]
    pub version: Option<String>,
    /// Vendor SKU.
    #[serde(default)]
    pub sku: Option<String>,
    /// Vendor subscription id.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// Device, for installed software.
    #[serde(default)]
    pub device: Option<String>,
    /// Last use; none means never used, as far as the vendor knows.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// Hours of use in the vendor's window.
    #[serde(default)]
    pub hours_used: Option<f64>,
    /// When the seat was assigned or the software installed. The usage import has no column
    /// for it yet, so [`UsageRow::columns`] leaves it out; it is kept for the run's report.
    #[serde(default)]
    pub assigned_at: Option<String>,
    /// Price of one right as a decimal, when the vendor reports one.
    #[serde(default)]
    pub price_per_right: Option<String>,
    /// How often that price is paid.
    #[serde(default)]
    pub price_period: Option<PricePeriod>,
}

impl UsageRow {
    /// The row as the usage import's columns (`user_id`, `last_used_at`, …; see
    /// `reclaim_workflow::usage::USAGE_FIELDS`), absent values left out. Groups are joined with
    /// `;` as the import's column is, so a group name holding `;` or `,` splits there too.
    pub fn columns(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                out.insert(key.to_string(), v);
            }
        };
        put("user_id", Some(self.user_id.clone()));
        put("user_name", self.user_name.clone());
        put("user_email", self.user_email.clone());
        put("user_upn", self.user_upn.clone());
        put(
            "user_groups",
            (!self.user_groups.is_empty()).then(|| self.user_groups.join(";")),
        );
        put("user_vip", self.user_vip.map(|v| v.to_string()));
        put("provisioned_at", self.provisioned_at.clone());
        let applies_to = match self.applies_to {
            AppliesTo::InstalledSoftware => "installed-software",
            AppliesTo::Subscription => "subscription",
        };
        put("applies_to", Some(applies_to.to_string()));
        put("publisher", Some(self.publisher.clone()));
        put("product", Some(self.product.clone()));
        put("version", self.version.clone());
        put("sku", self.sku.clone());
        put("subscription_id", self.subscription_id.clone());
        put("device", self.device.clone());
        put("last_used_at", self.last_used_at.clone());
        put("hours_used", self.hours_used.map(|h| h.to_string()));
        put("price_per_right", self.price_per_right.clone());
        put(
            "price_period",
            self.price_period.map(|p| p.as_str().to_string()),
        );
        out
    }

    /// The row checked exactly as a row of `reclaim usage import` is (the same parser), so a
    /// connector and a file give the same records or the same field errors.
    pub fn to_record(&self) -> Result<UsageRecord, Vec<FieldError>> {
        parse_usage_row(&self.columns())
    }
}

/// Rows a connector saw but could not report, by reason, for the run's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UsageNote {
    /// Why, in the connector's words.
    pub reason: String,
    /// How many rows.
    pub count: u32,
}

/// One page of a collection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UsagePage {
    /// The usage rows, at most the manifest's `max_rows_per_page`.
    pub rows: Vec<UsageRow>,
    /// Where the next page starts; `None` when the collection is finished. Store it to resume.
    pub next_cursor: Option<String>,
    /// Rows the connector could not produce, by reason.
    pub notes: Vec<UsageNote>,
}

/// What a connector says about itself (`describe-source`): shown to operators and used to
/// tell a usage source from a plugin that only reclaims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SourceInfo {
    /// Equals the manifest's id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// The connector's own version.
    pub version: String,
    /// Who wrote it.
    pub vendor: String,
    /// The kinds of rights its rows are about.
    pub reports: Vec<AppliesTo>,
    /// Whose software it reports; empty = any.
    pub publishers: Vec<String>,
    /// What one row stands for.
    pub description: String,
    /// Config keys it reads.
    pub config_keys: Vec<Requirement>,
    /// Secrets it reads.
    pub secrets: Vec<Requirement>,
}

/// Why a page could not be collected: the plugin or the host said so ([`CollectError::Plugin`],
/// the same errors as a revocation), or a cap of the manifest stopped it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CollectError {
    /// The plugin reported an error, or the host stopped the call (deadline, memory, trap).
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The plugin is loaded but exports no `collect`.
    #[error("plugin `{plugin}` is not a usage source (it exports no `collect`)")]
    NotASource {
        /// Plugin id.
        plugin: String,
    },
    /// A page had more rows than the manifest allows; nothing of it is used.
    #[error("connector `{plugin}` returned {rows} rows in one page; its manifest allows at most {max} (`max_rows_per_page`): the page is refused, make the connector page smaller or raise the cap")]
    TooManyRows {
        /// Plugin id.
        plugin: String,
        /// Rows in the refused page.
        rows: usize,
        /// The manifest's cap.
        max: u32,
    },
    /// The run needed more pages than the manifest allows.
    #[error("connector `{plugin}` was stopped after {max} pages in one run (`max_pages_per_run`) and had not finished")]
    TooManyPages {
        /// Plugin id.
        plugin: String,
        /// The manifest's cap.
        max: u32,
    },
    /// The connector gave back the cursor it was called with: it would never finish.
    #[error(
        "connector `{plugin}` returned the cursor it was called with; the run would never finish"
    )]
    CursorRepeated {
        /// Plugin id.
        plugin: String,
    },
}

impl CollectError {
    /// Whether collecting the same page again later may succeed (throttled, vendor down, a
    /// deadline hit); the others need a person or a change to the connector.
    pub fn is_retryable(&self) -> bool {
        match self {
            CollectError::Plugin(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// How long the vendor asked to wait before the page is asked for again, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            CollectError::Plugin(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// One loaded usage source. Cheap to clone; calls run on the host it came from.
#[derive(Clone)]
pub struct Connector {
    pub(crate) host: PluginHost,
    pub(crate) loaded: Arc<Loaded>,
    pub(crate) info: Arc<SourceInfo>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("id", &self.info.id)
            .field("schedule", &self.schedule())
            .finish()
    }
}

impl Connector {
    /// The plugin id (the manifest's).
    pub fn id(&self) -> &str {
        &self.loaded.manifest.id
    }

    /// What the connector reports.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// How often the runner should run it (manifest `schedule`, default daily).
    pub fn schedule(&self) -> &Schedule {
        &self.loaded.manifest.schedule
    }

    /// The manifest's `max_rows_per_page`.
    pub fn max_rows_per_page(&self) -> u32 {
        self.loaded.manifest.max_rows_per_page
    }

    /// The manifest's `max_pages_per_run`.
    pub fn max_pages_per_run(&self) -> u32 {
        self.loaded.manifest.max_pages_per_run
    }

    /// Whether the same component also reclaims (the `reclaimer-and-source` world).
    pub fn also_reclaims(&self) -> bool {
        self.loaded.reclaimer.is_some()
    }

    /// One page, from the start (`None`) or from a cursor an earlier page gave, in a fresh
    /// instance under the manifest's deadline (per page), memory cap and grants. A page with
    /// more rows than `max_rows_per_page` is an error, never cut short.
    pub async fn collect(&self, cursor: Option<&str>) -> Result<UsagePage, CollectError> {
        let page = self.host.collect_page(&self.loaded, cursor).await?;
        let max = self.loaded.manifest.max_rows_per_page;
        if page.rows.len() > max as usize {
            tracing::warn!(plugin = %self.id(), rows = page.rows.len(), max, "connector page refused: too many rows");
            return Err(CollectError::TooManyRows {
                plugin: self.id().to_string(),
                rows: page.rows.len(),
                max,
            });
        }
        Ok(page)
    }

    /// A run from the start.
    pub fn run(&self) -> CollectRun {
        self.resume(None, 0)
    }

    /// A run that goes on from a stored cursor after `pages_done` pages (after a crash or a
    /// timeout): the pages cap counts the pages of the whole run.
    pub fn resume(&self, cursor: Option<String>, pages_done: u32) -> CollectRun {
        CollectRun {
            connector: self.clone(),
            cursor,
            pages: pages_done,
            finished: false,
        }
    }
}

/// One run of a connector: pages in order until one has no next cursor.
///
/// After an error the cursor stays where it was, so calling [`CollectRun::next_page`] again
/// retries the same page (what the runner does for a retryable error).
#[derive(Debug)]
pub struct CollectRun {
    connector: Connector,
    cursor: Option<String>,
    pages: u32,
    finished: bool,
}

impl CollectRun {
    /// The next page, or `None` once the connector said it is finished. Refuses to ask for a
    /// page past `max_pages_per_run`, and refuses a page whose next cursor is the one it was
    /// asked with.
    pub async fn next_page(&mut self) -> Result<Option<UsagePage>, CollectError> {
        if self.finished {
            return Ok(None);
        }
        let max = self.connector.max_pages_per_run();
        if self.pages >= max {
            tracing::warn!(plugin = %self.connector.id(), max, "connector run stopped at its pages cap");
            return Err(CollectError::TooManyPages {
                plugin: self.connector.id().to_string(),
                max,
            });
        }
        let page = self.connector.collect(self.cursor.as_deref()).await?;
        if page.next_cursor.is_some() && page.next_cursor == self.cursor {
            return Err(CollectError::CursorRepeated {
                plugin: self.connector.id().to_string(),
            });
        }
        self.pages += 1;
        self.cursor.clone_from(&page.next_cursor);
        self.finished = page.next_cursor.is_none();
        Ok(Some(page))
    }

    /// Where the next page starts: store it with [`CollectRun::pages`] to resume the run.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Pages collected in this run so far (including those before a resume).
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Whether the connector said the collection is finished.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

// ---- conversions from the generated bindings ----

impl From<wit::PricePeriod> for PricePeriod {
    fn from(v: wit::PricePeriod) -> Self {
        match v {
            wit::PricePeriod::Monthly => PricePeriod::Monthly,
            wit::PricePeriod::Yearly => PricePeriod::Yearly,
            wit::PricePeriod::OneTime => PricePeriod::OneTime,
        }
    }
}

impl From<wit::UsageRow> for UsageRow {
    fn from(r: wit::UsageRow) -> Self {
        UsageRow {
            user_id: r.user_id,
            user_name: r.user_name,
            user_email: r.user_email,
            user_upn: r.user_upn,
            user_groups: r.user_groups,
            user_vip: r.user_vip,
            provisioned_at: r.provisioned_at,
            applies_to: r.applies_to.into(),
            publisher: r.publisher,
            product: r.product,
            version: r.version,
            sku: r.sku,
            subscription_id: r.subscription_id,
            device: r.device,
            last_used_at: r.last_used_at,
            hours_used: r.hours_used,
            assigned_at: r.assigned_at,
            price_per_right: r.price_per_right,
            price_period: r.price_period.map(Into::into),
        }
    }
}

impl From<wit::Page> for UsagePage {
    fn from(p: wit::Page) -> Self {
        UsagePage {
            rows: p.rows.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
            notes: p
                .notes
                .into_iter()
                .map(|n| UsageNote {
                    reason: n.reason,
                    count: n.count,
                })
                .collect(),
        }
    }
}

impl From<wit::SourceInfo> for SourceInfo {
    fn from(v: wit::SourceInfo) -> Self {
        SourceInfo {
            id: v.id,
            name: v.name,
            version: v.version,
            vendor: v.vendor,
            reports: v.reports.into_iter().map(Into::into).collect(),
            publishers: v.publishers,
            description: v.description,
            config_keys: v.config_keys.into_iter().map(Into::into).collect(),
            secrets: v.secrets.into_iter().map(Into::into).collect(),
        }
    }
}

fn opt(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

impl AnswerSize for UsagePage {
    fn answer_bytes(&self) -> usize {
        let rows: usize = self
            .rows
            .iter()
            .map(|r| {
                // Fixed-size fields and list overhead, then the text.
                32 + r.user_id.len()
                    + opt(&r.user_name)
                    + opt(&r.user_email)
                    + opt(&r.user_upn)
                    + r.user_groups.iter().map(|g| g.len() + 8).sum::<usize>()
                    + opt(&r.provisioned_at)
                    + r.publisher.len()
                    + r.product.len()
                    + opt(&r.version)
                    + opt(&r.sku)
                    + opt(&r.subscription_id)
                    + opt(&r.device)
                    + opt(&r.last_used_at)
                    + opt(&r.assigned_at)
                    + opt(&r.price_per_right)
            })
            .sum();
        rows + opt(&self.next_cursor) + self.notes.iter().map(|n| n.reason.len() + 4).sum::<usize>()
    }
}

impl AnswerSize for SourceInfo {
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
            + self.description.len()
            + self.publishers.iter().map(String::len).sum::<usize>()
            + req(&self.config_keys)
            + req(&self.secrets)
            + self.reports.len()
    }
}

/// The loaded connectors as the application's port: the runner (`reclaim_api::connectors`)
/// collects through it on every deployment.
#[async_trait::async_trait]
impl reclaim_workflow::ports::UsageSources for crate::PluginHost {
    async fn connectors(
        &self,
    ) -> Result<Vec<reclaim_workflow::ports::ConnectorInfo>, reclaim_workflow::ports::StoreError>
    {
        Ok(crate::PluginHost::connectors(self)
            .iter()
            .map(|c| reclaim_workflow::ports::ConnectorInfo {
                id: c.id().to_string(),
                name: c.info().name.clone(),
                vendor: c.info().vendor.clone(),
                version: c.info().version.clone(),
                description: c.info().description.clone(),
                schedule: c.schedule().to_string(),
                every_secs: c.schedule().every().as_secs(),
            })
            .collect())
    }

    async fn collect(
        &self,
        connector: &str,
        cursor: Option<&str>,
        pages_done: u32,
    ) -> Result<reclaim_workflow::ports::CollectedPage, reclaim_workflow::ports::CollectFailure>
    {
        use reclaim_workflow::ports::CollectFailure;
        let failed = |e: CollectError| {
            if e.is_retryable() {
                CollectFailure::Transient {
                    message: e.to_string(),
                    retry_after_secs: e.retry_after().map(|d| d.as_secs()),
                }
            } else {
                CollectFailure::Permanent(e.to_string())
            }
        };
        let source = self.connector(connector).map_err(failed)?;
        let mut run = source.resume(cursor.map(str::to_string), pages_done);
        let page = run.next_page().await.map_err(failed)?.unwrap_or_default();
        Ok(reclaim_workflow::ports::CollectedPage {
            rows: page.rows.iter().map(UsageRow::to_record).collect(),
            next_cursor: page.next_cursor,
            notes: page
                .notes
                .into_iter()
                .map(|n| (n.reason, u64::from(n.count)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> UsageRow {
        UsageRow {
            user_id: "u-ann".into(),
            user_name: Some("Ann Archer".into()),
            user_email: Some("ann@example.com".into()),
            user_upn: None,
            user_groups: vec!["staff".into(), "design".into()],
            user_vip: Some(true),
            provisioned_at: Some("2024-01-15T09:00:00Z".into()),
            applies_to: AppliesTo::InstalledSoftware,
            publisher: "Adobe".into(),
            product: "Acrobat Pro".into(),
            version: Some("24.1".into()),
            sku: None,
            subscription_id: None,
            device: Some("PC-ANN-01".into()),
            last_used_at: Some("2026-03-01".into()),
            hours_used: Some(2.5),
            assigned_at: Some("2025-01-01".into()),
            price_per_right: Some("239.88".into()),
            price_period: Some(PricePeriod::Yearly),
        }
    }

    #[test]
    fn a_row_becomes_the_usage_imports_columns_and_record() {
        let r = row();
        let cols = r.columns();
        assert_eq!(cols["applies_to"], "installed-software");
        assert_eq!(cols["user_groups"], "staff;design");
        assert_eq!(cols["user_vip"], "true");
        assert_eq!(cols["price_period"], "yearly");
        assert!(!cols.contains_key("user_upn"), "absent values are left out");
        assert!(!cols.contains_key("assigned_at"), "no import column for it");
        for key in cols.keys() {
            assert!(
                reclaim_workflow::usage::USAGE_FIELDS.contains(&key.as_str()),
                "{key} is an import column"
            );
        }
        let record = r.to_record().expect("valid");
        assert_eq!(record.user.id, "u-ann");
        assert_eq!(record.user_groups, vec!["staff", "design"]);
        assert_eq!(record.device.as_deref(), Some("PC-ANN-01"));
        assert_eq!(record.hours_used, Some(2.5));
        assert_eq!(record.price_per_right_cents, 23_988);
    }

    #[test]
    fn a_bad_row_is_refused_by_field_as_an_imported_line_is() {
        let mut r = row();
        r.device = None;
        r.last_used_at = Some("last tuesday".into());
        r.product = "Acrobat\nPro".into();
        let errors = r.to_record().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"device"), "{errors:?}");
        assert!(fields.contains(&"last_used_at"), "{errors:?}");
        assert!(fields.contains(&"product"), "{errors:?}");
    }
}
