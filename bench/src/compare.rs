//! `--compare`: the whole comparison in one session. Every server is started at once, each
//! pinned to core 0 (the load generator, and the caches' origin, on core 1), and measured in
//! turn, alternating servers within each round:
//!
//! - slabfront serving a hit from its slab, and the same files from a directory origin;
//! - nginx (static files, `sendfile on` and `sendfile off`), nginx `proxy_cache`, Varnish
//!   (malloc storage) and Apache Traffic Server (its cache in a file), the three caches in
//!   front of one nginx origin;
//! - the two floors: a minimal C epoll responder writing from RAM, and the same sending the
//!   body with sendfile(2) (`bench/ref/responder.c`).
//!
//! Rows: 1 KiB (static for the file servers, a hit for the caches), the 1.3 MB page with the
//! cheap (MSG_TRUNC) client, and unique-URL misses (caches only); then HTTPS (`tls::run`,
//! slabfront against nginx) and idle keep-alive memory. Medians of `--runs` rounds (3 by
//! default), per server CPU-second, with the CPU model in the header. Every process is
//! stopped by the PID it was started with.

use crate::{
    cheap, make_site, print_rows, procstat, proxy, run_cell, start_nginx_with, wait_port, wrk, wrk_with,
    Args, Cell, Sample, ServerProc, LARGE, LARGE_SIZE, SMALL,
};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

const SF_HIT_PORT: u16 = 18200;
const NGINX_NOSENDFILE_PORT: u16 = 18201;
const TRAFFICSERVER_PORT: u16 = 18204;
const C_SENDFILE_PORT: u16 = 18205;

/// nginx serving the site's files, one worker on core 0, `sendfile` on or off.
fn start_nginx_static(root: &Path, work: &Path, sendfile: bool, port: u16) -> Result<ServerProc> {
    let (dir, name) = if sendfile {
        ("nginx-static", "nginx (sendfile on)")
    } else {
        ("nginx-nosendfile", "nginx (sendfile off)")
    };
    start_nginx_with(
        work,
        dir,
        "0",
        name,
        &crate::nginx_static(root, port, sendfile),
        port,
    )
}

/// Apache Traffic Server (Debian's `trafficserver`) as a reverse proxy cache in front of the
/// benchmark origin, in a private runroot under `work`, on core 0 with one worker thread.
fn start_trafficserver(work: &Path) -> Result<ServerProc> {
    let d = work.join("trafficserver");
    for sub in ["etc", "cache", "log", "run", "var"] {
        std::fs::create_dir_all(d.join(sub))?;
    }
    let status = Command::new("cp")
        .arg("-r")
        .arg("/etc/trafficserver/.")
        .arg(d.join("etc"))
        .status()
        .context("copying /etc/trafficserver (install it with scripts/bench-deps.sh)")?;
    anyhow::ensure!(status.success(), "no /etc/trafficserver: install trafficserver");
    let origin = proxy::ORIGIN_PORT;
    std::fs::write(
        d.join("etc/records.config"),
        format!(
            "CONFIG proxy.config.http.server_ports STRING {TRAFFICSERVER_PORT}:ipv4:ip-in=127.0.0.1\n\
             CONFIG proxy.config.exec_thread.autoconfig INT 0\n\
             CONFIG proxy.config.exec_thread.limit INT 1\n\
             CONFIG proxy.config.accept_threads INT 0\n\
             CONFIG proxy.config.cache.ram_cache.size INT 268435456\n\
             CONFIG proxy.config.http.cache.http INT 1\n\
             CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 120\n\
             CONFIG proxy.config.net.connections_throttle INT 30000\n\
             CONFIG proxy.config.log.logging_enabled INT 0\n\
             CONFIG proxy.config.http.insert_response_via_str INT 0\n\
             CONFIG proxy.config.reverse_proxy.enabled INT 1\n\
             CONFIG proxy.config.url_remap.remap_required INT 1\n\
             CONFIG proxy.config.diags.logfile_perm STRING rw-r--r--\n\
             CONFIG proxy.config.admin.user_id STRING trafficserver\n"
        ),
    )?;
    std::fs::write(
        d.join("etc/remap.config"),
        // The Hosts the clients send: `bench` (the MSG_TRUNC client), the address (wrk).
        format!(
            "map http://bench/ http://127.0.0.1:{origin}/\n\
             map http://127.0.0.1:{TRAFFICSERVER_PORT}/ http://127.0.0.1:{origin}/\n"
        ),
    )?;
    std::fs::write(
        d.join("etc/storage.config"),
        format!("{} 1G\n", d.join("cache").display()),
    )?;
    let p = d.display();
    std::fs::write(
        d.join("runroot.yaml"),
        format!(
            "prefix: /usr\nexec_prefix: /usr\nbindir: /usr/bin\nsbindir: /usr/sbin\nsysconfdir: {p}/etc\n\
             datadir: {p}/cache\nincludedir: /usr/include\nlibdir: /usr/lib/trafficserver\n\
             libexecdir: /usr/lib/trafficserver/modules\nlocalstatedir: {p}/var\nruntimedir: {p}/run\n\
             logdir: {p}/log\ncachedir: {p}/cache\n"
        ),
    )?;
    // Debian's traffic_server drops to its own user: it must be able to write here.
    let _ = Command::new("chown")
        .args(["-R", "trafficserver:trafficserver"])
        .arg(&d)
        .status();
    let child = Command::new("taskset")
        .args(["-c", "0", "traffic_server"])
        .arg(format!("--run-root={p}/runroot.yaml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("trafficserver.stderr"))?)
        .spawn()
        .context("starting traffic_server (install it with scripts/bench-deps.sh)")?;
    let server = ServerProc {
        name: "Traffic Server",
        child,
        port: TRAFFICSERVER_PORT,
    };
    wait_port(TRAFFICSERVER_PORT)
        .with_context(|| format!("traffic_server did not come up; see {p}/log/diags.log"))?;
    Ok(server)
}

/// Fetches a path twice (the second is the hit the benchmark measures), checking that the
/// whole body came back each time.
fn warm(s: &ServerProc, path: &str, size: usize) -> Result<()> {
    for _ in 0..2 {
        let got = proxy::fetch(s.port, path)?;
        anyhow::ensure!(got >= size, "{} answered {got} bytes for {path}", s.name);
    }
    Ok(())
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = make_site(work.path())?;
    let w = work.path();
    let _origin = proxy::start_origin(&root, w)?;
    // Caches first: the unique-URL row measures them only.
    let mut hit = proxy::start_slabfront_at(bin, w, "slabfront-hit", SF_HIT_PORT, &w.join("slab"))?;
    hit.name = "slabfront (slab hit)";
    let mut servers = vec![
        hit,
        proxy::start_nginx_cache(w)?,
        proxy::start_varnish(w)?,
        start_trafficserver(w)?,
    ];
    let caches = servers.len();
    let mut file = crate::start_slabfront(bin, &root, w)?;
    file.name = "slabfront (static)";
    servers.push(file);
    servers.push(start_nginx_static(&root, w, true, crate::NGINX_PORT)?);
    servers.push(start_nginx_static(&root, w, false, NGINX_NOSENDFILE_PORT)?);
    servers.extend(crate::start_reference(&root, w, crate::REF_PORT, false));
    servers.extend(crate::start_reference(&root, w, C_SENDFILE_PORT, true));
    for s in &servers[..caches] {
        for (p, size) in [(SMALL, 1024), (LARGE, LARGE_SIZE)] {
            warm(s, p, size).with_context(|| format!("warming {}", s.name))?;
        }
    }
    let secs = args.duration;
    println!(
        "machine: {} cores, {}; {} rounds x {secs}s per cell, medians; servers on core 0, load and origin on core 1",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        procstat::cpu_model(),
        args.runs
    );
    println!();
    let mut rows: Vec<(String, Cell)> = Vec::new();
    let all = |f: &dyn Fn(&ServerProc) -> Result<Sample>| run_cell(&servers, args.runs, f);
    for (label, f) in [
        (
            "1 KiB, 64 conns (wrk)",
            &(|s: &ServerProc| wrk(s, SMALL, 64, secs)) as &dyn Fn(&ServerProc) -> Result<Sample>,
        ),
        ("1.3 MB, 16 conns (MSG_TRUNC client)", &|s: &ServerProc| {
            cheap::run(s.port, LARGE, 16, secs, || s.cpu_ticks())
        }),
    ] {
        if args.wants(label) {
            eprintln!("running {label}");
            rows.push((label.to_string(), all(f)?));
        }
    }
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    print_rows(&rows, &names, secs);
    goals(&rows, &names);

    let label = "miss 1 KiB, unique URLs, 64 conns (wrk)";
    if args.wants(label) {
        eprintln!("running {label}");
        let script = w.join("unique.lua");
        std::fs::write(
            &script,
            "counter = 0\nrequest = function()\n  counter = counter + 1\n  return wrk.format(\"GET\", \"/1k.bin?miss=\" .. counter .. \"-\" .. math.random(1000000000))\nend\n",
        )?;
        let cell = run_cell(&servers[..caches], args.runs, &|s| {
            wrk_with(s, SMALL, 64, secs, Some(&script))
        })?;
        println!();
        print_rows(&[(label.to_string(), cell)], &names[..caches], secs);
    }
    if args.only.is_none() {
        // slabfront (directory origin) and nginx (sendfile on), as the static benchmark has it.
        let idle = [servers.remove(caches), servers.remove(caches)];
        drop(servers);
        crate::memory_table(&idle, args.idle_connections)?;
        drop(idle);
        println!();
        crate::tls::run(args, bin)?;
    }
    Ok(())
}

/// The goals, from the same rounds: each slabfront server against the best peer and the
/// faster C floor per CPU-second (bytes for the large page, requests for 1 KiB), and
/// slabfront's 1 KiB hit against its 1 KiB static file.
fn goals(rows: &[(String, Cell)], names: &[&str]) {
    let med = |c: &[Sample], large: bool| {
        let v = c
            .iter()
            .map(|s| if large { s.bytes_per_cpu() } else { s.per_cpu() })
            .collect();
        crate::median(v)
    };
    println!();
    println!("| row | slabfront | per CPU-s | best peer | vs best peer (target ≥ 1.00x) | faster C floor | vs floor (target ≥ 0.90x) |");
    println!("|---|---|---|---|---|---|---|");
    for (label, cell) in rows {
        let large = label.starts_with("1.3 MB");
        let unit = if large { "MB" } else { "req" };
        let scale = if large { 1e6 } else { 1.0 };
        let values: Vec<f64> = cell.iter().map(|c| med(c, large)).collect();
        let best = |pick: &dyn Fn(&str) -> bool| {
            names
                .iter()
                .zip(&values)
                .filter(|(n, _)| pick(n))
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(n, v)| (*n, *v))
        };
        let peer = best(&|n| !n.starts_with("slabfront") && !n.starts_with("C "));
        let floor = best(&|n| n.starts_with("C "));
        for (name, v) in names
            .iter()
            .zip(&values)
            .filter(|(n, _)| n.starts_with("slabfront"))
        {
            let against = |x: Option<(&str, f64)>| match x {
                Some((n, b)) if b > 0.0 => (
                    format!("{n} {:.0} {unit}", b / scale),
                    format!("**{:.2}x**", v / b),
                ),
                _ => ("-".into(), "-".into()),
            };
            let (p, pr) = against(peer);
            let (f, fr) = against(floor);
            println!(
                "| {label} | {name} | {:.0} {unit} | {p} | {pr} | {f} | {fr} |",
                v / scale
            );
        }
    }
    let Some((_, cell)) = rows.iter().find(|(l, _)| l.starts_with("1 KiB")) else {
        return;
    };
    let at = |n: &str| names.iter().position(|x| *x == n).map(|i| med(&cell[i], false));
    if let (Some(hit), Some(file)) = (at("slabfront (slab hit)"), at("slabfront (static)")) {
        println!();
        println!(
            "slabfront 1 KiB: hit {hit:.0} req per CPU-s, static file {file:.0}: a hit costs **{:.2}x** a static response (target ≤ 1.10x)",
            file / hit.max(1.0)
        );
    }
}
