//! Microseconds to verify a signed URL seen for the first time (nothing remembered): the
//! signature decoded, the canned policy rebuilt, the RSA-2048 / SHA-1 signature (or the
//! ECDSA P-256 / SHA-256 one) verified with ring, the grant checked. Keys and signatures
//! come from the `openssl` command line.
//!
//! `cargo bench -p slabfront --bench signed [-- ITERATIONS]`

use slabfront::edge::signed::{canned_policy, split_query, verify, Trusted};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    if let Some(i) = input {
        child.stdin.take().expect("stdin").write_all(i).expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("openssl output");
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("slabfront-signed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = "https://d111111abcdef8.cloudfront.net/video/1k.bin";
    let expires = 4_000_000_000u64;
    for (kind, gen, digest) in [
        (
            "RSA-2048",
            &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
            "-sha1",
        ),
        (
            "ECDSA P-256",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ][..],
            "-sha256",
        ),
    ] {
        let private = dir.join("key.pem").display().to_string();
        let mut args = gen.to_vec();
        args.extend(["-out", &private]);
        openssl(&args, None);
        let public = String::from_utf8(openssl(&["pkey", "-pubout", "-in", &private], None)).expect("utf-8");
        let sig = openssl(
            &["dgst", digest, "-sign", &private],
            Some(canned_policy(url, expires).as_bytes()),
        );
        let b64 = String::from_utf8(openssl(&["base64", "-A"], Some(&sig)))
            .expect("utf-8")
            .trim()
            .replace('+', "-")
            .replace('=', "_")
            .replace('/', "~");
        let cfg = config::Config::from_toml_str(&format!(
            "[[origins]]\nid = \"o\"\npath = \".\"\n[default_cache_behavior]\ntarget_origin = \"o\"\ntrusted_key_groups = [\"g\"]\n[[key_groups]]\nid = \"g\"\n[[key_groups.public_keys]]\nid = \"K\"\npem = \"\"\"\n{public}\"\"\"\n"
        ))
        .expect("config");
        let trusted = Trusted::new(&cfg, &["g".to_string()]).expect("keys");
        let query = format!("Expires={expires}&Signature={b64}&Key-Pair-Id=K");
        let (m, _) = split_query(query.as_bytes());
        let now = 1_700_000_000;
        assert!(
            verify(&trusted, &m, url, now, None).is_ok(),
            "{kind}: the signature verifies"
        );
        let start = Instant::now();
        for _ in 0..iterations {
            let (m, _) = split_query(std::hint::black_box(query.as_bytes()));
            std::hint::black_box(verify(&trusted, &m, url, now, None).is_ok());
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!("{kind}: {us:.1} µs per first-seen signed URL ({iterations} iterations)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
