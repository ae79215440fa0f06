//! Why the server could not start.

/// A startup failure, with what the operator needs to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("{0}")]
    Listen(#[source] std::io::Error),
    #[error("io_uring is required by `server.driver = \"io_uring\"` but is not available (kernel.io_uring_disabled, seccomp, or an old kernel)")]
    NoIoUring,
    #[error("origin {id:?}: cannot open directory {path:?}: {source}")]
    Origin {
        id: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Geo(String),
    #[error("worker {0} failed to start: {1}")]
    Worker(usize, String),
    #[error("cache slab {path:?}: {message}")]
    Cache { path: String, message: String },
    #[error("origin {id:?}: {message}")]
    OriginTls { id: String, message: String },
    #[error("access log {path:?}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS for viewers: {0}")]
    ViewerTls(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}
