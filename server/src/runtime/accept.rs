//! Accepting connections without the ring holding the listening socket.
//!
//! An io_uring accept (or a poll on the listener) in flight holds a reference to the listener.
//! When the process is killed (`kill -9`, the OOM killer), the kernel tears the ring down
//! asynchronously, after the process is gone: for a few milliseconds its listener stays in the
//! port's `SO_REUSEPORT` group, takes new connections, and then closes, resetting every one of
//! them, while a restarted process is already listening. So the ring never sees the listener:
//! each listener sits alone in an epoll set, the ring waits on that set (a reference to the
//! epoll file only), and connections are taken by non-blocking `accept4`. When the process
//! dies, its descriptors close with it and the listener leaves the group at once.
//!
//! A listener that is retired (reload, shutdown) first takes every connection already queued
//! on it ([`Acceptor::drain`]), so none is reset by the close.

#![allow(unsafe_code)]

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

pub struct Acceptor {
    listener: TcpListener,
    /// The epoll set holding only `listener`, as a monoio stream so the ring can poll it.
    ready: monoio::net::TcpStream,
    /// Accepted sockets are made non-blocking (the epoll driver needs it; io_uring's
    /// operations need blocking ones).
    legacy: bool,
}

impl Acceptor {
    /// Listens on `listener` (bound by `listener::bind_all`) and prepares to accept on it.
    pub fn new(listener: TcpListener, legacy: bool) -> io::Result<Acceptor> {
        listener.set_nonblocking(true)?;
        // SAFETY: epoll_create1 takes no pointers; a negative result is checked below.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `ep` is a descriptor just returned to us and owned by nothing else.
        let ep = unsafe { OwnedFd::from_raw_fd(ep) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open for the call; `ev` is a valid epoll_event.
        let r =
            unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, listener.as_raw_fd(), &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        crate::runtime::listener::listen(&listener)?;
        // The epoll descriptor only ever sees a readiness poll (never a read or a write), so
        // wrapping it in a stream type is a way to hand the ring a pollable descriptor.
        // SAFETY: ownership of `ep` moves into the std stream, which closes it once.
        let std = unsafe { std::net::TcpStream::from_raw_fd(ep.into_raw_fd()) };
        let ready = monoio::net::TcpStream::from_std(std)?;
        Ok(Acceptor {
            listener,
            ready,
            legacy,
        })
    }

    /// The next connection, waiting for one when none is queued.
    pub async fn accept(&self) -> io::Result<std::net::TcpStream> {
        loop {
            match self.try_accept() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ready.readable(false).await?,
                r => return r,
            }
        }
    }

    /// A queued connection, or `WouldBlock`.
    pub fn try_accept(&self) -> io::Result<std::net::TcpStream> {
        let mut flags = libc::SOCK_CLOEXEC;
        if self.legacy {
            flags |= libc::SOCK_NONBLOCK;
        }
        loop {
            // SAFETY: the listener is open; null address pointers are allowed by accept4.
            let fd = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    flags,
                )
            };
            if fd >= 0 {
                // SAFETY: `fd` is a new connected socket owned by nothing else.
                return Ok(unsafe { std::net::TcpStream::from_raw_fd(fd) });
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // A connection reset while queued: take the next.
                Some(libc::ECONNABORTED) => continue,
                _ => return Err(e),
            }
        }
    }

    /// Every connection queued now, for a listener about to close.
    pub fn drain(&self) -> Vec<std::net::TcpStream> {
        let mut all = Vec::new();
        while let Ok(s) = self.try_accept() {
            all.push(s);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{Read, Write};

    fn bound() -> (std::net::SocketAddr, TcpListener) {
        let mut b = crate::runtime::listener::bind_all(&["127.0.0.1:0".parse().unwrap()], 1).unwrap();
        (b.addrs[0], b.per_worker.remove(0).remove(0))
    }

    /// Runs `f` on a runtime of the given driver (io_uring when the kernel allows it).
    fn on_runtime<F: std::future::Future>(legacy: bool, f: F) -> F::Output {
        if !legacy && monoio::utils::detect_uring() {
            crate::runtime::ring::build(64).unwrap().0.block_on(f)
        } else {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(f)
        }
    }

    fn round_trip(legacy: bool) {
        let (addr, l) = bound();
        let client = std::thread::spawn(move || {
            // The listener listens once the acceptor is made: retry until then.
            let mut s = loop {
                match std::net::TcpStream::connect(addr) {
                    Ok(s) => break s,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            };
            s.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            b
        });
        let s = on_runtime(legacy, async move {
            let acceptor = Acceptor::new(l, legacy).unwrap();
            acceptor.accept().await.unwrap()
        });
        // The epoll driver needs non-blocking sockets; io_uring's operations blocking ones.
        let mut probe = [0u8; 1];
        let peeked = s.peek(&mut probe);
        if legacy {
            assert!(peeked.is_ok() || peeked.unwrap_err().kind() == io::ErrorKind::WouldBlock);
        }
        s.set_nonblocking(false).unwrap();
        let mut s = s;
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        s.write_all(b"pong").unwrap();
        assert_eq!(&client.join().unwrap(), b"pong");
    }

    #[test]
    fn accepts_through_the_epoll_set() {
        round_trip(false);
    }

    #[test]
    fn accepts_on_the_legacy_driver() {
        round_trip(true);
    }

    #[test]
    fn accepted_sockets_are_non_blocking_only_for_the_legacy_driver() {
        for legacy in [false, true] {
            let (addr, l) = bound();
            let (s, _c) = on_runtime(legacy, async move {
                let acceptor = Acceptor::new(l, legacy).unwrap();
                let c = std::net::TcpStream::connect(addr).unwrap();
                (acceptor.accept().await.unwrap(), c)
            });
            // SAFETY-free check of O_NONBLOCK through fcntl's safe wrapper in socket2.
            let nonblocking = socket2::SockRef::from(&s).nonblocking().unwrap();
            assert_eq!(nonblocking, legacy);
        }
    }

    #[test]
    fn drain_takes_every_queued_connection() {
        let (addr, l) = bound();
        on_runtime(false, async move {
            let acceptor = Acceptor::new(l, false).unwrap();
            let clients: Vec<_> = (0..5)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            // Handshakes complete in the kernel; give loopback a moment to queue them all.
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(acceptor.drain().len(), clients.len());
            assert!(acceptor.drain().is_empty());
        });
    }
}
