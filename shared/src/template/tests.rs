use std::collections::HashSet;

use serde_json::json;

use super::*;

fn input(v: serde_json::Value) -> TemplateInput {
    serde_json::from_value(v).expect("input shape")
}

fn field(r: Result<Template, ApiError>) -> String {
    match r {
        Err(ApiError::Unprocessable { field, .. }) => field,
        other => panic!("expected 422, got {other:?}"),
    }
}

fn own() -> TemplateKey {
    TemplateKey::parse("key", "tmpl_self").expect("key")
}

#[test]
fn generated_keys_have_the_documented_shape() {
    let re = regex::Regex::new(r"^tmpl_[0-9a-f]{8}$").expect("re");
    let keys: HashSet<String> = (0..50)
        .map(|_| TemplateKey::generate().as_str().to_owned())
        .collect();
    assert!(keys.iter().all(|k| re.is_match(k)));
    assert_eq!(keys.len(), 50);
}

#[test]
fn text_template_infers_variables_in_order() {
    let spec =
        input(json!({"body": "Hi {{customer_name}}, order {{ order.id }} for {{customer_name}}"}))
            .validate(&own(), &HashSet::new())
            .expect("valid");
    assert_eq!(spec.kind, TemplateKind::Text);
    assert_eq!(spec.variables, vec!["customer_name", "order.id"]);
    assert!(spec.is_active);
}

#[test]
fn interactive_limits_follow_whatsapp() {
    let e = HashSet::new();
    let b = |n: usize| -> Vec<serde_json::Value> {
        (0..n).map(|i| json!({"title": format!("B{i}")})).collect()
    };
    assert_eq!(
        field(
            input(json!({"body": "x", "kind": "interactive_button", "buttons": b(0)}))
                .validate(&own(), &e)
        ),
        "buttons"
    );
    assert_eq!(
        field(input(json!({"body": "x", "kind": "interactive_button"})).validate(&own(), &e)),
        "buttons"
    );
    assert_eq!(
        field(
            input(json!({"body": "x", "kind": "interactive_button", "buttons": b(4)}))
                .validate(&own(), &e)
        ),
        "buttons[3]"
    );
    assert_eq!(
        field(input(json!({"body": "x", "buttons": b(1)})).validate(&own(), &e)),
        "buttons"
    );
    assert_eq!(
        field(input(json!({"body": "x", "kind": "list"})).validate(&own(), &e)),
        "kind"
    );
    let spec = input(json!({"body": "x", "kind": "interactive_button", "buttons": b(3)}))
        .validate(&own(), &e)
        .expect("3 buttons");
    assert_eq!(spec.buttons.len(), 3);
    assert!(spec.buttons.iter().all(|b| b.id.0.starts_with("btn_")));
}

#[test]
fn button_titles_count_unicode_characters() {
    let e = HashSet::new();
    let with_title = |t: &str| {
        input(json!({"body": "x", "kind": "interactive_button", "buttons": [{"title": t}]}))
    };
    assert!(
        with_title("Café ☕ crème brûlée!")
            .validate(&own(), &e)
            .is_ok()
    ); // 20 chars, more bytes
    assert!(with_title(&"é".repeat(20)).validate(&own(), &e).is_ok());
    assert_eq!(
        field(with_title(&"a".repeat(21)).validate(&own(), &e)),
        "buttons[0].title"
    );
    assert_eq!(
        field(with_title("").validate(&own(), &e)),
        "buttons[0].title"
    );
}

#[test]
fn duplicate_titles_and_ids_are_named() {
    let e = HashSet::new();
    let dup_title = input(
        json!({"body": "x", "kind": "interactive_button", "buttons": [{"title": "Yes"}, {"title": "yes"}]}),
    );
    assert_eq!(field(dup_title.validate(&own(), &e)), "buttons[1].title");
    let dup_id = input(
        json!({"body": "x", "kind": "interactive_button", "buttons": [{"title": "A", "id": "x"}, {"title": "B", "id": "x"}]}),
    );
    assert_eq!(field(dup_id.validate(&own(), &e)), "buttons[1].id");
    let spaced = input(
        json!({"body": "x", "kind": "interactive_button", "buttons": [{"title": "A", "id": " x"}]}),
    );
    assert_eq!(field(spaced.validate(&own(), &e)), "buttons[0].id");
    let long = input(
        json!({"body": "x", "kind": "interactive_button", "buttons": [{"title": "A", "id": "i".repeat(257)}]}),
    );
    assert_eq!(field(long.validate(&own(), &e)), "buttons[0].id");
}

#[test]
fn next_template_must_exist_unless_it_is_itself() {
    let other = TemplateKey::parse("k", "tmpl_other").expect("key");
    let known: HashSet<TemplateKey> = [other.clone()].into();
    let to = |k: &str| {
        input(
            json!({"body": "x", "kind": "interactive_button", "buttons": [{"title": "Go", "nextTemplateKey": k, "nextState": "s"}]}),
        )
    };
    assert!(to("tmpl_other").validate(&own(), &known).is_ok());
    assert!(to("tmpl_self").validate(&own(), &HashSet::new()).is_ok());
    assert_eq!(
        field(to("tmpl_missing").validate(&own(), &known)),
        "buttons[0].nextTemplateKey"
    );
    let long_state = input(
        json!({"body": "x", "kind": "interactive_button", "buttons": [{"title": "Go", "nextState": "s".repeat(65)}]}),
    );
    assert_eq!(
        field(long_state.validate(&own(), &known)),
        "buttons[0].nextState"
    );
}

#[test]
fn body_limits_depend_on_kind() {
    let e = HashSet::new();
    let btn = json!([{"title": "A"}]);
    assert!(
        input(json!({"body": "x".repeat(1024), "kind": "interactive_button", "buttons": btn}))
            .validate(&own(), &e)
            .is_ok()
    );
    assert_eq!(
        field(
            input(json!({"body": "x".repeat(1025), "kind": "interactive_button", "buttons": btn}))
                .validate(&own(), &e)
        ),
        "body"
    );
    assert!(
        input(json!({"body": "x".repeat(4096)}))
            .validate(&own(), &e)
            .is_ok()
    );
    assert_eq!(
        field(input(json!({"body": "x".repeat(4097)})).validate(&own(), &e)),
        "body"
    );
    assert_eq!(
        field(input(json!({"body": "  "})).validate(&own(), &e)),
        "body"
    );
}

#[test]
fn render_fills_known_and_blanks_unknown() {
    let out = render("Hi {{name}}, {{ missing }}!", |k| {
        (k == "name").then(|| "Ana".to_owned())
    });
    assert_eq!(out, "Hi Ana, !");
}
