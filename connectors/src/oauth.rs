//! OAuth 2.0 clients built from a provider spec (authorization code with PKCE S256, code
//! exchange, refresh keeping a rotated refresh token, revoke), on the `oauth2` crate and the
//! guarded outbound HTTP client.

use crate::error::{ConnectorError, ErrorClass};
use crate::http::{OutboundClient, OutboundRequest};
use crate::spec::template::{self, Escape};
use crate::spec::{ClientAuth, OAuth2Spec, ProviderSpec};
use base64::Engine;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope, StandardRevocableToken,
    TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The OAuth app registered at the provider: Patchbay's client id and secret there.
#[derive(Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: SecretString,
    /// Patchbay's callback, exactly as registered (`https://…/oauth/callback`).
    pub redirect_url: String,
}

/// Where to send the user, and what to keep until they come back.
pub struct AuthorizeStart {
    pub url: url::Url,
    /// The `state` parameter; the callback must present it.
    pub state: String,
    /// The PKCE verifier (store it encrypted); None when the spec turns PKCE off.
    pub pkce_verifier: Option<SecretString>,
}

/// Tokens from the provider.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// A refresh token, if the provider issued (or rotated) one.
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<Duration>,
    pub scopes: Vec<String>,
    /// The spec's `token_fields`, as returned (Salesforce's `instance_url`).
    pub fields: BTreeMap<String, String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"…")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .field("fields", &self.fields)
            .finish()
    }
}

/// A token response as providers really send it: `token_type` is sometimes missing (Shopify),
/// `scope` may be comma-separated, and extra fields carry data we keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderTokenResponse {
    access_token: AccessToken,
    #[serde(default = "bearer", skip_serializing)]
    token_type: BasicTokenType,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(default, deserialize_with = "scopes", rename = "scope")]
    scopes: Option<Vec<Scope>>,
    #[serde(flatten)]
    extra: BTreeMap<String, serde_json::Value>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Scope>>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    Ok(raw.map(|s| {
        s.split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(|p| Scope::new(p.to_owned()))
            .collect()
    }))
}

impl TokenResponse for ProviderTokenResponse {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

type Client = oauth2::Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

/// An OAuth client for one provider (and one connection's variables, such as a Shopify shop).
pub struct OAuthClient {
    spec: OAuth2Spec,
    provider: String,
    client: Client,
    http: OutboundClient,
    client_id: String,
    client_secret: SecretString,
    revoke_url: Option<url::Url>,
}

impl OAuthClient {
    /// Builds the client. Fails when the spec is not OAuth 2.0 or a URL does not render.
    pub fn new(
        provider: &ProviderSpec,
        app: &OAuthApp,
        vars: &BTreeMap<String, String>,
        http: OutboundClient,
    ) -> Result<Self, ConnectorError> {
        let spec = provider
            .oauth2()
            .ok_or_else(|| {
                ConnectorError::permanent(format!("{} does not use OAuth 2.0", provider.id))
            })?
            .clone();
        provider
            .check_inputs(vars)
            .map_err(|e| ConnectorError::permanent(format!("{}: {e}", provider.id)))?;
        let render = |field: &str, t: &str| {
            template::render(t, vars, Escape::None).map_err(|e| {
                ConnectorError::permanent(format!("{}: auth.{field}: {e}", provider.id))
            })
        };
        fn bad(field: &'static str) -> impl Fn(url::ParseError) -> ConnectorError {
            move |e| ConnectorError::permanent(format!("auth.{field}: {e}"))
        }
        let auth_url = AuthUrl::new(render("authorize_url", &spec.authorize_url)?)
            .map_err(bad("authorize_url"))?;
        let token_url =
            TokenUrl::new(render("token_url", &spec.token_url)?).map_err(bad("token_url"))?;
        let revoke_url = match &spec.revoke_url {
            Some(u) => Some(url::Url::parse(&render("revoke_url", u)?).map_err(bad("revoke_url"))?),
            None => None,
        };
        let redirect = RedirectUrl::new(app.redirect_url.clone()).map_err(bad("redirect_url"))?;
        let client = oauth2::Client::new(ClientId::new(app.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                app.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_revocation_url_option(None::<RevocationUrl>)
            .set_redirect_uri(redirect)
            .set_auth_type(match spec.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Body => AuthType::RequestBody,
            });
        Ok(OAuthClient {
            spec,
            provider: provider.id.clone(),
            client,
            http,
            client_id: app.client_id.clone(),
            client_secret: app.client_secret.clone(),
            revoke_url,
        })
    }

    /// The provider's authorize URL with a fresh random state and, unless the spec turns it
    /// off, a PKCE S256 challenge.
    pub fn authorize(&self) -> AuthorizeStart {
        let mut req = self.client.authorize_url(CsrfToken::new_random);
        if !self.spec.scopes.is_empty() {
            req = req.add_extra_param("scope", self.spec.scopes.join(&self.spec.scope_separator));
        }
        for (k, v) in &self.spec.extra_params {
            req = req.add_extra_param(k.as_str(), v.as_str());
        }
        let verifier = if self.spec.pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            Some(SecretString::from(verifier.secret().to_owned()))
        } else {
            None
        };
        let (url, state) = req.url();
        AuthorizeStart {
            url,
            state: state.secret().to_owned(),
            pkce_verifier: verifier,
        }
    }

    /// Exchanges the code from the callback for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: Option<&SecretString>,
    ) -> Result<TokenSet, ConnectorError> {
        let mut req = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()));
        if let Some(v) = pkce_verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v.expose_secret().to_owned()));
        }
        let res = req
            .request_async(&OAuthHttp(&self.http))
            .await
            .map_err(|e| self.token_error(e))?;
        Ok(self.token_set(res, None))
    }

    /// Refreshes. A provider that rotates refresh tokens returns a new one, which the caller must
    /// store in the same transaction as the access token; one that does not keeps the old one.
    /// `invalid_grant` is an `Auth` error: the user must reconnect.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ConnectorError> {
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let res = self
            .client
            .exchange_refresh_token(&token)
            .request_async(&OAuthHttp(&self.http))
            .await
            .map_err(|e| self.token_error(e))?;
        Ok(self.token_set(res, Some(refresh_token)))
    }

    /// Revokes a token at the provider (RFC 7009), when the spec names a revocation endpoint.
    /// Returns whether a revocation was sent. Written by hand rather than through `oauth2`,
    /// which insists on https even for the bundled sandbox on loopback; plain http is allowed
    /// here only for loopback addresses.
    pub async fn revoke(
        &self,
        token: &SecretString,
        is_refresh: bool,
    ) -> Result<bool, ConnectorError> {
        let Some(url) = &self.revoke_url else {
            return Ok(false);
        };
        let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            || url.host_str() == Some("localhost");
        if url.scheme() != "https" && !loopback {
            return Err(ConnectorError::permanent(format!(
                "{}: the revocation endpoint must use https",
                self.provider
            )));
        }
        let hint = if is_refresh {
            "refresh_token"
        } else {
            "access_token"
        };
        let mut form = vec![("token", token.expose_secret()), ("token_type_hint", hint)];
        let secret = self.client_secret.expose_secret();
        if self.spec.client_auth == ClientAuth::Body {
            form.push(("client_id", self.client_id.as_str()));
            form.push(("client_secret", secret));
        }
        let mut req = OutboundRequest::post_form(url.clone(), &form);
        if self.spec.client_auth == ClientAuth::Basic {
            // RFC 6749 §2.3.1: each part form-urlencoded before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&self.client_id), enc(secret));
            req = req.header(
                "Authorization",
                &format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            );
        }
        let res = self.http.send(req).await?;
        // RFC 7009: 200 whether or not the token was valid; 503 means try later.
        match res.status {
            200..=299 => Ok(true),
            503 => Err(ConnectorError::transient(format!(
                "{}: the revocation endpoint is unavailable",
                self.provider
            ))),
            status => Err(ConnectorError::permanent(format!(
                "{} refused to revoke the token (HTTP {status})",
                self.provider
            ))
            .with_status(status)),
        }
    }

    fn token_set(
        &self,
        res: ProviderTokenResponse,
        old_refresh: Option<&SecretString>,
    ) -> TokenSet {
        let fields = self
            .spec
            .token_fields
            .iter()
            .filter_map(|name| {
                let value = res.extra.get(name)?;
                let text = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string());
                Some((name.clone(), text))
            })
            .collect();
        TokenSet {
            access_token: SecretString::from(res.access_token.secret().to_owned()),
            refresh_token: res
                .refresh_token
                .as_ref()
                .map(|t| SecretString::from(t.secret().to_owned()))
                .or_else(|| old_refresh.cloned()),
            expires_in: res.expires_in(),
            scopes: res
                .scopes
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.to_string())
                .collect(),
            fields,
        }
    }

    /// Classifies a token-endpoint failure without echoing anything secret.
    fn token_error<T: oauth2::ErrorResponse + 'static>(
        &self,
        err: RequestTokenError<ConnectorError, T>,
    ) -> ConnectorError {
        let provider = &self.provider;
        match err {
            RequestTokenError::ServerResponse(resp) => {
                let code = serde_json::to_value(&resp)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                ConnectorError::new(
                    token_error_class(&code),
                    format!("{provider} refused the token request: {code}"),
                )
            }
            // Our guarded client's own classification: a refused address stays permanent, a
            // network failure transient.
            RequestTokenError::Request(e) => ConnectorError {
                message: format!("{provider}: the token request failed: {}", e.message),
                ..e
            },
            // GitHub reports token errors with HTTP 200 and an `error` field, which then fails to
            // parse as tokens.
            RequestTokenError::Parse(e, body) => {
                let code = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
                match code {
                    Some(code) => ConnectorError::new(
                        token_error_class(&code),
                        format!("{provider} refused the token request: {code}"),
                    ),
                    // The parse error quotes the offending value, which may be the token itself:
                    // name only where it failed.
                    None => ConnectorError::permanent(format!(
                        "{provider}: the token response was not understood (at `{}`)",
                        e.path()
                    )),
                }
            }
            RequestTokenError::Other(e) => {
                ConnectorError::transient(format!("{provider}: token request: {e}"))
            }
        }
    }
}

/// The guarded outbound client as the `oauth2` crate's HTTP client. A named type rather than a
/// closure (`&|r| http.send_http(r)`), whose higher-ranked signature keeps the returned future
/// from being `Send` for every lifetime, so that callers could not hold it across an `.await` in
/// a server function or a spawned task.
struct OAuthHttp<'a>(&'a OutboundClient);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp<'_> {
    type Error = ConnectorError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, ConnectorError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.0.send_http(request))
    }
}

/// What a token endpoint's `error` code means for the caller. A grant that is spent or wrong
/// (RFC 6749's `invalid_grant`, GitHub's `bad_refresh_token` and `bad_verification_code`) needs
/// the user to connect again.
fn token_error_class(code: &str) -> ErrorClass {
    match code {
        "invalid_grant" | "bad_refresh_token" | "bad_verification_code" => ErrorClass::Auth,
        "temporarily_unavailable" | "server_error" => ErrorClass::Transient,
        "slow_down" => ErrorClass::RateLimited { retry_after: None },
        _ => ErrorClass::Permanent,
    }
}
