//! Tenant isolation at the SQL level, under the application role: with tenant A set, B's rows are
//! invisible and cannot be written; with no tenant set, no tenant rows at all.

use app::domain::db::{self, Scope};
use app::domain::{accounts, audit, listings, orgs};
use app::model::{Email, NewPassword, OrgKind};
use sqlx::PgPool;
use uuid::Uuid;

async fn setup(admin_pool: &PgPool) -> (PgPool, Uuid, Uuid, Uuid, Uuid) {
    let pool = db::connect_app_pool(admin_pool.connect_options().as_ref().clone(), 3)
        .await
        .unwrap();
    let password = NewPassword::parse("password", "long enough password".into()).unwrap();
    let alice = accounts::sign_up(
        &pool,
        &Email::parse("alice@example.com").unwrap(),
        "Alice",
        &password,
    )
    .await
    .unwrap();
    let bob = accounts::sign_up(
        &pool,
        &Email::parse("bob@example.com").unwrap(),
        "Bob",
        &password,
    )
    .await
    .unwrap();
    let a = orgs::create(&pool, alice.id, OrgKind::Customer, "Tenant A")
        .await
        .unwrap()
        .id;
    let b = orgs::create(&pool, bob.id, OrgKind::Customer, "Tenant B")
        .await
        .unwrap()
        .id;
    (pool, a, b, alice.id, bob.id)
}

async fn count(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn the_app_runs_as_a_role_that_row_level_security_binds(admin_pool: PgPool) {
    let (pool, ..) = setup(&admin_pool).await;
    let (role, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "select current_user::text, rolsuper, rolbypassrls from pg_roles where rolname = current_user",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(role, db::APP_ROLE);
    assert!(!superuser && !bypass);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_tenant_sees_only_its_own_rows(admin_pool: PgPool) {
    let (pool, a, b, alice, _) = setup(&admin_pool).await;
    // The owner pool sees both tenants' rows: the data is there.
    assert_eq!(
        count(
            &mut admin_pool.acquire().await.unwrap(),
            "select count(*) from audit_log"
        )
        .await,
        2
    );

    let mut tx = db::begin(
        &pool,
        Scope::Tenant {
            tenant: a,
            user: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(count(&mut tx, "select count(*) from audit_log").await, 1);
    assert_eq!(count(&mut tx, "select count(*) from memberships").await, 1);
    let tenants: Vec<Uuid> = sqlx::query_scalar(
        "select tenant_id from audit_log union select tenant_id from memberships",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(tenants, vec![a]);
    // Asking for B by id does not help.
    let b_rows: i64 = sqlx::query_scalar("select count(*) from audit_log where tenant_id = $1")
        .bind(b)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(b_rows, 0);
    // Nor can A's transaction update or delete B's rows.
    let updated = sqlx::query("update memberships set role = 'member' where tenant_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query("delete from memberships where tenant_id = $1")
        .bind(b)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    // (The audit log cannot be deleted from at all: it is append-only, see tests/admin.rs.)
    tx.commit().await.unwrap();

    // Writing a row into B while A is set is refused by the policy.
    let mut tx = db::begin(
        &pool,
        Scope::Tenant {
            tenant: a,
            user: Some(alice),
        },
    )
    .await
    .unwrap();
    let err = audit::record(&mut tx, b, Some(alice), "sneaky", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);

    assert_eq!(
        count(
            &mut admin_pool.acquire().await.unwrap(),
            "select count(*) from audit_log where action = 'sneaky'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &mut admin_pool.acquire().await.unwrap(),
            "select count(*) from memberships where role = 'owner'"
        )
        .await,
        2
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn with_no_tenant_set_there_are_no_tenant_rows(admin_pool: PgPool) {
    let (pool, a, ..) = setup(&admin_pool).await;
    // A bare query on the pool, outside any scoped transaction.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(count(&mut conn, "select count(*) from audit_log").await, 0);
    assert_eq!(
        count(&mut conn, "select count(*) from memberships").await,
        0
    );
    drop(conn);

    // A setting from an earlier transaction on the same connection does not linger.
    let pool1 = db::connect_app_pool(admin_pool.connect_options().as_ref().clone(), 1)
        .await
        .unwrap();
    let mut tx = db::begin(
        &pool1,
        Scope::Tenant {
            tenant: a,
            user: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(count(&mut tx, "select count(*) from audit_log").await, 1);
    tx.commit().await.unwrap();
    let mut conn = pool1.acquire().await.unwrap();
    assert_eq!(count(&mut conn, "select count(*) from audit_log").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_user_scope_sees_only_that_users_memberships(admin_pool: PgPool) {
    let (pool, a, _, alice, bob) = setup(&admin_pool).await;
    let mut tx = db::begin(&pool, Scope::User(alice)).await.unwrap();
    let tenants: Vec<Uuid> = sqlx::query_scalar("select tenant_id from memberships")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tenants, vec![a]);
    // A user scope is not a tenant scope: no tenant's audit log.
    assert_eq!(count(&mut tx, "select count(*) from audit_log").await, 0);
    // And it cannot write memberships.
    let err =
        sqlx::query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'owner')")
            .bind(a)
            .bind(bob)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_system_scope_sees_every_tenant(admin_pool: PgPool) {
    let (pool, ..) = setup(&admin_pool).await;
    let mut tx = db::begin(&pool, Scope::System).await.unwrap();
    assert_eq!(count(&mut tx, "select count(*) from audit_log").await, 2);
    assert_eq!(count(&mut tx, "select count(*) from memberships").await, 2);
}

/// Listings: a vendor's drafts are its own; everyone else (another vendor, a customer, nobody)
/// sees published listings only, and cannot write any vendor's rows.
#[sqlx::test(migrations = "../migrations")]
async fn listing_drafts_stay_with_their_vendor(admin_pool: PgPool) {
    let (pool, _, _, alice, bob) = setup(&admin_pool).await;
    let vendor_a = orgs::create(&pool, alice, OrgKind::Vendor, "Vendor A")
        .await
        .unwrap()
        .id;
    let vendor_b = orgs::create(&pool, bob, OrgKind::Vendor, "Vendor B")
        .await
        .unwrap()
        .id;
    let draft = listings::create(&pool, alice, vendor_a, "Draft one", "draft-one")
        .await
        .unwrap();
    // A second listing, published by hand (the review path has its own tests).
    let published = listings::create(&pool, alice, vendor_a, "Live one", "live-one")
        .await
        .unwrap();
    sqlx::query("update listing_versions set state = 'published' where listing_id = $1")
        .bind(published)
        .execute(&admin_pool)
        .await
        .unwrap();
    sqlx::query("update listings set status = 'published', published_version_id = (select id from listing_versions where listing_id = $1) where id = $1")
        .bind(published)
        .execute(&admin_pool)
        .await
        .unwrap();

    let scopes = [
        Scope::Tenant {
            tenant: vendor_b,
            user: Some(bob),
        },
        Scope::User(bob),
        Scope::Public,
    ];
    for scope in scopes {
        let mut tx = db::begin(&pool, scope).await.unwrap();
        let visible: Vec<String> = sqlx::query_scalar("select slug from listings order by slug")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(visible, ["live-one"], "{scope:?}");
        assert_eq!(
            count(&mut tx, "select count(*) from listing_versions").await,
            1,
            "{scope:?}"
        );
        let changed = sqlx::query("update listings set name = 'hijacked'")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 0, "{scope:?}");
        let changed = sqlx::query("update listing_versions set name = 'hijacked'")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 0, "{scope:?}");
        tx.commit().await.unwrap();
    }
    // Outside any transaction (how the catalog reads), the same.
    let visible: i64 = sqlx::query_scalar("select count(*) from listings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(visible, 1);

    // Vendor B cannot hang a version of its own on A's listing: the version's vendor must be
    // its listing's.
    let mut tx = db::tenant_tx(&pool, vendor_b, bob).await.unwrap();
    let err = sqlx::query(
        "insert into listing_versions (id, listing_id, vendor_org_id, number, state, name, recipe) \
         values (gen_random_uuid(), $1, $2, 9, 'superseded', 'sneaky', '{}')",
    )
    .bind(draft)
    .bind(vendor_b)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("listing_versions_listing_vendor_fk"),
        "{err}"
    );
    drop(tx);

    // The owner sees both, drafts included.
    let mut tx = db::tenant_tx(&pool, vendor_a, alice).await.unwrap();
    assert_eq!(count(&mut tx, "select count(*) from listings").await, 2);
    tx.commit().await.unwrap();
}
