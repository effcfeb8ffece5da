//! Physics: the facade homography, camera pose, ballistic fit and release-point estimation.
