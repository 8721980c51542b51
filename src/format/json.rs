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
            Rendered::json(
                ctx.status_code(),
                &Minimal {
                    status: report.status,
                    timestamp: report.timestamp,
                },
            )
        }
    }
}
