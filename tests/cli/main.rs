//! The integration tests: one binary that runs the real `fallwatch` executable the way users and
//! outside tools do. `harness` holds the shared helpers; one module per area.

mod bad_input;
mod detect;
mod evidence;
mod harness;
mod ingest;
