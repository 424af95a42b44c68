//! The OAuth server's memory: authorization codes, access and refresh tokens, and the
//! "families" that tie together everything issued from one consent, so that revoking one token,
//! reusing a code or replaying a rotated refresh token can revoke the lot.
//!
//! A family also records the fault generation it was born in; flipping the `revoke_tokens`
//! fault bumps the generation, which invalidates every older family at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::scopes::Scopes;

/// How long an authorization code can be exchanged.
const CODE_TTL: Duration = Duration::from_secs(60);

/// Who is calling the API: resolved from a valid access token.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) token: String,
    pub(crate) client_id: String,
    pub(crate) scopes: Scopes,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A successful token response, before serialisation.
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: u64,
    pub(crate) scopes: Scopes,
}

/// A refused grant: an RFC 6749 §5.2 error code and a description.
#[derive(Debug)]
pub(crate) struct GrantError {
    pub(crate) error: &'static str,
    pub(crate) description: &'static str,
}

fn refuse<T>(error: &'static str, description: &'static str) -> Result<T, GrantError> {
    Err(GrantError { error, description })
}

struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: Scopes,
    challenge: String,
    expires: Instant,
    used: bool,
    family: u64,
}

struct Access {
    client_id: String,
    scopes: Scopes,
    expires: Instant,
    family: u64,
}

struct Refresh {
    client_id: String,
    scopes: Scopes,
    family: u64,
    rotated: bool,
}

struct Family {
    revoked: bool,
    generation: u64,
}

/// Every code and token the sandbox has issued.
#[derive(Default)]
pub(crate) struct TokenStore {
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    families: HashMap<u64, Family>,
    next_family: u64,
}

fn random_token(prefix: &str) -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`.
pub(crate) fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl TokenStore {
    fn family_ok(&self, family: u64, generation: u64) -> bool {
        self.families
            .get(&family)
            .is_some_and(|f| !f.revoked && f.generation == generation)
    }

    fn revoke_family(&mut self, family: u64) {
        if let Some(f) = self.families.get_mut(&family) {
            f.revoked = true;
        }
    }

    /// Records an approved consent and returns its single-use code.
    pub(crate) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        scopes: Scopes,
        challenge: &str,
        generation: u64,
    ) -> String {
        let now = Instant::now();
        self.codes.retain(|_, c| c.expires > now);
        self.next_family += 1;
        let family = self.next_family;
        self.families.insert(
            family,
            Family {
                revoked: false,
                generation,
            },
        );
        let code = random_token("sbx_code_");
        self.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                challenge: challenge.to_owned(),
                expires: now + CODE_TTL,
                used: false,
                family,
            },
        );
        code
    }

    fn issue_tokens(
        &mut self,
        client_id: &str,
        family: u64,
        access: Scopes,
        refresh: Scopes,
        ttl: Duration,
    ) -> Issued {
        let access_token = random_token("sbx_at_");
        let refresh_token = random_token("sbx_rt_");
        let expires = Instant::now() + ttl;
        self.access.insert(
            access_token.clone(),
            Access {
                client_id: client_id.to_owned(),
                scopes: access,
                expires,
                family,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            Refresh {
                client_id: client_id.to_owned(),
                scopes: refresh,
                family,
                rotated: false,
            },
        );
        Issued {
            access_token,
            refresh_token,
            expires_in: ttl.as_secs(),
            scopes: access,
        }
    }

    /// `grant_type=authorization_code` for an authenticated client.
    pub(crate) fn exchange_code(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        generation: u64,
        ttl: Duration,
    ) -> Result<Issued, GrantError> {
        let Some(entry) = self.codes.get_mut(code) else {
            return refuse("invalid_grant", "unknown or expired authorization code");
        };
        if entry.client_id != client_id {
            return refuse(
                "invalid_grant",
                "the authorization code was issued to another client",
            );
        }
        let family = entry.family;
        if entry.used {
            // RFC 6749 §4.1.2: a code used twice revokes what was issued from it.
            self.revoke_family(family);
            return refuse(
                "invalid_grant",
                "authorization code already used; tokens issued from it are revoked",
            );
        }
        entry.used = true;
        if entry.expires <= Instant::now() {
            return refuse("invalid_grant", "the authorization code has expired");
        }
        if redirect_uri != Some(entry.redirect_uri.as_str()) {
            return refuse(
                "invalid_grant",
                "redirect_uri does not match the authorization request",
            );
        }
        let Some(verifier) = verifier else {
            return refuse("invalid_request", "code_verifier is required (PKCE)");
        };
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let matches: bool = computed.as_bytes().ct_eq(entry.challenge.as_bytes()).into();
        if !is_pkce_value(verifier) || !matches {
            return refuse(
                "invalid_grant",
                "code_verifier does not match the code_challenge",
            );
        }
        let scopes = entry.scopes;
        if !self.family_ok(family, generation) {
            return refuse("invalid_grant", "the authorization was revoked");
        }
        Ok(self.issue_tokens(client_id, family, scopes, scopes, ttl))
    }

    /// `grant_type=refresh_token` with rotation for an authenticated client.
    pub(crate) fn refresh(
        &mut self,
        client_id: &str,
        token: &str,
        scope: Option<Scopes>,
        generation: u64,
        ttl: Duration,
    ) -> Result<Issued, GrantError> {
        let Some(entry) = self.refresh.get(token) else {
            return refuse("invalid_grant", "unknown refresh token");
        };
        if entry.client_id != client_id {
            return refuse(
                "invalid_grant",
                "the refresh token was issued to another client",
            );
        }
        let (family, granted, rotated) = (entry.family, entry.scopes, entry.rotated);
        if rotated {
            // Reuse of a rotated token means it leaked or a client lost track: revoke the family.
            self.revoke_family(family);
            return refuse(
                "invalid_grant",
                "refresh token already used (rotated); the grant is revoked",
            );
        }
        if !self.family_ok(family, generation) {
            return refuse("invalid_grant", "the refresh token was revoked");
        }
        let access = scope.unwrap_or(granted);
        if !access.is_subset_of(granted) {
            return refuse(
                "invalid_scope",
                "the requested scope exceeds the granted scope",
            );
        }
        if let Some(entry) = self.refresh.get_mut(token) {
            entry.rotated = true;
        }
        Ok(self.issue_tokens(client_id, family, access, granted, ttl))
    }

    /// RFC 7009: revokes the token's family if the token belongs to `client_id`.
    pub(crate) fn revoke(&mut self, client_id: &str, token: &str) {
        let family = match (self.access.get(token), self.refresh.get(token)) {
            (Some(a), _) if a.client_id == client_id => Some(a.family),
            (_, Some(r)) if r.client_id == client_id => Some(r.family),
            _ => None,
        };
        if let Some(family) = family {
            self.revoke_family(family);
        }
    }

    /// Revokes every code and token issued so far.
    pub(crate) fn revoke_all(&mut self) {
        self.codes.clear();
        for f in self.families.values_mut() {
            f.revoked = true;
        }
    }

    /// Resolves a Bearer token, if it is current.
    pub(crate) fn authenticate(&self, token: &str, generation: u64) -> Option<Caller> {
        let a = self.access.get(token)?;
        (a.expires > Instant::now() && self.family_ok(a.family, generation)).then(|| Caller {
            token: token.to_owned(),
            client_id: a.client_id.clone(),
            scopes: a.scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    fn challenge_of(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }

    #[test]
    fn expired_codes_are_refused() {
        let verifier = "v".repeat(43);
        let mut store = TokenStore::default();
        let scopes = Scopes::parse("crm.read").unwrap_or_default();
        let code = store.issue_code("c", "http://x/cb", scopes, &challenge_of(&verifier), 0);
        if let Some(entry) = store.codes.get_mut(&code) {
            entry.expires = Instant::now();
        }
        let err = store.exchange_code("c", &code, Some("http://x/cb"), Some(&verifier), 0, TTL);
        assert_eq!(
            err.err().map(|e| e.description),
            Some("the authorization code has expired")
        );
    }

    #[test]
    fn a_new_generation_invalidates_older_grants() {
        let verifier = "w".repeat(64);
        let mut store = TokenStore::default();
        let scopes = Scopes::parse("shop.read").unwrap_or_default();
        let code = store.issue_code("c", "http://x/cb", scopes, &challenge_of(&verifier), 0);
        let issued = store
            .exchange_code("c", &code, Some("http://x/cb"), Some(&verifier), 0, TTL)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(store.authenticate(&issued.access_token, 0).is_some());
        assert!(store.authenticate(&issued.access_token, 1).is_none());
        let err = store.refresh("c", &issued.refresh_token, None, 1, TTL);
        assert_eq!(err.err().map(|e| e.error), Some("invalid_grant"));
        let other_client = store.refresh("d", &issued.refresh_token, None, 0, TTL);
        assert_eq!(other_client.err().map(|e| e.error), Some("invalid_grant"));
    }
}
