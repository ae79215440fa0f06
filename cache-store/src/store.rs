//! The store's API: lookups, readers, writers, invalidation and counters, over the shared
//! state in `slab`.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::format::*;
use crate::options::StoreOptions;
use crate::slab::{now_secs, Inner, IoKind, Loc};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

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
    /// I/O errors on the slab: writes the file did not take (the object was not admitted),
    /// ranges that could not be given fresh pages, and pages of the mapping the kernel could
    /// not supply (a read error, or the file truncated under the process; see the crate docs).
    pub io_errors: u64,
}

/// A handle to an open slab; cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates and preallocates) the slab described by `opts`.
    pub fn open(opts: &StoreOptions) -> Result<Store> {
        Ok(Store {
            inner: crate::recover::open(opts)?,
        })
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
        if inner.disabled() || !inner.pin(seg, gen) {
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let faults = inner.map.faults();
        let guard = ReadGuard {
            inner: self.inner.clone(),
            seg,
            off,
            hdr,
            meta: Vec::new(),
            expires_at,
            faults,
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
            self.unindex(h, off, gen);
            return None;
        }
        let Some((_, _, exp, meta)) = inner.read_meta(off, &hdr) else {
            inner.counters.corrupt.fetch_add(1, Ordering::Relaxed);
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        // Once the mapping has faulted, pages of it may read as zeros, or (written by pwrite
        // since) differ from the file: a hit is verified before it is handed out. Before
        // any fault, entries were verified when recovered or written by this process.
        if inner.map.faults() != 0 && (inner.disabled() || !inner.entry_intact(off, &hdr)) {
            drop(guard);
            inner.counters.corrupt.fetch_add(1, Ordering::Relaxed);
            inner.counters.misses.fetch_add(1, Ordering::Relaxed);
            self.unindex(h, off, gen);
            return None;
        }
        inner.counters.hits.fetch_add(1, Ordering::Relaxed);
        let mut guard = guard;
        guard.meta = meta;
        guard.expires_at = exp;
        Some(guard)
    }

    /// Drops the index entry for hash `h` if it is still the one at `off` in generation `gen`.
    fn unindex(&self, h: u64, off: u64, gen: u64) {
        let inner = &self.inner;
        let mut shard = inner.shard(h).write().unwrap_or_else(|e| e.into_inner());
        if shard.get(&h).is_some_and(|l| l.off == off && l.gen == gen) {
            if let Some(l) = shard.remove(&h) {
                inner
                    .counters
                    .bytes_used
                    .fetch_sub(l.hdr.total_len(), Ordering::Relaxed);
            }
        }
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
            if unsafe { inner.write(l.off + l.hdr.slot_offset(1 - active), &bytes) }.is_err() {
                return false;
            }
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
            unsafe { inner.write(0, &hdr.encode()) }?;
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
        // Faults not yet noticed by a lookup or a write are counted now.
        self.inner.disabled();
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
            io_errors: c.io_errors.load(Ordering::Relaxed),
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
    /// The mapping's fault count when the object was looked up.
    faults: u64,
}

impl ReadGuard {
    /// Whether no page of the slab's mapping has faulted since this object was looked up.
    /// A fault (a read error, or the file truncated under the process) turns the page into
    /// zeros: a caller that copies [`body`](Self::body) out of the mapping and must not pass
    /// on wrong bytes checks this after the copy, and treats `false` as a failed read.
    pub fn intact(&self) -> bool {
        self.inner.map.faults() == self.faults
    }

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
        // After a fault the mapping (whose bytes were verified) and the file may differ.
        if self.inner.map.faults() != 0 {
            return None;
        }
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
        if self.inner.disabled() {
            return Err(Error::Io {
                path: self.inner.path.clone(),
                source: std::io::Error::other("the slab is disabled: its file was truncated"),
            });
        }
        let faults = self.inner.map.faults();
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
            inner.write(start, &[0u8; ENTRY_HEADER as usize])?;
            inner.write(start + ENTRY_HEADER, key)?;
            inner.write(start + hdr.slot_offset(0), &slot_a)?;
            inner.write(start + hdr.slot_offset(1), &[0u8; SLOT_HEADER as usize])?;
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(key);
        Ok(WriteHandle {
            w: WriterRef::Borrowed(self),
            start,
            hdr,
            crc,
            expires_at,
            faults,
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
        let (start, hdr, crc, expires_at, faults) = (h.start, h.hdr, h.crc, h.expires_at, h.faults);
        Ok(WriteHandle {
            w: WriterRef::Owned(owned),
            start,
            hdr,
            crc,
            expires_at,
            faults,
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
            let carried = unsafe {
                let bytes = inner.map.slice(from, len).to_vec();
                inner.write(run.pos, &bytes)
            };
            if let Err(e) = carried {
                // Both runs are given up (sealed: the old one keeps what it committed, the new
                // one holds nothing); the entry in progress is lost, and so are the reinsertions.
                if let Some(o) = old {
                    inner.seal(o.head);
                }
                inner.seal(run.head);
                let dropped = reinsert.len() as u64;
                inner.counters.evictions.fetch_add(dropped, Ordering::Relaxed);
                reinsert.clear();
                self.reinsert = reinsert;
                return Err(e);
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
                let written = unsafe {
                    inner
                        .write(off + 4, &hdr.encode_body())
                        .and_then(|()| inner.write(off + ENTRY_HEADER, &bytes[ENTRY_HEADER as usize..]))
                };
                if written.is_err() {
                    // Not committed (no magic): the next entry goes over it.
                    inner.counters.evictions.fetch_add(1, Ordering::Relaxed);
                    continue;
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
    /// The mapping's fault count when the object was begun: a fault meanwhile may have
    /// swallowed some of its bytes, so it is not committed.
    faults: u64,
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
                .write(self.start + body_at + self.hdr.body_len, data)?
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
        unsafe { inner.write(off + 4, &self.hdr.encode_body()) }?;
        let faulted = || {
            (inner.map.faults() != self.faults).then(|| {
                let e = std::io::Error::other("the slab's mapping faulted while the object was written");
                inner.io_error(IoKind::Write, 1, &e);
                Error::Io {
                    path: inner.path.clone(),
                    source: e,
                }
            })
        };
        if let Some(e) = faulted() {
            return Err(e);
        }
        inner.map.atomic_u32(off).store(ENTRY_MAGIC, Ordering::Release);
        run.pos = off + self.hdr.total_len();
        if let Some(e) = faulted() {
            return Err(e);
        }
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
