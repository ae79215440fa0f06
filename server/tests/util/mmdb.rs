//! A MaxMind-format country database the tests write themselves, with PyPI's `mmdb-writer`
//! (the machine's Python when it has it, else a venv made once under the target directory).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WRITER: &str = r#"
import json, sys
from netaddr import IPSet
from mmdb_writer import MMDBWriter
w = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True)
for cidr, cc in json.loads(sys.argv[2]).items():
    w.insert_network(IPSet([cidr]), {"country": {"iso_code": cc}})
w.to_db_file(sys.argv[1])
"#;

fn has_writer(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", "import mmdb_writer, netaddr"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python that has `mmdb-writer`: `SLABFRONT_MMDB_PYTHON` (CI installs one), the
/// machine's, or a venv made here.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SLABFRONT_MMDB_PYTHON").map(PathBuf::from) {
        if has_writer(&p) {
            return p;
        }
    }
    let system = PathBuf::from("python3");
    if has_writer(&system) {
        return system;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mmdb-venv");
    let py = venv.join("bin/python3");
    if has_writer(&py) {
        return py;
    }
    let lock = venv.with_extension("lock");
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(500));
                if has_writer(&py) {
                    return py;
                }
            }
        }
    }
    eprintln!("installing mmdb-writer from PyPI into {}", venv.display());
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "mmdb-writer>=0.2,<0.3"])
            .status()
            .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&lock);
    assert!(
        ok && has_writer(&py),
        "mmdb-writer could not be installed from PyPI"
    );
    py
}

/// Writes a country database mapping each CIDR to its ISO code at `path` (through a
/// temporary file renamed over it, as database updates are done).
pub fn write(path: &Path, networks: &[(&str, &str)]) {
    let map: serde_json::Map<String, serde_json::Value> = networks
        .iter()
        .map(|(c, cc)| (c.to_string(), serde_json::Value::from(*cc)))
        .collect();
    let tmp = path.with_extension("tmp");
    let out = Command::new(python())
        .args(["-c", WRITER])
        .arg(&tmp)
        .arg(serde_json::Value::Object(map).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mmdb-writer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, path).unwrap();
}
