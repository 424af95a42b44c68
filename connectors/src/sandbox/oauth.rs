//! The OAuth 2.0 authorization endpoint: validates the request (client and exact redirect URI
//! first, so that a bad one never causes a redirect; then PKCE S256 and scopes), shows the
//! consent page, and redirects back with a code or an error. The token and revocation
//! endpoints are in `token_endpoint.rs`; the rules about codes and tokens in `tokens.rs`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::consent_page;
use super::scopes::Scopes;
use super::tokens::is_pkce_value;
use super::{lock, AppState, Inner, SandboxClient};

/// Form or query parameters; Err names a parameter given twice (RFC 6749 §3.1 forbids it).
pub(crate) fn parse_params(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(k.into_owned());
        }
    }
    Ok(out)
}

/// An authorization request that passed every check.
struct Authorization<'a> {
    client: &'a SandboxClient,
    redirect_uri: &'a str,
    scopes: Scopes,
    challenge: &'a str,
}

/// Why an authorization request was refused: a page when the redirect URI cannot be trusted,
/// else a redirect carrying the error (and the state).
enum Refusal<'a> {
    Page(&'static str, String),
    Redirect {
        redirect_uri: &'a str,
        state: Option<&'a str>,
        error: &'static str,
        description: String,
    },
}

/// `redirect_uri` with `pairs` appended to its query, as a 302.
fn redirect_to(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return consent_page::error_page(
            "Invalid redirect URI",
            "The application's redirect URI is not a valid URL.",
        );
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (
        StatusCode::FOUND,
        [
            (LOCATION, url.to_string()),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

fn check<'a>(
    inner: &'a Inner,
    p: &'a HashMap<String, String>,
) -> Result<Authorization<'a>, Refusal<'a>> {
    let get = |k: &str| p.get(k).map(String::as_str);
    let client = get("client_id")
        .and_then(|id| inner.client(id))
        .ok_or_else(|| {
            Refusal::Page(
                "Unknown application",
                "The application asking for access is not registered with Sandbox.".into(),
            )
        })?;
    let redirect_uri = get("redirect_uri").filter(|r| client.redirect_uris.iter().any(|u| u == r)).ok_or_else(|| {
        Refusal::Page(
            "Invalid redirect URI",
            format!("The redirect URI is not one registered for {}. Sandbox will not send you there.", client.name),
        )
    })?;
    let state = get("state");
    let fail = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri,
        state,
        error,
        description: description.to_owned(),
    };
    if get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    if get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "PKCE is required: code_challenge_method must be S256",
        ));
    }
    let challenge = get("code_challenge")
        .filter(|c| is_pkce_value(c))
        .ok_or_else(|| {
            fail(
                "invalid_request",
                "PKCE is required: code_challenge must be the base64url SHA-256 of the verifier",
            )
        })?;
    let scopes = match Scopes::parse(get("scope").unwrap_or_default()) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return Err(fail("invalid_scope", "scope is required")),
        Err(unknown) => return Err(fail("invalid_scope", &format!("unknown scope `{unknown}`"))),
    };
    Ok(Authorization {
        client,
        redirect_uri,
        scopes,
        challenge,
    })
}

fn refused(refusal: Refusal<'_>) -> Response {
    match refusal {
        Refusal::Page(title, message) => consent_page::error_page(title, &message),
        Refusal::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut pairs = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = state {
                pairs.push(("state", s));
            }
            redirect_to(redirect_uri, &pairs)
        }
    }
}

/// `GET /oauth/authorize`: the consent page, or an error.
pub(crate) async fn authorize_page(
    State(inner): State<AppState>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(dup) => {
            return consent_page::error_page(
                "Invalid request",
                &format!("`{dup}` is given more than once."),
            )
        }
    };
    let auth = match check(&inner, &params) {
        Ok(a) => a,
        Err(refusal) => return refused(refusal),
    };
    const ECHOED: [&str; 7] = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    ];
    let echoed: Vec<(&str, &str)> = ECHOED
        .iter()
        .filter_map(|k| params.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    let host = url::Url::parse(auth.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    consent_page::consent(
        &auth.client.name,
        host.as_deref().unwrap_or_default(),
        auth.scopes,
        &echoed,
    )
}

/// `POST /oauth/authorize` with `decision=approve|deny`: redirects back to the client.
pub(crate) async fn authorize_decision(State(inner): State<AppState>, body: Bytes) -> Response {
    let params = match parse_params(&body) {
        Ok(p) => p,
        Err(dup) => {
            return consent_page::error_page(
                "Invalid request",
                &format!("`{dup}` is given more than once."),
            )
        }
    };
    let auth = match check(&inner, &params) {
        Ok(a) => a,
        Err(refusal) => return refused(refusal),
    };
    let code: String;
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    match params.get("decision").map(String::as_str) {
        Some("approve") => {
            let generation = inner.faults.token_generation();
            code = lock(&inner.tokens).issue_code(
                &auth.client.client_id,
                auth.redirect_uri,
                auth.scopes,
                auth.challenge,
                generation,
            );
            pairs.push(("code", &code));
        }
        Some("deny") => {
            pairs.push(("error", "access_denied"));
            pairs.push(("error_description", "the user denied access"));
        }
        _ => {
            pairs.push(("error", "invalid_request"));
            pairs.push(("error_description", "decision must be approve or deny"));
        }
    }
    if let Some(state) = params.get("state") {
        pairs.push(("state", state));
    }
    redirect_to(auth.redirect_uri, &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_duplicates_and_decode() {
        let p = parse_params(b"a=1&b=x%20y+z").expect("no duplicates");
        assert_eq!(p["b"], "x y z");
        assert_eq!(parse_params(b"a=1&a=2"), Err("a".to_owned()));
    }
}
