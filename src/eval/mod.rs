//! Accuracy evaluation against synthetic clips with ground truth (`fallwatch eval`).
