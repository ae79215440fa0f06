//! Opening a slab: creating and preallocating a new file, or validating an existing one and
//! rebuilding the index from its entry headers, verifying every checksum on the way.
//! Unsafe here only reads or writes the mapping before the store is shared.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::format::*;
use crate::map::Map;
use crate::options::StoreOptions;
use crate::slab::{recovered_loc, Inner};
use std::io::Read;
use std::sync::Arc;

fn io(path: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.to_string(),
        source: e,
    }
}

fn format_err(path: &str, what: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_string(),
        what: what.into(),
    }
}

/// Opens the slab described by `opts`: its shared state, index rebuilt, ready to be shared.
/// Makes sure every block of the slab file (`size` bytes) is allocated, or says how much
/// space is missing.
///
/// `fallocate`, else, on a file system that has none, a new file is written through with
/// zeros once (which takes a while for a large slab, but is what allocates the blocks there;
/// a copy-on-write file system may still need space for later writes, which then fail as
/// counted errors, see `slab`). An existing file on such a file system is taken as it is:
/// it was written through when this build made it.
fn preallocate(file: &std::fs::File, size: u64, fresh: bool, path: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let st = rustix::fs::fstatvfs(file).map_err(|e| io(path)(e.into()))?;
    let available = st.f_bavail.saturating_mul(st.f_frsize);
    let allocated = file.metadata().map_err(io(path))?.blocks().saturating_mul(512);
    let no_space = || {
        if fresh {
            // Leave no half-allocated slab behind: the next start should try afresh.
            let _ = file.set_len(0);
        }
        Error::NoSpace {
            path: path.to_string(),
            needed: size.saturating_sub(allocated),
            available,
        }
    };
    if size.saturating_sub(allocated) > available {
        return Err(no_space());
    }
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOSPC) => Err(no_space()),
        Err(rustix::io::Errno::OPNOTSUPP) if !fresh => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) => {
            use std::os::unix::fs::FileExt;
            let zeros = vec![0u8; 1 << 20];
            let mut off = 0;
            while off < size {
                let n = (size - off).min(zeros.len() as u64) as usize;
                if let Err(e) = file.write_all_at(&zeros[..n], off) {
                    return Err(if e.raw_os_error() == Some(libc::ENOSPC) {
                        no_space()
                    } else {
                        io(path)(e)
                    });
                }
                off += n as u64;
            }
            file.sync_all().map_err(io(path))
        }
        Err(e) => Err(io(path)(e.into())),
    }
}

pub(crate) fn open(opts: &StoreOptions) -> Result<Arc<Inner>> {
    let path = opts.path.display().to_string();
    if opts.segment_size < 64 * 1024 || !opts.segment_size.is_multiple_of(4096) {
        return Err(format_err(
            &path,
            "segment size must be a multiple of 4096, at least 64 KiB",
        ));
    }
    let segments = opts.size.saturating_sub(FILE_HEADER) / opts.segment_size;
    if segments < 2 {
        return Err(format_err(
            &path,
            format!("size {} holds fewer than 2 segments", opts.size),
        ));
    }
    // The slab's directory: made if missing, and where the fresh-pages probe runs.
    let dir = opts
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(&path))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&opts.path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path }),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
    }
    let len = file.metadata().map_err(io(&path))?.len();
    let fresh = len == 0;
    let header = if fresh {
        FileHeader {
            file_size: opts.size,
            segment_size: opts.segment_size,
            segments,
            purge_before: 0,
        }
    } else {
        let mut buf = [0u8; 64];
        file.read_exact(&mut buf)
            .map_err(|_| format_err(&path, format!("truncated: {len} bytes, not even a header")))?;
        let h = FileHeader::decode(&buf).map_err(|w| format_err(&path, w))?;
        if h.file_size != len {
            return Err(format_err(
                &path,
                format!(
                    "file is {len} bytes but its header says {} (truncated or resized)",
                    h.file_size
                ),
            ));
        }
        if h.file_size != opts.size || h.segment_size != opts.segment_size {
            return Err(format_err(
                &path,
                format!(
                    "slab was made with size {} and segments of {}, configured size {} and segments of {}; move it away or configure its size",
                    h.file_size, h.segment_size, opts.size, opts.segment_size
                ),
            ));
        }
        if h.segments != (h.file_size - FILE_HEADER) / h.segment_size {
            return Err(format_err(&path, "header geometry is inconsistent"));
        }
        h
    };
    // Every block of the file is allocated now, for a new file and for an existing one (a
    // slab made sparse by an older build gets its holes filled; its size was checked above):
    // writes into the slab, through the mapping or not, then never need space the disk may
    // no longer have.
    preallocate(&file, opts.size, fresh, &path)?;
    let raw = memmap2::MmapOptions::new()
        .len(opts.size as usize)
        .map_raw(&file)
        .map_err(io(&path))?;
    let map = Map::new(
        raw,
        file.try_clone().map_err(io(&path))?,
        FILE_HEADER,
        header.segment_size,
    );
    if fresh {
        // SAFETY: nobody else has the mapping yet.
        unsafe { map.write(0, &header.encode()) }.map_err(io(&path))?;
        map.flush().map_err(io(&path))?;
    }
    let runs = find_runs(&map, &header);
    let (next_seq, head) = runs
        .iter()
        .max_by_key(|r| r.seq)
        .map_or((1, 0), |r| (r.seq + 1, (r.head + r.len) % segments as usize));
    let refresh = crate::pages::probe(dir);
    let inner = Arc::new(Inner::new(path, map, file, header, next_seq, head, refresh));
    for r in &runs {
        inner.adopt_run(r.head, r.len, r.seq);
    }
    // Verify runs in parallel: checksums over the whole slab are the cost of reopening.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = runs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in runs.chunks(chunk) {
            let inner = &inner;
            s.spawn(move || {
                for r in part {
                    scan_run(inner, r, header.purge_before);
                }
            });
        }
    });
    Ok(inner)
}

#[derive(Debug, Clone, Copy)]
struct Run {
    head: usize,
    len: usize,
    seq: u64,
}

/// Valid run headers; where runs overlap (a crash between reuse and bookkeeping), the newer
/// one owns the segments and the older is cut short.
fn find_runs(map: &Map, h: &FileHeader) -> Vec<Run> {
    let n = h.segments as usize;
    let mut found = Vec::new();
    for i in 0..n {
        let off = FILE_HEADER + i as u64 * h.segment_size;
        let mut buf = [0u8; 20];
        map.copy_out(off, &mut buf);
        // A sequence of u64::MAX is never written (they count up from 1, and the next one could
        // not be issued): such a header is damage, not a run.
        if let Some(sh) = SegHeader::decode(&buf).filter(|sh| sh.seq != u64::MAX) {
            let len = (sh.run as usize).clamp(1, n - i);
            found.push(Run {
                head: i,
                len,
                seq: sh.seq,
            });
        }
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.seq));
    let mut claimed = vec![false; n];
    let mut runs = Vec::new();
    for r in found {
        if claimed[r.head] {
            continue;
        }
        let mut len = 0;
        while len < r.len && !claimed[r.head + len] {
            claimed[r.head + len] = true;
            len += 1;
        }
        runs.push(Run { len, ..r });
    }
    runs
}

fn scan_run(inner: &Inner, r: &Run, purge_before: u64) {
    // Readahead is off for the slab (see `pages`): a run not in memory is asked for as a
    // whole, else its pages would come in one fault at a time. (Asking for a resident run
    // still walks its pages: 0.6 s for 8 GiB.)
    let (off, len) = (inner.seg_offset(r.head), r.len as u64 * inner.seg_size);
    if !inner.resident(off, len) {
        inner.map.will_need(off, len);
    }
    let mut corrupt = 0;
    let mut entries = inner.run_entries(r.head, r.len, r.seq);
    for (pos, hdr) in &mut entries {
        if hdr.flags & FLAG_DELETED != 0 || r.seq < purge_before {
            continue;
        }
        if !inner.entry_intact(pos, &hdr) {
            corrupt += 1;
            continue;
        }
        match inner.read_meta(pos, &hdr) {
            Some((_, _, expires_at, _)) => {
                inner.index_insert(recovered_loc(r.head, pos, hdr, expires_at, r.seq))
            }
            None => corrupt += 1,
        }
    }
    if entries.overran {
        corrupt += 1;
    }
    inner.count_corrupt(corrupt);
}
