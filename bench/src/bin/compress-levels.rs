//! How long each compression level takes on the benchmark's 1.3 MB `/simple/` page, and how
//! small it gets: the measurement behind `[server.compression]`'s defaults
//! (`docs/compression.md`). Run with `cargo run --release -p slabfront-bench --bin
//! compress-levels`; each level is timed as the best of a few runs, on one core.
//!
//! `--page FILE` writes the page instead (for `scripts/bench-compress.sh`), and
//! `--br LEVEL IN OUT` compresses a file with Brotli (nginx's `brotli_static` input).

#[path = "../simple_index.rs"]
mod simple_index;

use std::io::Write;
use std::time::Instant;

fn best_of(runs: usize, f: &dyn Fn() -> Vec<u8>) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut len = 0;
    for _ in 0..runs {
        let t = Instant::now();
        len = f().len();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best * 1000.0, len)
}

/// The size of the benchmark's large page.
const PAGE_SIZE: usize = 1_323_539;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--page", out] => return Ok(std::fs::write(out, simple_index::page(PAGE_SIZE))?),
        ["--br", level, input, out] => {
            let data = std::fs::read(input)?;
            let mut enc = brotli::CompressorWriter::new(Vec::new(), 64 * 1024, level.parse()?, 22);
            enc.write_all(&data)?;
            return Ok(std::fs::write(out, enc.into_inner())?);
        }
        [] => {}
        _ => anyhow::bail!("usage: compress-levels [--page FILE | --br LEVEL IN OUT]"),
    }
    let page = simple_index::page(PAGE_SIZE);
    let n = page.len() as f64;
    println!("input: {} bytes\n", page.len());
    println!("| coding | level | ms | MB/s | bytes | ratio |");
    println!("|---|---|---|---|---|---|");
    let row = |c: &str, l: i32, (ms, len): (f64, usize)| {
        println!(
            "| {c} | {l} | {ms:.1} | {:.0} | {len} | {:.2} |",
            n / ms / 1000.0,
            n / len as f64
        );
    };
    for l in [1, 4, 6, 9] {
        let r = best_of(5, &|| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(l));
            e.write_all(&page).ok();
            e.finish().unwrap_or_default()
        });
        row("gzip", l as i32, r);
    }
    for l in [1, 4, 5, 6, 9, 11] {
        let r = best_of(3, &|| {
            let mut out = Vec::new();
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 64 * 1024, l, 22);
                e.write_all(&page).ok();
            }
            out
        });
        row("br", l as i32, r);
    }
    for l in [1, 3, 6, 9, 12, 19] {
        let r = best_of(5, &|| zstd::bulk::compress(&page, l).unwrap_or_default());
        row("zstd", l, r);
    }
    Ok(())
}
