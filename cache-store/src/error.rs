/// What can go wrong with the slab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("slab {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a slab of this version and geometry, or its header is damaged.
    #[error("slab {path}: {what}")]
    Format { path: String, what: String },
    /// Another process holds the slab.
    #[error("slab {path} is in use by another process (flock held)")]
    Locked { path: String },
    /// The disk cannot hold a slab of the requested size.
    #[error("slab {path}: needs {needed} bytes but the filesystem has {available} free")]
    NoSpace {
        path: String,
        needed: u64,
        available: u64,
    },
    /// The object cannot fit in this slab at all.
    #[error("object of {size} bytes cannot fit in a slab with {capacity} bytes of segments")]
    TooLarge { size: u64, capacity: u64 },
    /// No segment could be reclaimed right now (all are being written or read).
    #[error("no segment can be reclaimed now: every segment is open or held by readers")]
    Full,
}

pub type Result<T> = std::result::Result<T, Error>;
