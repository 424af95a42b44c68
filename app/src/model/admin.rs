//! The admin console's pages as the UI and the server functions exchange them: the failures
//! dashboard, a run's detail, queue and worker health with its plots, and the audit log. Vendors
//! see the failures and run detail of their own listings through the same types.

use crate::error::AppError;
use crate::model::install::{ErrorClass, EventKind, QuarantinedView, RunOutcome, RunView, Stamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Most dead jobs one bulk retry queues (the dashboard counts its candidates up to one more).
pub const MAX_BULK_RETRY: usize = 500;

string_enum!(
    /// The time range the failures dashboard looks at.
    Range, "range", {
        Hour = "1h" / "Last hour",
        Day = "24h" / "Last 24 hours",
        Week = "7d" / "Last 7 days",
        Month = "30d" / "Last 30 days",
    }
);

impl Range {
    pub fn seconds(self) -> i64 {
        match self {
            Range::Hour => 3600,
            Range::Day => 86_400,
            Range::Week => 7 * 86_400,
            Range::Month => 30 * 86_400,
        }
    }
}

/// The dashboard's filters, as the URL carries them (`?tenant=…&listing=…&range=24h`). Empty
/// strings are "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureQuery {
    pub tenant: String,
    pub listing: String,
    pub provider: String,
    pub class: String,
    pub outcome: String,
    pub range: String,
}

/// [`FailureQuery`] parsed: what the domain filters by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureFilter {
    pub tenant: Option<Uuid>,
    /// A listing's slug.
    pub listing: Option<String>,
    pub provider: Option<String>,
    pub class: Option<ErrorClass>,
    /// Failed or dead; None is both.
    pub outcome: Option<RunOutcome>,
    pub range: Range,
}

impl FailureQuery {
    pub fn parse(&self) -> Result<FailureFilter, AppError> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let tenant =
            match text(&self.tenant) {
                Some(t) => Some(Uuid::parse_str(&t).map_err(|_| {
                    AppError::invalid("tenant", "Pick an organization from the list.")
                })?),
                None => None,
            };
        let class = text(&self.class).map(|c| c.parse()).transpose()?;
        let outcome = match text(&self.outcome) {
            None => None,
            Some(o) => match o.parse()? {
                RunOutcome::Failed => Some(RunOutcome::Failed),
                RunOutcome::Dead => Some(RunOutcome::Dead),
                _ => {
                    return Err(AppError::invalid(
                        "outcome",
                        "Failures are either failed (retrying) or dead letters.",
                    ))
                }
            },
        };
        let range = text(&self.range)
            .map(|r| r.parse())
            .transpose()?
            .unwrap_or(Range::Week);
        Ok(FailureFilter {
            tenant,
            listing: text(&self.listing),
            provider: text(&self.provider),
            class,
            outcome,
            range,
        })
    }
}

/// Failures of one kind: the same error class, listing and provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureGroup {
    pub class: Option<ErrorClass>,
    pub listing_slug: String,
    pub listing_name: String,
    pub provider: String,
    pub last_hour: i64,
    pub last_day: i64,
    pub last_week: i64,
    /// In the filter's range.
    pub total: i64,
    pub dead: i64,
    pub first_seen: Stamp,
    pub last_seen: Stamp,
    /// The newest failed attempt of the group, for "open the latest".
    pub latest_run: i64,
}

/// One failed or dead attempt, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRun {
    pub run_id: i64,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub install_id: Uuid,
    pub listing_slug: String,
    pub listing_name: String,
    pub provider: String,
    pub outcome: RunOutcome,
    pub class: Option<ErrorClass>,
    pub message: String,
    /// 1-based.
    pub attempt: i32,
    pub finished_at: Stamp,
}

/// A choice in one of the dashboard's filter lists: (value, label).
pub type Choice = (String, String);

/// An active install past its schedule's window without a successful sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleInstall {
    pub tenant_id: Uuid,
    /// Empty in a vendor's view.
    pub tenant_name: String,
    pub install_id: Uuid,
    pub listing_name: String,
    /// Its last successful sync; None when it never had one.
    pub as_of: Option<Stamp>,
    /// The schedule's window, in seconds.
    pub window_secs: i64,
    /// Its newest attempt, to open.
    pub latest_run: Option<i64>,
}

/// `/admin/failures`, and the vendor console's failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailuresPage {
    pub query: FailureQuery,
    pub groups: Vec<FailureGroup>,
    /// Newest first, at most a page.
    pub runs: Vec<FailedRun>,
    /// Dead letters matching the filter whose install could run again (what bulk retry takes);
    /// counted when the filter is on dead letters, else 0.
    pub retryable_dead: i64,
    pub tenants: Vec<Choice>,
    pub listings: Vec<Choice>,
    pub providers: Vec<Choice>,
    /// Stale installs (the longest overdue first, at most a page) and how many there are.
    pub stale: Vec<StaleInstall>,
    pub stale_total: i64,
    /// A vendor's view: no tenant filter, no repair actions.
    pub vendor: bool,
}

/// One event of a run, with the request's summary where it made one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailEvent {
    pub at: Stamp,
    pub kind: EventKind,
    pub message: String,
    /// `GET https://… → 200 in 41 ms (12,345 bytes)`, credentials redacted.
    pub request: Option<String>,
}

/// What an admin can do about the run's job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetryState {
    /// The job waits for its next attempt: it can be run now.
    Waiting,
    /// The job is dead: it can be queued again.
    Dead,
    /// The job runs, succeeded since, or its install does not run: nothing to retry.
    None,
}

/// `/admin/runs/{id}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunView,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub install_id: Uuid,
    pub install_status: String,
    pub install_reason: Option<String>,
    pub listing_slug: String,
    pub listing_name: String,
    pub provider: String,
    /// (stream, cursor) before the attempt read anything, and when it ended.
    pub cursor_before: Vec<(String, String)>,
    pub cursor_after: Vec<(String, String)>,
    pub events: Vec<DetailEvent>,
    /// Every attempt of the same job, oldest first.
    pub attempts: Vec<RunView>,
    pub quarantined: Vec<QuarantinedView>,
    /// Quarantined by this run and not replayed yet.
    pub replayable: i64,
    /// Replay asked for and not done yet.
    pub replay_pending: i64,
    pub retry: RetryState,
    /// The install's newest attempt (this one, or a later one: a retry, the next sync).
    pub newest: Option<(i64, RunOutcome)>,
    pub vendor: bool,
}

/// A series of a plot: one value per minute, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    /// A CSS class giving its colour (`series-succeeded`).
    pub class: String,
    pub points: Vec<f64>,
}

/// One plot of the health page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plot {
    pub id: String,
    pub title: String,
    pub unit: String,
    /// Minutes covered, the last ending now.
    pub minutes: usize,
    pub series: Vec<Series>,
}

/// A worker process, by its heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    /// `host:pid`.
    pub name: String,
    pub concurrency: i32,
    pub started_at: Stamp,
    pub heartbeat_at: Stamp,
    pub alive: bool,
    /// (run id, what it does): the attempts it runs now.
    pub current: Vec<(i64, String)>,
}

/// A tenant's share of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLoad {
    pub tenant_id: Uuid,
    pub name: String,
    pub queued: i64,
    pub running: i64,
}

/// `/admin/health`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPage {
    pub queued: i64,
    /// Of the queued, those due now (the rest wait for a retry or a schedule).
    pub due: i64,
    pub running: i64,
    /// Seconds the oldest due job has waited.
    pub oldest_due_secs: Option<f64>,
    /// Attempts started per minute over the last five minutes.
    pub claims_per_min: f64,
    pub succeeded_hour: i64,
    pub failed_hour: i64,
    /// Active installs past their schedule's window (see `installs::freshness`).
    pub stale_installs: i64,
    pub top_tenants: Vec<TenantLoad>,
    pub workers: Vec<WorkerView>,
    pub plots: Vec<Plot>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Stamp,
    pub org_id: Uuid,
    pub org_name: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// `/admin/audit`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub q: String,
    pub entries: Vec<AuditEntry>,
    /// The id to page on from (`?before=`), when there are older entries.
    pub older: Option<i64>,
}

string_enum!(
    /// What an alert rule watches.
    AlertKind, "kind", {
        DeadLetters = "dead_letters" / "Dead letters over a threshold",
        StaleInstalls = "stale_installs" / "An install past its freshness window",
        NeedsReauth = "needs_reauth" / "A connection needing reauthorization",
    }
);

/// An alert rule as the admin console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRuleView {
    pub id: Uuid,
    pub name: String,
    pub kind: AlertKind,
    /// The condition in words ("more than 10 dead letters in 60 minutes").
    pub condition: String,
    pub webhook_url: Option<String>,
    /// The HMAC secret deliveries are signed with (`pbsec_…`).
    pub secret: String,
    pub enabled: bool,
    pub open: i64,
    pub last_opened: Option<Stamp>,
    pub evaluated: Option<Stamp>,
}

/// One alert: the in-app notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: i64,
    pub rule: String,
    pub kind: AlertKind,
    pub title: String,
    pub org_name: Option<String>,
    /// Where the admin looks next (the dashboard filtered to it).
    pub link: String,
    pub opened: Stamp,
    pub resolved: Option<Stamp>,
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(String, Stamp)>,
}

/// One webhook delivery of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: i64,
    pub rule: String,
    pub event: String,
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created: Stamp,
    /// When a pending delivery tries again.
    pub next_attempt: Option<Stamp>,
}

/// `/admin/alerts`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsPage {
    pub rules: Vec<AlertRuleView>,
    /// Open alerts, newest first (the newest 100).
    pub open: Vec<AlertView>,
    /// How many alerts are open in all.
    pub open_total: i64,
    /// Alerts resolved in the last seven days, newest first.
    pub resolved: Vec<AlertView>,
    /// The newest deliveries.
    pub deliveries: Vec<DeliveryView>,
}
