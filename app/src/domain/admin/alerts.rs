//! Alerts: rules the platform admins set, evaluated by the workers, raising alerts (the in-app
//! notification list) and posting them as signed webhooks.
//!
//! - A **rule** watches one condition: more than N dead letters in the last M minutes
//!   (`dead_letters`, one platform-wide alert), each install past its freshness window
//!   (`stale_installs`, an alert per install) or each connection waiting for its customer to
//!   connect again (`needs_reauth`, an alert per connection).
//! - **Evaluation** ([`evaluate`]) runs in every worker pool; a rule is taken with
//!   `for update skip locked` and at most once per period, so no leader is needed. A subject that
//!   meets the condition gets an open alert (at most one per rule and subject, kept up to date);
//!   an open alert whose subject no longer does is resolved.
//! - **Delivery** ([`deliver`]): every opened and resolved alert of a rule with a webhook URL is
//!   queued as a delivery: a JSON body fixed when it is queued, posted through the SSRF-guarded
//!   outbound client with `Patchbay-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//!   under the rule's secret (Stripe's scheme, so receivers can use any Stripe-style verifier).
//!   A delivery that gets no 2xx is tried again with capped exponential backoff and full jitter,
//!   until `max_attempts`, and then marked failed with its last error.

use super::{Viewer, STAMP};
use crate::domain::db::{self, Scope};
use crate::domain::installs::freshness::STALE;
use crate::domain::vault::{Aad, Keyring};
use crate::error::AppError;
use crate::model::admin::{AlertKind, AlertRuleView, AlertView, AlertsPage, DeliveryView, Range};
use crate::model::install::Stamp;
use base64::Engine as _;
use connectors::http::{OutboundClient, OutboundRequest};
use connectors::webhooks::{sign, SignatureScheme};
use rand::{Rng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use url::Url;
use uuid::Uuid;

/// The header deliveries are signed in.
pub const SIGNATURE_HEADER: &str = "patchbay-signature";
/// Most alerts one rule keeps open (stale installs and connections are one each).
const MAX_OPEN: i64 = 1000;
/// Deliveries one worker sends per round.
const DELIVERY_BATCH: i64 = 20;
/// How long a worker sending a delivery keeps the others off it.
const SEND_LEASE_SECS: f64 = 300.0;
/// Longest rule name, and longest webhook URL.
const MAX_NAME: usize = 100;
const MAX_URL: usize = 2000;

/// How alerts are evaluated and delivered.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// A rule is evaluated at most this often (by whichever worker gets there).
    pub evaluate_every: Duration,
    /// The first retry's ceiling; each further one doubles it, up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: i32,
    /// Where the console is (`https://patchbay.example.com`), for the links in deliveries.
    pub public_url: String,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            evaluate_every: Duration::from_secs(30),
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(3600),
            max_attempts: 8,
            public_url: String::new(),
        }
    }
}

impl AlertSettings {
    /// The wait before attempt `attempts + 1`, drawn uniformly below the ceiling (full jitter).
    fn backoff(&self, attempts: i32) -> Duration {
        let base = self.retry_base.as_secs_f64();
        let ceiling =
            (base * 2f64.powi((attempts - 1).clamp(0, 30))).min(self.retry_cap.as_secs_f64());
        Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=ceiling))
    }
}

/// A new rule as the admin's form sends it.
#[derive(Debug, Clone, Default)]
pub struct NewRule {
    pub name: String,
    pub kind: String,
    pub threshold: String,
    pub window_minutes: String,
    pub webhook_url: String,
}

/// What an admin does to a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Enable,
    Disable,
    Delete,
    /// Queues a test delivery to the rule's URL.
    Test,
    /// A new signing secret; the old one stops working at once.
    Rotate,
}

impl std::str::FromStr for RuleAction {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Self, AppError> {
        Ok(match s {
            "enable" => RuleAction::Enable,
            "disable" => RuleAction::Disable,
            "delete" => RuleAction::Delete,
            "test" => RuleAction::Test,
            "rotate" => RuleAction::Rotate,
            _ => return Err(AppError::invalid("action", "Unknown action.")),
        })
    }
}

/// A new signing secret: `pbsec_` and 32 random bytes, base64url. The whole text is the HMAC key.
fn new_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    SecretString::from(format!(
        "pbsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The webhook URL of a form, checked: http(s), no user info, no IP the outbound guard refuses.
fn webhook_url(http: &OutboundClient, raw: &str) -> Result<Option<String>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = |m: &str| AppError::invalid("webhook_url", m);
    if raw.len() > MAX_URL {
        return Err(bad("Use a URL of at most 2,000 characters."));
    }
    let url = Url::parse(raw)
        .map_err(|_| bad("Enter a full URL, such as https://hooks.example.com/patchbay."))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("Use an https:// (or http://) URL."));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "Leave user names and passwords out of the URL; deliveries are signed instead.",
        ));
    }
    http.check_url(&url).map_err(|_| {
        bad("Patchbay does not send to that address (a private or reserved network).")
    })?;
    Ok(Some(url.to_string()))
}

/// Adds a rule (platform admins). Returns its id.
pub async fn create_rule(
    pool: &PgPool,
    vault: &Keyring,
    http: &OutboundClient,
    viewer: &Viewer,
    rule: NewRule,
) -> Result<Uuid, AppError> {
    let admin = viewer.require_admin()?;
    let name = rule.name.trim();
    if name.is_empty() {
        return Err(AppError::invalid("name", "Name the rule."));
    }
    if name.chars().count() > MAX_NAME {
        return Err(AppError::invalid("name", "Use at most 100 characters."));
    }
    let kind: AlertKind = rule.kind.trim().parse()?;
    let number =
        |field: &str, raw: &str, default: i32, range: std::ops::RangeInclusive<i32>, what: &str| {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(default);
            }
            match raw.parse::<i32>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(AppError::invalid(
                    field,
                    format!(
                        "{what} is a whole number from {} to {}.",
                        range.start(),
                        range.end()
                    ),
                )),
            }
        };
    let threshold = number(
        "threshold",
        &rule.threshold,
        0,
        0..=1_000_000,
        "The threshold",
    )?;
    let window = number(
        "window_minutes",
        &rule.window_minutes,
        60,
        1..=10_080,
        "The window",
    )?;
    let url = webhook_url(http, &rule.webhook_url)?;
    let id = Uuid::new_v4();
    let sealed = vault.seal_str(&new_secret(), &Aad::alert_rule(id));
    let mut tx = db::begin(pool, Scope::System).await?;
    sqlx::query(
        "insert into alert_rules (id, name, kind, threshold, window_minutes, webhook_url, \
                                  secret_enc, created_by) \
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(name)
    .bind(kind.as_str())
    .bind(threshold)
    .bind(window)
    .bind(&url)
    .bind(sealed)
    .bind(admin)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(rule = %id, kind = kind.as_str(), %admin, "alert rule created");
    Ok(id)
}

/// Enables, disables, deletes, tests or rotates the secret of a rule (platform admins).
pub async fn rule_action(
    pool: &PgPool,
    vault: &Keyring,
    public_url: &str,
    viewer: &Viewer,
    rule: Uuid,
    action: RuleAction,
) -> Result<(), AppError> {
    let admin = viewer.require_admin()?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let row: Option<(String, String, Option<String>)> =
        sqlx::query_as("select name, kind, webhook_url from alert_rules where id = $1 for update")
            .bind(rule)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((name, kind, url)) = row else {
        return Err(AppError::not_found(
            "That alert rule does not exist (any more).",
        ));
    };
    match action {
        RuleAction::Enable | RuleAction::Disable => {
            sqlx::query("update alert_rules set enabled = $2, evaluated_at = null where id = $1")
                .bind(rule)
                .bind(action == RuleAction::Enable)
                .execute(&mut *tx)
                .await?;
        }
        RuleAction::Delete => {
            sqlx::query("delete from alert_rules where id = $1")
                .bind(rule)
                .execute(&mut *tx)
                .await?;
        }
        RuleAction::Rotate => {
            sqlx::query("update alert_rules set secret_enc = $2 where id = $1")
                .bind(rule)
                .bind(vault.seal_str(&new_secret(), &Aad::alert_rule(rule)))
                .execute(&mut *tx)
                .await?;
        }
        RuleAction::Test => {
            let Some(url) = url else {
                return Err(AppError::invalid(
                    "action",
                    "This rule has no webhook URL to test; its alerts show here only.",
                ));
            };
            let to = Target {
                rule,
                name: &name,
                kind: &kind,
                url: &url,
                public_url,
            };
            queue_delivery(&mut tx, &to, "alert.test", None).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(%rule, ?action, %admin, "alert rule changed");
    Ok(())
}

/// Marks an open alert as seen by the admin (it stays open until its condition clears).
pub async fn acknowledge(pool: &PgPool, viewer: &Viewer, alert: i64) -> Result<(), AppError> {
    let admin = viewer.require_admin()?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let done = sqlx::query(
        "update alerts set acknowledged_at = now(), acknowledged_by = $2 \
         where id = $1 and acknowledged_at is null",
    )
    .bind(alert)
    .bind(admin)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    if done.rows_affected() == 0 {
        return Err(AppError::not_found(
            "That alert is gone or was already acknowledged.",
        ));
    }
    Ok(())
}

/// `/admin/alerts`: the rules, the open and recently resolved alerts, the newest deliveries.
pub async fn page(pool: &PgPool, vault: &Keyring, viewer: &Viewer) -> Result<AlertsPage, AppError> {
    viewer.require_admin()?;
    let mut tx = super::begin_read(pool).await?;
    type RuleRow = (
        Uuid,
        String,
        String,
        i32,
        i32,
        Option<String>,
        Vec<u8>,
        bool,
        i64,
        Option<String>,
        Option<f64>,
        Option<String>,
        Option<f64>,
    );
    let rows: Vec<RuleRow> = sqlx::query_as(&format!(
        "select r.id, r.name, r.kind, r.threshold, r.window_minutes, r.webhook_url, r.secret_enc, \
                r.enabled, \
                (select count(*) from alerts a where a.rule_id = r.id and a.resolved_at is null), \
                to_char(l.at at time zone 'utc', {STAMP}), extract(epoch from now() - l.at)::float8, \
                to_char(r.evaluated_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - r.evaluated_at)::float8 \
         from alert_rules r \
         left join lateral (select max(opened_at) as at from alerts a where a.rule_id = r.id) l on true \
         order by r.created_at"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let mut rules = Vec::with_capacity(rows.len());
    for (id, name, kind, threshold, window, url, sealed, enabled, open, lo, lo_ago, ev, ev_ago) in
        rows
    {
        let kind: AlertKind = kind.parse()?;
        let secret = vault
            .open_str(&sealed, &Aad::alert_rule(id))
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_else(|_| "(does not open with the current keys)".to_owned());
        rules.push(AlertRuleView {
            id,
            name,
            kind,
            condition: condition(kind, threshold, window),
            webhook_url: url,
            secret,
            enabled,
            open,
            last_opened: lo.zip(lo_ago).map(|(t, a)| Stamp::new(t, a)),
            evaluated: ev.zip(ev_ago).map(|(t, a)| Stamp::new(t, a)),
        });
    }
    let open = alerts(&mut tx, "a.resolved_at is null").await?;
    let open_total: i64 =
        sqlx::query_scalar("select count(*) from alerts where resolved_at is null")
            .fetch_one(&mut *tx)
            .await?;
    let resolved = alerts(&mut tx, "a.resolved_at > now() - interval '7 days'").await?;
    type DeliveryRow = (
        i64,
        String,
        String,
        String,
        String,
        i32,
        Option<i32>,
        Option<String>,
        String,
        f64,
        String,
        f64,
    );
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "select d.id, r.name, d.event, d.url, d.state, d.attempts, d.last_status, d.last_error, \
                to_char(d.created_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - d.created_at)::float8, \
                to_char(d.next_attempt_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - d.next_attempt_at)::float8 \
         from alert_deliveries d join alert_rules r on r.id = d.rule_id \
         order by d.id desc limit 50"
    ))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let deliveries = rows
        .into_iter()
        .map(
            |(id, rule, event, url, state, attempts, status, error, c, c_ago, n, n_ago)| {
                let pending = state == "pending";
                DeliveryView {
                    id,
                    rule,
                    event,
                    url,
                    state,
                    attempts,
                    last_status: status,
                    last_error: error,
                    created: Stamp::new(c, c_ago),
                    next_attempt: pending.then(|| Stamp::new(n, n_ago)),
                }
            },
        )
        .collect();
    Ok(AlertsPage {
        rules,
        open,
        open_total,
        resolved,
        deliveries,
    })
}

async fn alerts(conn: &mut PgConnection, which: &str) -> sqlx::Result<Vec<AlertView>> {
    type Row = (
        i64,
        String,
        String,
        String,
        Option<String>,
        Value,
        String,
        f64,
        Option<String>,
        Option<f64>,
        Option<String>,
        Option<String>,
        Option<f64>,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select a.id, r.name, r.kind, a.title, o.name, a.detail, \
                to_char(a.opened_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - a.opened_at)::float8, \
                to_char(a.resolved_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - a.resolved_at)::float8, \
                u.email, to_char(a.acknowledged_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - a.acknowledged_at)::float8 \
         from alerts a join alert_rules r on r.id = a.rule_id \
         left join organizations o on o.id = a.tenant_id \
         left join users u on u.id = a.acknowledged_by \
         where {which} order by a.opened_at desc, a.id desc limit 100"
    ))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, rule, kind, title, org, detail, o, o_ago, r, r_ago, who, k, k_ago)| {
                Some(AlertView {
                    id,
                    rule,
                    kind: kind.parse().ok()?,
                    title,
                    org_name: org,
                    link: detail["link"]
                        .as_str()
                        .unwrap_or("/admin/failures")
                        .to_owned(),
                    opened: Stamp::new(o, o_ago),
                    resolved: r.zip(r_ago).map(|(t, a)| Stamp::new(t, a)),
                    acknowledged: k.zip(k_ago).map(|(t, a)| {
                        (
                            who.unwrap_or_else(|| "a former admin".into()),
                            Stamp::new(t, a),
                        )
                    }),
                })
            },
        )
        .collect())
}

/// The condition in words.
fn condition(kind: AlertKind, threshold: i32, window: i32) -> String {
    match kind {
        AlertKind::DeadLetters => format!(
            "More than {threshold} dead letter{} in the last {}",
            if threshold == 1 { "" } else { "s" },
            minutes(window)
        ),
        AlertKind::StaleInstalls => {
            "An active install's data is older than two of its schedule's windows".into()
        }
        AlertKind::NeedsReauth => "A connection waits for its customer to connect again".into(),
    }
}

/// For "in the last …": "45 minutes", "hour", "2 hours", "1 day 6 hours".
fn minutes(n: i32) -> String {
    let plural = |n: i32, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match n {
        1 => return "minute".into(),
        60 => return "hour".into(),
        1440 => return "day".into(),
        _ => {}
    }
    match n {
        n if n < 60 || n % 60 != 0 && n < 24 * 60 => plural(n, "minute"),
        n if n < 24 * 60 || n % (24 * 60) != 0 => {
            let (d, h) = (n / (24 * 60), n % (24 * 60) / 60);
            match d {
                0 => plural(h, "hour"),
                d => format!("{} {}", plural(d, "day"), plural(h, "hour")),
            }
        }
        n => plural(n / (24 * 60), "day"),
    }
}

/// The dashboard's range that covers `window` minutes.
fn range_covering(window: i32) -> Range {
    match window {
        ..=60 => Range::Hour,
        61..=1440 => Range::Day,
        1441..=10_080 => Range::Week,
        _ => Range::Month,
    }
}

/// What meets a rule's condition now.
struct Finding {
    subject: String,
    tenant: Option<Uuid>,
    title: String,
    detail: Value,
}

async fn findings(
    conn: &mut PgConnection,
    kind: AlertKind,
    threshold: i32,
    window: i32,
) -> sqlx::Result<Vec<Finding>> {
    match kind {
        AlertKind::DeadLetters => {
            let count: i64 = sqlx::query_scalar(
                "select count(*) from sync_runs \
                 where outcome = 'dead' and finished_at > now() - make_interval(mins => $1)",
            )
            .bind(window)
            .fetch_one(&mut *conn)
            .await?;
            if count <= i64::from(threshold) {
                return Ok(Vec::new());
            }
            let top: Vec<(String, String, i64)> = sqlx::query_as(
                "select coalesce(r.error_class, 'unknown'), coalesce(l.slug, '(deleted listing)'), count(*) \
                 from sync_runs r left join listings l on l.id = r.listing_id \
                 where r.outcome = 'dead' and r.finished_at > now() - make_interval(mins => $1) \
                 group by 1, 2 order by 3 desc, 1, 2 limit 5",
            )
            .bind(window)
            .fetch_all(&mut *conn)
            .await?;
            let range = range_covering(window);
            Ok(vec![Finding {
                subject: "platform".into(),
                tenant: None,
                title: format!(
                    "{count} dead letter{} in the last {} (more than {threshold})",
                    if count == 1 { "" } else { "s" },
                    minutes(window)
                ),
                detail: json!({
                    "count": count,
                    "threshold": threshold,
                    "window_minutes": window,
                    "top": top.iter().map(|(class, listing, n)| json!({
                        "error_class": class, "listing": listing, "count": n,
                    })).collect::<Vec<_>>(),
                    "link": format!("/admin/failures?outcome=dead&range={}", range.as_str()),
                }),
            }])
        }
        AlertKind::StaleInstalls => {
            type Row = (Uuid, Uuid, String, String, String, i64);
            let rows: Vec<Row> = sqlx::query_as(&format!(
                "select i.tenant_id, i.id, o.name, l.name, \
                        to_char(coalesce(i.last_synced_at, i.installed_at) at time zone 'utc', {STAMP}), \
                        s.window_secs::int8 \
                 from installs i \
                 join sync_schedules s on s.tenant_id = i.tenant_id and s.install_id = i.id \
                 join organizations o on o.id = i.tenant_id \
                 join listings l on l.id = i.listing_id \
                 where {STALE} \
                 order by coalesce(i.last_synced_at, i.installed_at), i.id limit $1"
            ))
            .bind(MAX_OPEN)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(tenant, install, org, listing, since, window)| Finding {
                    subject: format!("install:{install}"),
                    tenant: Some(tenant),
                    title: format!("{listing} for {org}: no successful sync since {since}"),
                    detail: json!({
                        "install_id": install,
                        "listing": listing,
                        "data_as_of": since,
                        "window_secs": window,
                        "link": format!("/admin/failures?tenant={tenant}"),
                    }),
                })
                .collect())
        }
        AlertKind::NeedsReauth => {
            type Row = (Uuid, Uuid, String, String, Option<String>, Option<String>);
            let rows: Vec<Row> = sqlx::query_as(
                "select c.tenant_id, c.id, o.name, c.provider, c.account_label, c.status_reason \
                 from connections c join organizations o on o.id = c.tenant_id \
                 where c.status = 'needs_reauth' order by c.updated_at, c.id limit $1",
            )
            .bind(MAX_OPEN)
            .fetch_all(&mut *conn)
            .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(tenant, connection, org, provider, account, reason)| Finding {
                        subject: format!("connection:{connection}"),
                        tenant: Some(tenant),
                        title: format!(
                            "{org}'s {provider} connection{} needs reauthorization",
                            account
                                .as_deref()
                                .map(|a| format!(" ({a})"))
                                .unwrap_or_default()
                        ),
                        detail: json!({
                            "connection_id": connection,
                            "provider": provider,
                            "reason": reason,
                            "link": format!("/admin/failures?tenant={tenant}"),
                        }),
                    },
                )
                .collect())
        }
    }
}

/// What one round of evaluation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evaluated {
    pub rules: usize,
    pub opened: usize,
    pub resolved: usize,
}

/// Evaluates every enabled rule not evaluated within `settings.evaluate_every` (and not being
/// evaluated by another worker right now), opening and resolving alerts and queueing their
/// deliveries.
pub async fn evaluate(pool: &PgPool, settings: &AlertSettings) -> sqlx::Result<Evaluated> {
    let every = settings.evaluate_every.as_secs_f64();
    let mut done = Evaluated::default();
    let mut tx = db::begin(pool, Scope::System).await?;
    let due: Vec<Uuid> = sqlx::query_scalar(
        "select id from alert_rules where enabled \
         and (evaluated_at is null or evaluated_at <= now() - make_interval(secs => $1)) \
         order by evaluated_at nulls first",
    )
    .bind(every)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    for rule in due {
        let mut tx = db::begin(pool, Scope::System).await?;
        let row: Option<(String, String, i32, i32, Option<String>)> = sqlx::query_as(
            "select name, kind, threshold, window_minutes, webhook_url from alert_rules \
             where id = $1 and enabled \
               and (evaluated_at is null or evaluated_at <= now() - make_interval(secs => $2)) \
             for update skip locked",
        )
        .bind(rule)
        .bind(every)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name, kind, threshold, window, url)) = row else {
            continue;
        };
        let Ok(kind) = kind.parse::<AlertKind>() else {
            continue;
        };
        let found = findings(&mut tx, kind, threshold, window).await?;
        let subjects: Vec<&str> = found.iter().map(|f| f.subject.as_str()).collect();
        let tenants: Vec<Option<Uuid>> = found.iter().map(|f| f.tenant).collect();
        let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
        let details: Vec<Value> = found.iter().map(|f| f.detail.clone()).collect();
        // Open alerts keep their subject's newest title and detail.
        sqlx::query(
            "update alerts a set title = f.title, detail = f.detail, updated_at = now() \
             from unnest($2::text[], $3::text[], $4::jsonb[]) as f(subject, title, detail) \
             where a.rule_id = $1 and a.resolved_at is null and a.subject = f.subject \
               and (a.title, a.detail) is distinct from (f.title, f.detail)",
        )
        .bind(rule)
        .bind(&subjects)
        .bind(&titles)
        .bind(&details)
        .execute(&mut *tx)
        .await?;
        let opened: Vec<i64> = sqlx::query_scalar(
            "insert into alerts (rule_id, subject, tenant_id, title, detail) \
             select $1, f.subject, f.tenant, f.title, f.detail \
             from unnest($2::text[], $3::uuid[], $4::text[], $5::jsonb[]) \
                  as f(subject, tenant, title, detail) \
             on conflict (rule_id, subject) where resolved_at is null do nothing \
             returning id",
        )
        .bind(rule)
        .bind(&subjects)
        .bind(&tenants)
        .bind(&titles)
        .bind(&details)
        .fetch_all(&mut *tx)
        .await?;
        let resolved: Vec<i64> = sqlx::query_scalar(
            "update alerts set resolved_at = now(), updated_at = now() \
             where rule_id = $1 and resolved_at is null and subject <> all($2) returning id",
        )
        .bind(rule)
        .bind(&subjects)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(url) = &url {
            let to = Target {
                rule,
                name: &name,
                kind: kind.as_str(),
                url,
                public_url: &settings.public_url,
            };
            for (event, ids) in [("alert.opened", &opened), ("alert.resolved", &resolved)] {
                for alert in payloads(&mut tx, ids, settings).await? {
                    queue_delivery(&mut tx, &to, event, Some(alert)).await?;
                }
            }
        }
        sqlx::query("update alert_rules set evaluated_at = now() where id = $1")
            .bind(rule)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !opened.is_empty() || !resolved.is_empty() {
            tracing::info!(%rule, opened = opened.len(), resolved = resolved.len(), "alerts changed");
        }
        done.rules += 1;
        done.opened += opened.len();
        done.resolved += resolved.len();
    }
    Ok(done)
}

/// The `alert` objects of the deliveries' bodies.
async fn payloads(
    conn: &mut PgConnection,
    ids: &[i64],
    settings: &AlertSettings,
) -> sqlx::Result<Vec<(i64, Value)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    type Row = (
        i64,
        String,
        Option<Uuid>,
        Option<String>,
        String,
        Value,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select a.id, a.subject, a.tenant_id, o.name, a.title, a.detail, \
                to_char(a.opened_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                to_char(a.resolved_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
         from alerts a left join organizations o on o.id = a.tenant_id \
         where a.id = any($1) order by a.id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, subject, tenant, org, title, mut detail, opened, resolved)| {
                let link = detail
                    .as_object_mut()
                    .and_then(|d| d.remove("link"))
                    .and_then(|l| l.as_str().map(|l| format!("{}{l}", settings.public_url)));
                let organization = tenant.map(|id| json!({ "id": id, "name": org }));
                let alert = json!({
                    "id": id,
                    "subject": subject,
                    "title": title,
                    "organization": organization,
                    "opened_at": opened,
                    "resolved_at": resolved,
                    "detail": detail,
                    "link": link,
                });
                (id, alert)
            },
        )
        .collect())
}

/// Where a rule's deliveries go, and what their bodies say of the rule.
struct Target<'a> {
    rule: Uuid,
    name: &'a str,
    kind: &'a str,
    url: &'a str,
    public_url: &'a str,
}

/// Queues one delivery of `event` (with the alert's id and payload, none for a test); its body is
/// fixed here and signed at every attempt.
async fn queue_delivery(
    conn: &mut PgConnection,
    to: &Target<'_>,
    event: &str,
    alert: Option<(i64, Value)>,
) -> sqlx::Result<()> {
    let (alert_id, payload) = alert.unzip();
    let body = json!({
        "event": event,
        "rule": { "id": to.rule, "name": to.name, "kind": to.kind },
        "alert": payload,
        "console": format!("{}/admin/alerts", to.public_url),
    });
    sqlx::query(
        "insert into alert_deliveries (rule_id, alert_id, event, url, body) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(to.rule)
    .bind(alert_id)
    .bind(event)
    .bind(to.url)
    .bind(body.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// The scheme deliveries are signed with.
pub fn signature_scheme() -> SignatureScheme {
    SignatureScheme::Stripe {
        header: SIGNATURE_HEADER.to_owned(),
        tolerance_secs: 300,
    }
}

/// What one round of delivery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Sends the deliveries that are due (at most 20, at once), and records each outcome.
pub async fn deliver(
    pool: &PgPool,
    vault: &Keyring,
    http: &OutboundClient,
    settings: &AlertSettings,
) -> sqlx::Result<Delivered> {
    let mut tx = db::begin(pool, Scope::System).await?;
    type Row = (i64, Uuid, String, String, String, i32, Vec<u8>);
    let due: Vec<Row> = sqlx::query_as(
        "with due as ( \
             select id from alert_deliveries where state = 'pending' and next_attempt_at <= now() \
             order by next_attempt_at limit $1 for update skip locked) \
         update alert_deliveries d \
            set attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2) \
         from due, alert_rules r \
         where d.id = due.id and r.id = d.rule_id \
         returning d.id, d.rule_id, d.event, d.url, d.body, d.attempts, r.secret_enc",
    )
    .bind(DELIVERY_BATCH)
    .bind(SEND_LEASE_SECS)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let sends = due.into_iter().map(
        |(id, rule, event, url, body, attempts, sealed)| async move {
            let result = match vault.open_str(&sealed, &Aad::alert_rule(rule)) {
                Ok(secret) => send(http, id, &event, &url, body, &secret).await,
                Err(_) => Err((
                    None,
                    "the rule's signing secret does not open with the current keys".to_owned(),
                )),
            };
            (id, attempts, result)
        },
    );
    let mut done = Delivered::default();
    for (id, attempts, result) in futures::future::join_all(sends).await {
        let mut tx = db::begin(pool, Scope::System).await?;
        match result {
            Ok(status) => {
                sqlx::query(
                    "update alert_deliveries set state = 'delivered', delivered_at = now(), \
                            last_status = $2, last_error = null where id = $1",
                )
                .bind(id)
                .bind(i32::from(status))
                .execute(&mut *tx)
                .await?;
                done.delivered += 1;
            }
            Err((status, error)) => {
                let failed = attempts >= settings.max_attempts;
                let wait = settings.backoff(attempts).as_secs_f64();
                sqlx::query(
                    "update alert_deliveries set last_status = $2, last_error = $3, \
                            state = case when $4 then 'failed' else 'pending' end, \
                            next_attempt_at = now() + make_interval(secs => $5) \
                     where id = $1",
                )
                .bind(id)
                .bind(status.map(i32::from))
                .bind(&error)
                .bind(failed)
                .bind(wait)
                .execute(&mut *tx)
                .await?;
                tracing::warn!(delivery = id, attempts, failed, error = %error, "alert delivery failed");
                if failed {
                    done.failed += 1;
                } else {
                    done.retrying += 1;
                }
            }
        }
        tx.commit().await?;
    }
    Ok(done)
}

/// Posts one delivery: the 2xx status, or (status, error) for anything else.
async fn send(
    http: &OutboundClient,
    id: i64,
    event: &str,
    url: &str,
    body: String,
    secret: &SecretString,
) -> Result<u16, (Option<u16>, String)> {
    let url = Url::parse(url).map_err(|_| (None, "the URL does not parse".to_owned()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (name, value) = sign(
        &signature_scheme(),
        secret.expose_secret().as_bytes(),
        body.as_bytes(),
        now,
    );
    let mut req = OutboundRequest::new(http::Method::POST, url)
        .header("content-type", "application/json")
        .header("patchbay-event", event)
        .header("patchbay-delivery", &id.to_string());
    req.headers.insert(name, value);
    req.body = Some(body.into());
    match http.send_ok(req, None).await {
        Ok(resp) => Ok(resp.status),
        Err(err) => Err((err.status, err.message.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_as_words() {
        assert_eq!(minutes(1), "minute");
        assert_eq!(minutes(60), "hour");
        assert_eq!(minutes(61), "61 minutes");
        assert_eq!(minutes(45), "45 minutes");
        assert_eq!(minutes(90), "90 minutes");
        assert_eq!(minutes(120), "2 hours");
        assert_eq!(minutes(1440), "day");
        assert_eq!(minutes(2880), "2 days");
        assert_eq!(minutes(1500), "1 day 1 hour");
        assert_eq!(minutes(10_080), "7 days");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = AlertSettings {
            retry_base: Duration::from_secs(10),
            retry_cap: Duration::from_secs(60),
            ..AlertSettings::default()
        };
        for _ in 0..200 {
            assert!(s.backoff(1) <= Duration::from_secs(10));
            assert!(s.backoff(2) <= Duration::from_secs(20));
            assert!(s.backoff(9) <= Duration::from_secs(60));
        }
        // Full jitter: the waits spread over the range rather than sitting at its top.
        let waits: Vec<Duration> = (0..200).map(|_| s.backoff(9)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_secs(30)));
        assert!(waits.iter().any(|w| *w > Duration::from_secs(30)));
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.expose_secret().starts_with("pbsec_"));
        assert_eq!(a.expose_secret().len(), 6 + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
