//! Tenant access tokens at rest: KMS ciphertext bound to the tenant by the encryption
//! context `{"tenantId": <id>}`, so a ciphertext copied onto another tenant will not decrypt.

use aws_sdk_kms::{Client, primitives::Blob};

use crate::{error::ApiError, ids::TenantId, secret::Secret};

pub const CONTEXT_KEY: &str = "tenantId";

#[derive(Clone)]
pub struct TokenCipher {
    aws: aws_config::SdkConfig,
    /// Built on first use (see `kms`).
    kms: std::sync::OnceLock<Client>,
    key_id: String,
}

impl TokenCipher {
    pub fn new(aws: &aws_config::SdkConfig, key_id: impl Into<String>) -> Self {
        Self {
            aws: aws.clone(),
            kms: std::sync::OnceLock::new(),
            key_id: key_id.into(),
        }
    }

    /// The KMS client, built on first use: its TLS setup loads the system's root
    /// certificates, which a cold start that decrypts nothing (the webhook) should not pay.
    fn kms(&self) -> &Client {
        self.kms.get_or_init(|| Client::new(&self.aws))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub async fn encrypt(
        &self,
        tenant: &TenantId,
        plaintext: &Secret,
    ) -> Result<Vec<u8>, ApiError> {
        let out = self
            .kms()
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext.expose().as_bytes()))
            .encryption_context(CONTEXT_KEY, tenant.to_string())
            .send()
            .await
            .map_err(|e| {
                ApiError::unavailable("kms", aws_sdk_kms::error::DisplayErrorContext(e))
            })?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| ApiError::unavailable("kms", "Encrypt returned no ciphertext"))
    }

    pub async fn decrypt(&self, tenant: &TenantId, ciphertext: &[u8]) -> Result<Secret, ApiError> {
        let out = self
            .kms()
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .encryption_context(CONTEXT_KEY, tenant.to_string())
            .send()
            .await
            .map_err(|e| {
                ApiError::unavailable("kms", aws_sdk_kms::error::DisplayErrorContext(e))
            })?;
        let bytes = out
            .plaintext
            .map(Blob::into_inner)
            .ok_or_else(|| ApiError::unavailable("kms", "Decrypt returned no plaintext"))?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| ApiError::unavailable("kms", "Decrypt returned a non-UTF-8 token"))
    }
}
