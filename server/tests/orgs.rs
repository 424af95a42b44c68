//! Organizations over HTTP: creation, switching, and the role checks on every member action.

mod common;

use common::*;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

struct Team {
    app: TestApp,
    org: String,
    owner: Client,
    admin: Client,
    member: Client,
    outsider: Client,
    ids: std::collections::HashMap<&'static str, String>,
}

/// An organization with an owner, an admin and a member, plus an outsider with an org of their own.
async fn team(db: PgPool) -> Team {
    let app = spawn_app(db).await;
    let owner = app.user("Olive Owner", "owner@example.com").await;
    let admin = app.user("Adam Admin", "admin@example.com").await;
    let member = app.user("Mia Member", "member@example.com").await;
    let outsider = app.user("Otto Outsider", "outsider@example.com").await;
    let org = app.create_org(&owner, "Acme Outfitters", "customer").await;
    app.create_org(&outsider, "Elsewhere Inc", "vendor").await;
    for (email, role) in [
        ("admin@example.com", "admin"),
        ("member@example.com", "member"),
    ] {
        let (status, body) = app
            .call_json(
                &owner,
                "orgs/members/add",
                &[("org_id", &org), ("email", email), ("role", role)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut ids = std::collections::HashMap::new();
    for (key, client) in [
        ("owner", &owner),
        ("admin", &admin),
        ("member", &member),
        ("outsider", &outsider),
    ] {
        ids.insert(
            key,
            app.session(client).await["user"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    Team {
        app,
        org,
        owner,
        admin,
        member,
        outsider,
        ids,
    }
}

impl Team {
    async fn detail(&self, client: &Client) -> (StatusCode, Value) {
        self.app
            .call_json(client, "orgs/detail", &[("org_id", &self.org)])
            .await
    }

    async fn role_of(&self, who: &str) -> Option<String> {
        let (_, detail) = self.detail(&self.owner).await;
        detail["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == self.ids[who].as_str())
            .map(|m| m["role"].as_str().unwrap().to_owned())
    }

    async fn set_role(&self, actor: &Client, who: &str, role: &str) -> (StatusCode, Value) {
        self.app
            .call_json(
                actor,
                "orgs/members/role",
                &[
                    ("org_id", &self.org),
                    ("user_id", &self.ids[who]),
                    ("role", role),
                ],
            )
            .await
    }

    async fn remove(&self, actor: &Client, who: &str) -> (StatusCode, Value) {
        self.app
            .call_json(
                actor,
                "orgs/members/remove",
                &[("org_id", &self.org), ("user_id", &self.ids[who])],
            )
            .await
    }

    async fn add(&self, actor: &Client, email: &str, role: &str) -> (StatusCode, Value) {
        self.app
            .call_json(
                actor,
                "orgs/members/add",
                &[("org_id", &self.org), ("email", email), ("role", role)],
            )
            .await
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn creating_an_organization_makes_the_creator_its_owner_and_active(db: PgPool) {
    let app = spawn_app(db).await;
    let alice = app.user("Alice", "alice@example.com").await;
    let org = app.create_org(&alice, "Acme", "vendor").await;
    let session = app.session(&alice).await;
    assert_eq!(session["active_org"], org.as_str());
    assert_eq!(session["orgs"][0]["role"], "owner");
    assert_eq!(session["orgs"][0]["kind"], "vendor");

    let (status, body) = app
        .call_json(&alice, "orgs/create", &[("name", "  "), ("kind", "vendor")])
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let (status, body) = app
        .call_json(
            &alice,
            "orgs/create",
            &[("name", "X"), ("kind", "reseller")],
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("kind"))
    );

    let audit: Vec<String> = sqlx::query_scalar("select action from audit_log")
        .fetch_all(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(audit, vec!["organization.created"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn users_belong_to_several_organizations_and_switch_between_them(db: PgPool) {
    let app = spawn_app(db).await;
    let alice = app.user("Alice", "alice@example.com").await;
    let first = app.create_org(&alice, "Acme", "customer").await;
    let second = app.create_org(&alice, "Beta Apps", "vendor").await;
    assert_eq!(app.session(&alice).await["active_org"], second.as_str());

    let (status, _) = app
        .call_json(&alice, "orgs/switch", &[("org_id", &first)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let session = app.session(&alice).await;
    assert_eq!(session["active_org"], first.as_str());
    assert_eq!(session["orgs"].as_array().unwrap().len(), 2);

    // Someone else's organization cannot be made active.
    let bob = app.user("Bob", "bob@example.com").await;
    let bobs = app.create_org(&bob, "Bob Co", "customer").await;
    let (status, body) = app
        .call_json(&alice, "orgs/switch", &[("org_id", &bobs)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(app.session(&alice).await["active_org"], first.as_str());
}

#[sqlx::test(migrations = "../migrations")]
async fn reading_an_organization_needs_membership(db: PgPool) {
    let t = team(db).await;
    for client in [&t.owner, &t.admin, &t.member] {
        let (status, body) = t.detail(client).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["members"].as_array().unwrap().len(), 3);
    }
    let (status, body) = t.detail(&t.outsider).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.get("members").is_none());
    let (status, _) = t.detail(&client()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn adding_members(db: PgPool) {
    let t = team(db).await;
    t.app.user("New Person", "new@example.com").await;
    t.app.user("Another", "another@example.com").await;

    // A member cannot add; an outsider cannot even see the organization.
    assert_eq!(
        t.add(&t.member, "new@example.com", "member").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.add(&t.outsider, "new@example.com", "member").await.0,
        StatusCode::NOT_FOUND
    );
    // An admin adds members and admins, but not owners.
    assert_eq!(
        t.add(&t.admin, "new@example.com", "owner").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.add(&t.admin, "new@example.com", "admin").await.0,
        StatusCode::OK
    );
    // An owner may add an owner.
    assert_eq!(
        t.add(&t.owner, "another@example.com", "owner").await.0,
        StatusCode::OK
    );
    // Clear errors for the rest.
    let (status, body) = t.add(&t.owner, "new@example.com", "member").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::CONFLICT, Some("email"))
    );
    let (status, body) = t.add(&t.owner, "nobody@example.com", "member").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("email"))
    );
    let (status, body) = t.add(&t.owner, "another@example.com", "emperor").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("role"))
    );
    let (_, detail) = t.detail(&t.owner).await;
    assert_eq!(detail["members"].as_array().unwrap().len(), 5);
}

#[sqlx::test(migrations = "../migrations")]
async fn changing_roles(db: PgPool) {
    let t = team(db).await;
    // Members change nothing; outsiders see nothing.
    assert_eq!(
        t.set_role(&t.member, "member", "admin").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.set_role(&t.outsider, "member", "admin").await.0,
        StatusCode::NOT_FOUND
    );
    // Admins cannot touch owners or make owners.
    assert_eq!(
        t.set_role(&t.admin, "owner", "member").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.set_role(&t.admin, "member", "owner").await.0,
        StatusCode::FORBIDDEN
    );
    // Admins promote members to admin.
    assert_eq!(
        t.set_role(&t.admin, "member", "admin").await.0,
        StatusCode::OK
    );
    assert_eq!(t.role_of("member").await.as_deref(), Some("admin"));
    // The last owner cannot step down …
    let (status, body) = t.set_role(&t.owner, "owner", "admin").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("at least one owner"));
    // … until there is another owner.
    assert_eq!(
        t.set_role(&t.owner, "admin", "owner").await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.set_role(&t.owner, "owner", "member").await.0,
        StatusCode::OK
    );
    assert_eq!(t.role_of("owner").await.as_deref(), Some("member"));

    let actions: Vec<String> =
        sqlx::query_scalar("select action from audit_log where action = 'member.role_changed'")
            .fetch_all(&t.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(actions.len(), 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn removing_members(db: PgPool) {
    let t = team(db).await;
    assert_eq!(t.remove(&t.member, "admin").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        t.remove(&t.outsider, "member").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.remove(&t.admin, "owner").await.0, StatusCode::FORBIDDEN);
    // The last owner can be neither removed nor leave.
    let (status, body) = t.remove(&t.owner, "owner").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("last owner"));
    // An admin removes a member; a member may leave by themselves.
    assert_eq!(t.remove(&t.admin, "member").await.0, StatusCode::OK);
    assert_eq!(t.role_of("member").await, None);
    assert_eq!(
        t.remove(&t.admin, "admin").await.0,
        StatusCode::OK,
        "leaving"
    );
    assert_eq!(t.role_of("admin").await, None);
    let (status, _) = t.detail(&t.admin).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a former member no longer sees the organization"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn two_owners_demoting_each_other_at_once_leave_one_owner(db: PgPool) {
    let t = team(db).await;
    assert_eq!(
        t.set_role(&t.owner, "admin", "owner").await.0,
        StatusCode::OK
    );
    let (a, b) = tokio::join!(
        t.set_role(&t.owner, "admin", "member"),
        t.set_role(&t.admin, "owner", "member")
    );
    let ok = [a.0, b.0].iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{a:?} {b:?}");
    let owners: i64 = sqlx::query_scalar("select count(*) from memberships where role = 'owner'")
        .fetch_one(&t.app.admin_pool)
        .await
        .unwrap();
    // The outsider owns their own organization too.
    assert_eq!(owners, 2);
}
