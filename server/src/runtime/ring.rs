//! How a worker's io_uring is set up.
//!
//! A readiness wait completes on the core that processed the peer's packet, which then
//! queues the completion as task work for the worker. By default that interrupts the worker
//! (an IPI) to run it at once; with `IORING_SETUP_COOP_TASKRUN` (Linux 5.19) it runs at the
//! worker's next kernel entry, which on a busy worker comes within microseconds. That is the
//! setup used; a plain ring where the kernel refuses it.
//!
//! `IORING_SETUP_DEFER_TASKRUN` (6.1; with `SINGLE_ISSUER`) goes further: task work waits for
//! the worker's next wait for completions. It served a few percent more 1 KiB requests per
//! core here, but its p99 at 1,000 connections was two to three times nginx's. The likely
//! cause: a wait runs at most 20 deferred completions (`IO_LOCAL_TW_DEFAULT_MAX` in the
//! kernel), while readiness that is already there when a wait is armed completes at once, so
//! busy connections are served ahead of queued ones. It stays
//! available for comparison (`SLABFRONT_URING_SETUP=defer_taskrun`).

use monoio::time::TimeDriver;
use monoio::{IoUringDriver, Runtime, RuntimeBuilder};

/// The setups tried in order, each with a name for the log.
fn setups() -> [(&'static str, io_uring::Builder); 3] {
    let mut deferred = io_uring::IoUring::builder();
    deferred.setup_single_issuer().setup_defer_taskrun();
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun().setup_taskrun_flag();
    [
        ("coop_taskrun", coop),
        ("plain", io_uring::IoUring::builder()),
        ("defer_taskrun", deferred),
    ]
}

/// A timer-enabled io_uring runtime with `entries` submission slots, on the best setup this
/// kernel accepts; returns the setup's name with it.
/// `SLABFRONT_URING_SETUP` names a setup to try first (for measuring one against another).
pub fn build(entries: u32) -> std::io::Result<(Runtime<TimeDriver<IoUringDriver>>, &'static str)> {
    build_preferring(entries, std::env::var("SLABFRONT_URING_SETUP").ok())
}

fn build_preferring(
    entries: u32,
    wanted: Option<String>,
) -> std::io::Result<(Runtime<TimeDriver<IoUringDriver>>, &'static str)> {
    let mut last = None;
    let mut order = setups().to_vec();
    if let Some(w) = wanted {
        order.sort_by_key(|(name, _)| *name != w);
    }
    for (name, urb) in order {
        match RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(entries)
            .uring_builder(urb)
            .enable_timer()
            .build()
        {
            Ok(rt) => return Ok((rt, name)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no io_uring setup")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Every setup, where the kernel takes it, completes a readiness wait woken from another
    /// thread, a timer, and a read and a write through the ring.
    #[test]
    fn each_setup_completes_polls_timers_and_reads() {
        if !monoio::utils::detect_uring() {
            eprintln!("io_uring unavailable here; the epoll driver's tests cover the workers");
            return;
        }
        for want in ["coop_taskrun", "defer_taskrun", "plain"] {
            let (rt, name) = build_preferring(256, Some(want.to_string())).unwrap();
            if name != want {
                eprintln!("{want}: refused by this kernel, {name} instead");
            }
            exercise(rt);
        }
        let (_, default) = build_preferring(256, None).unwrap();
        assert!(["coop_taskrun", "plain"].contains(&default));
    }

    fn exercise(mut rt: Runtime<TimeDriver<IoUringDriver>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(30));
            s.write_all(b"ping").unwrap();
            let mut back = [0u8; 4];
            s.read_exact(&mut back).unwrap();
            back
        });
        let got = rt.block_on(async move {
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            let std_stream = std::net::TcpStream::connect(addr).unwrap();
            std_stream.set_nonblocking(true).unwrap();
            let mut stream = monoio::net::TcpStream::from_std(std_stream).unwrap();
            stream.readable(false).await.unwrap();
            use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
            let (res, buf) = stream.read_exact(vec![0u8; 4]).await;
            res.unwrap();
            let (res, _) = stream.write_all(b"pong".to_vec()).await;
            res.unwrap();
            buf
        });
        assert_eq!(got, b"ping");
        assert_eq!(&peer.join().unwrap(), b"pong");
    }
}
