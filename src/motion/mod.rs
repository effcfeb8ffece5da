//! Motion detection over the calibrated facade region: background model, foreground, candidates.
