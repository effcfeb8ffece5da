//! fallwatch: finds objects thrown or dropped from high-rise buildings in camera video, says which
//! floor and window bay they came from, and saves evidence a security team can rely on.
//!
//! The library never prints: results go through return values and channels, diagnostics through
//! `tracing`. The binary (`src/main.rs`, `src/cli/`) owns standard output and standard error.
//!
//! One module per concern; the wiring of the stages lives in [`pipeline`].

#![forbid(clippy::print_stdout, clippy::print_stderr)]
#![warn(missing_docs)]

pub mod calib;
pub mod clock;
pub mod detect;
pub mod error;
pub mod eval;
pub mod events;
pub mod evidence;
pub mod ingest;
pub mod motion;
pub mod physics;
pub mod pipeline;
pub mod synth;
pub mod track;

pub use error::{Error, ErrorKind, Result};
