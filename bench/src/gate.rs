//! What geo restriction and rate-based rules cost a hit (`--gate`): the same binary, a plain
//! caching proxy against one with each control on, 1 KiB hits, alternating A B B A. Every
//! request comes "through a trusted proxy" with an `X-Forwarded-For` address among 10,000
//! (10.0.0.0 to 10.0.39.15, a wrk script), sent to all three servers alike: the geo server
//! looks each one up in a country database mapping 10.0.0.0/8 to US (a whitelist of US),
//! the rate server counts each in a rate-based rule (limit 2,000,000,000 per 5 minutes, so
//! nothing is blocked and every request is counted).

use crate::pair::{paired_row, print_header};
use crate::{start_slabfront_with, wrk_with, Args, ServerProc, SMALL};
use anyhow::{bail, Context, Result};
use std::path::Path;

const PORTS: [u16; 3] = [18190, 18191, 18192];
const CLIENTS: usize = 10_000;

const XFF_SCRIPT: &str = r#"
local i = 0
request = function()
  i = (i + 1) % 10000
  local xff = "10.0." .. math.floor(i / 256) .. "." .. (i % 256)
  return wrk.format(nil, nil, { ["X-Forwarded-For"] = xff })
end
"#;

const TRUSTED: &str = "[waf]\ntrusted_proxies = [\"127.0.0.0/8\"]\n";

/// A country database mapping 10.0.0.0/8 to US, written by PyPI's mmdb-writer
/// (`SLABFRONT_MMDB_PYTHON`, else `python3`).
fn country_db(path: &Path) -> Result<()> {
    let py = std::env::var("SLABFRONT_MMDB_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys\nfrom netaddr import IPSet\nfrom mmdb_writer import MMDBWriter\n\
        w = MMDBWriter(ip_version=6, database_type='GeoLite2-Country', ipv4_compatible=True)\n\
        w.insert_network(IPSet(['10.0.0.0/8']), {'country': {'iso_code': 'US'}})\n\
        w.insert_network(IPSet(['127.0.0.0/8']), {'country': {'iso_code': 'US'}})\n\
        w.to_db_file(sys.argv[1])\n";
    let out = std::process::Command::new(&py)
        .args(["-c", script])
        .arg(path)
        .output()
        .with_context(|| format!("running {py} (pip install mmdb-writer)"))?;
    if !out.status.success() {
        bail!("mmdb-writer: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn server(bin: &Path, work: &Path, i: usize, top: &str, extra: &str) -> Result<ServerProc> {
    let config = format!(
        "{top}\n{}",
        crate::proxy::proxy_config(
            PORTS[i],
            &crate::proxy::plain_origin(),
            "",
            extra,
            &work.join(format!("slab-edge-{i}")),
            "1GiB",
        )
    );
    let s = start_slabfront_with(bin, work, &format!("edge-{i}"), &config, PORTS[i])?;
    crate::proxy::fetch(PORTS[i], SMALL)?;
    crate::proxy::fetch(PORTS[i], SMALL)?;
    Ok(s)
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = crate::make_site(work.path())?;
    let _origin = crate::proxy::start_origin(&root, work.path())?;
    let db = work.path().join("country.mmdb");
    country_db(&db)?;
    let geo = format!("{TRUSTED}[geo]\ndatabase = {:?}\n", db.display().to_string());
    let rate = format!(
        "{TRUSTED}[[waf.rules]]\nname = \"rate\"\npriority = 0\nkind = \"rate_based\"\naction = \"block\"\nlimit = 2000000000\nevaluation_window_sec = 300\n"
    );
    let servers = [
        server(bin, work.path(), 0, "", "")?,
        server(
            bin,
            work.path(),
            1,
            "geo_restriction = { restriction_type = \"whitelist\", locations = [\"US\"] }",
            &geo,
        )?,
        server(bin, work.path(), 2, "", &rate)?,
    ];
    let script = work.path().join("xff.lua");
    std::fs::write(&script, XFF_SCRIPT)?;
    let secs = args.duration;
    println!(
        "Edge controls: 1 KiB hits, X-Forwarded-For among {CLIENTS} addresses; {} on {} cores; {secs} s per measurement.\n",
        crate::procstat::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    for (i, name) in [
        (1, "geo lookup (whitelist)"),
        (2, "rate-based rule, 10,000 clients"),
    ] {
        print_header("plain", name);
        for conns in [64, 1000] {
            let label = format!("hit 1 KiB, {conns} conns");
            if args.wants(&label) {
                eprintln!("running {label}: {name}");
                paired_row(&label, "req/CPU-s", args.runs.max(2), &|k| {
                    let s = if k == 0 { &servers[0] } else { &servers[i] };
                    wrk_with(s, SMALL, conns, secs, Some(&script))
                })?;
            }
        }
        println!();
    }
    Ok(())
}
