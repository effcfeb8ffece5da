//! Multi-target tracking with a gravity-aware motion model.
