//! What the crash and power-cut tests share: the slab they write and the objects in it.
#![allow(dead_code)]

use cache_store::StoreOptions;

/// A 12 MiB slab of 256 KiB segments: small enough to be rewritten many times a second.
pub fn opts(path: &std::path::Path) -> StoreOptions {
    StoreOptions {
        path: path.to_path_buf(),
        size: 4096 + 48 * 262_144,
        segment_size: 262_144,
    }
}

/// The body for key `k`, version `v`: self-describing, so any torn byte shows.
pub fn expected(k: u64, v: u64) -> Vec<u8> {
    let len = 1000 + ((k * 7919 + v * 104_729) % 200_000) as usize;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&k.to_le_bytes());
    b.extend_from_slice(&v.to_le_bytes());
    while b.len() < len {
        b.push((b.len() as u64 ^ k ^ (v << 3)) as u8);
    }
    b
}
