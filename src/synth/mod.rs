//! Synthetic camera clips with exact ground truth (`fallwatch synth`).
