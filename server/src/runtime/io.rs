//! Socket glue: vectored writes that survive partial writes, and non-blocking attempts
//! (`MSG_DONTWAIT`) that finish most reads and writes with one plain syscall, without a round
//! trip through the ring.
//!
//! monoio 0.2.4's `write_vectored_all` shortens the first iovec after a partial write without
//! advancing its pointer (it resends the start of the body); this module owns its iovecs and
//! recomputes both pointer and length from the bytes written so far before every submission.
//! The iovec array lives on the heap (a `Box`) because the operation is moved after the
//! pointer is taken and the kernel reads it at submit time.
#![allow(unsafe_code)]

use bytes::Bytes;
use monoio::buf::IoVecBuf;
use monoio::io::AsyncWriteRent;
use socket2::SockRef;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A response head and a body, written with one `writev` per attempt.
pub struct HeadAndBody {
    iov: Box<[libc::iovec; 2]>,
    head: Vec<u8>,
    body: Bytes,
    written: usize,
}

impl HeadAndBody {
    fn new(head: Vec<u8>, body: Bytes) -> Self {
        let mut s = HeadAndBody {
            iov: Box::new(
                [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; 2],
            ),
            head,
            body,
            written: 0,
        };
        s.aim();
        s
    }

    fn total(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Points the iovecs at what is still unwritten.
    fn aim(&mut self) {
        let h = self.written.min(self.head.len());
        let b = self.written.saturating_sub(self.head.len()).min(self.body.len());
        let head_rest = &self.head[h..];
        let body_rest = &self.body[b..];
        self.iov[0] = libc::iovec {
            iov_base: head_rest.as_ptr() as *mut libc::c_void,
            iov_len: head_rest.len(),
        };
        self.iov[1] = libc::iovec {
            iov_base: body_rest.as_ptr() as *mut libc::c_void,
            iov_len: body_rest.len(),
        };
    }
}

// SAFETY: the iovec array is boxed, so its address does not move while the runtime owns the
// value; both entries always point inside `head` and `body`, which are owned by this value and
// not mutated while it is in flight (only `aim`, called between submissions, rewrites them).
unsafe impl IoVecBuf for HeadAndBody {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        2
    }
}

/// A second descriptor for the stream's socket (the HTTP/2 codec waits for readiness on it,
/// and peeks at a plain connection's first bytes through it).
pub fn dup(stream: &impl AsRawFd) -> io::Result<std::net::TcpStream> {
    with_sock(stream, |s| s.try_clone()).map(Into::into)
}

/// Shuts the sending side (FIN once what is queued has left).
pub fn shutdown_write(stream: &impl AsRawFd) -> io::Result<()> {
    with_sock(stream, |s| s.shutdown(std::net::Shutdown::Write))
}

/// Runs `f` on a socket2 view of the stream's descriptor.
fn with_sock<T>(stream: &impl AsRawFd, f: impl FnOnce(SockRef<'_>) -> T) -> T {
    // SAFETY: the descriptor belongs to `stream`, which the caller borrows for the whole call
    // (or, for the `Cork` and `NonBlocking` guards, to a socket that outlives the guard), so
    // it stays open while the borrowed view exists; the view never closes it.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    f(SockRef::from(&fd))
}

/// Reads what the socket already holds into `buf`'s spare capacity, without waiting.
/// `None`: nothing there yet (would block).
pub fn try_read(stream: &impl AsRawFd, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
    if buf.capacity() == buf.len() {
        buf.reserve(4096);
    }
    let spare = buf.spare_capacity_mut();
    // SAFETY: the descriptor is borrowed from `stream` for the call, and the kernel writes at
    // most `spare.len()` bytes into the spare capacity, which `buf` owns and nothing else
    // borrows meanwhile. `syscall` rather than glibc's `recv`: the latter is a cancellation
    // point, wrapped in two calls that toggle the thread's cancellation state (2% of the core
    // at 1 KiB responses); these threads are never cancelled.
    let n = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            stream.as_raw_fd(),
            spare.as_mut_ptr(),
            spare.len(),
            libc::MSG_DONTWAIT,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    };
    match byte_count(n) {
        Ok(n) => {
            let len = buf.len() + n;
            // SAFETY: recv wrote `n` bytes at the start of the spare capacity, so the first
            // `len` bytes are initialised, and `len` is within the capacity recv was given.
            unsafe { buf.set_len(len) };
            Some(Ok(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => None,
        Err(e) => Some(Err(e)),
    }
}

/// Copies what the socket holds into `buf` without taking it or waiting. `None`: nothing yet.
pub fn peek_now(stream: &impl AsRawFd, buf: &mut [u8]) -> Option<io::Result<usize>> {
    // SAFETY: the descriptor is borrowed from `stream` for the call, and the kernel writes at
    // most `buf.len()` bytes into `buf`, which is borrowed mutably for the call.
    let n = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            stream.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_PEEK,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    };
    match byte_count(n) {
        Ok(n) => Some(Ok(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => None,
        Err(e) => Some(Err(e)),
    }
}

/// Sends as much of `bufs` as the socket takes now; `WouldBlock` when it takes nothing.
pub fn send_now(stream: &impl AsRawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let mut filled = bufs.iter().filter(|b| !b.is_empty());
    if let (Some(one), None) = (filled.next(), filled.next()) {
        // One buffer: `sendto` takes it as it is, where `sendmsg` first copies in and checks
        // a message header and an iovec array.
        // SAFETY: the kernel reads `one.len()` bytes from `one`, borrowed for the call, as is
        // the descriptor; no address is passed.
        let n = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                stream.as_raw_fd(),
                one.as_ptr(),
                one.len(),
                flags,
                std::ptr::null::<libc::sockaddr>(),
                0 as libc::socklen_t,
            )
        };
        return byte_count(n);
    }
    // SAFETY: an all-zero msghdr is valid (no address, no control data); IoSlice has the
    // layout of an iovec, and the kernel only reads the `bufs.len()` slices, which stay
    // borrowed for the call, as does the descriptor.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len() as _;
        libc::syscall(
            libc::SYS_sendmsg,
            stream.as_raw_fd(),
            &msg as *const libc::msghdr,
            flags,
        )
    };
    byte_count(n)
}

/// A byte count returned by `syscall(2)`, or the errno it left.
fn byte_count(n: libc::c_long) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sends as much of `head` + `body` as the socket takes now, without waiting (0 when it
/// takes nothing).
pub fn try_write(stream: &impl AsRawFd, head: &[u8], body: &[u8]) -> io::Result<usize> {
    match send_now(stream, &[io::IoSlice::new(head), io::IoSlice::new(body)]) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => Ok(0),
        r => r,
    }
}

/// Writes `head` then `body` completely. Gives the head buffer back (cleared) for reuse.
pub async fn write_all<S: AsyncWriteRent + AsRawFd>(
    stream: &mut S,
    head: Vec<u8>,
    body: Bytes,
) -> (io::Result<()>, Vec<u8>) {
    // Most responses fit in the socket buffer: one plain sendmsg and done.
    let mut head = head;
    let n = match try_write(stream, &head, &body) {
        Ok(n) if n == head.len() + body.len() => {
            head.clear();
            return (Ok(()), head);
        }
        Ok(n) => n,
        Err(e) => {
            head.clear();
            return (Err(e), head);
        }
    };
    // The rest goes through the ring (its iovecs are boxed, so only this path allocates).
    let mut buf = HeadAndBody::new(head, body);
    buf.written = n;
    buf.aim();
    while buf.written < buf.total() {
        let (res, b) = stream.writev(buf).await;
        buf = b;
        match res {
            Ok(0) => {
                buf.head.clear();
                return (Err(io::ErrorKind::WriteZero.into()), buf.head);
            }
            Ok(n) => {
                buf.written += n;
                buf.aim();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.head.clear();
                return (Err(e), buf.head);
            }
        }
    }
    buf.head.clear();
    (Ok(()), buf.head)
}

/// Sends `len` bytes of `file` from `offset` without a copy through user space: the file's
/// page-cache pages are spliced into a pipe of this worker's (1 MiB) and from it into the
/// socket, or moved by `sendfile(2)` when no such pipe can be had. The socket is made
/// non-blocking for the duration (under io_uring accepted sockets are blocking) and the
/// worker waits on the ring's readiness when the send buffer is full, so other connections
/// keep being served. On error, also says how many bytes went out.
///
/// Why a pipe of our own: `sendfile` splices through a 16-page pipe, so a 1.3 MB body goes
/// to TCP in 21 rounds of 64 KiB; through 1 MiB it takes two. Measured in pairs (both
/// servers on one core at once), a minimal responder moved 8-14% more bytes per CPU-second
/// this way (2 MiB was 8% worse than `sendfile`: the whole body queued at once).
pub async fn send_file(
    stream: &monoio::net::TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> Result<(), (io::Error, u64)> {
    let restore = NonBlocking::set(stream).map_err(|e| (e, 0))?;
    let res = match pipes::take() {
        Some(pipe) => splice_file(stream, file, offset, len, pipe).await,
        None => sendfile_loop(stream, file, offset, len).await,
    };
    drop(restore);
    res
}

/// After a non-blocking send to `stream` failed (its errno still current): waits for room
/// when the socket is full, or at an interruption returns at once (`None`: try again);
/// otherwise the error.
async fn wait_for_room(stream: &monoio::net::TcpStream) -> Option<io::Error> {
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock => stream.writable(false).await.err(),
        io::ErrorKind::Interrupted => None,
        _ => Some(e),
    }
}

/// `sendfile(2)` until `len` bytes are sent.
async fn sendfile_loop(
    stream: &monoio::net::TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> Result<(), (io::Error, u64)> {
    let sock = stream.as_raw_fd();
    let mut off = offset as libc::off_t;
    let end = offset + len;
    let res = loop {
        let left = end - off as u64;
        if left == 0 {
            break Ok(());
        }
        // SAFETY: both descriptors are open for the whole call (the stream and the file are
        // borrowed), and `off` is a valid, exclusively borrowed offset the kernel advances.
        let n = unsafe { libc::sendfile(sock, file.as_raw_fd(), &mut off, left.min(1 << 30) as usize) };
        if n > 0 {
            continue;
        }
        if n == 0 {
            break Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being sent",
            ));
        }
        if let Some(e) = wait_for_room(stream).await {
            break Err(e);
        }
    };
    res.map_err(|e| (e, off as u64 - offset))
}

/// File → pipe → socket. The pipe goes back to the pool only empty; a pipe still holding
/// pages when something fails is closed (its pages released).
async fn splice_file(
    stream: &monoio::net::TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
    pipe: pipes::Pipe,
) -> Result<(), (io::Error, u64)> {
    let sock = stream.as_raw_fd();
    let mut off = offset as libc::loff_t;
    let end = offset + len;
    let mut in_pipe = 0usize;
    let mut sent = 0u64;
    let res = loop {
        if in_pipe == 0 {
            let left = end - off as u64;
            if left == 0 {
                break Ok(());
            }
            // SAFETY: the file and the pipe's write end are open (borrowed / owned here); `off`
            // is an exclusively borrowed offset the kernel advances; no memory is passed.
            let n = unsafe {
                libc::splice(
                    file.as_raw_fd(),
                    &mut off,
                    pipe.write_fd(),
                    std::ptr::null_mut(),
                    left.min(pipes::SIZE as u64) as usize,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            };
            if n == 0 {
                break Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being sent",
                ));
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            in_pipe = n as usize;
        }
        let more = if (off as u64) < end {
            libc::SPLICE_F_MORE
        } else {
            0
        };
        // SAFETY: the pipe's read end and the socket are open (owned here / borrowed); no
        // offset or memory is passed.
        let n = unsafe {
            libc::splice(
                pipe.read_fd(),
                std::ptr::null_mut(),
                sock,
                std::ptr::null_mut(),
                in_pipe,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK | more,
            )
        };
        if n > 0 {
            in_pipe -= n as usize;
            sent += n as u64;
            continue;
        }
        if n == 0 {
            break Err(io::ErrorKind::WriteZero.into());
        }
        if let Some(e) = wait_for_room(stream).await {
            break Err(e);
        }
    };
    if in_pipe == 0 {
        pipes::give_back(pipe);
    }
    res.map_err(|e| (e, sent))
}

/// Each worker thread's pipes for splicing files into sockets (one per response in flight).
mod pipes {
    use std::cell::RefCell;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    /// The pipe's capacity: 256 pages.
    pub const SIZE: usize = 1 << 20;
    /// Empty pipes kept for reuse.
    const KEEP: usize = 64;

    pub struct Pipe {
        read: OwnedFd,
        write: OwnedFd,
    }

    impl Pipe {
        pub fn read_fd(&self) -> RawFd {
            self.read.as_raw_fd()
        }
        pub fn write_fd(&self) -> RawFd {
            self.write.as_raw_fd()
        }
    }

    thread_local! {
        static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    }

    /// An empty pipe of `SIZE`, from the pool or new; `None` when none can be made that large
    /// (`fs.pipe-max-size`, the user's pipe quota, descriptors).
    pub fn take() -> Option<Pipe> {
        if let Some(p) = POOL.with(|p| p.borrow_mut().pop()) {
            return Some(p);
        }
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two descriptors for the kernel to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return None;
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let pipe = unsafe {
            Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        // SAFETY: a plain fcntl on a descriptor owned here.
        let got = unsafe { libc::fcntl(pipe.write_fd(), libc::F_SETPIPE_SZ, SIZE as libc::c_int) };
        (got >= SIZE as libc::c_int).then_some(pipe)
    }

    /// How many empty pipes this thread keeps.
    #[cfg(test)]
    pub fn pooled() -> usize {
        POOL.with(|p| p.borrow().len())
    }

    /// Keeps an empty pipe for the next response.
    pub fn give_back(pipe: Pipe) {
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < KEEP {
                p.push(pipe);
            }
        });
    }
}

/// Asks the kernel to read `offset..offset + len` of `file` into the page cache in the
/// background (`POSIX_FADV_WILLNEED` starts the reads and returns without waiting for them).
pub fn will_need(file: &std::fs::File, offset: u64, len: u64) {
    // SAFETY: advice only; no memory is passed and the descriptor is open (borrowed).
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_WILLNEED,
        )
    };
}

/// `TCP_CORK` on a socket until dropped: a response head and the body sent after it leave
/// in full segments (nginx's `tcp_nopush`), not as a short segment per call.
pub struct Cork(std::os::fd::RawFd);

impl Cork {
    pub fn set(stream: &impl AsRawFd) -> Cork {
        let _ = with_sock(stream, |s| s.set_cork(true));
        Cork(stream.as_raw_fd())
    }
}

impl AsRawFd for Cork {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        // The socket's owner outlives the guard, so the descriptor is still its socket.
        let _ = with_sock(self, |s| s.set_cork(false));
    }
}

/// `O_NONBLOCK` on a socket until dropped (then as it was).
struct NonBlocking {
    fd: std::os::fd::RawFd,
    /// The socket was blocking before.
    restore: bool,
}

impl NonBlocking {
    fn set(stream: &impl AsRawFd) -> io::Result<NonBlocking> {
        let restore = !with_sock(stream, |s| s.nonblocking())?;
        if restore {
            with_sock(stream, |s| s.set_nonblocking(true))?;
        }
        Ok(NonBlocking {
            fd: stream.as_raw_fd(),
            restore,
        })
    }
}

impl AsRawFd for NonBlocking {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        if self.restore {
            // The socket's owner outlives the guard, so the descriptor is still its socket.
            let _ = with_sock(self, |s| s.set_nonblocking(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A 2 MB body through a socket whose send buffer is tiny must arrive intact: every
    /// partial write resumes at the right byte.
    #[test]
    fn partial_writes_resume_at_the_right_byte() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let body: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let head = b"HEAD-BYTES\r\n".to_vec();
        let expected: Vec<u8> = head.iter().chain(body.iter()).copied().collect();
        let total = expected.len();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            // Read slowly at first so the sender sees partial writes.
            let mut chunk = [0u8; 1000];
            for _ in 0..50 {
                let n = s.read(&mut chunk).unwrap();
                got.extend_from_slice(&chunk[..n]);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // Read exactly what was sent: the writer's close may be deferred by its runtime.
            let mut rest = vec![0u8; total - got.len()];
            s.read_exact(&mut rest).unwrap();
            got.extend_from_slice(&rest);
            got
        });
        let body_bytes = Bytes::from(body);
        let run = async move {
            let std_stream = std::net::TcpStream::connect(addr).unwrap();
            socket2::SockRef::from(&std_stream)
                .set_send_buffer_size(4096)
                .unwrap();
            let mut stream = monoio::net::TcpStream::from_std(std_stream).unwrap();
            let (res, _) = write_all(&mut stream, head, body_bytes).await;
            res.unwrap();
        };
        if !monoio::utils::detect_uring() {
            eprintln!("io_uring unavailable; the legacy-driver test covers this path");
            return;
        }
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .build()
            .unwrap();
        rt.block_on(run);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "body corrupted");
    }

    /// A range of a file through a socket whose send buffer is tiny, to a reader that starts
    /// late: spliced through the worker's pipe (twice, the second time through the pipe the
    /// first gave back) and by the sendfile fallback, the bytes arrive exactly.
    #[test]
    fn file_ranges_arrive_exactly_by_splice_and_by_sendfile() {
        let body: Vec<u8> = (0..2_000_000u32).map(|i| (i % 249) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &body).unwrap();
        let (offset, len) = (1_000u64, 1_500_000u64);
        let expected = body[offset as usize..(offset + len) as usize].to_vec();
        for how in ["splice", "splice again", "sendfile"] {
            let (addr, reader) = late_reader();
            let file = std::fs::File::open(&path).unwrap();
            let run = async move {
                let std_stream = std::net::TcpStream::connect(addr).unwrap();
                socket2::SockRef::from(&std_stream)
                    .set_send_buffer_size(4096)
                    .unwrap();
                let stream = monoio::net::TcpStream::from_std(std_stream).unwrap();
                let r = if how == "sendfile" {
                    let restore = NonBlocking::set(&stream).unwrap();
                    let r = sendfile_loop(&stream, &file, offset, len).await;
                    drop(restore);
                    r
                } else {
                    send_file(&stream, &file, offset, len).await
                };
                r.map_err(|(e, _)| e).unwrap();
            };
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap();
            rt.block_on(run);
            let got = reader.join().unwrap();
            assert_eq!(got.len(), expected.len(), "{how}");
            assert!(got == expected, "{how}: bytes differ");
            if how != "sendfile" {
                assert_eq!(pipes::pooled(), 1, "{how}: the emptied pipe is kept");
            }
        }
    }

    /// A listener whose one connection is read to the end, starting 20 ms late.
    fn late_reader() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        (addr, reader)
    }

    #[test]
    fn partial_writes_on_the_legacy_driver() {
        let (addr, reader) = late_reader();
        let body: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
        let expected = body.clone();
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        rt.block_on(async move {
            let std_stream = std::net::TcpStream::connect(addr).unwrap();
            std_stream.set_nonblocking(true).unwrap();
            socket2::SockRef::from(&std_stream)
                .set_send_buffer_size(4096)
                .unwrap();
            let mut stream = monoio::net::TcpStream::from_std(std_stream).unwrap();
            let (res, _) = write_all(&mut stream, Vec::new(), Bytes::from(body)).await;
            res.unwrap();
        });
        assert!(reader.join().unwrap() == expected);
    }
}
