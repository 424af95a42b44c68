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
