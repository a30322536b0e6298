//! Tenant access tokens at rest: KMS ciphertext bound to the tenant by the encryption
//! context `{"tenantId": <id>}`, so a ciphertext copied onto another tenant will not decrypt.

use crate::{aws::Kms, error::ApiError, ids::TenantId, secret::Secret};

pub const CONTEXT_KEY: &str = "tenantId";

#[derive(Clone)]
pub struct TokenCipher {
    kms: Kms,
    key_id: String,
}

fn unavailable(e: crate::aws::AwsError) -> ApiError {
    ApiError::unavailable("kms", e)
}

impl TokenCipher {
    pub fn new(aws: &crate::aws::Aws, key_id: impl Into<String>) -> Self {
        Self {
            kms: Kms::new(aws.clone()),
            key_id: key_id.into(),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub async fn encrypt(
        &self,
        tenant: &TenantId,
        plaintext: &Secret,
    ) -> Result<Vec<u8>, ApiError> {
        let tenant = tenant.to_string();
        self.kms
            .encrypt(
                &self.key_id,
                plaintext.expose().as_bytes(),
                (CONTEXT_KEY, &tenant),
            )
            .await
            .map_err(unavailable)
    }

    pub async fn decrypt(&self, tenant: &TenantId, ciphertext: &[u8]) -> Result<Secret, ApiError> {
        let tenant = tenant.to_string();
        let bytes = self
            .kms
            .decrypt(&self.key_id, ciphertext, (CONTEXT_KEY, &tenant))
            .await
            .map_err(unavailable)?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| ApiError::unavailable("kms", "Decrypt returned a non-UTF-8 token"))
    }
}
