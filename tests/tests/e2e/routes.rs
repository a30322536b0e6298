//! template.yaml is the one route table: the local gateway serves each of its routes with
//! the function that template.yaml names, and nothing else.

use std::collections::BTreeSet;

use axum::body::Body;
use e2e::test_state;
use http_body_util::BodyExt;
use local_gateway::{TEMPLATE_YAML, app, function_router, routes::parse_template};
use tower::ServiceExt;

fn concrete(path: &str) -> String {
    path.replace("{tenantId}", "65f0c0ffee0000000000beef")
        .replace("{key}", "tmpl_0badf00d")
        .replace("{asset}", "app.js")
}

async fn send(router: axum::Router, method: &str, path: &str) -> (u16, String) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .expect("request");
    let resp = router.oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn gateway_serves_exactly_the_template_routes() {
    let (state, _db, _aws) = test_state().await;
    let table = parse_template(TEMPLATE_YAML).expect("template.yaml parses");
    assert!(!table.is_empty());
    let gateway = app(&state).expect("every template function is known to the gateway");

    let mut seen = BTreeSet::new();
    for route in &table {
        assert!(
            seen.insert((route.method.clone(), route.path.clone())),
            "route declared twice: {route:?}"
        );
        let path = concrete(&route.path);
        // Through the gateway and straight into the owning function: both must know it.
        for (who, router) in [
            ("gateway", gateway.clone()),
            (
                "function",
                function_router(&route.function, &state).expect("function router"),
            ),
        ] {
            let (status, body) = send(router, &route.method, &path).await;
            assert!(
                !(status == 404 && body.contains("no route")) && status != 405,
                "{who} does not serve {} {}: {status} {body}",
                route.method,
                route.path
            );
        }
    }

    // A route not in template.yaml is not served locally either.
    let (status, body) = send(gateway.clone(), "GET", "/not/in/template").await;
    assert_eq!(status, 404);
    assert!(body.contains("no route"));
    let (status, _) = send(gateway, "DELETE", "/tenants/register").await;
    assert!(status == 405 || status == 404, "{status}");
}

#[test]
fn every_function_in_the_template_has_a_crate() {
    let table = parse_template(TEMPLATE_YAML).expect("parses");
    for route in table {
        let dir = e2e::repo_root().join("functions").join(&route.function);
        assert!(
            dir.join("Cargo.toml").exists(),
            "{} has no crate at {}",
            route.function,
            dir.display()
        );
    }
}

/// docs/openapi.yaml documents exactly the routes of template.yaml.
#[test]
fn the_openapi_spec_lists_exactly_the_template_routes() {
    let text = std::fs::read_to_string(e2e::repo_root().join("docs/openapi.yaml")).expect("spec");
    let spec: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().expect("paths") {
        for (method, _) in item.as_mapping().expect("path item") {
            let method = method.as_str().expect("key");
            if ["get", "post", "put", "patch", "delete"].contains(&method) {
                documented.insert((
                    method.to_ascii_uppercase(),
                    path.as_str().expect("path").to_owned(),
                ));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = parse_template(TEMPLATE_YAML)
        .expect("parses")
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(documented, routed);
}

/// docs/postman_collection.json has one request per spec route, with the documented
/// variables (regenerate with `make postman`).
#[test]
fn the_postman_collection_matches_the_spec() {
    let collection: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(e2e::repo_root().join("docs/postman_collection.json"))
            .expect("collection"),
    )
    .expect("json");
    let variables: BTreeSet<&str> = collection["variable"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["key"].as_str())
        .collect();
    for v in ["baseUrl", "adminToken", "tenantId"] {
        assert!(variables.contains(v), "variable {v}");
    }
    let requests: BTreeSet<(String, String)> = collection["item"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let raw = i["request"]["url"]["raw"].as_str().expect("url");
            let path = raw
                .trim_start_matches("{{baseUrl}}")
                .replace("{{tenantId}}", "{tenantId}")
                .replace("{{templateKey}}", "{key}")
                .replace("{{asset}}", "{asset}")
                .replace("{{waId}}", "{waId}")
                .replace("{{mediaId}}", "{mediaId}")
                .replace("{{keyId}}", "{keyId}")
                .replace("{{phoneNumberId}}", "{phoneNumberId}")
                .replace("{{subscriptionId}}", "{subscriptionId}");
            (
                i["request"]["method"].as_str().expect("method").to_owned(),
                path,
            )
        })
        .collect();
    let routed: BTreeSet<(String, String)> = parse_template(TEMPLATE_YAML)
        .expect("parses")
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(requests, routed);
}
