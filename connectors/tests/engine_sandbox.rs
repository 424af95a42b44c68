//! The spec engine and the OAuth client against the bundled sandbox, over real HTTP on loopback:
//! the whole path a sync takes, from consent to mapped records.

use connectors::engine::{
    read_all, Connection, Credentials, Destination, ReadPosition, Source, SpecDestination,
    SpecSource, WriteOp,
};
use connectors::http::{HttpConfig, OutboundClient};
use connectors::oauth::{OAuthApp, OAuthClient, TokenSet};
use connectors::sandbox::{Sandbox, SandboxClient, SandboxConfig, SandboxHandle, SeedSizes};
use connectors::spec::{builtin_specs, ProviderSpec};
use connectors::ErrorClass;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

struct Setup {
    sandbox: SandboxHandle,
    spec: Arc<ProviderSpec>,
    http: OutboundClient,
    oauth: OAuthClient,
    vars: BTreeMap<String, String>,
}

async fn setup(provider: &str, seed: SeedSizes) -> Setup {
    setup_with(provider, seed, 0).await
}

/// A sandbox with Patchbay registered, `seed` records and a rate limit (0 = none), and the
/// provider's spec, HTTP client and OAuth client pointed at it.
async fn setup_with(provider: &str, seed: SeedSizes, rate_limit_per_sec: u32) -> Setup {
    let sandbox = Sandbox::spawn(SandboxConfig {
        clients: vec![SandboxClient {
            client_id: "patchbay".into(),
            client_secret: "patchbay-secret".into(),
            redirect_uris: vec![REDIRECT.into()],
            name: "Patchbay".into(),
        }],
        seed,
        rate_limit_per_sec,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let http = OutboundClient::new(HttpConfig {
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        ..HttpConfig::default()
    })
    .unwrap();
    let spec = Arc::new(
        builtin_specs()
            .unwrap()
            .into_iter()
            .find(|s| s.id == provider)
            .unwrap(),
    );
    let vars = BTreeMap::from([("sandbox_url".to_owned(), sandbox.base_url.clone())]);
    let app = OAuthApp {
        client_id: "patchbay".into(),
        client_secret: SecretString::from("patchbay-secret"),
        redirect_url: REDIRECT.into(),
    };
    let oauth = OAuthClient::new(&spec, &app, &vars, http.clone()).unwrap();
    Setup {
        sandbox,
        spec,
        http,
        oauth,
        vars,
    }
}

impl Setup {
    /// Authorize URL → consent approved by a form post → code → tokens.
    async fn connect(&self) -> TokenSet {
        let start = self.oauth.authorize();
        let query: BTreeMap<String, String> = start.url.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["state"], start.state);
        let mut form: Vec<(String, String)> = query.into_iter().collect();
        form.push(("decision".into(), "approve".into()));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = client
            .post(format!("{}/oauth/authorize", self.sandbox.base_url))
            .form(&form)
            .send()
            .await
            .unwrap();
        let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
        let params: BTreeMap<String, String> = location.query_pairs().into_owned().collect();
        assert_eq!(params["state"], start.state);
        self.oauth
            .exchange_code(&params["code"], start.pkce_verifier.as_ref())
            .await
            .unwrap()
    }

    fn source(&self, token: &SecretString) -> SpecSource {
        SpecSource::new(self.connection(token), self.http.clone())
    }

    fn connection(&self, token: &SecretString) -> Connection {
        Connection {
            spec: self.spec.clone(),
            credentials: Credentials::OAuth2 {
                access_token: token.clone(),
            },
            vars: self.vars.clone(),
        }
    }
}

async fn read_keys(
    source: &SpecSource,
    stream: &str,
    cursor: Option<String>,
) -> (Vec<String>, Option<String>) {
    let mut keys = Vec::new();
    let high_water = read_all(source, stream, cursor, |page| {
        keys.extend(page.records.into_iter().map(|r| r.key));
        Ok(())
    })
    .await
    .unwrap();
    (keys, high_water)
}

#[tokio::test]
async fn oauth_dance_read_refresh_rotation_and_revoke() {
    let s = setup(
        "sandbox-crm",
        SeedSizes {
            customers: 0,
            orders: 0,
            contacts: 450,
            companies: 30,
        },
    )
    .await;
    let tokens = s.connect().await;
    let refresh = tokens.refresh_token.clone().expect("a refresh token");
    let source = s.source(&tokens.access_token);
    assert_eq!(
        source.check().await.unwrap().as_deref(),
        Some("Sandbox Demo Co")
    );

    let (keys, high_water) = read_keys(&source, "contacts", None).await;
    assert_eq!(keys.len(), 450);
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        450,
        "no record twice"
    );
    assert!(high_water.is_some());

    // Refresh rotates the refresh token, and the new access token works.
    let renewed = s.oauth.refresh(&refresh).await.unwrap();
    let new_refresh = renewed.refresh_token.clone().unwrap();
    assert_ne!(new_refresh.expose_secret(), refresh.expose_secret());
    let fresh = s.source(&renewed.access_token);
    assert!(fresh.check().await.is_ok());

    // Revoke: the access token stops working, and the engine calls that an auth failure.
    assert!(s.oauth.revoke(&renewed.access_token, false).await.unwrap());
    let err = fresh
        .read_page("contacts", &ReadPosition::default())
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Auth);
    assert_eq!(err.status, Some(401));

    // The rotated-out refresh token is refused as invalid_grant: the user must reconnect.
    let err = s.oauth.refresh(&refresh).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Auth, "{err}");
    assert!(
        !err.message.contains(refresh.expose_secret()),
        "no secret in the message"
    );
}

#[tokio::test]
async fn records_changed_while_paging_arrive_once_and_then_incrementally() {
    let s = setup(
        "sandbox-crm",
        SeedSizes {
            customers: 0,
            orders: 0,
            contacts: 600,
            companies: 0,
        },
    )
    .await;
    let tokens = s.connect().await;
    let source = s.source(&tokens.access_token);

    let mut position = ReadPosition::default();
    let mut keys = Vec::new();
    let mut high_water = None;
    let mut pages = 0;
    loop {
        let page = source.read_page("contacts", &position).await.unwrap();
        keys.extend(page.records.iter().map(|r| r.key.clone()));
        high_water = page.high_water.clone().or(high_water);
        pages += 1;
        if pages == 1 {
            // Between pages: an edit to a record already read, one not read yet, and a new one.
            assert!(s.sandbox.sandbox.touch("contacts", &keys[0]));
            assert!(s.sandbox.sandbox.touch("contacts", "con_000550"));
            s.sandbox.sandbox.insert(
                "contacts",
                serde_json::json!({ "email": "new@sandbox.test", "name": "New Person" }),
            );
        }
        match page.next {
            Some(next) => position.page = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(keys.len(), 600, "the snapshot: every record once");
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 600);

    // The next sync reads what changed since: the two edits and the insert.
    let (changed, _) = read_keys(&source, "contacts", high_water).await;
    let mut changed: HashSet<_> = changed.into_iter().collect();
    assert!(
        changed.remove(&keys[0]) && changed.remove("con_000550"),
        "{changed:?}"
    );
    // `updated_since` is inclusive, so the record at the high-water mark is read again (its hash
    // makes that harmless downstream); the only other record is the insert.
    changed.remove(keys.last().unwrap());
    assert_eq!(changed.len(), 1, "the insert: {changed:?}");
}

#[tokio::test]
async fn faults_are_classified_for_the_sync_engine() {
    let s = setup(
        "sandbox-shop",
        SeedSizes {
            customers: 10,
            orders: 0,
            contacts: 0,
            companies: 0,
        },
    )
    .await;
    let tokens = s.connect().await;
    let source = s.source(&tokens.access_token);
    let first = ReadPosition::default();
    let faults = s.sandbox.sandbox.faults();

    faults.set_fail_next(1);
    let err = source.read_page("customers", &first).await.unwrap_err();
    assert_eq!(
        (err.class.clone(), err.status),
        (ErrorClass::Transient, Some(500))
    );

    faults.set_malformed_next(1);
    let err = source.read_page("customers", &first).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert!(err.message.contains("not valid JSON"));

    assert_eq!(
        source
            .read_page("customers", &first)
            .await
            .unwrap()
            .records
            .len(),
        10,
        "recovers"
    );

    faults.set_revoke_tokens(true);
    let err = source.read_page("customers", &first).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Auth);
    let err = s
        .oauth
        .refresh(tokens.refresh_token.as_ref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.class,
        ErrorClass::Auth,
        "a revoked grant needs the user to reconnect"
    );
}

#[tokio::test]
async fn rate_limits_become_waits() {
    let s = setup_with(
        "sandbox-shop",
        SeedSizes {
            customers: 5,
            orders: 0,
            contacts: 0,
            companies: 0,
        },
        2,
    )
    .await;
    let tokens = s.connect().await;
    let source = s.source(&tokens.access_token);
    let mut limited = None;
    for _ in 0..10 {
        if let Err(err) = source
            .read_page("customers", &ReadPosition::default())
            .await
        {
            limited = Some(err);
            break;
        }
    }
    let err = limited.expect("the sandbox's 2/s limit is hit within 10 calls");
    assert!(
        matches!(
            err.class,
            ErrorClass::RateLimited {
                retry_after: Some(_)
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status, Some(429));
}

#[tokio::test]
async fn writes_are_idempotent() {
    let s = setup(
        "sandbox-crm",
        SeedSizes {
            customers: 0,
            orders: 0,
            contacts: 3,
            companies: 0,
        },
    )
    .await;
    let tokens = s.connect().await;
    let dest = SpecDestination::new(s.connection(&tokens.access_token), s.http.clone());
    let op = WriteOp::Create {
        data: serde_json::json!({ "email": "ada@sandbox.test", "name": "Ada" }),
    };
    let first = dest.write("contacts", &op, "key-1").await.unwrap();
    let again = dest.write("contacts", &op, "key-1").await.unwrap();
    assert!(first.id.is_some());
    assert_eq!(first, again, "a retried create returns the same record");
    assert_eq!(
        s.sandbox.sandbox.count("contacts"),
        4,
        "and creates nothing twice"
    );

    let id = first.id.unwrap();
    let update = WriteOp::Update {
        id: id.clone(),
        data: serde_json::json!({ "name": "Ada Lovelace" }),
    };
    assert_eq!(
        dest.write("contacts", &update, "key-2")
            .await
            .unwrap()
            .id
            .as_deref(),
        Some(id.as_str())
    );
    let err = dest
        .write(
            "contacts",
            &WriteOp::Create {
                data: serde_json::json!({ "nonsense": true }),
            },
            "key-3",
        )
        .await
        .unwrap_err();
    assert_eq!((err.class, err.status), (ErrorClass::Permanent, Some(422)));
}

#[tokio::test]
async fn deletes_reach_the_sandbox_and_leave_later_reads() {
    let s = setup("sandbox-crm", SeedSizes::uniform(3)).await;
    let tokens = s.connect().await;
    let dest = SpecDestination::new(s.connection(&tokens.access_token), s.http.clone());
    assert!(dest.can_delete("contacts"));
    dest.delete("contacts", "con_000002").await.unwrap();
    // Already gone counts as deleted.
    dest.delete("contacts", "con_000002").await.unwrap();
    assert_eq!(s.sandbox.sandbox.count("contacts"), 2);
    let (keys, _) = read_keys(&s.source(&tokens.access_token), "contacts", None).await;
    assert_eq!(keys, ["con_000001", "con_000003"]);
}

#[tokio::test]
async fn webhook_subscriptions_are_made_and_removed_through_the_spec() {
    let s = setup("sandbox-shop", SeedSizes::uniform(1)).await;
    let tokens = s.connect().await;
    let source = s.source(&tokens.access_token);
    let sub = source
        .subscribe_webhooks("http://127.0.0.1:9/hooks/sandbox-shop/x")
        .await
        .unwrap();
    assert!(sub.id.starts_with("whs_"), "{sub:?}");
    assert_eq!(sub.secret.expose_secret(), "whsec_sandbox_demo");
    assert!(
        !format!("{sub:?}").contains("whsec"),
        "the secret never prints"
    );
    source.unsubscribe_webhooks(&sub.id).await.unwrap();
    // Gone already: still fine.
    source.unsubscribe_webhooks(&sub.id).await.unwrap();
    let refused = source
        .subscribe_webhooks("https://example.com/hooks")
        .await
        .unwrap_err();
    assert_eq!(refused.status, Some(422));
}
