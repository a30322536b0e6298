//! Media: a file sent by link or id (Meta's payload exactly), inbound files in the message
//! log with their id, type and checksum, and the download proxy (Graph's two steps with the
//! tenant's token).

use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{header, method, path},
};

use crate::sender::{Rig, ok_body, rig};

async fn get(rig: &Rig, path: &str) -> reqwest::Response {
    rig.app
        .http
        .get(format!("{}/tenants/{}{path}", rig.app.base, rig.tenant))
        .bearer_auth(&rig.key)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn files_are_sent_logged_and_downloaded_through_the_proxy() {
    let rig = rig(None).await;
    Mock::given(method("POST"))
        .and(path(rig.graph_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("wamid.media")))
        .mount(&rig.graph)
        .await;
    let to = "34600111222";
    for (bad, field) in [
        (
            json!({"to": to, "media": {"type": "sticker", "link": "https://x.test/a.webp"}}),
            "media.type",
        ),
        (
            json!({"to": to, "media": {"type": "image", "link": "https://x.test/a.png", "id": "123"}}),
            "media",
        ),
        (
            json!({"to": to, "media": {"type": "image", "link": "ftp://x.test/a.png"}}),
            "media.link",
        ),
        (
            json!({"to": to, "media": {"type": "image", "link": "https://x.test/a.png", "filename": "a.png"}}),
            "media.filename",
        ),
        (
            json!({"to": to, "text": "hear this", "media": {"type": "audio", "id": "123"}}),
            "text",
        ),
        (json!({"to": to}), "text"),
    ] {
        let r = rig.app.send(&rig.tenant, &rig.key, &bad).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{bad}: {}",
            r.text
        );
    }
    let doc = rig
        .send(
            json!({"to": to, "text": "Your invoice", "media": {"type": "document",
            "link": "https://files.example.com/inv-42.pdf", "filename": "invoice-42.pdf"}}),
        )
        .await;
    let image = rig
        .send(
            json!({"to": to, "media": {"type": "image", "id": "1044", "caption": "The new menu"}}),
        )
        .await;
    rig.pump_until(async |r: &Rig| {
        r.status(&doc).await == "sent" && r.status(&image).await == "sent"
    })
    .await;
    let bodies: Vec<Value> = rig
        .graph
        .received_requests()
        .await
        .expect("recorded")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert!(bodies.contains(&json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "document", "document": {"link": "https://files.example.com/inv-42.pdf", "filename": "invoice-42.pdf", "caption": "Your invoice"}})), "{bodies:?}");
    assert!(
        bodies.contains(
            &json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "image", "image": {"id": "1044", "caption": "The new menu"}})
        ),
        "{bodies:?}"
    );

    // A customer sends a photo: the log keeps Meta's media id, type and checksum.
    let photo = json!({"type": "image", "image": {"id": "770011", "mime_type": "image/jpeg",
        "sha256": "d2f5c1d7e0e2c4b8b1a9", "caption": "Is this broken?"}});
    rig.inbound(to, photo, 1).await;
    let log = get(&rig, "/messages?direction=IN").await;
    let log: Value = log.json().await.expect("json");
    assert_eq!(
        log["messages"][0]["media"],
        json!({"id": "770011", "mimeType": "image/jpeg",
        "sha256": "d2f5c1d7e0e2c4b8b1a9", "caption": "Is this broken?"}),
        "{log}"
    );

    let bearer = format!("Bearer {}", rig.token);
    Mock::given(method("GET"))
        .and(path("/v20.0/770011"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messaging_product": "whatsapp",
            "url": format!("{}/whatsapp_business/attachments/?mid=770011", rig.graph.uri()),
            "mime_type": "image/jpeg", "sha256": "d2f5c1d7e0e2c4b8b1a9", "file_size": 9, "id": "770011"})))
        .mount(&rig.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/whatsapp_business/attachments/"))
        .and(header("authorization", bearer.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"\xff\xd8JPEG!!".to_vec()))
        .mount(&rig.graph)
        .await;
    // Graph's "Object with ID … does not exist" is a 400 with subcode 33.
    let mut missing = crate::sender::graph_error(100, "Unsupported get request");
    missing["error"]["error_subcode"] = json!(33);
    Mock::given(method("GET"))
        .and(path("/v20.0/404404"))
        .respond_with(ResponseTemplate::new(400).set_body_json(missing))
        .mount(&rig.graph)
        .await;
    let file = get(&rig, "/media/770011").await;
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/jpeg");
    assert_eq!(
        file.bytes().await.expect("bytes").as_ref(),
        b"\xff\xd8JPEG!!"
    );
    assert_eq!(get(&rig, "/media/404404").await.status(), 404);
    assert_eq!(get(&rig, "/media/..%2Fme").await.status(), 404);
    let other = rig.app.register_tenant("Other").await;
    let foreign = rig
        .app
        .http
        .get(format!(
            "{}/tenants/{}/media/770011",
            rig.app.base, rig.tenant
        ))
        .bearer_auth(&other.key)
        .send()
        .await
        .expect("request");
    assert_eq!(foreign.status(), 403, "another tenant's key");
}

#[tokio::test]
async fn a_file_too_large_for_a_lambda_response_is_answered_with_a_short_lived_link() {
    let rig = rig(None).await;
    assert!(
        rig.app.state.config.media_bucket.is_some(),
        "the stack has a media bucket"
    );
    let big: Vec<u8> = (0..shared::media::INLINE_MAX + 1024)
        .map(|i| (i % 251) as u8)
        .collect();
    Mock::given(method("GET"))
        .and(path("/v20.0/880022"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"messaging_product": "whatsapp",
            "url": format!("{}/whatsapp_business/attachments/?mid=880022", rig.graph.uri()),
            "mime_type": "video/mp4", "id": "880022"}),
        ))
        .mount(&rig.graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/whatsapp_business/attachments/"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(big.clone()))
        .mount(&rig.graph)
        .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirects
        .get(format!(
            "{}/tenants/{}/media/880022",
            rig.app.base, rig.tenant
        ))
        .bearer_auth(&rig.key)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 302);
    let link = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(link.contains("X-Amz-Signature="), "{link}");
    assert!(link.contains("X-Amz-Expires=300"), "{link}");
    assert!(
        link.contains(&format!("media/{}/880022", rig.tenant)),
        "{link}"
    );
    let file = reqwest::get(&link).await.expect("download");
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.expect("bytes").as_ref(), big.as_slice());
    let tampered = link.replace("880022", "880023");
    assert_ne!(
        reqwest::get(&tampered).await.expect("download").status(),
        200
    );
}
