//! The cost of choosing a distribution by Host (`--routing`): the same binary, one server with
//! one distribution and one with two distributions holding 10,000 aliases each (exact names
//! and wildcards), the same 1 KiB file requested with a Host that the table resolves (a
//! wildcard, the longest path through it), alternating A B B A.

use crate::pair::{paired_row, print_header};
use crate::{start_slabfront_with, wrk_with, Args, SMALL};
use anyhow::Result;
use std::path::Path;

const PORTS: [u16; 2] = [18186, 18187];
const ALIASES: usize = 10_000;

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = crate::make_site(work.path())?;
    let one = crate::static_config(PORTS[0], &root);
    let names = |d: usize| {
        (0..ALIASES)
            .map(|i| {
                if i % 2 == 0 {
                    format!("\"n{i}.site{d}.example\"")
                } else {
                    format!("\"*.w{i}.site{d}.example\"")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut many = format!(
        "[server]\nlisten = [\"127.0.0.1:{}\"]\nworkers = 1\nmax_connections = 19000\n",
        PORTS[1]
    );
    for d in 0..2 {
        many.push_str(&format!(
            "\n[[distributions]]\nname = \"site{d}.example\"\naliases = [{}]\n[[distributions.origins]]\nid = \"files\"\npath = {root:?}\n[distributions.default_cache_behavior]\ntarget_origin = \"files\"\n",
            names(d)
        ));
    }
    let servers = [
        start_slabfront_with(bin, work.path(), "one-distribution", &one, PORTS[0])?,
        start_slabfront_with(bin, work.path(), "many-names", &many, PORTS[1])?,
    ];
    // A wildcard of the second distribution, three labels below it: the exact hash misses,
    // then suffixes are tried from the longest.
    let script = work.path().join("host.lua");
    std::fs::write(&script, "wrk.headers[\"Host\"] = \"a.b.w9999.site1.example\"\n")?;
    let secs = args.duration;
    println!(
        "Routing: one distribution against two with {ALIASES} aliases each (half exact, half wildcards), Host resolved through a wildcard; {} on {} cores; {secs} s per measurement.\n",
        crate::procstat::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    print_header("1 distribution", "2 x 10,000 names");
    for conns in [64, 1000] {
        let label = format!("static 1 KiB, {conns} conns");
        if args.wants(&label) {
            eprintln!("running {label}");
            paired_row(&label, "req/CPU-s", args.runs.max(2), &|i| {
                wrk_with(&servers[i], SMALL, conns, secs, Some(&script))
            })?;
        }
    }
    Ok(())
}
