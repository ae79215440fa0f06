//! Listening sockets: one `SO_REUSEPORT` socket per worker per address, so the kernel spreads
//! connections over the workers and no accept queue is shared.
//!
//! Sockets are bound here (so a taken port fails the start at once) but only listen once
//! their worker is ready to accept ([`listen`], called on the worker's thread): until then
//! the kernel queues no connection on them, so a start that fails later, or a worker that
//! never comes up, closes no accept queue with connections in it.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};

/// The sockets of every worker: `per_worker[w][i]` listens on `addrs[i]`.
pub struct Bound {
    /// The addresses actually bound (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
    pub per_worker: Vec<Vec<TcpListener>>,
}

/// Binds every address once per worker, without listening. A port of 0 is resolved by the
/// first bind and reused by the others, so all workers share one port.
pub fn bind_all(addrs: &[SocketAddr], workers: usize) -> io::Result<Bound> {
    let mut resolved = Vec::with_capacity(addrs.len());
    let mut per_worker: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    for &addr in addrs {
        let mut actual = addr;
        for (w, slot) in per_worker.iter_mut().enumerate() {
            let l = bind_one(actual).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {actual} (worker {w}): {e}"))
            })?;
            if w == 0 {
                actual = l.local_addr()?;
            }
            slot.push(l);
        }
        resolved.push(actual);
    }
    Ok(Bound {
        addrs: resolved,
        per_worker,
    })
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    // Accepts are non-blocking calls after a readiness wait (`runtime::accept`).
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Starts listening on a socket from [`bind_all`]: from now on the kernel queues connections
/// on it, so its worker must be accepting.
pub fn listen(l: &TcpListener) -> io::Result<()> {
    socket2::SockRef::from(l).listen(4096)
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_zero_is_shared_by_all_workers() {
        let b = super::bind_all(&["127.0.0.1:0".parse().unwrap()], 3).unwrap();
        let port = b.addrs[0].port();
        assert_ne!(port, 0);
        for w in &b.per_worker {
            assert_eq!(w[0].local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn bound_sockets_take_no_connection_until_they_listen() {
        let b = super::bind_all(&["127.0.0.1:0".parse().unwrap()], 1).unwrap();
        let addr = b.addrs[0];
        let err = std::net::TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        super::listen(&b.per_worker[0][0]).unwrap();
        std::net::TcpStream::connect(addr).unwrap();
    }
}
