//! Recurring syncs: an active install's schedule (`sync_schedules`), an interval or a cron
//! expression, and the scheduler tick that turns due schedules into jobs.
//!
//! Any number of processes tick at once, with no leader: each claims due rows with
//! `for update skip locked`, enqueues their jobs and moves `next_run_at` to the next occurrence
//! after now, all in one transaction. A window missed while nothing ticked (every worker down
//! for a day) is therefore run once when ticking resumes, not once per missed window.

use crate::domain::db::{self, Scope};
use crate::domain::queue::{self, JobKind, NewJob, QueueError};
use crate::error::AppError;
use crate::model::install::{interval_secs, Schedule};
use croner::Cron;
use sqlx::{PgConnection, PgPool};
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// Checks a cron expression a customer typed (five fields, read in UTC): it must parse, and its
/// runs must never come closer together than `min_secs` (the recipe's shortest interval).
/// Returns the expression tidied (single spaces).
pub fn check_cron(expr: &str, min_secs: i64) -> Result<String, AppError> {
    let tidy = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    let bad = |message: String| AppError::invalid("cron", message);
    if tidy.split(' ').count() != 5 {
        return Err(bad(
            "Write five fields: minute, hour, day of month, month, day of week (such as 0 */6 * * *).".into(),
        ));
    }
    let cron = Cron::from_str(&tidy).map_err(|e| {
        bad(format!(
            "That is not a cron expression Patchbay can read: {e}."
        ))
    })?;
    let gaps = gaps(&cron);
    if gaps.is_empty() {
        return Err(bad("That expression never runs.".into()));
    }
    let closest = gaps.iter().copied().min().unwrap_or(i64::MAX);
    if closest < min_secs {
        return Err(bad(format!(
            "That runs every {} at times; this integration allows at most one run every {}.",
            span(closest),
            span(min_secs)
        )));
    }
    Ok(tidy)
}

/// The seconds between consecutive runs of `cron`, over its next 400 runs (a year or so of most
/// expressions: enough to see every pattern repeat).
fn gaps(cron: &Cron) -> Vec<i64> {
    let mut at = chrono::Utc::now();
    let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut gaps = Vec::new();
    for _ in 0..400 {
        let Ok(next) = cron.find_next_occurrence(&at, false) else {
            break;
        };
        if let Some(previous) = previous {
            gaps.push((next - previous).num_seconds());
        }
        previous = Some(next);
        at = next;
    }
    gaps
}

/// The longest a schedule leaves between two runs: its interval, or a cron expression's widest
/// gap (a weekday schedule's weekend). What freshness is measured against.
pub fn window_secs(every_secs: Option<i32>, cron: Option<&str>) -> Option<i32> {
    if let Some(secs) = every_secs {
        return Some(secs);
    }
    let cron = Cron::from_str(cron?).ok()?;
    let widest = gaps(&cron).into_iter().max()?;
    i32::try_from(widest).ok()
}

fn span(secs: i64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// When a schedule next runs after `after`.
pub fn next_after(
    every_secs: Option<i32>,
    cron: Option<&str>,
    after: OffsetDateTime,
) -> Option<OffsetDateTime> {
    if let Some(secs) = every_secs {
        return Some(after + time::Duration::seconds(i64::from(secs)));
    }
    let cron = Cron::from_str(cron?).ok()?;
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(
        after.unix_timestamp(),
        after.nanosecond(),
    )?;
    let next = cron.find_next_occurrence(&start, false).ok()?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

/// Sets (or, for manual-only, removes) an install's schedule, in the caller's transaction. The
/// first run comes one period from now: installing starts a sync of its own.
pub async fn set(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    schedule: &Schedule,
) -> sqlx::Result<()> {
    let (every, cron) = match schedule {
        Schedule::Every(interval) => (Some(interval_secs(*interval) as i32), None),
        Schedule::Cron(expr) => (None, Some(expr.as_str())),
        Schedule::Manual => {
            return remove(conn, tenant, install).await;
        }
    };
    let Some(next) = next_after(every, cron, OffsetDateTime::now_utc()) else {
        return remove(conn, tenant, install).await;
    };
    let window = window_secs(every, cron);
    sqlx::query(
        "insert into sync_schedules (tenant_id, install_id, every_secs, cron, next_run_at, window_secs) \
         values ($1, $2, $3, $4, $5, $6) \
         on conflict (tenant_id, install_id) do update set every_secs = $3, cron = $4, \
             window_secs = $6, \
             next_run_at = case when sync_schedules.every_secs is not distinct from $3 \
                                 and sync_schedules.cron is not distinct from $4 \
                            then least(sync_schedules.next_run_at, $5) else $5 end",
    )
    .bind(tenant)
    .bind(install)
    .bind(every)
    .bind(cron)
    .bind(next)
    .bind(window)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes an install's schedule (paused, uninstalled, manual only).
pub async fn remove(conn: &mut PgConnection, tenant: Uuid, install: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from sync_schedules where tenant_id = $1 and install_id = $2")
        .bind(tenant)
        .bind(install)
        .execute(conn)
        .await?;
    Ok(())
}

/// When the install runs next on its schedule.
pub async fn next_run(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
) -> sqlx::Result<Option<OffsetDateTime>> {
    sqlx::query_scalar(
        "select next_run_at from sync_schedules where tenant_id = $1 and install_id = $2",
    )
    .bind(tenant)
    .bind(install)
    .fetch_optional(conn)
    .await
}

/// Enqueues the jobs of up to `limit` due schedules and moves each past now. Returns how many
/// schedules came due.
pub async fn tick(pool: &PgPool, limit: i64) -> Result<usize, QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    // Only active installs have schedules (pausing removes them), so no join is needed here.
    let due: Vec<(Uuid, Uuid, Option<i32>, Option<String>)> = sqlx::query_as(
        "select tenant_id, install_id, every_secs, cron from sync_schedules \
         where next_run_at <= now() order by next_run_at limit $1 for update skip locked",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let now = OffsetDateTime::now_utc();
    for (tenant, install, every, cron) in &due {
        let job = NewJob {
            tenant: *tenant,
            install: *install,
            kind: JobKind::Incremental,
            trigger: "schedule".into(),
            run_at: None,
            payload: serde_json::json!({}),
        };
        match queue::enqueue_in(&mut tx, &job).await {
            // A run already waits (or is being enqueued): it does this window's work.
            Ok(_) | Err(QueueError::Busy) => {}
            Err(err) => return Err(err),
        }
        let next =
            next_after(*every, cron.as_deref(), now).unwrap_or(now + time::Duration::days(365));
        sqlx::query(
            "update sync_schedules set next_run_at = $3, last_enqueued_at = now() \
             where tenant_id = $1 and install_id = $2",
        )
        .bind(tenant)
        .bind(install)
        .bind(next)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_are_checked_against_the_shortest_interval() {
        assert_eq!(check_cron(" 0  */6 * * * ", 3600).unwrap(), "0 */6 * * *");
        assert!(check_cron("*/5 * * * *", 3600).is_err());
        assert!(check_cron("*/5 * * * *", 300).is_ok());
        assert!(check_cron("0 9,17 * * *", 86_400).is_err(), "8 h apart");
        assert!(
            check_cron("0 9 * * MON-FRI", 86_400).is_ok(),
            "weekdays are 24 h apart"
        );
        assert!(check_cron("not cron", 60).is_err());
        assert!(check_cron("* * * *", 60).is_err());
    }

    #[test]
    fn next_runs() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            next_after(Some(300), None, t).unwrap().unix_timestamp(),
            1_700_000_300
        );
        // 1_700_000_000 is 2023-11-14 22:13:20 UTC; the next quarter hour is 22:15.
        assert_eq!(
            next_after(None, Some("*/15 * * * *"), t)
                .unwrap()
                .unix_timestamp(),
            1_700_000_100
        );
    }
}
