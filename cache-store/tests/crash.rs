#![allow(clippy::unwrap_used)]
//! Crash safety: a child process writes under load and is killed with SIGKILL at random
//! moments; after each kill the parent reopens the slab and checks every object it can read
//! byte for byte. Nothing torn, partial or corrupt may ever be returned.

mod common;

use cache_store::Store;
use common::{expected, opts};
use std::time::Duration;

const CHILD_ENV: &str = "CACHE_STORE_CRASH_CHILD";

/// Not a test on its own: the writer run in a child process.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&opts(std::path::Path::new(&path))).unwrap();
    let mut w = store.writer();
    let mut v = std::process::id() as u64 * 1_000_000;
    loop {
        v += 1;
        let k = v % 500;
        let body = expected(k, v);
        if v.is_multiple_of(3) {
            // Streamed, in pieces.
            let mut h = w
                .begin(format!("k{k}").as_bytes(), &v.to_le_bytes(), u64::MAX, None)
                .unwrap();
            for c in body.chunks(33_333) {
                h.write(c).unwrap();
            }
            h.finish().unwrap();
        } else {
            w.insert(format!("k{k}").as_bytes(), &v.to_le_bytes(), &body, u64::MAX)
                .unwrap();
        }
        if v.is_multiple_of(97) {
            store.remove(format!("k{}", (k + 1) % 500).as_bytes());
        }
    }
}

#[test]
fn kill_9_during_heavy_writes_never_yields_a_torn_object() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slab");
    let me = std::env::current_exe().unwrap();
    let mut seen_total = 0;
    for round in 0..6u64 {
        let mut child = std::process::Command::new(&me)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + (round * 137) % 400));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        let store = Store::open(&opts(&path)).unwrap();
        let mut seen = 0;
        for k in 0..500u64 {
            if let Some(g) = store.get(format!("k{k}").as_bytes()) {
                let mut v = [0u8; 8];
                v.copy_from_slice(g.meta());
                let v = u64::from_le_bytes(v);
                assert_eq!(v % 500, k, "metadata belongs to another key");
                assert!(
                    g.body() == expected(k, v).as_slice(),
                    "round {round}: torn body for k{k} v{v}"
                );
                seen += 1;
            }
        }
        seen_total += seen;
    }
    assert!(seen_total > 0, "the child wrote nothing readable");
}
