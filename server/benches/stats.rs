//! What the dashboard's statistics cost on the request path: nanoseconds per
//! `stats::Recorder::record` (counters, latency histogram, top-URL sketch) for a hot set of
//! URLs and for a long tail, and per origin exchange. Run:
//! `cargo bench -p slabfront --bench stats`.

use slabfront::stats::{Recorder, Stats};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn time(label: &str, n: u64, mut f: impl FnMut(u64)) {
    // Warm-up, then the best of five runs (the machine is shared).
    for i in 0..n / 10 {
        f(i);
    }
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        for i in 0..n {
            f(i);
        }
        best = best.min(t0.elapsed());
    }
    println!("{label}: {:.1} ns per call", best.as_nanos() as f64 / n as f64);
}

fn main() {
    let stats = Arc::new(Stats::new(1, &["origin".to_string()]));
    let rec = Recorder::new(stats, 0);
    let hot: Vec<String> = (0..16).map(|i| format!("/static/app-{i}.js")).collect();
    let tail: Vec<String> = (0..100_000).map(|i| format!("/simple/package-{i}/")).collect();
    let t0 = Instant::now();
    time("record, 16 hot URLs", 2_000_000, |i| {
        rec.record(0, black_box(hot[(i % 16) as usize].as_bytes()), 200, "Hit", false, 1024, t0);
    });
    time("record, 100,000 URLs round robin (every one new to the sketch)", 2_000_000, |i| {
        rec.record(0, black_box(tail[(i % 100_000) as usize].as_bytes()), 200, "Hit", false, 1024, t0);
    });
    time("origin exchange", 2_000_000, |_| {
        rec.origin(black_box("origin"), Ok(Duration::from_micros(800)));
    });
    time("Instant::now (for scale: record reads the clock once)", 2_000_000, |_| {
        black_box(Instant::now());
    });
}
