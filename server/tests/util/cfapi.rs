//! Real CloudFront clients for the tests: boto3 and the AWS CLI, from PyPI. The machine's
//! when `python3` imports boto3 and `aws` runs, else a venv made once under the target
//! directory (`pip install boto3 awscli`). CI installs them (`.ci/run`); a machine without
//! them fails the tests loudly rather than skipping them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Clients {
    pub python: PathBuf,
    pub aws: PathBuf,
}

fn works(cmd: &Path, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn usable(python: &Path, aws: &Path) -> bool {
    works(python, &["-c", "import boto3"]) && works(aws, &["--version"])
}

struct LockFile(PathBuf);

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// boto3 and the AWS CLI, installed when missing.
pub fn clients() -> Clients {
    let (py, aws) = (PathBuf::from("python3"), PathBuf::from("aws"));
    if usable(&py, &aws) {
        return Clients { python: py, aws };
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cfapi-venv");
    let (py, aws) = (venv.join("bin/python3"), venv.join("bin/aws"));
    let lock = venv.with_extension("lock");
    let _guard = loop {
        if usable(&py, &aws) {
            return Clients { python: py, aws };
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break LockFile(lock.clone()),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    eprintln!("installing boto3 and awscli from PyPI into {}", venv.display());
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "boto3", "awscli"])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok && usable(&py, &aws),
        "boto3 and the AWS CLI are needed (python3 -m venv, pip install boto3 awscli): see .ci/run"
    );
    Clients { python: py, aws }
}

/// Where a test's clients talk to.
pub struct Target {
    pub endpoint: String,
    pub edge: String,
    pub origin: String,
    pub key: (String, String),
    pub file_name: String,
}

impl Clients {
    /// Runs `cfapi_client.py COMMAND ARGS`; its JSON on success, else the failure's text.
    pub fn run(&self, t: &Target, command: &str, args: &[&str]) -> Result<serde_json::Value, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/cfapi_client.py");
        let out = Command::new(&self.python)
            .arg(script)
            .arg(command)
            .args(args)
            .env("CF_ENDPOINT", &t.endpoint)
            .env("CF_EDGE", &t.edge)
            .env("CF_ORIGIN", &t.origin)
            .env("CF_FILE_NAME", &t.file_name)
            .env("AWS_ACCESS_KEY_ID", &t.key.0)
            .env("AWS_SECRET_ACCESS_KEY", &t.key.1)
            .env("AWS_CLI", &self.aws)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.python.display()))?;
        if !out.status.success() {
            return Err(format!(
                "cfapi_client.py {command} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}
