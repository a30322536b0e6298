//! Media a customer sent: fetched from Graph with the tenant's token when asked for (Meta's
//! download URL expires within minutes, so it is never stored or handed out).

use crate::{error::ApiError, secret::Secret, whatsapp::GraphClient};

/// The largest file answered in the response itself: a Lambda response carries at most 6 MB,
/// and API Gateway base64-encodes binary bodies (4/3 larger).
pub const INLINE_MAX: usize = 4 * 1024 * 1024;

/// Meta's media ids are digits; anything else cannot exist (and never reaches a Graph URL).
pub fn parse_id(s: &str) -> Result<&str, ApiError> {
    if (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s)
    } else {
        Err(ApiError::not_found(format!("media {s:?} not found")))
    }
}

/// A downloaded file.
pub struct File {
    pub bytes: Vec<u8>,
    pub mime_type: String,
}

/// Graph's two steps (the media's URL, then the download), with the tenant's token.
pub async fn fetch(graph: &GraphClient, token: &Secret, id: &str) -> Result<File, ApiError> {
    let (bytes, mime_type) = graph
        .media(id, token)
        .await
        .map_err(|e| e.into_api(&format!("media {id}")))?;
    if bytes.len() > INLINE_MAX {
        return Err(ApiError::PayloadTooLarge { limit: INLINE_MAX });
    }
    Ok(File { bytes, mime_type })
}
