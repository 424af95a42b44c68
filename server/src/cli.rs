//! The subcommands: `serve`, `migrate`, `admin grant|revoke`.

use crate::config::{
    AdminCommand, Cli, Command, KeysCommand, ServeArgs, WorkerArgs, WorkerCommand,
};
use crate::router::{build_router, ServerState};
use anyhow::Context;
use app::domain::{accounts, demo};
use app::model::Email;
use axum::serve::ListenerExt;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::time::Duration;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::PostgresStore;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.database_url.expose_secret().to_owned();
    match cli.command {
        Command::Migrate => crate::db::prepare(&url).await,
        Command::Serve(args) => serve(&url, args).await,
        Command::Worker(args) => worker(&url, args).await,
        Command::Admin { command } => admin(&url, command).await,
        Command::Keys {
            command: KeysCommand::Generate { id },
        } => {
            crate::keys::print_new_key(id);
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate(keys),
        } => rotate_keys(&url, &keys).await,
    }
}

/// `patchbay keys rotate`: re-seals every stored secret under the current key.
async fn rotate_keys(url: &str, keys: &crate::config::KeyArgs) -> anyhow::Result<()> {
    let vault = crate::keys::keyring(keys)?;
    crate::db::prepare(url).await?;
    let pool = crate::db::app_pool(url, 2).await?;
    let count = app::domain::connections::rotate_keys(&pool, &vault).await?;
    println!(
        "Re-encrypted {count} stored secret{} under key {}.",
        if count == 1 { "" } else { "s" },
        vault.current_id()
    );
    Ok(())
}

async fn admin(url: &str, command: AdminCommand) -> anyhow::Result<()> {
    crate::db::prepare(url).await?;
    let pool = crate::db::app_pool(url, 1).await?;
    let (email, grant) = match &command {
        AdminCommand::Grant { email } => (email, true),
        AdminCommand::Revoke { email } => (email, false),
    };
    let parsed = Email::parse(email).map_err(|e| anyhow::anyhow!("{email:?}: {e}"))?;
    if !accounts::set_platform_admin(&pool, &parsed, grant).await? {
        anyhow::bail!("no account uses {}; sign up first", parsed.as_str());
    }
    println!(
        "{} is {} a platform admin.",
        parsed.as_str(),
        if grant { "now" } else { "no longer" }
    );
    Ok(())
}

async fn serve(url: &str, args: ServeArgs) -> anyhow::Result<()> {
    let vault = std::sync::Arc::new(crate::keys::keyring(&args.keys)?);
    crate::db::prepare(url).await?;
    let pool = crate::db::app_pool(url, pool_size(&args.workers, 16)).await?;
    if args.demo {
        let logins = demo::seed(&pool).await.context("seeding demo data")?;
        println!("\nDemo logins (password for all: {}):", demo::DEMO_PASSWORD);
        for login in &logins {
            println!("  {:<40} {}", login.email, login.who);
        }
    }
    // Kept alive for as long as Patchbay serves.
    let sandbox = if args.demo || args.sandbox {
        let sandbox = spawn_sandbox(&args).await?;
        for provider in ["sandbox-shop", "sandbox-crm"] {
            app::domain::connections::apps::set_platform_app(
                &pool,
                &vault,
                provider,
                SANDBOX_CLIENT_ID,
                &secrecy::SecretString::from(SANDBOX_CLIENT_SECRET),
            )
            .await
            .map_err(|e| anyhow::anyhow!("registering the sandbox app: {e}"))?;
        }
        println!(
            "\nSandbox apps (Sandbox Shop, Sandbox CRM) at {}",
            sandbox.base_url
        );
        Some(sandbox)
    } else {
        None
    };
    let connect = std::sync::Arc::new(connect_settings(&args, sandbox.as_ref())?);
    if !args.site_root.join("pkg").exists() {
        tracing::warn!(
            site_root = %args.site_root.display(),
            "the site is not built (no pkg/ folder): pages will render without styles or scripts; \
             build it with `bash .ci/build-site`"
        );
    }

    let pool_for_workers = pool.clone();
    let store = PostgresStore::new(pool.clone());
    tokio::spawn(async move {
        // Expired sessions are unusable already; this only keeps the table small.
        let _ = store
            .continuously_delete_expired(Duration::from_secs(3600))
            .await;
    });

    let public_url = args.public_url();
    let router = build_router(ServerState {
        pool,
        public_url: public_url.clone(),
        site_root: args.site_root.clone(),
        session_idle: Duration::from_secs(args.session_idle_minutes.max(1) as u64 * 60),
        vault: vault.clone(),
        connect: connect.clone(),
        metrics_token: args.metrics_token.clone(),
    });
    let workers = start_workers(pool_for_workers, vault, connect, &args.workers);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let bound = listener.local_addr()?;
    // Responses are streamed (server-side rendering, files): without TCP_NODELAY their last small
    // segment waits for the client's delayed ACK, which adds tens of milliseconds to a request.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY");
        }
    });
    tracing::info!(addr = %bound, "listening");
    println!("\nPatchbay is running at {public_url}  (listening on {bound})\n");
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving HTTP");
    workers.shutdown().await;
    served
}

/// Database connections for a process running `workers`: each running sync uses up to three at
/// once (its writer, its reader's rate budget, its heartbeat), besides what the rest needs.
fn pool_size(workers: &WorkerArgs, base: u32) -> u32 {
    base + 3 * workers.workers.min(256) as u32
}

/// This process's name in leases and the run log: host and process id.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "patchbay".to_owned());
    format!("{host}:{}", std::process::id())
}

fn start_workers(
    pool: sqlx::PgPool,
    vault: std::sync::Arc<app::domain::vault::Keyring>,
    connect: std::sync::Arc<app::domain::connections::ConnectSettings>,
    args: &WorkerArgs,
) -> crate::worker::PoolHandle {
    let engine = app::domain::sync::Engine {
        pool,
        vault,
        connect,
        settings: args.engine(worker_name()),
    };
    tracing::info!(workers = args.workers, worker = %engine.settings.worker, "sync workers started");
    crate::worker::spawn(engine, args.pool())
}

/// `patchbay worker`: sync workers without the web server, until SIGTERM or Ctrl-C, then a
/// graceful hand-back.
async fn worker(url: &str, args: WorkerCommand) -> anyhow::Result<()> {
    let vault = std::sync::Arc::new(crate::keys::keyring(&args.keys)?);
    crate::db::prepare(url).await?;
    let pool = crate::db::app_pool(url, pool_size(&args.workers, 4)).await?;
    let mut http = args.workers.http();
    let mut vars = std::collections::BTreeMap::new();
    if let Some(sandbox) = &args.sandbox_url {
        let parsed = url::Url::parse(sandbox).context("PATCHBAY_SANDBOX_URL is not a URL")?;
        if let Some(url::Host::Ipv4(ip)) = parsed.host() {
            http.allow
                .push(ipnet::IpNet::from(std::net::IpAddr::V4(ip)));
        }
        vars.insert(
            "sandbox_url".to_owned(),
            sandbox.trim_end_matches('/').to_owned(),
        );
    }
    let connect = std::sync::Arc::new(app::domain::connections::ConnectSettings::new(
        args.public_url.trim_end_matches('/'),
        http,
        vars,
    )?);
    // Bound before the workers start, so that the recorder counts from their first claim.
    let metrics = match args.metrics_addr {
        Some(addr) => Some(serve_metrics(addr, pool.clone(), args.metrics_token.clone()).await?),
        None => None,
    };
    let workers = start_workers(pool, vault, connect, &args.workers);
    println!(
        "Patchbay workers are running ({} at once).",
        args.workers.workers
    );
    shutdown_signal().await;
    workers.shutdown().await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    Ok(())
}

/// `patchbay worker --metrics-addr`: `/metrics` alone, behind the same token check as `serve`'s.
async fn serve_metrics(
    addr: SocketAddr,
    pool: sqlx::PgPool,
    token: Option<secrecy::SecretString>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let router = crate::metrics::router(pool, token);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving /metrics");
    println!("Metrics at http://{bound}/metrics");
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::warn!(error = %err, "the metrics listener stopped");
        }
    }))
}

/// Patchbay's OAuth client at the bundled sandbox. The secret is a demo value: the sandbox holds
/// no real data.
const SANDBOX_CLIENT_ID: &str = "patchbay-demo";
const SANDBOX_CLIENT_SECRET: &str = "patchbay-demo-secret";

/// The bundled sandbox apps, with Patchbay registered as an OAuth client.
async fn spawn_sandbox(args: &ServeArgs) -> anyhow::Result<connectors::sandbox::SandboxHandle> {
    use connectors::sandbox::{Sandbox, SandboxClient, SandboxConfig};
    let config = SandboxConfig {
        clients: vec![SandboxClient {
            client_id: SANDBOX_CLIENT_ID.into(),
            client_secret: SANDBOX_CLIENT_SECRET.into(),
            redirect_uris: vec![format!("{}/oauth/callback", args.public_url())],
            name: "Patchbay".into(),
        }],
        fault_api: args.sandbox_faults,
        // Enough records that a first sync shows its progress.
        seed: connectors::sandbox::SeedSizes::uniform(500),
        ..SandboxConfig::default()
    };
    Sandbox::spawn_at(config, args.sandbox_addr)
        .await
        .with_context(|| format!("starting the sandbox apps on {}", args.sandbox_addr))
}

/// How connections reach providers. With the sandbox served, its URL is the `{sandbox_url}` of
/// the sandbox specs, and its loopback address is let through the outbound guard (which refuses
/// loopback otherwise).
fn connect_settings(
    args: &ServeArgs,
    sandbox: Option<&connectors::sandbox::SandboxHandle>,
) -> anyhow::Result<app::domain::connections::ConnectSettings> {
    let mut http = args.workers.http();
    let mut vars = std::collections::BTreeMap::new();
    if let Some(sandbox) = sandbox {
        vars.insert("sandbox_url".to_owned(), sandbox.base_url.clone());
        http.allow.push(ipnet::IpNet::from(args.sandbox_addr.ip()));
    }
    app::domain::connections::ConnectSettings::new(&args.public_url(), http, vars)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
