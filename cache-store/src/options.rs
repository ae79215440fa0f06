//! How a slab is asked for: its path and geometry.

use std::path::PathBuf;

/// How to open a slab.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    /// Total file size in bytes.
    pub size: u64,
    /// Segment size in bytes (a multiple of 4096).
    pub segment_size: u64,
}

impl StoreOptions {
    /// A slab of `size` bytes with segments of size/128 clamped to 1–64 MiB.
    pub fn new(path: impl Into<PathBuf>, size: u64) -> Self {
        let seg = (size / 128).clamp(1 << 20, 64 << 20) / 4096 * 4096;
        StoreOptions {
            path: path.into(),
            size,
            segment_size: seg,
        }
    }
}
