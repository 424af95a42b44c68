//! Accounts: sign-up, password checks with throttling, password changes, the platform-admin flag.
//!
//! Passwords are hashed with argon2id at OWASP's minimum (19 MiB, t=2, p=1) on the blocking pool.
//! Sign-in answers the same way, after the same work, whether or not the email exists.

use crate::error::{on_constraint, AppError};
use crate::model::{Email, NewPassword, UserInfo};
use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use sqlx::PgPool;
use std::net::IpAddr;
use std::sync::LazyLock;
use uuid::Uuid;

/// Failed sign-ins allowed per account within [`THROTTLE_WINDOW_MINUTES`].
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failed sign-ins allowed per client address within the window.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
pub const THROTTLE_WINDOW_MINUTES: i32 = 15;

/// At most this many hashes at once: each takes 19 MiB and a core, and the blocking pool would
/// otherwise run hundreds side by side under a burst of sign-ups or log-ins.
static HASH_PERMITS: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    tokio::sync::Semaphore::new(cores.max(2))
});

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with a fresh random salt.
pub async fn hash_password(password: &str) -> anyhow::Result<String> {
    let _permit = HASH_PERMITS.acquire().await.context("hashing permits")?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Checks a password against a stored hash. A malformed hash counts as a mismatch.
pub async fn verify_password(password: &str, hash: &str) -> anyhow::Result<bool> {
    let _permit = HASH_PERMITS.acquire().await.context("hashing permits")?;
    let password = password.to_owned();
    let hash = hash.to_owned();
    tokio::task::spawn_blocking(move || {
        argon2()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .context("password verification task")
}

/// A hash to verify against when the email is unknown, so that both answers cost the same.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    argon2()
        .hash_password(Uuid::new_v4().to_string().as_bytes())
        .expect("hashing a random string")
        .to_string()
});

#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    is_platform_admin: bool,
    password_hash: String,
}

impl From<UserRow> for UserInfo {
    fn from(row: UserRow) -> Self {
        UserInfo {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            is_platform_admin: row.is_platform_admin,
        }
    }
}

const USER_COLUMNS: &str = "id, email, display_name, is_platform_admin, password_hash";

/// Creates an account. A second account with the same email (in any letter case) is a conflict.
pub async fn sign_up(
    pool: &PgPool,
    email: &Email,
    display_name: &str,
    password: &NewPassword,
) -> Result<UserInfo, AppError> {
    let hash = hash_password(password.expose()).await?;
    let row: UserRow = sqlx::query_as(&format!(
        "insert into users (id, email, display_name, password_hash) values ($1, $2, $3, $4) \
         returning {USER_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(email.as_str())
    .bind(display_name)
    .bind(hash)
    .fetch_one(pool)
    .await
    .map_err(on_constraint("users_email_key", || {
        AppError::conflict(
            "email",
            "An account with this email already exists. Log in instead.",
        )
    }))?;
    Ok(row.into())
}

/// The message for every failed sign-in, whatever the reason.
pub const BAD_CREDENTIALS: &str = "That email and password do not match an account.";

/// The longest email an account can have; longer input is refused before it reaches the database.
const MAX_EMAIL_LEN: usize = 254;

/// The throttling key of a client address: IPv4 as is, IPv6 by its /64, since one host usually
/// holds a whole /64.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Checks credentials, throttling attempts per account and per client address.
///
/// The attempt is recorded before the password is checked and counted together with the others,
/// so a burst of concurrent guesses sees itself and cannot slip past the limit; a success
/// clears the account's record.
pub async fn authenticate(
    pool: &PgPool,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<UserInfo, AppError> {
    let email_key = email.trim().to_lowercase();
    if email_key.len() > MAX_EMAIL_LEN {
        return Err(AppError::invalid("form", BAD_CREDENTIALS));
    }
    let address = ip.map(address_key);
    sqlx::query("insert into login_failures (email_key, ip) values ($1, $2)")
        .bind(&email_key)
        .bind(&address)
        .execute(pool)
        .await?;
    let (by_account, by_address): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where email_key = $1), count(*) filter (where ip = $2) \
         from login_failures \
         where (email_key = $1 or ip = $2) and created_at > now() - make_interval(mins => $3)",
    )
    .bind(&email_key)
    .bind(&address)
    .bind(THROTTLE_WINDOW_MINUTES)
    .fetch_one(pool)
    .await?;
    // The counts include this attempt.
    if by_account > MAX_FAILURES_PER_ACCOUNT || by_address > MAX_FAILURES_PER_ADDRESS {
        return Err(AppError::rate_limited(format!(
            "Too many failed attempts. Wait {THROTTLE_WINDOW_MINUTES} minutes and try again."
        )));
    }

    let row: Option<UserRow> = sqlx::query_as(&format!(
        "select {USER_COLUMNS} from users where lower(email) = $1"
    ))
    .bind(&email_key)
    .fetch_optional(pool)
    .await?;
    let hash = row
        .as_ref()
        .map(|r| r.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = verify_password(password, &hash).await? && row.is_some();
    match row {
        Some(row) if ok => {
            sqlx::query("delete from login_failures where email_key = $1")
                .bind(&email_key)
                .execute(pool)
                .await?;
            Ok(row.into())
        }
        _ => {
            sqlx::query("delete from login_failures where created_at < now() - interval '1 day'")
                .execute(pool)
                .await?;
            Err(AppError::invalid("form", BAD_CREDENTIALS))
        }
    }
}

/// The user's session epoch (see the `session_epoch` migration).
pub async fn session_epoch(pool: &PgPool, user: Uuid) -> Result<Option<i32>, AppError> {
    Ok(
        sqlx::query_scalar("select session_epoch from users where id = $1")
            .bind(user)
            .fetch_optional(pool)
            .await?,
    )
}

/// A user and their session epoch, in one query, for checking a session on every request.
pub async fn find_with_epoch(pool: &PgPool, id: Uuid) -> Result<Option<(UserInfo, i32)>, AppError> {
    let row: Option<(Uuid, String, String, bool, i32)> = sqlx::query_as(
        "select id, email, display_name, is_platform_admin, session_epoch from users where id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map(|(id, email, display_name, is_platform_admin, epoch)| {
            (
                UserInfo {
                    id,
                    email,
                    display_name,
                    is_platform_admin,
                },
                epoch,
            )
        }),
    )
}

/// Looks a user up by email (any letter case).
pub async fn find_by_email(pool: &PgPool, email: &Email) -> Result<Option<UserInfo>, AppError> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "select {USER_COLUMNS} from users where lower(email) = $1"
    ))
    .bind(email.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
}

/// Changes a password after checking the current one.
pub async fn change_password(
    pool: &PgPool,
    user: Uuid,
    current: &str,
    new: &NewPassword,
) -> Result<(), AppError> {
    let hash: Option<String> = sqlx::query_scalar("select password_hash from users where id = $1")
        .bind(user)
        .fetch_optional(pool)
        .await?;
    let hash = hash.ok_or(AppError::Unauthorized)?;
    if !verify_password(current, &hash).await? {
        return Err(AppError::invalid(
            "current_password",
            "That is not your current password.",
        ));
    }
    let new_hash = hash_password(new.expose()).await?;
    // Bumping the epoch ends every session started before the change.
    sqlx::query(
        "update users set password_hash = $2, session_epoch = session_epoch + 1 where id = $1",
    )
    .bind(user)
    .bind(new_hash)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets or clears the platform-admin flag. Returns false when no account has that email.
pub async fn set_platform_admin(pool: &PgPool, email: &Email, admin: bool) -> anyhow::Result<bool> {
    let done = sqlx::query("update users set is_platform_admin = $2 where lower(email) = $1")
        .bind(email.as_str())
        .bind(admin)
        .execute(pool)
        .await
        .context("updating the platform-admin flag")?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn ipv6_clients_are_throttled_by_their_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let other = address_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(
            address_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7"
        );
        assert_eq!(address_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }
}
