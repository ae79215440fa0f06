//! The page cache, asked about directly: whether a file range is in memory.

#![allow(unsafe_code)]

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
