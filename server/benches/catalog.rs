//! Catalog load benchmark: 10,000 published listings, the real router, and wrk on loopback.
//!
//! It creates a fresh database (on `DATABASE_URL`'s server), seeds it in bulk, serves Patchbay on
//! an ephemeral port in this process, and runs `wrk` (a separate process, from Debian's `wrk`
//! package) against four URLs at 32 connections: a static asset (the stylesheet, through the same
//! file service as the wasm bundle) as the baseline, the catalog's first page, a category page,
//! and searches. Each figure ends as a `bench:` line; ratios compare with the static asset of the
//! same run. The database is dropped at the end.
//!
//! Run: `cargo bench -p server --bench catalog` (release build; needs `wrk` on PATH).

use anyhow::{bail, Context};
use axum::serve::ListenerExt;
use server::{build_router, ServerState};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::net::SocketAddr;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

const LISTINGS: i64 = 10_000;
const CONNECTIONS: u32 = 32;
const SECONDS: u32 = 10;

/// One wrk run's figures.
struct Load {
    rps: f64,
    p99_ms: f64,
}

fn main() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed: apt-get install -y wrk");
    }
    let base_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let options = PgConnectOptions::from_str(&base_url).context("DATABASE_URL")?;
    let name = format!("patchbay_bench_{}", std::process::id());
    let db_url = options.clone().database(&name).to_url_lossy().to_string();

    // The server gets its own runtime (two workers, as `serve` has on this machine); wrk is a
    // separate process sharing the same two cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let site = tempdir_site()?;
    let addr: SocketAddr = runtime.block_on(async {
        server::db::prepare(&db_url).await?;
        seed(&db_url).await?;
        let pool = server::db::app_pool(&db_url, 16).await?;
        let router = build_router(ServerState {
            pool,
            public_url: "http://127.0.0.1".into(),
            site_root: site.clone(),
            session_idle: Duration::from_secs(3600),
            vault: std::sync::Arc::new(app::domain::vault::Keyring::new(
                &app::domain::vault::generate_key(1),
                &[],
            )?),
            connect: std::sync::Arc::new(app::domain::connections::ConnectSettings::new(
                "http://patchbay.test",
                Default::default(),
                Default::default(),
            )?),
            metrics_token: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // As `patchbay serve` does.
        let listener = listener.tap_io(|tcp| {
            tcp.set_nodelay(true).ok();
        });
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .ok();
        });
        anyhow::Ok(addr)
    })?;
    let base = format!("http://{addr}");

    // Warm up every page once (and check it answers 200 with results in it).
    for (path, needle) in [
        ("/pkg/patchbay.css", "--pb-color-bg"),
        ("/marketplace", "10000 integrations"),
        ("/marketplace?category=crm&page=3", "integrations"),
        ("/marketplace?q=hubspot+contacts", "Results for"),
        ("/marketplace?q=inv", "Results for"),
    ] {
        let body = runtime.block_on(async {
            let res = reqwest::get(format!("{base}{path}")).await?;
            anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
            Ok(res.text().await?)
        })?;
        anyhow::ensure!(body.contains(needle), "{path} lacks {needle:?}");
    }

    // `BENCH_HOLD=1` keeps the seeded server up for poking at by hand instead of measuring.
    if std::env::var_os("BENCH_HOLD").is_some() {
        println!("serving {base} over database {name}; Ctrl-C to stop");
        runtime.block_on(tokio::signal::ctrl_c())?;
        return Ok(());
    }

    let static_asset = wrk(&format!("{base}/pkg/patchbay.css"))?;
    let catalog = wrk(&format!("{base}/marketplace"))?;
    let category = wrk(&format!("{base}/marketplace?category=crm&page=3"))?;
    let search = wrk(&format!("{base}/marketplace?q=hubspot+contacts"))?;
    let prefix = wrk(&format!("{base}/marketplace?q=inv"))?;
    // Searches that mostly miss the page cache: two random words of 26 and one of two pages
    // (1,352 distinct pages against a cache of 1,024).
    let script = std::env::temp_dir().join(format!("patchbay-bench-{}.lua", std::process::id()));
    std::fs::write(&script, VARIED_SEARCH)?;
    let varied = wrk_script(&format!("{base}/marketplace"), &script)?;
    std::fs::remove_file(&script).ok();

    runtime.block_on(async {
        let mut conn = PgConnection::connect_with(&options).await?;
        sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&mut conn)
            .await?;
        anyhow::Ok(())
    })?;
    std::fs::remove_dir_all(&site).ok();

    for (label, load) in [
        ("static", &static_asset),
        ("catalog", &catalog),
        ("category", &category),
        ("search", &search),
        ("search_prefix", &prefix),
        ("search_varied", &varied),
    ] {
        println!("bench: {label}_rps = {:.0} req/s", load.rps);
        println!("bench: {label}_p99 = {:.2} ms", load.p99_ms);
    }
    for (label, load) in [
        ("catalog", &catalog),
        ("category", &category),
        ("search", &search),
        ("search_prefix", &prefix),
    ] {
        println!(
            "bench: {label}_vs_static = {:.3} ratio",
            load.rps / static_asset.rps
        );
    }
    Ok(())
}

/// A site root holding the stylesheet, as the site build lays it out.
fn tempdir_site() -> anyhow::Result<std::path::PathBuf> {
    let root = std::env::temp_dir().join(format!("patchbay-bench-site-{}", std::process::id()));
    std::fs::create_dir_all(root.join("pkg"))?;
    std::fs::write(
        root.join("pkg/patchbay.css"),
        include_str!("../../style/main.css"),
    )?;
    // Its gzip copy, as `.ci/build-site` makes.
    let status = Command::new("gzip")
        .args(["-9", "-k", "-f"])
        .arg(root.join("pkg/patchbay.css"))
        .status()
        .context("running gzip")?;
    anyhow::ensure!(status.success(), "gzip failed");
    Ok(root)
}

const VARIED_SEARCH: &str = r#"
local words = {"hub", "shop", "stripe", "sales", "git", "zen", "mail", "slack", "notion", "jira",
  "inter", "quick", "contacts", "orders", "invoices", "companies", "issues", "tickets",
  "customers", "charges", "deals", "products", "sync", "keep", "every", "hour"}
request = function()
  local q = words[math.random(#words)] .. "+" .. words[math.random(#words)]
  return wrk.format("GET", "/marketplace?q=" .. q .. "&page=" .. math.random(2))
end
"#;

/// Runs wrk for [`SECONDS`] at [`CONNECTIONS`] and reads its requests/s and 99th percentile.
fn wrk(url: &str) -> anyhow::Result<Load> {
    run_wrk(url, &[])
}

/// [`wrk`] with a Lua script that makes each request.
fn wrk_script(url: &str, script: &std::path::Path) -> anyhow::Result<Load> {
    run_wrk(url, &["-s", &script.to_string_lossy()])
}

fn run_wrk(url: &str, extra: &[&str]) -> anyhow::Result<Load> {
    let connections = format!("-c{CONNECTIONS}");
    let duration = format!("-d{SECONDS}s");
    let mut args = vec![
        "-t2",
        &connections,
        &duration,
        "--latency",
        "-H",
        "Accept-Encoding: gzip",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = Command::new("wrk")
        .args(&args)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("wrk {url}\n{text}");
    if text.contains("Non-2xx") {
        bail!("{url} answered errors under load");
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .context("wrk printed no Requests/sec")?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(str::trim)
        .context("wrk printed no 99% latency")?;
    Ok(Load {
        rps,
        p99_ms: parse_duration_ms(p99)?,
    })
}

/// wrk's durations: `812.00us`, `3.41ms`, `1.02s`.
fn parse_duration_ms(text: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("unknown duration {text:?}")
    };
    Ok(number.parse::<f64>().context("duration")? * scale)
}

/// 10,000 published listings from 20 vendors, each with a published version, in a few
/// statements. Names, taglines and descriptions combine realistic words so that searches match
/// some listings and not others; a handful are featured.
async fn seed(url: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let recipe = serde_json::to_value(app::model::listing::Recipe::default())?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "insert into organizations (id, kind, name) \
         select gen_random_uuid(), 'vendor', 'Bench Vendor ' || v from generate_series(1, 20) v",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "with vendors as (select array_agg(id order by name) ids from organizations where kind = 'vendor'), \
         words as (select \
            array['HubSpot','Shopify','Stripe','Salesforce','GitHub','Zendesk','Mailchimp','Slack','Notion','Jira','Intercom','QuickBooks'] apps, \
            array['contacts','orders','invoices','companies','issues','tickets','customers','charges','deals','products'] things, \
            array['crm','e-commerce','payments','support','developer-tools','marketing','analytics','productivity'] cats) \
         insert into listings (id, vendor_org_id, slug, status, name, tagline, description, categories, published_at) \
         select gen_random_uuid(), vendors.ids[1 + i % 20], 'bench-' || i, 'published', \
                apps[1 + i % 12] || ' ' || things[1 + (i / 12) % 10] || ' sync ' || i, \
                'Keep your ' || apps[1 + i % 12] || ' ' || things[1 + (i / 12) % 10] || ' in step, every hour', \
                '## What it does' || chr(10) || chr(10) || 'Copies ' || things[1 + (i / 7) % 10] || ' from ' \
                    || apps[1 + (i / 3) % 12] || ' and keeps them current.' || chr(10) || chr(10) \
                    || '- Incremental syncs' || chr(10) || '- Retries and rate limits handled', \
                array[cats[1 + i % 8]] || case when i % 3 = 0 then array[cats[1 + (i / 8) % 8]] else '{}' end, \
                now() \
         from generate_series(1, $1) i, vendors, words",
    )
    .bind(LISTINGS)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into listing_versions (id, listing_id, vendor_org_id, number, state, name, tagline, \
            description, categories, recipe, published_at) \
         select gen_random_uuid(), id, vendor_org_id, 1, 'published', name, tagline, description, \
            categories, $1, now() from listings",
    )
    .bind(recipe)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update listings l set published_version_id = v.id from listing_versions v where v.listing_id = l.id",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update listings set featured_rank = n from (select id, row_number() over (order by slug) n \
         from listings where slug in ('bench-7','bench-77','bench-777','bench-1234','bench-4321','bench-9999')) f \
         where f.id = listings.id",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // What autovacuum does to a live catalog; without it the bulk load's dead rows skew the plans.
    sqlx::query("vacuum analyze listings")
        .execute(&mut conn)
        .await?;
    sqlx::query("vacuum analyze catalog_entries")
        .execute(&mut conn)
        .await?;
    Ok(())
}
