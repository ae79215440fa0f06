//! Listening sockets: one `SO_REUSEPORT` socket per worker per address, so the kernel spreads
//! connections over the workers and no accept queue is shared.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};

/// The sockets of every worker: `per_worker[w][i]` listens on `addrs[i]`.
pub struct Bound {
    /// The addresses actually bound (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
    pub per_worker: Vec<Vec<TcpListener>>,
}

/// Binds every address once per worker. A port of 0 is resolved by the first bind and reused
/// by the others, so all workers share one port.
pub fn bind_all(addrs: &[SocketAddr], workers: usize, nonblocking: bool) -> io::Result<Bound> {
    let mut resolved = Vec::with_capacity(addrs.len());
    let mut per_worker: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    for &addr in addrs {
        let mut actual = addr;
        for (w, slot) in per_worker.iter_mut().enumerate() {
            let l = bind_one(actual, nonblocking).map_err(|e| {
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

fn bind_one(addr: SocketAddr, nonblocking: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(nonblocking)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_zero_is_shared_by_all_workers() {
        let b = super::bind_all(&["127.0.0.1:0".parse().unwrap()], 3, false).unwrap();
        let port = b.addrs[0].port();
        assert_ne!(port, 0);
        for w in &b.per_worker {
            assert_eq!(w[0].local_addr().unwrap().port(), port);
        }
    }
}
