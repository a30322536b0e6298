//! `events/` fixtures through the Lambda entry path: API Gateway v2 JSON → `shared::apigw`
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
async fn register_fixtures_replay_through_the_lambda_entry() {
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
        // An event whose base64 body is not base64: a 400, never a panic of the instance.
        ("register/register-bad-base64.json", 400, None),
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

    let admin = vars(&[
        ("TENANT_ID", &tenant_id),
        ("ADMIN_TOKEN", e2e::ADMIN_TOKEN),
        (
            "ACCESS_TOKEN",
            &format!("EAAreplaced{}", e2e::random_hex(8)),
        ),
    ]);
    let patched = invoke_lambda(router(), &fixture("register/update-settings.json", &admin)).await;
    assert_eq!(patched["statusCode"], 200, "{patched}");
    let settings = &lambda_body(&patched)["tenant"]["settings"];
    assert_eq!(settings["throughputPerSecond"], 20);
    assert_eq!(settings["customerBurst"], 10);
    assert_eq!(settings["customerIntervalSeconds"], 3.0);
    assert_eq!(settings["marketingBackoffMinutes"], 60);
    let refused = invoke_lambda(
        router(),
        &fixture("register/update-settings-invalid.json", &admin),
    )
    .await;
    assert_eq!(refused["statusCode"], 422, "{refused}");
    assert_eq!(lambda_body(&refused)["field"], "throughputPerSecond");
    let bot = invoke_lambda(
        router(),
        &fixture("register/update-bot-settings.json", &admin),
    )
    .await;
    assert_eq!(bot["statusCode"], 200, "{bot}");
    let bot = &lambda_body(&bot)["tenant"]["bot"];
    assert_eq!(
        bot["resetKeywords"],
        serde_json::json!(["menu", "start over"])
    );
    assert_eq!(bot["optInKeywords"], serde_json::json!(["START", "ALTA"]));
    assert_eq!(bot["handoffMinutes"], 60);
    let replaced = invoke_lambda(
        router(),
        &fixture("register/replace-access-token.json", &admin),
    )
    .await;
    assert_eq!(replaced["statusCode"], 200, "{replaced}");
    assert_eq!(lambda_body(&replaced)["released"], 0);
    assert_eq!(
        lambda_body(&replaced)["tenant"]["tokenStatus"]["status"],
        "valid"
    );
    assert!(!replaced.to_string().contains(&admin["ACCESS_TOKEN"]));

    // Labelled keys: created (shown once), listed with the tenant's key, deleted.
    let created = invoke_lambda(router(), &fixture("register/create-api-key.json", &admin)).await;
    assert_eq!(created["statusCode"], 201, "{created}");
    let key_id = lambda_body(&created)["key"]["id"]
        .as_str()
        .expect("key id")
        .to_owned();
    let unlabelled = invoke_lambda(
        router(),
        &fixture("register/create-api-key-no-label.json", &admin),
    )
    .await;
    assert_eq!(unlabelled["statusCode"], 422, "{unlabelled}");
    assert_eq!(lambda_body(&unlabelled)["field"], "label");
    let listed = invoke_lambda(router(), &fixture("register/list-api-keys.json", &own)).await;
    assert_eq!(listed["statusCode"], 200, "{listed}");
    let labels: Vec<String> = lambda_body(&listed)["apiKeys"]
        .as_array()
        .expect("apiKeys")
        .iter()
        .filter_map(|k| k["label"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(labels, ["Registration key", "CRM integration"]);
    let mut with_key = admin.clone();
    with_key.insert("KEY_ID", key_id.clone());
    let deleted = invoke_lambda(
        router(),
        &fixture("register/delete-api-key.json", &with_key),
    )
    .await;
    assert_eq!(deleted["statusCode"], 200, "{deleted}");
    assert_eq!(lambda_body(&deleted)["deleted"], key_id.as_str());

    // Disabled: its own key is refused with the reason; active again: accepted.
    let disabled = invoke_lambda(router(), &fixture("register/disable-tenant.json", &admin)).await;
    assert_eq!(disabled["statusCode"], 200, "{disabled}");
    assert_eq!(lambda_body(&disabled)["tenant"]["status"], "disabled");
    let refused = invoke_lambda(router(), &fixture("register/list-api-keys.json", &own)).await;
    assert_eq!(refused["statusCode"], 403, "{refused}");
    assert_eq!(lambda_body(&refused)["code"], "tenant_disabled");
    let enabled = invoke_lambda(router(), &fixture("register/enable-tenant.json", &admin)).await;
    assert_eq!(enabled["statusCode"], 200, "{enabled}");
    let listed = invoke_lambda(router(), &fixture("register/list-api-keys.json", &own)).await;
    assert_eq!(listed["statusCode"], 200, "{listed}");

    // A second number, then the first removed: the second is the tenant's first now.
    let mut numbers = admin.clone();
    numbers.insert("SECOND_NUMBER", phone_number_id());
    numbers.insert("PHONE_NUMBER_ID", pnid.clone());
    let added = invoke_lambda(router(), &fixture("register/add-number.json", &numbers)).await;
    assert_eq!(added["statusCode"], 201, "{added}");
    assert_eq!(
        lambda_body(&added)["tenant"]["numbers"][1]["phoneNumberId"],
        numbers["SECOND_NUMBER"].as_str()
    );
    let invalid = invoke_lambda(
        router(),
        &fixture("register/add-number-invalid.json", &numbers),
    )
    .await;
    assert_eq!(invalid["statusCode"], 422, "{invalid}");
    assert_eq!(lambda_body(&invalid)["field"], "phoneNumberId");
    let removed = invoke_lambda(router(), &fixture("register/remove-number.json", &numbers)).await;
    assert_eq!(removed["statusCode"], 200, "{removed}");
    assert_eq!(
        lambda_body(&removed)["tenant"]["phoneNumberId"],
        numbers["SECOND_NUMBER"].as_str()
    );

    // Embedded Signup checks the request before anything reaches Graph.
    let onboard = invoke_lambda(
        router(),
        &fixture("register/onboard-invalid-pin.json", &admin),
    )
    .await;
    assert_eq!(onboard["statusCode"], 422, "{onboard}");
    assert_eq!(lambda_body(&onboard)["field"], "pin");

    let logs = e2e::logs();
    assert!(!logs.contains(&token));
    assert!(!logs.contains(&admin["ACCESS_TOKEN"]));
    // Log lines carry API Gateway's request id (the fixtures' requestContext.requestId).
    assert!(
        logs.contains("\"requestId\":\"JKJaXmPLvHcESHA=\""),
        "request id in logs"
    );
}

/// A tenant registered through `register/register-ok.json`: its id and API key.
async fn register_replayed(state: &shared::AppState) -> (String, String) {
    let reg = vars(&[
        ("PHONE_NUMBER_ID", &phone_number_id()),
        ("ACCESS_TOKEN", "EAAreplay"),
    ]);
    let created = invoke_lambda(
        register::router(state.clone()),
        &fixture("register/register-ok.json", &reg),
    )
    .await;
    let body = lambda_body(&created);
    (
        body["tenant"]["id"].as_str().expect("id").to_owned(),
        body["apiKey"].as_str().expect("key").to_owned(),
    )
}

#[tokio::test]
async fn template_and_flow_fixtures_replay_through_the_lambda_entry() {
    e2e::capture_logs();
    let (state, _db, _aws) = test_state().await;
    let (tenant, key) = register_replayed(&state).await;
    let templates = || templates::router(state.clone());
    let flows = || flows::router(state.clone());
    let with = |k: &str| vars(&[("TENANT_ID", &tenant), ("API_KEY", &key), ("KEY", k)]);

    let text = invoke_lambda(
        templates(),
        &fixture("templates/create-text.json", &with("-")),
    )
    .await;
    assert_eq!(text["statusCode"], 201, "{text}");
    let text_key = lambda_body(&text)["template"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert_eq!(
        lambda_body(&text)["template"]["variables"][0],
        "customer_name"
    );

    let menu = invoke_lambda(
        templates(),
        &fixture("templates/create-interactive.json", &with(&text_key)),
    )
    .await;
    assert_eq!(menu["statusCode"], 201, "{menu}");
    let menu_key = lambda_body(&menu)["template"]["key"]
        .as_str()
        .expect("key")
        .to_owned();

    for (name, status, field) in [
        (
            "templates/create-four-buttons.json",
            422,
            Some("buttons[3]"),
        ),
        (
            "templates/create-long-title.json",
            422,
            Some("buttons[0].title"),
        ),
        ("templates/create-malformed.json", 400, None),
    ] {
        let out = invoke_lambda(templates(), &fixture(name, &with("-"))).await;
        assert_eq!(out["statusCode"], status, "{name}: {out}");
        if let Some(field) = field {
            assert_eq!(lambda_body(&out)["field"], field, "{name}");
        }
    }

    let got = invoke_lambda(
        templates(),
        &fixture("templates/get.json", &with(&menu_key)),
    )
    .await;
    assert_eq!(got["statusCode"], 200);
    assert_eq!(
        lambda_body(&got)["template"]["buttons"][0]["nextTemplateKey"],
        text_key.as_str()
    );
    let replaced = invoke_lambda(
        templates(),
        &fixture("templates/replace.json", &with(&text_key)),
    )
    .await;
    assert_eq!(
        lambda_body(&replaced)["template"]["version"],
        2,
        "{replaced}"
    );

    let saved = invoke_lambda(flows(), &fixture("flows/save.json", &with(&menu_key))).await;
    assert_eq!(saved["statusCode"], 201, "{saved}");
    let legacy = invoke_lambda(
        flows(),
        &fixture("flows/save-legacy.json", &with(&menu_key)),
    )
    .await;
    assert_eq!(legacy["statusCode"], 200, "{legacy}");
    assert_eq!(
        lambda_body(&legacy)["flows"][0]["action"]["templateKey"],
        menu_key.as_str()
    );
    let bad = invoke_lambda(
        flows(),
        &fixture("flows/save-bad-regex.json", &with(&menu_key)),
    )
    .await;
    assert_eq!(bad["statusCode"], 422);
    assert_eq!(lambda_body(&bad)["field"], "flows[0].match.values[0]");
    let guided = invoke_lambda(
        flows(),
        &fixture("flows/save-guided.json", &with(&menu_key)),
    )
    .await;
    assert_eq!(guided["statusCode"], 200, "{guided}");
    let rules = &lambda_body(&guided)["flows"];
    assert_eq!(rules[1]["states"], serde_json::json!(["confirming"]));
    assert_eq!(rules[2]["action"]["type"], "handoff");
    let flow = invoke_lambda(flows(), &fixture("flows/get.json", &with("-"))).await;
    assert_eq!(lambda_body(&flow)["version"], 3);

    // Referenced by the menu's button: blocked. The menu is the flow's fallback: blocked.
    let blocked = invoke_lambda(
        templates(),
        &fixture("templates/deactivate.json", &with(&text_key)),
    )
    .await;
    assert_eq!(blocked["statusCode"], 409, "{blocked}");
    let blocked = invoke_lambda(
        templates(),
        &fixture("templates/deactivate.json", &with(&menu_key)),
    )
    .await;
    assert_eq!(blocked["statusCode"], 409, "{blocked}");

    let list = invoke_lambda(templates(), &fixture("templates/list.json", &with("-"))).await;
    assert_eq!(
        lambda_body(&list)["templates"].as_array().map(Vec::len),
        Some(2)
    );
    let all = invoke_lambda(templates(), &fixture("templates/list-all.json", &with("-"))).await;
    assert_eq!(all["statusCode"], 200, "{all}");
    // Found by schemathesis: a repeated query parameter was a text/plain 400.
    let repeated = invoke_lambda(
        templates(),
        &fixture("templates/list-repeated-query.json", &with("-")),
    )
    .await;
    assert_eq!(repeated["statusCode"], 400, "{repeated}");
    assert_eq!(lambda_body(&repeated)["error"], "Bad Request", "{repeated}");
}

#[tokio::test]
async fn dead_letter_and_analytics_fixtures_replay_through_the_lambda_entry() {
    let (state, _db, _aws) = test_state().await;
    let (tenant, key) = register_replayed(&state).await;
    let own = vars(&[("TENANT_ID", &tenant), ("API_KEY", &key)]);
    let router = || send::router(state.clone());
    let listed = invoke_lambda(router(), &fixture("dead-letters/list.json", &own)).await;
    assert_eq!(listed["statusCode"], 200, "{listed}");
    assert_eq!(lambda_body(&listed)["deadLetters"], serde_json::json!([]));
    let bad = invoke_lambda(router(), &fixture("dead-letters/redrive-bad-id.json", &own)).await;
    assert_eq!(bad["statusCode"], 422, "{bad}");
    assert_eq!(lambda_body(&bad)["field"], "messageIds[0]");
    let all = invoke_lambda(router(), &fixture("dead-letters/redrive-all.json", &own)).await;
    assert_eq!(all["statusCode"], 200, "{all}");
    assert_eq!(lambda_body(&all)["redriven"], 0);

    let november = invoke_lambda(router(), &fixture("analytics/november.json", &own)).await;
    assert_eq!(november["statusCode"], 200, "{november}");
    let a = &lambda_body(&november)["analytics"];
    assert_eq!(a["series"].as_array().map(Vec::len), Some(30));
    assert_eq!(a["totals"]["inbound"], 0);
    let bad = invoke_lambda(router(), &fixture("analytics/bad-granularity.json", &own)).await;
    assert_eq!(bad["statusCode"], 422, "{bad}");
    assert_eq!(lambda_body(&bad)["field"], "granularity");
}

#[tokio::test]
async fn event_subscription_fixtures_replay_through_the_lambda_entry() {
    let (state, _db, _aws) = test_state().await;
    let (tenant, key) = register_replayed(&state).await;
    let router = || register::router(state.clone());
    let own = vars(&[("TENANT_ID", &tenant), ("API_KEY", &key)]);
    let created = invoke_lambda(router(), &fixture("event-subscriptions/create.json", &own)).await;
    assert_eq!(created["statusCode"], 201, "{created}");
    let body = lambda_body(&created);
    let id = body["subscription"]["id"].as_str().expect("id").to_owned();
    let bad = invoke_lambda(
        router(),
        &fixture("event-subscriptions/create-bad-event.json", &own),
    )
    .await;
    assert_eq!(bad["statusCode"], 422, "{bad}");
    assert_eq!(lambda_body(&bad)["field"], "events[0]");
    let listed = invoke_lambda(router(), &fixture("event-subscriptions/list.json", &own)).await;
    assert_eq!(lambda_body(&listed)["subscriptions"][0]["id"], id.as_str());
    let mut with = own.clone();
    with.insert("SUBSCRIPTION_ID", id.clone());
    let attempts = invoke_lambda(
        router(),
        &fixture("event-subscriptions/deliveries.json", &with),
    )
    .await;
    assert_eq!(lambda_body(&attempts)["deliveries"], serde_json::json!([]));
    let gone = invoke_lambda(router(), &fixture("event-subscriptions/delete.json", &with)).await;
    assert_eq!(gone["statusCode"], 200, "{gone}");
}
