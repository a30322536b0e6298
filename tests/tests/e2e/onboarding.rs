//! Embedded Signup against the Graph mock: exactly the documented calls (code exchange,
//! debug_token, the WABA's numbers, subscribed_apps, register for the number not yet on the
//! Cloud API), a Graph failure answered 502 naming the step and resumed by the retry
//! without a second exchange, the created tenant routing and sending on both numbers, and a
//! retried code answering the same tenant with a fresh key.

use e2e::{ADMIN_TOKEN, APP_SECRET, META_APP_ID};
use mongodb::bson::{doc, oid::ObjectId};
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param},
};

use crate::numbers::{answer_everything, hi};
use crate::sender::{Rig, ok_body, rig};

const WABA: &str = "3000000001";
const TOKEN: &str = "test-business-token-from-the-code";

#[tokio::test]
async fn embedded_signup_makes_the_documented_calls_and_the_tenant_uses_both_numbers() {
    let rig = rig(None).await;
    let (first, second) = (e2e::phone_number_id(), e2e::phone_number_id());
    let code = format!("AQ{}", e2e::random_hex(16));
    let v = "/v20.0";
    Mock::given(method("GET"))
        .and(path(format!("{v}/oauth/access_token")))
        .and(query_param("client_id", META_APP_ID))
        .and(query_param("client_secret", APP_SECRET))
        .and(query_param("code", code.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": TOKEN, "token_type": "bearer"})),
        )
        .expect(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{v}/debug_token")))
        .and(query_param("input_token", TOKEN))
        .and(header(
            "authorization",
            format!("Bearer {META_APP_ID}|{APP_SECRET}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
        "app_id": META_APP_ID, "is_valid": true,
        "granular_scopes": [
            {"scope": "business_management"},
            {"scope": "whatsapp_business_management", "target_ids": [WABA]},
            {"scope": "whatsapp_business_messaging", "target_ids": [WABA]},
        ]}})))
        .expect(2)
        .mount(&rig.graph)
        .await;
    let bearer = format!("Bearer {TOKEN}");
    Mock::given(method("GET"))
        .and(path(format!("{v}/{WABA}/phone_numbers")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": first, "display_phone_number": "+1 555-010-0001", "platform_type": "CLOUD_API", "status": "CONNECTED"},
            {"id": second, "display_phone_number": "+1 555-010-0002", "platform_type": "NOT_APPLICABLE", "status": "PENDING"},
        ]})))
        .expect(2)
        .mount(&rig.graph)
        .await;
    // The first subscription fails: 502 naming the step; the retry resumes.
    Mock::given(method("POST"))
        .and(path(format!("{v}/{WABA}/subscribed_apps")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Unsupported post request", "type": "GraphMethodException", "code": 100}})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{v}/{WABA}/subscribed_apps")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{v}/{second}/register")))
        .and(header("authorization", bearer.as_str()))
        .and(body_json(
            json!({"messaging_product": "whatsapp", "pin": "246810"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{v}/{first}/register")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(0)
        .mount(&rig.graph)
        .await;

    let body = json!({"name": "Signed Up Shop", "code": code, "pin": "246810"});
    let failed = rig.app.post("/tenants/onboard", ADMIN_TOKEN, &body).await;
    assert_eq!(failed.status, 502, "{}", failed.text);
    let message = failed.body["message"].as_str().expect("message");
    assert!(
        message.starts_with("subscribing the app to the account: Graph answered 400")
            && message.contains("Unsupported post request"),
        "{message}"
    );
    let made = rig.app.post("/tenants/onboard", ADMIN_TOKEN, &body).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let tenant = made.body["tenant"].clone();
    assert_eq!(tenant["wabaId"], WABA);
    assert_eq!(tenant["phoneNumberId"], first.as_str());
    assert_eq!(tenant["numbers"][1]["phoneNumberId"], second.as_str());
    assert_eq!(
        tenant["numbers"][1]["displayPhoneNumber"],
        "+1 555-010-0002"
    );
    assert_eq!(made.body["registered"], json!([second]));
    assert!(
        !made.text.contains(TOKEN),
        "the business token never leaves"
    );
    let id = tenant["id"].as_str().expect("id").to_owned();
    let key = made.body["apiKey"].as_str().expect("key").to_owned();
    let stored = rig
        .app
        .db
        .collection::<mongodb::bson::Document>("tenants")
        .find_one(doc! {"_id": ObjectId::parse_str(&id).expect("id")})
        .await
        .expect("find")
        .expect("tenant");
    assert!(!format!("{stored:?}").contains(TOKEN), "stored encrypted");

    // Both numbers route to it and are answered from themselves; `from` picks the number.
    answer_everything(&rig.app, &id, &key).await;
    rig.app.customers_wrote(&id, &["34600123123"]).await;
    Mock::given(method("POST"))
        .and(path(format!("{v}/{first}/messages")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.first")))
        .expect(2)
        .mount(&rig.graph)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{v}/{second}/messages")))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.second")))
        .expect(2)
        .mount(&rig.graph)
        .await;
    hi(&rig, &first, "34600123123").await;
    hi(&rig, &second, "34600123124").await;
    let r = rig
        .app
        .send(
            &id,
            &key,
            &json!({"to": "34600123123", "text": "from 2", "from": second}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = rig
        .app
        .send(&id, &key, &json!({"to": "34600123123", "text": "from 1"}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let oid = ObjectId::parse_str(&id).expect("id");
    rig.pump_until(async |r: &Rig| {
        r.app
            .messages(doc! {"tenantId": oid, "direction": "OUT", "status": "sent"})
            .await
            .len()
            == 4
    })
    .await;

    // The same code again: the same tenant, a fresh key; the first key stops working.
    let again = rig.app.post("/tenants/onboard", ADMIN_TOKEN, &body).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["replayed"], true);
    assert_eq!(again.body["tenant"]["id"], id.as_str());
    let fresh = again.body["apiKey"].as_str().expect("key");
    assert_ne!(fresh, key);
    assert_eq!(
        rig.app.get(&format!("/tenants/{id}"), fresh).await.status,
        200
    );
    assert_eq!(
        rig.app.get(&format!("/tenants/{id}"), &key).await.status,
        401
    );
    let listed = rig.app.get("/tenants", ADMIN_TOKEN).await;
    let named = listed.body["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .filter(|t| t["name"] == "Signed Up Shop")
        .count();
    assert_eq!(named, 1, "one tenant, however often the code is sent");
}

#[tokio::test]
async fn a_refused_code_is_a_422_and_bad_fields_are_named() {
    let rig = rig(None).await;
    Mock::given(method("GET"))
        .and(path("/v20.0/oauth/access_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "This authorization code has been used.", "type": "OAuthException", "code": 100}})))
        .mount(&rig.graph)
        .await;
    let used = rig
        .app
        .post(
            "/tenants/onboard",
            ADMIN_TOKEN,
            &json!({"name": "Shop", "code": "AQused"}),
        )
        .await;
    assert_eq!(used.status, 422, "{}", used.text);
    assert_eq!(used.body["field"], "code");
    assert!(used.text.contains("has been used"), "{}", used.text);
    for (body, field) in [
        (json!({"name": "", "code": "AQx"}), "name"),
        (json!({"name": "Shop", "code": ""}), "code"),
        (json!({"name": "Shop", "code": "AQx", "pin": "12"}), "pin"),
        (
            json!({"name": "Shop", "code": "AQx", "wabaId": "abc"}),
            "wabaId",
        ),
    ] {
        let r = rig.app.post("/tenants/onboard", ADMIN_TOKEN, &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field);
    }
    let by_key = rig
        .app
        .post(
            "/tenants/onboard",
            &rig.key,
            &json!({"name": "Shop", "code": "AQx"}),
        )
        .await;
    assert_eq!(by_key.status, 403);
}
