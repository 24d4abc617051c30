//! Crash points for the exactly-once tests: when `EDDY_CRASH_AT` names a point, the process
//! aborts there (as abruptly as kill -9) the first time it passes it. Unset, a point costs one
//! comparison.

use std::sync::OnceLock;

/// Where a realtime hand-off can be interrupted.
pub const AFTER_UPLOAD: &str = "after_upload";
pub const AFTER_PUBLISH: &str = "after_publish";

pub fn point(name: &str) {
    static WANTED: OnceLock<Option<String>> = OnceLock::new();
    let wanted = WANTED.get_or_init(|| std::env::var("EDDY_CRASH_AT").ok());
    if wanted.as_deref() == Some(name) {
        eprintln!("EDDY_CRASH_AT={name}: aborting here");
        std::process::abort();
    }
}
