//! The reader every area's settings are read with: raw values (trimmed, empty as unset),
//! required and parsed values, and the list of problems reported all together at start.

use super::Problem;

/// Collects typed values and problems while reading variables.
pub(super) struct Reader<'a> {
    pub(super) lookup: &'a dyn Fn(&str) -> Option<String>,
    pub(super) problems: Vec<Problem>,
}

impl Reader<'_> {
    pub(super) fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn problem(&mut self, var: &'static str, message: impl Into<String>) {
        self.problems.push(Problem {
            var,
            message: message.into(),
        });
    }

    pub(super) fn required(&mut self, var: &'static str, expected: &str) -> Option<String> {
        let value = self.raw(var);
        if value.is_none() {
            self.problem(var, format!("is required but not set; expected {expected}"));
        }
        value
    }

    pub(super) fn parsed<T: std::str::FromStr>(
        &mut self,
        var: &'static str,
        default: T,
        expected: &str,
        valid: impl Fn(&T) -> bool,
    ) -> T {
        match self.raw(var) {
            None => default,
            Some(text) => match text.parse::<T>() {
                Ok(value) if valid(&value) => value,
                _ => {
                    self.problem(var, format!("expected {expected}, got {text:?}"));
                    default
                }
            },
        }
    }
}
