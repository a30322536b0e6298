//! Templates API against the local stack: keys, versions, validation with WhatsApp's
//! limits, tenant isolation, deactivation guarded by references.

use e2e::{ADMIN_TOKEN, TestApp, spawn_app};
use serde_json::{Value, json};

async fn post(app: &TestApp, tenant: &str, bearer: &str, body: Value) -> e2e::Reply {
    app.call(
        "POST",
        &format!("/tenants/{tenant}/templates"),
        Some(bearer),
        Some(&body.to_string()),
    )
    .await
}

fn menu(buttons: Value) -> Value {
    json!({"body": "What would you like?", "kind": "interactive_button", "buttons": buttons})
}

#[tokio::test]
async fn create_read_update_with_generated_keys_and_versions() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;

    let text = post(
        &app,
        &tenant,
        &key,
        json!({"body": "Hello {{customer_name}}!", "description": "greeting"}),
    )
    .await;
    assert_eq!(text.status, 201, "{}", text.text);
    let t = &text.body["template"];
    let text_key = t["key"].as_str().expect("key").to_owned();
    assert!(regex_lite(&text_key), "{text_key}");
    assert_eq!(t["kind"], "text");
    assert_eq!(t["version"], 1);
    assert_eq!(t["isActive"], true);
    assert_eq!(t["variables"], json!(["customer_name"]));
    assert_eq!(t["buttons"], json!([]));
    assert!(t["createdAt"].is_string() && t["updatedAt"].is_string());

    let interactive = post(
        &app,
        &tenant,
        ADMIN_TOKEN,
        menu(json!([{"title": "Prices", "nextTemplateKey": text_key, "nextState": "prices"}, {"title": "Hours", "id": "hours"}])),
    )
    .await;
    assert_eq!(interactive.status, 201, "{}", interactive.text);
    let i = &interactive.body["template"];
    let menu_key = i["key"].as_str().expect("key").to_owned();
    assert!(regex_lite(&menu_key));
    assert_ne!(menu_key, text_key);
    assert_eq!(i["buttons"][0]["nextTemplateKey"], text_key.as_str());
    assert_eq!(i["buttons"][0]["nextState"], "prices");
    assert!(
        i["buttons"][0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("btn_"))
    );
    assert_eq!(i["buttons"][1]["id"], "hours");

    // POST with an existing key updates it; PUT replaces it. Each bumps the version.
    let updated = post(
        &app,
        &tenant,
        &key,
        json!({"key": text_key, "body": "Hi again"}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["template"]["version"], 2);
    assert_eq!(updated.body["template"]["body"], "Hi again");
    let put = app
        .call(
            "PUT",
            &format!("/tenants/{tenant}/templates/{text_key}"),
            Some(&key),
            Some(&json!({"body": "Hi v3"}).to_string()),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["template"]["version"], 3);
    assert_eq!(
        put.body["template"]["createdAt"],
        text.body["template"]["createdAt"]
    );

    // A client-chosen key that does not exist yet is created under it.
    let named = post(
        &app,
        &tenant,
        &key,
        json!({"key": "welcome", "body": "Welcome"}),
    )
    .await;
    assert_eq!(named.status, 201);
    assert_eq!(named.body["template"]["key"], "welcome");

    let one = app
        .call(
            "GET",
            &format!("/tenants/{tenant}/templates/{menu_key}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["template"]["body"], "What would you like?");
    let missing = app
        .call(
            "GET",
            &format!("/tenants/{tenant}/templates/tmpl_00000000"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);

    let list = app
        .call(
            "GET",
            &format!("/tenants/{tenant}/templates"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(list.status, 200);
    let keys: Vec<&str> = list.body["templates"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    let mut sorted = vec![text_key.as_str(), menu_key.as_str(), "welcome"];
    sorted.sort();
    assert_eq!(keys, sorted);
}

fn regex_lite(key: &str) -> bool {
    key.len() == 13
        && key.starts_with("tmpl_")
        && key[5..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn invalid_templates_are_422_naming_the_field() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    let e2e::TestTenant {
        id: other,
        key: other_key,
        ..
    } = app.register_tenant("Other").await;
    let foreign = post(&app, &other, &other_key, json!({"body": "theirs"})).await;
    let foreign_key = foreign.body["template"]["key"]
        .as_str()
        .expect("key")
        .to_owned();

    let b = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"title": format!("Option {i}")}))
            .collect()
    };
    let cases: Vec<(Value, &str)> = vec![
        (menu(b(0)), "buttons"),
        (menu(b(4)), "buttons[3]"),
        (json!({"body": "text", "buttons": b(1)}), "buttons"),
        (
            menu(json!([{"title": "123456789012345678901"}])),
            "buttons[0].title",
        ),
        (
            menu(json!([{"title": "Same"}, {"title": "Same"}])),
            "buttons[1].title",
        ),
        (
            menu(json!([{"title": "A", "id": "x"}, {"title": "B", "id": "x"}])),
            "buttons[1].id",
        ),
        (json!({"body": "x", "kind": "carousel"}), "kind"),
        (
            menu(json!([{"title": "Theirs", "nextTemplateKey": foreign_key}])),
            "buttons[0].nextTemplateKey",
        ),
        (
            json!({"body": "x".repeat(1025), "kind": "interactive_button", "buttons": b(1)}),
            "body",
        ),
        (json!({"body": ""}), "body"),
        (json!({"kind": "text"}), "body"),
        (json!({"body": "x", "buttons": "nope"}), "buttons"),
        (json!({"body": "x", "key": "has space"}), "key"),
    ];
    for (body, field) in cases {
        let r = post(&app, &tenant, &key, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["field"], field, "{body}: {}", r.text);
        assert_eq!(r.body["error"], "Unprocessable Entity");
    }
    // 20 characters with emoji and accents is within WhatsApp's limit.
    let ok = post(&app, &tenant, &key, menu(json!([{"title": "Café ☕ crème brûlée!"}, {"title": "🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕🍕"}]))).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let body = "x".repeat(1024);
    let ok = post(
        &app,
        &tenant,
        &key,
        json!({"body": body, "kind": "interactive_button", "buttons": b(3)}),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);

    let r = app
        .call(
            "POST",
            &format!("/tenants/{tenant}/templates"),
            Some(&key),
            Some("{\"body\": "),
        )
        .await;
    assert_eq!(r.status, 400);
    // Nothing invalid was stored: only the two valid ones.
    let list = app
        .call(
            "GET",
            &format!("/tenants/{tenant}/templates?all=true"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(list.body["templates"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_others_templates() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: a, key: key_a, ..
    } = app.register_tenant("A").await;
    let e2e::TestTenant {
        id: b, key: key_b, ..
    } = app.register_tenant("B").await;
    let created = post(&app, &a, &key_a, json!({"body": "A's"})).await;
    let k = created.body["template"]["key"]
        .as_str()
        .expect("key")
        .to_owned();

    for (method, path, body) in [
        ("GET", format!("/tenants/{a}/templates"), None),
        (
            "POST",
            format!("/tenants/{a}/templates"),
            Some(json!({"body": "x"}).to_string()),
        ),
        ("GET", format!("/tenants/{a}/templates/{k}"), None),
        (
            "PUT",
            format!("/tenants/{a}/templates/{k}"),
            Some(json!({"body": "x"}).to_string()),
        ),
        ("DELETE", format!("/tenants/{a}/templates/{k}"), None),
    ] {
        let r = app.call(method, &path, Some(&key_b), body.as_deref()).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        let r = app.call(method, &path, None, body.as_deref()).await;
        assert_eq!(r.status, 401, "{method} {path}");
    }
    // B's own namespace does not contain A's key.
    let r = app
        .call(
            "GET",
            &format!("/tenants/{b}/templates/{k}"),
            Some(&key_b),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .call("GET", "/tenants/nope/templates", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .call(
            "GET",
            "/tenants/65f0c0ffee0000000000beef/templates",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = app
        .call(
            "GET",
            &format!("/tenants/{a}/templates/{k}"),
            Some(&key_a),
            None,
        )
        .await;
    assert_eq!(r.body["template"]["body"], "A's", "unchanged");
}

#[tokio::test]
async fn deactivation_is_blocked_while_referenced_then_allowed() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    let leaf = post(&app, &tenant, &key, json!({"body": "Our hours: 9-5"})).await;
    let leaf_key = leaf.body["template"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let menu_t = post(
        &app,
        &tenant,
        &key,
        menu(json!([{"title": "Hours", "nextTemplateKey": leaf_key}])),
    )
    .await;
    let menu_key = menu_t.body["template"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let flow = json!({"flows": [{"id": "greet", "match": {"type": "equals", "values": ["hi"]}, "action": {"type": "send_template", "templateKey": menu_key}}]});
    let saved = app
        .call(
            "POST",
            &format!("/tenants/{tenant}/flows"),
            Some(&key),
            Some(&flow.to_string()),
        )
        .await;
    assert!(saved.status == 201 || saved.status == 200, "{}", saved.text);

    let r = app
        .call(
            "DELETE",
            &format!("/tenants/{tenant}/templates/{leaf_key}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains(&menu_key) && m.contains("Hours")),
        "{}",
        r.text
    );
    let r = app
        .call(
            "DELETE",
            &format!("/tenants/{tenant}/templates/{menu_key}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("greet")),
        "{}",
        r.text
    );
    // Deactivating through PUT is guarded the same way.
    let r = app
        .call(
            "PUT",
            &format!("/tenants/{tenant}/templates/{leaf_key}"),
            Some(&key),
            Some(&json!({"body": "x", "isActive": false}).to_string()),
        )
        .await;
    assert_eq!(r.status, 409);

    // Unwire: the flow no longer uses the menu, the menu no longer points to the leaf.
    let r = app
        .call(
            "POST",
            &format!("/tenants/{tenant}/flows"),
            Some(&key),
            Some(&json!({"flows": []}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .call(
            "DELETE",
            &format!("/tenants/{tenant}/templates/{menu_key}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["template"]["isActive"], false);
    // An inactive template's buttons no longer count as references.
    let r = app
        .call(
            "DELETE",
            &format!("/tenants/{tenant}/templates/{leaf_key}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let active = app
        .call(
            "GET",
            &format!("/tenants/{tenant}/templates"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(active.body["templates"], json!([]));
    let all = app
        .call(
            "GET",
            &format!("/tenants/{tenant}/templates?all=true"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(all.body["templates"].as_array().map(Vec::len), Some(2));
    // An inactive template cannot be the target of a new button.
    let r = post(
        &app,
        &tenant,
        &key,
        menu(json!([{"title": "Hours", "nextTemplateKey": leaf_key}])),
    )
    .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn menus_may_form_cycles() {
    let app = spawn_app().await;
    let e2e::TestTenant {
        id: tenant, key, ..
    } = app.register_tenant("Shop").await;
    let a = post(&app, &tenant, &key, json!({"key": "main", "body": "Main", "kind": "interactive_button", "buttons": [{"title": "Again", "nextTemplateKey": "main"}]})).await;
    assert_eq!(a.status, 201, "self reference on create: {}", a.text);
    let b = post(
        &app,
        &tenant,
        &key,
        menu(json!([{"title": "Back", "nextTemplateKey": "main"}])),
    )
    .await;
    let b_key = b.body["template"]["key"].as_str().expect("key").to_owned();
    let a2 = post(&app, &tenant, &key, json!({"key": "main", "body": "Main", "kind": "interactive_button", "buttons": [{"title": "Sub", "nextTemplateKey": b_key}]})).await;
    assert_eq!(a2.status, 200, "{}", a2.text);
    assert_eq!(a2.body["template"]["version"], 2);
}
