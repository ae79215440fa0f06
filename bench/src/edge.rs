//! What the edge security controls cost (`--edge`): 1 KiB hits per CPU-second with each
//! control on against the same hits without it, the same binary, alternating A B B A:
//! - a behavior with `trusted_key_groups`, every request carrying the same signed URL (RSA,
//!   canned policy, signed with the `openssl` command line): verified once, then remembered;
//!   the server without the control gets the same URL (its cache key ignores the query);
//! - a behavior with the managed `SecurityHeadersPolicy` (five headers added to every hit).
//!
//! The first-seen signature's cost (an RSA verification) is `cargo bench -p slabfront --bench
//! signed`.

use crate::pair::{paired_row, print_header};
use crate::{start_slabfront_with, wrk_with, Args, SMALL};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const PORTS: [u16; 3] = [18190, 18191, 18192];

fn openssl(args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running openssl")?;
    if let Some(i) = input {
        child.stdin.take().context("stdin")?.write_all(i)?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("openssl {args:?} failed");
    }
    Ok(out.stdout)
}

/// An RSA-2048 key in `work`: (private key path, public key PEM).
fn key(work: &Path) -> Result<(String, String)> {
    let private = work.join("signing.pem").display().to_string();
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &private,
        ],
        None,
    )?;
    let public = String::from_utf8(openssl(&["pkey", "-pubout", "-in", &private], None)?)?;
    Ok((private, public))
}

/// `path` signed for Host `127.0.0.1:port` with a canned policy, as CloudFront's signers do.
fn signed_path(private: &str, port: u16, path: &str) -> Result<String> {
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 86_400;
    let url = format!("http://127.0.0.1:{port}{path}");
    let policy = format!(
        r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    );
    let sig = openssl(&["dgst", "-sha1", "-sign", private], Some(policy.as_bytes()))?;
    let b64 = openssl(&["base64", "-A"], Some(&sig))?;
    let b64 = String::from_utf8(b64)?
        .trim()
        .replace('+', "-")
        .replace('=', "_")
        .replace('/', "~");
    Ok(format!(
        "{path}?Expires={expires}&Signature={b64}&Key-Pair-Id=KBENCH"
    ))
}

/// One GET with the Host wrk sends (`127.0.0.1:port`); the status.
fn get_status(port: u16, path: &str) -> Result<u16> {
    use std::io::Read;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut all = Vec::new();
    c.read_to_end(&mut all)?;
    let line = String::from_utf8_lossy(&all[..all.len().min(12)]).to_string();
    Ok(line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = crate::make_site(work.path())?;
    let _origin = crate::proxy::start_origin(&root, work.path())?;
    let (private, public) = key(work.path())?;
    let key_group = format!(
        "[[key_groups]]\nid = \"bench\"\n[[key_groups.public_keys]]\nid = \"KBENCH\"\npem = \"\"\"\n{public}\"\"\"\n"
    );
    let config = |i: usize, behavior: &str, extra: &str| {
        crate::proxy::proxy_config(
            PORTS[i],
            &crate::proxy::plain_origin(),
            behavior,
            extra,
            &work.path().join(format!("slab-{i}")),
            "256MiB",
        )
    };
    let servers = [
        start_slabfront_with(bin, work.path(), "plain", &config(0, "", ""), PORTS[0])?,
        start_slabfront_with(
            bin,
            work.path(),
            "signed",
            &config(1, "trusted_key_groups = [\"bench\"]", &key_group),
            PORTS[1],
        )?,
        start_slabfront_with(
            bin,
            work.path(),
            "headers",
            &config(2, "response_headers_policy = \"SecurityHeadersPolicy\"", ""),
            PORTS[2],
        )?,
    ];
    let signed = signed_path(&private, PORTS[1], SMALL)?;
    for (i, p) in [(0, signed.as_str()), (0, SMALL), (1, signed.as_str()), (2, SMALL)] {
        for _ in 0..2 {
            let status = get_status(PORTS[i], p)?;
            if status != 200 {
                bail!("{p} on port {} answered {status}", PORTS[i]);
            }
        }
    }
    let secs = args.duration;
    println!(
        "Edge controls: 1 KiB hits with each control on against the same hits without it (same binary), alternating A B B A; {} on {} cores; {secs} s per measurement.\n",
        crate::procstat::cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    print_header("off", "on");
    let rounds = args.runs.max(2);
    for conns in [64, 1000] {
        let label = format!("hit 1 KiB, repeated signed URL, {conns} conns");
        if args.wants(&label) {
            eprintln!("running {label}");
            paired_row(&label, "req/CPU-s", rounds, &|i| {
                // The same URL both ways (the plain server's key ignores the query), so the
                // row measures the check, not the longer request.
                wrk_with(&servers[if i == 0 { 0 } else { 1 }], &signed, conns, secs, None)
            })?;
        }
        let label = format!("hit 1 KiB, SecurityHeadersPolicy, {conns} conns");
        if args.wants(&label) {
            eprintln!("running {label}");
            paired_row(&label, "req/CPU-s", rounds, &|i| {
                wrk_with(&servers[if i == 0 { 0 } else { 2 }], SMALL, conns, secs, None)
            })?;
        }
    }
    Ok(())
}
