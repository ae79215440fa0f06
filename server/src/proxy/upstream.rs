//! Connections to custom origins: plain TCP or rustls, a keep-alive pool per worker and
//! origin, response heads parsed with httparse, and response bodies read piece by piece
//! (Content-Length, chunked, or until close).
//!
//! Interim responses (RFC 9110 §15.2): [`HeadReader`] reads the heads of one exchange, each
//! interim (1xx) one as it arrives and then the final one, and fails the exchange as a flood
//! past [`MAX_INTERIM`] responses or [`MAX_INTERIM_BYTES`] bytes. `100 Continue` is
//! consumed (this cache never asks an origin for one); `101` is invalid (this cache never
//! offers an upgrade); other 1xx, `103 Early Hints` above all (RFC 8297), are for the viewer:
//! the exchange hands them to the viewer's codec (`exchange::origin::interim_head`). Interim responses are never stored:
//! only the final head reaches the store, and a collapsed fill's waiters read the stored final
//! response. [`read_final_head`] is the same reading for exchanges without a viewer.

use crate::http::body::ChunkedDecoder;
use crate::http::codec::trim;
use config::{Origin, OriginProtocol};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::pki_types::ServerName;
use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why talking to an origin failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("timed out")]
    Timeout,
    #[error("connection closed early")]
    Closed,
    #[error("I/O error: {0}")]
    Io(io::Error),
    #[error("invalid response: {0}")]
    Invalid(&'static str),
    /// The S3 origin refused this edge's credentials or signature (its error code).
    #[error("S3 refused the credentials: {0}")]
    Credentials(String),
    /// Not sent: the request would expose what the origin must not (a bucket listing).
    #[error("refused: {1}")]
    Refused(u16, &'static str),
    /// Not sent: every origin that could answer is down (see `health`).
    #[error("every origin of the group is down")]
    Down,
}

impl UpstreamError {
    /// The status a viewer gets for it.
    pub fn status(&self) -> u16 {
        match self {
            UpstreamError::Timeout => 504,
            UpstreamError::Refused(status, _) => *status,
            _ => 502,
        }
    }

    /// A short name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Resolve(_) => "resolve",
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Tls(_) => "tls",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Closed => "closed",
            UpstreamError::Io(_) => "io",
            UpstreamError::Invalid(_) => "invalid",
            UpstreamError::Credentials(_) => "credentials",
            UpstreamError::Refused(..) => "refused",
            UpstreamError::Down => "down",
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
}

/// One connection to an origin, with what it has received but not yet consumed.
pub struct UpConn {
    io: Io,
    pub buf: Vec<u8>,
    /// Came from the pool (a failure before any byte of the response may be a stale
    /// connection).
    pub reused: bool,
    tls: bool,
    /// What the connection's origin is (for checks on what is sent and answered).
    facts: Rc<Facts>,
}

/// What requests to and answers from an origin are checked against.
#[derive(Debug, Default)]
pub struct Facts {
    pub id: String,
    /// An S3 origin: no bucket listing, XML error documents.
    pub s3: bool,
    /// The path every object's path starts with (`/bucket` and `origin_path`).
    pub prefix: String,
}

impl UpConn {
    /// The id of the origin this connection goes to.
    pub fn origin_id(&self) -> &str {
        &self.facts.id
    }

    pub async fn write_all(&mut self, data: Vec<u8>) -> Result<Vec<u8>, UpstreamError> {
        if self.facts.s3 && super::origin_request::lists_bucket(&data, &self.facts.prefix) {
            tracing::warn!(origin = %self.facts.id, "a request for the bucket itself was not sent (it would list the bucket)");
            return Err(UpstreamError::Refused(403, "bucket listing"));
        }
        let (r, data) = match &mut self.io {
            Io::Plain(s) => s.write_all(data).await,
            Io::Tls(s) => s.write_all(data).await,
        };
        r.map_err(UpstreamError::Io)?;
        Ok(data)
    }

    /// Appends what arrives to `buf`; 0 = closed.
    pub async fn read_more(&mut self, timeout: Duration) -> Result<usize, UpstreamError> {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let slice = buf.slice_mut(len..cap);
        let r = match &mut self.io {
            Io::Plain(s) => monoio::time::timeout(timeout, s.read(slice)).await,
            Io::Tls(s) => monoio::time::timeout(timeout, s.read(slice)).await,
        };
        match r {
            Err(_) => Err(UpstreamError::Timeout),
            Ok((res, slice)) => {
                self.buf = slice.into_inner();
                res.map_err(UpstreamError::Io)
            }
        }
    }
}

/// A response head from an origin.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: Framing,
    /// The origin allows reusing the connection.
    pub keep_alive: bool,
    /// How the answer was come by, for `Cache-Status`'s `detail` (e.g. a failover).
    pub detail: Option<String>,
}

impl Head {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        super::fields::first(&self.headers, name)
    }

    /// Every value line of a header.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        super::fields::values(&self.headers, name)
    }
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// Parses a response head at the start of `buf`: `Ok(None)` when more bytes are needed.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(Head, usize)>, UpstreamError> {
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut r = httparse::Response::new(&mut storage);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > 64 * 1024 => {
            return Err(UpstreamError::Invalid("response head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(UpstreamError::Invalid("too many header fields")),
        Err(_) => return Err(UpstreamError::Invalid("malformed response head")),
    };
    let status = r.code.unwrap_or(0);
    let http11 = r.version == Some(1);
    let mut headers = Vec::with_capacity(r.headers.len());
    let (mut chunked, mut other_te, mut length, mut bad_length) = (false, false, None::<u64>, false);
    let mut close = !http11;
    for h in r.headers.iter() {
        let v = h.value;
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in v.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty()) {
                chunked = coding.eq_ignore_ascii_case(b"chunked");
                other_te |= !chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for part in v.split(|&b| b == b',').map(trim) {
                match std::str::from_utf8(part).ok().and_then(|s| s.parse::<u64>().ok()) {
                    Some(l) if length.is_none_or(|old| old == l) => length = Some(l),
                    _ => bad_length = true,
                }
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in v.split(|&b| b == b',').map(trim) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        }
        headers.push((h.name.to_string(), v.to_vec()));
    }
    let framing = if head_request || status < 200 || status == 204 || status == 304 {
        Framing::None
    } else if chunked && !other_te {
        Framing::Chunked
    } else if chunked || other_te {
        Framing::Close
    } else if bad_length {
        return Err(UpstreamError::Invalid("invalid Content-Length"));
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        Framing::Close
    };
    Ok(Some((
        Head {
            status,
            reason: r.reason.unwrap_or("").to_string(),
            headers,
            keep_alive: !close && framing != Framing::Close,
            framing,
            detail: None,
        },
        n,
    )))
}

/// At most this many interim (1xx) responses may precede a final one: more is a flood.
pub const MAX_INTERIM: u32 = 16;
/// At most this many bytes of interim responses may precede a final one.
pub const MAX_INTERIM_BYTES: usize = 64 * 1024;

/// A head read from an origin: an interim (1xx) response, or the final one.
#[derive(Debug, Clone)]
pub enum HeadEvent {
    /// A 1xx other than `100 Continue`, for the viewer (see `exchange::origin::interim_head`); never stored.
    Interim(Head),
    Final(Head),
}

/// Reads the heads of one exchange from an origin connection: interim responses one at a
/// time as they arrive, then the final head; bounded by [`MAX_INTERIM`] and
/// [`MAX_INTERIM_BYTES`], and in time: every head, the final one included, within one
/// `read_timeout` from the first read (an origin dripping bytes or hints cannot hold it).
#[derive(Debug, Default)]
pub struct HeadReader {
    head_request: bool,
    interims: u32,
    interim_bytes: usize,
    done: bool,
    deadline: Option<Instant>,
}

impl HeadReader {
    /// For the response to a HEAD request when `head_request`.
    pub fn new(head_request: bool) -> Self {
        HeadReader {
            head_request,
            ..Default::default()
        }
    }

    /// Interim responses read so far (`100 Continue` included).
    pub fn interims(&self) -> u32 {
        self.interims
    }

    /// The next head from what `buf` holds, consuming its bytes; `Ok(None)` when more bytes
    /// are needed. `100 Continue` is consumed without an event.
    pub fn take(&mut self, buf: &mut Vec<u8>) -> Result<Option<HeadEvent>, UpstreamError> {
        loop {
            if self.done {
                return Err(UpstreamError::Invalid("response head read after the final one"));
            }
            // Each head is bounded by `parse_head`, their number and bytes below.
            let Some((h, n)) = parse_head(buf, self.head_request)? else {
                return Ok(None);
            };
            buf.drain(..n);
            if !(100..200).contains(&h.status) {
                self.done = true;
                return Ok(Some(HeadEvent::Final(h)));
            }
            self.interims += 1;
            self.interim_bytes += n;
            if self.interims > MAX_INTERIM || self.interim_bytes > MAX_INTERIM_BYTES {
                return Err(UpstreamError::Invalid("too many interim responses"));
            }
            match h.status {
                100 => continue,
                101 => return Err(UpstreamError::Invalid("101 without an upgrade offered")),
                _ => return Ok(Some(HeadEvent::Interim(h))),
            }
        }
    }

    /// The next head, reading from `up` as needed; all of them within `timeout` of the first
    /// call.
    pub async fn next(&mut self, up: &mut UpConn, timeout: Duration) -> Result<HeadEvent, UpstreamError> {
        let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + timeout);
        loop {
            if !up.buf.is_empty() {
                if let Some(ev) = self.take(&mut up.buf)? {
                    if let HeadEvent::Final(h) = &ev {
                        if up.facts.s3 {
                            super::origin_request::check_s3_error(up, h, deadline).await?;
                        }
                    }
                    return Ok(ev);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(UpstreamError::Timeout);
            }
            if up.read_more(left).await? == 0 {
                return Err(UpstreamError::Closed);
            }
        }
    }
}

/// Reads the final response head, dropping interim responses (bounded as [`HeadReader`]
/// bounds them): for exchanges no viewer waits on, such as a background refresh.
pub async fn read_final_head(
    up: &mut UpConn,
    timeout: Duration,
    head_request: bool,
) -> Result<Head, UpstreamError> {
    let mut r = HeadReader::new(head_request);
    loop {
        if let HeadEvent::Final(h) = r.next(up, timeout).await? {
            return Ok(h);
        }
    }
}

/// Reads a response body piece by piece.
pub struct BodyReader {
    framing: Framing,
    left: u64,
    chunked: ChunkedDecoder,
    done: bool,
}

impl BodyReader {
    pub fn new(framing: Framing) -> Self {
        BodyReader {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunked: ChunkedDecoder::new(),
            done: matches!(framing, Framing::None | Framing::Length(0)),
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next piece of the body (empty = the body is complete). A body cut short is an
    /// error, never a short success.
    pub async fn next(&mut self, c: &mut UpConn, timeout: Duration) -> Result<Vec<u8>, UpstreamError> {
        loop {
            if self.done {
                return Ok(Vec::new());
            }
            match self.framing {
                Framing::None => self.done = true,
                Framing::Length(_) | Framing::Close if !c.buf.is_empty() => {
                    let take = if self.framing == Framing::Close {
                        c.buf.len()
                    } else {
                        (c.buf.len() as u64).min(self.left) as usize
                    };
                    let piece = if take == c.buf.len() {
                        std::mem::take(&mut c.buf)
                    } else {
                        let rest = c.buf.split_off(take);
                        std::mem::replace(&mut c.buf, rest)
                    };
                    if self.framing != Framing::Close {
                        self.left -= take as u64;
                        self.done = self.left == 0;
                    }
                    return Ok(piece);
                }
                Framing::Chunked if !c.buf.is_empty() => {
                    let mut out = Vec::new();
                    let mut used = 0;
                    loop {
                        let step = self
                            .chunked
                            .step(&c.buf[used..])
                            .map_err(|_| UpstreamError::Invalid("bad chunked encoding"))?;
                        out.extend_from_slice(&c.buf[used..][step.data.clone()]);
                        used += step.consumed;
                        if self.chunked.is_done() {
                            self.done = true;
                            break;
                        }
                        if step.consumed == 0 {
                            break;
                        }
                    }
                    c.buf.drain(..used);
                    if !out.is_empty() || self.done {
                        return Ok(out);
                    }
                }
                _ => {}
            }
            if self.done {
                continue;
            }
            let n = c.read_more(timeout).await?;
            if n == 0 {
                if self.framing == Framing::Close {
                    self.done = true;
                } else {
                    return Err(UpstreamError::Closed);
                }
            }
        }
    }
}

/// One worker's client for one custom origin.
pub struct OriginClient {
    pub id: String,
    host: String,
    pub host_header: String,
    /// The origin-side request settings: prefix, custom headers, signing.
    pub(super) shape: super::origin_request::Shape,
    facts: Rc<Facts>,
    idle: Duration,
    attempts: u32,
    /// This origin's health (process-wide).
    pub health: std::sync::Arc<super::health::Health>,
    /// Set when this client serves an origin group (this origin being its primary).
    pub group: Option<super::failover::GroupLink>,
    /// The parents this origin is fetched through (`parents`).
    pub parents: Option<super::parents::ParentLink>,
    /// This client is a parent's (a shield node), not an origin's.
    pub parent: bool,
    http_port: u16,
    https_port: u16,
    protocol: OriginProtocol,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    keepalive: usize,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    addrs: RefCell<(Vec<SocketAddr>, Vec<SocketAddr>, Instant)>,
    pool: RefCell<Vec<(UpConn, Instant)>>,
}

/// How long resolved addresses are kept.
const RESOLVE_TTL: Duration = Duration::from_secs(60);

/// Builds the rustls client configuration for an origin: webpki roots plus `ca_file`.
pub fn tls_config(o: &Origin) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(f) = &o.ca_file {
        let certs =
            rustls::pki_types::CertificateDer::pem_file_iter(f).map_err(|e| format!("ca_file {f:?}: {e}"))?;
        let mut n = 0;
        for c in certs {
            let c = c.map_err(|e| format!("ca_file {f:?}: {e}"))?;
            roots.add(c).map_err(|e| format!("ca_file {f:?}: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("ca_file {f:?} holds no certificate"));
        }
    }
    let provider = Arc::new(crate::tls::provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = o
        .ssl_protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "TLSv1.2" => Some(&rustls::version::TLS12),
            "TLSv1.3" => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect();
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

impl OriginClient {
    pub fn new(o: &Origin, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Self, String> {
        let host = o.domain_name.clone().unwrap_or_default();
        let tls = match tls {
            Some(cfg) => {
                let name =
                    ServerName::try_from(host.clone()).map_err(|e| format!("domain_name {host:?}: {e}"))?;
                Some((TlsConnector::from(cfg), name))
            }
            None => None,
        };
        let shape = super::origin_request::Shape::new(o).map_err(|e| e.to_string())?;
        Ok(OriginClient {
            facts: Rc::new(Facts {
                id: o.id.clone(),
                s3: o.is_s3(),
                prefix: o.request_prefix(),
            }),
            shape,
            health: super::health::of(&o.id),
            group: None,
            parents: None,
            parent: false,
            idle: o.origin_keepalive_timeout.0,
            attempts: o.connection_attempts.max(1),
            id: o.id.clone(),
            host_header: o.host_header.clone().unwrap_or_else(|| host.clone()),
            host,
            http_port: o.http_port,
            https_port: o.https_port,
            protocol: o.protocol,
            connect_timeout: o.connect_timeout.0,
            read_timeout: o.read_timeout.0,
            keepalive: o.keepalive,
            tls,
            addrs: RefCell::new((Vec::new(), Vec::new(), Instant::now())),
            pool: RefCell::new(Vec::new()),
        })
    }

    /// Whether a request from a viewer on HTTPS (or not) goes to the origin over TLS.
    pub fn uses_tls(&self, viewer_tls: bool) -> bool {
        match self.protocol {
            OriginProtocol::HttpOnly => false,
            OriginProtocol::HttpsOnly => true,
            OriginProtocol::MatchViewer => viewer_tls,
        }
    }

    fn resolve(&self, tls: bool) -> Result<Vec<SocketAddr>, UpstreamError> {
        let mut a = self.addrs.borrow_mut();
        let cached = if tls { &a.1 } else { &a.0 };
        if !cached.is_empty() && a.2.elapsed() < RESOLVE_TTL {
            return Ok(cached.clone());
        }
        let port = if tls { self.https_port } else { self.http_port };
        let found: Vec<SocketAddr> = (self.host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| UpstreamError::Resolve(format!("{}: {e}", self.host)))?
            .collect();
        if found.is_empty() {
            return Err(UpstreamError::Resolve(self.host.clone()));
        }
        if tls {
            a.1 = found.clone();
        } else {
            a.0 = found.clone();
        }
        a.2 = Instant::now();
        Ok(found)
    }

    /// A pooled connection if one is fresh, else a new one.
    pub async fn checkout(&self, tls: bool) -> Result<UpConn, UpstreamError> {
        {
            let mut pool = self.pool.borrow_mut();
            while let Some((c, at)) = pool.pop() {
                if c.tls == tls && at.elapsed() < self.idle {
                    return Ok(c);
                }
            }
        }
        self.connect(tls).await
    }

    /// A new connection (TLS handshake included): up to `connection_attempts` tries, each
    /// over every address of the origin.
    pub async fn connect(&self, tls: bool) -> Result<UpConn, UpstreamError> {
        let mut last = UpstreamError::Resolve(self.host.clone());
        for _ in 0..self.attempts {
            match self.connect_once(tls).await {
                Ok(c) => return Ok(c),
                // Not a network failure: another attempt would fail alike.
                Err(e @ (UpstreamError::Resolve(_) | UpstreamError::Tls(_))) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn connect_once(&self, tls: bool) -> Result<UpConn, UpstreamError> {
        let addrs = self.resolve(tls)?;
        let mut last = UpstreamError::Resolve(self.host.clone());
        for addr in addrs {
            let stream =
                match monoio::time::timeout(self.connect_timeout, TcpStream::connect_addr(addr)).await {
                    Err(_) => {
                        last = UpstreamError::Timeout;
                        continue;
                    }
                    Ok(Err(e)) => {
                        last = UpstreamError::Connect(e);
                        continue;
                    }
                    Ok(Ok(s)) => s,
                };
            let _ = stream.set_nodelay(true);
            let io = if tls {
                let Some((connector, name)) = &self.tls else {
                    return Err(UpstreamError::Tls("no TLS configuration for this origin".into()));
                };
                match monoio::time::timeout(self.connect_timeout, connector.connect(name.clone(), stream))
                    .await
                {
                    Err(_) => return Err(UpstreamError::Timeout),
                    Ok(Err(e)) => return Err(UpstreamError::Tls(tls_error_text(e))),
                    Ok(Ok(s)) => Io::Tls(Box::new(s)),
                }
            } else {
                Io::Plain(stream)
            };
            return Ok(UpConn {
                io,
                buf: Vec::new(),
                reused: false,
                tls,
                facts: self.facts.clone(),
            });
        }
        Err(last)
    }

    /// Returns a connection whose exchange ended cleanly to the pool.
    pub fn checkin(&self, mut c: UpConn) {
        if !c.buf.is_empty() {
            return;
        }
        let mut pool = self.pool.borrow_mut();
        if pool.len() < self.keepalive {
            c.reused = true;
            pool.push((c, Instant::now()));
        }
    }
}

fn tls_error_text(e: monoio_rustls::TlsError) -> String {
    match e {
        monoio_rustls::TlsError::Rustls(e) => e.to_string(),
        monoio_rustls::TlsError::Io(e) => match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_framing() {
        let (h, n) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive, n),
            (200, Framing::Length(5), true, 38)
        );
        let (h, _) = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let (h, _) = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let (h, _) = parse_head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::None);
        let (h, _) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", false).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false)
            .unwrap()
            .is_none());
        assert!(parse_head(b"garbage\r\n\r\n", false).is_err());
        let (h, _) = parse_head(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive);
    }

    fn events(raw: &[u8]) -> (Vec<u16>, Result<Option<u16>, String>) {
        let mut r = HeadReader::new(false);
        let mut buf = raw.to_vec();
        let mut interim = Vec::new();
        loop {
            match r.take(&mut buf) {
                Ok(Some(HeadEvent::Interim(h))) => interim.push(h.status),
                Ok(Some(HeadEvent::Final(h))) => return (interim, Ok(Some(h.status))),
                Ok(None) => return (interim, Ok(None)),
                Err(e) => return (interim, Err(e.to_string())),
            }
        }
    }

    #[test]
    fn interim_responses_come_one_by_one_before_the_final_head() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut r = HeadReader::new(false);
        let mut buf = raw.to_vec();
        let Some(HeadEvent::Interim(h)) = r.take(&mut buf).unwrap() else {
            panic!("100 is consumed, the 103 comes first")
        };
        assert_eq!(
            (h.status, h.header("link")),
            (103, Some(&b"</a.css>; rel=preload"[..]))
        );
        assert_eq!(h.framing, Framing::None, "an interim response has no body");
        assert!(matches!(r.take(&mut buf).unwrap(), Some(HeadEvent::Interim(h)) if h.status == 103));
        let Some(HeadEvent::Final(h)) = r.take(&mut buf).unwrap() else {
            panic!("then the final head")
        };
        assert_eq!((h.status, h.framing), (200, Framing::Length(2)));
        assert_eq!(buf, b"ok", "the body stays for the body reader");
        assert_eq!(r.interims(), 3);
        // A head split across reads.
        let (i, f) = events(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le");
        assert_eq!((i, f), (vec![103], Ok(None)));
        // 101 is never expected.
        let (_, f) = events(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
        assert!(f.is_err());
    }

    #[test]
    fn an_interim_flood_fails_the_exchange() {
        let hint = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".to_vec();
        let fin = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
        let ok: Vec<u8> = [hint.repeat(MAX_INTERIM as usize), fin.clone()].concat();
        assert_eq!(events(&ok).1, Ok(Some(200)), "up to the bound is fine");
        let flood: Vec<u8> = [hint.repeat(MAX_INTERIM as usize + 1), fin.clone()].concat();
        let (i, f) = events(&flood);
        assert_eq!(i.len(), MAX_INTERIM as usize);
        assert!(f.unwrap_err().contains("interim"));
        // 100 Continue counts too.
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        let flood: Vec<u8> = [cont.repeat(MAX_INTERIM as usize + 1), fin.clone()].concat();
        assert!(events(&flood).1.is_err());
        // Few but large interim heads: bounded by bytes.
        let big = format!(
            "HTTP/1.1 103 Early Hints\r\nLink: <{}>\r\n\r\n",
            "a".repeat(MAX_INTERIM_BYTES / 4)
        );
        let flood: Vec<u8> = [big.repeat(5).into_bytes(), fin].concat();
        let (i, f) = events(&flood);
        assert!(i.len() < 5 && f.is_err(), "{i:?} {f:?}");
    }
}
