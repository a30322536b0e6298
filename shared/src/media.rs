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

/// The S3 bucket large files are copied to (`MEDIA_BUCKET`). Two signed requests are all it
/// needs (a PUT, a presigned GET), made with the AWS SDK's own SigV4 signer.
#[derive(Clone)]
pub struct MediaBucket {
    http: reqwest::Client,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    region: String,
    /// `https://<bucket>.s3.<region>.amazonaws.com`, or `<endpoint>/<bucket>` against a
    /// local stack (`AWS_ENDPOINT_URL`).
    base: String,
}

impl MediaBucket {
    pub fn new(aws: &aws_config::SdkConfig, bucket: &str) -> Self {
        let region = aws
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
        let base = match aws.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        crate::tls::install();
        Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .unwrap_or_default(),
            credentials: aws.credentials_provider(),
            region,
            base,
        }
    }

    async fn identity(&self) -> Result<aws_credential_types::Credentials, ApiError> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("s3", "no AWS credentials"))?;
        provider
            .provide_credentials()
            .await
            .map_err(|e| ApiError::unavailable("s3", e))
    }

    fn sign<B>(
        &self,
        request: &mut http::Request<B>,
        body: aws_sigv4::http_request::SignableBody<'_>,
        credentials: aws_credential_types::Credentials,
        presign: bool,
    ) -> Result<(), ApiError> {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, SignableRequest, SignatureLocation, SigningSettings, sign,
        };
        let mut settings = SigningSettings::default();
        if presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(LINK_TTL);
        } else {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| ApiError::unavailable("s3", e))?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .map_err(|e| ApiError::unavailable("s3", e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ApiError::unavailable("s3", e))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    fn object_url(&self, key: &str) -> String {
        format!("{}/{key}", self.base)
    }

    /// Stores `file` under `key` and returns a link that downloads it for [`LINK_TTL`].
    pub async fn put_and_link(&self, key: &str, file: &File) -> Result<String, ApiError> {
        let credentials = self.identity().await?;
        let mut put = http::Request::builder()
            .method("PUT")
            .uri(self.object_url(key))
            .header("content-type", &file.mime_type)
            .body(file.bytes.clone())
            .map_err(|e| ApiError::unavailable("s3", e))?;
        self.sign(
            &mut put,
            aws_sigv4::http_request::SignableBody::Bytes(&file.bytes),
            credentials.clone(),
            false,
        )?;
        let put = reqwest::Request::try_from(put).map_err(|e| ApiError::unavailable("s3", e))?;
        let response = self
            .http
            .execute(put)
            .await
            .map_err(|e| ApiError::unavailable("s3", e.without_url()))?;
        if !response.status().is_success() {
            return Err(ApiError::unavailable(
                "s3",
                format!("PUT answered HTTP {}", response.status()),
            ));
        }
        let mut get = http::Request::builder()
            .method("GET")
            .uri(self.object_url(key))
            .body(())
            .map_err(|e| ApiError::unavailable("s3", e))?;
        self.sign(
            &mut get,
            aws_sigv4::http_request::SignableBody::UnsignedPayload,
            credentials,
            true,
        )?;
        Ok(get.uri().to_string())
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
