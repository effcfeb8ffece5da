//! The one error type of fallwatch: a kind that tells callers what to do about it (retry, give up,
//! fix the input) and a message that carries its context (camera, stream, file).
//!
//! Messages are written for the person who reads them on one line of stderr: they name what
//! failed and why, e.g. `camera tower-3-east: rtsp://10.0.0.7/main: connection timed out after 5000 ms`.

use std::fmt;

/// What kind of failure this is, and so what a caller should do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The user's input is wrong (missing file, not a video, bad calibration, bad flag): fatal.
    InvalidInput,
    /// Something outside is unavailable right now (network, camera, server): worth retrying.
    Unavailable,
    /// A source ran out of time (connect or read timeout): worth retrying.
    Timeout,
    /// Data that was read could not be decoded or parsed: skip it or give up on the source.
    Corrupt,
    /// A local resource failed (disk full, permission, missing library): usually fatal.
    Resource,
    /// The operation was cancelled (shutdown requested).
    Cancelled,
    /// A bug in fallwatch.
    Internal,
}

impl ErrorKind {
    /// True when trying again later may succeed (a reconnect loop keeps going).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Corrupt
        )
    }
}

/// A fallwatch error: kind, message with context, optional source.
pub struct Error {
    kind: ErrorKind,
    msg: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result with fallwatch's error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause; it is printed after the message.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Prefixes the message with context, e.g. the camera or file name.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the source chain.
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        let mut source: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|s| s as _);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// Builds an [`Error`]: `err!(InvalidInput, "no such file {}", path)`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($arg:tt)+) => {
        $crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($arg)+))
    };
}

/// Returns early with an [`Error`]: `bail!(InvalidInput, "bad value {}", v)`.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($arg:tt)+) => {
        return Err($crate::err!($kind, $($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_context_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = err!(InvalidInput, "cannot open clip.mp4")
            .with_source(io)
            .context("camera c1");
        assert_eq!(
            e.to_string(),
            "camera c1: cannot open clip.mp4: No such file or directory"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.kind().is_retryable());
        assert!(ErrorKind::Timeout.is_retryable());
    }
}
