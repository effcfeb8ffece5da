//! Object detection with ONNX models (ort): labels for candidate tracks, a bird veto, and person
//! detection near the release point. (To be built: issue 4.)
