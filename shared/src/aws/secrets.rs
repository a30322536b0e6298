//! Secrets Manager's GetSecretValue.

use std::time::Duration;

use super::{Aws, AwsError};
use crate::secret::Secret;

/// The string value of the secret `id` (an ARN or a name).
pub async fn get(aws: &Aws, id: &str) -> Result<Secret, AwsError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        #[serde(default)]
        secret_string: Option<String>,
    }
    let body = serde_json::to_vec(&serde_json::json!({ "SecretId": id })).map_err(|e| {
        AwsError::Unreadable {
            service: "secretsmanager",
            detail: e.to_string(),
        }
    })?;
    let out = aws
        .json_call(
            "secretsmanager",
            super::JSON_1_1,
            "secretsmanager.GetSecretValue",
            body,
            Duration::ZERO,
        )
        .await?;
    let out: Output = serde_json::from_slice(&out).map_err(|e| AwsError::Unreadable {
        service: "secretsmanager",
        detail: e.to_string(),
    })?;
    out.secret_string
        .map(Secret::new)
        .ok_or_else(|| AwsError::Unreadable {
            service: "secretsmanager",
            detail: "the secret has no string value".into(),
        })
}
