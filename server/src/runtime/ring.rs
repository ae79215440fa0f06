//! How a worker's io_uring is set up.
//!
//! A worker is the only thread that submits to its ring and it reaps completions only when it
//! has nothing left to run, so the ring is made with `IORING_SETUP_SINGLE_ISSUER` and
//! `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1): a completion that arrives while the worker runs
//! (a poll woken by the peer's packet, processed on the other core) is queued on the ring and
//! run in the worker's next wait, instead of interrupting the worker with an IPI to run it at
//! once. Where the kernel refuses those flags, `IORING_SETUP_COOP_TASKRUN` (5.19: no IPI, run
//! at the next kernel entry) is tried, then a plain ring.

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
        ("defer_taskrun", deferred),
        ("plain", io_uring::IoUring::builder()),
    ]
}

/// A timer-enabled io_uring runtime with `entries` submission slots, on the best setup this
/// kernel accepts; returns the setup's name with it.
pub fn build(entries: u32) -> std::io::Result<(Runtime<TimeDriver<IoUringDriver>>, &'static str)> {
    let mut last = None;
    // For measuring one setup against another: SLABFRONT_URING_SETUP names the one to try
    // first.
    let wanted = std::env::var("SLABFRONT_URING_SETUP").ok();
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

    /// A ring built here completes a readiness wait woken from another thread, a timer, and
    /// a read through the ring.
    #[test]
    fn the_chosen_ring_completes_polls_timers_and_reads() {
        if !monoio::utils::detect_uring() {
            eprintln!("io_uring unavailable here; the epoll driver's tests cover the workers");
            return;
        }
        let (mut rt, name) = build(256).unwrap();
        assert!(["defer_taskrun", "coop_taskrun", "plain"].contains(&name));
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
