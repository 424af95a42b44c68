//! The `patchbay` binary itself: `migrate`, `admin grant|revoke`, JSON logs, and the demo seed.

use app::domain::{accounts, demo};
use sqlx::PgPool;
use std::process::{Command, Output};

/// A URL for the test's own database, built from the pool's options.
fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap()
    )
}

fn patchbay(pool: &PgPool, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(args)
        .env("DATABASE_URL", database_url(pool))
        .env_remove("RUST_LOG")
        .output()
        .expect("run patchbay")
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_grant_and_revoke(db: PgPool) {
    let pool = app::domain::db::connect_app_pool(db.connect_options().as_ref().clone(), 2)
        .await
        .unwrap();
    let email = app::model::Email::parse("ada@example.com").unwrap();
    let password =
        app::model::NewPassword::parse("password", "long enough password".into()).unwrap();
    accounts::sign_up(&pool, &email, "Ada", &password)
        .await
        .unwrap();

    let out = patchbay(&db, &["admin", "grant", "ADA@example.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ada@example.com is now a platform admin")
    );
    assert!(
        accounts::find_by_email(&pool, &email)
            .await
            .unwrap()
            .unwrap()
            .is_platform_admin
    );

    let out = patchbay(&db, &["admin", "revoke", "ada@example.com"]);
    assert!(out.status.success());
    assert!(
        !accounts::find_by_email(&pool, &email)
            .await
            .unwrap()
            .unwrap()
            .is_platform_admin
    );

    let out = patchbay(&db, &["admin", "grant", "nobody@example.com"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account uses nobody@example.com"));
}

#[sqlx::test(migrations = "../migrations")]
async fn migrate_is_idempotent_and_logs_json_by_flag(db: PgPool) {
    let out = patchbay(&db, &["--log-format", "json", "migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "database ready"),
        "{logs}"
    );
    // The database URL's credentials never reach the logs.
    assert!(!logs.contains("postgres://"), "{logs}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_bad_database_url_fails_with_a_clear_message(db: PgPool) {
    let out = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["migrate"])
        .env(
            "DATABASE_URL",
            "postgres://postgres:s3cret@127.0.0.1:1/patchbay",
        )
        .output()
        .unwrap();
    drop(db);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach Postgres at 127.0.0.1:1/patchbay"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret") && !String::from_utf8_lossy(&out.stdout).contains("s3cret"));
}

#[sqlx::test(migrations = "../migrations")]
async fn the_demo_seed_is_repeatable_and_its_logins_work(db: PgPool) {
    let pool = app::domain::db::connect_app_pool(db.connect_options().as_ref().clone(), 2)
        .await
        .unwrap();
    let first = demo::seed(&pool).await.unwrap();
    let second = demo::seed(&pool).await.unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(second.len(), 3);
    let counts: (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from users), (select count(*) from organizations), \
         (select count(*) from users where is_platform_admin)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    // Acme Outfitters (customer); Northwind Apps and Bluebird Labs (vendors, one owner).
    assert_eq!(counts, (3, 3, 1));
    for login in &first {
        let user = accounts::authenticate(&pool, login.email, login.password, None)
            .await
            .unwrap();
        let orgs = app::domain::orgs::list_for_user(&pool, user.id)
            .await
            .unwrap();
        let expected = match login.email {
            "vendor@demo.patchbay.test" => 2,
            "customer@demo.patchbay.test" => 1,
            _ => 0,
        };
        assert_eq!(orgs.len(), expected, "{}", login.email);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn serve_demo_runs_the_sandbox_apps_with_patchbay_registered(db: PgPool) {
    use std::io::{BufRead, BufReader};
    let data_dir = std::env::temp_dir().join(format!("patchbay-cli-{}", uuid::Uuid::new_v4()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args([
            "serve",
            "--demo",
            "--addr",
            "127.0.0.1:0",
            "--sandbox-addr",
            "127.0.0.1:0",
        ])
        .env("DATABASE_URL", database_url(&db))
        .env("PATCHBAY_LOG_FORMAT", "json")
        .env("PATCHBAY_DATA_DIR", &data_dir)
        .env_remove("PATCHBAY_SECRET_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut sandbox_url = None;
    let mut public_url = None;
    while public_url.is_none() {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("serve prints its addresses");
        if let Some(rest) = line.strip_prefix("Sandbox apps (Sandbox Shop, Sandbox CRM) at ") {
            sandbox_url = Some(rest.trim().to_owned());
        }
        if line.contains("Patchbay is running at") {
            public_url = line
                .split("listening on ")
                .nth(1)
                .map(|s| format!("http://{}", s.trim_end_matches(')')));
        }
    }
    let sandbox_url = sandbox_url.expect("the sandbox URL is printed");
    let public_url = public_url.unwrap();
    let redirect = "http://127.0.0.1:0/oauth/callback";
    let page = reqwest::Client::new()
        .get(format!("{sandbox_url}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "patchbay-demo"),
            ("redirect_uri", redirect),
            ("scope", "crm.read"),
            ("state", "s"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Patchbay"));
    let health = reqwest::get(format!("{public_url}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    child.kill().unwrap();
    let _ = child.wait();
    // Without PATCHBAY_SECRET_KEY, a development key was made, readable by its owner only.
    let key = data_dir.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::remove_dir_all(&data_dir).ok();
}

#[test]
fn keys_generate_prints_a_key_the_vault_takes() {
    let out = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["keys", "generate", "--id", "7"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(key.starts_with("7:") && key.trim().len() == 2 + 44, "{key}");
    let ring =
        app::domain::vault::Keyring::new(&secrecy::SecretString::from(key.trim().to_owned()), &[])
            .unwrap();
    assert_eq!(ring.current_id(), 7);
}

#[test]
fn a_malformed_secret_key_stops_serve_without_echoing_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("PATCHBAY_SECRET_KEY", "1:c2hvcnQtc2VjcmV0LXZhbHVl")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/never")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PATCHBAY_SECRET_KEY") && stderr.contains("must be 32"),
        "{stderr}"
    );
    assert!(!stderr.contains("c2hvcnQtc2VjcmV0LXZhbHVl"), "{stderr}");
}
