//! The store: segments and their allocation, the sharded index, readers, writers, eviction.
//!
//! Reader/reclaimer protocol (per segment run, both sides `SeqCst`): a reader increments the
//! run head's `readers`, then checks that its `gen` still equals the generation recorded in
//! the index entry; a reclaimer increments `gen`, then checks `readers`. Either the reclaimer
//! sees the reader (and leaves the run alone until `readers` drops to zero), or the reader
//! sees the new generation (and reports a miss). So no byte is overwritten while a guard on it
//! lives.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::format::*;
use crate::map::Map;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Counters, summed at read time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes_used: u64,
    pub capacity: u64,
    pub objects: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expired: u64,
    pub corrupt_skipped: u64,
    pub reinserted: u64,
}

#[derive(Default)]
struct Counters {
    bytes_used: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expired: AtomicU64,
    corrupt: AtomicU64,
    reinserted: AtomicU64,
}

/// Per-segment shared state (meaningful on run heads).
#[derive(Default)]
struct Seg {
    gen: AtomicU64,
    readers: AtomicU64,
    /// Part of a body in this segment was lent to the kernel (`ReadGuard::lend_body`), or may
    /// have been by an earlier process: the segment gets fresh pages before it is written
    /// again.
    lent: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Being written by one writer.
    Open,
    /// Full of committed entries.
    Sealed,
    /// Reclaimed but still read by someone: reusable once `readers` is 0.
    Retired,
}

/// Allocation state: touched once per segment allocation, never per request.
struct Alloc {
    head: usize,
    seq: u64,
    state: Vec<State>,
    /// For each segment, the head of its run; for each head, the run length.
    run_head: Vec<usize>,
    run_len: Vec<usize>,
    run_seq: Vec<u64>,
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

type Shard = RwLock<HashMap<u64, Loc, ahash::RandomState>>;
const SHARDS: usize = 64;

pub(crate) struct Inner {
    pub path: String,
    pub map: Map,
    pub file: std::fs::File,
    pub header: Mutex<FileHeader>,
    pub seg_size: u64,
    pub segments: usize,
    segs: Vec<Seg>,
    alloc: Mutex<Alloc>,
    shards: Vec<Shard>,
    counters: Counters,
    /// Changes on every invalidation: a reinsertion prepared before one is dropped.
    invalidations: AtomicU64,
    /// Changes on `clear`: writers then start new runs.
    purge_epoch: AtomicU64,
    /// How reused ranges get fresh pages; `None`: bodies are never lent.
    refresh: Option<crate::pages::Refresh>,
}

/// A handle to an open slab; cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
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
        }
    }

    /// The segment holding an absolute file offset.
    fn seg_of(&self, off: u64) -> usize {
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

    fn shard(&self, h: u64) -> &Shard {
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
    fn forget(&self, l: &Loc) {
        self.tombstone(l.off);
        self.counters
            .bytes_used
            .fetch_sub(l.hdr.total_len(), Ordering::Relaxed);
    }

    /// Runs `f` on an entry's stored key while its run is pinned; `None` if the run has been
    /// reclaimed meanwhile.
    fn with_key<T>(&self, l: &Loc, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
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

    fn tombstone(&self, entry_off: u64) {
        self.map
            .atomic_u32(entry_off + 4)
            .fetch_or(FLAG_DELETED, Ordering::Release);
    }

    pub(crate) fn count_corrupt(&self, n: u64) {
        self.counters.corrupt.fetch_add(n, Ordering::Relaxed);
    }

    /// Pins a run for reading if it still holds generation `gen`.
    fn pin(&self, seg: u32, gen: u64) -> bool {
        let s = &self.segs[seg as usize];
        s.readers.fetch_add(1, Ordering::SeqCst);
        if s.gen.load(Ordering::SeqCst) == gen {
            true
        } else {
            s.readers.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }

    fn unpin(&self, seg: u32) {
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
    fn reclaim(&self, a: &mut Alloc, head: usize, reinsert: Option<&mut Vec<(Vec<u8>, u8)>>) -> bool {
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

    fn free_run(&self, a: &mut Alloc, head: usize, len: usize) {
        // Forget the run on disk too, so recovery never revisits evicted entries.
        // SAFETY: the run is free: no writer owns it and no reader holds it.
        unsafe { self.map.write(self.seg_offset(head), &[0u8; SEG_HEADER as usize]) };
        for i in head..head + len {
            a.state[i] = State::Free;
            a.run_head[i] = i;
            a.run_len[i] = 1;
        }
    }

    /// Allocates a run of `n` contiguous segments in ring order, reclaiming what is there.
    fn alloc_run(&self, n: usize, reinsert: &mut Vec<(Vec<u8>, u8)>) -> Result<(usize, u64)> {
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
                crate::pages::refresh(&self.file, how, off, len).map_err(|e| Error::Io {
                    path: self.path.clone(),
                    source: e,
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
            unsafe { self.map.write(self.seg_offset(start), &hdr.encode()) };
            return Ok((start, seq));
        }
        Err(Error::Full)
    }

    fn seal(&self, head: usize) {
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        let len = a.run_len[head];
        for i in head..head + len {
            a.state[i] = State::Sealed;
        }
    }
}

impl Store {
    /// Opens (or creates and preallocates) the slab described by `opts`.
    pub fn open(opts: &StoreOptions) -> Result<Store> {
        crate::recover::open(opts)
    }

    /// Where the indexed entry for `key`'s hash starts, the length of its header, key and
    /// metadata (the bytes `get` reads) and the length of its body, from the index alone:
    /// the slab is not touched, so a caller can check residency and bring the bytes in off
    /// its event loop before `get`.
    pub fn entry_head(&self, key: &[u8]) -> Option<(u64, u64, u64)> {
        let h = key_hash(key);
        let shard = self.inner.shard(h).read().unwrap_or_else(|e| e.into_inner());
        shard
            .get(&h)
            .map(|l| (l.off, l.hdr.body_offset(), l.hdr.body_len))
    }

    /// Looks a key up. The guard keeps the object's bytes valid while it lives.
    pub fn get(&self, key: &[u8]) -> Option<ReadGuard> {
        let inner = &self.inner;
        let h = key_hash(key);
        let found = {
            let shard = inner.shard(h).read().unwrap_or_else(|e| e.into_inner());
            shard.get(&h).map(|l| {
                let f = l.freq.load(Ordering::Relaxed);
                if f < 3 {
                    l.freq.store(f + 1, Ordering::Relaxed);
                }
                (l.seg, l.gen, l.off, l.hdr, l.expires_at.load(Ordering::Relaxed))
            })
        };
        let Some((seg, gen, off, hdr, expires_at)) = found else {
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if !inner.pin(seg, gen) {
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let guard = ReadGuard {
            inner: self.inner.clone(),
            seg,
            off,
            hdr,
            meta: Vec::new(),
            expires_at,
        };
        // SAFETY: pinned; committed entries are immutable apart from flags and meta slots.
        let stored_key = unsafe { inner.map.slice(off + ENTRY_HEADER, u64::from(hdr.key_len)) };
        if stored_key != key {
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if expires_at <= now_secs() {
            drop(guard);
            inner.counters.expired.fetch_add(1, Ordering::Relaxed);
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            let mut shard = inner.shard(h).write().unwrap_or_else(|e| e.into_inner());
            if shard.get(&h).is_some_and(|l| l.off == off && l.gen == gen) {
                if let Some(l) = shard.remove(&h) {
                    inner
                        .counters
                        .bytes_used
                        .fetch_sub(l.hdr.total_len(), Ordering::Relaxed);
                }
            }
            return None;
        }
        let Some((_, _, exp, meta)) = inner.read_meta(off, &hdr) else {
            inner.counters.corrupt.fetch_add(1, Ordering::Relaxed);
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        inner.counters.hits.fetch_add(1, Ordering::Relaxed);
        let mut guard = guard;
        guard.meta = meta;
        guard.expires_at = exp;
        Some(guard)
    }

    /// A writer for one thread. Each writer appends to segments of its own.
    pub fn writer(&self) -> Writer {
        Writer {
            inner: self.inner.clone(),
            run: None,
            reinsert: Vec::new(),
        }
    }

    /// Replaces an object's metadata and expiry without rewriting its body. False if the
    /// key is absent or the new metadata exceeds the room reserved when it was written.
    pub fn update_meta(&self, key: &[u8], meta: &[u8], expires_at: u64) -> bool {
        let inner = &self.inner;
        let h = key_hash(key);
        let shard = inner.shard(h).write().unwrap_or_else(|e| e.into_inner());
        let Some(l) = shard.get(&h) else { return false };
        if meta.len() > l.hdr.meta_cap as usize {
            return false;
        }
        let updated = inner.with_key(l, |stored| {
            if stored != key {
                return false;
            }
            let (active, version) = match inner.read_meta(l.off, &l.hdr) {
                Some((slot, v, _, _)) => (slot, v),
                None => (1, 0),
            };
            let bytes = encode_slot(version + 1, expires_at, meta);
            // SAFETY: metadata slots are written only under this shard's write lock, here while
            // the run is pinned; readers of the inactive slot verify its checksum and fall
            // back to the active one.
            unsafe { inner.map.write(l.off + l.hdr.slot_offset(1 - active), &bytes) };
            l.expires_at.store(expires_at, Ordering::Relaxed);
            true
        });
        updated == Some(true)
    }

    /// Removes one key, durably. True if it was present.
    pub fn remove(&self, key: &[u8]) -> bool {
        let inner = &self.inner;
        inner.invalidations.fetch_add(1, Ordering::SeqCst);
        let h = key_hash(key);
        let mut shard = inner.shard(h).write().unwrap_or_else(|e| e.into_inner());
        let matches = shard
            .get(&h)
            .is_some_and(|l| inner.with_key(l, |stored| stored == key) == Some(true));
        if matches {
            if let Some(l) = shard.remove(&h) {
                inner.forget(&l);
            }
        }
        matches
    }

    /// Removes every key that starts with `prefix`, durably. Returns how many.
    pub fn remove_prefix(&self, prefix: &[u8]) -> usize {
        let inner = &self.inner;
        inner.invalidations.fetch_add(1, Ordering::SeqCst);
        let mut n = 0;
        for shard in &inner.shards {
            let mut shard = shard.write().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, l| {
                let hit = inner.with_key(l, |stored| stored.starts_with(prefix)) == Some(true);
                if hit {
                    inner.forget(l);
                    n += 1;
                }
                !hit
            });
        }
        n
    }

    /// Removes everything, durably (one header write).
    pub fn clear(&self) -> Result<()> {
        let inner = &self.inner;
        inner.invalidations.fetch_add(1, Ordering::SeqCst);
        let seq = inner.alloc.lock().unwrap_or_else(|e| e.into_inner()).seq;
        {
            let mut hdr = inner.header.lock().unwrap_or_else(|e| e.into_inner());
            hdr.purge_before = seq;
            // SAFETY: the file header is written only under this mutex.
            unsafe { inner.map.write(0, &hdr.encode()) };
        }
        inner.purge_epoch.fetch_add(1, Ordering::SeqCst);
        for shard in &inner.shards {
            shard.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
        inner.counters.bytes_used.store(0, Ordering::Relaxed);
        inner.map.flush().map_err(|e| Error::Io {
            path: inner.path.clone(),
            source: e,
        })
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            bytes_used: c.bytes_used.load(Ordering::Relaxed),
            capacity: self.inner.segments as u64 * self.inner.seg_size,
            objects: self
                .inner
                .shards
                .iter()
                .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len() as u64)
                .sum(),
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
            corrupt_skipped: c.corrupt.load(Ordering::Relaxed),
            reinserted: c.reinserted.load(Ordering::Relaxed),
        }
    }

    /// Writes dirty pages back (on clean shutdown).
    pub fn flush(&self) -> Result<()> {
        self.inner.map.flush().map_err(|e| Error::Io {
            path: self.inner.path.clone(),
            source: e,
        })
    }

    /// The slab file (to `sendfile` a lent body from, see [`ReadGuard::lend_body`]).
    pub fn file(&self) -> &std::fs::File {
        &self.inner.file
    }

    /// Whether a range of the slab file is in memory.
    pub fn resident(&self, offset: u64, len: u64) -> bool {
        self.inner.resident(offset, len)
    }

    /// Reads `len` bytes at `offset` of the slab file into a new buffer (blocking: run it off
    /// the event loop). The bytes are an object's only while the caller holds a [`ReadGuard`]
    /// on it (nothing overwrites them meanwhile); without one, the read only brings pages in.
    pub fn read_range(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.inner.map.len())
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "range outside the slab",
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

/// A pinned object: its body stays valid (and is never overwritten) while this lives.
pub struct ReadGuard {
    inner: Arc<Inner>,
    seg: u32,
    off: u64,
    hdr: EntryHeader,
    meta: Vec<u8>,
    expires_at: u64,
}

impl ReadGuard {
    /// The body, straight from the mapping.
    pub fn body(&self) -> &[u8] {
        // SAFETY: the run is pinned for the guard's life, and committed bodies never change.
        unsafe { self.inner.map.slice(self.body_offset(), self.hdr.body_len) }
    }

    /// The metadata (a private copy).
    pub fn meta(&self) -> &[u8] {
        &self.meta
    }

    /// Offset of the body in the slab file.
    pub fn body_offset(&self) -> u64 {
        self.off + self.hdr.body_offset()
    }

    pub fn body_len(&self) -> u64 {
        self.hdr.body_len
    }

    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    pub fn written_at(&self) -> u64 {
        self.hdr.written_at
    }

    /// Whether `len` bytes of the body from `start` are in memory (sending them from the
    /// mapping then never waits for the disk).
    pub fn resident(&self, start: u64, len: u64) -> bool {
        let len = len.min(self.hdr.body_len.saturating_sub(start));
        self.inner.resident(self.body_offset() + start, len)
    }

    /// For sending the body with `sendfile` or `splice` from [`Store::file`]: the kernel may
    /// reference the body's pages after the call returns (until the bytes are acknowledged,
    /// or read on loopback), so the segments holding them are marked to get fresh pages
    /// before they are written again, and the pages lent keep their bytes. Returns the body's
    /// offset in the file, or `None` when the file system cannot give a range fresh pages
    /// (then send a copy, from [`ReadGuard::body`]). Call it before the send, guard held.
    pub fn lend_body(&self) -> Option<u64> {
        self.inner.refresh?;
        let start = self.body_offset();
        if self.hdr.body_len > 0 {
            let last = start + self.hdr.body_len - 1;
            for i in self.inner.seg_of(start)..=self.inner.seg_of(last) {
                self.inner.segs[i].lent.store(true, Ordering::SeqCst);
            }
        }
        Some(start)
    }

    /// Asks the kernel to bring the body's pages in (before sending a cold object).
    pub fn prefetch(&self) {
        if self.hdr.body_len > 0 {
            self.inner.map.will_need(self.body_offset(), self.hdr.body_len);
        }
    }
}

impl AsRef<[u8]> for ReadGuard {
    fn as_ref(&self) -> &[u8] {
        self.body()
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        self.inner.unpin(self.seg);
    }
}

struct OpenRun {
    head: usize,
    seq: u64,
    end: u64,
    pos: u64,
    epoch: u64,
}

/// Appends objects for one thread.
pub struct Writer {
    inner: Arc<Inner>,
    run: Option<OpenRun>,
    reinsert: Vec<(Vec<u8>, u8)>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(r) = self.run.take() {
            self.inner.seal(r.head);
        }
    }
}

impl Writer {
    /// Writes a whole object.
    pub fn insert(&mut self, key: &[u8], meta: &[u8], body: &[u8], expires_at: u64) -> Result<()> {
        let mut w = self.begin(key, meta, expires_at, Some(body.len() as u64))?;
        w.write(body)?;
        w.finish()
    }

    /// Starts an object whose body arrives in pieces; `size_hint` is its length if known.
    /// Nothing is visible until [`WriteHandle::finish`]; dropping the handle aborts it.
    pub fn begin<'w>(
        &'w mut self,
        key: &[u8],
        meta: &[u8],
        expires_at: u64,
        size_hint: Option<u64>,
    ) -> Result<WriteHandle<'w>> {
        // Room for the metadata to grow a little on revalidation, without much slack per entry.
        let meta_cap = ((meta.len() + meta.len() / 4 + 64).min(1 << 20) as u32).div_ceil(8) * 8;
        let key_len = u32::try_from(key.len()).map_err(|_| Error::TooLarge {
            size: key.len() as u64,
            capacity: u64::from(u32::MAX),
        })?;
        let fixed = entry_len(key_len, meta_cap, 0);
        let need = fixed + size_hint.unwrap_or(0);
        self.ensure(need)?;
        let run = self.run.as_ref().ok_or(Error::Full)?;
        let start = run.pos;
        let hdr = EntryHeader {
            flags: 0,
            seg_seq: run.seq,
            key_hash: key_hash(key),
            key_len,
            meta_cap,
            body_len: 0,
            written_at: now_secs(),
            crc: 0,
        };
        let slot_a = encode_slot(1, expires_at, meta);
        let inner = &self.inner;
        // SAFETY: `start..start+fixed` is inside the run this writer owns (ensure checked).
        unsafe {
            inner.map.write(start, &[0u8; ENTRY_HEADER as usize]);
            inner.map.write(start + ENTRY_HEADER, key);
            inner.map.write(start + hdr.slot_offset(0), &slot_a);
            inner
                .map
                .write(start + hdr.slot_offset(1), &[0u8; SLOT_HEADER as usize]);
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(key);
        Ok(WriteHandle {
            w: WriterRef::Borrowed(self),
            start,
            hdr,
            crc,
            expires_at,
        })
    }

    /// Like [`begin`](Self::begin), with a handle that owns this writer (and its open run,
    /// which is sealed when the handle is dropped).
    pub fn begin_owned(
        self,
        key: &[u8],
        meta: &[u8],
        expires_at: u64,
        size_hint: Option<u64>,
    ) -> Result<WriteHandle<'static>> {
        let mut owned = Box::new(self);
        let h = owned.begin(key, meta, expires_at, size_hint)?;
        let (start, hdr, crc, expires_at) = (h.start, h.hdr, h.crc, h.expires_at);
        Ok(WriteHandle {
            w: WriterRef::Owned(owned),
            start,
            hdr,
            crc,
            expires_at,
        })
    }

    /// Makes sure the open run has `need` bytes free from its write position.
    fn ensure(&mut self, need: u64) -> Result<()> {
        let epoch = self.inner.purge_epoch.load(Ordering::SeqCst);
        if let Some(r) = &self.run {
            if r.pos + need <= r.end && r.epoch == epoch {
                return Ok(());
            }
        }
        self.new_run(need, None).map(|_| ())
    }

    /// Seals the current run and opens one with room for `need` bytes. With `carry`, the
    /// bytes `carry.0..carry.0+carry.1` of the old run (an entry in progress) move along.
    fn new_run(&mut self, need: u64, carry: Option<(u64, u64)>) -> Result<u64> {
        let inner = self.inner.clone();
        let per_seg = inner.seg_size;
        let total = need + SEG_HEADER;
        let capacity = inner.segments as u64 * per_seg;
        if total > capacity {
            return Err(Error::TooLarge { size: need, capacity });
        }
        let n = total.div_ceil(per_seg) as usize;
        let old = self.run.take();
        let mut reinsert = std::mem::take(&mut self.reinsert);
        let generation = inner.invalidations.load(Ordering::SeqCst);
        let got = inner.alloc_run(n, &mut reinsert);
        let (head, seq) = match got {
            Ok(x) => x,
            Err(e) => {
                if let Some(o) = old {
                    inner.seal(o.head);
                }
                return Err(e);
            }
        };
        let start = inner.seg_offset(head);
        let mut run = OpenRun {
            head,
            seq,
            end: start + n as u64 * per_seg,
            pos: start + SEG_HEADER,
            epoch: inner.purge_epoch.load(Ordering::SeqCst),
        };
        let mut moved_to = run.pos;
        if let (Some((from, len)), Some(_)) = (carry, &old) {
            // SAFETY: both ranges belong to this writer (old run still open, new run just
            // allocated); they never overlap because the new run was free.
            unsafe {
                let bytes = inner.map.slice(from, len).to_vec();
                inner.map.write(run.pos, &bytes);
            }
            moved_to = run.pos;
            run.pos += len;
        }
        if let Some(o) = old {
            inner.seal(o.head);
        }
        // Hot objects from the reclaimed segment get a second chance, unless an invalidation
        // ran meanwhile (it might have named them). Only when no entry is being carried.
        if carry.is_none() && inner.invalidations.load(Ordering::SeqCst) == generation {
            for (bytes, freq) in reinsert.drain(..) {
                let len = bytes.len() as u64;
                if run.pos + len + need > run.end {
                    inner.counters.evictions.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(mut hdr) = EntryHeader::decode(&bytes) else {
                    continue;
                };
                hdr.seg_seq = seq;
                let off = run.pos;
                // SAFETY: inside the new run, owned by this writer.
                unsafe {
                    inner.map.write(off + 4, &hdr.encode_body());
                    inner
                        .map
                        .write(off + ENTRY_HEADER, &bytes[ENTRY_HEADER as usize..]);
                }
                inner.map.atomic_u32(off).store(ENTRY_MAGIC, Ordering::Release);
                let expires = inner.read_meta(off, &hdr).map_or(0, |m| m.2);
                let gen = inner.segs[head].gen.load(Ordering::SeqCst);
                let exists = inner
                    .shard(hdr.key_hash)
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains_key(&hdr.key_hash);
                run.pos += len;
                if exists {
                    inner.tombstone(off);
                    continue;
                }
                inner.index_insert(Loc {
                    seg: head as u32,
                    gen,
                    off,
                    hdr,
                    expires_at: AtomicU64::new(expires),
                    freq: AtomicU8::new(freq),
                    seq,
                });
                inner.counters.reinserted.fetch_add(1, Ordering::Relaxed);
            }
            if carry.is_none() {
                moved_to = run.pos;
            }
        } else {
            let dropped = reinsert.len() as u64;
            inner.counters.evictions.fetch_add(dropped, Ordering::Relaxed);
            reinsert.clear();
        }
        self.reinsert = reinsert;
        self.run = Some(run);
        Ok(moved_to)
    }
}

/// The writer a handle appends with: borrowed, or owned by the handle (for an object that is
/// written over a long time by a task that has no writer of its own).
enum WriterRef<'w> {
    Borrowed(&'w mut Writer),
    Owned(Box<Writer>),
}

impl std::ops::Deref for WriterRef<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        match self {
            WriterRef::Borrowed(w) => w,
            WriterRef::Owned(w) => w,
        }
    }
}

impl std::ops::DerefMut for WriterRef<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        match self {
            WriterRef::Borrowed(w) => w,
            WriterRef::Owned(w) => w,
        }
    }
}

/// An object being written. Dropping it without [`finish`](Self::finish) aborts it.
pub struct WriteHandle<'w> {
    w: WriterRef<'w>,
    start: u64,
    hdr: EntryHeader,
    crc: crc32fast::Hasher,
    expires_at: u64,
}

impl WriteHandle<'_> {
    /// Appends body bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let body_at = self.hdr.body_offset();
        let new_len = self.hdr.body_len + data.len() as u64;
        let need_end = self.start + entry_len(self.hdr.key_len, self.hdr.meta_cap, new_len);
        let end = self.w.run.as_ref().map_or(0, |r| r.end);
        if need_end > end {
            // Grow: move what is written so far into a larger run (doubling).
            let written = body_at + self.hdr.body_len;
            let want = entry_len(
                self.hdr.key_len,
                self.hdr.meta_cap,
                new_len.max(self.hdr.body_len * 2),
            );
            self.start = self.w.new_run(want, Some((self.start, written)))?;
            self.hdr.seg_seq = self.w.run.as_ref().map_or(0, |r| r.seq);
        }
        // SAFETY: the range is inside the run this writer owns (checked or just allocated).
        unsafe {
            self.w
                .inner
                .map
                .write(self.start + body_at + self.hdr.body_len, data)
        };
        self.crc.update(data);
        self.hdr.body_len = new_len;
        Ok(())
    }

    /// Commits: the checksum and header are written, the magic last, then it is indexed.
    pub fn finish(mut self) -> Result<()> {
        let content = std::mem::take(&mut self.crc).finalize();
        let mut h = crc32fast::Hasher::new();
        h.update(&self.hdr.crc_fields());
        h.update(&content.to_le_bytes());
        self.hdr.crc = h.finalize();
        let inner = self.w.inner.clone();
        let run = self.w.run.as_mut().ok_or(Error::Full)?;
        let off = self.start;
        // SAFETY: the header range is inside the run this writer owns.
        unsafe { inner.map.write(off + 4, &self.hdr.encode_body()) };
        inner.map.atomic_u32(off).store(ENTRY_MAGIC, Ordering::Release);
        run.pos = off + self.hdr.total_len();
        let head = run.head;
        let seq = run.seq;
        let gen = inner.segs[head].gen.load(Ordering::SeqCst);
        inner.index_insert(Loc {
            seg: head as u32,
            gen,
            off,
            hdr: self.hdr,
            expires_at: AtomicU64::new(self.expires_at),
            freq: AtomicU8::new(0),
            seq,
        });
        Ok(())
    }
}

/// Iterator over a run's committed entries: `(file offset, header)`. Stops at the first
/// header that is missing, belongs to an older use of the segment, or would run past the
/// run's end (then `overran` is set: a damaged header).
pub(crate) struct RunEntries<'a> {
    map: &'a Map,
    pos: u64,
    end: u64,
    seq: u64,
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
