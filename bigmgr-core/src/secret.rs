//! Secrets: join tokens, agent credentials, API tokens and the admin token are random 256-bit
//! values with a recognisable prefix; the store keeps only their SHA-256, compared in constant
//! time.

use crate::{Error, Result};
use sha2::{Digest, Sha256};

/// A new random secret: `prefix` then 64 hex digits (256 bits from the system's random source).
pub fn new_secret(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Invalid(format!("the system's random source failed: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// The hex SHA-256 of a secret, as the store keeps it: enough for 256-bit secrets, and cheap
/// enough to run on every request.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two hashes in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashes_compare() {
        let a = new_secret("bmj_").unwrap();
        let b = new_secret("bmj_").unwrap();
        assert!(a.starts_with("bmj_") && a.len() == 4 + 64);
        assert_ne!(a, b);
        assert!(same(&hash(&a), &hash(&a)));
        assert!(!same(&hash(&a), &hash(&b)));
        assert!(!same(&hash(&a), &hash(&a)[..10]));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
