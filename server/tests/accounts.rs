//! Accounts over HTTP: sign-up, log-in, log-out, password change, session cycling and throttling.

mod common;

use common::*;
use reqwest::{header, StatusCode};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn sign_up_then_log_in_round_trip(db: PgPool) {
    let app = spawn_app(db).await;
    let alice = app.user("Alice Liddell", "Alice@Example.com").await;
    let session = app.session(&alice).await;
    assert_eq!(session["user"]["email"], "alice@example.com");
    assert_eq!(session["user"]["display_name"], "Alice Liddell");

    let (status, _) = app.call_json(&alice, "logout", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.session(&alice).await.is_null(), "logged out");

    let fresh = client();
    let (status, body) = app
        .call_json(
            &fresh,
            "login",
            &[("email", "ALICE@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.session(&fresh).await["user"]["email"],
        "alice@example.com"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn passwords_are_stored_as_argon2id_at_owasp_strength(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("Alice", "alice@example.com").await;
    let hash: String = sqlx::query_scalar("select password_hash from users")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
}

#[sqlx::test(migrations = "../migrations")]
async fn wrong_password_and_unknown_email_get_the_same_answer(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("Alice", "alice@example.com").await;
    let c = client();
    let wrong = app
        .call_json(
            &c,
            "login",
            &[
                ("email", "alice@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    let unknown = app
        .call_json(
            &c,
            "login",
            &[
                ("email", "nobody@example.com"),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong, unknown,
        "the answer must not reveal whether the email exists"
    );
    assert_eq!(wrong.1["message"], app::domain::accounts::BAD_CREDENTIALS);
    assert!(app.session(&c).await.is_null());
}

#[sqlx::test(migrations = "../migrations")]
async fn duplicate_email_is_a_clear_conflict(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("Alice", "alice@example.com").await;
    let (status, body) = app
        .call_json(
            &client(),
            "signup",
            &[
                ("display_name", "Other"),
                ("email", " ALICE@example.com "),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");
    assert_eq!(body["field"], "email");
    assert!(
        body["message"].as_str().unwrap().contains("already exists"),
        "{body}"
    );
    let count: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_sign_up_input_names_the_field(db: PgPool) {
    let app = spawn_app(db).await;
    let cases = [
        (("", "a@example.com", PASSWORD), "display_name"),
        (("Al", "not-an-email", PASSWORD), "email"),
        (("Al", "a@example.com", "short"), "password"),
    ];
    for ((name, email, password), field) in cases {
        let (status, body) = app
            .call_json(
                &client(),
                "signup",
                &[
                    ("display_name", name),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn log_in_cycles_the_session_id(db: PgPool) {
    let app = spawn_app(db).await;
    let c = client();
    let res = app
        .call(
            &c,
            "signup",
            &[
                ("display_name", "Alice"),
                ("email", "alice@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let before = session_cookie(&res).expect("sign-up sets a session cookie");

    let res = app
        .call(
            &c,
            "login",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let after = session_cookie(&res).expect("log-in sets a session cookie");
    assert_ne!(after, before, "the id must change on log-in");

    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain-http public URL: no Secure flag: {cookie}"
    );
    assert!(
        cookie.contains("Max-Age=") || cookie.contains("Expires="),
        "idle expiry: {cookie}"
    );

    // Only the new id remains in the store.
    let ids: Vec<String> = sqlx::query_scalar("select id from tower_sessions.session")
        .fetch_all(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(ids, vec![after]);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_old_session_id_is_dead_after_log_in(db: PgPool) {
    let app = spawn_app(db).await;
    let alice = app.user("Alice", "alice@example.com").await;
    let session_id: String = sqlx::query_scalar("select id from tower_sessions.session")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();

    // Log in again on the same client: the id changes and the old one stops working.
    let res = app
        .call(
            &alice,
            "login",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let stolen = reqwest::Client::new()
        .post(app.url("/api/session"))
        .header(header::COOKIE, format!("patchbay_session={session_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.text().await.unwrap(), "null");
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_log_ins_are_throttled_per_account(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("Alice", "alice@example.com").await;
    let c = client();
    for _ in 0..app::domain::accounts::MAX_FAILURES_PER_ACCOUNT {
        let (status, _) = app
            .call_json(
                &c,
                "login",
                &[
                    ("email", "alice@example.com"),
                    ("password", "wrong password!"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Even the right password is refused now.
    let (status, body) = app
        .call_json(
            &c,
            "login",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    // The same happens for an email nobody uses, so throttling reveals nothing either.
    for _ in 0..app::domain::accounts::MAX_FAILURES_PER_ACCOUNT {
        app.call_json(
            &c,
            "login",
            &[
                ("email", "ghost@example.com"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    }
    let (status, _) = app
        .call_json(
            &c,
            "login",
            &[
                ("email", "ghost@example.com"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_log_ins_are_throttled_per_address(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("Alice", "alice@example.com").await;
    let c = client();
    // Spread over many accounts so that no single account reaches its own limit.
    for i in 0..app::domain::accounts::MAX_FAILURES_PER_ADDRESS {
        let email = format!("user{i}@example.com");
        app.call_json(
            &c,
            "login",
            &[("email", &email), ("password", "wrong password!")],
        )
        .await;
    }
    let (status, _) = app
        .call_json(
            &c,
            "login",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrations = "../migrations")]
async fn change_password(db: PgPool) {
    let app = spawn_app(db).await;
    let alice = app.user("Alice", "alice@example.com").await;
    let new = "a much better passphrase";

    let (status, body) = app
        .call_json(
            &alice,
            "change_password",
            &[
                ("current_password", "wrong password!"),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "current_password");

    let (status, body) = app
        .call_json(
            &alice,
            "change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", "different"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "confirm_password");

    // Another session of Alice's, say on a stolen laptop.
    let laptop = client();
    let (status, _) = app
        .call_json(
            &laptop,
            "login",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!app.session(&laptop).await.is_null());

    let (status, body) = app
        .call_json(
            &alice,
            "change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.session(&alice).await["user"]["email"],
        "alice@example.com",
        "still signed in"
    );
    assert!(
        app.session(&laptop).await.is_null(),
        "every other session ended"
    );

    let (status, _) = app
        .call_json(
            &client(),
            "login",
            &[("email", "alice@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "old password no longer works"
    );
    let (status, _) = app
        .call_json(
            &client(),
            "login",
            &[("email", "alice@example.com"), ("password", new)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn signed_out_callers_are_refused(db: PgPool) {
    let app = spawn_app(db).await;
    let (status, body) = app
        .call_json(
            &client(),
            "orgs/create",
            &[("name", "Acme"), ("kind", "customer")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_form_posted_without_javascript_redirects_back_with_the_error(db: PgPool) {
    let app = spawn_app(db).await;
    let res = client()
        .post(app.url("/api/login"))
        .header(header::ACCEPT, "text/html")
        .header(header::REFERER, app.url("/login"))
        .form(&[
            ("email", "nobody@example.com"),
            ("password", "whatever it is"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.contains("/login?__path=") && location.contains("__err="),
        "{location}"
    );

    // The page at that address shows the message beside the form, rendered by the server.
    let page = client()
        .get(&location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(app::domain::accounts::BAD_CREDENTIALS),
        "{page}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn idle_sessions_expire(db: PgPool) {
    let app = spawn_app_with(
        db,
        "http://patchbay.test",
        std::time::Duration::from_secs(1),
    )
    .await;
    let alice = app.user("Alice", "alice@example.com").await;
    assert!(!app.session(&alice).await.is_null());
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert!(
        app.session(&alice).await.is_null(),
        "the session expired after a second of inactivity"
    );
    // The server refuses the stale id too, not only the browser's cookie jar.
    let stale: i64 =
        sqlx::query_scalar("select count(*) from tower_sessions.session where expiry_date > now()")
            .fetch_one(&app.admin_pool)
            .await
            .unwrap();
    assert_eq!(stale, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_burst_of_concurrent_guesses_cannot_pass_the_limit(db: PgPool) {
    let app = spawn_app(db).await;
    app.user("Alice", "alice@example.com").await;
    let c = client();
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (url, c) = (app.url("/api/login"), c.clone());
        guesses.spawn(async move {
            let password = format!("wrong password {i}");
            c.post(url)
                .form(&[
                    ("email", "alice@example.com"),
                    ("password", password.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses: Vec<StatusCode> = guesses.join_all().await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        checked as i64 <= app::domain::accounts::MAX_FAILURES_PER_ACCOUNT,
        "{statuses:?}"
    );
    assert_eq!(checked + refused, 20, "{statuses:?}");
}
