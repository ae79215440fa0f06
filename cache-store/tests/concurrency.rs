#![allow(clippy::unwrap_used)]
//! Readers hold guards while writers wrap the slab several times: a held body never changes.

use cache_store::{Store, StoreOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn body(k: u64, v: u64) -> Vec<u8> {
    let len = 2000 + ((k * 31 + v) % 30_000) as usize;
    (0..len)
        .map(|i| (i as u64 ^ k ^ v.rotate_left(7)) as u8)
        .collect()
}

#[test]
fn held_guards_survive_writers_wrapping_the_slab() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreOptions {
        path: dir.path().join("slab"),
        size: 4096 + 12 * 131_072,
        segment_size: 131_072,
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..2u64 {
        let (store, stop) = (store.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut w = store.writer();
            let mut v = t;
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                v += 2;
                let k = v % 64;
                let b = body(k, v);
                written += b.len() as u64;
                w.insert(format!("k{k}").as_bytes(), &v.to_le_bytes(), &b, u64::MAX)
                    .unwrap();
            }
            written
        }));
    }
    let mut checks = 0;
    let mut readers = Vec::new();
    for r in 0..2u64 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut n = 0;
            let mut k = r;
            while !stop.load(Ordering::Relaxed) {
                k = (k * 13 + 7) % 64;
                if let Some(g) = store.get(format!("k{k}").as_bytes()) {
                    let mut v = [0u8; 8];
                    v.copy_from_slice(g.meta());
                    let v = u64::from_le_bytes(v);
                    let want = body(k, v);
                    assert!(g.body() == want.as_slice());
                    // Hold it while the writers go round.
                    std::thread::sleep(Duration::from_millis(2));
                    assert!(g.body() == want.as_slice(), "body changed under a held guard");
                    n += 1;
                }
            }
            n
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let written: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    for r in readers {
        checks += r.join().unwrap();
    }
    let capacity = store.stats().capacity;
    assert!(
        written > 3 * capacity,
        "writers wrapped only {written} bytes over {capacity}"
    );
    assert!(checks > 50, "readers checked only {checks} objects");
}
