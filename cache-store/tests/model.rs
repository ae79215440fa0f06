#![allow(clippy::unwrap_used)]
//! Property test: random inserts, streamed inserts (spanning segments), gets, removes,
//! prefix removes, metadata updates and reopens, checked against an in-memory model.

use cache_store::{Store, StoreOptions};
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u32, u8),
    Stream(u8, u32, u8),
    Get(u8),
    Remove(u8),
    RemovePrefix(u8),
    UpdateMeta(u8, u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..24, 0u32..40_000, any::<u8>()).prop_map(|(k, l, s)| Op::Insert(k, l, s)),
        1 => (0u8..24, 100_000u32..600_000, any::<u8>()).prop_map(|(k, l, s)| Op::Stream(k, l, s)),
        4 => (0u8..24).prop_map(Op::Get),
        1 => (0u8..24).prop_map(Op::Remove),
        1 => (0u8..3).prop_map(Op::RemovePrefix),
        1 => (0u8..24, any::<u8>()).prop_map(|(k, m)| Op::UpdateMeta(k, m)),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("/p{}/k{k}", k % 3).into_bytes()
}

fn value(len: u32, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(seed | 1).wrapping_add(seed))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        // Large enough that nothing is evicted: the model is exact.
        let o = StoreOptions { path: dir.path().join("slab"), size: 4096 + 160 * 262_144, segment_size: 262_144 };
        let mut store = Some(Store::open(&o).unwrap());
        let mut writer = Some(store.as_ref().unwrap().writer());
        let mut model: HashMap<Vec<u8>, (Vec<u8>, Vec<u8>)> = HashMap::new();
        for op in ops {
            let s = store.as_ref().unwrap();
            match op {
                Op::Insert(k, len, seed) => {
                    let meta = vec![seed; (seed % 50) as usize];
                    let v = value(len, seed);
                    writer.as_mut().unwrap().insert(&key(k), &meta, &v, u64::MAX).unwrap();
                    model.insert(key(k), (meta, v));
                }
                Op::Stream(k, len, seed) => {
                    let v = value(len, seed);
                    let w = writer.as_mut().unwrap();
                    let mut h = w.begin(&key(k), b"streamed", u64::MAX, None).unwrap();
                    for c in v.chunks(70_001) {
                        h.write(c).unwrap();
                    }
                    h.finish().unwrap();
                    model.insert(key(k), (b"streamed".to_vec(), v));
                }
                Op::Get(k) => {
                    let got = s.get(&key(k)).map(|g| (g.meta().to_vec(), g.body().to_vec()));
                    prop_assert_eq!(got, model.get(&key(k)).cloned());
                }
                Op::Remove(k) => {
                    prop_assert_eq!(s.remove(&key(k)), model.remove(&key(k)).is_some());
                }
                Op::RemovePrefix(p) => {
                    let prefix = format!("/p{p}/").into_bytes();
                    let before = model.len();
                    model.retain(|k, _| !k.starts_with(&prefix));
                    prop_assert_eq!(s.remove_prefix(&prefix), before - model.len());
                }
                Op::UpdateMeta(k, m) => {
                    let meta = vec![m; 10];
                    let ok = s.update_meta(&key(k), &meta, u64::MAX);
                    prop_assert_eq!(ok, model.contains_key(&key(k)));
                    if let Some(e) = model.get_mut(&key(k)) {
                        e.0 = meta;
                    }
                }
                Op::Reopen => {
                    // The old handle must be gone (and its lock released) before reopening.
                    drop(writer.take());
                    drop(store.take());
                    store = Some(Store::open(&o).unwrap());
                    writer = Some(store.as_ref().unwrap().writer());
                }
            }
        }
        let s = store.as_ref().unwrap();
        for (k, v) in &model {
            let g = s.get(k).unwrap();
            prop_assert_eq!((g.meta(), g.body()), (v.0.as_slice(), v.1.as_slice()));
        }
        prop_assert_eq!(s.stats().objects as usize, model.len());
    }
}
