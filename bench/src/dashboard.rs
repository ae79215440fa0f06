//! What the dashboard costs: hits per server CPU-second with the dashboard open (its data,
//! `GET /stats`, fetched once a second as the page does) against the same load without it.
//! One slabfront (one worker, pinned to core 0, admin thread included in its CPU time) in
//! front of the nginx origin; load and origin on core 1. The two modes alternate round by
//! round (ABBA...), so that drift on a shared machine falls on both; medians and spreads.

use crate::{median, start_slabfront_with, wrk, Args, Sample, ServerProc, SMALL};
use anyhow::{bail, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SF_PORT: u16 = 18085;
const ADMIN_PORT: u16 = 18086;
const BASE_PORT: u16 = 18087;
const BASE_ADMIN_PORT: u16 = 18088;

fn start(bin: &Path, work: &Path, name: &str, port: u16, admin: u16) -> Result<ServerProc> {
    let config = crate::proxy::proxy_config(
        port,
        &crate::proxy::plain_origin(),
        "",
        &format!("[admin]\nlisten = \"127.0.0.1:{admin}\""),
        &work.join(format!("{name}-slab")),
        "1GiB",
    );
    start_slabfront_with(bin, work, name, &config, port)
}

/// One GET on the admin listener; the body length.
fn get(port: u16, path: &str) -> Result<usize> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut all = Vec::new();
    c.read_to_end(&mut all)?;
    if !all.starts_with(b"HTTP/1.1 200") {
        bail!(
            "GET {path}: {}",
            String::from_utf8_lossy(&all[..all.len().min(80)])
        );
    }
    Ok(all.len())
}

/// The open page: `/` once, then `/stats` every second until stopped.
fn poller(stop: Arc<AtomicBool>, polls: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = get(ADMIN_PORT, "/");
        while !stop.load(Ordering::Acquire) {
            if get(ADMIN_PORT, "/stats").is_ok() {
                polls.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.0}-{hi:.0}")
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Closed,
    Open,
    Baseline,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Closed => "dashboard closed",
            Mode::Open => "dashboard open, /stats every 1 s",
            Mode::Baseline => "--baseline binary, dashboard closed",
        }
    }
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = crate::make_site(work.path())?;
    let _origin = crate::proxy::start_origin(&root, work.path())?;
    let sf = start(bin, work.path(), "slabfront-dashboard", SF_PORT, ADMIN_PORT)?;
    crate::wait_port(ADMIN_PORT)?;
    let base = match &args.baseline {
        Some(b) => Some(start(
            b,
            work.path(),
            "slabfront-baseline",
            BASE_PORT,
            BASE_ADMIN_PORT,
        )?),
        None => None,
    };
    // Warm: the object is in the slab before any measured round.
    for port in [Some(SF_PORT), base.as_ref().map(|b| b.port)]
        .into_iter()
        .flatten()
    {
        for _ in 0..3 {
            crate::proxy::fetch(port, SMALL)?;
        }
    }
    let secs = args.duration;
    let rounds = args.runs.max(2);
    eprintln!(
        "machine: {} cores, {}; {rounds} rounds x {secs}s per mode; slabfront on core 0, load and origin on core 1",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::procstat::cpu_model(),
    );
    let mut modes = vec![Mode::Closed, Mode::Open];
    if base.is_some() {
        modes.push(Mode::Baseline);
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); modes.len()];
    let polls = Arc::new(AtomicU64::new(0));
    for round in 0..rounds {
        // The order turns each round, so that no mode always comes first or last.
        let mut order: Vec<usize> = (0..modes.len()).collect();
        order.rotate_left(round % modes.len());
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let mode = modes[i];
            let server = match (mode, &base) {
                (Mode::Baseline, Some(b)) => b,
                _ => &sf,
            };
            let stop = Arc::new(AtomicBool::new(false));
            let page = (mode == Mode::Open).then(|| poller(stop.clone(), polls.clone()));
            let s = wrk(server, SMALL, 64, secs)?;
            stop.store(true, Ordering::Release);
            if let Some(p) = page {
                let _ = p.join();
            }
            eprintln!(
                "round {round} {}: {:.0} req/s, {:.0} req per CPU-s",
                mode.label(),
                s.req_s,
                s.per_cpu()
            );
            samples[i].push(s);
        }
    }
    let per = |v: &[Sample]| v.iter().map(Sample::per_cpu).collect::<Vec<_>>();
    println!("| hit 1 KiB, 64 conns (wrk), one worker | req/s (median) | req per CPU-s (median) | req per CPU-s (min-max) | errors |");
    println!("|---|---|---|---|---|");
    for (mode, v) in modes.iter().zip(&samples) {
        println!(
            "| {} | {:.0} | {:.0} | {} | {} |",
            mode.label(),
            median(v.iter().map(|s| s.req_s).collect()),
            median(per(v)),
            spread(&per(v)),
            v.iter().map(|s| s.errors).sum::<u64>()
        );
    }
    println!();
    let closed = per(&samples[0]);
    for (j, mode) in modes.iter().enumerate().skip(1) {
        let other = per(&samples[j]);
        let ratios: Vec<f64> = other.iter().zip(&closed).map(|(o, c)| o / c).collect();
        let lo = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "{} / dashboard closed, per CPU-s, paired by round: median {:.3} (min {lo:.3}, max {hi:.3}); ratio of medians {:.3}",
            mode.label(),
            median(ratios.clone()),
            median(other.clone()) / median(closed.clone()),
        );
    }
    println!("/stats answered {} times", polls.load(Ordering::Relaxed));
    poll_cost(&sf)
}

/// What one answer of `/stats` costs the server, measured without load right after the
/// rounds (a minute of top-URL sketches to merge): answers back to back, server CPU time.
fn poll_cost(sf: &ServerProc) -> Result<()> {
    const N: u32 = 300;
    let before = sf.cpu_ticks();
    let t0 = std::time::Instant::now();
    let mut size = 0;
    for _ in 0..N {
        size = get(ADMIN_PORT, "/stats")?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (sf.cpu_ticks() - before) as f64 / 100.0;
    println!(
        "/stats alone: {N} answers back to back in {wall:.2} s, {:.2} ms of server CPU each ({size} bytes): {:.3}% of one core at one poll a second",
        cpu * 1000.0 / f64::from(N),
        cpu * 100.0 / f64::from(N)
    );
    // Idle: the sampler thread and the worker's ticks, nobody polling, no load.
    let before = sf.cpu_ticks();
    std::thread::sleep(Duration::from_secs(10));
    let idle = (sf.cpu_ticks() - before) as f64 / 100.0;
    println!("idle, nobody polling: {:.3}% of one core over 10 s", idle * 10.0);
    Ok(())
}
