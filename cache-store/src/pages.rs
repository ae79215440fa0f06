//! Fresh pages for a reused range of the slab file.
//!
//! A body sent with `sendfile` (or spliced) leaves the kernel holding references to the slab
//! file's page-cache pages after the call returns: until the viewer acknowledges the bytes,
//! and on loopback until the viewer reads them. Writing new objects into those same pages
//! would change bytes already "sent". So before a run whose pages were lent that way is
//! written again, its range is given fresh pages: `FALLOC_FL_ZERO_RANGE` (or punching a hole
//! and allocating it again) drops the old pages from the file, leaving them, unchanged, to
//! whoever still references them, while the file keeps its blocks, so later writes through
//! the mapping cannot fail for want of space.

use rustix::fs::{fallocate, FallocateFlags};
use std::fs::File;
use std::io;
use std::path::Path;

/// How this file system gives a range fresh pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    ZeroRange,
    PunchThenAllocate,
}

/// Which way works on the file system of `dir`, tried on a scratch file there; `None` when
/// neither does (bodies are then never lent).
pub(crate) fn probe(dir: &Path) -> Option<Refresh> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let scratch = dir.join(format!(".slabfront-probe-{}-{nanos}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&scratch)
        .ok()?;
    let _ = std::fs::remove_file(&scratch);
    fallocate(&file, FallocateFlags::empty(), 0, 16384).ok()?;
    [Refresh::ZeroRange, Refresh::PunchThenAllocate]
        .into_iter()
        .find(|&how| refresh(&file, how, 4096, 8192).is_ok())
}

/// Gives `len` bytes at `off` fresh (zeroed) pages, keeping the blocks allocated.
pub(crate) fn refresh(file: &File, how: Refresh, off: u64, len: u64) -> io::Result<()> {
    match how {
        Refresh::ZeroRange => fallocate(
            file,
            FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
            off,
            len,
        )?,
        Refresh::PunchThenAllocate => {
            fallocate(
                file,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                off,
                len,
            )?;
            fallocate(file, FallocateFlags::KEEP_SIZE, off, len)?;
        }
    }
    Ok(())
}
