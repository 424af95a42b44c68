//! The credential vault: how third-party secrets (OAuth tokens, API keys, client secrets, PKCE
//! verifiers) are kept at rest.
//!
//! AES-256-GCM with a fresh random 96-bit nonce per encryption. A sealed value is
//! `key id (1 byte) ‖ nonce (12) ‖ ciphertext and tag`, so that a keyring holding the current key
//! and older ones can open values sealed under any of them while new values use the current key
//! (rotation). Every value is sealed with additional authenticated data naming what it belongs to
//! (a tenant and a connection, say): a ciphertext copied onto another row does not open.
//!
//! Keys come from `PATCHBAY_SECRET_KEY` (`<id>:<base64 of 32 bytes>`; older keys, for reading
//! only, in `PATCHBAY_OLD_SECRET_KEYS`, comma-separated). In local development, without either, a
//! key is generated into the data directory with a warning. Opened secrets come back in
//! [`SecretBox`]es, whose `Debug` never shows them.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use uuid::Uuid;

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// Why a vault operation failed. None of these carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the sealed value is too short to be one")]
    Truncated,
    #[error("the sealed value names key {0}, which this keyring does not hold")]
    UnknownKey(u8),
    /// Wrong key, wrong associated data (moved to another row), or tampered bytes.
    #[error("the sealed value does not open with its key and associated data")]
    Forged,
    #[error("a key is malformed: {0}")]
    BadKey(String),
    #[error("the key file: {0}")]
    KeyFile(String),
}

/// What a sealed value belongs to; it must be named again to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// A connection's credentials: bound to the tenant and the connection.
    pub fn connection(tenant: Uuid, connection: Uuid) -> Self {
        Self::of("connection", &[tenant, connection])
    }

    /// An OAuth flow's PKCE verifier: bound to the flow's state id and tenant.
    pub fn oauth_flow(tenant: Uuid, flow: Uuid) -> Self {
        Self::of("oauth_flow", &[tenant, flow])
    }

    /// An install's webhook signing secret: bound to the tenant and the install.
    pub fn install_webhook(tenant: Uuid, install: Uuid) -> Self {
        Self::of("install_webhook", &[tenant, install])
    }

    /// A provider app's client secret: bound to its row.
    pub fn provider_app(app: Uuid) -> Self {
        Self::of("provider_app", &[app])
    }

    /// An alert rule's webhook signing secret: bound to the rule.
    pub fn alert_rule(rule: Uuid) -> Self {
        Self::of("alert_rule", &[rule])
    }

    fn of(purpose: &str, ids: &[Uuid]) -> Self {
        let mut bytes = Vec::with_capacity(purpose.len() + 1 + ids.len() * 16);
        bytes.extend_from_slice(purpose.as_bytes());
        bytes.push(0);
        for id in ids {
            bytes.extend_from_slice(id.as_bytes());
        }
        Aad(bytes)
    }
}

/// One 256-bit key with its id.
#[derive(Clone)]
struct Key {
    id: u8,
    cipher: Aes256Gcm,
}

/// The current key (for sealing) and older ones (for opening only).
#[derive(Clone)]
pub struct Keyring {
    current: u8,
    keys: BTreeMap<u8, Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Parses `<id>:<base64 of 32 bytes>`.
fn parse_key(text: &str) -> Result<Key, VaultError> {
    let (id, key) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| VaultError::BadKey("expected <id>:<base64 key>".into()))?;
    let id: u8 = id
        .trim()
        .parse()
        .map_err(|_| VaultError::BadKey("the id is not a number from 0 to 255".into()))?;
    let bytes = STANDARD
        .decode(key.trim())
        .map_err(|_| VaultError::BadKey(format!("key {id} is not base64")))?;
    if bytes.len() != KEY_LEN {
        return Err(VaultError::BadKey(format!(
            "key {id} is {} bytes; it must be {KEY_LEN}",
            bytes.len()
        )));
    }
    let cipher = Aes256Gcm::new_from_slice(&bytes)
        .map_err(|_| VaultError::BadKey(format!("key {id} is unusable")))?;
    Ok(Key { id, cipher })
}

/// A new random key as `<id>:<base64>`.
pub fn generate_key(id: u8) -> SecretString {
    let mut bytes = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::from(format!("{id}:{}", STANDARD.encode(bytes)))
}

impl Keyring {
    /// A keyring from the current key and older ones (`<id>:<base64>` each). Ids must differ.
    pub fn new(current: &SecretString, old: &[SecretString]) -> Result<Self, VaultError> {
        let current = parse_key(current.expose_secret())?;
        let current_id = current.id;
        let mut keys = BTreeMap::new();
        keys.insert(current.id, current);
        for text in old {
            let key = parse_key(text.expose_secret())?;
            if keys.contains_key(&key.id) {
                return Err(VaultError::BadKey(format!(
                    "key id {} is used twice; give every key its own id",
                    key.id
                )));
            }
            keys.insert(key.id, key);
        }
        Ok(Keyring {
            current: current_id,
            keys,
        })
    }

    /// The key file of a development data directory, created (mode 0600) with a new key when
    /// missing. Production sets `PATCHBAY_SECRET_KEY` instead.
    pub fn load_or_create_dev(dir: &Path) -> Result<(Self, bool), VaultError> {
        let path = dir.join("secret.key");
        let err = |e: std::io::Error| VaultError::KeyFile(format!("{}: {e}", path.display()));
        let created = !path.exists();
        if created {
            std::fs::create_dir_all(dir).map_err(err)?;
            let key = generate_key(1);
            write_private(&path, key.expose_secret().as_bytes()).map_err(err)?;
        }
        let text = SecretString::from(std::fs::read_to_string(&path).map_err(err)?);
        Ok((Keyring::new(&text, &[])?, created))
    }

    /// The id new values are sealed under.
    pub fn current_id(&self) -> u8 {
        self.current
    }

    /// Seals `plaintext` under the current key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &Aad) -> Vec<u8> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad.0,
                },
            )
            // AES-GCM encryption fails only for plaintexts beyond 64 GiB.
            .expect("AES-GCM seals any credential-sized value");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a sealed value with the key it names, checking `aad`.
    pub fn open(&self, sealed: &[u8], aad: &Aad) -> Result<SecretBox<Vec<u8>>, VaultError> {
        if sealed.len() < 1 + NONCE_LEN + 16 {
            return Err(VaultError::Truncated);
        }
        let key = self
            .keys
            .get(&sealed[0])
            .ok_or(VaultError::UnknownKey(sealed[0]))?;
        let plaintext = key
            .cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..1 + NONCE_LEN]),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: &aad.0,
                },
            )
            .map_err(|_| VaultError::Forged)?;
        Ok(SecretBox::new(Box::new(plaintext)))
    }

    /// Seals a text secret.
    pub fn seal_str(&self, secret: &SecretString, aad: &Aad) -> Vec<u8> {
        self.seal(secret.expose_secret().as_bytes(), aad)
    }

    /// Opens a text secret.
    pub fn open_str(&self, sealed: &[u8], aad: &Aad) -> Result<SecretString, VaultError> {
        let bytes = self.open(sealed, aad)?;
        let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| VaultError::Forged)?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// Re-seals a value under the current key (key rotation), if it is under another.
    pub fn reseal(&self, sealed: &[u8], aad: &Aad) -> Result<Option<Vec<u8>>, VaultError> {
        if sealed.first() == Some(&self.current) {
            return Ok(None);
        }
        let plaintext = self.open(sealed, aad)?;
        Ok(Some(self.seal(plaintext.expose_secret(), aad)))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests;
