//! Configuration: one typed struct from flags and environment variables, read once at start-up.

use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Default database: the local Postgres this kind of machine runs, database `patchbay`.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/patchbay";

#[derive(Debug, Parser)]
#[command(
    name = "patchbay",
    version,
    about = "Patchbay: the open-source integration marketplace"
)]
pub struct Cli {
    /// Postgres connection URL. The database is created if it does not exist.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_default_value = false, global = true)]
    pub database_url: SecretString,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "PATCHBAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application and run sync workers beside it (migrating the database first).
    Serve(ServeArgs),
    /// Run sync workers only, for scaling out: any number of them share one database.
    Worker(WorkerCommand),
    /// Create the database if needed and apply the migrations, then exit.
    Migrate,
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The credential vault's keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random key, `<id>:<base64>`, for PATCHBAY_SECRET_KEY. Give each key you use
    /// its own id (when rotating, the new key gets a new id and the old one moves to
    /// PATCHBAY_OLD_SECRET_KEYS).
    Generate {
        #[arg(long, default_value_t = 1)]
        id: u8,
    },
    /// Re-encrypt every stored secret (connection credentials, provider app secrets) under
    /// PATCHBAY_SECRET_KEY, opening them with it or with PATCHBAY_OLD_SECRET_KEYS. Run it after
    /// moving the old key to PATCHBAY_OLD_SECRET_KEYS and setting a new one; once it has run,
    /// the old key can go.
    Rotate(KeyArgs),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make an existing account a platform admin.
    Grant { email: String },
    /// Take the platform-admin flag away from an account.
    Revoke { email: String },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PATCHBAY_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// The URL people reach Patchbay at. Cookies are marked Secure when it is https. Defaults to
    /// http://<addr>.
    #[arg(long, env = "PATCHBAY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Directory holding the built site (`pkg/patchbay.js`, `.wasm`, `.css`).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Minutes of inactivity after which a session expires.
    #[arg(long, env = "PATCHBAY_SESSION_IDLE_MINUTES", default_value_t = 720)]
    pub session_idle_minutes: i64,

    /// Seed demo organizations and logins, and print them; also serve the bundled sandbox apps.
    #[arg(long, env = "PATCHBAY_DEMO")]
    pub demo: bool,

    /// Where the bundled sandbox apps (Sandbox Shop and Sandbox CRM) listen in demo mode.
    #[arg(long, env = "PATCHBAY_SANDBOX_ADDR", default_value = "127.0.0.1:3001")]
    pub sandbox_addr: SocketAddr,

    /// Serve the bundled sandbox apps and register Patchbay's OAuth app with them, without the
    /// demo data (`--demo` does this too).
    #[arg(long, env = "PATCHBAY_SANDBOX")]
    pub sandbox: bool,

    /// Let anyone who can reach the sandbox break it on purpose through `/_sandbox/faults`
    /// (tests and demonstrations of failure handling).
    #[arg(long, env = "PATCHBAY_SANDBOX_FAULTS")]
    pub sandbox_faults: bool,

    /// The token Prometheus sends to read `/metrics` (`Authorization: Bearer <token>`); without
    /// one, `/metrics` is not served. Never printed.
    #[arg(long, env = "PATCHBAY_METRICS_TOKEN")]
    pub metrics_token: Option<secrecy::SecretString>,

    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub workers: WorkerArgs,
}

/// `patchbay worker`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerCommand {
    /// The URL of a bundled sandbox served by another Patchbay process (`serve --sandbox`), for
    /// the sandbox providers' `{sandbox_url}`; its address is let through the outbound guard.
    #[arg(long, env = "PATCHBAY_SANDBOX_URL")]
    pub sandbox_url: Option<String>,

    /// The URL people reach Patchbay at (as `serve --public-url`): the OAuth callback and
    /// webhook addresses are made from it.
    #[arg(
        long,
        env = "PATCHBAY_PUBLIC_URL",
        default_value = "http://127.0.0.1:3000"
    )]
    pub public_url: String,

    /// Where this worker process serves `/metrics` (its own counters, in Prometheus' text
    /// format, as `serve` does), e.g. `127.0.0.1:9464`. Needs `--metrics-token`; without an
    /// address the worker serves no HTTP.
    #[arg(long, env = "PATCHBAY_METRICS_ADDR", requires = "metrics_token")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// The token Prometheus sends to read this worker's `/metrics` (`Authorization: Bearer
    /// <token>`). Never printed.
    #[arg(long, env = "PATCHBAY_METRICS_TOKEN")]
    pub metrics_token: Option<secrecy::SecretString>,

    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub workers: WorkerArgs,
}

/// How the sync workers of a process behave.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Syncs run at once by this process (0: none; `serve` then only serves the web).
    #[arg(long, env = "PATCHBAY_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Seconds a job's lease lasts without a heartbeat; a worker that stops answering loses its
    /// jobs to the others after this.
    #[arg(long, env = "PATCHBAY_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,

    /// Backoff before the first retry of a failed sync, in milliseconds; it doubles with each
    /// attempt (up to ten minutes) and the wait is drawn at random below it.
    #[arg(long, env = "PATCHBAY_RETRY_BASE_MS", default_value_t = 5000)]
    pub retry_base_ms: u64,

    /// Records written per committed batch.
    #[arg(long, env = "PATCHBAY_BATCH_RECORDS", default_value_t = 1000)]
    pub batch_records: usize,

    /// Seconds an outbound request to a provider may take in all.
    #[arg(long, env = "PATCHBAY_HTTP_TIMEOUT_SECS", default_value_t = 60)]
    pub http_timeout_secs: u64,

    /// Seconds shutdown waits for running syncs to hand their jobs back.
    #[arg(long, env = "PATCHBAY_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Days the run log keeps attempts (and their events) after they end; older ones are
    /// pruned in small batches every hour.
    #[arg(long, env = "PATCHBAY_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_days: u32,

    /// Milliseconds between the reaper's looks for expired leases (tests shorten it).
    #[arg(
        long,
        env = "PATCHBAY_REAP_EVERY_MS",
        default_value_t = 5000,
        hide = true
    )]
    pub reap_every_ms: u64,
}

impl WorkerArgs {
    /// The outbound HTTP client's settings.
    pub fn http(&self) -> connectors::http::HttpConfig {
        let total = std::time::Duration::from_secs(self.http_timeout_secs.max(1));
        connectors::http::HttpConfig {
            total_timeout: total,
            read_timeout: total.min(std::time::Duration::from_secs(30)),
            connect_timeout: total.min(std::time::Duration::from_secs(10)),
            ..Default::default()
        }
    }

    /// The executor's settings, for a worker named `worker`.
    pub fn engine(&self, worker: String) -> app::domain::sync::EngineSettings {
        app::domain::sync::EngineSettings {
            worker,
            lease: std::time::Duration::from_secs(self.lease_secs.max(1)),
            batch_records: self.batch_records.clamp(1, 10_000),
            retry_base: std::time::Duration::from_millis(self.retry_base_ms),
            ..Default::default()
        }
    }

    pub fn pool(&self) -> crate::worker::PoolConfig {
        crate::worker::PoolConfig {
            concurrency: self.workers,
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_secs),
            reap_every: std::time::Duration::from_millis(self.reap_every_ms.max(50)),
            retention: std::time::Duration::from_secs(u64::from(self.retention_days) * 86_400),
            ..Default::default()
        }
    }
}

/// The credential vault's keys.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// The key that seals credentials, `<id>:<base64 of 32 bytes>` (`patchbay keys generate`).
    /// Without it, a development key is created in the data directory, with a warning.
    #[arg(long, env = "PATCHBAY_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretString>,

    /// Older keys, comma-separated, that still open what they sealed (during a rotation).
    #[arg(long, env = "PATCHBAY_OLD_SECRET_KEYS", hide_env_values = true)]
    pub old_secret_keys: Option<SecretString>,

    /// Where local state lives (the development key).
    #[arg(long, env = "PATCHBAY_DATA_DIR", default_value = ".patchbay")]
    pub data_dir: PathBuf,
}

impl ServeArgs {
    /// The public URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr))
            .trim_end_matches('/')
            .to_owned()
    }
}
