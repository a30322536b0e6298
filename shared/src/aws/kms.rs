//! KMS Encrypt and Decrypt with an encryption context.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};

use super::{Aws, AwsError};

#[derive(Clone)]
pub struct Kms(Aws);

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Input<'a> {
    key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ciphertext_blob: Option<String>,
    encryption_context: std::collections::BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Output {
    #[serde(default)]
    ciphertext_blob: Option<String>,
    #[serde(default)]
    plaintext: Option<String>,
}

fn unreadable(detail: impl ToString) -> AwsError {
    AwsError::Unreadable {
        service: "kms",
        detail: detail.to_string(),
    }
}

impl Kms {
    pub fn new(aws: Aws) -> Self {
        Self(aws)
    }

    async fn call(&self, action: &str, input: Input<'_>) -> Result<Output, AwsError> {
        let body = serde_json::to_vec(&input).map_err(unreadable)?;
        let out = self
            .0
            .json_call(
                "kms",
                super::JSON_1_1,
                &format!("TrentService.{action}"),
                body,
                Duration::ZERO,
            )
            .await?;
        serde_json::from_slice(&out).map_err(unreadable)
    }

    /// The ciphertext of `plaintext` under `key_id`, bound to `context`.
    pub async fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: (&str, &str),
    ) -> Result<Vec<u8>, AwsError> {
        let out = self
            .call(
                "Encrypt",
                Input {
                    key_id,
                    plaintext: Some(STANDARD.encode(plaintext)),
                    ciphertext_blob: None,
                    encryption_context: [context].into(),
                },
            )
            .await?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| unreadable("Encrypt returned no ciphertext"))?;
        STANDARD.decode(blob).map_err(unreadable)
    }

    /// The plaintext of a ciphertext made with the same key and context.
    pub async fn decrypt(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        context: (&str, &str),
    ) -> Result<Vec<u8>, AwsError> {
        let out = self
            .call(
                "Decrypt",
                Input {
                    key_id,
                    plaintext: None,
                    ciphertext_blob: Some(STANDARD.encode(ciphertext)),
                    encryption_context: [context].into(),
                },
            )
            .await?;
        let plain = out
            .plaintext
            .ok_or_else(|| unreadable("Decrypt returned no plaintext"))?;
        STANDARD.decode(plain).map_err(unreadable)
    }
}
