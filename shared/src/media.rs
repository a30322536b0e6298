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
    /// Reference-counted: the S3 copy and the signature share it, no copy of the file.
    pub bytes: bytes::Bytes,
    pub mime_type: String,
}

/// How long a presigned download link works.
pub const LINK_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The S3 bucket large files are copied to (`MEDIA_BUCKET`): a signed PUT and a presigned
/// GET are all it needs.
#[derive(Clone)]
pub struct MediaBucket {
    aws: crate::aws::Aws,
    /// `https://<bucket>.s3.<region>.amazonaws.com`, or `<endpoint>/<bucket>` against a
    /// local stack (`AWS_ENDPOINT_URL`).
    base: String,
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable("s3", e)
}

impl MediaBucket {
    pub fn new(aws: &crate::aws::Aws, bucket: &str) -> Self {
        let base = match aws.endpoint_url() {
            Some(endpoint) => format!("{endpoint}/{bucket}"),
            None => format!("https://{bucket}.s3.{}.amazonaws.com", aws.region()),
        };
        Self {
            aws: aws.clone(),
            base,
        }
    }

    fn object_url(&self, key: &str) -> Result<reqwest::Url, ApiError> {
        reqwest::Url::parse(&format!("{}/{key}", self.base)).map_err(unavailable)
    }

    /// Stores `file` under `key` and returns a link that downloads it for [`LINK_TTL`].
    pub async fn put_and_link(&self, key: &str, file: &File) -> Result<String, ApiError> {
        use crate::aws::sigv4;
        let signer = sigv4::Signer {
            credentials: self.aws.credentials().map_err(unavailable)?,
            scope: sigv4::Scope {
                region: self.aws.region(),
                service: "s3",
            },
            time: std::time::SystemTime::now(),
        };
        let url = self.object_url(key)?;
        let signed = sigv4::sign_headers(
            &signer,
            "PUT",
            &url,
            &[("content-type", &file.mime_type)],
            &sigv4::sha256_hex(&file.bytes),
        );
        let mut put = self
            .aws
            .http()
            .put(url.clone())
            .timeout(std::time::Duration::from_secs(20))
            .header("content-type", &file.mime_type)
            .body(file.bytes.clone());
        for (name, value) in signed {
            put = put.header(name, value);
        }
        let response = put.send().await.map_err(|e| unavailable(e.without_url()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "PUT answered HTTP {}",
                response.status()
            )));
        }
        let link = sigv4::presign(
            &sigv4::Signer {
                time: std::time::SystemTime::now(),
                ..signer
            },
            "GET",
            &url,
            LINK_TTL,
        );
        Ok(link.to_string())
    }
}

/// A file to answer: its bytes, or a link to it in the media bucket.
pub enum Download {
    Inline(File),
    Link(String),
}

/// Downloads the media; one too large for a response is copied to the bucket (under the
/// tenant's prefix) and answered with a presigned link. Without a bucket that is a 413.
pub async fn download(
    graph: &GraphClient,
    bucket: Option<&MediaBucket>,
    token: &Secret,
    tenant: &crate::ids::TenantId,
    id: &str,
) -> Result<Download, ApiError> {
    let (bytes, mime_type) = graph
        .media(id, token)
        .await
        .map_err(|e| e.into_api(&format!("media {id}")))?;
    let file = File { bytes, mime_type };
    if file.bytes.len() <= INLINE_MAX {
        return Ok(Download::Inline(file));
    }
    let Some(bucket) = bucket else {
        return Err(ApiError::PayloadTooLarge { limit: INLINE_MAX });
    };
    let link = bucket
        .put_and_link(&format!("media/{tenant}/{id}"), &file)
        .await?;
    tracing::info!(tenantId = %tenant, mediaId = id, bytes = file.bytes.len(), "large media copied to the media bucket");
    Ok(Download::Link(link))
}
