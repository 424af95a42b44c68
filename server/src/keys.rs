//! The credential vault's keyring, from configuration: the production key from the environment,
//! or a development key kept in the data directory.

use crate::config::KeyArgs;
use anyhow::Context;
use app::domain::vault::{generate_key, Keyring};
use secrecy::{ExposeSecret, SecretString};

/// The keyring `serve` runs with.
pub fn keyring(args: &KeyArgs) -> anyhow::Result<Keyring> {
    if let Some(current) = &args.secret_key {
        let old: Vec<SecretString> = args
            .old_secret_keys
            .as_ref()
            .map(|keys| {
                keys.expose_secret()
                    .split(',')
                    .filter(|k| !k.trim().is_empty())
                    .map(|k| SecretString::from(k.trim().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        return Keyring::new(current, &old)
            .context("PATCHBAY_SECRET_KEY / PATCHBAY_OLD_SECRET_KEYS");
    }
    let (keyring, created) = Keyring::load_or_create_dev(&args.data_dir)
        .context("the development key (set PATCHBAY_SECRET_KEY to use your own)")?;
    let path = args.data_dir.join("secret.key");
    if created {
        tracing::warn!(
            path = %path.display(),
            "PATCHBAY_SECRET_KEY is not set: generated a DEVELOPMENT key for credentials. Anyone \
             who can read that file can read every stored credential. In production, set \
             PATCHBAY_SECRET_KEY (`patchbay keys generate`)."
        );
    } else {
        tracing::warn!(
            path = %path.display(),
            "PATCHBAY_SECRET_KEY is not set: using the DEVELOPMENT key for credentials"
        );
    }
    Ok(keyring)
}

/// `patchbay keys generate`: a new key on standard output, nothing else.
pub fn print_new_key(id: u8) {
    println!("{}", generate_key(id).expose_secret());
}
