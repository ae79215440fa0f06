//! Slab recovery (`cache_store::Store::open`) on damaged files: the input becomes a slab file
//! (raw bytes padded or cut to a valid size; a valid header over raw bytes; bit flips or
//! overwrites of a real slab written by the store, with or without checksums re-sealed so that
//! damaged lengths and runs look genuine). Opening must return `Ok` or `Err`, never panic or
//! touch memory outside the mapping; an opened store must then answer lookups and take a new
//! object.
#![no_main]

use cache_store::{Store, StoreOptions};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The smallest geometry the store accepts: 64 KiB segments, and three of them so that a
/// two-segment run (an object larger than a segment) exists in the real slab.
const SEG: u64 = 64 * 1024;
const FILE_HEADER: u64 = 4096;
const SIZE: u64 = FILE_HEADER + 3 * SEG;

/// Keys written to the real slab, and looked up after every open.
const KEYS: [&[u8]; 5] = [b"/a", b"/b", b"/gone", b"/big", b"/empty"];

struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// A slab written by the store: a few objects, updated metadata, a removed one and one
    /// spanning two segments.
    real: Vec<u8>,
}

fn scratch() -> &'static Scratch {
    static S: OnceLock<Scratch> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("slab");
        {
            let store = Store::open(&options(&path)).expect("a fresh slab opens");
            let mut w = store.writer();
            w.insert(b"/a", b"content-type: text/plain", b"hello", u64::MAX)
                .expect("insert");
            w.insert(b"/b", b"etag: \"1\"", &[7u8; 3000], u64::MAX)
                .expect("insert");
            w.insert(b"/gone", b"", b"bye", u64::MAX).expect("insert");
            w.insert(b"/empty", b"", b"", 1).expect("insert");
            assert!(store.update_meta(b"/b", b"etag: \"2\"", u64::MAX));
            assert!(store.remove(b"/gone"));
            let big: Vec<u8> = (0..SEG + 5000).map(|i| i as u8).collect();
            w.insert(b"/big", b"x-big: 1", &big, u64::MAX).expect("insert");
            drop(w);
            store.flush().expect("flush");
        }
        let real = std::fs::read(&path).expect("read the slab back");
        assert_eq!(real.len() as u64, SIZE);
        Scratch {
            _dir: dir,
            path,
            real,
        }
    })
}

fn options(path: &std::path::Path) -> StoreOptions {
    StoreOptions {
        path: path.to_path_buf(),
        size: SIZE,
        segment_size: SEG,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let s = scratch();
    let file = match mode % 6 {
        // Raw bytes, zero-padded or cut to the slab's size (or, rarely, as long as they are).
        0 => {
            let mut f = rest.to_vec();
            if mode & 0x80 == 0 {
                f.resize(SIZE as usize, 0);
            }
            f
        }
        // Raw bytes repeated to fill the slab, under a valid header and segment checksums.
        1 => {
            let mut f = vec![0u8; SIZE as usize];
            if !rest.is_empty() {
                for (i, b) in f.iter_mut().enumerate().skip(FILE_HEADER as usize) {
                    *b = rest[i % rest.len()];
                }
            }
            f[..64].copy_from_slice(&s.real[..64]);
            reseal(&mut f);
            f
        }
        // Bit flips of the real slab: (offset u32, xor mask u8) records.
        2 | 3 => {
            let mut f = s.real.clone();
            for r in rest.chunks_exact(5) {
                let off = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize % f.len();
                f[off] ^= r[4];
            }
            if mode % 6 == 3 {
                reseal(&mut f);
            }
            f
        }
        // An overwrite of the real slab: offset u32, then the bytes to write there.
        _ => {
            let mut f = s.real.clone();
            if rest.len() >= 4 {
                let off = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize % f.len();
                let bytes = &rest[4..];
                let n = bytes.len().min(f.len() - off);
                f[off..off + n].copy_from_slice(&bytes[..n]);
            }
            if mode % 6 == 5 {
                reseal(&mut f);
            }
            f
        }
    };
    std::fs::write(&s.path, &file).expect("write the slab file");
    let Ok(store) = Store::open(&options(&s.path)) else {
        return;
    };
    for key in KEYS.iter().copied().chain(std::iter::once(rest)) {
        let _ = store.entry_head(key);
        if let Some(hit) = store.get(key) {
            assert_eq!(hit.body().len() as u64, hit.body_len());
            let _ = (hit.meta().len(), hit.expires_at(), hit.written_at());
            let _ = hit.body().iter().fold(0u8, |a, &b| a ^ b);
        }
    }
    let _ = store.stats();
    let mut w = store.writer();
    if w.insert(b"/new", b"m", &[1u8; 20_000], u64::MAX).is_ok() {
        let hit = store.get(b"/new").expect("just written");
        assert_eq!(hit.body(), &[1u8; 20_000][..]);
    }
    let _ = w.insert(b"/big", b"x-big: 2", &[2u8; 70_000], u64::MAX);
    drop(w);
    let _ = store.remove(b"/a");
    let _ = store.remove_prefix(b"/b");
});

// The slab layout, as cache-store's `format` module writes it: re-sealing makes damaged
// headers pass their checksums, so that recovery acts on what they say.

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

fn put_u32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

const SEG_MAGIC: u32 = 0x5346_5347;
const ENTRY_MAGIC: u32 = 0x5346_454e;
const SEG_HEADER: usize = 64;
const ENTRY_HEADER: usize = 64;
const SLOT_HEADER: usize = 24;

/// Recomputes the file header's, every segment header's, and every reachable entry's and
/// metadata slot's checksums (and entries' key hashes) over what the bytes now say.
fn reseal(f: &mut [u8]) {
    let crc = crc32fast::hash(&f[..56]);
    put_u32(f, 56, crc);
    let segments = ((f.len() as u64 - FILE_HEADER) / SEG) as usize;
    for i in 0..segments {
        let start = (FILE_HEADER + i as u64 * SEG) as usize;
        if u32_at(f, start) != SEG_MAGIC {
            continue;
        }
        let crc = crc32fast::hash(&f[start..start + 16]);
        put_u32(f, start + 16, crc);
        let run = (u32_at(f, start + 4) as usize).clamp(1, segments - i);
        let seq = u64_at(f, start + 8);
        let end = start + run * SEG as usize;
        let mut pos = start + SEG_HEADER;
        while pos + ENTRY_HEADER <= end && u32_at(f, pos) == ENTRY_MAGIC && u64_at(f, pos + 8) == seq {
            let key_len = u32_at(f, pos + 24) as usize;
            let meta_cap = u32_at(f, pos + 28) as usize;
            let body_len = u64_at(f, pos + 32);
            let body_off = ENTRY_HEADER + key_len + 2 * (SLOT_HEADER + meta_cap);
            if body_len > (end - pos) as u64 || pos + body_off + body_len as usize > end {
                break;
            }
            let body_len = body_len as usize;
            let key = pos + ENTRY_HEADER..pos + ENTRY_HEADER + key_len;
            let body = pos + body_off..pos + body_off + body_len;
            let hash = xxhash_rust::xxh3::xxh3_64(&f[key.clone()]);
            f[pos + 16..pos + 24].copy_from_slice(&hash.to_le_bytes());
            let mut content = crc32fast::Hasher::new();
            content.update(&f[key]);
            content.update(&f[body]);
            let mut h = crc32fast::Hasher::new();
            h.update(&f[pos + 16..pos + 48]);
            h.update(&content.finalize().to_le_bytes());
            let crc = h.finalize();
            put_u32(f, pos + 48, crc);
            for slot in 0..2 {
                let at = pos + ENTRY_HEADER + key_len + slot * (SLOT_HEADER + meta_cap);
                let len = u32_at(f, at + 16) as usize;
                if len <= meta_cap {
                    let mut h = crc32fast::Hasher::new();
                    h.update(&f[at..at + 20]);
                    h.update(&f[at + SLOT_HEADER..at + SLOT_HEADER + len]);
                    let crc = h.finalize();
                    put_u32(f, at + 20, crc);
                }
            }
            pos += (body_off + body_len).div_ceil(8) * 8;
        }
    }
}
