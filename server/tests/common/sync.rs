//! Sync-engine helpers: Patchbay served at its real address (so that the sandbox's webhooks reach
//! it), the sandbox apps registered as OAuth providers, a vendor's published listing, a customer
//! with connected accounts, installs made through the wizard's server functions, and the worker
//! pool or a single engine to run them.

use super::{connected_id, spawn_app_on, AppOptions, TestApp};
use app::domain::connections::ConnectSettings;
use app::domain::db::{self, Scope};
use app::domain::queue;
use app::domain::sync::{Control, Engine, EngineSettings, Settled};
use connectors::sandbox::{Sandbox, SandboxClient, SandboxConfig, SandboxHandle, SeedSizes};
use reqwest::{header, Client, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const CLIENT_ID: &str = "patchbay-sync-test";
pub const CLIENT_SECRET: &str = "sync-test-client-secret-Hq4n8Vd2";
/// The token `/metrics` of a [`sync_env`] asks for.
pub const METRICS_TOKEN: &str = "metrics-test-token-6Rk2Pq9Wz";

/// `GET url` as Prometheus scrapes it, with `token` as the bearer.
pub async fn scrape(url: &str, token: &str) -> reqwest::Response {
    super::client()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The value of the first sample of `metric` in Prometheus text whose labels contain all of
/// `labels`.
pub fn metric_sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// How [`sync_env`] sets things up.
pub struct SyncOptions {
    pub seed: SeedSizes,
    /// Specs to use instead of the built-in ones (a lower documented rate limit, say).
    pub specs: Vec<connectors::spec::ProviderSpec>,
    /// The sandbox's own per-token limit (0: none).
    pub rate_limit_per_sec: u32,
    pub pool_size: u32,
    pub access_token_ttl: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            seed: SeedSizes::uniform(25),
            specs: Vec::new(),
            rate_limit_per_sec: 0,
            pool_size: 10,
            access_token_ttl: Duration::from_secs(3600),
        }
    }
}

/// Patchbay, the sandbox, and a customer with both sandbox accounts connected.
pub struct SyncEnv {
    pub app: TestApp,
    /// The vault key the app seals with, for child processes.
    pub key: secrecy::SecretString,
    pub sandbox: SandboxHandle,
    pub vendor: Client,
    pub admin: Client,
    pub customer: Client,
    pub tenant: Uuid,
    pub shop: Uuid,
    pub crm: Uuid,
}

/// A listing recipe, as the editor's form takes it.
pub struct Recipe<'a> {
    pub source: &'a str,
    pub streams: &'a [&'a str],
    pub destination: &'a str,
    pub destination_stream: &'a str,
    pub mapping: &'a [(&'a str, &'a str)],
    pub triggers: &'a [&'a str],
    pub schedules: &'a [&'a str],
}

/// Sandbox Shop customers into the Patchbay store's `people`.
pub const SHOP_TO_STORE: Recipe<'static> = Recipe {
    source: "sandbox-shop",
    streams: &["customers"],
    destination: "patchbay",
    destination_stream: "people",
    mapping: &[
        ("email", "email"),
        ("first_name", "first_name"),
        ("last_name", "last_name"),
        ("changed_at", "updated_at"),
    ],
    triggers: &["schedule", "webhook", "manual"],
    schedules: &["5m", "1h"],
};

/// Sandbox Shop orders into the Patchbay store's `orders`.
pub const ORDERS_TO_STORE: Recipe<'static> = Recipe {
    source: "sandbox-shop",
    streams: &["orders"],
    destination: "patchbay",
    destination_stream: "orders",
    mapping: &[("total", "total_cents"), ("status", "status")],
    triggers: &["manual"],
    schedules: &["1h"],
};

/// Sandbox Shop customers into Sandbox CRM contacts.
pub const SHOP_TO_CRM: Recipe<'static> = Recipe {
    source: "sandbox-shop",
    streams: &["customers"],
    destination: "sandbox-crm",
    destination_stream: "contacts",
    mapping: &[("email", "email"), ("name", "first_name")],
    triggers: &["schedule", "webhook", "manual"],
    schedules: &["5m", "1h"],
};

pub fn recipe_form(name: &str, recipe: &Recipe<'_>) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = vec![
        ("form[name]".into(), name.into()),
        ("form[tagline]".into(), format!("{name}, for tests")),
        ("form[description]".into(), "Keeps records in step.".into()),
        ("form[categories][0]".into(), "crm".into()),
        ("form[source_provider]".into(), recipe.source.into()),
        (
            "form[destination_provider]".into(),
            recipe.destination.into(),
        ),
        (
            "form[destination_stream]".into(),
            recipe.destination_stream.into(),
        ),
        ("form[default_schedule]".into(), recipe.schedules[0].into()),
    ];
    for (i, s) in recipe.streams.iter().enumerate() {
        form.push((format!("form[source_streams][{i}]"), (*s).into()));
    }
    for (i, (to, from)) in recipe.mapping.iter().enumerate() {
        form.push((format!("form[mapping][{i}][to]"), (*to).into()));
        form.push((format!("form[mapping][{i}][from]"), (*from).into()));
    }
    for (i, t) in recipe.triggers.iter().enumerate() {
        form.push((format!("form[triggers][{i}]"), (*t).into()));
    }
    for (i, s) in recipe.schedules.iter().enumerate() {
        form.push((format!("form[allowed_schedules][{i}]"), (*s).into()));
    }
    form
}

/// The address of a test database, for child processes.
pub fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap()
    )
}

/// Starts the sandbox (Patchbay registered with the real callback address) and Patchbay at its
/// real address, publishes `SHOP_TO_STORE` as `shop-to-store` and `SHOP_TO_CRM` as
/// `shop-to-crm`, and signs up a customer who connects both sandbox apps.
pub async fn sync_env(db: PgPool, options: SyncOptions) -> SyncEnv {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let sandbox = Sandbox::spawn(SandboxConfig {
        clients: vec![SandboxClient {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![format!("{public_url}/oauth/callback")],
            name: "Patchbay".into(),
        }],
        seed: options.seed,
        rate_limit_per_sec: options.rate_limit_per_sec,
        access_token_ttl: options.access_token_ttl,
        fault_api: true,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let mut settings = connect_settings(&public_url, &sandbox.base_url, Duration::from_secs(60));
    for spec in options.specs {
        settings = settings.with_spec(spec);
    }
    let key = app::domain::vault::generate_key(1);
    let defaults = AppOptions::new(&public_url);
    let app = spawn_app_on(
        listener,
        db,
        AppOptions {
            connect: Arc::new(settings),
            vault: Arc::new(app::domain::vault::Keyring::new(&key, &[]).unwrap()),
            pool_size: options.pool_size,
            metrics_token: Some(METRICS_TOKEN.to_owned()),
            ..defaults
        },
    )
    .await;
    for provider in ["sandbox-shop", "sandbox-crm"] {
        app::domain::connections::apps::set_platform_app(
            &app.pool,
            &app.vault,
            provider,
            CLIENT_ID,
            &secrecy::SecretString::from(CLIENT_SECRET),
        )
        .await
        .expect("register the sandbox app");
    }
    let (vendor, _) = app
        .vendor("Val Vendor", "val@vendor.test", "Northwind")
        .await;
    let admin = app.admin("ada@admin.test").await;
    app.publish(
        &vendor,
        &admin,
        "shop-to-store",
        &recipe_form("Shop to store", &SHOP_TO_STORE),
    )
    .await;
    app.publish(
        &vendor,
        &admin,
        "shop-to-crm",
        &recipe_form("Shop to CRM", &SHOP_TO_CRM),
    )
    .await;
    let customer = app.user("Cora Customer", "cora@customer.test").await;
    let tenant: Uuid = app
        .create_org(&customer, "Cora Co", "customer")
        .await
        .parse()
        .unwrap();
    let shop = connect(&app, &customer, "sandbox-shop").await;
    let crm = connect(&app, &customer, "sandbox-crm").await;
    SyncEnv {
        app,
        key,
        sandbox,
        vendor,
        admin,
        customer,
        tenant,
        shop,
        crm,
    }
}

/// How Patchbay reaches the sandbox: `{sandbox_url}` set, loopback let through.
pub fn connect_settings(public_url: &str, sandbox_url: &str, timeout: Duration) -> ConnectSettings {
    let http = connectors::http::HttpConfig {
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        total_timeout: timeout,
        read_timeout: timeout,
        ..Default::default()
    };
    let vars =
        std::collections::BTreeMap::from([("sandbox_url".to_owned(), sandbox_url.to_owned())]);
    ConnectSettings::new(public_url, http, vars).unwrap()
}

/// Connects `provider` (a sandbox app) for `client`'s organization: the whole OAuth dance.
pub async fn connect(app: &TestApp, client: &Client, provider: &str) -> Uuid {
    let res = app
        .start_connect(
            client,
            &[("provider", provider), ("return_to", "/connections")],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let (status, body) = app.call_json(client, "connections/continue", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let back = app.consent(body["url"].as_str().unwrap(), "approve").await;
    connected_id(&app.callback(client, &back).await)
}

/// The install id in a wizard step's redirect (`/installs/{id}/setup/...`).
fn install_of(res: &reqwest::Response) -> Uuid {
    let location = res.headers()[header::LOCATION].to_str().unwrap();
    location
        .strip_prefix("/installs/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected redirect {location}"))
        .parse()
        .unwrap()
}

/// The built-in spec of `id`, changed by `edit`.
pub fn spec_with(
    id: &str,
    edit: impl FnOnce(&mut connectors::spec::ProviderSpec),
) -> connectors::spec::ProviderSpec {
    let mut spec = connectors::spec::builtin_specs()
        .unwrap()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap();
    edit(&mut spec);
    spec
}

/// A `patchbay worker` child process, killed when dropped: a failing test must not leave one
/// running against its database (the next run could not drop that database).
pub struct WorkerProcess(pub std::process::Child);

impl std::ops::Deref for WorkerProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for WorkerProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Nothing happens for a process already waited for.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl SyncEnv {
    /// `patchbay worker` as a child process over the test's database and sandbox, with a short
    /// lease, quick retries and a quick reaper; `extra` adds or overrides environment variables.
    pub fn worker_process(&self, extra: &[(&str, &str)]) -> WorkerProcess {
        use secrecy::ExposeSecret;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"));
        cmd.arg("worker")
            .env("DATABASE_URL", database_url(&self.app.admin_pool))
            .env("PATCHBAY_SECRET_KEY", self.key.expose_secret())
            .env_remove("PATCHBAY_OLD_SECRET_KEYS")
            .env("PATCHBAY_SANDBOX_URL", &self.sandbox.base_url)
            .env("PATCHBAY_PUBLIC_URL", &self.app.public_url)
            .env("PATCHBAY_WORKERS", "2")
            .env("PATCHBAY_LEASE_SECS", "1")
            .env("PATCHBAY_RETRY_BASE_MS", "50")
            .env("PATCHBAY_REAP_EVERY_MS", "200")
            .env("PATCHBAY_SHUTDOWN_GRACE_SECS", "10")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        WorkerProcess(cmd.spawn().expect("start patchbay worker"))
    }

    /// Installs `slug` through the wizard's steps with `triggers` and `schedule`, reading
    /// customers; returns the install's id (active, its first full sync queued).
    pub async fn install(&self, slug: &str, triggers: &[&str], schedule: &str) -> Uuid {
        self.install_reading(slug, "customers", triggers, schedule)
            .await
    }

    /// [`SyncEnv::install`] of a listing reading `stream`.
    pub async fn install_reading(
        &self,
        slug: &str,
        stream: &str,
        triggers: &[&str],
        schedule: &str,
    ) -> Uuid {
        let (app, c) = (&self.app, &self.customer);
        let (shop, crm) = (self.shop.to_string(), self.crm.to_string());
        let destination = if slug.contains("crm") {
            crm.as_str()
        } else {
            ""
        };
        let res = app
            .call(
                c,
                "installs/connections",
                &[
                    ("slug", slug),
                    ("source", &shop),
                    ("destination", destination),
                ],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
        let id = install_of(&res);
        let sid = id.to_string();
        let ok = |res: reqwest::Response| async move {
            let status = res.status();
            assert_eq!(status, StatusCode::OK, "{}", res.text().await.unwrap());
        };
        ok(app.call(c, "installs/settings", &[("id", &sid)]).await).await;
        ok(app
            .call(
                c,
                "installs/streams",
                &[("id", &sid), ("streams[0]", stream)],
            )
            .await)
        .await;
        let mut form: Vec<(String, String)> = vec![
            ("id".into(), sid.clone()),
            ("schedule".into(), schedule.into()),
        ];
        for (i, t) in triggers.iter().enumerate() {
            form.push((format!("triggers[{i}]"), (*t).into()));
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ok(app.call(c, "installs/schedule", &pairs).await).await;
        let res = app.call(c, "installs/activate", &[("id", &sid)]).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
        id
    }

    /// An engine over the app's pool, named `worker`.
    pub fn engine(&self, worker: &str, settings: EngineSettings) -> Engine {
        Engine {
            pool: self.app.pool.clone(),
            vault: self.app.vault.clone(),
            connect: self.app.connect.clone(),
            settings: EngineSettings {
                worker: worker.into(),
                ..settings
            },
        }
    }

    /// The worker pool in this process, `concurrency` jobs at once.
    pub fn pool(
        &self,
        worker: &str,
        settings: EngineSettings,
        concurrency: usize,
    ) -> server::worker::PoolHandle {
        server::worker::spawn(
            self.engine(worker, settings),
            server::worker::PoolConfig {
                concurrency,
                reap_every: Duration::from_millis(200),
                poll: Duration::from_millis(200),
                refresh_sweep: false,
                alert_every: Duration::from_millis(200),
                alerts: app::domain::admin::alerts::AlertSettings {
                    evaluate_every: Duration::from_millis(200),
                    retry_base: Duration::from_millis(50),
                    retry_cap: Duration::from_millis(200),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
    }

    /// Claims and runs due jobs one at a time until none is due; returns how they settled.
    pub async fn drain(&self, engine: &Engine) -> Vec<Settled> {
        let mut out = Vec::new();
        loop {
            let jobs = queue::claim(
                &self.app.pool,
                &engine.settings.worker,
                1,
                engine.settings.lease,
            )
            .await
            .unwrap();
            let Some(job) = jobs.into_iter().next() else {
                return out;
            };
            out.push(engine.execute(job, &Control::never()).await);
        }
    }

    /// A customer action on an install (`run_now`, `pause`, …), expected to succeed.
    pub async fn action(&self, install: Uuid, action: &str) {
        let res = self
            .app
            .call(
                &self.customer,
                "installs/action",
                &[("id", &install.to_string()), ("action", action)],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{action}: {}",
            res.text().await.unwrap()
        );
    }

    /// The install page as the customer's browser gets it.
    pub async fn page(&self, install: Uuid) -> Value {
        let (status, body) = self
            .app
            .call_json(
                &self.customer,
                "installs/get",
                &[("id", &install.to_string())],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Records of the install in the Patchbay store: (external id, data).
    pub async fn store(&self, install: Uuid) -> Vec<(String, Value)> {
        sqlx::query_as(
            "select external_id, data from store_records where install_id = $1 order by external_id",
        )
        .bind(install)
        .fetch_all(&self.app.admin_pool)
        .await
        .unwrap()
    }

    /// The install's attempts, oldest first: (outcome, written, unchanged, deleted, failed).
    pub async fn runs(&self, install: Uuid) -> Vec<(String, i64, i64, i64, i64)> {
        sqlx::query_as(
            "select outcome, records_written, records_unchanged, records_deleted, records_failed \
             from sync_runs where install_id = $1 order by id",
        )
        .bind(install)
        .fetch_all(&self.app.admin_pool)
        .await
        .unwrap()
    }

    /// Live jobs of the install.
    pub async fn jobs(&self, install: Uuid) -> i64 {
        sqlx::query_scalar("select count(*) from sync_jobs where install_id = $1")
            .bind(install)
            .fetch_one(&self.app.admin_pool)
            .await
            .unwrap()
    }

    /// Waits until `check` holds (polling every 50 ms), or fails after `limit`.
    pub async fn until<F, Fut>(&self, limit: Duration, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The emails of the sandbox's records of `stream`.
    pub fn sandbox_emails(&self, stream: &str) -> Vec<String> {
        let mut emails: Vec<String> = self
            .sandbox
            .sandbox
            .recent(stream, usize::MAX)
            .iter()
            .filter_map(|r| r["email"].as_str().map(str::to_owned))
            .collect();
        emails.sort();
        emails
    }
}

/// Runs a statement as the platform (system scope), for set-up.
pub async fn as_system(pool: &PgPool, sql: &str) {
    let mut tx = db::begin(pool, Scope::System).await.unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Copies `template` (an install) `n` times and queues a full sync for each copy, due `after`
/// seconds from now (negative: already due).
pub async fn backlog(env: &SyncEnv, template: Uuid, n: i32, after: f64) -> Vec<Uuid> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "insert into installs (tenant_id, listing_id, listing_version_id, status, source_connection_id, \
             config, inputs, streams, mapping, triggers, installed_at) \
         select tenant_id, listing_id, listing_version_id, 'active', source_connection_id, config, \
             inputs, streams, mapping, triggers, now() \
         from installs cross join generate_series(1, $2) where id = $1 returning id",
    )
    .bind(template)
    .bind(n)
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into sync_jobs (tenant_id, install_id, kind, state, trigger, run_at) \
         select i.tenant_id, i.id, 'full', 'queued', 'test', now() + $2 * interval '1 second' \
         from installs i where i.id = any($1)",
    )
    .bind(&ids)
    .bind(after)
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into tenant_slots (tenant_id, queued) select tenant_id, count(*) from installs \
         where id = any($1) group by tenant_id \
         on conflict (tenant_id) do update set queued = tenant_slots.queued + excluded.queued, \
         next_run_at = '-infinity'",
    )
    .bind(&ids)
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    ids
}

/// Seeds one attempt of `install` (in `tenant`), ended `ago` with `outcome` and `class`.
#[expect(
    clippy::too_many_arguments,
    reason = "one seeded row, every column named at the call"
)]
pub async fn seed_run(
    env: &SyncEnv,
    tenant: Uuid,
    install: Uuid,
    listing: Uuid,
    provider: &str,
    outcome: &str,
    class: Option<&str>,
    ago: &str,
) -> i64 {
    sqlx::query_scalar(
        "insert into sync_runs (tenant_id, install_id, job_id, attempt, kind, trigger, outcome, \
             started_at, finished_at, error_class, error_message, listing_id, provider) \
         values ($1, $2, 1000 + (random() * 100000)::int, 0, 'incremental', 'schedule', $3, \
                 now() - $4::interval - interval '2 seconds', now() - $4::interval, $5, \
                 case when $5 is null then null else 'seeded ' || $5 end, $6, $7) \
         returning id",
    )
    .bind(tenant)
    .bind(install)
    .bind(outcome)
    .bind(ago)
    .bind(class)
    .bind(listing)
    .bind(provider)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap()
}

pub async fn listing_of(env: &SyncEnv, install: Uuid) -> Uuid {
    sqlx::query_scalar("select listing_id from installs where id = $1")
        .bind(install)
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap()
}
