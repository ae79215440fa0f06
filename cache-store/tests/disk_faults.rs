#![allow(clippy::unwrap_used)]
//! Disk faults: a slab the disk cannot hold, a disk that fills up under an open slab, and the
//! slab file truncated under the running process. Each ends in errors and misses, counted,
//! never in a dead process. The scenarios that could die of SIGBUS run in a child process
//! (this test binary again, told which scenario by an environment variable), so that an
//! unhandled signal fails the test instead of killing the harness.
//!
//! The small file systems are tmpfs mounts made by the test (root only); where mounting is
//! not permitted those tests say so and pass without running.

use cache_store::{Error, Store, StoreOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const CHILD_ENV: &str = "CACHE_STORE_DISK_FAULT_CHILD";
const SEG: u64 = 64 * 1024;

/// A tmpfs of `size` mounted on a fresh temporary directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// `None` (with the reason printed) when this process may not mount.
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a small tmpfs (root needed): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Runs the test `name` in a child process with `CHILD_ENV` set, and checks that it passed
/// (a SIGBUS nobody handled shows as death by signal). True in the child itself: the caller
/// then runs the scenario.
fn in_child(name: &str) -> bool {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        return true;
    }
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.signal(),
        None,
        "the child died of signal {:?} (7 is SIGBUS):\n{log}",
        out.status.signal()
    );
    assert!(out.status.success(), "the child failed:\n{log}");
    assert!(log.contains("1 passed"), "the child ran no test:\n{log}");
    println!("child:\n{log}");
    false
}

fn opts(path: PathBuf, segments: u64) -> StoreOptions {
    StoreOptions {
        path,
        size: 4096 + segments * SEG,
        segment_size: SEG,
    }
}

/// A self-describing body, so any wrong byte shows.
fn body(k: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 ^ k.wrapping_mul(0x9e37_79b9)) as u8 | 1)
        .collect()
}

fn key(k: u64) -> Vec<u8> {
    format!("/object/{k}").into_bytes()
}

/// Fills the file system of `dir` up with a file of its own, to the last byte it takes.
fn fill(dir: &Path, name: &str) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(name)).unwrap();
    let chunk = vec![0xa5u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
}

#[test]
fn a_slab_the_disk_cannot_hold_fails_to_open_with_path_size_and_space() {
    let Some(fs) = SmallFs::mount("8m") else {
        return;
    };
    let path = fs.path().join("slab");
    let o = opts(path.clone(), 255); // 16 MiB on an 8 MiB disk
    let err = Store::open(&o).err().expect("a 16 MiB slab cannot open on 8 MiB");
    let msg = err.to_string();
    match err {
        Error::NoSpace {
            needed, available, ..
        } => {
            assert_eq!(needed, o.size);
            assert!(available <= 8 << 20, "available {available}");
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&o.size.to_string()), "{msg}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "no half-made slab is left"
    );

    // One that fits is opened with every block allocated: no hole for a later write to fall
    // into when the disk has filled up.
    let o = opts(path.clone(), 63); // 4 MiB
    let store = Store::open(&o).unwrap();
    let m = std::fs::metadata(&path).unwrap();
    assert!(
        m.blocks() * 512 >= o.size,
        "{} of {} bytes allocated",
        m.blocks() * 512,
        o.size
    );
    drop(store);
}

#[test]
fn an_existing_sparse_slab_gets_its_blocks_or_fails_to_open() {
    let Some(fs) = SmallFs::mount("8m") else {
        return;
    };
    let path = fs.path().join("slab");
    let o = opts(path.clone(), 63); // 4 MiB
    let w = Store::open(&o).unwrap();
    w.writer()
        .insert(b"/kept", b"m", &body(1, 3000), u64::MAX)
        .unwrap();
    w.flush().unwrap();
    drop(w);
    // Holes, as a slab made sparse by an older build has (or one copied without its holes).
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
    rustix::fs::fallocate(&f, flags, 4096 + 8 * SEG, 48 * SEG).unwrap();
    drop(f);
    let sparse = std::fs::metadata(&path).unwrap().blocks() * 512;
    assert!(sparse + 48 * SEG <= o.size + 4096, "the holes are there");

    // With the disk full, the holes cannot be filled: open fails, naming what is missing.
    fill(fs.path(), "filler");
    match Store::open(&o).err() {
        Some(Error::NoSpace { needed, .. }) => assert!(needed >= 48 * SEG, "needed {needed}"),
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        o.size,
        "an existing slab is kept"
    );
    // With room again, they are filled, and what the slab held is still there.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    let store = Store::open(&o).unwrap();
    assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= o.size);
    assert_eq!(store.get(b"/kept").unwrap().body(), &body(1, 3000)[..]);
}

/// Inserts objects `ks` (large and small in turn), noting which were stored and which
/// failed; with `stop`, up to the first failure.
fn insert_all(
    w: &mut cache_store::Writer,
    ks: impl Iterator<Item = u64>,
    stop: bool,
    stored: &mut Vec<(u64, usize)>,
    failed: &mut Vec<u64>,
) {
    for k in ks {
        let len = if k % 2 == 0 { 40_000 } else { 3000 };
        match w.insert(&key(k), b"m", &body(k, len), u64::MAX) {
            Ok(()) => stored.push((k, len)),
            Err(e) => {
                assert!(matches!(e, Error::Io { .. }), "{e:?}");
                failed.push(k);
                if stop {
                    return;
                }
            }
        }
    }
}

#[test]
fn a_disk_that_fills_up_under_an_open_slab_gives_misses_and_counted_errors() {
    if !in_child("a_disk_that_fills_up_under_an_open_slab_gives_misses_and_counted_errors") {
        return;
    }
    let Some(fs) = SmallFs::mount("8m") else {
        return;
    };
    let path = fs.path().join("slab");
    let store = Store::open(&opts(path.clone(), 63)).unwrap();
    let mut w = store.writer();
    for k in 0..4 {
        w.insert(&key(k), b"m", &body(k, 5000), u64::MAX).unwrap();
    }
    // The blocks behind the last object are lost (punched out: the same state a range is in
    // between the two steps of getting fresh pages on a file system without ZERO_RANGE), and
    // the disk fills up.
    let (off, head, len) = store.entry_head(&key(3)).unwrap();
    let from = (off + head + len).div_ceil(4096) * 4096;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
    rustix::fs::fallocate(&f, flags, from, std::fs::metadata(&path).unwrap().len() - from).unwrap();
    fill(fs.path(), "filler");

    // Objects large (written with pwrite) and small (through the mapping) now meet a disk
    // that has no block for them: errors, not SIGBUS. First small ones, up to the first
    // error (the writer's open run is then still where it failed, and a page of the mapping
    // has faulted).
    let mut failed = Vec::new();
    let mut stored = vec![(0, 5000), (1, 5000), (2, 5000), (3, 5000)];
    insert_all(&mut w, (11..40).step_by(2), true, &mut stored, &mut failed);
    assert_eq!(failed.len(), 1, "a write must have failed");
    assert!(store.stats().io_errors >= 1, "{:?}", store.stats());

    // Room again. Pages of the mapping that faulted are memory of their own now, while large
    // bodies go to the file: where the two meet, what the mapping shows is not what was
    // written, and a hit must not hand that out.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    let mut again = Vec::new();
    for k in 100..110 {
        if w.insert(&key(k), b"m", &body(k, 20_000), u64::MAX).is_ok() {
            again.push(k);
        }
    }
    assert!(!again.is_empty(), "with room again, objects are admitted");
    for k in again {
        if let Some(g) = store.get(&key(k)) {
            assert!(g.body() == &body(k, 20_000)[..], "object {k} came back wrong");
        }
    }

    // Full again: every kind of write fails, and keeps failing cleanly.
    fill(fs.path(), "filler");
    insert_all(&mut w, 40..80, false, &mut stored, &mut failed);
    drop(w);
    let st = store.stats();
    println!("failed {failed:?}, stored {stored:?}, {st:?}");
    assert!(failed.len() > 1, "writes must have failed");
    assert!(st.io_errors >= 2, "{st:?}");
    for k in &failed {
        assert!(store.get(&key(*k)).is_none(), "object {k} was not admitted");
    }
    // Whatever is found is exactly what was written: the objects from before, and any that
    // landed in memory only.
    for (k, len) in stored {
        if let Some(g) = store.get(&key(k)) {
            assert!(g.body() == &body(k, len)[..], "object {k} came back wrong");
        } else {
            assert!(k >= 10, "object {k}, stored before the disk filled, is lost");
        }
    }
}

#[test]
fn truncating_the_slab_under_an_open_store_gives_misses_not_sigbus() {
    if !in_child("truncating_the_slab_under_an_open_store_gives_misses_not_sigbus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slab");
    let store = Store::open(&opts(path.clone(), 63)).unwrap();
    let mut w = store.writer();
    let sizes = [100usize, 3000, 70_000, 200_000];
    for (k, &len) in sizes.iter().enumerate() {
        w.insert(&key(k as u64), b"meta", &body(k as u64, len), u64::MAX)
            .unwrap();
    }
    let held = store.get(&key(3)).unwrap();
    assert!(held.intact());
    assert_eq!(store.stats().io_errors, 0);

    // Someone truncates the file to its header.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();

    // A body already handed out reads as zeros where its pages are gone, and says so.
    let sum: u64 = held.body().iter().map(|&b| u64::from(b)).sum();
    assert!(sum < body(3, 200_000).iter().map(|&b| u64::from(b)).sum());
    assert!(!held.intact(), "the guard knows its bytes are not the object's");
    // Reading from the file (as sendfile and the cold path do) is an error, not bytes.
    assert!(store.read_range(held.body_offset(), held.body_len()).is_err());
    drop(held);

    // Every lookup is a miss; the faults are counted.
    for k in 0..sizes.len() as u64 {
        assert!(store.get(&key(k)).is_none(), "object {k} after truncation");
    }
    let st = store.stats();
    println!("{st:?}");
    assert!(st.io_errors >= 1, "{st:?}");
    // And writing is refused, not a signal.
    assert!(w.insert(b"/new", b"m", &body(9, 3000), u64::MAX).is_err());
    assert!(w.insert(b"/new-large", b"m", &body(9, 90_000), u64::MAX).is_err());
    assert!(store.get(b"/new").is_none());
}

#[test]
fn a_body_cut_off_under_a_hit_reads_as_zeros_and_its_guard_says_so() {
    if !in_child("a_body_cut_off_under_a_hit_reads_as_zeros_and_its_guard_says_so") {
        return;
    }
    // The lookup itself reads only the entry's head (key, metadata): when the file is cut
    // between the head and the body, the fault comes when the caller reads the body. The
    // guard is how the caller learns of it (a read error on the device looks the same).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slab");
    let store = Store::open(&opts(path.clone(), 63)).unwrap();
    let mut w = store.writer();
    w.insert(b"/early", b"m", &body(1, 3000), u64::MAX).unwrap();
    w.insert(b"/late", b"m", &body(2, 50_000), u64::MAX).unwrap();
    drop(w);
    let (late, head, _) = store.entry_head(b"/late").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len((late + head).div_ceil(4096) * 4096)
        .unwrap();
    let g = store.get(b"/late").expect("its head is still there");
    assert!(g.intact());
    assert!(
        g.body() != &body(2, 50_000)[..],
        "the cut-off part reads as zeros"
    );
    assert!(!g.intact(), "and the guard says its bytes are not the object's");
    drop(g);
    let st = store.stats();
    assert!(st.io_errors >= 1, "{st:?}");
    // From then on the slab, shorter than its mapping, serves nothing.
    assert!(store.get(b"/early").is_none());
    assert!(store.get(b"/late").is_none());
}
