//! Meta's webhook notification, parsed leniently: unknown fields are ignored, unknown
//! message types are kept with their raw object, and a change that cannot be read is
//! skipped (logged) rather than failing the whole delivery.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct Notification {
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChangeValue {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Value>,
    #[serde(default)]
    pub statuses: Vec<StatusValue>,
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub phone_number_id: Option<String>,
    #[serde(default)]
    pub display_phone_number: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StatusValue {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<GraphError>,
}

#[derive(Debug, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

/// The fields of an inbound message the backend reads.
#[derive(Debug, Deserialize)]
struct MessageFields {
    id: String,
    from: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<TextPart>,
    #[serde(default)]
    interactive: Option<InteractivePart>,
    #[serde(default)]
    button: Option<LegacyButton>,
}

#[derive(Debug, Deserialize)]
struct TextPart {
    #[serde(default)]
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InteractivePart {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    button_reply: Option<Reply>,
    #[serde(default)]
    list_reply: Option<Reply>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    id: String,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LegacyButton {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// An inbound message, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub wamid: String,
    pub from: String,
    /// Unix seconds, as Meta sends it.
    pub timestamp: Option<i64>,
    /// `text`, `button_reply`, `list_reply`, `button`, or Meta's type (`image`, ...).
    pub kind: String,
    /// Text, button title or media caption.
    pub body: Option<String>,
    pub payload_id: Option<String>,
    /// An image, document, video, audio or sticker.
    pub media: Option<crate::message::InboundMedia>,
    pub raw: Value,
}

/// Types the conversation engine answers. Reactions, system notices and the like are
/// stored but never trigger a reply (a 👍 should not get the fallback).
const CONVERSATIONAL: &[&str] = &[
    "text",
    "button_reply",
    "list_reply",
    "button",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
];

impl InboundMessage {
    pub fn parse(raw: Value) -> Result<Self, serde_json::Error> {
        let f = MessageFields::deserialize(&raw)?;
        let meta_type = f.kind.unwrap_or_else(|| "unknown".into());
        let (kind, body, payload_id) = match meta_type.as_str() {
            "text" => ("text".to_owned(), f.text.and_then(|t| t.body), None),
            "interactive" => match f.interactive {
                Some(InteractivePart {
                    button_reply: Some(r),
                    ..
                }) => ("button_reply".to_owned(), r.title, Some(r.id)),
                Some(InteractivePart {
                    list_reply: Some(r),
                    ..
                }) => ("list_reply".to_owned(), r.title, Some(r.id)),
                Some(i) => (i.kind.unwrap_or_else(|| "interactive".into()), None, None),
                None => ("interactive".to_owned(), None, None),
            },
            "button" => match f.button {
                Some(b) => ("button".to_owned(), b.text, b.payload),
                None => ("button".to_owned(), None, None),
            },
            other => {
                let caption = raw
                    .get(other)
                    .and_then(|m| m.get("caption"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (other.to_owned(), caption, None)
            }
        };
        let media = match kind.as_str() {
            "image" | "document" | "video" | "audio" | "sticker" => {
                let m = &raw[kind.as_str()];
                let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
                text("id").map(|id| crate::message::InboundMedia {
                    id,
                    mime_type: text("mime_type"),
                    sha256: text("sha256"),
                    caption: text("caption"),
                    filename: text("filename"),
                })
            }
            _ => None,
        };
        Ok(Self {
            wamid: f.id,
            from: f.from,
            timestamp: f.timestamp.and_then(|t| t.parse().ok()),
            kind,
            body,
            payload_id,
            media,
            raw,
        })
    }

    pub fn is_conversational(&self) -> bool {
        CONVERSATIONAL.contains(&self.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> InboundMessage {
        InboundMessage::parse(v).expect("parses")
    }

    #[test]
    fn reads_every_inbound_kind() {
        let t = parse(
            json!({"from": "1", "id": "wamid.A", "timestamp": "1700000000", "type": "text", "text": {"body": "hi"}}),
        );
        assert_eq!(
            (
                t.kind.as_str(),
                t.body.as_deref(),
                t.payload_id.as_deref(),
                t.timestamp
            ),
            ("text", Some("hi"), None, Some(1_700_000_000))
        );
        let b = parse(
            json!({"from": "1", "id": "w", "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "btn_1", "title": "Yes"}}}),
        );
        assert_eq!(
            (b.kind.as_str(), b.body.as_deref(), b.payload_id.as_deref()),
            ("button_reply", Some("Yes"), Some("btn_1"))
        );
        let l = parse(
            json!({"from": "1", "id": "w", "type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "row_2", "title": "Two", "description": "d"}}}),
        );
        assert_eq!(
            (l.kind.as_str(), l.payload_id.as_deref()),
            ("list_reply", Some("row_2"))
        );
        let legacy = parse(
            json!({"from": "1", "id": "w", "type": "button", "button": {"payload": "P", "text": "Tap"}}),
        );
        assert_eq!(
            (
                legacy.kind.as_str(),
                legacy.body.as_deref(),
                legacy.payload_id.as_deref()
            ),
            ("button", Some("Tap"), Some("P"))
        );
        let img = parse(
            json!({"from": "1", "id": "w", "type": "image", "image": {"id": "media", "caption": "look", "mime_type": "image/jpeg"}}),
        );
        assert_eq!(
            (img.kind.as_str(), img.body.as_deref()),
            ("image", Some("look"))
        );
        assert!(img.is_conversational());
        let media = img.media.as_ref().expect("media");
        assert_eq!(
            (media.id.as_str(), media.mime_type.as_deref()),
            ("media", Some("image/jpeg"))
        );
        let reaction = parse(
            json!({"from": "1", "id": "w", "type": "reaction", "reaction": {"message_id": "x", "emoji": "👍"}}),
        );
        assert_eq!(reaction.kind, "reaction");
        assert!(!reaction.is_conversational());
        assert_eq!(reaction.raw["reaction"]["emoji"], "👍");
        assert!(
            InboundMessage::parse(json!({"type": "text"})).is_err(),
            "no id/from"
        );
    }
}
