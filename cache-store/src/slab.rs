//! The slab's shared state, used by the store's readers and writers and built by recovery:
//! segments and their allocation, the sharded index, eviction.
//!
//! Reader/reclaimer protocol (per segment run, both sides `SeqCst`): a reader increments the
//! run head's `readers`, then checks that its `gen` still equals the generation recorded in
//! the index entry; a reclaimer increments `gen`, then checks `readers`. Either the reclaimer
//! sees the reader (and leaves the run alone until `readers` drops to zero), or the reader
//! sees the new generation (and reports a miss). So no byte is overwritten while a guard on it
//! lives.
//!
//! Disk faults (see `fault`): a write the file does not take is an error and the entry is not
//! committed; a page of the mapping the kernel could not supply reads as zeros from then on.
//! Once the mapping has faulted, every hit is verified against its checksum before it is
//! handed out and no body is lent to `sendfile` (the mapping and the file may now differ);
//! if the file was found shorter than the mapping, the slab is disabled until restart
//! (every lookup a miss, every write refused). Each kind of error is counted (`io_errors`)
//! and logged, at most once a minute per kind.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::format::*;
use crate::map::Map;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) bytes_used: AtomicU64,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) corrupt: AtomicU64,
    pub(crate) reinserted: AtomicU64,
    pub(crate) io_errors: AtomicU64,
}

/// The kinds of I/O error that are logged, each at most once a minute.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IoKind {
    /// A write to the slab file (`pwrite`, or through the mapping) failed.
    Write,
    /// A reused range could not be given fresh pages (`fallocate`).
    Refresh,
    /// A page of the mapping could not be supplied (SIGBUS, handled).
    Fault,
    /// The slab file is shorter than its mapping.
    Truncated,
}

impl IoKind {
    const ALL: usize = 4;

    fn as_str(self) -> &'static str {
        match self {
            IoKind::Write => "write",
            IoKind::Refresh => "refresh",
            IoKind::Fault => "fault",
            IoKind::Truncated => "truncated",
        }
    }
}

/// Per-segment shared state (meaningful on run heads).
#[derive(Default)]
pub(crate) struct Seg {
    pub(crate) gen: AtomicU64,
    pub(crate) readers: AtomicU64,
    /// Part of a body in this segment was lent to the kernel (`ReadGuard::lend_body`), or may
    /// have been by an earlier process: the segment gets fresh pages before it is written
    /// again.
    pub(crate) lent: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Free,
    /// Being written by one writer.
    Open,
    /// Full of committed entries.
    Sealed,
    /// Reclaimed but still read by someone: reusable once `readers` is 0.
    Retired,
}

/// Allocation state: touched once per segment allocation, never per request.
pub(crate) struct Alloc {
    pub(crate) head: usize,
    pub(crate) seq: u64,
    pub(crate) state: Vec<State>,
    /// For each segment, the head of its run; for each head, the run length.
    pub(crate) run_head: Vec<usize>,
    pub(crate) run_len: Vec<usize>,
    pub(crate) run_seq: Vec<u64>,
}

/// Where an object is, as the index knows it.
pub(crate) struct Loc {
    pub seg: u32,
    pub gen: u64,
    /// Absolute file offset of the entry.
    pub off: u64,
    pub hdr: EntryHeader,
    pub expires_at: AtomicU64,
    /// Reads since written (saturating at 3): reclaim gives objects with reads another lap,
    /// carrying one read less, so only objects read again and again stay.
    pub freq: AtomicU8,
    pub seq: u64,
}

pub(crate) type Shard = RwLock<HashMap<u64, Loc, ahash::RandomState>>;
pub(crate) const SHARDS: usize = 64;

pub(crate) struct Inner {
    pub path: String,
    pub map: Map,
    pub file: std::fs::File,
    pub header: Mutex<FileHeader>,
    pub seg_size: u64,
    pub segments: usize,
    pub(crate) segs: Vec<Seg>,
    pub(crate) alloc: Mutex<Alloc>,
    pub(crate) shards: Vec<Shard>,
    pub(crate) counters: Counters,
    /// Changes on every invalidation: a reinsertion prepared before one is dropped.
    pub(crate) invalidations: AtomicU64,
    /// Changes on `clear`: writers then start new runs.
    pub(crate) purge_epoch: AtomicU64,
    /// How reused ranges get fresh pages; `None`: bodies are never lent.
    pub(crate) refresh: Option<crate::pages::Refresh>,
    /// The mapping's fault count as last noticed (`notice_faults`).
    seen_faults: AtomicU64,
    /// The file was found shorter than the mapping: nothing is read or written any more.
    disabled: AtomicBool,
    /// When each kind of I/O error was last logged (seconds since the epoch, 0: never).
    logged: [AtomicU64; IoKind::ALL],
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Inner {
    pub(crate) fn new(
        path: String,
        map: Map,
        file: std::fs::File,
        header: FileHeader,
        next_seq: u64,
        head: usize,
        refresh: Option<crate::pages::Refresh>,
    ) -> Inner {
        let segments = header.segments as usize;
        Inner {
            path,
            map,
            file,
            seg_size: header.segment_size,
            segments,
            header: Mutex::new(header),
            // Every segment starts out lent (when bodies can be lent at all): a previous
            // process's sockets, closed or not, may still hold pages of it.
            segs: (0..segments)
                .map(|_| Seg {
                    lent: AtomicBool::new(refresh.is_some()),
                    ..Seg::default()
                })
                .collect(),
            alloc: Mutex::new(Alloc {
                head,
                seq: next_seq,
                state: vec![State::Free; segments],
                run_head: (0..segments).collect(),
                run_len: vec![1; segments],
                run_seq: vec![0; segments],
            }),
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::with_hasher(ahash::RandomState::new())))
                .collect(),
            counters: Counters::default(),
            invalidations: AtomicU64::new(0),
            purge_epoch: AtomicU64::new(0),
            refresh,
            seen_faults: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
            logged: Default::default(),
        }
    }

    /// Counts an I/O error on the slab and logs it, at most once a minute per kind.
    pub(crate) fn io_error(&self, kind: IoKind, n: u64, what: &dyn std::fmt::Display) {
        let total = self.counters.io_errors.fetch_add(n, Ordering::Relaxed) + n;
        let now = now_secs().max(1);
        let last = &self.logged[kind as usize];
        let prev = last.load(Ordering::Relaxed);
        if (prev == 0 || now >= prev + 60)
            && last
                .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                path = %self.path,
                kind = kind.as_str(),
                io_errors = total,
                "slab I/O error: {what}; the object is a miss (logged at most once a minute per kind)"
            );
        }
    }

    /// Writes into the slab, counting and logging a failure.
    ///
    /// # Safety
    /// As [`Map::write`]: the caller owns the range exclusively.
    pub(crate) unsafe fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        // SAFETY: the caller's contract.
        unsafe { self.map.write(off, data) }.map_err(|e| {
            self.io_error(IoKind::Write, 1, &e);
            Error::Io {
                path: self.path.clone(),
                source: e,
            }
        })
    }

    /// Whether the slab is disabled (its file was truncated under it). Cheap: one atomic
    /// load when nothing new has faulted; otherwise notices the new faults first.
    pub(crate) fn disabled(&self) -> bool {
        let f = self.map.faults();
        if f != self.seen_faults.load(Ordering::Relaxed) {
            self.notice_faults(f);
        }
        self.disabled.load(Ordering::Relaxed)
    }

    /// Counts faults not yet counted, and disables the slab when its file has shrunk.
    #[cold]
    fn notice_faults(&self, f: u64) {
        let prev = self.seen_faults.fetch_max(f, Ordering::AcqRel);
        if f <= prev {
            return;
        }
        self.io_error(
            IoKind::Fault,
            f - prev,
            &format_args!(
                "{} page(s) of the mapping could not be read or written (now zeros in memory)",
                f - prev
            ),
        );
        let len = self.file.metadata().map(|m| m.len());
        if len.as_ref().map_or(true, |&l| l < self.map.len()) && !self.disabled.swap(true, Ordering::SeqCst) {
            let what = match len {
                Ok(l) => format!(
                    "the file is {l} bytes, its mapping {}: it was truncated; the slab is disabled until restart",
                    self.map.len()
                ),
                Err(e) => format!("{e}; the slab is disabled until restart"),
            };
            self.io_error(IoKind::Truncated, 1, &what);
        }
    }

    /// Whether an entry's key and body still match its checksum, read through the mapping.
    /// The caller keeps the entry's run from being reused (pinned, or not yet shared).
    pub(crate) fn entry_intact(&self, off: u64, hdr: &EntryHeader) -> bool {
        // SAFETY: the caller pins the run (or recovery runs before the store is shared), and a
        // committed entry's key and body never change.
        let key = unsafe { self.map.slice(off + ENTRY_HEADER, u64::from(hdr.key_len)) };
        // SAFETY: as above.
        let body = unsafe { self.map.slice(off + hdr.body_offset(), hdr.body_len) };
        let mut content = crc32fast::Hasher::new();
        content.update(key);
        content.update(body);
        let mut h = crc32fast::Hasher::new();
        h.update(&hdr.crc_fields());
        h.update(&content.finalize().to_le_bytes());
        h.finalize() == hdr.crc && key_hash(key) == hdr.key_hash
    }

    /// The segment holding an absolute file offset.
    pub(crate) fn seg_of(&self, off: u64) -> usize {
        ((off - FILE_HEADER) / self.seg_size) as usize
    }

    /// Whether a range of the slab file is in memory: `cachestat` on the file (0.5 us here),
    /// else `mincore` on the mapping (2 us: it allocates a page and takes the mmap lock).
    pub(crate) fn resident(&self, off: u64, len: u64) -> bool {
        crate::pages::page_cached(&self.file, off, len).unwrap_or_else(|| self.map.resident(off, len))
    }

    pub(crate) fn seg_offset(&self, seg: usize) -> u64 {
        FILE_HEADER + seg as u64 * self.seg_size
    }

    pub(crate) fn shard(&self, h: u64) -> &Shard {
        &self.shards[(h >> 58) as usize % SHARDS]
    }

    /// Registers a recovered run (used by recovery before the store is shared).
    pub(crate) fn adopt_run(&self, head: usize, len: usize, seq: u64) {
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        for i in head..head + len {
            a.state[i] = State::Sealed;
            a.run_head[i] = head;
        }
        a.run_len[head] = len;
        a.run_seq[head] = seq;
    }

    /// Inserts a recovered or newly written entry into the index; an older entry for the
    /// same key is tombstoned on disk so that it can never come back.
    pub(crate) fn index_insert(&self, loc: Loc) {
        let h = loc.hdr.key_hash;
        let total = loc.hdr.total_len();
        let mut shard = self.shard(h).write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = shard.get(&h) {
            if (old.seq, old.off) > (loc.seq, loc.off) {
                // Recovery found an older copy after a newer one: keep the newer.
                drop(shard);
                self.tombstone(loc.off);
                return;
            }
        }
        if let Some(old) = shard.insert(h, loc) {
            self.tombstone(old.off);
            self.counters
                .bytes_used
                .fetch_sub(old.hdr.total_len(), Ordering::Relaxed);
        }
        self.counters.bytes_used.fetch_add(total, Ordering::Relaxed);
    }

    /// Drops an entry the index no longer holds: durably (tombstone) and from the byte count.
    pub(crate) fn forget(&self, l: &Loc) {
        self.tombstone(l.off);
        self.counters
            .bytes_used
            .fetch_sub(l.hdr.total_len(), Ordering::Relaxed);
    }

    /// Runs `f` on an entry's stored key while its run is pinned; `None` if the run has been
    /// reclaimed meanwhile.
    pub(crate) fn with_key<T>(&self, l: &Loc, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        if !self.pin(l.seg, l.gen) {
            return None;
        }
        // SAFETY: pinned; a committed entry's key never changes.
        let key = unsafe { self.map.slice(l.off + ENTRY_HEADER, u64::from(l.hdr.key_len)) };
        let out = f(key);
        self.unpin(l.seg);
        Some(out)
    }

    /// The committed entries of a run, in order, up to the first that is not one of its own.
    pub(crate) fn run_entries(&self, head: usize, len: usize, seq: u64) -> RunEntries<'_> {
        let start = self.seg_offset(head);
        RunEntries {
            map: &self.map,
            pos: start + SEG_HEADER,
            end: start + len as u64 * self.seg_size,
            seq,
            overran: false,
        }
    }

    pub(crate) fn tombstone(&self, entry_off: u64) {
        self.map
            .atomic_u32(entry_off + 4)
            .fetch_or(FLAG_DELETED, Ordering::Release);
    }

    pub(crate) fn count_corrupt(&self, n: u64) {
        self.counters.corrupt.fetch_add(n, Ordering::Relaxed);
    }

    /// Pins a run for reading if it still holds generation `gen`.
    pub(crate) fn pin(&self, seg: u32, gen: u64) -> bool {
        let s = &self.segs[seg as usize];
        s.readers.fetch_add(1, Ordering::SeqCst);
        if s.gen.load(Ordering::SeqCst) == gen {
            true
        } else {
            s.readers.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }

    pub(crate) fn unpin(&self, seg: u32) {
        self.segs[seg as usize].readers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Reads the current metadata of an entry: (version, expires_at, meta).
    pub(crate) fn read_meta(&self, off: u64, hdr: &EntryHeader) -> Option<(usize, u64, u64, Vec<u8>)> {
        let mut best: Option<(usize, u64, u64, Vec<u8>)> = None;
        for slot in 0..2 {
            let mut buf = vec![0u8; (SLOT_HEADER + u64::from(hdr.meta_cap)) as usize];
            self.map.copy_out(off + hdr.slot_offset(slot), &mut buf);
            if let Some((v, exp, meta)) = decode_slot(&buf, hdr.meta_cap) {
                if best.as_ref().is_none_or(|b| v > b.1) {
                    best = Some((slot, v, exp, meta.to_vec()));
                }
            }
        }
        best
    }

    /// Reclaims a run so its segments can be reused. Returns false if readers hold it (it is
    /// then retired: unreachable, reused later).
    pub(crate) fn reclaim(
        &self,
        a: &mut Alloc,
        head: usize,
        reinsert: Option<&mut Vec<(Vec<u8>, u8)>>,
    ) -> bool {
        let len = a.run_len[head];
        if a.state[head] == State::Retired {
            if self.segs[head].readers.load(Ordering::SeqCst) != 0 {
                return false;
            }
            self.free_run(a, head, len);
            return true;
        }
        let old_gen = self.segs[head].gen.fetch_add(1, Ordering::SeqCst);
        let busy = self.segs[head].readers.load(Ordering::SeqCst) != 0;
        // Nothing writes a sealed run, and readers only read: walking it is safe.
        let seq = a.run_seq[head];
        let mut reinsert = if busy { None } else { reinsert };
        // Up to three quarters of a reclaimed run may come back: room remains for new objects.
        let budget = self.seg_size * 3 / 4;
        let mut kept = 0u64;
        for (pos, hdr) in self.run_entries(head, len, seq) {
            let h = hdr.key_hash;
            let mut shard = self.shard(h).write().unwrap_or_else(|e| e.into_inner());
            let mine = shard.get(&h).is_some_and(|l| l.off == pos && l.gen == old_gen);
            if mine {
                if let Some(l) = shard.remove(&h) {
                    self.counters
                        .bytes_used
                        .fetch_sub(l.hdr.total_len(), Ordering::Relaxed);
                    let freq = l.freq.load(Ordering::Relaxed);
                    match reinsert.as_deref_mut() {
                        Some(r) if freq > 0 && kept + hdr.total_len() <= budget => {
                            kept += hdr.total_len();
                            // SAFETY: the run is ours now (generation bumped, no readers).
                            r.push((unsafe { self.map.slice(pos, hdr.total_len()) }.to_vec(), freq - 1));
                        }
                        _ => {
                            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        if busy {
            for i in head..head + len {
                a.state[i] = State::Retired;
            }
            return false;
        }
        self.free_run(a, head, len);
        true
    }

    pub(crate) fn free_run(&self, a: &mut Alloc, head: usize, len: usize) {
        // Forget the run on disk too, so recovery never revisits evicted entries. (Should that
        // fail, recovery may find them again: valid entries, merely old; the error is counted.)
        // SAFETY: the run is free: no writer owns it and no reader holds it.
        let _ = unsafe { self.write(self.seg_offset(head), &[0u8; SEG_HEADER as usize]) };
        for i in head..head + len {
            a.state[i] = State::Free;
            a.run_head[i] = i;
            a.run_len[i] = 1;
        }
    }

    /// Allocates a run of `n` contiguous segments in ring order, reclaiming what is there.
    pub(crate) fn alloc_run(&self, n: usize, reinsert: &mut Vec<(Vec<u8>, u8)>) -> Result<(usize, u64)> {
        if n > self.segments {
            return Err(Error::TooLarge {
                size: n as u64 * self.seg_size,
                capacity: self.segments as u64 * self.seg_size,
            });
        }
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        'attempt: for _ in 0..self.segments * 3 + 3 {
            let start = if a.head + n > self.segments { 0 } else { a.head };
            for i in start..start + n {
                if a.state[i] == State::Open {
                    a.head = (i + 1) % self.segments;
                    continue 'attempt;
                }
            }
            let mut i = start;
            while i < start + n {
                let head = a.run_head[i];
                if a.state[head] != State::Free && !self.reclaim(&mut a, head, Some(&mut *reinsert)) {
                    a.head = (head + a.run_len[head]) % self.segments;
                    continue 'attempt;
                }
                i += 1;
            }
            if (start..start + n).any(|i| self.segs[i].lent.load(Ordering::SeqCst)) {
                // Pages of this range may still be referenced by sends (see `pages`): the
                // run is written into fresh ones. Should that fail, the flags stay and the
                // run is not handed out.
                let how = self.refresh.ok_or(Error::Full)?;
                let (off, len) = (self.seg_offset(start), n as u64 * self.seg_size);
                crate::pages::refresh(&self.file, how, off, len).map_err(|e| {
                    self.io_error(IoKind::Refresh, 1, &e);
                    Error::Io {
                        path: self.path.clone(),
                        source: e,
                    }
                })?;
                for i in start..start + n {
                    self.segs[i].lent.store(false, Ordering::SeqCst);
                }
            }
            let seq = a.seq;
            a.seq += 1;
            for i in start..start + n {
                a.state[i] = State::Open;
                a.run_head[i] = start;
            }
            a.run_len[start] = n;
            a.run_seq[start] = seq;
            a.head = (start + n) % self.segments;
            let hdr = SegHeader { seq, run: n as u32 };
            // SAFETY: the run was just allocated to this caller alone.
            if let Err(e) = unsafe { self.write(self.seg_offset(start), &hdr.encode()) } {
                // Not handed out: free again, its header (if any of it landed) forgotten.
                self.free_run(&mut a, start, n);
                return Err(e);
            }
            return Ok((start, seq));
        }
        Err(Error::Full)
    }

    pub(crate) fn seal(&self, head: usize) {
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        let len = a.run_len[head];
        for i in head..head + len {
            a.state[i] = State::Sealed;
        }
    }
}

/// Iterator over a run's committed entries: `(file offset, header)`. Stops at the first
/// header that is missing, belongs to an older use of the segment, or would run past the
/// run's end (then `overran` is set: a damaged header).
pub(crate) struct RunEntries<'a> {
    pub(crate) map: &'a Map,
    pub(crate) pos: u64,
    pub(crate) end: u64,
    pub(crate) seq: u64,
    pub overran: bool,
}

impl Iterator for RunEntries<'_> {
    type Item = (u64, EntryHeader);

    fn next(&mut self) -> Option<(u64, EntryHeader)> {
        if self.pos + ENTRY_HEADER > self.end {
            return None;
        }
        let mut buf = [0u8; ENTRY_HEADER as usize];
        self.map.copy_out(self.pos, &mut buf);
        let hdr = EntryHeader::decode(&buf)?;
        if hdr.seg_seq != self.seq {
            return None;
        }
        // Lengths are checked before they are added, so a damaged header cannot overflow.
        if hdr.body_len > self.end - self.pos || self.pos + hdr.total_len() > self.end {
            self.overran = true;
            return None;
        }
        let at = self.pos;
        self.pos += hdr.total_len();
        Some((at, hdr))
    }
}

/// The recovery side needs to build index entries.
pub(crate) fn recovered_loc(seg: usize, off: u64, hdr: EntryHeader, expires_at: u64, seq: u64) -> Loc {
    Loc {
        seg: seg as u32,
        gen: 0,
        off,
        hdr,
        expires_at: AtomicU64::new(expires_at),
        freq: AtomicU8::new(0),
        seq,
    }
}
