//! Templates: what a tenant's bot says. Plain text, or up to 3 reply buttons each wired to
//! the next template. Validated at save time against WhatsApp's own limits, so a saved
//! template always sends.

pub mod capture;
pub mod rich;
mod store;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub use store::{
    TemplateDoc, TemplateView, create_or_update, deactivate, existing_keys, get, list, load_active,
    references, replace,
};

pub use crate::ids::{KEY_MAX, STATE_MAX, StateName, TemplateKey};
use crate::{
    error::ApiError,
    ids::random_hex,
    placeholder,
    queue::{Content, ContentKind, JobButton, JobHeader, JobList, JobMedia, JobRow, JobSection},
};
pub use rich::{
    Header, ListMenu, ListRow, ListRowInput, ListSection, ListSectionInput, Media, MediaInput,
    MediaKind,
};

/// WhatsApp's limits for interactive reply buttons.
pub const MAX_BUTTONS: usize = 3;
pub const BUTTON_TITLE_MAX: usize = 20;
pub const BUTTON_ID_MAX: usize = 256;
pub const TEXT_BODY_MAX: usize = 4096;
pub const INTERACTIVE_BODY_MAX: usize = 1024;
pub const DESCRIPTION_MAX: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    Text,
    InteractiveButton,
    InteractiveList,
}

impl TemplateKind {
    fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("text") => Ok(Self::Text),
            Some("interactive_button") => Ok(Self::InteractiveButton),
            Some("interactive_list") => Ok(Self::InteractiveList),
            Some(other) => Err(ApiError::invalid(
                "kind",
                format!("must be text, interactive_button or interactive_list, not {other:?}"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::InteractiveButton => "interactive_button",
            Self::InteractiveList => "interactive_list",
        }
    }

    pub fn body_max(self) -> usize {
        match self {
            Self::Text => TEXT_BODY_MAX,
            Self::InteractiveButton | Self::InteractiveList => INTERACTIVE_BODY_MAX,
        }
    }

    /// Interactive messages: reply buttons or a list, with an optional header and footer.
    pub fn is_interactive(self) -> bool {
        self != Self::Text
    }
}

/// 1–20 characters (Unicode scalar values, as WhatsApp counts them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ButtonTitle(String);

impl ButtonTitle {
    pub fn parse(field: &str, s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        match s.chars().count() {
            0 => Err(ApiError::invalid(field, "must not be empty")),
            n if n > BUTTON_TITLE_MAX => Err(ApiError::invalid(
                field,
                format!("must be at most {BUTTON_TITLE_MAX} characters (has {n})"),
            )),
            _ => Ok(Self(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The payload id WhatsApp echoes back when the button is tapped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ButtonId(String);

impl ButtonId {
    pub fn parse(field: &str, s: &str) -> Result<Self, ApiError> {
        if s.is_empty() {
            Err(ApiError::invalid(field, "must not be empty"))
        } else if s.chars().count() > BUTTON_ID_MAX {
            Err(ApiError::invalid(
                field,
                format!("must be at most {BUTTON_ID_MAX} characters"),
            ))
        } else if s.trim() != s {
            Err(ApiError::invalid(
                field,
                "must not start or end with spaces",
            ))
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    pub fn generate() -> Self {
        Self(format!("btn_{}", random_hex(6)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Button {
    pub id: ButtonId,
    pub title: ButtonTitle,
    #[serde(default)]
    pub next_template_key: Option<TemplateKey>,
    #[serde(default)]
    pub next_state: Option<StateName>,
}

fn valid_variable_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Names of the placeholders in `body`, in order of first appearance.
pub fn placeholders(body: &str) -> Vec<String> {
    placeholder::TEMPLATE.names(body)
}

/// Fills `{{name}}` placeholders (names are `[A-Za-z0-9_.-]+`); `value` returns None for an
/// unknown one, which renders as `missing` decides (auto-replies render it empty; the send
/// API refuses it before).
pub fn render(body: &str, value: impl Fn(&str) -> Option<String>) -> String {
    placeholder::TEMPLATE.fill(body, value)
}

/// A template body as sent: `POST` and `PUT` bodies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInput {
    #[serde(default)]
    pub key: Option<String>,
    pub body: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub buttons: Option<Vec<ButtonInput>>,
    #[serde(default)]
    pub variables: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    /// `interactive_list`: the text of the button that opens the list.
    #[serde(default)]
    pub button: Option<String>,
    #[serde(default)]
    pub sections: Option<Vec<ListSectionInput>>,
    /// Interactive templates: `{type: text, text}` or `{type: image | document | video,
    /// link | id}`.
    #[serde(default)]
    pub header: Option<MediaInput>,
    #[serde(default)]
    pub footer: Option<String>,
    /// Text templates: a file sent with the body as its caption.
    #[serde(default)]
    pub media: Option<MediaInput>,
    #[serde(default)]
    pub capture: Option<capture::CaptureInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonInput {
    #[serde(default)]
    pub id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub next_template_key: Option<String>,
    #[serde(default)]
    pub next_state: Option<String>,
}

/// A bot template as the conversation uses it, validated: no storage fields (id, tenant,
/// version, timestamps live in [`TemplateDoc`]), so the engine and its tests build it from
/// an input alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub key: TemplateKey,
    pub kind: TemplateKind,
    pub body: String,
    pub buttons: Vec<Button>,
    pub variables: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListMenu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    /// Asks a question: the customer's next free-text message is checked and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<capture::Capture>,
}

impl Template {
    /// What the customer can tap on this template: (id, next template, next state) of each
    /// reply button and list row.
    pub fn choices(&self) -> impl Iterator<Item = Choice<'_>> {
        self.buttons
            .iter()
            .map(|b| {
                (
                    b.id.as_str(),
                    b.next_template_key.as_ref(),
                    b.next_state.as_ref(),
                )
            })
            .chain(self.list.iter().flat_map(|l| l.rows()).map(|r| {
                (
                    r.id.as_str(),
                    r.next_template_key.as_ref(),
                    r.next_state.as_ref(),
                )
            }))
    }

    /// The message this template sends, its `{{placeholders}}` filled by `variable`.
    pub fn render(&self, variable: impl Fn(&str) -> Option<String>) -> Content {
        let job_media = |m: &Media| JobMedia {
            kind: m.kind.as_str().to_owned(),
            link: m.link.clone(),
            id: m.id.clone(),
            filename: m.filename.clone(),
        };
        let kind = match (self.kind, &self.media) {
            (TemplateKind::Text, None) => ContentKind::Text,
            (TemplateKind::Text, Some(_)) => ContentKind::Media,
            (TemplateKind::InteractiveButton, _) => ContentKind::InteractiveButton,
            (TemplateKind::InteractiveList, _) => ContentKind::InteractiveList,
        };
        Content {
            kind,
            text: render(&self.body, variable),
            buttons: self
                .buttons
                .iter()
                .map(|b| JobButton {
                    id: b.id.as_str().to_owned(),
                    title: b.title.as_str().to_owned(),
                })
                .collect(),
            list: self.list.as_ref().map(|l| JobList {
                button: l.button.clone(),
                sections: l
                    .sections
                    .iter()
                    .map(|s| JobSection {
                        title: s.title.clone(),
                        rows: s
                            .rows
                            .iter()
                            .map(|r| JobRow {
                                id: r.id.clone(),
                                title: r.title.clone(),
                                description: r.description.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            header: self.header.as_ref().map(|h| JobHeader {
                text: h.text.clone(),
                media: h.media.as_ref().map(job_media),
            }),
            footer: self.footer.clone(),
            media: self.media.as_ref().map(job_media),
            template: None,
        }
    }
}

/// A tap target: (id, next template, next state).
pub type Choice<'t> = (&'t str, Option<&'t TemplateKey>, Option<&'t StateName>);

impl TemplateInput {
    /// The keys this input's buttons point to, for the caller to look up.
    pub fn next_keys(&self) -> Result<Vec<TemplateKey>, ApiError> {
        let mut keys = Vec::new();
        for (i, b) in self.buttons.iter().flatten().enumerate() {
            if let Some(k) = b.next_template_key.as_deref().filter(|k| !k.is_empty()) {
                keys.push(TemplateKey::parse(
                    &format!("buttons[{i}].nextTemplateKey"),
                    k,
                )?);
            }
        }
        if let Some(c) = &self.capture {
            keys.extend(c.keys()?);
        }
        for (s, section) in self.sections.iter().flatten().enumerate() {
            for (r, row) in section.rows.iter().enumerate() {
                if let Some(k) = row.next_template_key.as_deref().filter(|k| !k.is_empty()) {
                    keys.push(TemplateKey::parse(
                        &format!("sections[{s}].rows[{r}].nextTemplateKey"),
                        k,
                    )?);
                }
            }
        }
        Ok(keys)
    }

    /// Validates everything. `own_key` is the key being saved (a button may point to its
    /// own template); `existing` holds this tenant's active keys among [`Self::next_keys`].
    pub fn validate(
        &self,
        own_key: &TemplateKey,
        existing: &HashSet<TemplateKey>,
    ) -> Result<Template, ApiError> {
        let kind = TemplateKind::parse(self.kind.as_deref())?;

        let body = self.body.trim();
        let len = body.chars().count();
        if len == 0 {
            return Err(ApiError::invalid("body", "must not be empty"));
        }
        if len > kind.body_max() {
            return Err(ApiError::invalid(
                "body",
                format!(
                    "must be at most {} characters for {} templates (has {len})",
                    kind.body_max(),
                    kind.as_str()
                ),
            ));
        }

        let inputs = self.buttons.as_deref().unwrap_or_default();
        match kind {
            TemplateKind::Text if !inputs.is_empty() => {
                return Err(ApiError::invalid(
                    "buttons",
                    "must be empty for text templates (use kind interactive_button)",
                ));
            }
            TemplateKind::InteractiveButton if inputs.is_empty() => {
                return Err(ApiError::invalid(
                    "buttons",
                    "interactive_button templates need 1–3 buttons",
                ));
            }
            TemplateKind::InteractiveList if !inputs.is_empty() => {
                return Err(ApiError::invalid(
                    "buttons",
                    "must be empty for interactive_list templates (rows go in sections)",
                ));
            }
            TemplateKind::InteractiveButton if inputs.len() > MAX_BUTTONS => {
                return Err(ApiError::invalid(
                    format!("buttons[{MAX_BUTTONS}]"),
                    format!("at most {MAX_BUTTONS} buttons are allowed (WhatsApp's limit)"),
                ));
            }
            _ => {}
        }

        let mut buttons: Vec<Button> = Vec::with_capacity(inputs.len());
        for (i, b) in inputs.iter().enumerate() {
            let title = ButtonTitle::parse(&format!("buttons[{i}].title"), &b.title)?;
            if buttons
                .iter()
                .any(|o| o.title.0.to_lowercase() == title.0.to_lowercase())
            {
                return Err(ApiError::invalid(
                    format!("buttons[{i}].title"),
                    format!("duplicates another button's title {:?}", title.0),
                ));
            }
            let id = match b.id.as_deref() {
                Some(id) => ButtonId::parse(&format!("buttons[{i}].id"), id)?,
                None => ButtonId::generate(),
            };
            if buttons.iter().any(|o| o.id == id) {
                return Err(ApiError::invalid(
                    format!("buttons[{i}].id"),
                    format!("duplicates another button's id {:?}", id.0),
                ));
            }
            let field = format!("buttons[{i}].nextTemplateKey");
            let next_template_key = match b.next_template_key.as_deref().filter(|k| !k.is_empty()) {
                Some(k) => {
                    let k = TemplateKey::parse(&field, k)?;
                    if &k != own_key && !existing.contains(&k) {
                        return Err(ApiError::invalid(
                            field,
                            format!("template {k} does not exist (or is inactive) for this tenant"),
                        ));
                    }
                    Some(k)
                }
                None => None,
            };
            let next_state = match b.next_state.as_deref() {
                Some(s) => StateName::parse(&format!("buttons[{i}].nextState"), s)?,
                None => None,
            };
            buttons.push(Button {
                id,
                title,
                next_template_key,
                next_state,
            });
        }

        let mut variables: Vec<String> = Vec::new();
        for (i, v) in self.variables.iter().flatten().enumerate() {
            let v = v.trim();
            if !valid_variable_name(v) {
                return Err(ApiError::invalid(
                    format!("variables[{i}]"),
                    "must be 1–64 characters of letters, digits, '_', '-' or '.'",
                ));
            }
            if !variables.iter().any(|x| x == v) {
                variables.push(v.to_owned());
            }
        }
        for p in placeholders(body) {
            if !variables.contains(&p) {
                variables.push(p);
            }
        }

        let description = match self.description.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) if d.chars().count() > DESCRIPTION_MAX => {
                return Err(ApiError::invalid(
                    "description",
                    format!("must be at most {DESCRIPTION_MAX} characters"),
                ));
            }
            Some(d) => Some(d.to_owned()),
        };

        let list = match (kind, &self.sections) {
            (TemplateKind::InteractiveList, sections) => Some(rich::parse_list(
                self.button.as_deref(),
                sections.as_deref().unwrap_or_default(),
                |field, k| {
                    let k = TemplateKey::parse(field, k)?;
                    if &k != own_key && !existing.contains(&k) {
                        return Err(ApiError::invalid(
                            field,
                            format!("template {k} does not exist (or is inactive) for this tenant"),
                        ));
                    }
                    Ok(k)
                },
            )?),
            (_, Some(_)) => {
                return Err(ApiError::invalid(
                    "sections",
                    "is for interactive_list templates only",
                ));
            }
            (_, None) if self.button.is_some() => {
                return Err(ApiError::invalid(
                    "button",
                    "is for interactive_list templates only",
                ));
            }
            _ => None,
        };
        let header = match &self.header {
            Some(h) if kind.is_interactive() => Some(rich::parse_header(h)?),
            Some(_) => {
                return Err(ApiError::invalid(
                    "header",
                    "is for interactive templates only (text templates may carry media)",
                ));
            }
            None => None,
        };
        let footer = match self.footer.as_deref() {
            Some(_) if !kind.is_interactive() => {
                return Err(ApiError::invalid(
                    "footer",
                    "is for interactive templates only",
                ));
            }
            f => rich::parse_footer(f)?,
        };
        let media = match &self.media {
            Some(m) if kind == TemplateKind::Text => {
                if m.caption.is_some() {
                    return Err(ApiError::invalid(
                        "media.caption",
                        "a template's body is its caption",
                    ));
                }
                if len > rich::CAPTION_MAX {
                    return Err(ApiError::invalid(
                        "body",
                        format!(
                            "is the media's caption: at most {} characters (has {len})",
                            rich::CAPTION_MAX
                        ),
                    ));
                }
                // Audio takes no caption, and a template always has a body.
                Some(m.parse(
                    "media",
                    &[MediaKind::Image, MediaKind::Document, MediaKind::Video],
                )?)
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "media",
                    "is for text templates (interactive templates take a header)",
                ));
            }
            None => None,
        };

        let capture = match &self.capture {
            Some(c) => Some(c.validate(|field, k| {
                let k = TemplateKey::parse(field, k)?;
                if &k != own_key && !existing.contains(&k) {
                    return Err(ApiError::invalid(
                        field,
                        format!("template {k} does not exist (or is inactive) for this tenant"),
                    ));
                }
                Ok(k)
            })?),
            None => None,
        };

        Ok(Template {
            capture,
            key: own_key.clone(),
            kind,
            body: body.to_owned(),
            buttons,
            variables,
            description,
            is_active: self.is_active.unwrap_or(true),
            list,
            header,
            footer,
            media,
        })
    }
}

#[cfg(test)]
mod tests;
