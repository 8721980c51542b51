//! The default JSON format: the report's own serialization.

use serde::Serialize;

use super::{Format, FormatContext, Rendered};
use crate::report::{Report, Status, Timestamp};

/// The report as JSON, field for field; callers without the details
/// permission get only `status` and `timestamp`.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonFormat;

#[derive(Serialize)]
struct Minimal {
    status: Status,
    timestamp: Timestamp,
}

impl Format for JsonFormat {
    fn render(&self, report: &Report, ctx: &FormatContext<'_>) -> Rendered {
        if ctx.details() {
            Rendered::json(ctx.status_code(), report)
        } else {
            minimal(ctx.status_code(), report.status, report.timestamp)
        }
    }
}

/// What a caller without the details permission gets.
pub(crate) fn minimal(code: http::StatusCode, status: Status, timestamp: Timestamp) -> Rendered {
    Rendered::json(code, &Minimal { status, timestamp })
}
