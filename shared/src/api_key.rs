//! Tenant API keys: random, prefixed, shown once, stored only as their SHA-256.

use sha2::{Digest, Sha256};

use crate::{ids::TenantId, secret::Secret};

/// Prefix of tenant API keys, so a key is recognisable in a secret scanner.
pub const API_KEY_PREFIX: &str = "wak_";

/// A tenant API key: shown once at registration, stored only as its SHA-256.
#[derive(Debug, Clone)]
pub struct ApiKey(Secret);

impl ApiKey {
    pub fn generate(_tenant: &TenantId) -> Self {
        Self(Secret::new(format!(
            "{API_KEY_PREFIX}{}",
            crate::ids::random_hex(32)
        )))
    }

    pub fn hash(&self) -> String {
        hash_key(self.0.expose())
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hash_stably() {
        let t = TenantId::generate();
        let (a, b) = (ApiKey::generate(&t), ApiKey::generate(&t));
        assert!(a.expose().starts_with(API_KEY_PREFIX));
        assert_eq!(a.expose().len(), API_KEY_PREFIX.len() + 64);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.hash(), hash_key(a.expose()));
        assert!(!a.hash().contains(a.expose()));
    }
}
