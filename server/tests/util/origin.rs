//! An in-process test origin on 127.0.0.1: HTTP/1.1 with keep-alive, optionally over TLS with
//! a certificate generated for the test. It records every request it sees.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the origin answers.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Send these raw bytes instead (then close).
    pub raw: Option<Vec<u8>>,
    /// Send the body chunked.
    pub chunked: bool,
    /// Never answer (hold the connection).
    pub hang: bool,
}

impl Reply {
    pub fn ok(body: &[u8], headers: &[(&str, &str)]) -> Reply {
        Reply {
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
            ..Default::default()
        }
    }

    pub fn status(status: u16, headers: &[(&str, &str)]) -> Reply {
        Reply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct Origin {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    pub connections: Arc<AtomicUsize>,
}

/// TLS material for an HTTPS origin: the certificate PEM (to trust) and the server config.
pub struct Tls {
    pub cert_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// A self-signed certificate for `names`.
pub fn tls_for(names: &[&str]) -> Tls {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    let cert_pem = ck.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    Tls {
        cert_pem,
        config: Arc::new(config),
    }
}

impl Origin {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Origin {
        Self::start_inner(Arc::new(handler), None)
    }

    pub fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Origin {
        Self::start_inner(Arc::new(handler), Some(tls))
    }

    fn start_inner(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        {
            let (seen, stop, connections) = (seen.clone(), stop.clone(), connections.clone());
            std::thread::spawn(move || {
                for s in listener.incoming() {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(s) = s else { continue };
                    connections.fetch_add(1, Ordering::Relaxed);
                    let (h, seen, stop, tls) = (handler.clone(), seen.clone(), stop.clone(), tls.clone());
                    std::thread::spawn(move || match tls {
                        None => serve(s, &h, &seen, &stop),
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            let stream = rustls::StreamOwned::new(conn, s);
                            serve(stream, &h, &seen, &stop)
                        }
                    });
                }
            });
        }
        Origin {
            port,
            seen,
            stop,
            connections,
        }
    }

    /// Requests seen so far.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Stops accepting (open connections are answered with closes).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve<S: Read + Write>(mut s: S, h: &Handler, seen: &Mutex<Vec<Seen>>, stop: &AtomicBool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // Read a head.
        let head_len = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                break n;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let _ = req.parse(&buf);
        let mut got = Seen {
            method: req.method.unwrap_or("").to_string(),
            target: req.path.unwrap_or("").to_string(),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect(),
            body: Vec::new(),
        };
        buf.drain(..head_len);
        // The body: Content-Length or chunked.
        if let Some(len) = got.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while buf.len() < len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            got.body = buf.drain(..len).collect();
        } else if got.header("transfer-encoding").is_some() {
            loop {
                let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let size =
                    usize::from_str_radix(std::str::from_utf8(&buf[..eol]).unwrap().trim(), 16).unwrap();
                while buf.len() < eol + 2 + size + 2 {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                got.body.extend_from_slice(&buf[eol + 2..eol + 2 + size]);
                buf.drain(..eol + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        }
        let close = got
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let is_head = got.method == "HEAD";
        let reply = h(&got);
        seen.lock().unwrap().push(got);
        if stop.load(Ordering::Acquire) {
            return;
        }
        if let Some(d) = reply.delay {
            std::thread::sleep(d);
        }
        if reply.hang {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        if let Some(raw) = reply.raw {
            let _ = s.write_all(&raw);
            let _ = s.flush();
            return;
        }
        let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (n, v) in &reply.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        let no_body = is_head || reply.status == 304 || reply.status == 204;
        if reply.chunked && !no_body {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let mut bytes = out.into_bytes();
            for piece in reply.body.chunks(7000) {
                bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                bytes.extend_from_slice(piece);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            if s.write_all(&bytes).is_err() {
                return;
            }
        } else {
            if reply.status != 304 && reply.status != 204 {
                out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            if !no_body {
                bytes.extend_from_slice(&reply.body);
            }
            if s.write_all(&bytes).is_err() {
                return;
            }
        }
        let _ = s.flush();
        if close {
            return;
        }
    }
}
