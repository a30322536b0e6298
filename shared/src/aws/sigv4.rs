//! AWS Signature Version 4: an `Authorization` header (or, for a link, query parameters)
//! proving the request was made with the credentials. Pure functions of the request and
//! the time, checked against the AWS SDK's own signer in tests/tests/e2e/sigv4.rs.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Credentials;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of a presigned link: the body is not known when it is signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Where a signature is valid: one service in one region.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// Who signs, for what, when.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub credentials: &'a Credentials,
    pub scope: Scope<'a>,
    pub time: SystemTime,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn amz_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RFC 3986 encoding of everything but the unreserved characters, as SigV4 requires.
fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn canonical_query(url: &reqwest::Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let (mut key, mut value) = (String::new(), String::new());
            encode(&k, &mut key);
            encode(&v, &mut value);
            (key, value)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `host[:port]`, as the HTTP client sends it.
fn host(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// `{key id}/{day}/{region}/{service}/aws4_request`.
fn credential(credentials: &Credentials, scope: &Scope<'_>, date: &str) -> String {
    format!(
        "{}/{}/{}/{}/aws4_request",
        credentials.access_key_id,
        &date[..8],
        scope.region,
        scope.service
    )
}

/// The signature of the canonical request built from these parts; `headers` are the signed
/// ones, lowercase names, `host` included.
fn signature(
    secret: &str,
    scope: &Scope<'_>,
    date: &str,
    method: &str,
    url: &reqwest::Url,
    headers: &mut [(String, String)],
    payload_hash: &str,
) -> (String, String) {
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let path = match url.path() {
        "" => "/",
        p => p,
    };
    let canonical_request = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        canonical_query(url)
    );
    let day = &date[..8];
    let credential_scope = format!("{day}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{credential_scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let key = [scope.region, scope.service, "aws4_request"].iter().fold(
        hmac(format!("AWS4{secret}").as_bytes(), day.as_bytes()),
        |key, part| hmac(&key, part.as_bytes()),
    );
    (
        hex::encode(hmac(&key, string_to_sign.as_bytes())),
        signed_headers,
    )
}

/// The headers that sign a request: `x-amz-date`, `x-amz-security-token` (temporary
/// credentials), `x-amz-content-sha256` (S3 wants it) and `authorization`. `headers` are
/// the request's other headers to sign (lowercase names); `host` is added from the URL.
pub fn sign_headers(
    signer: &Signer<'_>,
    method: &str,
    url: &reqwest::Url,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> Vec<(&'static str, String)> {
    let Signer {
        credentials,
        scope,
        time,
    } = *signer;
    let date = amz_date(time);
    let mut out: Vec<(&'static str, String)> = vec![("x-amz-date", date.clone())];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token", token.expose().to_owned()));
    }
    if scope.service == "s3" {
        out.push(("x-amz-content-sha256", payload_hash.to_owned()));
    }
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .chain(out.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
        .chain([("host".to_owned(), host(url))])
        .collect();
    let (signature, signed_headers) = signature(
        credentials.secret_access_key.expose(),
        &scope,
        &date,
        method,
        url,
        &mut signed,
        payload_hash,
    );
    out.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}, SignedHeaders={signed_headers}, Signature={signature}",
            credential(credentials, &scope, &date)
        ),
    ));
    out
}

/// A link that performs `method` on `url` without credentials until `expires_in` has
/// passed (the signature travels in the query).
pub fn presign(
    signer: &Signer<'_>,
    method: &str,
    url: &reqwest::Url,
    expires_in: Duration,
) -> reqwest::Url {
    let Signer {
        credentials,
        scope,
        time,
    } = *signer;
    let date = amz_date(time);
    let mut link = url.clone();
    {
        let mut query = link.query_pairs_mut();
        query
            .append_pair("X-Amz-Algorithm", ALGORITHM)
            .append_pair("X-Amz-Credential", &credential(credentials, &scope, &date))
            .append_pair("X-Amz-Date", &date)
            .append_pair("X-Amz-Expires", &expires_in.as_secs().to_string())
            .append_pair("X-Amz-SignedHeaders", "host");
        if let Some(token) = &credentials.session_token {
            query.append_pair("X-Amz-Security-Token", token.expose());
        }
    }
    let mut headers = vec![("host".to_owned(), host(url))];
    let (signature, _) = signature(
        credentials.secret_access_key.expose(),
        &scope,
        &date,
        method,
        &link,
        &mut headers,
        UNSIGNED_PAYLOAD,
    );
    link.query_pairs_mut()
        .append_pair("X-Amz-Signature", &signature);
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_basic_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(amz_date(t), "20000229T000000Z");
        assert_eq!(amz_date(SystemTime::UNIX_EPOCH), "19700101T000000Z");
    }

    #[test]
    fn query_is_sorted_and_strictly_encoded() {
        let url = reqwest::Url::parse("https://h/?b=2&a=x y&a=1&c=%2F~").expect("url");
        assert_eq!(canonical_query(&url), "a=1&a=x%20y&b=2&c=%2F~");
    }
}
