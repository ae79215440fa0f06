//! Signed URLs and cookies made by other people's tools: keys and signatures from the
//! `openssl` command line, URLs and cookies from botocore's `CloudFrontSigner` (PyPI
//! `botocore` with `cryptography`: the machine's Python, else a venv made here once).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A key pair made by `openssl`: the private key's path and the public key's PEM.
pub struct KeyPair {
    pub private: PathBuf,
    pub public_pem: String,
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA-2048 (`"rsa"`) or ECDSA P-256 (`"ec"`) key pair in `dir`.
pub fn key_pair(dir: &Path, kind: &str) -> KeyPair {
    let private = dir.join(format!("{kind}.pem"));
    if kind == "rsa" {
        run(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&private));
    } else {
        run(Command::new("openssl")
            .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out"])
            .arg(&private));
    }
    let public_pem = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private));
    KeyPair {
        private,
        public_pem: String::from_utf8(public_pem).unwrap(),
    }
}

/// Runs `cmd` with `input` on its stdin; its stdout.
fn pipe(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// CloudFront's URL-safe base64 (`openssl base64`, then `+` → `-`, `=` → `_`, `/` → `~`).
pub fn cf_b64(bytes: &[u8]) -> String {
    let b = pipe(Command::new("openssl").args(["base64", "-A"]), bytes);
    String::from_utf8(b)
        .unwrap()
        .trim()
        .replace('+', "-")
        .replace('=', "_")
        .replace('/', "~")
}

/// `openssl dgst` signs `message` as CloudFront verifies it: SHA-1 with RSA, SHA-256 with
/// ECDSA; the signature in CloudFront's base64.
pub fn openssl_sign(key: &KeyPair, message: &[u8]) -> String {
    let digest = if key.private.ends_with("rsa.pem") {
        "-sha1"
    } else {
        "-sha256"
    };
    let sig = pipe(
        Command::new("openssl")
            .args(["dgst", digest, "-sign"])
            .arg(&key.private),
        message,
    );
    cf_b64(&sig)
}

/// The canned policy CloudFront signs for `url` until `expires`.
pub fn canned(url: &str, expires: u64) -> String {
    format!(
        r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    )
}

/// A Python with botocore and cryptography: the machine's, else a venv made here (once).
pub fn python_with_botocore() -> PathBuf {
    let ok = |py: &Path| {
        Command::new(py)
            .args(["-c", "import botocore.signers, cryptography"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let system = PathBuf::from("python3");
    if ok(&system) {
        return system;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("botocore-venv");
    let py = venv.join("bin/python3");
    if !ok(&py) {
        eprintln!(
            "installing botocore and cryptography from PyPI into {}",
            venv.display()
        );
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(venv.join("bin/pip")).args(["install", "-q", "botocore>=1.30", "cryptography>=41"]));
    }
    assert!(ok(&py), "botocore cannot be had on this machine");
    py
}

/// Runs botocore's CloudFrontSigner (`cf_sign.py`) over `jobs`; one result per job.
pub fn botocore_sign(jobs: &serde_json::Value) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/cf_sign.py");
    let out = pipe(
        Command::new(python_with_botocore()).arg(script),
        jobs.to_string().as_bytes(),
    );
    serde_json::from_slice(&out).unwrap()
}
