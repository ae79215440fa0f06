#![allow(clippy::unwrap_used)]
//! Test helpers: start the real `slabfront` binary on 127.0.0.1:0 and talk raw HTTP to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod cfapi;
pub mod mmdb;
pub mod origin;
pub mod s3;
pub mod signing;

pub struct TestServer {
    pub child: Child,
    pub port: u16,
    /// The admin listener's port, when configured.
    pub admin_port: Option<u16>,
    pub dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

/// The I/O drivers a test runs on.
pub const DRIVERS: [&str; 2] = ["io_uring", "epoll"];

impl TestServer {
    /// Starts slabfront with `[server]` extras and a directory origin at `root`.
    pub fn start(root: &Path, server_extra: &str) -> TestServer {
        Self::start_with(root, server_extra, "")
    }

    pub fn start_with(root: &Path, server_extra: &str, top_extra: &str) -> TestServer {
        let cfg = format!(
            "{top_extra}\n[server]\nlisten = [\"127.0.0.1:0\"]\n{server_extra}\n\n[[origins]]\nid = \"files\"\npath = {root:?}\n\n[default_cache_behavior]\ntarget_origin = \"files\"\n"
        );
        Self::start_config(tempfile::tempdir().unwrap(), &cfg)
    }

    /// Starts slabfront with a whole configuration text, written into `dir`.
    pub fn start_config(dir: tempfile::TempDir, cfg: &str) -> TestServer {
        Self::start_config_env(dir, cfg, &[])
    }

    /// As `start_config`, with extra environment variables for the server process.
    pub fn start_config_env(dir: tempfile::TempDir, cfg: &str, env: &[(&str, &str)]) -> TestServer {
        let cfg_path = dir.path().join("slabfront.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_slabfront"))
            .arg("--config")
            .arg(&cfg_path)
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        // The admin line, if any, was written in the same write: it is in the buffer already.
        let mut admin_port = None;
        if cfg.contains("[admin]") {
            let mut l = String::new();
            reader.read_line(&mut l).unwrap();
            admin_port = l
                .trim()
                .rsplit(':')
                .next()
                .and_then(|p| p.trim_end_matches('/').parse().ok());
        }
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no listen line: {line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
        TestServer {
            child,
            port,
            admin_port,
            dir,
            stderr_path,
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGKILL to the server's PID and waits for it.
    pub fn kill9(&mut self) {
        Command::new("kill")
            .arg("-KILL")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM to the server's PID.
    pub fn terminate(&self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }

    /// One request on a new connection.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut s = self.connect();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        read_response(&mut s, false).unwrap()
    }

    /// Raw bytes on a new connection; everything read until the server closes.
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (skipping 1xx unless `keep_interim`); the body by Content-Length.
pub fn read_response(s: &mut impl Read, head_only: bool) -> std::io::Result<Response> {
    loop {
        let r = read_one(s, head_only)?;
        if (100..200).contains(&r.status) {
            continue;
        }
        return Ok(r);
    }
}

pub fn read_one(s: &mut impl Read, head_only: bool) -> std::io::Result<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {:?}", String::from_utf8_lossy(&head)),
            ));
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let no_body = head_only || status == 304 || (100..200).contains(&status);
    if !no_body
        && r.header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                if s.read(&mut byte)? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                line.push(byte[0]);
            }
            let size = usize::from_str_radix(std::str::from_utf8(&line).unwrap().trim(), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            s.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            r.body.extend_from_slice(&chunk[..size]);
        }
    } else if !no_body {
        let len: usize = r.header("content-length").map_or(0, |v| v.parse().unwrap());
        r.body = vec![0u8; len];
        s.read_exact(&mut r.body)?;
    }
    Ok(r)
}

/// Every response in a byte string (as read until close).
pub fn parse_all(mut bytes: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match read_one(&mut bytes, false) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
    }
    out
}

/// A site: index.html, a 1 KiB file, a 1.3 MB file, a precompressed pair, a subdirectory.
pub fn site() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("index.html"), b"<h1>index</h1>\n").unwrap();
    std::fs::write(p.join("1k.txt"), vec![b'a'; 1024]).unwrap();
    std::fs::write(p.join("big.bin"), big_body()).unwrap();
    std::fs::write(p.join("app.js"), b"console.log('plain');\n").unwrap();
    std::fs::write(p.join("app.js.gz"), b"GZIPPED-BYTES").unwrap();
    std::fs::write(p.join("app.js.br"), b"BROTLI-BYTES").unwrap();
    std::fs::create_dir(p.join("docs")).unwrap();
    std::fs::write(p.join("docs/index.html"), b"docs index\n").unwrap();
    std::fs::create_dir(p.join("empty")).unwrap();
    d
}

pub fn big_body() -> Vec<u8> {
    (0..1_323_539u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}
