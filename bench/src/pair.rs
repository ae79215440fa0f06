//! Two slabfront builds against each other (`--pair BEFORE`): the binary from before a change
//! and the one after it, both pinned to core 0 (one measured at a time, the load on core 1),
//! in alternating rounds A B B A, so that drift of the machine falls on both alike. Each cell
//! reports the medians, the ratio after/before, and beside it the spread of each binary
//! against itself across its rounds: a ratio inside that spread is no measured difference.

use crate::{cheap, median, start_slabfront_with, wrk, Args, Sample, ServerProc, LARGE, SMALL};
use anyhow::Result;
use std::path::Path;

const STATIC_PORTS: [u16; 2] = [18180, 18181];
const PROXY_PORTS: [u16; 2] = [18182, 18183];

/// One build's two servers: a directory origin and a caching proxy in front of the origin.
struct Build {
    statics: ServerProc,
    proxy: ServerProc,
}

fn start(bin: &Path, root: &Path, work: &Path, i: usize) -> Result<Build> {
    let (sp, pp) = (STATIC_PORTS[i], PROXY_PORTS[i]);
    let statics = start_slabfront_with(
        bin,
        work,
        &format!("static-{i}"),
        &crate::static_config(sp, root),
        sp,
    )?;
    let config = crate::proxy::proxy_config(
        pp,
        &crate::proxy::plain_origin(),
        "",
        "",
        &work.join(format!("slab-{i}")),
        "1GiB",
    );
    let proxy = start_slabfront_with(bin, work, &format!("proxy-{i}"), &config, pp)?;
    for p in [SMALL, LARGE] {
        crate::proxy::fetch(pp, p)?;
        crate::proxy::fetch(pp, p)?;
    }
    Ok(Build { statics, proxy })
}

type Measure<'a> = &'a dyn Fn(&Build) -> Result<Sample>;

pub fn run(args: &Args, after: &Path, before: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = crate::make_site(work.path())?;
    let _origin = crate::proxy::start_origin(&root, work.path())?;
    let builds = [
        start(before, &root, work.path(), 0)?,
        start(after, &root, work.path(), 1)?,
    ];
    let secs = args.duration;
    let rounds = args.runs.max(2);
    println!(
        "Paired: before = {}, after = {}; {} on {} cores; order A B B A x {}, {secs} s per measurement.\n",
        before.display(),
        after.display(),
        crate::procstat::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rounds / 2 + rounds % 2,
    );
    let cells: [(&str, &str, Measure); 6] = [
        ("static 1 KiB, 64 conns", "req/CPU-s", &|b| {
            wrk(&b.statics, SMALL, 64, secs)
        }),
        ("static 1 KiB, 1,000 conns", "req/CPU-s", &|b| {
            wrk(&b.statics, SMALL, 1000, secs)
        }),
        ("hit 1 KiB, 64 conns", "req/CPU-s", &|b| {
            wrk(&b.proxy, SMALL, 64, secs)
        }),
        ("hit 1 KiB, 1,000 conns", "req/CPU-s", &|b| {
            wrk(&b.proxy, SMALL, 1000, secs)
        }),
        ("hit 1.3 MB, 16 conns (MSG_TRUNC)", "MB/CPU-s", &|b| {
            cheap::run(b.proxy.port, LARGE, 16, secs, || b.proxy.cpu_ticks())
        }),
        ("static 1.3 MB, 16 conns (MSG_TRUNC)", "MB/CPU-s", &|b| {
            cheap::run(b.statics.port, LARGE, 16, secs, || b.statics.cpu_ticks())
        }),
    ];
    print_header("before", "after");
    for (label, unit, f) in cells {
        if args.wants(label) {
            eprintln!("running {label}");
            paired_row(label, unit, rounds, &|i| f(&builds[i]))?;
        }
    }
    Ok(())
}

/// The table's header for two servers `a` and `b`.
pub fn print_header(a: &str, b: &str) {
    println!(
        "| cell | unit | {a} (median) | {b} (median) | {b}/{a} | spread {a} | spread {b} | p99 {a} → {b} |"
    );
    println!("|---|---|---|---|---|---|---|---|");
}

/// One row: `rounds` rounds of `f(0)` and `f(1)`, alternating which goes first (A B, B A, …),
/// the medians, their ratio, each one's spread (half the range over the median) and p99.
pub fn paired_row(label: &str, unit: &str, rounds: usize, f: &dyn Fn(usize) -> Result<Sample>) -> Result<()> {
    let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
    for r in 0..rounds {
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            samples[i].push(f(i)?);
        }
    }
    let value = |s: &Sample| {
        if unit == "req/CPU-s" {
            s.per_cpu()
        } else {
            s.bytes_per_cpu() / 1e6
        }
    };
    let vals: Vec<Vec<f64>> = samples.iter().map(|v| v.iter().map(value).collect()).collect();
    let med: Vec<f64> = vals.iter().map(|v| median(v.clone())).collect();
    let spread = |v: &[f64], m: f64| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        if m > 0.0 {
            (hi - lo) / m * 50.0
        } else {
            0.0
        }
    };
    let p99: Vec<f64> = samples
        .iter()
        .map(|v| median(v.iter().map(|s| s.p99_ms).collect()))
        .collect();
    let errors: u64 = samples.iter().flatten().map(|s| s.errors).sum();
    println!(
        "| {label} | {unit} | {:.0} | {:.0} | {:.3} | ±{:.1}% | ±{:.1}% | {:.2} → {:.2} ms{} |",
        med[0],
        med[1],
        if med[0] > 0.0 { med[1] / med[0] } else { 0.0 },
        spread(&vals[0], med[0]),
        spread(&vals[1], med[1]),
        p99[0],
        p99[1],
        if errors > 0 {
            format!(" ({errors} errors)")
        } else {
            String::new()
        },
    );
    Ok(())
}
