//! The subcommands: `serve`, `migrate`, `admin grant|revoke`.

use crate::config::{AdminCommand, Cli, Command, KeysCommand, ServeArgs};
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
        Command::Admin { command } => admin(&url, command).await,
        Command::Keys {
            command: KeysCommand::Generate { id },
        } => {
            crate::keys::print_new_key(id);
            Ok(())
        }
    }
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
    let pool = crate::db::app_pool(url, 16).await?;
    // Kept alive for as long as Patchbay serves.
    let _sandbox = if args.demo {
        let logins = demo::seed(&pool).await.context("seeding demo data")?;
        println!("\nDemo logins (password for all: {}):", demo::DEMO_PASSWORD);
        for login in &logins {
            println!("  {:<40} {}", login.email, login.who);
        }
        let sandbox = spawn_sandbox(&args).await?;
        println!(
            "\nSandbox apps (Sandbox Shop, Sandbox CRM) at {}",
            sandbox.base_url
        );
        Some(sandbox)
    } else {
        None
    };
    if !args.site_root.join("pkg").exists() {
        tracing::warn!(
            site_root = %args.site_root.display(),
            "the site is not built (no pkg/ folder): pages will render without styles or scripts; \
             build it with `bash .ci/build-site`"
        );
    }

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
        vault,
    });
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
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving HTTP")
}

/// The bundled sandbox apps, with Patchbay registered as an OAuth client. The client secret is
/// a demo value: the sandbox holds no real data.
async fn spawn_sandbox(args: &ServeArgs) -> anyhow::Result<connectors::sandbox::SandboxHandle> {
    use connectors::sandbox::{Sandbox, SandboxClient, SandboxConfig};
    let config = SandboxConfig {
        clients: vec![SandboxClient {
            client_id: "patchbay-demo".into(),
            client_secret: "patchbay-demo-secret".into(),
            redirect_uris: vec![format!("{}/oauth/callback", args.public_url())],
            name: "Patchbay".into(),
        }],
        ..SandboxConfig::default()
    };
    Sandbox::spawn_at(config, args.sandbox_addr)
        .await
        .with_context(|| format!("starting the sandbox apps on {}", args.sandbox_addr))
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
