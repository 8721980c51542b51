//! What application code changes at run time: pushed components, draining,
//! maintenance.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::report::{Component, Notice};

/// Run-time state that the handle writes and reports read.
#[derive(Default)]
pub(crate) struct Lifecycle {
    draining: AtomicBool,
    maintenance: Mutex<Option<Notice>>,
    pushed: Mutex<BTreeMap<String, Component>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; stay usable if something did.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lifecycle {
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::Relaxed);
    }

    pub(crate) fn maintenance(&self) -> Option<Notice> {
        lock(&self.maintenance).clone()
    }

    pub(crate) fn set_maintenance(&self, notice: Option<Notice>) {
        *lock(&self.maintenance) = notice;
    }

    pub(crate) fn pushed(&self) -> BTreeMap<String, Component> {
        lock(&self.pushed).clone()
    }

    pub(crate) fn pushed_one(&self, name: &str) -> Option<Component> {
        lock(&self.pushed).get(name).cloned()
    }

    pub(crate) fn push(&self, name: String, component: Component) {
        lock(&self.pushed).insert(name, component);
    }

    pub(crate) fn remove(&self, name: &str) {
        lock(&self.pushed).remove(name);
    }
}
