//! Flows API: both input shapes, normalised; validation against the tenant's templates.

use e2e::{TestApp, spawn_app};
use serde_json::{Value, json};

async fn template(app: &TestApp, tenant: &str, key: &str, t: &str) {
    let r = app
        .call(
            "POST",
            &format!("/tenants/{tenant}/templates"),
            Some(key),
            Some(&json!({"key": t, "body": t}).to_string()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn save(app: &TestApp, tenant: &str, key: &str, body: &Value) -> e2e::Reply {
    app.call(
        "POST",
        &format!("/tenants/{tenant}/flows"),
        Some(key),
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn both_shapes_save_and_read_back_normalised() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    for t in ["menu", "prices", "fallback"] {
        template(&app, &tenant, &key, t).await;
    }
    let none = app
        .call("GET", &format!("/tenants/{tenant}/flows"), Some(&key), None)
        .await;
    assert_eq!(none.status, 404);

    let legacy = json!({
        "rules": [
            {"when": {"type": "equals", "value": "hi"}, "action": {"replyTemplateKey": "menu", "setState": "menu"}},
            {"when": {"type": "contains", "value": "price"}, "action": {"replyTemplateKey": "prices"}}
        ],
        "fallbackTemplateKey": "fallback"
    });
    let r = save(&app, &tenant, &key, &legacy).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let expected_rules = json!([
        {"id": "rule_1", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": "menu", "setState": "menu"}},
        {"id": "rule_2", "match": {"type": "contains", "values": ["price"]}, "action": {"type": "send_template", "templateKey": "prices", "setState": null}}
    ]);
    assert_eq!(r.body["flows"], expected_rules);
    assert_eq!(r.body["fallbackTemplateKey"], "fallback");
    assert!(r.body.get("rules").is_none());
    assert_eq!(r.body["version"], 1);

    let got = app
        .call("GET", &format!("/tenants/{tenant}/flows"), Some(&key), None)
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["flows"], expected_rules);

    // The normalised shape posts back unchanged: a new version, same rules.
    let mut again = got.body.clone();
    for k in ["ok", "version", "createdAt", "updatedAt"] {
        again.as_object_mut().expect("object").remove(k);
    }
    let r = save(&app, &tenant, &key, &again).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["flows"], expected_rules);
    assert_eq!(r.body["version"], 2);
}

#[tokio::test]
async fn invalid_flows_are_422_and_change_nothing() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    template(&app, &tenant, &key, "menu").await;
    let e2e::TestTenant {
        id: other,
        key: other_key,
        ..
    } = app.register_tenant("Other").await;
    template(&app, &other, &other_key, "theirs").await;

    let ok = json!({"flows": [{"id": "a", "match": {"type": "regex", "values": ["^h(i|ello)$"]}, "action": {"type": "send_template", "templateKey": "menu"}}]});
    assert_eq!(save(&app, &tenant, &key, &ok).await.status, 201);

    let rule = |m: Value, t: &str| json!({"flows": [{"id": "a", "match": m, "action": {"type": "send_template", "templateKey": t}}]});
    for (body, field) in [
        (
            rule(
                json!({"type": "regex", "values": ["ok", "(?P<unclosed"]}),
                "menu",
            ),
            "flows[0].match.values[1]",
        ),
        (
            rule(json!({"type": "equals", "values": ["x"]}), "missing"),
            "flows[0].action.templateKey",
        ),
        (
            rule(json!({"type": "equals", "values": ["x"]}), "theirs"),
            "flows[0].action.templateKey",
        ),
        (
            rule(json!({"type": "sounds_like", "values": ["x"]}), "menu"),
            "flows[0].match.type",
        ),
        (
            json!({"flows": [], "fallbackTemplateKey": "missing"}),
            "fallbackTemplateKey",
        ),
        (
            json!({"rules": [{"when": {"type": "regex", "value": "(("}, "action": {"replyTemplateKey": "menu"}}]}),
            "rules[0].when.value",
        ),
    ] {
        let r = save(&app, &tenant, &key, &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field, "{}", r.text);
    }
    let r = app
        .call(
            "POST",
            &format!("/tenants/{tenant}/flows"),
            Some(&key),
            Some("{"),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = save(&app, &tenant, &other_key, &ok).await;
    assert_eq!(r.status, 403);

    let got = app
        .call("GET", &format!("/tenants/{tenant}/flows"), Some(&key), None)
        .await;
    assert_eq!(got.body["version"], 1, "failed saves changed nothing");
    assert_eq!(
        got.body["flows"][0]["match"]["values"],
        json!(["^h(i|ello)$"])
    );
}
