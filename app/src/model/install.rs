//! Installs and their runs as the UI and the server functions exchange them: the install wizard's
//! page, the installs list, an install's page with its live progress and history.

use crate::error::AppError;
use crate::model::connection::ConnectProvider;
use crate::model::listing::{ConfigField, Interval, Trigger};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// How the reason of an install paused by Patchbay's operators begins (an admin's repair
/// action); other paused installs wait for a connection to be fixed.
pub const OPERATOR_PAUSE: &str = "Paused by Patchbay's operators: ";

string_enum!(
    /// Where an install stands.
    InstallStatus, "status", {
        Draft = "draft" / "Setting up",
        Active = "active" / "Active",
        Paused = "paused" / "Paused",
        Uninstalled = "uninstalled" / "Uninstalled",
    }
);

string_enum!(
    /// The install wizard's steps, in order.
    WizardStep, "step", {
        Connections = "connections" / "Connections",
        Settings = "settings" / "Settings",
        Streams = "streams" / "What syncs",
        Mapping = "mapping" / "Field mapping",
        Schedule = "schedule" / "Schedule",
        Review = "review" / "Review",
    }
);

string_enum!(
    /// How one attempt of a sync ended (or that it runs).
    RunOutcome, "outcome", {
        Running = "running" / "Running",
        Succeeded = "succeeded" / "Succeeded",
        Failed = "failed" / "Failed",
        Dead = "dead" / "Dead letter",
        Cancelled = "cancelled" / "Cancelled",
        Released = "released" / "Handed back",
    }
);

string_enum!(
    /// What kind of failure ended an attempt, so that it is retried, refreshed or given up on.
    ErrorClass, "error_class", {
        Transient = "transient" / "Temporary problem",
        RateLimited = "rate_limited" / "Rate limited",
        Auth = "auth" / "Access refused",
        Permanent = "permanent" / "Permanent error",
        Internal = "internal" / "Patchbay error",
        LeaseExpired = "lease_expired" / "Worker stopped",
    }
);

string_enum!(
    /// What happened during a run, as its timeline lists it.
    EventKind, "kind", {
        Started = "started" / "Started",
        Page = "page" / "Page read",
        Request = "request" / "Request",
        Retry = "retry" / "Retry",
        RateWait = "rate_wait" / "Rate wait",
        Quarantined = "quarantined" / "Quarantined",
        Replayed = "replayed" / "Replayed",
        Deleted = "deleted" / "Deleted",
        Error = "error" / "Error",
        Finished = "finished" / "Finished",
    }
);

impl WizardStep {
    pub fn next(self) -> Option<WizardStep> {
        let at = Self::ALL.iter().position(|s| *s == self)?;
        Self::ALL.get(at + 1).copied()
    }

    pub fn previous(self) -> Option<WizardStep> {
        let at = Self::ALL.iter().position(|s| *s == self)?;
        at.checked_sub(1).and_then(|i| Self::ALL.get(i).copied())
    }

    /// 1-based position, for "Step 2 of 6".
    pub fn number(self) -> usize {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }
}

/// A moment, as pages show it: relative ("3 minutes ago") with the exact time on hover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// `2026-12-01 09:30:12 UTC`.
    pub exact: String,
    pub relative: String,
}

impl Stamp {
    /// `seconds_ago` is negative for the future.
    pub fn new(exact: String, seconds_ago: f64) -> Self {
        Stamp {
            exact,
            relative: relative(seconds_ago),
        }
    }
}

/// "just now", "5 minutes ago", "in 2 hours".
pub fn relative(seconds_ago: f64) -> String {
    let future = seconds_ago < 0.0;
    let secs = seconds_ago.abs().round() as u64;
    let (n, unit) = match secs {
        0..=9 => {
            return if future {
                "in a moment".into()
            } else {
                "just now".into()
            }
        }
        10..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    let unit = if n == 1 {
        unit.to_owned()
    } else {
        format!("{unit}s")
    };
    if future {
        format!("in {n} {unit}")
    } else {
        format!("{n} {unit} ago")
    }
}

/// How often an install runs on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// One of the recipe's intervals.
    Every(Interval),
    /// A cron expression (five fields, UTC), no more often than the recipe's shortest interval.
    Cron(String),
    /// Only when started by hand or by a webhook.
    Manual,
}

impl Schedule {
    pub fn label(&self) -> String {
        match self {
            Schedule::Every(i) => i.label().to_owned(),
            Schedule::Cron(expr) => format!("Cron: {expr} (UTC)"),
            Schedule::Manual => "Not on a schedule".to_owned(),
        }
    }
}

/// The seconds of an interval.
pub fn interval_secs(interval: Interval) -> i64 {
    match interval {
        Interval::Every5Minutes => 300,
        Interval::Every15Minutes => 900,
        Interval::Hourly => 3600,
        Interval::Every6Hours => 6 * 3600,
        Interval::Daily => 86_400,
    }
}

/// One account the install needs (the source's, and the destination's unless it is the Patchbay
/// store), with the organization's connections to choose from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSlot {
    /// `source` or `destination`.
    pub role: String,
    pub provider: ConnectProvider,
    /// The connection chosen so far.
    pub selected: Option<Uuid>,
}

/// A source-stream input (a GitHub repository's owner) the wizard asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputField {
    pub name: String,
    pub label: String,
    pub help: String,
    pub value: String,
}

/// A stream of the recipe, and whether the install reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOption {
    pub name: String,
    pub label: String,
    pub fields: Vec<String>,
    pub selected: bool,
}

/// One row of the install's field mapping, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRow {
    pub to: String,
    pub from: String,
    /// The chosen source streams have no such field: the value will be empty.
    pub source_missing: bool,
    /// The destination has no such field: it would refuse every record.
    pub destination_missing: bool,
    /// The listing's default row (unchanged by the customer).
    pub default: bool,
}

/// The install wizard: everything every step shows, for one install (or a new one, `id` None).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WizardPage {
    pub id: Option<Uuid>,
    pub listing_slug: String,
    pub listing_name: String,
    pub version: i32,
    pub status: InstallStatus,
    pub step: WizardStep,
    pub connections: Vec<ConnectionSlot>,
    pub config_fields: Vec<ConfigField>,
    pub config: BTreeMap<String, String>,
    pub inputs: Vec<InputField>,
    pub streams: Vec<StreamOption>,
    pub mapping: Vec<MappingRow>,
    pub source_name: String,
    pub destination_name: String,
    /// Fields of the source streams chosen, for the mapping's suggestions.
    pub source_fields: Vec<String>,
    /// Fields the destination accepts, when it says (the Patchbay store takes any).
    pub destination_fields: Option<Vec<String>>,
    pub allowed_schedules: Vec<Interval>,
    pub schedule: Schedule,
    pub recipe_triggers: Vec<Trigger>,
    pub triggers: Vec<Trigger>,
    /// What still stops the install, step by step, in words.
    pub problems: Vec<(WizardStep, String)>,
    pub can_manage: bool,
}

/// A row of the installs list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSummary {
    pub id: Uuid,
    pub listing_slug: String,
    pub listing_name: String,
    pub status: InstallStatus,
    pub status_reason: Option<String>,
    pub source_name: String,
    pub destination_name: String,
    pub schedule: String,
    pub last_run: Option<RunView>,
    pub next_run_at: Option<Stamp>,
}

/// `/installs`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallsPage {
    pub org_name: String,
    pub installs: Vec<InstallSummary>,
}

/// One attempt of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    pub id: i64,
    pub job_id: i64,
    pub attempt: i32,
    pub kind: String,
    pub trigger: String,
    pub outcome: RunOutcome,
    pub phase: Option<String>,
    pub started_at: Stamp,
    pub finished_at: Option<Stamp>,
    /// Milliseconds it took (so far, while running).
    pub duration_ms: i64,
    pub pages: i32,
    pub read: i64,
    pub written: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub failed: i64,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub retry_at: Option<Stamp>,
}

/// The attempts of one run (one job), newest attempt first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunGroup {
    pub job_id: i64,
    pub attempts: Vec<RunView>,
}

/// One line of a run's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub at: Stamp,
    pub kind: EventKind,
    pub message: String,
}

/// A record a run could not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedView {
    pub stream: String,
    pub external_id: String,
    pub reason: String,
    pub at: Stamp,
}

/// A few records of the Patchbay store, for the install page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorePreview {
    pub collection: String,
    pub total: i64,
    /// (id, the record as pretty JSON), most recently changed first.
    pub records: Vec<(String, String)>,
}

/// `/installs/{id}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallPage {
    pub summary: InstallSummary,
    pub version: i32,
    /// The listing's newest published version, when it is newer than the install's.
    pub upgrade_to: Option<i32>,
    pub triggers: Vec<Trigger>,
    /// (role, account) of the connections the install uses.
    pub connections: Vec<(String, String)>,
    /// The address the source's webhooks are sent to, when the install listens for them.
    pub webhook_url: Option<String>,
    /// The customer registers that address at the provider and pastes its signing secret (the
    /// provider has no API for Patchbay to do it); `webhook_ready` says whether it is stored.
    pub webhook_manual: bool,
    pub webhook_ready: bool,
    pub streams: Vec<String>,
    pub current: Option<RunView>,
    pub history: Vec<RunGroup>,
    /// The timeline of the newest attempt.
    pub events: Vec<EventView>,
    pub quarantined: Vec<QuarantinedView>,
    pub store: Option<StorePreview>,
    pub last_success_at: Option<Stamp>,
    /// Past its schedule's window without a successful sync (see `installs::freshness`).
    pub stale: bool,
    pub can_manage: bool,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl FromStr for Schedule {
    type Err = AppError;
    /// `manual`, an interval (`1h`), or `cron:<expression>`.
    fn from_str(s: &str) -> Result<Self, AppError> {
        let s = s.trim();
        if s == "manual" || s.is_empty() {
            return Ok(Schedule::Manual);
        }
        if let Some(expr) = s.strip_prefix("cron:") {
            return Ok(Schedule::Cron(expr.trim().to_owned()));
        }
        Ok(Schedule::Every(s.parse().map_err(|_| {
            AppError::invalid("schedule", "Choose one of the schedules offered.")
        })?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(relative(3.0), "just now");
        assert_eq!(relative(45.0), "45 seconds ago");
        assert_eq!(relative(60.0), "1 minute ago");
        assert_eq!(relative(7200.0), "2 hours ago");
        assert_eq!(relative(-120.0), "in 2 minutes");
        assert_eq!(relative(3.0 * 86_400.0), "3 days ago");
    }

    #[test]
    fn steps_in_order() {
        assert_eq!(WizardStep::Connections.next(), Some(WizardStep::Settings));
        assert_eq!(WizardStep::Review.next(), None);
        assert_eq!(WizardStep::Connections.previous(), None);
        assert_eq!(WizardStep::Mapping.number(), 4);
    }

    #[test]
    fn schedules_parse() {
        assert_eq!(
            "1h".parse::<Schedule>().unwrap(),
            Schedule::Every(Interval::Hourly)
        );
        assert_eq!("manual".parse::<Schedule>().unwrap(), Schedule::Manual);
        assert_eq!(
            "cron: */30 * * * *".parse::<Schedule>().unwrap(),
            Schedule::Cron("*/30 * * * *".into())
        );
        assert!("weekly".parse::<Schedule>().is_err());
    }
}
