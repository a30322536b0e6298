//! Our SigV4 signer (shared/src/aws/sigv4.rs) against the AWS SDK's own: the same request
//! at the same time must carry the same signature — the JSON APIs' POSTs, S3's PUT and the
//! presigned GET, with and without a session token. (The local stack does not check
//! signatures, so this is where a wrong one would show before AWS refused it.)

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use shared::{
    aws::{Credentials, sigv4},
    secret::Secret,
};

fn credentials(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "test-access-key".into(),
        secret_access_key: Secret::new("test/secret+key/for-signing"),
        session_token: token.map(Secret::new),
    }
}

/// The SDK's signature of the request (header or query), applied to an `http` request.
fn theirs(
    signer: &sigv4::Signer<'_>,
    request: &mut http::Request<()>,
    body: SignableBody<'_>,
    settings: SigningSettings,
) {
    let sigv4::Signer {
        credentials: c,
        scope,
        time,
    } = *signer;
    let identity = aws_credential_types::Credentials::new(
        &c.access_key_id,
        c.secret_access_key.expose(),
        c.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().expect("ascii").to_owned()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions.apply_to_request_http1x(request);
}

fn signer<'a>(c: &'a Credentials, scope: sigv4::Scope<'a>) -> sigv4::Signer<'a> {
    sigv4::Signer {
        credentials: c,
        scope,
        time: at(),
    }
}

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_700_000)
}

#[test]
fn json_api_posts_sign_as_the_sdk_does() {
    for token in [None, Some("session/token+value==")] {
        let c = credentials(token);
        for (service, region, url) in [
            ("sqs", "eu-west-1", "https://sqs.eu-west-1.amazonaws.com/"),
            ("kms", "us-east-1", "http://127.0.0.1:5000/"),
        ] {
            let scope = sigv4::Scope { region, service };
            let body = br#"{"QueueUrl":"https://q/1","MessageBody":"hi"}"#;
            let target = "AmazonSQS.SendMessage";
            let parsed = reqwest::Url::parse(url).expect("url");
            let ours = sigv4::sign_headers(
                &signer(&c, scope),
                "POST",
                &parsed,
                &[
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-target", target),
                ],
                &sigv4::sha256_hex(body),
            );
            let mut request = http::Request::builder()
                .method("POST")
                .uri(url)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", target)
                .header("host", sigv4_host(&parsed))
                .body(())
                .expect("request");
            theirs(
                &signer(&c, scope),
                &mut request,
                SignableBody::Bytes(body),
                SigningSettings::default(),
            );
            let get = |name: &str| {
                ours.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(
                get("authorization").as_deref(),
                request.headers()["authorization"].to_str().ok(),
                "{service} token={token:?}"
            );
            assert_eq!(
                get("x-amz-date").as_deref(),
                request.headers()["x-amz-date"].to_str().ok()
            );
            assert_eq!(
                get("x-amz-security-token").as_deref(),
                request
                    .headers()
                    .get("x-amz-security-token")
                    .and_then(|v| v.to_str().ok())
            );
        }
    }
}

fn sigv4_host(url: &reqwest::Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().expect("host")),
        None => url.host_str().expect("host").to_owned(),
    }
}

#[test]
fn s3_put_and_presigned_get_sign_as_the_sdk_does() {
    for token in [None, Some("session/token+value==")] {
        let c = credentials(token);
        let scope = sigv4::Scope {
            region: "eu-west-1",
            service: "s3",
        };
        let url = "https://media.s3.eu-west-1.amazonaws.com/media/abc/123";
        let parsed = reqwest::Url::parse(url).expect("url");
        let body = b"file bytes";
        let ours = sigv4::sign_headers(
            &signer(&c, scope),
            "PUT",
            &parsed,
            &[("content-type", "image/png")],
            &sigv4::sha256_hex(body),
        );
        let mut request = http::Request::builder()
            .method("PUT")
            .uri(url)
            .header("content-type", "image/png")
            .header("host", sigv4_host(&parsed))
            .body(())
            .expect("request");
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        theirs(
            &signer(&c, scope),
            &mut request,
            SignableBody::Bytes(body),
            settings,
        );
        let authorization = ours
            .iter()
            .find(|(k, _)| *k == "authorization")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            authorization,
            request.headers()["authorization"].to_str().ok()
        );

        let link = sigv4::presign(&signer(&c, scope), "GET", &parsed, Duration::from_secs(300));
        let mut request = http::Request::builder()
            .method("GET")
            .uri(url)
            .body(())
            .expect("request");
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
        theirs(
            &signer(&c, scope),
            &mut request,
            SignableBody::UnsignedPayload,
            settings,
        );
        let their_link = reqwest::Url::parse(&request.uri().to_string()).expect("link");
        let param = |u: &reqwest::Url, name: &str| {
            u.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        for name in [
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-Security-Token",
        ] {
            assert_eq!(param(&link, name), param(&their_link, name), "{name}");
        }
        assert!(param(&link, "X-Amz-Signature").is_some());
    }
}
