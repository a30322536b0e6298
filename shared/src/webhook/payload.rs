//! Meta's webhook notification, parsed leniently: unknown fields are ignored, unknown
//! message types are kept with their raw object, and a change that cannot be read is
//! skipped (logged) rather than failing the whole delivery.

use serde::Deserialize;
use serde_json::{Value, value::RawValue};

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

/// A change's value stays unparsed JSON until its field says what it is: one pass over
/// the bytes into the types the field needs, not a generic tree first.
#[derive(Debug, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChangeValue {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Box<RawValue>>,
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
    #[serde(default)]
    image: Option<MediaPart>,
    #[serde(default)]
    document: Option<MediaPart>,
    #[serde(default)]
    video: Option<MediaPart>,
    #[serde(default)]
    audio: Option<MediaPart>,
    #[serde(default)]
    sticker: Option<MediaPart>,
}

#[derive(Debug, Deserialize)]
struct MediaPart {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
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
#[derive(Debug, Clone)]
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
    /// Meta's message object as it came (stored with the message).
    pub raw: Box<RawValue>,
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
    pub fn parse(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let mut f: MessageFields = serde_json::from_str(raw.get())?;
        let meta_type = f.kind.take().unwrap_or_else(|| "unknown".into());
        let mut media_part = match meta_type.as_str() {
            "image" => f.image.take(),
            "document" => f.document.take(),
            "video" => f.video.take(),
            "audio" => f.audio.take(),
            "sticker" => f.sticker.take(),
            _ => None,
        };
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
            _ => {
                let caption = media_part.as_ref().and_then(|m| m.caption.clone());
                (meta_type, caption, None)
            }
        };
        let media = media_part.take().and_then(|m| {
            Some(crate::message::InboundMedia {
                id: m.id?,
                mime_type: m.mime_type,
                sha256: m.sha256,
                caption: m.caption,
                filename: m.filename,
            })
        });
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
        InboundMessage::parse(serde_json::value::to_raw_value(&v).expect("raw")).expect("parses")
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
        let raw: Value = serde_json::from_str(reaction.raw.get()).expect("raw");
        assert_eq!(raw["reaction"]["emoji"], "👍");
        assert!(
            InboundMessage::parse(
                serde_json::value::to_raw_value(&json!({"type": "text"})).expect("raw")
            )
            .is_err(),
            "no id/from"
        );
    }
}
