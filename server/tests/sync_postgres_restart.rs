//! Postgres restarted under a running sync. The test runs its own Postgres cluster (initdb into a
//! fresh directory, on a free port) so that restarting it disturbs no other test; a `patchbay
//! worker` process syncs against it, the cluster is restarted mid-sync, and the worker reconnects
//! and finishes the job with nothing lost.

mod common;

use common::sync::*;
use connectors::sandbox::SeedSizes;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A private Postgres cluster, stopped and removed when dropped.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// Runs a Postgres program; as root, as the `postgres` user (initdb and postgres refuse root).
fn pg(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let path = bin.join(program);
    let as_root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

impl Cluster {
    fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's binaries under /usr/lib/postgresql (apt-get install postgresql)")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir =
            std::env::temp_dir().join(format!("patchbay-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status();
        let out = pg(
            &bin,
            "initdb",
            &[
                "-D",
                dir.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster { bin, dir, port };
        cluster.ctl("start");
        cluster
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let log = self.dir.join("log");
        let out = pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.dir.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                action,
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl {action}: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg(
            &self.bin,
            "pg_ctl",
            &["-D", self.dir.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_survives_a_postgres_restart() {
    let cluster = Cluster::start();
    let url = cluster.url("patchbay");
    server::db::prepare(&url)
        .await
        .expect("migrate the private cluster");
    let admin = PgPool::connect(&url).await.unwrap();
    let env = sync_env(
        admin.clone(),
        SyncOptions {
            seed: SeedSizes {
                customers: 8_000,
                orders: 0,
                contacts: 0,
                companies: 0,
            },
            ..SyncOptions::default()
        },
    )
    .await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    env.sandbox.sandbox.faults().set_slow_ms(40);
    let mut worker =
        env.worker_process(&[("PATCHBAY_BATCH_RECORDS", "200"), ("PATCHBAY_WORKERS", "1")]);
    env.until(
        Duration::from_secs(30),
        "the sync to write something",
        || async {
            sqlx::query_scalar::<_, i64>("select count(*) from store_records")
                .fetch_one(&admin)
                .await
                .unwrap_or(0)
                > 0
        },
    )
    .await;

    // Restart Postgres under the running sync.
    let before: i64 = sqlx::query_scalar("select count(*) from store_records")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(before < 8_000, "the sync was still running");
    cluster.ctl("stop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.ctl("start");
    env.sandbox.sandbox.faults().set_slow_ms(0);

    let start = Instant::now();
    loop {
        let left: Result<i64, _> =
            sqlx::query_scalar("select count(*) from sync_jobs where install_id = $1")
                .bind(install)
                .fetch_one(&admin)
                .await;
        if left.is_ok_and(|n| n == 0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the job did not finish after the restart"
        );
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker died with the database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let _ = worker.wait();
    let ids: Vec<String> = sqlx::query_scalar(
        "select external_id from store_records where install_id = $1 order by 1",
    )
    .bind(install)
    .fetch_all(&admin)
    .await
    .unwrap();
    let want: Vec<String> = (1..=8_000).map(|n| format!("cus_{n:06}")).collect();
    assert_eq!(ids, want, "every record, once");
    let outcome: String = sqlx::query_scalar(
        "select outcome from sync_runs where install_id = $1 order by id desc limit 1",
    )
    .bind(install)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(outcome, "succeeded");
    env.app.pool.close().await;
    admin.close().await;
}
