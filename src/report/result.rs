//! What one run of a check found.

use serde_json::Value;

use super::Status;

/// Longest error message kept from a check, in bytes; longer ones are cut
/// at a character boundary and end with `…`.
pub const MAX_ERROR_LEN: usize = 1024;

/// What one run of a check found.
///
/// ```
/// use tower_status::check::CheckResult;
/// use tower_status::Status;
///
/// let r = CheckResult::down("connection refused").with_details(serde_json::json!({"retries": 3}));
/// assert_eq!(r.status, Status::Down);
/// assert_eq!(r.error.as_deref(), Some("connection refused"));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CheckResult {
    /// `Ok`, `Degraded` or `Down`.
    pub status: Status,
    /// Why the component is not healthy.
    pub error: Option<String>,
    /// Free-form details shown in the report.
    pub details: Option<Value>,
    /// A measured value (IETF health check `observedValue`).
    pub observed_value: Option<Value>,
    /// Unit of the measured value (IETF health check `observedUnit`).
    pub observed_unit: Option<String>,
}

impl CheckResult {
    /// A healthy result.
    #[must_use]
    pub fn ok() -> Self {
        Self::new(Status::Ok, None)
    }

    /// A degraded result: working, with a problem.
    #[must_use]
    pub fn degraded(error: impl Into<String>) -> Self {
        Self::new(Status::Degraded, Some(error.into()))
    }

    /// An unhealthy result.
    #[must_use]
    pub fn down(error: impl Into<String>) -> Self {
        Self::new(Status::Down, Some(error.into()))
    }

    /// A result with the given status and error message.
    #[must_use]
    pub fn new(status: Status, error: Option<String>) -> Self {
        Self {
            status,
            error,
            details: None,
            observed_value: None,
            observed_unit: None,
        }
    }

    /// Adds details shown with the component.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds a measured value and its unit (`"ms"`, `"percent"`, ...).
    #[must_use]
    pub fn with_observed(mut self, value: impl Into<Value>, unit: impl Into<String>) -> Self {
        self.observed_value = Some(value.into());
        self.observed_unit = Some(unit.into());
        self
    }
}

/// Cuts `text` to at most [`MAX_ERROR_LEN`] bytes at a character boundary.
pub(crate) fn truncate_error(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_at_a_char_boundary() {
        let cut = truncate_error("é".repeat(5000));
        assert!(cut.len() <= MAX_ERROR_LEN);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_error("short".into()), "short");
    }
}
