//! A load client that costs almost nothing per byte: it reads each response head, then
//! discards the body inside the kernel with `recv(MSG_TRUNC)` (wrk itself tops out near
//! 2.5 GB/s on this machine). Its threads run on core 1.

use crate::Sample;
use anyhow::{bail, Result};
use socket2::SockRef;
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(port: u16, path: &str, conns: usize, secs: u64, cpu_ticks: impl Fn() -> u64) -> Result<Sample> {
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let core1 = core_affinity::get_core_ids().and_then(|c| c.get(1).copied());
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut threads = Vec::new();
    for _ in 0..conns {
        let (stop, requests, bytes, errors, req) = (
            stop.clone(),
            requests.clone(),
            bytes.clone(),
            errors.clone(),
            req.clone(),
        );
        threads.push(std::thread::spawn(move || {
            if let Some(c) = core1 {
                core_affinity::set_for_current(c);
            }
            if let Err(_e) = client(port, &req, &stop, &requests, &bytes) {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (r0, b0, c0, t0) = (
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
        cpu_ticks(),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(secs));
    let (r1, b1, c1, wall) = (
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
        cpu_ticks(),
        t0.elapsed(),
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let w = wall.as_secs_f64();
    Ok(Sample {
        req_s: (r1 - r0) as f64 / w,
        bytes_s: (b1 - b0) as f64 / w,
        cpu: (c1 - c0) as f64 / 100.0 * secs as f64 / w,
        errors: errors.load(Ordering::Relaxed),
        requests: (r1 - r0) as f64 * secs as f64 / w,
        bytes: (b1 - b0) as f64 * secs as f64 / w,
        ..Default::default()
    })
}

fn client(port: u16, req: &str, stop: &AtomicBool, requests: &AtomicU64, bytes: &AtomicU64) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut head = [0u8; 4096];
    // Never read: MSG_TRUNC tells the kernel to drop the bytes instead of copying them here.
    let mut sink = vec![MaybeUninit::<u8>::uninit(); 4 << 20];
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(req.as_bytes())?;
        // Peek until the head is complete, then consume exactly the head.
        let (head_len, body_len) = loop {
            let n = stream.peek(&mut head)?;
            if n == 0 {
                bail!("server closed");
            }
            if let Some(end) = head[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                let len = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, len);
            }
        };
        stream.read_exact(&mut head[..head_len])?;
        let sock = SockRef::from(&stream);
        let mut left = body_len;
        while left > 0 {
            let want = left.min(sink.len());
            let n = sock.recv_with_flags(&mut sink[..want], libc::MSG_TRUNC)?;
            if n == 0 {
                bail!("server closed");
            }
            left -= n;
        }
        requests.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add((head_len + body_len) as u64, Ordering::Relaxed);
    }
    Ok(())
}
