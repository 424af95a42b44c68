//! The OAuth 2.0 token endpoint (authorization code with PKCE, refresh with rotation) and RFC
//! 7009 revocation: client authentication and RFC 6749 §5.2 answers. What a code or token
//! allows is decided in `tokens.rs`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::oauth::parse_params;
use super::scopes::Scopes;
use super::tokens::{GrantError, Issued};
use super::{lock, AppState, Inner, SandboxClient};

/// An RFC 6749 §5.2 error answer.
fn oauth_error(error: &str, description: &str) -> Response {
    let status = if error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut resp = (
        status,
        [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sandbox\""),
        );
    }
    resp
}

/// Decodes `application/x-www-form-urlencoded` text (RFC 6749 §2.3.1 encodes Basic credentials).
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(
        format!("v={}", s.replace('&', "%26").replace('=', "%3D")).as_bytes(),
    )
    .next()
    .map(|(_, v)| v.into_owned())
    .unwrap_or_default()
}

/// A refused client authentication: RFC 6749 error code and description.
type AuthFailure = (&'static str, &'static str);

/// Authenticates the client by HTTP Basic or by `client_id` + `client_secret` in the form.
fn client_auth<'a>(
    inner: &'a Inner,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<&'a SandboxClient, AuthFailure> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    let (id, secret) = match basic {
        Some(encoded) => {
            if form.contains_key("client_secret") {
                return Err((
                    "invalid_request",
                    "use one client authentication method, not two",
                ));
            }
            let decoded = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(("invalid_client", "malformed HTTP Basic credentials"));
            };
            (form_decode(id), form_decode(secret))
        }
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return Err(("invalid_client", "client authentication is required")),
        },
    };
    let client = inner
        .client(&id)
        .filter(|c| bool::from(c.client_secret.as_bytes().ct_eq(secret.as_bytes())));
    client.ok_or(("invalid_client", "unknown client or wrong client secret"))
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(inner): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let form = match parse_params(&body) {
        Ok(f) => f,
        Err(dup) => {
            return oauth_error(
                "invalid_request",
                &format!("`{dup}` is given more than once"),
            )
        }
    };
    let client = match client_auth(&inner, &headers, &form) {
        Ok(c) => c,
        Err((error, description)) => return oauth_error(error, description),
    };
    let get = |k: &str| form.get(k).map(String::as_str);
    let generation = inner.faults.token_generation();
    let ttl = inner.config.access_token_ttl;
    let result: Result<Issued, GrantError> = match get("grant_type") {
        Some("authorization_code") => {
            let Some(code) = get("code") else {
                return oauth_error("invalid_request", "code is required");
            };
            lock(&inner.tokens).exchange_code(
                &client.client_id,
                code,
                get("redirect_uri"),
                get("code_verifier"),
                generation,
                ttl,
            )
        }
        Some("refresh_token") => {
            let Some(refresh) = get("refresh_token") else {
                return oauth_error("invalid_request", "refresh_token is required");
            };
            let scope = match get("scope").map(Scopes::parse) {
                None => None,
                Some(Ok(s)) if !s.is_empty() => Some(s),
                Some(Ok(_)) => return oauth_error("invalid_scope", "scope must not be empty"),
                Some(Err(unknown)) => {
                    return oauth_error("invalid_scope", &format!("unknown scope `{unknown}`"))
                }
            };
            lock(&inner.tokens).refresh(&client.client_id, refresh, scope, generation, ttl)
        }
        Some(_) => {
            return oauth_error(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
        None => return oauth_error("invalid_request", "grant_type is required"),
    };
    match result {
        Ok(issued) => (
            [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")],
            Json(json!({
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "refresh_token": issued.refresh_token,
                "scope": issued.scopes.to_string(),
            })),
        )
            .into_response(),
        Err(e) => oauth_error(e.error, e.description),
    }
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token exists.
pub(crate) async fn revoke(
    State(inner): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match parse_params(&body) {
        Ok(f) => f,
        Err(dup) => {
            return oauth_error(
                "invalid_request",
                &format!("`{dup}` is given more than once"),
            )
        }
    };
    let client = match client_auth(&inner, &headers, &form) {
        Ok(c) => c,
        Err((error, description)) => return oauth_error(error, description),
    };
    let Some(token) = form.get("token") else {
        return oauth_error("invalid_request", "token is required");
    };
    lock(&inner.tokens).revoke(&client.client_id, token);
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("s%3Acret+x&y=z"), "s:cret x&y=z");
    }
}
