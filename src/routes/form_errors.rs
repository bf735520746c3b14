//! The error summary of a customer form: the messages of a form's bad fields, in the order
//! the fields appear on the page, each with the id of the field it links to. The template
//! macro `forms::summary` (templates/macros/forms.html.tera) shows them in a box at the top
//! of the form that the page lands on (autofocus; `static/form-errors.js` focuses it too), so
//! a buyer on a phone is brought to the problem instead of the top of a reloaded page.

use std::collections::HashMap;

use serde::Serialize;

/// The key of a message about the whole form rather than one field.
pub const FORM: &str = "form";

/// One line of the summary: the message and, for a field, the id of its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryLine {
    /// `Some("buyer_email")`: the summary links to `#buyer_email`.
    pub field: Option<String>,
    pub message: String,
    /// The message about the whole form (shown with id `form-error`).
    pub whole_form: bool,
}

/// A field of a form, as the summary names and links it.
#[derive(Debug, Clone)]
pub struct Field {
    /// The key of its message in the errors map (`attendees.0.name`).
    pub key: String,
    /// The id of its input (`attendee-0-name`).
    pub id: String,
    /// What the summary calls it ("Ticket 1, attendee's name"); empty: the message alone.
    pub label: String,
}

impl Field {
    pub fn new(key: impl Into<String>, id: impl Into<String>, label: impl Into<String>) -> Field {
        Field {
            key: key.into(),
            id: id.into(),
            label: label.into(),
        }
    }
}

/// The summary of `errors` (field key → message): the whole-form message first, then the
/// fields in page order (`fields`), each named and linked to its input, then any other key
/// (sorted, unlinked), so no message is left out.
pub fn summary(errors: &HashMap<String, String>, fields: &[Field]) -> Vec<SummaryLine> {
    let mut lines = Vec::new();
    if let Some(message) = errors.get(FORM) {
        lines.push(SummaryLine {
            field: None,
            message: message.clone(),
            whole_form: true,
        });
    }
    for f in fields {
        if let Some(message) = errors.get(&f.key) {
            lines.push(SummaryLine {
                field: Some(f.id.clone()),
                message: if f.label.is_empty() {
                    message.clone()
                } else {
                    format!("{}: {message}", f.label)
                },
                whole_form: false,
            });
        }
    }
    let mut rest: Vec<(&String, &String)> = errors
        .iter()
        .filter(|(k, _)| k.as_str() != FORM && !fields.iter().any(|f| &f.key == *k))
        .collect();
    rest.sort();
    lines.extend(rest.into_iter().map(|(_, message)| SummaryLine {
        field: None,
        message: message.clone(),
        whole_form: false,
    }));
    lines
}

/// A page title naming the step, marked as an error page when the form came back with
/// messages (GOV.UK style: "Error: Your details — Concert").
pub fn title(step: &str, event: &str, has_errors: bool) -> String {
    let title = if event.is_empty() {
        step.to_string()
    } else {
        format!("{step} — {event}")
    };
    if has_errors {
        format!("Error: {title}")
    } else {
        title
    }
}
