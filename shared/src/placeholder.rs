//! `{{name}}` placeholders, in our templates' bodies and in Meta's approved templates. Found
//! by a scan rather than a regex, so the functions that only list or fill them (`send`,
//! `templates`) link no regex engine.

use std::ops::Range;

/// Which bytes a placeholder's name is made of; spaces are allowed inside the braces.
#[derive(Debug, Clone, Copy)]
pub struct Syntax(fn(u8) -> bool);

/// Our templates: `{{name}}`, `{{vars.city}}`, `{{first-name}}`.
pub const TEMPLATE: Syntax =
    Syntax(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));

/// Meta's templates: `{{1}}`, or `{{first_name}}` in templates with named parameters.
pub const META: Syntax = Syntax(|b| b.is_ascii_alphanumeric() || b == b'_');

impl Syntax {
    /// Each placeholder of `text`: its byte range and its name, left to right, not
    /// overlapping. (An iterator: filling a reply's body, on the message path, collects
    /// nothing.)
    pub fn spans(self, text: &str) -> impl Iterator<Item = (Range<usize>, &str)> {
        let mut from = 0;
        std::iter::from_fn(move || {
            while let Some(found) = text[from..].find("{{") {
                let start = from + found;
                match self.at(text, start) {
                    Some((end, name)) => {
                        from = end;
                        return Some((start..end, name));
                    }
                    // `{` is one byte: the next try starts at the following brace, so
                    // `{{{a}}` holds `{{a}}`.
                    None => from = start + 1,
                }
            }
            None
        })
    }

    /// The placeholder opening at `start`: where it ends, and its name.
    fn at(self, text: &str, start: usize) -> Option<(usize, &str)> {
        let inner = text.get(start + 2..)?.trim_start();
        let len = inner.bytes().take_while(|b| (self.0)(*b)).count();
        if len == 0 {
            return None;
        }
        let rest = inner[len..].trim_start().strip_prefix("}}")?;
        Some((text.len() - rest.len(), &inner[..len]))
    }

    /// Distinct names, in order of first appearance.
    pub fn names(self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, name) in self.spans(text) {
            if !out.iter().any(|p| p == name) {
                out.push(name.to_owned());
            }
        }
        out
    }

    /// `text` with each placeholder replaced by `value` of its name (nothing when `None`).
    pub fn fill(self, text: &str, value: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (span, name) in self.spans(text) {
            out.push_str(&text[last..span.start]);
            if let Some(v) = value(name) {
                out.push_str(&v);
            }
            last = span.end;
        }
        out.push_str(&text[last..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_placeholders_are_named_or_numbered_with_spaces_allowed_inside_the_braces() {
        let text =
            "Hi {{1}}, {{ first_name }} {{{2}}} {{}} {{a b}} {{3}\u{a0}{{\u{a0}4\u{a0}}}ñ{{1}}";
        let spans: Vec<&str> = META.spans(text).map(|(_, n)| n).collect();
        assert_eq!(spans, ["1", "first_name", "2", "4", "1"]);
        assert_eq!(META.names(text), ["1", "first_name", "2", "4"]);
        for (span, _) in META.spans(text) {
            assert!(text[span].starts_with("{{"));
        }
        assert!(META.spans("{{").next().is_none() && META.spans("x {{ 1").next().is_none());
        assert!(
            META.spans("{{vars.city}}").next().is_none(),
            "no dots in Meta's names"
        );
    }

    #[test]
    fn template_names_also_take_dots_and_dashes() {
        let text = "{{vars.city}} {{ first-name }} {{a/b}} {{{x}}} {{x}} {{ ümlaut }}";
        assert_eq!(TEMPLATE.names(text), ["vars.city", "first-name", "x"]);
        assert_eq!(
            TEMPLATE.fill(text, |n| (n == "x").then(|| "X".to_owned())),
            "  {{a/b}} {X} X {{ ümlaut }}"
        );
        assert_eq!(TEMPLATE.fill("no braces", |_| None), "no braces");
        assert_eq!(TEMPLATE.fill("ends {{open", |_| None), "ends {{open");
    }
}
