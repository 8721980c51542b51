//! What a test binary logs through `tracing`, kept to be searched (for a
//! transition line, or for a password that must not be there).
//!
//! Included with `#[path]` by the harnesses that need it.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// A buffer the `fmt` subscriber writes to.
#[derive(Clone, Default)]
pub struct Logged(Arc<Mutex<Vec<u8>>>);

impl Write for Logged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logged {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// A subscriber writing every event, at every level, into `self`.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish()
    }

    /// The log of the whole binary: one global subscriber, installed on
    /// first use, as checks log from runtime workers and background tasks.
    pub fn global() -> &'static Logged {
        static GLOBAL: OnceLock<Logged> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let logged = Logged::default();
            tracing::subscriber::set_global_default(logged.subscriber())
                .expect("the only global subscriber");
            logged
        })
    }
}
