//! `events/` fixtures through the Lambda entry path: API Gateway v2 JSON → lambda_http's
//! adapter → the register function's router → Lambda response JSON.

use std::collections::HashMap;

use e2e::{ADMIN_TOKEN, fixture, invoke_lambda, lambda_body, phone_number_id, test_state};
use mongodb::bson::oid::ObjectId;

fn vars(pairs: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
    let mut v: HashMap<&'static str, String> =
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
    v.entry("ADMIN_TOKEN").or_insert_with(|| ADMIN_TOKEN.into());
    v
}

#[tokio::test]
async fn register_fixtures_replay_through_lambda_http() {
    e2e::capture_logs();
    let (state, _db, _aws) = test_state().await;
    let router = || register::router(state.clone());
    let token = format!("EAAreplay{}", e2e::random_hex(8));
    let pnid = phone_number_id();
    let v = vars(&[("PHONE_NUMBER_ID", &pnid), ("ACCESS_TOKEN", &token)]);

    let health = invoke_lambda(router(), &fixture("health.json", &v)).await;
    assert_eq!(health["statusCode"], 200);
    assert_eq!(lambda_body(&health)["ok"], true);

    let created = invoke_lambda(router(), &fixture("register/register-ok.json", &v)).await;
    assert_eq!(created["statusCode"], 201, "{created}");
    let body = lambda_body(&created);
    let tenant_id = body["tenant"]["id"].as_str().expect("id").to_owned();
    let api_key = body["apiKey"].as_str().expect("key").to_owned();
    assert_eq!(body["tenant"]["wabaId"], "102290129340398");
    assert!(!created.to_string().contains(&token));

    let dup = invoke_lambda(router(), &fixture("register/register-ok.json", &v)).await;
    assert_eq!(dup["statusCode"], 409, "{dup}");

    for (name, status, field) in [
        ("register/register-no-auth.json", 401, None),
        ("register/register-bad-bearer.json", 401, None),
        ("register/register-malformed-json.json", 400, None),
        ("register/register-invalid-name.json", 422, Some("name")),
        (
            "register/register-invalid-phone-number-id.json",
            422,
            Some("phoneNumberId"),
        ),
        (
            "register/register-invalid-access-token.json",
            422,
            Some("accessToken"),
        ),
        (
            "register/register-missing-field.json",
            422,
            Some("phoneNumberId"),
        ),
    ] {
        let v = vars(&[
            ("PHONE_NUMBER_ID", &phone_number_id()),
            ("ACCESS_TOKEN", &token),
        ]);
        let out = invoke_lambda(router(), &fixture(name, &v)).await;
        assert_eq!(out["statusCode"], status, "{name}: {out}");
        let body = lambda_body(&out);
        assert!(body["message"].as_str().is_some(), "{name}: {out}");
        if let Some(field) = field {
            assert_eq!(body["field"], field, "{name}");
        }
    }

    let list = invoke_lambda(router(), &fixture("register/list-tenants.json", &v)).await;
    assert_eq!(list["statusCode"], 200);
    assert_eq!(lambda_body(&list)["tenants"][0]["id"], tenant_id.as_str());

    let own = vars(&[("TENANT_ID", &tenant_id), ("API_KEY", &api_key)]);
    let got = invoke_lambda(router(), &fixture("register/get-tenant.json", &own)).await;
    assert_eq!(got["statusCode"], 200, "{got}");
    assert_eq!(lambda_body(&got)["tenant"]["id"], tenant_id.as_str());

    let other = ObjectId::new().to_hex();
    let foreign = vars(&[("TENANT_ID", &other), ("API_KEY", &api_key)]);
    let denied = invoke_lambda(router(), &fixture("register/get-tenant.json", &foreign)).await;
    assert_eq!(denied["statusCode"], 403, "{denied}");

    assert!(!e2e::logs().contains(&token));
}
