#![allow(clippy::unwrap_used)]
//! Disk faults under the real binary: a slab the disk cannot hold stops the server at start
//! with a clear message, and a slab truncated under the running server turns hits into
//! misses served from the origin, counted in /metrics, with the process alive.

mod util;

use std::io::Write;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply, Seen};
use util::{read_response, TestServer};

fn config(cache: &std::path::Path, size: &str, port: u16) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"
read_timeout = "2s"
connect_timeout = "1s"

[default_cache_behavior]
target_origin = "app"

[admin]
listen = "127.0.0.1:0"

[cache]
path = "{cache}"
size = "{size}"
"#,
        cache = cache.display()
    )
}

fn http_get(port: u16, path: &str) -> util::Response {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    read_response(&mut c, false).unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// A tmpfs of `size` on a fresh temporary directory, unmounted on drop; `None` (reason
/// printed) when this process may not mount.
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs(dir)),
            Ok(o) => {
                eprintln!(
                    "skipped: cannot mount a small tmpfs (root needed): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn a_slab_the_disk_cannot_hold_stops_the_server_at_start_with_a_clear_error() {
    let Some(fs) = SmallFs::mount("32m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let slab = fs.0.path().join("slab");
    let cfg_path = dir.path().join("slabfront.toml");
    // No origin needs to listen: the server stops before it would connect to one.
    std::fs::write(&cfg_path, config(&slab, "64MiB", 9)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .arg("--config")
        .arg(&cfg_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // Stopped by its own PID.
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the server started on a disk that cannot hold its slab");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "exit status {status:?}; stderr:\n{err}");
    assert!(err.contains(&slab.display().to_string()), "the path: {err}");
    assert!(err.contains(&(64u64 << 20).to_string()), "the size asked: {err}");
    assert!(err.contains("free"), "the space available: {err}");
    assert_eq!(std::fs::metadata(&slab).unwrap().len(), 0, "no half-made slab");
}

#[test]
fn a_slab_truncated_under_the_server_gives_misses_from_the_origin_not_a_crash() {
    let origin = Origin::start(|r: &Seen| {
        let body = format!("body of {}\n", r.target).repeat(2000);
        Reply::ok(body.as_bytes(), &[("cache-control", "max-age=600")])
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let slab = cache_dir.path().join("slab");
    let mut s = TestServer::start_config(tempfile::tempdir().unwrap(), &config(&slab, "64MiB", origin.port));
    let want = |p: &str| format!("body of {p}\n").repeat(2000).into_bytes();
    for p in ["/a", "/b", "/c"] {
        let r = s.get(p, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, want(p));
    }
    let fetched = origin.count();
    // Hits from the slab.
    for p in ["/a", "/b", "/c"] {
        assert_eq!(s.get(p, &[]).body, want(p));
    }
    assert_eq!(origin.count(), fetched, "served from the slab");

    // Someone truncates the slab file under the running server.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&slab)
        .unwrap()
        .set_len(4096)
        .unwrap();
    for _ in 0..2 {
        for p in ["/a", "/b", "/c", "/d"] {
            let r = s.get(p, &[]);
            assert_eq!(r.status, 200, "{p}: {}", s.stderr());
            assert_eq!(r.body, want(p), "{p}: the right bytes, from the origin");
        }
    }
    assert!(origin.count() > fetched, "misses went to the origin");
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the server is alive: {}",
        s.stderr()
    );
    let text = String::from_utf8(http_get(s.admin_port.unwrap(), "/metrics").body).unwrap();
    assert!(metric(&text, "slabfront_slab_io_errors_total") >= 1, "{text}");
    s.kill9();
}
