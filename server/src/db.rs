//! Database start-up: create the database when it is missing, apply the embedded migrations, and
//! open the application pool (which runs as the row-level-security-bound app role).

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Postgres};
use std::str::FromStr;

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Creates the database if needed and migrates it, as the connecting (owner) user.
pub async fn prepare(url: &str) -> anyhow::Result<()> {
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid Postgres URL")?;
    let where_ = describe(&options);
    let exists = Postgres::database_exists(url)
        .await
        .with_context(|| format!("cannot reach Postgres at {where_}; is it running?"))?;
    if !exists {
        Postgres::create_database(url)
            .await
            .with_context(|| format!("creating database {where_}"))?;
        tracing::info!(database = %where_, "created the database");
    }
    let pool = PgPool::connect_with(options)
        .await
        .with_context(|| format!("connecting to {where_}"))?;
    MIGRATOR.run(&pool).await.context("applying migrations")?;
    pool.close().await;
    tracing::info!(database = %where_, "database ready");
    Ok(())
}

/// Opens the application pool.
pub async fn app_pool(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid Postgres URL")?;
    let where_ = describe(&options);
    app::domain::db::connect_app_pool(options, max_connections)
        .await
        .with_context(|| {
            format!(
                "connecting to {where_} as role {}",
                app::domain::db::APP_ROLE
            )
        })
}

/// host:port/database, without user or password, for messages.
fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    )
}
