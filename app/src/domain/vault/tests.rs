use super::*;
use proptest::prelude::*;

fn ring(current: u8, old: &[u8]) -> (Keyring, Vec<SecretString>) {
    let keys: Vec<SecretString> = std::iter::once(current)
        .chain(old.iter().copied())
        .map(generate_key)
        .collect();
    (Keyring::new(&keys[0], &keys[1..]).unwrap(), keys)
}

#[test]
fn sealed_values_open_with_the_same_associated_data() {
    let (ring, _) = ring(1, &[]);
    let (tenant, connection) = (Uuid::new_v4(), Uuid::new_v4());
    let aad = Aad::connection(tenant, connection);
    let sealed = ring.seal(b"access-token-123", &aad);
    assert_eq!(sealed[0], 1, "the key id leads");
    assert!(
        !sealed.windows(16).any(|w| w == b"access-token-123"),
        "no plaintext inside"
    );
    assert_eq!(
        ring.open(&sealed, &aad).unwrap().expose_secret(),
        b"access-token-123"
    );
    // A fresh nonce each time.
    assert_ne!(ring.seal(b"same", &aad), ring.seal(b"same", &aad));
}

#[test]
fn a_value_moved_to_another_row_or_tenant_does_not_open() {
    let (ring, _) = ring(1, &[]);
    let (tenant, connection) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = ring.seal(b"secret", &Aad::connection(tenant, connection));
    for other in [
        Aad::connection(tenant, Uuid::new_v4()),
        Aad::connection(Uuid::new_v4(), connection),
        Aad::oauth_flow(tenant, connection),
    ] {
        assert_eq!(ring.open(&sealed, &other).unwrap_err(), VaultError::Forged);
    }
}

#[test]
fn tampered_truncated_and_foreign_values_are_refused() {
    let (ring, _) = ring(1, &[]);
    let aad = Aad::provider_app(Uuid::new_v4());
    let sealed = ring.seal(b"client-secret", &aad);
    for i in 1..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            ring.open(&bad, &aad).unwrap_err(),
            VaultError::Forged,
            "byte {i}"
        );
    }
    assert_eq!(
        ring.open(&sealed[..20], &aad).unwrap_err(),
        VaultError::Truncated
    );
    let mut other_key = sealed.clone();
    other_key[0] = 9;
    assert_eq!(
        ring.open(&other_key, &aad).unwrap_err(),
        VaultError::UnknownKey(9)
    );
    let (stranger, _) = self::ring(1, &[]);
    assert_eq!(
        stranger.open(&sealed, &aad).unwrap_err(),
        VaultError::Forged,
        "same id, other key"
    );
}

#[test]
fn rotation_reseals_old_values_under_the_new_key() {
    let old_key = generate_key(1);
    let old_ring = Keyring::new(&old_key, &[]).unwrap();
    let aad = Aad::connection(Uuid::new_v4(), Uuid::new_v4());
    let sealed = old_ring.seal(b"refresh-token", &aad);

    let new_ring = Keyring::new(&generate_key(2), &[old_key]).unwrap();
    assert_eq!(
        new_ring.open(&sealed, &aad).unwrap().expose_secret(),
        b"refresh-token"
    );
    let resealed = new_ring
        .reseal(&sealed, &aad)
        .unwrap()
        .expect("moved to key 2");
    assert_eq!(resealed[0], 2);
    assert_eq!(
        new_ring.open(&resealed, &aad).unwrap().expose_secret(),
        b"refresh-token"
    );
    assert_eq!(
        new_ring.reseal(&resealed, &aad).unwrap(),
        None,
        "already current"
    );
    // Once the old key is dropped, only resealed values open.
    let newest = Keyring::new(&generate_key(2), &[]).unwrap();
    assert_eq!(
        newest.open(&sealed, &aad).unwrap_err(),
        VaultError::UnknownKey(1)
    );
}

#[test]
fn malformed_and_duplicate_keys_are_refused_without_echoing_them() {
    for bad in ["", "1", "x:AAAA", "1:not base64!", "1:AAAA", "300:AAAA"] {
        let err = Keyring::new(&SecretString::from(bad.to_owned()), &[]).unwrap_err();
        assert!(matches!(err, VaultError::BadKey(_)), "{bad:?}: {err}");
    }
    let key = generate_key(3);
    let err = Keyring::new(&key, &[generate_key(3)]).unwrap_err();
    assert!(err.to_string().contains("used twice"));
    assert!(!err.to_string().contains(&key.expose_secret()[2..]));
    let (ring, keys) = ring(4, &[5]);
    let shown = format!("{ring:?}");
    assert!(
        !keys.iter().any(|k| shown.contains(&k.expose_secret()[2..])),
        "{shown}"
    );
}

#[test]
fn texts_round_trip_and_never_print() {
    let (ring, _) = ring(1, &[]);
    let aad = Aad::connection(Uuid::new_v4(), Uuid::new_v4());
    let sealed = ring.seal_str(&SecretString::from("sk_live_abc".to_owned()), &aad);
    let opened = ring.open_str(&sealed, &aad).unwrap();
    assert_eq!(opened.expose_secret(), "sk_live_abc");
    assert!(!format!("{opened:?}").contains("sk_live_abc"));
}

#[test]
fn a_dev_key_is_created_once_and_private() {
    let dir = std::env::temp_dir().join(format!("patchbay-vault-{}", Uuid::new_v4()));
    let (first, created) = Keyring::load_or_create_dev(&dir).unwrap();
    assert!(created);
    let aad = Aad::provider_app(Uuid::nil());
    let sealed = first.seal(b"x", &aad);
    let (second, created) = Keyring::load_or_create_dev(&dir).unwrap();
    assert!(!created, "the same key the next time");
    assert_eq!(second.open(&sealed, &aad).unwrap().expose_secret(), b"x");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).ok();
}

proptest! {
    /// Whatever bytes arrive from the database, opening them fails cleanly or opens; it never
    /// panics.
    #[test]
    fn opening_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (ring, _) = ring(1, &[]);
        let _ = ring.open(&bytes, &Aad::provider_app(Uuid::nil()));
    }
}
