//! Guided input: a template that asks a question and keeps the answer. After it is sent,
//! the customer's next free-text message is checked; a valid answer is stored in the
//! conversation's variables and the bot continues, an invalid one is asked again.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{StateName, TemplateKey};
use crate::error::ApiError;

pub const ATTEMPTS_DEFAULT: u32 = 3;
pub const ATTEMPTS_MAX: u32 = 10;
pub const PATTERN_MAX: usize = 500;
pub const ANSWER_MAX: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureKind {
    Text,
    Number,
    Email,
    Phone,
    Date,
    Regex,
}

impl CaptureKind {
    fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "text" => Self::Text,
            "number" => Self::Number,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "date" => Self::Date,
            "regex" => Self::Regex,
            other => {
                return Err(ApiError::invalid(
                    "capture.type",
                    format!("must be text, number, email, phone, date or regex, not {other:?}"),
                ));
            }
        })
    }

    /// What the built-in retry prompt asks for.
    pub fn hint(self) -> &'static str {
        match self {
            Self::Text => "an answer",
            Self::Number => "a number",
            Self::Email => "an email address",
            Self::Phone => "a phone number",
            Self::Date => "a date (YYYY-MM-DD)",
            Self::Regex => "an answer in the expected format",
        }
    }
}

/// A validated capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capture {
    pub variable: String,
    #[serde(rename = "type")]
    pub kind: CaptureKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Text: length; number: value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_template_key: Option<TemplateKey>,
    pub max_attempts: u32,
    pub next_template_key: TemplateKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_state: Option<StateName>,
}

// min/max are finite (checked on save), so equality is total.
impl Eq for Capture {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureInput {
    pub variable: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub retry_template_key: Option<String>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    pub next_template_key: String,
    #[serde(default)]
    pub next_state: Option<String>,
}

impl CaptureInput {
    /// The template keys it names, for the caller to look up.
    pub fn keys(&self) -> Result<Vec<TemplateKey>, ApiError> {
        let mut keys = vec![TemplateKey::parse(
            "capture.nextTemplateKey",
            &self.next_template_key,
        )?];
        if let Some(k) = self.retry_template_key.as_deref().filter(|k| !k.is_empty()) {
            keys.push(TemplateKey::parse("capture.retryTemplateKey", k)?);
        }
        Ok(keys)
    }

    /// `known` checks (and parses) a key the capture points to.
    pub fn validate(
        &self,
        mut known: impl FnMut(&str, &str) -> Result<TemplateKey, ApiError>,
    ) -> Result<Capture, ApiError> {
        let variable = self.variable.trim();
        if variable.is_empty()
            || variable.len() > 64
            || !variable
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ApiError::invalid(
                "capture.variable",
                "must be 1–64 letters, digits or '_' (it is used as {{vars.<name>}})",
            ));
        }
        let kind = CaptureKind::parse(self.kind.trim())?;
        let pattern = match (kind, self.pattern.as_deref().map(str::trim)) {
            (CaptureKind::Regex, None | Some("")) => {
                return Err(ApiError::invalid(
                    "capture.pattern",
                    "is required for type regex",
                ));
            }
            (CaptureKind::Regex, Some(p)) => {
                if p.chars().count() > PATTERN_MAX {
                    return Err(ApiError::invalid(
                        "capture.pattern",
                        format!("must be at most {PATTERN_MAX} characters"),
                    ));
                }
                compile(p).map_err(|e| {
                    ApiError::invalid("capture.pattern", format!("invalid regex: {e}"))
                })?;
                Some(p.to_owned())
            }
            (_, Some(p)) if !p.is_empty() => {
                return Err(ApiError::invalid(
                    "capture.pattern",
                    "is for type regex only",
                ));
            }
            _ => None,
        };
        for (field, v) in [("capture.min", self.min), ("capture.max", self.max)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(ApiError::invalid(field, "must be a finite number"));
            }
            if v.is_some() && !matches!(kind, CaptureKind::Text | CaptureKind::Number) {
                return Err(ApiError::invalid(
                    field,
                    "is for types text and number only",
                ));
            }
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(ApiError::invalid("capture.min", "must not exceed max"));
        }
        let max_attempts = self.max_attempts.unwrap_or(ATTEMPTS_DEFAULT);
        if !(1..=ATTEMPTS_MAX).contains(&max_attempts) {
            return Err(ApiError::invalid(
                "capture.maxAttempts",
                format!("must be 1–{ATTEMPTS_MAX}"),
            ));
        }
        let retry_template_key = match self.retry_template_key.as_deref().filter(|k| !k.is_empty())
        {
            Some(k) => Some(known("capture.retryTemplateKey", k)?),
            None => None,
        };
        Ok(Capture {
            variable: variable.to_owned(),
            kind,
            pattern,
            min: self.min,
            max: self.max,
            retry_template_key,
            max_attempts,
            next_template_key: known("capture.nextTemplateKey", &self.next_template_key)?,
            next_state: match self.next_state.as_deref() {
                Some(s) => StateName::parse("capture.nextState", s)?,
                None => None,
            },
        })
    }
}

/// The whole answer must match (anchored), case-sensitive as written.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(256 * 1024)
        .build()
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[^\s@]{1,64}@[^\s@]{1,255}\.[A-Za-z]{2,63}$").expect("static regex")
});

impl Capture {
    /// The answer as stored, or `None` when it does not fit. `pattern` is this capture's
    /// compiled regex (type regex), compiled once per bot configuration.
    pub fn check(&self, answer: &str, pattern: Option<&Regex>) -> Option<String> {
        let a = answer.trim();
        if a.is_empty() || a.chars().count() > ANSWER_MAX {
            return None;
        }
        let within = |v: f64| self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m);
        match self.kind {
            CaptureKind::Text => within(a.chars().count() as f64).then(|| a.to_owned()),
            CaptureKind::Number => {
                let n: f64 = a.replace(',', ".").parse().ok()?;
                (n.is_finite() && within(n)).then(|| a.to_owned())
            }
            CaptureKind::Email => EMAIL.is_match(a).then(|| a.to_lowercase()),
            CaptureKind::Phone => {
                let digits: String = a
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
                    .collect();
                let d = digits.strip_prefix('+').unwrap_or(&digits);
                ((7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| d.to_owned())
            }
            CaptureKind::Date => parse_date(a),
            CaptureKind::Regex => pattern?.is_match(a).then(|| a.to_owned()),
        }
    }
}

/// `YYYY-MM-DD` or `DD/MM/YYYY` (also with `-` or `.`) → `YYYY-MM-DD`, checked.
fn parse_date(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
    let (y, m, d): (u32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    ((1000..=9999).contains(&y) && (1..=days).contains(&d)).then(|| format!("{y:04}-{m:02}-{d:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(kind: CaptureKind) -> Capture {
        Capture {
            variable: "v".into(),
            kind,
            pattern: None,
            min: None,
            max: None,
            retry_template_key: None,
            max_attempts: 3,
            next_template_key: TemplateKey::parse("k", "next").expect("key"),
            next_state: None,
        }
    }

    #[test]
    fn answers_are_checked_by_type() {
        let number = Capture {
            min: Some(1.0),
            ..capture(CaptureKind::Number)
        };
        assert_eq!(
            number.check(" 12345678 ", None).as_deref(),
            Some("12345678")
        );
        assert_eq!(number.check("12ab", None), None);
        assert_eq!(number.check("0", None), None, "below min");
        let email = capture(CaptureKind::Email);
        assert_eq!(
            email.check("Ana@Example.com", None).as_deref(),
            Some("ana@example.com")
        );
        assert_eq!(email.check("ana@", None), None);
        let phone = capture(CaptureKind::Phone);
        assert_eq!(
            phone.check("+34 600-111 222", None).as_deref(),
            Some("34600111222")
        );
        assert_eq!(phone.check("12", None), None);
        let date = capture(CaptureKind::Date);
        assert_eq!(
            date.check("29/02/2024", None).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(date.check("2023-02-29", None), None);
        let re = compile("[A-Z]{2}[0-9]{4}").expect("regex");
        let code = capture(CaptureKind::Regex);
        assert_eq!(code.check("AB1234", Some(&re)).as_deref(), Some("AB1234"));
        assert_eq!(code.check("AB12345", Some(&re)), None, "anchored");
        let text = Capture {
            min: Some(2.0),
            max: Some(5.0),
            ..capture(CaptureKind::Text)
        };
        assert_eq!(text.check("a", None), None);
        assert_eq!(text.check("hello", None).as_deref(), Some("hello"));
    }
}
