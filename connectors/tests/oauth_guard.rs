//! OAuth token and revocation requests go through the SSRF guard like every other request.

use connectors::http::{HttpConfig, OutboundClient};
use connectors::oauth::{OAuthApp, OAuthClient};
use connectors::spec::load_str;
use connectors::ErrorClass;
use secrecy::SecretString;
use std::collections::BTreeMap;

#[tokio::test]
async fn token_endpoints_on_refused_addresses_are_never_called() {
    let spec = load_str(
        "evil.toml",
        r#"
id = "evil"
name = "Evil"
base_url = "https://api.evil.example"
[auth]
type = "oauth2"
authorize_url = "https://evil.example/authorize"
token_url = "http://169.254.169.254/latest/meta-data/token"
revoke_url = "http://10.0.0.7/revoke"
"#,
    )
    .unwrap();
    let app = OAuthApp {
        client_id: "c".into(),
        client_secret: SecretString::from("s"),
        redirect_url: "https://patchbay.example/oauth/callback".into(),
    };
    let http = OutboundClient::new(HttpConfig::default()).unwrap();
    let client = OAuthClient::new(&spec, &app, &BTreeMap::new(), http).unwrap();

    let err = client.exchange_code("code", None).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(
        err.message.contains("169.254.169.254") || err.message.contains("refused"),
        "{err}"
    );
    let err = client.refresh(&SecretString::from("r")).await.unwrap_err();
    assert!(err.message.contains("token request"), "{err}");
    let err = client
        .revoke(&SecretString::from("t"), false)
        .await
        .unwrap_err();
    assert!(
        err.message.contains("https") || err.message.contains("refused"),
        "{err}"
    );
}

/// A shop name that smuggles URL delimiters would send the client secret (and later the access
/// token) to another host: it is refused before anything is rendered.
#[tokio::test]
async fn connection_fields_cannot_move_requests_to_another_host() {
    use connectors::engine::{Connection, Credentials, ReadPosition, Source, SpecSource};
    let spec = connectors::spec::builtin_specs()
        .unwrap()
        .into_iter()
        .find(|s| s.id == "shopify")
        .unwrap();
    let app = OAuthApp {
        client_id: "c".into(),
        client_secret: SecretString::from("s"),
        redirect_url: "https://patchbay.example/oauth/callback".into(),
    };
    let http = OutboundClient::new(HttpConfig::default()).unwrap();
    for shop in [
        "evil.example/x?",
        "evil.example#",
        "a@evil.example",
        "acme outfitters",
        "",
        &"a".repeat(61),
    ] {
        let vars = BTreeMap::from([("shop".to_owned(), shop.to_owned())]);
        let err = OAuthClient::new(&spec, &app, &vars, http.clone())
            .err()
            .expect(shop);
        assert_eq!(err.class, ErrorClass::Permanent);
        assert!(err.message.contains("Shop name"), "{err}");

        let source = SpecSource::new(
            Connection {
                spec: std::sync::Arc::new(spec.clone()),
                credentials: Credentials::OAuth2 {
                    access_token: SecretString::from("t"),
                },
                vars,
            },
            http.clone(),
        );
        let err = source
            .read_page("customers", &ReadPosition::default())
            .await
            .unwrap_err();
        assert!(err.message.contains("Shop name"), "{err}");
    }
    let ok = BTreeMap::from([("shop".to_owned(), "acme-outfitters".to_owned())]);
    assert!(OAuthClient::new(&spec, &app, &ok, http).is_ok());
}
