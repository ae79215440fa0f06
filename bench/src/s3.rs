//! The S3 origin benchmark: the cost of signing. Two slabfronts, each on core 0 in turn, in
//! front of the same nginx origin (core 1): one with it as a plain HTTP origin, one with it
//! as an S3 origin (`s3_endpoint`, virtual-host style, every request SigV4-signed with
//! `aws-sigv4`; nginx ignores the signature). Everything else is alike, so the difference in
//! 1 KiB misses per server CPU-second is the signing and the S3 request shaping.

use crate::{make_site, print_rows, run_cell, start_slabfront_with, wrk_with, Args, Cell, ServerProc, SMALL};
use anyhow::Result;
use std::path::Path;

const PLAIN_PORT: u16 = 18085;
const S3_PORT: u16 = 18086;

fn start(bin: &Path, work: &Path, name: &str, port: u16, origin: &str) -> Result<ServerProc> {
    let slab = work.join(format!("{name}.slab"));
    let config = crate::proxy::proxy_config(port, origin, "query_strings = \"all\"", "", &slab, "1GiB");
    start_slabfront_with(bin, work, name, &config, port)
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = make_site(work.path())?;
    let _origin = crate::proxy::start_origin(&root, work.path())?;
    let creds = work.path().join("credentials");
    // Keys of the documentation's example: nginx does not check them.
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    )?;
    let port = crate::proxy::ORIGIN_PORT;
    let servers = [
        start(
            bin,
            work.path(),
            "slabfront-s3-signed",
            S3_PORT,
            &format!(
                "s3_bucket = \"bench\"\ns3_endpoint = \"http://127.0.0.1:{port}\"\ncredentials_file = \"{}\"",
                creds.display()
            ),
        )?,
        start(
            bin,
            work.path(),
            "slabfront-plain",
            PLAIN_PORT,
            &crate::proxy::plain_origin(),
        )?,
    ];
    let secs = args.duration;
    eprintln!(
        "machine: {} cores, {}; {} runs x {secs}s per cell; slabfront on core 0, load and origin on core 1",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::procstat::cpu_model(),
        args.runs
    );
    let script = work.path().join("unique.lua");
    std::fs::write(
        &script,
        "counter = 0\nrequest = function()\n  counter = counter + 1\n  return wrk.format(\"GET\", \"/1k.bin?miss=\" .. counter .. \"-\" .. math.random(1000000000))\nend\n",
    )?;
    let label = "miss 1 KiB, unique URLs, 64 conns (wrk)";
    let rows: Vec<(String, Cell)> = vec![(
        label.to_string(),
        run_cell(&servers, args.runs, &|s| {
            wrk_with(s, SMALL, 64, secs, Some(&script))
        })?,
    )];
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    print_rows(&rows, &names, secs);
    Ok(())
}
