//! Tenant registration against the real local stack (SecantusDB, moto KMS).

use aws_sdk_kms::primitives::Blob;
use e2e::{ADMIN_TOKEN, logs, phone_number_id, spawn_app};
use mongodb::bson::{Document, doc, oid::ObjectId};
use serde_json::json;
use sha2::Digest;

#[tokio::test]
async fn registration_stores_only_a_kms_ciphertext_bound_to_the_tenant() {
    let app = spawn_app().await;
    let token = "EAAGm0PX4ZCpsBAsecret-token-value";
    let pnid = phone_number_id();
    let body =
        json!({"name": "Acme", "phoneNumberId": pnid, "accessToken": token, "wabaId": "1029"});
    let r = app
        .call(
            "POST",
            "/tenants/register",
            Some(ADMIN_TOKEN),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["ok"], true);
    let tenant = &r.body["tenant"];
    assert_eq!(tenant["name"], "Acme");
    assert_eq!(tenant["phoneNumberId"], pnid.as_str());
    assert_eq!(tenant["wabaId"], "1029");
    assert_eq!(tenant["status"], "active");
    assert!(
        tenant["createdAt"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    let api_key = r.body["apiKey"].as_str().expect("apiKey");
    assert!(!r.text.contains(token), "the token must never be echoed");

    let id = ObjectId::parse_str(tenant["id"].as_str().expect("id")).expect("object id");
    let stored = app
        .db
        .collection::<Document>("tenants")
        .find_one(doc! {"_id": id})
        .await
        .expect("query")
        .expect("stored");
    let ciphertext = stored
        .get_binary_generic("accessTokenCiphertext")
        .expect("ciphertext")
        .clone();
    assert_ne!(ciphertext, token.as_bytes());
    assert!(!String::from_utf8_lossy(&ciphertext).contains(token));
    let as_text = format!("{stored:?}");
    assert!(!as_text.contains(token), "plaintext token stored");
    assert!(!as_text.contains(api_key), "plaintext API key stored");
    let keys = stored.get_array("apiKeys").expect("apiKeys");
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_document().expect("key");
    assert_eq!(
        key.get_str("hash").expect("hash"),
        hex::encode(sha2::Sha256::digest(api_key.as_bytes()))
    );
    assert_eq!(key.get_str("label").expect("label"), "Registration key");

    let kms = aws_sdk_kms::Client::new(&app.aws);
    let plain = kms
        .decrypt()
        .ciphertext_blob(Blob::new(ciphertext.clone()))
        .encryption_context("tenantId", id.to_hex())
        .send()
        .await
        .expect("decrypts with its own tenant context");
    assert_eq!(
        plain.plaintext.expect("plaintext").into_inner(),
        token.as_bytes()
    );

    let other = kms
        .decrypt()
        .ciphertext_blob(Blob::new(ciphertext))
        .encryption_context("tenantId", ObjectId::new().to_hex())
        .send()
        .await;
    assert!(other.is_err(), "another tenant's context must not decrypt");
}

#[tokio::test]
async fn admin_routes_need_the_admin_bearer() {
    let app = spawn_app().await;
    let body =
        json!({"name": "A", "phoneNumberId": phone_number_id(), "accessToken": "t"}).to_string();
    for bearer in [None, Some("wrong"), Some(""), Some("wak_0000")] {
        let r = app
            .call("POST", "/tenants/register", bearer, Some(&body))
            .await;
        assert_eq!(r.status, 401, "{bearer:?}: {}", r.text);
        assert_eq!(r.body["error"], "Unauthorized");
        let r = app.call("GET", "/tenants", bearer, None).await;
        assert_eq!(r.status, 401);
    }
    // A valid tenant key is authenticated but not an admin.
    let e2e::TestTenant { key, .. } = app.register_tenant("T").await;
    let r = app
        .call("POST", "/tenants/register", Some(&key), Some(&body))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app.call("GET", "/tenants", Some(&key), None).await;
    assert_eq!(r.status, 403);
    // Nothing was registered by the refused calls.
    let n = app
        .db
        .collection::<Document>("tenants")
        .count_documents(doc! {})
        .await
        .expect("count");
    assert_eq!(n, 1);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for body in ["{\"name\": ", "not json", "[1,2]", "", "null"] {
        let r = app
            .call("POST", "/tenants/register", Some(ADMIN_TOKEN), Some(body))
            .await;
        assert_eq!(r.status, 400, "{body:?}: {}", r.text);
        assert_eq!(r.body["error"], "Bad Request");
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn each_invalid_field_is_422_naming_it() {
    let app = spawn_app().await;
    let ok = || json!({"name": "Acme", "phoneNumberId": phone_number_id(), "accessToken": "EAAx"});
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("name", json!("")),
        ("name", json!("   ")),
        ("name", json!("x".repeat(101))),
        ("name", json!(42)),
        ("phoneNumberId", json!("1234")),
        ("phoneNumberId", json!("123456789012345678901")),
        ("phoneNumberId", json!("12345abc")),
        ("phoneNumberId", json!(1234567)),
        ("accessToken", json!("")),
        ("accessToken", json!("t".repeat(4097))),
        ("accessToken", json!("two words")),
        ("wabaId", json!("w".repeat(65))),
    ];
    for (field, value) in cases {
        let mut body = ok();
        body[field] = value.clone();
        let r = app
            .call(
                "POST",
                "/tenants/register",
                Some(ADMIN_TOKEN),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(r.status, 422, "{field}={value}: {}", r.text);
        assert_eq!(r.body["error"], "Unprocessable Entity");
        assert_eq!(r.body["field"], field, "{}", r.text);
        assert!(
            r.body["message"]
                .as_str()
                .is_some_and(|m| m.contains(field))
        );
    }
    for field in ["name", "phoneNumberId", "accessToken"] {
        let mut body = ok();
        body.as_object_mut().expect("object").remove(field);
        let r = app
            .call(
                "POST",
                "/tenants/register",
                Some(ADMIN_TOKEN),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(r.status, 422, "missing {field}: {}", r.text);
        assert_eq!(r.body["field"], field);
    }
    // Limits are inclusive.
    let mut body = ok();
    body["name"] = json!("é".repeat(100));
    body["accessToken"] = json!("t".repeat(4096));
    let r = app
        .call(
            "POST",
            "/tenants/register",
            Some(ADMIN_TOKEN),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn a_phone_number_id_registers_once_even_under_concurrency() {
    let app = spawn_app().await;
    let pnid = phone_number_id();
    let body = json!({"name": "A", "phoneNumberId": pnid, "accessToken": "EAAx"}).to_string();
    let first = app
        .call("POST", "/tenants/register", Some(ADMIN_TOKEN), Some(&body))
        .await;
    assert_eq!(first.status, 201);
    let again = app
        .call("POST", "/tenants/register", Some(ADMIN_TOKEN), Some(&body))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.body["error"], "Conflict");
    assert!(
        again.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("phoneNumberId"))
    );

    let racing = phone_number_id();
    let body = json!({"name": "B", "phoneNumberId": racing, "accessToken": "EAAy"}).to_string();
    let calls =
        (0..8).map(|_| app.call("POST", "/tenants/register", Some(ADMIN_TOKEN), Some(&body)));
    let statuses: Vec<u16> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    let n = app
        .db
        .collection::<Document>("tenants")
        .count_documents(doc! {"phoneNumberId": &racing})
        .await
        .expect("count");
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_tenant_key_reads_its_own_tenant_only_and_no_secret_leaks() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: a,
        key: key_a,
        token: token_a,
        ..
    } = app.register_tenant("Tenant A").await;
    let e2e::TestTenant {
        id: b,
        key: key_b,
        token: token_b,
        ..
    } = app.register_tenant("Tenant B").await;

    let r = app
        .call("GET", &format!("/tenants/{a}"), Some(&key_a), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tenant"]["id"], a.as_str());
    assert_eq!(r.body["tenant"]["name"], "Tenant A");

    let r = app
        .call("GET", &format!("/tenants/{b}"), Some(&key_a), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"], "Forbidden");
    let r = app
        .call("GET", &format!("/tenants/{a}"), Some(&key_b), None)
        .await;
    assert_eq!(r.status, 403);

    let r = app
        .call("GET", &format!("/tenants/{b}"), Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .call("GET", "/tenants/not-an-id", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("tenantId"))
    );
    let unknown = ObjectId::new().to_hex();
    let r = app
        .call(
            "GET",
            &format!("/tenants/{unknown}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app.call("GET", &format!("/tenants/{a}"), None, None).await;
    assert_eq!(r.status, 401);

    let list = app.call("GET", "/tenants", Some(ADMIN_TOKEN), None).await;
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list.body["tenants"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()]);

    for text in [&list.text, &r.text] {
        for secret in [&token_a, &token_b, &key_a, &key_b] {
            assert!(!text.contains(secret.as_str()));
        }
        assert!(!text.contains("accessTokenCiphertext") && !text.contains("apiKeyHash"));
    }
    let logged = logs();
    assert!(logged.contains("tenant registered"), "logs were captured");
    for secret in [&token_a, &token_b, &key_a, &key_b, &ADMIN_TOKEN.to_owned()] {
        assert!(
            !logged.contains(secret.as_str()),
            "a secret reached the logs"
        );
    }
}

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let r = app.call("GET", "/health", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"ok": true}));
}
