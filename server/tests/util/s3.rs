//! A real S3-compatible server for the tests: moto's server (PyPI `moto[server]`), which
//! checks SigV4 signatures once its auth is on. Found on PATH (with a Python that imports
//! moto and boto3), else installed into a venv under the target directory; started on
//! 127.0.0.1 and stopped by its PID. Without Python or PyPI the tests that need it say so
//! loudly and are skipped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket `s3_admin.py setup` creates (anonymous reads refused).
pub const BUCKET: &str = "private";

pub struct Moto {
    child: Child,
    pub endpoint: String,
    python: PathBuf,
    /// `[access key id, secret]` of two users allowed `s3:*`.
    pub keys: [(String, String); 2],
}

fn admin_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/s3_admin.py")
}

fn has_moto(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import moto.server, boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python that can run moto: the machine's, else a venv made here (once).
fn python_with_moto() -> Option<PathBuf> {
    let system = PathBuf::from("python3");
    if has_moto(&system) {
        return Some(system);
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let py = venv.join("bin/python3");
    if has_moto(&py) {
        return Some(py);
    }
    // Several test binaries may get here at once: the venv is built under a lock file.
    let lock = venv.with_extension("lock");
    let _guard = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break LockFile(lock.clone()),
            Err(_) if lock.exists() => {
                std::thread::sleep(Duration::from_millis(500));
                if has_moto(&py) {
                    return Some(py);
                }
            }
            Err(e) => {
                eprintln!("cannot create {}: {e}", lock.display());
                return None;
            }
        }
    };
    eprintln!("installing moto[server] from PyPI into {}", venv.display());
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "moto[server]>=5,<6"])
            .status()
            .is_ok_and(|s| s.success());
    (ok && has_moto(&py)).then_some(py)
}

struct LockFile(PathBuf);

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Moto {
    /// Starts moto with two users, the private bucket and its objects (`big` bytes in
    /// `big.bin` when not 0), then turns authentication on. `None` (after a loud message)
    /// when moto cannot be had on this machine.
    pub fn start(big: u64) -> Option<Moto> {
        let Some(python) = python_with_moto() else {
            eprintln!(
                "\n*** SKIPPED: no S3 server: moto[server] could not be installed (python3 -m venv + pip) ***\n"
            );
            return None;
        };
        let port = free_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("moto-{port}.log"));
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("moto log"))
            .spawn()
            .expect("start moto");
        let mut moto = Moto {
            child,
            endpoint,
            python,
            keys: Default::default(),
        };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "moto did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = moto.admin(&["setup", &moto.endpoint.clone(), &big.to_string()]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("keys from setup");
        let pair = |n: &str| {
            (
                v[n][0].as_str().unwrap().to_string(),
                v[n][1].as_str().unwrap().to_string(),
            )
        };
        moto.keys = [pair("a"), pair("b")];
        Some(moto)
    }

    /// Runs `s3_admin.py` with these arguments; its standard output.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(&self.python)
            .arg(admin_script())
            .args(args)
            .output()
            .expect("run s3_admin.py");
        assert!(
            out.status.success(),
            "s3_admin.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Deletes an access key (it stops working at once).
    pub fn revoke(&self, key: &(String, String)) {
        self.admin(&["revoke", &self.endpoint, &key.0, &key.1]);
    }

    /// Puts an object with the second user's key (the one never revoked).
    pub fn put(&self, key: &str, body: &str) {
        let (id, secret) = &self.keys[1];
        self.admin(&["put", &self.endpoint, id, secret, key, body]);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // By PID: the child we started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shared credentials file with one profile.
pub fn credentials_file(path: &Path, profile: &str, key: &(String, String)) {
    // Written aside and renamed: a reader never sees half a file.
    let tmp = path.with_extension("new");
    std::fs::write(
        &tmp,
        format!(
            "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            key.0, key.1
        ),
    )
    .unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Byte `i` of the large test object (as `s3_admin.py` makes it).
pub fn big_byte(i: u64) -> u8 {
    ((i % 1_000_003) % 256) as u8
}

/// `s3s-fs` (crates.io, pure Rust): an S3 server over a directory that checks SigV4 the way
/// AWS documents it (moto 5.2 does not canonicalise paths with non-ASCII or reserved
/// characters as S3 does, so the AWS SDK's own requests for such keys fail against it).
/// Found on PATH or under the target directory, else installed there with `cargo install`.
pub struct S3sFs {
    child: Child,
    pub endpoint: String,
    /// The directory served: `<root>/<bucket>/<key>`.
    pub root: tempfile::TempDir,
    pub key: (String, String),
}

fn s3s_fs_binary() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(Path::new("s3s-fs")) {
        return Some("s3s-fs".into());
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../s3s-fs");
    let bin = root.join("bin/s3s-fs");
    if works(&bin) {
        return Some(bin);
    }
    eprintln!("installing s3s-fs into {} (several minutes)", root.display());
    // 0.14 is the newest line that builds on Rust 1.95.
    let ok = Command::new(env!("CARGO"))
        .args([
            "install",
            "--locked",
            "--features",
            "binary",
            "--version",
            "0.14.1",
            "s3s-fs",
            "--root",
        ])
        .arg(&root)
        .status()
        .is_ok_and(|s| s.success());
    (ok && works(&bin)).then_some(bin)
}

impl S3sFs {
    /// Starts s3s-fs over a fresh directory holding `bucket`; `None` (after a loud message)
    /// when it cannot be installed.
    pub fn start(bucket: &str) -> Option<S3sFs> {
        let Some(bin) = s3s_fs_binary() else {
            eprintln!("\n*** SKIPPED: no s3s-fs: `cargo install s3s-fs --features binary` failed ***\n");
            return None;
        };
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(bucket)).unwrap();
        let key = (
            "AKIAS3SFSTESTKEY0001".to_string(),
            "s3s-fs-test-secret-0123456789abcdefghij".to_string(),
        );
        let port = free_port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &key.0, "--secret-key", &key.1])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(20), "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(S3sFs {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            key,
        })
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
