//! A registry of live handles, so that a freed, foreign or wrong-kind pointer passed back
//! by C is reported instead of dereferenced.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::status::{AamStatus, Failure};

/// What a live handle points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Model,
    Predictions,
}

static LIVE: Mutex<Option<HashMap<usize, Kind>>> = Mutex::new(None);

fn live() -> MutexGuard<'static, Option<HashMap<usize, Kind>>> {
    // A panic while holding the lock cannot leave the map inconsistent (single inserts).
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Boxes `value`, registers it and returns the raw handle.
pub(crate) fn register<T>(value: T, kind: Kind) -> *mut T {
    let ptr = Box::into_raw(Box::new(value));
    live()
        .get_or_insert_with(HashMap::new)
        .insert(ptr as usize, kind);
    ptr
}

/// Borrows a live handle of `kind`.
///
/// Safety: the registry guarantees `ptr` came from [`register`] and was not released; the
/// caller must not free it concurrently (documented in the header).
pub(crate) fn borrow<'a, T>(ptr: *const T, kind: Kind, name: &str) -> Result<&'a T, Failure> {
    if ptr.is_null() {
        return Err(Failure::new(
            AamStatus::InvalidHandle,
            format!("{name} is NULL"),
        ));
    }
    let found = live()
        .as_ref()
        .and_then(|m| m.get(&(ptr as usize)).copied());
    match found {
        Some(k) if k == kind => Ok(unsafe { &*ptr }),
        Some(_) => Err(Failure::new(
            AamStatus::InvalidHandle,
            format!("{name} is a handle of another kind"),
        )),
        None => Err(Failure::new(
            AamStatus::InvalidHandle,
            format!("{name} is not a live handle (already freed, or not from this library)"),
        )),
    }
}

/// Unregisters and drops a handle; NULL and unknown pointers are ignored (a double free
/// is harmless).
pub(crate) fn release<T>(ptr: *mut T, kind: Kind) {
    if ptr.is_null() {
        return;
    }
    let removed = {
        let mut guard = live();
        match guard.as_mut() {
            Some(m) if m.get(&(ptr as usize)) == Some(&kind) => m.remove(&(ptr as usize)).is_some(),
            _ => false,
        }
    };
    if removed {
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// The number of live handles (models and predictions not yet freed): 0 once a program has
/// freed everything it created. A leak check for integrators' tests.
#[no_mangle]
pub extern "C" fn aam_live_handles() -> usize {
    live().as_ref().map_or(0, HashMap::len)
}
