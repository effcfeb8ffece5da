//! The ONNX Runtime shared library and the process's one ort environment.
//!
//! ort is built with `load-dynamic`: `libonnxruntime.so` is opened at run time. This module decides
//! where from, in this order:
//! 1. `ORT_DYLIB_PATH`, when set (and only it: an explicit choice is never second-guessed);
//! 2. `lib/libonnxruntime.so` next to the executable (deployments ship it there);
//! 3. `third_party/onnxruntime/libonnxruntime.so` in the source tree fallwatch was built from
//!    (development; `scripts/setup.sh` puts it there).
//!
//! What ort itself does, verified with ort 2.0.0-rc.15: when the library is missing, is not a
//! shared library, lacks `OrtGetApiBase` or is older than 1.31 (1.20.1 tried), `ort::init()` and
//! every other ort call **panic** ("Failed to load ONNX Runtime dylib: ..."); `ort::init_from(path)`
//! returns the same failures as errors. So nothing in fallwatch touches ort before [`environment`]
//! has loaded the library through `ort::init_from`; a failure becomes one
//! [`ErrorKind::Resource`](crate::ErrorKind::Resource) line naming the paths tried and the fix.
//!
//! ort allows one environment per process (a second `build()` fails even after the first was
//! dropped), so the environment is kept for the life of the process: the only global state of the
//! detector.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::err;
use crate::error::Result;

/// File name of the library on this platform.
pub const LIBRARY_FILE: &str = "libonnxruntime.so";

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Where the library was looked for and found (or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibrarySearch {
    /// Candidate paths in the order tried, with whether each exists.
    pub tried: Vec<(PathBuf, bool)>,
    /// True when the candidate came from `ORT_DYLIB_PATH`.
    pub from_env: bool,
}

impl LibrarySearch {
    /// Lists the candidates: `ORT_DYLIB_PATH` alone when `env_path` is set and non-empty, otherwise
    /// `<exe_dir>/lib/libonnxruntime.so` and the source tree's `third_party/onnxruntime/`.
    pub fn new(env_path: Option<&std::ffi::OsStr>, exe_dir: Option<&Path>) -> Self {
        let mut tried = Vec::new();
        let from_env = matches!(env_path, Some(p) if !p.is_empty());
        if let Some(p) = env_path.filter(|p| !p.is_empty()) {
            tried.push(PathBuf::from(p));
        } else {
            if let Some(dir) = exe_dir {
                tried.push(dir.join("lib").join(LIBRARY_FILE));
            }
            tried.push(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("third_party/onnxruntime")
                    .join(LIBRARY_FILE),
            );
        }
        let tried = tried
            .into_iter()
            .map(|p| {
                let exists = p.is_file();
                (p, exists)
            })
            .collect();
        LibrarySearch { tried, from_env }
    }

    /// The search this process would do.
    pub fn from_process() -> Self {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        Self::new(
            std::env::var_os("ORT_DYLIB_PATH").as_deref(),
            exe_dir.as_deref(),
        )
    }

    /// The first candidate that exists.
    pub fn found(&self) -> Option<&Path> {
        self.tried
            .iter()
            .find(|(_, exists)| *exists)
            .map(|(p, _)| p.as_path())
    }

    /// The candidates as one line: `a (missing), b (missing)`.
    pub fn describe(&self) -> String {
        let list: Vec<String> = self
            .tried
            .iter()
            .map(|(p, exists)| {
                format!("{}{}", p.display(), if *exists { "" } else { " (missing)" })
            })
            .collect();
        let what = if self.from_env { "ORT_DYLIB_PATH=" } else { "" };
        format!("{what}{}", list.join(", "))
    }

    /// The error for a library that could not be found.
    pub fn missing_error(&self) -> crate::Error {
        err!(
            Resource,
            "ONNX Runtime library not found (looked at {}); run scripts/setup.sh, set ORT_DYLIB_PATH \
             to libonnxruntime.so 1.31 or newer, or turn the detector off",
            self.describe()
        )
    }
}

/// The process's ort environment, loading ONNX Runtime on first use.
///
/// Errors (kind `Resource`, one line): library not found, not loadable, too old. A failed load is
/// not remembered: a later call tries again (e.g. after the library was installed).
pub fn environment() -> Result<&'static Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let search = LibrarySearch::from_process();
    let path = search
        .found()
        .ok_or_else(|| search.missing_error())?
        .to_path_buf();
    let builder = ort::init_from(&path).map_err(|e| {
        err!(
            Resource,
            "cannot use ONNX Runtime library {}: {}; run scripts/setup.sh (installs 1.31.1) or set \
             ORT_DYLIB_PATH to libonnxruntime.so 1.31 or newer",
            path.display(),
            one_line(&e.to_string())
        )
    })?;
    let env = builder
        .with_name("fallwatch")
        .with_telemetry(false)
        .build()
        .map_err(|e| {
            err!(
                Resource,
                "ONNX Runtime {}: cannot create the environment: {}",
                path.display(),
                one_line(&e.to_string())
            )
        })?;
    tracing::debug!(library = %path.display(), "ONNX Runtime loaded");
    Ok(ENVIRONMENT.get_or_init(|| env))
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_is_the_only_candidate() {
        let s = LibrarySearch::new(
            Some(std::ffi::OsStr::new("/nonexistent/libonnxruntime.so")),
            Some(Path::new("/opt/fw")),
        );
        assert!(s.from_env);
        assert_eq!(s.tried.len(), 1);
        assert_eq!(s.found(), None);
        let e = s.missing_error();
        assert_eq!(e.kind(), crate::ErrorKind::Resource);
        let msg = e.to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so (missing)"));
        assert!(msg.contains("scripts/setup.sh"));
    }

    #[test]
    fn default_search_is_next_to_the_binary_then_the_source_tree() {
        let dir = tempfile::tempdir().unwrap();
        let s = LibrarySearch::new(None, Some(dir.path()));
        assert!(!s.from_env);
        assert_eq!(s.tried[0].0, dir.path().join("lib").join(LIBRARY_FILE));
        assert!(!s.tried[0].1);
        assert!(
            s.tried[1]
                .0
                .ends_with("third_party/onnxruntime/libonnxruntime.so")
        );
        // A library next to the binary wins.
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib").join(LIBRARY_FILE), b"x").unwrap();
        let s = LibrarySearch::new(Some(std::ffi::OsStr::new("")), Some(dir.path()));
        assert_eq!(
            s.found(),
            Some(dir.path().join("lib/libonnxruntime.so").as_path())
        );
    }
}
