//! The page cache, asked about directly: whether a file range is in memory, and fresh pages
//! for a reused range of the slab file.
//!
//! A body sent with `sendfile` (or spliced) leaves the kernel holding references to the slab
//! file's page-cache pages after the call returns: until the viewer acknowledges the bytes,
//! and on loopback until the viewer reads them. Writing new objects into those same pages
//! would change bytes already "sent". So before a run whose pages were lent that way is
//! written again, its range is given fresh pages: `FALLOC_FL_ZERO_RANGE` (or punching a hole
//! and allocating it again) drops the old pages from the file, leaving them, unchanged, to
//! whoever still references them, while the file keeps its blocks, so later writes cannot fail
//! for want of space.
//!
//! A page-cache folio that straddled the edge of such a range would be zeroed in place (the
//! kernel zeroes the part of a partial folio it cannot split off), so the slab keeps every
//! folio inside one segment: writes are split at segment boundaries (a buffered write makes
//! folios no larger than itself), and reads and faults go without readahead
//! (`POSIX_FADV_RANDOM`, `MADV_RANDOM`: single pages), see `map`.

#![allow(unsafe_code)]

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

/// Whether every page of `file` in `offset..offset + len` is in the page cache
/// (`cachestat(2)`, Linux 6.5+). `None` when the kernel cannot say.
pub fn page_cached(file: &std::fs::File, offset: u64, len: u64) -> Option<bool> {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    const PAGE: u64 = 4096;
    if len == 0 {
        return Some(true);
    }
    let first = offset / PAGE;
    let last = (offset + len - 1) / PAGE;
    let range = Range {
        off: first * PAGE,
        len: (last - first + 1) * PAGE,
    };
    let mut stat = Stat::default();
    // SAFETY: cachestat reads `range` and writes one `Stat`, both live, properly laid out
    // (repr(C), the kernel's field order) and exclusively borrowed for the call; the file
    // descriptor is open (borrowed).
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            std::os::fd::AsRawFd::as_raw_fd(file),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    (r == 0).then_some(stat.nr_cache > last - first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn page_cached_tells_cached_from_dropped_pages() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        if page_cached(&f, 0, 1 << 20).is_none() {
            return; // a kernel without cachestat: callers fall back to mincore
        }
        assert_eq!(page_cached(&f, 0, 1 << 20), Some(true), "just written");
        // On tmpfs (a TMPDIR there) the page cache is the storage: nothing can be dropped.
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        // `f_type`'s width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        if rustix::fs::fstatfs(&f).is_ok_and(|st| st.f_type as i64 == TMPFS_MAGIC) {
            return;
        }
        // Clean pages (synced above) are dropped by DONTNEED.
        rustix::fs::fadvise(
            &f,
            0,
            std::num::NonZeroU64::new(1 << 20),
            rustix::fs::Advice::DontNeed,
        )
        .unwrap();
        assert_eq!(page_cached(&f, 4096, 8192), Some(false), "dropped");
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        let mut first = vec![0u8; 65536];
        f.read_exact(&mut first).unwrap();
        assert_eq!(page_cached(&f, 0, 4096), Some(true), "read back in");
        assert_eq!(page_cached(&f, 0, 0), Some(true), "an empty range");
    }
}
