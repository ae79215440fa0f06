//! The shared mapping of the slab file: the only code that touches its memory directly.
//!
//! Contract (upheld by `store`): the file is ours (flock) and, by us, never truncated while
//! mapped (should someone else truncate it, or the disk fail under it, the access that meets
//! it sees a page of zeros instead of dying of SIGBUS, see `fault`, and [`Map::faults`]
//! counts it); every access is bounds-checked here; a region is written only by the one writer that owns
//! it (its open segment run) or, for metadata slots and flags, under the index shard's lock;
//! a region is reused only after every reader of it is gone (segment reader counts).
#![allow(unsafe_code)]

use memmap2::MmapRaw;
use std::sync::atomic::AtomicU32;

/// Copies of 2 KiB and more go through glibc's `rep movsb`, which on AMD Zen runs at a
/// fifteenth of its speed when the destination lies 1 to 31 bytes above the source modulo
/// 4 KiB (measured 1.5-2.6 GB/s instead of 26-30). Such copies are made in slices below the
/// threshold instead, which take glibc's vector loop (22 GB/s at the same offsets).
const SLICE: usize = 2016;

/// `copy_nonoverlapping`, in `SLICE` pieces when the addresses fall in the slow case.
///
/// # Safety
/// As `std::ptr::copy_nonoverlapping`: `src` readable and `dst` writable for `len` bytes,
/// and the two ranges do not overlap.
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    let delta = (dst as usize).wrapping_sub(src as usize) % 4096;
    if len < 2048 || !(1..64).contains(&delta) {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
        return;
    }
    let mut done = 0;
    while done < len {
        let n = SLICE.min(len - done);
        // SAFETY: `done + n <= len`, so each piece lies inside the ranges the caller vouched for.
        unsafe { std::ptr::copy_nonoverlapping(src.add(done), dst.add(done), n) };
        done += n;
    }
}

/// Writes of this size and more go through `pwrite`, not the mapping: into a range that was
/// given fresh pages (`pages::refresh`), a copy through the mapping faults once per 4 KiB page
/// (16 ms for 32 MiB here), `pwrite` fills whole folios (7 ms; 5-6 ms either way into pages
/// already there).
const PWRITE_MIN: usize = 16 * 1024;

pub struct Map {
    /// Declared first so that it is dropped, and the mapping unregistered, before `raw`
    /// unmaps it.
    faults: Option<crate::fault::Registration>,
    raw: MmapRaw,
    /// The mapped file (the same open file description as the store's).
    file: std::fs::File,
    /// Offset of the first segment and the segment size: no write crosses a segment boundary
    /// in one call, so no page-cache folio straddles two segments (see `pages`).
    first: u64,
    seg: u64,
}

impl Map {
    /// Maps `file` (`raw` is its mapping), whose segments of `seg` bytes begin at `first`.
    /// Readahead is turned off for the file and the mapping: pages come in one by one, or as
    /// asked for with [`Map::will_need`], never as large folios across segments.
    pub fn new(raw: MmapRaw, file: std::fs::File, first: u64, seg: u64) -> Self {
        let _ = raw.advise(memmap2::Advice::Random);
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Random);
        Map {
            faults: crate::fault::register(raw.as_ptr(), raw.len()),
            raw,
            file,
            first,
            seg: seg.max(1),
        }
    }

    pub fn len(&self) -> u64 {
        self.raw.len() as u64
    }

    /// Faults met in the mapping so far (pages the kernel could not supply, now zeros).
    pub fn faults(&self) -> u64 {
        self.faults.as_ref().map_or(0, |r| r.faults())
    }

    fn check(&self, off: u64, len: u64) -> usize {
        let end = off.checked_add(len).expect("slab range overflows");
        assert!(end <= self.len(), "slab range {off}+{len} beyond {}", self.len());
        off as usize
    }

    /// A view of committed bytes.
    ///
    /// # Safety
    /// No one may write to `off..off+len` while the returned slice lives: the range belongs
    /// to a committed entry whose segment is pinned by the caller (or not yet shared).
    pub unsafe fn slice(&self, off: u64, len: u64) -> &[u8] {
        let o = self.check(off, len);
        // SAFETY: in bounds (checked), the mapping lives as long as `self`, and the caller
        // guarantees that nothing writes the range meanwhile.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(o), len as usize) }
    }

    /// Copies bytes out of a range that another thread may be rewriting (metadata slots);
    /// the caller validates what it got with a checksum.
    pub fn copy_out(&self, off: u64, out: &mut [u8]) {
        let o = self.check(off, out.len() as u64);
        // SAFETY: in bounds; `out` is a buffer of ours, not in the mapping; a concurrent writer
        // can only make the copy inconsistent, which the caller's checksum detects; the bytes
        // are plain data with no invalid values.
        unsafe { copy_bytes(self.raw.as_ptr().add(o), out.as_mut_ptr(), out.len()) }
    }

    /// Writes bytes into a range the caller owns. An error when `pwrite` fails, or when the
    /// mapping faulted meanwhile (the bytes may then be in memory only, or nowhere): the
    /// caller must not commit what it wrote.
    ///
    /// # Safety
    /// The caller must own `off..off+data.len()` exclusively: no reader holds it and no other
    /// writer writes it.
    pub unsafe fn write(&self, off: u64, data: &[u8]) -> std::io::Result<()> {
        let o = self.check(off, data.len() as u64);
        if data.len() >= PWRITE_MIN {
            // No retry through the mapping: a write the file cannot take is an error here,
            // where through the mapping it would be SIGBUS.
            return self.pwrite(off, data);
        }
        let before = self.faults();
        let dst = self.raw.as_mut_ptr().wrapping_add(o);
        let (d, s) = (dst as usize, data.as_ptr() as usize);
        assert!(
            s + data.len() <= d || d + data.len() <= s,
            "source overlaps the slab range"
        );
        // SAFETY: in bounds; exclusive per the caller's contract; the source does not overlap
        // the range (asserted above).
        unsafe { copy_bytes(data.as_ptr(), dst, data.len()) };
        if self.faults() != before {
            return Err(std::io::Error::other(
                "the slab's mapping faulted (file truncated, or a page the disk could not supply)",
            ));
        }
        Ok(())
    }

    /// `pwrite`, split at segment boundaries.
    fn pwrite(&self, mut off: u64, mut data: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        // A file truncated under us would be extended again by the write (sparse, under a
        // mapping that has lost its pages): refuse instead. One fstat per write of 16 KiB
        // or more.
        if self.file.metadata()?.len() < self.len() {
            return Err(std::io::Error::other(
                "the slab file is shorter than its mapping (truncated)",
            ));
        }
        while !data.is_empty() {
            let to_boundary = if off < self.first {
                self.first - off
            } else {
                self.seg - (off - self.first) % self.seg
            };
            let n = (to_boundary as usize).min(data.len());
            self.file.write_all_at(&data[..n], off)?;
            off += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// An aligned 32-bit word of the mapping, for commit markers and flags.
    pub fn atomic_u32(&self, off: u64) -> &AtomicU32 {
        let o = self.check(off, 4);
        assert!(o.is_multiple_of(4), "unaligned atomic at {off}");
        // SAFETY: in bounds, 4-byte aligned (the mapping is page-aligned), and the mapping
        // outlives the reference; AtomicU32 has the layout of u32 and every bit pattern is valid.
        unsafe { &*(self.raw.as_mut_ptr().add(o) as *const AtomicU32) }
    }

    pub fn flush(&self) -> std::io::Result<()> {
        self.raw.flush()
    }

    /// Whether every page of a range is in memory (`mincore`): a read of a resident range
    /// never waits for the disk.
    pub fn resident(&self, off: u64, len: u64) -> bool {
        let o = self.check(off, len);
        if len == 0 {
            return true;
        }
        let page = 4096;
        let start = o - o % page;
        let span = len as usize + (o - start);
        let pages = span.div_ceil(page);
        // Up to 1 MiB of pages on the stack (no allocation on the hit path), more on the heap.
        let mut small = [0u8; 256];
        let mut large = Vec::new();
        let vec: &mut [u8] = if pages <= small.len() {
            &mut small[..pages]
        } else {
            large.resize(pages, 0);
            &mut large
        };
        // SAFETY: `start..start+span` lies inside the mapping (checked above, rounded down to
        // its page-aligned start, which is inside the page-aligned mapping); `vec` has one
        // byte per page of that span, as mincore requires.
        let rc = unsafe {
            libc::mincore(
                self.raw.as_mut_ptr().add(start).cast::<libc::c_void>(),
                span,
                vec.as_mut_ptr().cast(),
            )
        };
        rc == 0 && vec.iter().all(|b| b & 1 == 1)
    }

    /// Asks the kernel to read a range ahead (used before serving cold objects).
    pub fn will_need(&self, off: u64, len: u64) {
        let o = self.check(off, len);
        let page = 4096;
        let start = o - o % page;
        let _ = self
            .raw
            .advise_range(memmap2::Advice::WillNeed, start, len as usize + (o - start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn bounds_are_checked_and_writes_land() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(8192).unwrap();
        let m = Map::new(MmapRaw::map_raw(&f).unwrap(), f.try_clone().unwrap(), 4096, 4096);
        // SAFETY: single-threaded test owns the whole mapping.
        unsafe { m.write(100, b"hello") }.unwrap();
        // SAFETY: no concurrent writers in this test.
        assert_eq!(unsafe { m.slice(100, 5) }, b"hello");
        m.atomic_u32(200).store(7, Ordering::Release);
        let mut out = [0u8; 4];
        m.copy_out(200, &mut out);
        assert_eq!(u32::from_le_bytes(out), 7);
        assert!(m.resident(100, 5), "a page just written is resident");
        let r = std::panic::catch_unwind(|| {
            let mut big = [0u8; 16];
            m.copy_out(8190, &mut big);
        });
        assert!(r.is_err(), "out-of-bounds access must panic, not read");
    }

    #[test]
    fn large_writes_across_segment_boundaries_land_whole() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(1 << 20).unwrap();
        let m = Map::new(MmapRaw::map_raw(&f).unwrap(), f.try_clone().unwrap(), 4096, 65536);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        // From inside the file header over three segment boundaries.
        for off in [1000u64, 60_000] {
            // SAFETY: single-threaded test owns the whole mapping.
            unsafe { m.write(off, &data) }.unwrap();
            // SAFETY: no concurrent writers in this test.
            let back = unsafe { m.slice(off, data.len() as u64) };
            assert!(back == &data[..], "at {off}");
        }
        assert!(m.pwrite(0, &data[..PWRITE_MIN]).is_ok());
        let mut back = vec![0u8; PWRITE_MIN];
        m.copy_out(0, &mut back);
        assert!(back == data[..PWRITE_MIN], "pwrite is seen through the mapping");
    }

    #[test]
    fn copies_at_every_page_offset_land_whole() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(1 << 20).unwrap();
        let m = Map::new(MmapRaw::map_raw(&f).unwrap(), f.try_clone().unwrap(), 4096, 65536);
        let src: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        // Destinations 0..80 bytes above the source modulo 4 KiB (the sliced case is 1..63),
        // lengths below, at and above one slice.
        for delta in 0..80usize {
            for len in [100, SLICE, SLICE + 1, 2048, 33_333] {
                let from = (delta * 13) % (src.len() - len);
                let data = &src[from..from + len];
                let off = (data.as_ptr() as usize + delta) % 4096 + 8192;
                // SAFETY: single-threaded test owns the whole mapping.
                unsafe { m.write(off as u64, data) }.unwrap();
                let mut back = vec![0u8; len];
                m.copy_out(off as u64, &mut back);
                assert!(back == data, "delta {delta} len {len}");
            }
        }
    }
}
