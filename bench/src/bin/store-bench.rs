//! cache-store benchmarks: lookup+read against a HashMap floor, write throughput, reopen
//! time, index memory per object, and a trace-driven hit-ratio comparison of the slab's
//! eviction with FIFO and LRU.

use anyhow::Result;
use cache_store::{Store, StoreOptions};
use clap::Parser;
use rand::SeedableRng;
use rand_distr::{Distribution, Zipf};
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    /// Directory for the slab files (page cache backed).
    #[arg(long, default_value = "/tmp")]
    dir: std::path::PathBuf,
    /// Slab size for the reopen test, in GiB.
    #[arg(long, default_value_t = 8)]
    reopen_gib: u64,
    /// Requests in the hit-ratio trace.
    #[arg(long, default_value_t = 400_000)]
    trace: usize,
    /// Only the hit-ratio trace.
    #[arg(long)]
    only_trace: bool,
    /// Only the index memory per object (and the reopen of that slab).
    #[arg(long)]
    index_memory: bool,
    /// Objects for the index memory test.
    #[arg(long, default_value_t = 1_000_000)]
    index_objects: u64,
}

fn read_all(b: &[u8]) -> u64 {
    // Touch every byte the way a sender would: one pass over the body.
    b.chunks(8).fold(0u64, |a, c| {
        a ^ c.iter().fold(0u64, |x, &y| x.rotate_left(8) ^ u64::from(y))
    })
}

fn lookup_bench(dir: &std::path::Path, size: usize, n: usize) -> Result<(f64, f64)> {
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("/obj/{i}").into_bytes()).collect();
    let body = vec![7u8; size];
    let total = (n * (size + 4096)) as u64 * 2 + (64 << 20);
    let path = dir.join("store-bench-lookup");
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&StoreOptions::new(&path, total))?;
    let mut w = store.writer();
    let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for k in &keys {
        w.insert(k, b"meta", &body, u64::MAX)?;
        map.insert(k.clone(), body.clone());
    }
    let rounds = (20_000_000 / size.max(1)).clamp(2, 200);
    let t = Instant::now();
    for _ in 0..rounds {
        for k in &keys {
            let g = store.get(k).expect("present");
            black_box(read_all(g.body()));
        }
    }
    let slab = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
    let t = Instant::now();
    for _ in 0..rounds {
        for k in &keys {
            let v = map.get(k).expect("present");
            black_box(read_all(v));
        }
    }
    let floor = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
    drop(w);
    drop(store);
    let _ = std::fs::remove_file(&path);
    Ok((slab, floor))
}

fn write_bench(dir: &std::path::Path) -> Result<f64> {
    let path = dir.join("store-bench-write");
    let _ = std::fs::remove_file(&path);
    let size = 2u64 << 30;
    let store = Store::open(&StoreOptions::new(&path, size))?;
    let mut w = store.writer();
    let body = vec![3u8; 1_323_539];
    // Warm the file's pages into the page cache once, then measure a second pass.
    for pass in 0..2 {
        let t = Instant::now();
        let n = (size / 1_330_000) as usize - 40;
        for i in 0..n {
            w.insert(format!("/w/{i}").as_bytes(), b"meta", &body, u64::MAX)?;
        }
        if pass == 1 {
            let secs = t.elapsed().as_secs_f64();
            drop(w);
            drop(store);
            let _ = std::fs::remove_file(&path);
            return Ok((n * body.len()) as f64 / secs / 1e9);
        }
    }
    unreachable!()
}

fn reopen_bench(dir: &std::path::Path, gib: u64) -> Result<(f64, f64, u64)> {
    let path = dir.join("store-bench-reopen");
    let _ = std::fs::remove_file(&path);
    let o = StoreOptions::new(&path, gib << 30);
    {
        let store = Store::open(&o)?;
        let mut w = store.writer();
        let body: Vec<u8> = (0..1_323_539u32).map(|i| i as u8).collect();
        let n = ((gib << 30) / 1_330_000) as usize * 95 / 100;
        for i in 0..n {
            w.insert(
                format!("/simple/{i}").as_bytes(),
                b"content-type: text/html",
                &body,
                u64::MAX,
            )?;
        }
    }
    let t = Instant::now();
    let store = Store::open(&o)?;
    let secs = t.elapsed().as_secs_f64();
    let objects = store.stats().objects;
    drop(store);
    // Cold: the file written back and its pages dropped from the page cache, as after a reboot.
    let cold = {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&path)?;
        f.sync_all()?;
        // SAFETY: a valid descriptor; advice only.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        anyhow::ensure!(rc == 0, "posix_fadvise: {rc}");
        let t = Instant::now();
        let store = Store::open(&o)?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            store.stats().objects == objects,
            "cold reopen found other objects"
        );
        secs
    };
    let _ = std::fs::remove_file(&path);
    Ok((secs, cold, objects))
}

/// Object sizes: mostly small, some large (a CDN mix).
fn size_of(key: u64) -> u64 {
    match key % 10 {
        0 => 300_000 + (key * 7919) % 1_000_000,
        1 | 2 => 20_000 + (key * 31) % 60_000,
        _ => 500 + (key * 13) % 8_000,
    }
}

fn trace(n: usize, keys: u64) -> Vec<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let z = Zipf::new(keys, 0.9).expect("valid zipf");
    (0..n).map(|_| z.sample(&mut rng) as u64).collect()
}

fn fifo_ratio(t: &[u64], cap: u64) -> f64 {
    let (mut q, mut set, mut used, mut hits) = (VecDeque::new(), std::collections::HashSet::new(), 0u64, 0);
    for &k in t {
        if set.contains(&k) {
            hits += 1;
            continue;
        }
        used += size_of(k);
        q.push_back(k);
        set.insert(k);
        while used > cap {
            let old = q.pop_front().expect("nonempty");
            set.remove(&old);
            used -= size_of(old);
        }
    }
    hits as f64 / t.len() as f64
}

fn lru_ratio(t: &[u64], cap: u64) -> f64 {
    // Recency by logical clock; eviction scans a BTreeMap ordered by last use.
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut order = std::collections::BTreeMap::new();
    let (mut used, mut hits) = (0u64, 0);
    for (clock, &k) in t.iter().enumerate() {
        let clock = clock as u64;
        if let Some(prev) = last.insert(k, clock) {
            order.remove(&prev);
            order.insert(clock, k);
            hits += 1;
            continue;
        }
        order.insert(clock, k);
        used += size_of(k);
        while used > cap {
            let (&c, &old) = order.iter().next().expect("nonempty");
            order.remove(&c);
            last.remove(&old);
            used -= size_of(old);
        }
    }
    hits as f64 / t.len() as f64
}

fn slab_ratio(dir: &std::path::Path, t: &[u64], slab_size: u64) -> Result<(f64, u64)> {
    let path = dir.join("store-bench-trace");
    let _ = std::fs::remove_file(&path);
    // The geometry slabfront picks for this size (segments of size/128, at least 1 MiB).
    let store = Store::open(&StoreOptions::new(path.clone(), slab_size))?;
    let mut w = store.writer();
    let mut hits = 0;
    let mut body = Vec::new();
    for &k in t {
        let key = k.to_le_bytes();
        if store.get(&key).is_some() {
            hits += 1;
        } else {
            body.resize(size_of(k) as usize, 1);
            w.insert(&key, b"", &body, u64::MAX)?;
        }
    }
    let cap = store.stats().capacity;
    drop(w);
    drop(store);
    let _ = std::fs::remove_file(&path);
    Ok((hits as f64 / t.len() as f64, cap))
}

/// Resident anonymous memory of this process (heap, stacks; not the mapped slab), in bytes,
/// after handing freed heap back to the kernel so that only live allocations count.
#[allow(unsafe_code)]
fn rss_anon() -> u64 {
    // SAFETY: malloc_trim only releases free memory of glibc's arenas.
    unsafe { libc::malloc_trim(0) };
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Index memory per object: `n` small objects (100-byte bodies, keys like
/// `/simple/pkg-123456/`, 40 bytes of metadata) inserted into a fresh slab large enough to
/// hold them all, and the growth of anonymous resident memory divided by `n`; then the same
/// after closing the slab and reopening it (recovery rebuilds the index from the file).
/// Returns (bytes per object after inserting, after reopening, reopen seconds, objects).
fn index_memory(dir: &std::path::Path, n: u64) -> Result<(f64, f64, f64, u64)> {
    let path = dir.join("store-bench-index");
    let _ = std::fs::remove_file(&path);
    // 64 B header + ~20 B key + 2 x (24 + 40) B slots + 100 B body = ~312 B per entry.
    let size = (n * 320 * 5 / 4 + (256 << 20)).next_multiple_of(1 << 20);
    let o = StoreOptions::new(&path, size);
    let body = vec![b'x'; 100];
    let meta = b"content-type: text/html; charset=utf-8\r\n";
    let mut key = String::with_capacity(32);
    let before = rss_anon();
    let store = Store::open(&o)?;
    {
        let mut w = store.writer();
        for i in 0..n {
            use std::fmt::Write as _;
            key.clear();
            write!(key, "/simple/pkg-{i}/")?;
            w.insert(key.as_bytes(), meta, &body, u64::MAX)?;
        }
    }
    let objects = store.stats().objects;
    anyhow::ensure!(
        objects == n,
        "{objects} of {n} objects kept: the slab is too small"
    );
    let inserted = rss_anon().saturating_sub(before) as f64 / n as f64;
    drop(store);
    let before = rss_anon();
    let t = Instant::now();
    let store = Store::open(&o)?;
    let secs = t.elapsed().as_secs_f64();
    let reopened = rss_anon().saturating_sub(before) as f64 / n as f64;
    let objects = store.stats().objects;
    drop(store);
    let _ = std::fs::remove_file(&path);
    Ok((inserted, reopened, secs, objects))
}

fn index_memory_table(a: &Args) -> Result<()> {
    let (inserted, reopened, secs, objects) = index_memory(&a.dir, a.index_objects)?;
    println!();
    println!(
        "| index memory, {} objects of 100 B (keys /simple/pkg-N/) | RssAnon growth per object |",
        a.index_objects
    );
    println!("|---|---|");
    println!("| after inserting them | {inserted:.1} bytes |");
    println!(
        "| after reopening the slab ({objects} objects recovered in {secs:.2} s) | {reopened:.1} bytes |"
    );
    Ok(())
}

fn main() -> Result<()> {
    let a = Args::parse();
    if a.index_memory {
        return index_memory_table(&a);
    }
    if !a.only_trace {
        others(&a)?;
    }
    let t = trace(a.trace, 100_000);
    let (slab, cap) = slab_ratio(&a.dir, &t, 256 << 20)?;
    println!();
    println!(
        "| hit ratio, Zipf 0.9 over 100k keys, mixed sizes, {} MiB | ratio |",
        cap >> 20
    );
    println!("|---|---|");
    println!(
        "| slab (segment CLOCK, reads counted to 3, reinsertion) | {:.4} |",
        slab
    );
    println!("| LRU (same bytes) | {:.4} |", lru_ratio(&t, cap));
    println!("| FIFO (same bytes) | {:.4} |", fifo_ratio(&t, cap));
    Ok(())
}

fn others(a: &Args) -> Result<()> {
    println!("| measure | slab | HashMap floor | ratio |");
    println!("|---|---|---|---|");
    for (label, size, n) in [
        ("get+read 1 KiB", 1024, 10_000),
        ("get+read 1.3 MB", 1_323_539, 64),
    ] {
        let (slab, floor) = lookup_bench(&a.dir, size, n)?;
        println!(
            "| {label} | {slab:.0} ns/op | {floor:.0} ns/op | {:.2}x |",
            slab / floor
        );
    }
    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| write 1.3 MB objects into page cache | {:.2} GB/s |",
        write_bench(&a.dir)?
    );
    let (secs, cold, objects) = reopen_bench(&a.dir, a.reopen_gib)?;
    println!(
        "| reopen {} GiB slab of 1.3 MB objects ({objects} objects, checksums verified), file in the page cache | {secs:.2} s ({:.3} s/GiB) |",
        a.reopen_gib,
        secs / a.reopen_gib as f64
    );
    println!(
        "| the same, cold (file written back and dropped from the page cache) | {cold:.2} s ({:.3} s/GiB) |",
        cold / a.reopen_gib as f64
    );
    index_memory_table(a)
}
