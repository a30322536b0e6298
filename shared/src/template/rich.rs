//! The richer parts of a bot template, each checked against WhatsApp's own limits: a list
//! menu (sections of rows, each row wired like a button), an interactive header and footer,
//! and a media file.

use serde::{Deserialize, Serialize};

use super::{StateName, TemplateKey};
use crate::{error::ApiError, ids::random_hex};

pub const LIST_BUTTON_MAX: usize = 20;
pub const SECTIONS_MAX: usize = 10;
pub const SECTION_TITLE_MAX: usize = 24;
pub const ROWS_MAX: usize = 10;
pub const ROW_ID_MAX: usize = 200;
pub const ROW_TITLE_MAX: usize = 24;
pub const ROW_DESCRIPTION_MAX: usize = 72;
pub const HEADER_TEXT_MAX: usize = 60;
pub const FOOTER_MAX: usize = 60;
pub const CAPTION_MAX: usize = 1024;
pub const FILENAME_MAX: usize = 240;
pub const LINK_MAX: usize = 2048;

/// Trimmed, non-empty and at most `max` characters (as WhatsApp counts them).
pub(crate) fn bounded(field: &str, s: &str, max: usize) -> Result<String, ApiError> {
    let s = s.trim();
    match s.chars().count() {
        0 => Err(ApiError::invalid(field, "must not be empty")),
        n if n > max => Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters (has {n})"),
        )),
        _ => Ok(s.to_owned()),
    }
}

fn optional(field: &str, s: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => bounded(field, s, max).map(Some),
    }
}

/// A list row: tapped, it branches like a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub next_template_key: Option<TemplateKey>,
    #[serde(default)]
    pub next_state: Option<StateName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    #[serde(default)]
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMenu {
    /// The button that opens the list.
    pub button: String,
    pub sections: Vec<ListSection>,
}

impl ListMenu {
    pub fn rows(&self) -> impl Iterator<Item = &ListRow> {
        self.sections.iter().flat_map(|s| s.rows.iter())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSectionInput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub rows: Vec<ListRowInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRowInput {
    #[serde(default)]
    pub id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub next_template_key: Option<String>,
    #[serde(default)]
    pub next_state: Option<String>,
}

/// Checks a list against Meta's limits. `next` checks (and parses) a row's next template.
pub fn parse_list(
    button: Option<&str>,
    sections: &[ListSectionInput],
    mut next: impl FnMut(&str, &str) -> Result<TemplateKey, ApiError>,
) -> Result<ListMenu, ApiError> {
    let button = bounded("button", button.unwrap_or_default(), LIST_BUTTON_MAX)?;
    if sections.is_empty() {
        return Err(ApiError::invalid(
            "sections",
            format!("interactive_list templates need 1–{SECTIONS_MAX} sections"),
        ));
    }
    if sections.len() > SECTIONS_MAX {
        return Err(ApiError::invalid(
            format!("sections[{SECTIONS_MAX}]"),
            format!("at most {SECTIONS_MAX} sections are allowed (WhatsApp's limit)"),
        ));
    }
    let mut out: Vec<ListSection> = Vec::with_capacity(sections.len());
    let mut total = 0;
    for (s, section) in sections.iter().enumerate() {
        let field = format!("sections[{s}]");
        let title = optional(
            &format!("{field}.title"),
            section.title.as_deref(),
            SECTION_TITLE_MAX,
        )?;
        if title.is_none() && sections.len() > 1 {
            return Err(ApiError::invalid(
                format!("{field}.title"),
                "is required when a list has more than one section",
            ));
        }
        if section.rows.is_empty() {
            return Err(ApiError::invalid(
                format!("{field}.rows"),
                "must not be empty",
            ));
        }
        let mut rows = Vec::with_capacity(section.rows.len());
        for (r, row) in section.rows.iter().enumerate() {
            let field = format!("{field}.rows[{r}]");
            total += 1;
            if total > ROWS_MAX {
                return Err(ApiError::invalid(
                    field,
                    format!("a list has at most {ROWS_MAX} rows in all (WhatsApp's limit)"),
                ));
            }
            let id = match row.id.as_deref() {
                Some(id) => bounded(&format!("{field}.id"), id, ROW_ID_MAX)?,
                None => format!("row_{}", random_hex(6)),
            };
            let seen = out.iter().flat_map(|s| s.rows.iter()).chain(rows.iter());
            if seen.clone().any(|o: &ListRow| o.id == id) {
                return Err(ApiError::invalid(
                    format!("{field}.id"),
                    format!("duplicates another row's id {id:?}"),
                ));
            }
            let title = bounded(&format!("{field}.title"), &row.title, ROW_TITLE_MAX)?;
            let description = optional(
                &format!("{field}.description"),
                row.description.as_deref(),
                ROW_DESCRIPTION_MAX,
            )?;
            let next_template_key = match row.next_template_key.as_deref().filter(|k| !k.is_empty())
            {
                Some(k) => Some(next(&format!("{field}.nextTemplateKey"), k)?),
                None => None,
            };
            let next_state = match row.next_state.as_deref() {
                Some(s) => StateName::parse(&format!("{field}.nextState"), s)?,
                None => None,
            };
            rows.push(ListRow {
                id,
                title,
                description,
                next_template_key,
                next_state,
            });
        }
        out.push(ListSection { title, rows });
    }
    Ok(ListMenu {
        button,
        sections: out,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Document,
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Document => "document",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }

    fn parse(field: &str, s: &str, allowed: &[MediaKind]) -> Result<Self, ApiError> {
        let kind = match s {
            "image" => Self::Image,
            "document" => Self::Document,
            "video" => Self::Video,
            "audio" => Self::Audio,
            _ => return Err(ApiError::invalid(field, bad_kind(s, allowed))),
        };
        if allowed.contains(&kind) {
            Ok(kind)
        } else {
            Err(ApiError::invalid(field, bad_kind(s, allowed)))
        }
    }
}

fn bad_kind(s: &str, allowed: &[MediaKind]) -> String {
    let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
    format!("must be one of {}, not {s:?}", names.join(", "))
}

/// A file WhatsApp fetches from a public `link`, or one uploaded to Meta before (`id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    #[serde(rename = "type")]
    pub kind: MediaKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaInput {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    /// A header's text (headers only).
    #[serde(default)]
    pub text: Option<String>,
}

impl MediaInput {
    /// The file, checked: one of `link` (http(s), as WhatsApp fetches it) or `id` (Meta's
    /// media id); a file name for documents only.
    pub fn parse(&self, field: &str, allowed: &[MediaKind]) -> Result<Media, ApiError> {
        let kind = MediaKind::parse(
            &format!("{field}.type"),
            self.kind.as_deref().unwrap_or_default(),
            allowed,
        )?;
        let (link, id) = match (
            self.link.as_deref().map(str::trim),
            self.id.as_deref().map(str::trim),
        ) {
            (Some(l), None) if !l.is_empty() => {
                if !(l.starts_with("https://") || l.starts_with("http://"))
                    || l.len() > LINK_MAX
                    || l.chars().any(char::is_whitespace)
                {
                    return Err(ApiError::invalid(
                        format!("{field}.link"),
                        format!("must be an http(s) URL of at most {LINK_MAX} characters"),
                    ));
                }
                (Some(l.to_owned()), None)
            }
            (None, Some(i)) if !i.is_empty() => {
                if i.len() > 64 || !i.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ApiError::invalid(
                        format!("{field}.id"),
                        "must be a media id from Meta (digits)",
                    ));
                }
                (None, Some(i.to_owned()))
            }
            _ => {
                return Err(ApiError::invalid(field, "needs exactly one of link or id"));
            }
        };
        let filename = match self.filename.as_deref() {
            Some(f) if kind != MediaKind::Document => {
                let _ = f;
                return Err(ApiError::invalid(
                    format!("{field}.filename"),
                    "is for documents only",
                ));
            }
            f => optional(&format!("{field}.filename"), f, FILENAME_MAX)?,
        };
        Ok(Media {
            kind,
            link,
            id,
            filename,
        })
    }

    /// The caption, checked (audio takes none).
    pub fn caption(&self, field: &str, kind: MediaKind) -> Result<Option<String>, ApiError> {
        let caption = optional(
            &format!("{field}.caption"),
            self.caption.as_deref(),
            CAPTION_MAX,
        )?;
        if caption.is_some() && kind == MediaKind::Audio {
            return Err(ApiError::invalid(
                format!("{field}.caption"),
                "audio takes no caption (WhatsApp refuses one)",
            ));
        }
        Ok(caption)
    }
}

/// An interactive message's header: text, or an image, document or video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
}

/// `{type: text, text}` or `{type: image | document | video, link | id}`.
pub fn parse_header(input: &MediaInput) -> Result<Header, ApiError> {
    if input.kind.as_deref() == Some("text") {
        let text = bounded(
            "header.text",
            input.text.as_deref().unwrap_or_default(),
            HEADER_TEXT_MAX,
        )?;
        return Ok(Header {
            text: Some(text),
            media: None,
        });
    }
    if input.text.is_some() {
        return Err(ApiError::invalid("header.text", "is for text headers only"));
    }
    let media = input.parse(
        "header",
        &[MediaKind::Image, MediaKind::Document, MediaKind::Video],
    )?;
    Ok(Header {
        text: None,
        media: Some(media),
    })
}

pub fn parse_footer(s: Option<&str>) -> Result<Option<String>, ApiError> {
    optional("footer", s, FOOTER_MAX)
}
